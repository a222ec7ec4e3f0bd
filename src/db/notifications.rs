//! The in-app inbox.
use sqlx::QueryBuilder;

use super::Link;

use super::Write;

/// An in-app alert for one person. `delivery_id` ties it to the delivery it fulfils, so a
/// delivery tried twice (a lease that ran out) still adds one alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    pub business_id: String,
    pub user_id: i64,
    pub delivery_id: Option<i64>,
    pub title: String,
    pub body: String,
    pub link: String,
}

/// Adds a batch of notifications in one statement.
pub async fn insert_batch(w: &mut Write, batch: &[NewNotification], now: i64) -> sqlx::Result<()> {
    for n in batch {
        w.inbox_changed(n.user_id);
    }
    for chunk in batch.chunks(1000) {
        on!(w, |cx| {
            let mut q = QueryBuilder::new(
                "INSERT INTO notifications (business_id, user_id, delivery_id, title, body, link, created_at) ",
            );
            q.push_values(chunk, |mut row, n| {
                row.push_bind(&n.business_id)
                    .push_bind(n.user_id)
                    .push_bind(n.delivery_id)
                    .push_bind(&n.title)
                    .push_bind(&n.body)
                    .push_bind(&n.link)
                    .push_bind(now);
            });
            q.push(" ON CONFLICT (delivery_id) DO NOTHING");
            q.build().execute(cx).await.map(|done| done.rows_affected())
        })?;
    }
    Ok(())
}

/// Tells every owner and admin of a business something (a refused phone number).
pub async fn tell_managers(
    w: &mut Write,
    business_id: &str,
    title: &str,
    body: &str,
    link: &str,
    now: i64,
) -> sqlx::Result<()> {
    let told: Vec<i64> = on!(w, |cx| sqlx::query_scalar(
        "INSERT INTO notifications (business_id, user_id, title, body, link, created_at)
         SELECT business_id, id, $2, $3, $4, $5 FROM users
         WHERE business_id = $1 AND role IN ('owner', 'admin') AND removed_at IS NULL AND password_hash IS NOT NULL
         RETURNING user_id",
    )
    .bind(business_id)
    .bind(title)
    .bind(body)
    .bind(link)
    .bind(now)
    .fetch_all(cx)
    .await)?;
    told.into_iter().for_each(|user| w.inbox_changed(user));
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

/// Unread counts are shown up to this many ("99+" beyond).
pub const UNREAD_SHOWN: i64 = 100;

pub async fn list(conn: &mut impl Link, user_id: i64, limit: i64) -> sqlx::Result<Vec<Notification>> {
    on!(conn, |cx| sqlx::query_as(
        "SELECT id, title, body, link, created_at, read_at IS NOT NULL AS read FROM notifications
         WHERE user_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(cx)
    .await)
}

/// Marks one of the user's notifications read; false when it is not theirs.
pub async fn mark_read(w: &mut Write, user_id: i64, id: i64, now: i64) -> sqlx::Result<bool> {
    w.inbox_changed(user_id);
    let done = execute!(
        w,
        sqlx::query("UPDATE notifications SET read_at = coalesce(read_at, $1) WHERE id = $2 AND user_id = $3")
            .bind(now)
            .bind(id)
            .bind(user_id)
    )?;
    Ok(done == 1)
}

pub async fn mark_all_read(w: &mut Write, user_id: i64, now: i64) -> sqlx::Result<u64> {
    w.inbox_changed(user_id);
    let done = execute!(
        w,
        sqlx::query("UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND read_at IS NULL")
            .bind(now)
            .bind(user_id)
    )?;
    Ok(done)
}
