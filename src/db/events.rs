//! Events: durable ingest (many webhook requests per transaction) and what planning needs.
use sqlx::SqlitePool;

use super::Tx;

pub struct NewEvent {
    pub business_id: String,
    pub webhook_id: String,
    pub type_name: String,
    pub payload: String,
    pub received_at_ms: i64,
}

/// What became of one webhook delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    New(i64),
    /// The same webhook id was stored before, as this event.
    Duplicate(i64),
}

/// Stores a batch of events in one transaction (group commit). The same `webhook-id` within a
/// business is stored once; later copies answer with the first one's id.
pub async fn insert_batch(pool: &SqlitePool, events: &[NewEvent]) -> sqlx::Result<Vec<Stored>> {
    let mut tx = super::begin_write(pool).await?;
    let mut stored = Vec::with_capacity(events.len());
    for e in events {
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO events (business_id, webhook_id, type, payload, received_at_ms) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (business_id, webhook_id) DO NOTHING RETURNING id",
        )
        .bind(&e.business_id)
        .bind(&e.webhook_id)
        .bind(&e.type_name)
        .bind(&e.payload)
        .bind(e.received_at_ms)
        .fetch_optional(&mut **tx)
        .await?;
        stored.push(match id {
            Some(id) => Stored::New(id),
            None => Stored::Duplicate(
                sqlx::query_scalar("SELECT id FROM events WHERE business_id = $1 AND webhook_id = $2")
                    .bind(&e.business_id)
                    .bind(&e.webhook_id)
                    .fetch_one(&mut **tx)
                    .await?,
            ),
        });
    }
    tx.commit().await?;
    Ok(stored)
}

#[derive(Debug, sqlx::FromRow)]
pub struct EventToPlan {
    pub id: i64,
    pub business_id: String,
    pub payload: String,
    pub received_at_ms: i64,
}

pub async fn to_plan(tx: &mut Tx, limit: i64) -> sqlx::Result<Vec<EventToPlan>> {
    sqlx::query_as(
        "SELECT id, business_id, payload, received_at_ms FROM events WHERE state = 'received' ORDER BY id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut **tx)
    .await
}

pub async fn mark_planned(
    tx: &mut Tx,
    id: i64,
    state: &str,
    note: Option<&str>,
    usage_threshold: Option<u8>,
    now_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE events SET state = $1, note = $2, usage_threshold = $3, planned_at_ms = $4 WHERE id = $5")
        .bind(state)
        .bind(note)
        .bind(usage_threshold.map(i64::from))
        .bind(now_ms)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Claims `key` for this event; returns the earlier event's id when the key was taken.
pub async fn claim_alert_key(tx: &mut Tx, business_id: &str, key: &str, event_id: i64) -> sqlx::Result<Option<i64>> {
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO alert_keys (business_id, key, event_id) VALUES ($1, $2, $3) ON CONFLICT (business_id, key) DO NOTHING RETURNING event_id",
    )
    .bind(business_id)
    .bind(key)
    .bind(event_id)
    .fetch_optional(&mut **tx)
    .await?;
    if inserted.is_some() {
        return Ok(None);
    }
    sqlx::query_scalar("SELECT event_id FROM alert_keys WHERE business_id = $1 AND key = $2")
        .bind(business_id)
        .bind(key)
        .fetch_one(&mut **tx)
        .await
        .map(Some)
}

pub async fn usage_alerted(tx: &mut Tx, business_id: &str, period_start: &str) -> sqlx::Result<Vec<u8>> {
    let rows: Vec<i64> =
        sqlx::query_scalar("SELECT threshold FROM usage_alerts WHERE business_id = $1 AND period_start = $2")
            .bind(business_id)
            .bind(period_start)
            .fetch_all(&mut **tx)
            .await?;
    Ok(rows.into_iter().filter_map(|t| u8::try_from(t).ok()).collect())
}

pub async fn record_usage_alert(
    tx: &mut Tx,
    business_id: &str,
    period_start: &str,
    threshold: u8,
    event_id: i64,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO usage_alerts (business_id, period_start, threshold, event_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
        .bind(business_id)
        .bind(period_start)
        .bind(i64::from(threshold))
        .bind(event_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
    pub type_name: String,
    pub payload: String,
    pub state: String,
    pub note: Option<String>,
    pub usage_threshold: Option<i64>,
    pub received_at_ms: i64,
}

pub async fn get(pool: &SqlitePool, id: i64) -> sqlx::Result<Option<EventRow>> {
    sqlx::query_as(
        "SELECT id, type AS type_name, payload, state, note, usage_threshold, received_at_ms FROM events WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The newest events of a business, newest first.
pub async fn recent(pool: &SqlitePool, business_id: &str, limit: i64) -> sqlx::Result<Vec<EventRow>> {
    sqlx::query_as(
        "SELECT id, type AS type_name, payload, state, note, usage_threshold, received_at_ms FROM events
         WHERE business_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(business_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// The newest events of some types, newest first (billing page).
pub async fn recent_of_type(
    pool: &SqlitePool,
    business_id: &str,
    type_name: &str,
    limit: i64,
) -> sqlx::Result<Vec<EventRow>> {
    sqlx::query_as(
        "SELECT id, type AS type_name, payload, state, note, usage_threshold, received_at_ms FROM events
         WHERE business_id = $1 AND type = $2 ORDER BY id DESC LIMIT $3",
    )
    .bind(business_id)
    .bind(type_name)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Stores a test event (the settings page's "Send a test alert") ready for the dispatcher.
pub async fn insert_test(pool: &SqlitePool, business_id: &str, payload: &str, now_ms: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO events (business_id, webhook_id, type, payload, received_at_ms) VALUES ($1, $2, 'test', $3, $4) RETURNING id",
    )
    .bind(business_id)
    .bind(format!("test_{}", crate::tokens::random_token()))
    .bind(payload)
    .bind(now_ms)
    .fetch_one(pool)
    .await
}
