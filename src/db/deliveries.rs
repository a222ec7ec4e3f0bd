//! One row per event × person × channel: sent, skipped and why, failed and why, or pending.
use sqlx::SqlitePool;

use super::Tx;

pub struct NewDelivery<'a> {
    pub user_id: Option<i64>,
    pub person_name: Option<&'a str>,
    pub channel: Option<&'a str>,
    pub address: Option<&'a str>,
    /// `None` when it is to be sent.
    pub skip_reason: Option<String>,
    /// Index, in the same batch, of the delivery this one duplicates.
    pub duplicate_of: Option<usize>,
}

/// Inserts an event's decisions in order; returns their ids.
pub async fn insert_plan(
    tx: &mut Tx,
    event_id: i64,
    business_id: &str,
    rows: &[NewDelivery<'_>],
    now_ms: i64,
) -> sqlx::Result<Vec<i64>> {
    let mut ids: Vec<i64> = Vec::with_capacity(rows.len());
    for row in rows {
        let duplicate_of = row.duplicate_of.and_then(|i| ids.get(i).copied());
        let reason = match (&row.skip_reason, duplicate_of) {
            (Some(_), Some(first)) => Some(format!("duplicate of delivery {first}")),
            (reason, _) => reason.clone(),
        };
        let pending = row.skip_reason.is_none();
        let id = sqlx::query_scalar(
            "INSERT INTO deliveries (event_id, business_id, user_id, person_name, channel, address, status, reason,
                 duplicate_of, next_attempt_ms, created_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(event_id)
        .bind(business_id)
        .bind(row.user_id)
        .bind(row.person_name)
        .bind(row.channel)
        .bind(row.address)
        .bind(if pending { "pending" } else { "skipped" })
        .bind(reason)
        .bind(duplicate_of)
        .bind(pending.then_some(now_ms))
        .bind(now_ms)
        .fetch_one(&mut **tx)
        .await?;
        ids.push(id);
    }
    Ok(ids)
}

/// A delivery claimed for sending, with its event.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: i64,
    pub event_id: i64,
    pub business_id: String,
    pub user_id: Option<i64>,
    pub person_name: Option<String>,
    pub channel: String,
    pub address: String,
    pub attempts: i64,
    pub created_at_ms: i64,
    pub lease_until_ms: i64,
}

/// Claims up to `limit` due deliveries with one atomic UPDATE … RETURNING: each gets a lease
/// until `now + lease_ms`, after which another worker may claim it again (a crash mid-send).
pub async fn claim_due(tx: &mut Tx, now_ms: i64, lease_ms: i64, limit: i64) -> sqlx::Result<Vec<Claimed>> {
    sqlx::query_as(
        "UPDATE deliveries SET lease_until_ms = $1, attempts = attempts + 1
         WHERE id IN (
             SELECT id FROM deliveries
             WHERE status = 'pending' AND next_attempt_ms <= $2 AND (lease_until_ms IS NULL OR lease_until_ms <= $2)
             ORDER BY next_attempt_ms LIMIT $3)
         RETURNING id, event_id, business_id, user_id, person_name, channel, address, attempts, created_at_ms, lease_until_ms",
    )
    .bind(now_ms + lease_ms)
    .bind(now_ms)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await
}

/// When the next pending delivery falls due, if any.
pub async fn next_due_ms(pool: &SqlitePool) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "SELECT min(max(next_attempt_ms, coalesce(lease_until_ms, 0))) FROM deliveries WHERE status = 'pending'",
    )
    .fetch_one(pool)
    .await
}

pub async fn mark_sent(
    executor: &mut sqlx::SqliteConnection,
    id: i64,
    provider_id: Option<&str>,
    now_ms: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE deliveries SET status = 'sent', provider_id = $1, sent_at_ms = $2, lease_until_ms = NULL, reason = NULL
         WHERE id = $3 AND status = 'pending'",
    )
    .bind(provider_id)
    .bind(now_ms)
    .bind(id)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn schedule_retry(tx: &mut Tx, id: i64, next_attempt_ms: i64, error: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE deliveries SET next_attempt_ms = $1, lease_until_ms = NULL, reason = $2 WHERE id = $3 AND status = 'pending'",
    )
    .bind(next_attempt_ms)
    .bind(error)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Ends a delivery as `failed` (permanent error) or `dead` (gave up retrying).
pub async fn mark_failed(tx: &mut Tx, id: i64, status: &str, error: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE deliveries SET status = $1, reason = $2, lease_until_ms = NULL WHERE id = $3 AND status = 'pending'",
    )
    .bind(status)
    .bind(error)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Puts a dead-lettered delivery back in the queue (the Retry button).
pub async fn retry_dead(pool: &SqlitePool, business_id: &str, id: i64, now_ms: i64) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE deliveries SET status = 'pending', next_attempt_ms = $1, created_at_ms = $1, lease_until_ms = NULL, attempts = 0
         WHERE id = $2 AND business_id = $3 AND status IN ('dead', 'failed')",
    )
    .bind(now_ms)
    .bind(id)
    .bind(business_id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: i64,
    pub event_id: i64,
    pub user_id: Option<i64>,
    pub person_name: Option<String>,
    pub channel: Option<String>,
    pub address: Option<String>,
    pub status: String,
    pub reason: Option<String>,
    pub attempts: i64,
    pub next_attempt_ms: Option<i64>,
    pub provider_id: Option<String>,
    pub sent_at_ms: Option<i64>,
}

/// The decisions about some events, oldest first within each event.
pub async fn for_events(
    pool: &SqlitePool,
    business_id: &str,
    first_event: i64,
    last_event: i64,
) -> sqlx::Result<Vec<DeliveryRow>> {
    sqlx::query_as(
        "SELECT id, event_id, user_id, person_name, channel, address, status, reason, attempts, next_attempt_ms, provider_id, sent_at_ms
         FROM deliveries WHERE business_id = $1 AND event_id BETWEEN $2 AND $3 ORDER BY event_id DESC, id",
    )
    .bind(business_id)
    .bind(first_event)
    .bind(last_event)
    .fetch_all(pool)
    .await
}
