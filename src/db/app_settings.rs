use super::Link;

use super::Write;

pub async fn get(conn: &mut impl Link, key: &str) -> sqlx::Result<Option<String>> {
    on!(conn, |cx| sqlx::query_scalar("SELECT value FROM app_settings WHERE key = $1")
        .bind(key)
        .fetch_optional(cx)
        .await)
}

/// Stores `value` unless the key already has one; returns the value that is stored.
pub async fn get_or_insert(w: &mut Write, key: &str, value: &str) -> sqlx::Result<String> {
    execute!(
        w,
        sqlx::query("INSERT INTO app_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
    )?;
    on!(w, |cx| sqlx::query_scalar("SELECT value FROM app_settings WHERE key = $1").bind(key).fetch_one(cx).await)
}

pub async fn set(w: &mut Write, key: &str, value: &str) -> sqlx::Result<()> {
    execute!(w, sqlx::query(
        "INSERT INTO app_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value))?;
    Ok(())
}
