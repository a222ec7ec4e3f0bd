use sqlx::SqlitePool;

pub async fn get(pool: &SqlitePool, key: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT value FROM app_settings WHERE key = $1").bind(key).fetch_optional(pool).await
}

/// Stores `value` unless the key already has one; returns the value that is stored.
pub async fn get_or_insert(pool: &SqlitePool, key: &str, value: &str) -> sqlx::Result<String> {
    sqlx::query("INSERT INTO app_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
        .bind(key)
        .bind(value)
        .execute(pool)
        .await?;
    sqlx::query_scalar("SELECT value FROM app_settings WHERE key = $1").bind(key).fetch_one(pool).await
}

pub async fn set_in(tx: &mut super::Tx, key: &str, value: &str) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO app_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
