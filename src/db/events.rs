//! Events as stored, and the readers of them. Events are written by the ingest writer only
//! (`db::ingest`).
use super::Link;

use super::deliveries::LogPage;
use crate::domain::delivery::EventState;
use crate::domain::events::{Event, EventType};

/// What became of one webhook delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    New(i64),
    /// The same webhook id was stored before, as this event.
    Duplicate(i64),
}

/// An event row. `event()` is the one way to read its payload.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
    pub business_id: String,
    pub type_name: String,
    payload: String,
    state: String,
    pub note: Option<String>,
    pub usage_threshold: Option<i64>,
    pub received_at_ms: i64,
}

impl EventRow {
    /// The checked event this row holds.
    pub fn event(&self) -> Result<Event, serde_json::Error> {
        Event::from_stored(&self.type_name, &self.payload)
    }

    pub fn state(&self) -> EventState {
        EventState::from_code(&self.state).unwrap_or(EventState::Received)
    }

    pub fn usage_threshold(&self) -> Option<u8> {
        self.usage_threshold.and_then(|t| u8::try_from(t).ok())
    }
}

const COLUMNS: &str = "id, business_id, type AS type_name, payload, state, note, usage_threshold, received_at_ms";

/// Some events by id, for the dispatcher's retries.
pub async fn by_ids(conn: &mut impl Link, ids: &[i64]) -> sqlx::Result<Vec<EventRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    on!(conn, |cx| {
        let mut query = sqlx::QueryBuilder::new(format!("SELECT {COLUMNS} FROM events WHERE id IN ("));
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        query.push(")");
        query.build_query_as().fetch_all(cx).await
    })
}

/// The id under which a webhook id was stored for a business.
pub async fn id_of_webhook(conn: &mut impl Link, business_id: &str, webhook_id: &str) -> sqlx::Result<i64> {
    on!(conn, |cx| sqlx::query_scalar("SELECT id FROM events WHERE business_id = $1 AND webhook_id = $2")
        .bind(business_id)
        .bind(webhook_id)
        .fetch_one(cx)
        .await)
}

/// Some of a business's events (one page of the alert log), newest first.
pub async fn in_business(conn: &mut impl Link, business_id: &str, ids: &[i64]) -> sqlx::Result<Vec<EventRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    on!(conn, |cx| {
        let mut query = sqlx::QueryBuilder::new(format!("SELECT {COLUMNS} FROM events WHERE business_id = "));
        query.push_bind(business_id).push(" AND id IN (");
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        query.push(") ORDER BY id DESC");
        query.build_query_as().fetch_all(cx).await
    })
}

/// A page of a business's events (the alert log without a filter), at most `limit`, in the order
/// of the scan (newest first; oldest first for `After`).
pub async fn page(conn: &mut impl Link, business_id: &str, page: LogPage, limit: i64) -> sqlx::Result<Vec<i64>> {
    let sql = match page {
        LogPage::After(_) => "SELECT id FROM events WHERE business_id = $1 AND id > $2 ORDER BY id ASC LIMIT $3",
        _ => "SELECT id FROM events WHERE business_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
    };
    let bound = match page {
        LogPage::Newest => i64::MAX,
        LogPage::Before(id) | LogPage::After(id) => id,
    };
    on!(conn, |cx| sqlx::query_scalar(sql).bind(business_id).bind(bound).bind(limit).fetch_all(cx).await)
}

/// The newest events of a business, newest first.
pub async fn recent(conn: &mut impl Link, business_id: &str, limit: i64) -> sqlx::Result<Vec<EventRow>> {
    on!(conn, |cx| sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM events WHERE business_id = $1 ORDER BY id DESC LIMIT $2"
    )))
    .bind(business_id)
    .bind(limit)
    .fetch_all(cx)
    .await)
}

/// The newest events of one type, newest first (billing page).
pub async fn recent_of_type(
    conn: &mut impl Link,
    business_id: &str,
    event_type: EventType,
    limit: i64,
) -> sqlx::Result<Vec<EventRow>> {
    on!(conn, |cx| sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM events WHERE business_id = $1 AND type = $2 ORDER BY id DESC LIMIT $3"
    )))
    .bind(business_id)
    .bind(event_type.name())
    .bind(limit)
    .fetch_all(cx)
    .await)
}

/// The highest usage threshold already alerted for a business in a billing period.
pub async fn highest_usage_alerted(
    conn: &mut impl Link,
    business_id: &str,
    period_start: &str,
) -> sqlx::Result<Option<u8>> {
    let highest: Option<i64> = on!(conn, |cx| sqlx::query_scalar(
        "SELECT max(threshold) FROM usage_alerts WHERE business_id = $1 AND period_start = $2"
    )
    .bind(business_id)
    .bind(period_start)
    .fetch_one(cx)
    .await)?;
    Ok(highest.and_then(|t| u8::try_from(t).ok()))
}

/// The first event a business received at or after `since_ms`, if any (the start of a window).
pub async fn first_since(conn: &mut impl Link, business_id: &str, since_ms: i64) -> sqlx::Result<Option<i64>> {
    on!(conn, |cx| sqlx::query_scalar(
        "SELECT id FROM events WHERE business_id = $1 AND received_at_ms >= $2 ORDER BY received_at_ms LIMIT 1",
    )
    .bind(business_id)
    .bind(since_ms)
    .fetch_optional(cx)
    .await)
}

/// True once Kai (not a test alert) has sent the business an event.
pub async fn heard_from_kai(conn: &mut impl Link, business_id: &str) -> sqlx::Result<bool> {
    let found: Option<i64> =
        on!(conn, |cx| sqlx::query_scalar("SELECT id FROM events WHERE business_id = $1 AND type <> $2 LIMIT 1")
            .bind(business_id)
            .bind(EventType::Test.name())
            .fetch_optional(cx)
            .await)?;
    Ok(found.is_some())
}
