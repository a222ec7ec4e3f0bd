//! The in-app inbox.
use sqlx::SqlitePool;

pub struct NewNotification<'a> {
    pub business_id: &'a str,
    pub user_id: i64,
    pub delivery_id: Option<i64>,
    pub title: &'a str,
    pub body: &'a str,
    pub link: &'a str,
}

/// Adds a notification; for a delivery, at most once (a re-claimed delivery cannot add it twice).
pub async fn insert(executor: &mut sqlx::SqliteConnection, n: NewNotification<'_>, now: i64) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO notifications (business_id, user_id, delivery_id, title, body, link, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (delivery_id) DO NOTHING",
    )
    .bind(n.business_id)
    .bind(n.user_id)
    .bind(n.delivery_id)
    .bind(n.title)
    .bind(n.body)
    .bind(n.link)
    .bind(now)
    .execute(executor)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Notification {
    pub id: i64,
    pub title: String,
    pub body: String,
    pub link: String,
    pub created_at: i64,
    pub read: bool,
}

pub async fn unread_count(pool: &SqlitePool, user_id: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL")
        .bind(user_id)
        .fetch_one(pool)
        .await
}

pub async fn list(pool: &SqlitePool, user_id: i64, limit: i64) -> sqlx::Result<Vec<Notification>> {
    sqlx::query_as(
        "SELECT id, title, body, link, created_at, read_at IS NOT NULL AS read FROM notifications
         WHERE user_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Marks one of the user's notifications read; false when it is not theirs.
pub async fn mark_read(pool: &SqlitePool, user_id: i64, id: i64, now: i64) -> sqlx::Result<bool> {
    let done = sqlx::query("UPDATE notifications SET read_at = coalesce(read_at, $1) WHERE id = $2 AND user_id = $3")
        .bind(now)
        .bind(id)
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn mark_all_read(pool: &SqlitePool, user_id: i64, now: i64) -> sqlx::Result<u64> {
    let done = sqlx::query("UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND read_at IS NULL")
        .bind(now)
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
