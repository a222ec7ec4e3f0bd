//! One row per event × person × channel: sent, skipped and why, failed and why, or pending.
//! Rows are written at ingest (`db::ingest`); outcomes arrive in batches from the dispatcher.
use sqlx::QueryBuilder;

use super::{Conn, Link};

use super::Write;
use crate::domain::Channel;
use crate::domain::alert_log::{LogFilter, Whom};
use crate::domain::delivery::DeliveryStatus;
use crate::domain::routing::{HoldKind, SkipCode};
use crate::domain::sms_status::CarrierStatus;

/// A delivery claimed for sending by this process, with a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub id: i64,
    pub event_id: i64,
    pub business_id: String,
    pub user_id: Option<i64>,
    pub person_name: Option<String>,
    /// The person a business delivery also reaches (their claim link goes in it).
    pub claim_user_id: Option<i64>,
    pub channel: Channel,
    pub address: String,
    /// Tries so far, this one included.
    pub attempts: i64,
    pub created_at_ms: i64,
    /// Held for quiet hours until then: released with the others held with it, in one message.
    pub held_until_ms: Option<i64>,
    /// Why it was held (`None` for rows held before that was stored), and its release time as
    /// the person reads it ("07:00").
    pub held_for: Option<HoldKind>,
    pub held_at: Option<String>,
}

#[derive(sqlx::FromRow)]
pub(super) struct ClaimedRow {
    pub id: i64,
    pub event_id: i64,
    pub business_id: String,
    pub user_id: Option<i64>,
    pub person_name: Option<String>,
    pub claim_user_id: Option<i64>,
    pub channel: Option<String>,
    pub address: Option<String>,
    pub attempts: i64,
    pub created_at_ms: i64,
    pub held_until_ms: Option<i64>,
    pub held_for: Option<String>,
    pub held_at: Option<String>,
}

impl ClaimedRow {
    /// Rows without a channel or an address were never to be sent; they are left out.
    pub(super) fn into_claimed(self) -> Option<Claimed> {
        Some(Claimed {
            channel: Channel::from_code(self.channel.as_deref()?)?,
            address: self.address?,
            id: self.id,
            event_id: self.event_id,
            business_id: self.business_id,
            user_id: self.user_id,
            person_name: self.person_name,
            claim_user_id: self.claim_user_id,
            attempts: self.attempts,
            created_at_ms: self.created_at_ms,
            held_until_ms: self.held_until_ms,
            held_for: self.held_for.as_deref().and_then(HoldKind::from_code),
            held_at: self.held_at,
        })
    }
}

pub(super) const CLAIMED_COLUMNS: &str =
    "id, event_id, business_id, user_id, person_name, claim_user_id, channel, address, attempts, created_at_ms,
     held_until_ms, held_for, held_at";

/// Claims up to `limit` deliveries that are due — a retry whose time came, one stored unclaimed
/// while the dispatcher was behind, or one whose lease ran out because the process that held it
/// stopped — each with a lease until `now + lease_ms`. `due_ms` is the time due work is judged
/// by (the dispatcher's clock, which tests move on); leases always run on the real `now_ms`, so
/// a clock moved on never takes another instance's deliveries in flight.
pub async fn claim_due(
    w: &mut Write,
    due_ms: i64,
    now_ms: i64,
    lease_ms: i64,
    limit: i64,
) -> sqlx::Result<Vec<Claimed>> {
    // PostgreSQL: instances claiming at once pass over each other's rows instead of waiting.
    let skip_locked = match w.conn() {
        Conn::Lite(_) => "",
        Conn::Pg(_) => " FOR UPDATE SKIP LOCKED",
    };
    let sql = format!(
        "UPDATE deliveries SET lease_until_ms = $1, attempts = attempts + 1
         WHERE id IN (
             SELECT id FROM deliveries
             WHERE status = 'pending' AND next_attempt_ms <= $2 AND (lease_until_ms IS NULL OR lease_until_ms <= $4)
             ORDER BY next_attempt_ms LIMIT $3{skip_locked})
         RETURNING {CLAIMED_COLUMNS}"
    );
    let rows: Vec<ClaimedRow> = on!(w, |cx| sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(now_ms + lease_ms)
        .bind(due_ms)
        .bind(limit)
        .bind(now_ms)
        .fetch_all(cx)
        .await)?;
    Ok(rows.into_iter().filter_map(ClaimedRow::into_claimed).collect())
}

/// When the next pending delivery falls due (a retry, or a lease running out), if any.
pub async fn next_due_ms(conn: &mut impl Link) -> sqlx::Result<Option<i64>> {
    // The larger of two values: SQLite's two-argument max(), PostgreSQL's greatest().
    let sql = match conn.conn() {
        Conn::Lite(_) => {
            "SELECT min(max(next_attempt_ms, coalesce(lease_until_ms, 0))) FROM deliveries WHERE status = 'pending'"
        }
        Conn::Pg(_) => {
            "SELECT min(greatest(next_attempt_ms, coalesce(lease_until_ms, 0))) FROM deliveries WHERE status = 'pending'"
        }
    };
    on!(conn, |cx| sqlx::query_scalar(sql).fetch_one(cx).await)
}

/// What became of a delivery that was tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent {
        id: i64,
        provider_id: Option<String>,
        /// SMS segments the text took.
        segments: Option<i64>,
    },
    /// A passing failure: try again at `at_ms`.
    Retry { id: i64, at_ms: i64, error: String },
    /// The end: `Failed` (refused for good) or `Dead` (gave up retrying).
    Ended { id: i64, status: DeliveryStatus, error: String },
    /// Went out inside another delivery's message (the summary at the end of quiet hours);
    /// `note` says which ("sent in the 07:00 summary").
    Merged { id: i64, note: String },
}

/// Writes a batch of outcomes: one statement per kind of outcome. Only pending deliveries
/// change, so an outcome recorded twice (a lease that ran out mid-send) is harmless.
pub async fn apply(w: &mut Write, outcomes: &[Outcome], now_ms: i64) -> sqlx::Result<()> {
    let sent: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Sent { id, provider_id, segments } => Some((*id, provider_id.as_deref(), *segments)),
            _ => None,
        })
        .collect();
    for chunk in sent.chunks(1000) {
        on!(w, |cx| {
            let mut q = QueryBuilder::new("WITH v(id, provider_id, segments) AS (");
            q.push_values(chunk, |mut row, (id, provider, segments)| {
                row.push_bind(*id).push_bind(*provider).push_bind(*segments);
            });
            q.push(") UPDATE deliveries SET status = 'sent', provider_id = v.provider_id, segments = v.segments, sent_at_ms = ")
                .push_bind(now_ms)
                .push(", lease_until_ms = NULL, reason = NULL FROM v WHERE deliveries.id = v.id AND deliveries.status = 'pending'");
            q.build().execute(cx).await.map(|done| done.rows_affected())
        })?;
    }
    let retries: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Retry { id, at_ms, error } => Some((*id, *at_ms, error.as_str())),
            _ => None,
        })
        .collect();
    for chunk in retries.chunks(1000) {
        on!(w, |cx| {
            let mut q = QueryBuilder::new("WITH v(id, at_ms, reason) AS (");
            q.push_values(chunk, |mut row, (id, at, reason)| {
                row.push_bind(*id).push_bind(*at).push_bind(*reason);
            });
            q.push(
                ") UPDATE deliveries SET next_attempt_ms = v.at_ms, lease_until_ms = NULL, reason = v.reason
                 FROM v WHERE deliveries.id = v.id AND deliveries.status = 'pending'",
            );
            q.build().execute(cx).await.map(|done| done.rows_affected())
        })?;
    }
    let ended: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Ended { id, status, error } => Some((*id, status.code(), error.as_str())),
            _ => None,
        })
        .collect();
    for chunk in ended.chunks(1000) {
        on!(w, |cx| {
            let mut q = QueryBuilder::new("WITH v(id, status, reason) AS (");
            q.push_values(chunk, |mut row, (id, status, reason)| {
                row.push_bind(*id).push_bind(*status).push_bind(*reason);
            });
            q.push(
                ") UPDATE deliveries SET status = v.status, reason = v.reason, lease_until_ms = NULL
                 FROM v WHERE deliveries.id = v.id AND deliveries.status = 'pending'",
            );
            q.build().execute(cx).await.map(|done| done.rows_affected())
        })?;
    }
    let merged: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Merged { id, note } => Some((*id, note.as_str())),
            _ => None,
        })
        .collect();
    for chunk in merged.chunks(1000) {
        on!(w, |cx| {
            let mut q = QueryBuilder::new("WITH v(id, reason) AS (");
            q.push_values(chunk, |mut row, (id, reason)| {
                row.push_bind(*id).push_bind(*reason);
            });
            q.push(") UPDATE deliveries SET status = 'sent', reason = v.reason, lease_until_ms = NULL, sent_at_ms = ")
                .push_bind(now_ms)
                .push(" FROM v WHERE deliveries.id = v.id AND deliveries.status = 'pending'");
            q.build().execute(cx).await.map(|done| done.rows_affected())
        })?;
    }
    Ok(())
}

/// Puts a delivery that was given up or refused back in the queue (the Retry button).
pub async fn retry_ended(w: &mut Write, business_id: &str, id: i64, now_ms: i64) -> sqlx::Result<bool> {
    let done = on!(w, |cx| {
        sqlx::query(
        "UPDATE deliveries SET status = 'pending', next_attempt_ms = $1, created_at_ms = $1, lease_until_ms = NULL, attempts = 0
         WHERE id = $2 AND business_id = $3 AND status IN ('dead', 'failed')",
    )
    .bind(now_ms)
    .bind(id)
    .bind(business_id)
    .execute(cx)
    .await.map(|done| done.rows_affected())
    })?;
    Ok(done == 1)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: i64,
    pub event_id: i64,
    pub user_id: Option<i64>,
    pub person_name: Option<String>,
    channel: Option<String>,
    pub address: Option<String>,
    status: String,
    pub reason: Option<String>,
    skip: Option<String>,
    pub attempts: i64,
    pub next_attempt_ms: Option<i64>,
    pub provider_id: Option<String>,
    pub sent_at_ms: Option<i64>,
    carrier_status: Option<String>,
    /// The carrier's or provider's error code, when a text did not arrive.
    pub carrier_error: Option<i64>,
    /// Held for quiet hours until then (unix ms).
    pub held_until_ms: Option<i64>,
}

impl DeliveryRow {
    /// Where a text is, as the carrier last reported it.
    pub fn carrier_status(&self) -> Option<CarrierStatus> {
        self.carrier_status.as_deref().and_then(CarrierStatus::from_code)
    }

    /// `None` for the one decision that covers every channel ("new-lead alerts are off").
    pub fn channel(&self) -> Option<Channel> {
        self.channel.as_deref().and_then(Channel::from_code)
    }

    pub fn status(&self) -> DeliveryStatus {
        DeliveryStatus::from_code(&self.status).unwrap_or(DeliveryStatus::Pending)
    }

    /// The kind of reason a skipped decision has (`None` when unknown to this version).
    pub fn skip(&self) -> Option<SkipCode> {
        self.skip.as_deref().and_then(SkipCode::from_code)
    }
}

/// The columns of a `DeliveryRow`.
const ROW_COLUMNS: &str = "id, event_id, user_id, person_name, channel, address, status, reason, skip, attempts,
    next_attempt_ms, provider_id, sent_at_ms, carrier_status, carrier_error, held_until_ms";

/// Records what the carrier says of the text the provider knows as `sid`, unless a state as far
/// along or further was heard already (callbacks come out of order and more than once). False
/// when nothing changed: an older or repeated state, or a message that is not ours.
pub async fn record_carrier_status(
    w: &mut Write,
    sid: &str,
    status: CarrierStatus,
    error: Option<i64>,
    now_ms: i64,
) -> sqlx::Result<bool> {
    let done = execute!(
        w,
        sqlx::query(
            "UPDATE deliveries SET carrier_status = $2, carrier_error = coalesce($3, carrier_error), carrier_at_ms = $4
             WHERE provider_id = $1 AND channel = 'sms' AND provider_id IS NOT NULL
               AND (CASE carrier_status WHEN 'queued' THEN 1 WHEN 'sending' THEN 2 WHEN 'sent' THEN 3
                    WHEN 'delivered' THEN 4 WHEN 'undelivered' THEN 4 WHEN 'failed' THEN 4 ELSE 0 END) < $5",
        )
        .bind(sid)
        .bind(status.code())
        .bind(error)
        .bind(now_ms)
        .bind(status.rank())
    )?;
    Ok(done > 0)
}

/// The decisions about some events of a business, at most `limit`, oldest first per event.
pub async fn for_events(
    conn: &mut impl Link,
    business_id: &str,
    first_event: i64,
    last_event: i64,
    limit: i64,
) -> sqlx::Result<Vec<DeliveryRow>> {
    on!(conn, |cx| sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ROW_COLUMNS} FROM deliveries
         WHERE event_id BETWEEN $2 AND $3 AND business_id = $1 ORDER BY event_id DESC, id LIMIT $4"
    )))
    .bind(business_id)
    .bind(first_event)
    .bind(last_event)
    .bind(limit)
    .fetch_all(cx)
    .await)
}

/// How many alerts were sent for a business's events from `first_event` on.
pub async fn sent_from(conn: &mut impl Link, business_id: &str, first_event: i64) -> sqlx::Result<i64> {
    on!(conn, |cx| sqlx::query_scalar(
        "SELECT count(*) FROM deliveries WHERE business_id = $1 AND event_id >= $2 AND status = 'sent'"
    )
    .bind(business_id)
    .bind(first_event)
    .fetch_one(cx)
    .await)
}

/// The newest deliveries that failed or were given up, at most `limit`.
pub async fn needing_attention(conn: &mut impl Link, business_id: &str, limit: i64) -> sqlx::Result<Vec<DeliveryRow>> {
    on!(conn, |cx| sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ROW_COLUMNS} FROM deliveries
         WHERE business_id = $1 AND status IN ('failed', 'dead') ORDER BY id DESC LIMIT $2"
    )))
    .bind(business_id)
    .bind(limit)
    .fetch_all(cx)
    .await)
}

/// The decisions about some of a business's events (one page of the alert log), at most `limit`.
pub async fn for_event_ids(
    conn: &mut impl Link,
    business_id: &str,
    event_ids: &[i64],
    limit: i64,
) -> sqlx::Result<Vec<DeliveryRow>> {
    if event_ids.is_empty() {
        return Ok(Vec::new());
    }
    on!(conn, |cx| {
        let mut q = QueryBuilder::new(format!("SELECT {ROW_COLUMNS} FROM deliveries WHERE business_id = "));
        q.push_bind(business_id).push(" AND event_id IN (");
        let mut list = q.separated(", ");
        for id in event_ids {
            list.push_bind(*id);
        }
        q.push(") ORDER BY event_id DESC, id LIMIT ").push_bind(limit);
        q.build_query_as().fetch_all(cx).await
    })
}

/// Where a page of the alert log starts: the newest events, or those older or newer than an
/// event already shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogPage {
    Newest,
    Before(i64),
    After(i64),
}

impl LogPage {
    /// The condition on `event_id`, the order of the scan, and the bound.
    fn scan(self) -> (&'static str, &'static str, i64) {
        match self {
            Self::Newest => ("<", "DESC", i64::MAX),
            Self::Before(id) => ("<", "DESC", id),
            Self::After(id) => (">", "ASC", id),
        }
    }
}

/// The events of one page of the alert log with a decision the filter matches, at most `limit`,
/// in the order of the scan (newest first; oldest first for `After`). A decision that covers
/// every channel (an alert type off for the business) is about everyone, so it matches any
/// person and any channel. Each arm reads one index, in order, and stops at `limit`.
pub async fn log_events(
    conn: &mut impl Link,
    business_id: &str,
    filter: &LogFilter,
    page: LogPage,
    limit: i64,
) -> sqlx::Result<Vec<i64>> {
    let channel = filter.channel.map(Channel::code);
    let statuses = filter.outcome.map(|o| o.statuses().map(DeliveryStatus::code));
    let (first, second) = (statuses.map(|s| s[0]), statuses.map(|s| s[1]));
    let (cmp, order, bound) = page.scan();
    let matches = format!(
        "event_id {cmp} $3 AND ($4 IS NULL OR channel = $4 OR channel IS NULL) AND ($5 IS NULL OR status IN ($5, $6))"
    );
    let sql = match filter.person {
        Some(Whom::Person(_)) => format!(
            "SELECT event_id FROM (
                 SELECT DISTINCT event_id FROM deliveries WHERE business_id = $1 AND user_id = $2 AND {matches}
                 ORDER BY event_id {order} LIMIT $7) AS theirs
             UNION
             SELECT event_id FROM (
                 SELECT DISTINCT event_id FROM deliveries
                 WHERE business_id = $1 AND user_id IS NULL AND channel IS NULL AND {matches}
                 ORDER BY event_id {order} LIMIT $7) AS everyones
             ORDER BY event_id {order} LIMIT $7"
        ),
        Some(Whom::Business) => format!(
            "SELECT DISTINCT event_id FROM deliveries WHERE business_id = $1 AND user_id IS NULL AND {matches}
             ORDER BY event_id {order} LIMIT $7"
        ),
        None => format!(
            "SELECT DISTINCT event_id FROM deliveries WHERE business_id = $1 AND {matches}
             ORDER BY event_id {order} LIMIT $7"
        ),
    };
    let user_id = match filter.person {
        Some(Whom::Person(id)) => Some(id),
        _ => None,
    };
    on!(conn, |cx| sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(business_id)
        .bind(user_id)
        .bind(bound)
        .bind(channel)
        .bind(first)
        .bind(second)
        .bind(limit)
        .fetch_all(cx)
        .await)
}

/// What a claim link's delivery points at: its business, its person, and the lead of its event
/// (none for an alert that is not about a lead).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimTarget {
    pub business_id: String,
    pub user_id: Option<i64>,
    pub lead_id: Option<String>,
}

pub async fn claim_target(conn: &mut impl Link, delivery_id: i64) -> sqlx::Result<Option<ClaimTarget>> {
    on!(conn, |cx| {
        sqlx::query_as(
            "SELECT d.business_id, coalesce(d.user_id, d.claim_user_id) AS user_id, e.lead_id
         FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id = $1",
        )
        .bind(delivery_id)
        .fetch_optional(cx)
        .await
    })
}

/// Ends what quiet hours still hold for a person who left the recipients (or the team): not
/// sent, with `why`. Answers how many.
pub async fn drop_held(w: &mut Write, business_id: &str, user_id: i64, why: &str) -> sqlx::Result<u64> {
    execute!(
        w,
        sqlx::query(
            "UPDATE deliveries SET status = 'skipped', skip = 'not_recipient', reason = $3, next_attempt_ms = NULL
             WHERE user_id = $1 AND business_id = $2 AND status = 'pending' AND held_until_ms IS NOT NULL
               AND attempts = 0 AND channel IN ('email', 'sms')",
        )
        .bind(user_id)
        .bind(business_id)
        .bind(why)
    )
}

/// Moves what quiet hours hold for a person to a new end (`until_ms`: now, when their new quiet
/// hours no longer cover this moment; `at`: that end as they read it), with the reason in
/// words. Their daily summary keeps its own time.
pub async fn rehold(
    w: &mut Write,
    business_id: &str,
    user_id: i64,
    until_ms: i64,
    at: Option<&str>,
    reason: &str,
) -> sqlx::Result<u64> {
    execute!(
        w,
        sqlx::query(
            "UPDATE deliveries SET next_attempt_ms = $3, held_until_ms = $3, reason = $4, held_for = 'quiet', held_at = $5
             WHERE user_id = $1 AND business_id = $2 AND status = 'pending' AND held_until_ms IS NOT NULL
               AND attempts = 0 AND channel IN ('email', 'sms') AND coalesce(held_for, 'quiet') <> 'digest'",
        )
        .bind(user_id)
        .bind(business_id)
        .bind(until_ms)
        .bind(reason)
        .bind(at)
    )
}

/// What a person's daily summary holds after they changed it: moved to the next summary
/// (`Some((until_ms, at, reason))`), or, with the summary off, ended as below their threshold
/// with `reason`. Answers how many.
pub async fn reschedule_digest(
    w: &mut Write,
    business_id: &str,
    user_id: i64,
    next: Option<(i64, &str)>,
    reason: &str,
) -> sqlx::Result<u64> {
    let held = "user_id = $1 AND business_id = $2 AND channel = 'email' AND status = 'pending'
        AND held_until_ms IS NOT NULL AND held_for = 'digest' AND attempts = 0";
    match next {
        Some((until_ms, at)) => execute!(
            w,
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE deliveries SET next_attempt_ms = $3, held_until_ms = $3, held_at = $4, reason = $5 WHERE {held}"
            )))
            .bind(user_id)
            .bind(business_id)
            .bind(until_ms)
            .bind(at)
            .bind(reason)
        ),
        None => execute!(
            w,
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE deliveries SET status = 'skipped', skip = 'below_threshold', reason = $3,
                     next_attempt_ms = NULL WHERE {held}"
            )))
            .bind(user_id)
            .bind(business_id)
            .bind(reason)
        ),
    }
}

/// Deliveries a queue count goes up to (a count past it reads as this many).
pub const QUEUE_COUNTED: i64 = 100_000;

/// The queue at `now_ms`, for `/metrics`: deliveries due (to send now or being sent), when the
/// oldest of them fell due (unix ms), and those waiting for a later time (held back for quiet
/// hours or a summary, or a retry's turn). Counts stop at [`QUEUE_COUNTED`].
pub async fn queue(conn: &mut impl Link, now_ms: i64) -> sqlx::Result<(i64, Option<i64>, i64)> {
    on!(conn, |cx| sqlx::query_as(
        "SELECT (SELECT count(*) FROM (SELECT 1 FROM deliveries
                     WHERE status = 'pending' AND next_attempt_ms <= $1 LIMIT $2) due),
                (SELECT min(next_attempt_ms) FROM deliveries WHERE status = 'pending' AND next_attempt_ms <= $1),
                (SELECT count(*) FROM (SELECT 1 FROM deliveries
                     WHERE status = 'pending' AND next_attempt_ms > $1 LIMIT $2) later)",
    )
    .bind(now_ms)
    .bind(QUEUE_COUNTED)
    .fetch_one(cx)
    .await)
}

/// Gives back deliveries this process took and never started (it is stopping): their leases
/// end and their try is not counted, so the next start, or another instance, takes them at once.
pub async fn release(w: &mut Write, ids: &[i64]) -> sqlx::Result<u64> {
    let mut released = 0;
    for chunk in ids.chunks(1000) {
        let list = chunk.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        released += execute!(
            w,
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE deliveries SET lease_until_ms = NULL,
                     attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END
                 WHERE id IN ({list}) AND status = 'pending'"
            )))
        )?;
    }
    Ok(released)
}
