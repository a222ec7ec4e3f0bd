//! Keeps the database from growing forever: events (with their deliveries, inbox rows and
//! webhook ids) older than the retention are deleted in small batches, each its own short write
//! turn, so webhooks and sends never wait long behind it. The audit log has its own, longer
//! retention. Leads stay: each keeps its latest event, which the Leads page shows it from.
use super::Write;

/// Rows deleted per write turn.
pub const BATCH: i64 = 500;

/// What retention keeps, as cut-off times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    /// Events received before this (unix ms) go, with what refers to them.
    pub events_before_ms: i64,
    /// Audit entries made before this (unix seconds) go.
    pub audit_before: i64,
}

impl Cutoffs {
    /// From the settings' days, at `now_ms`.
    pub fn at(now_ms: i64, retention_days: u32, audit_days: u32) -> Self {
        let day_ms = 24 * 3_600_000;
        Self {
            events_before_ms: now_ms - i64::from(retention_days) * day_ms,
            audit_before: now_ms / 1000 - i64::from(audit_days) * 24 * 3600,
        }
    }
}

/// What one turn deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    pub events: u64,
    pub deliveries: u64,
    pub inbox: u64,
    pub texts_back: u64,
    pub audit: u64,
}

impl Deleted {
    pub fn add(&mut self, other: Deleted) {
        self.events += other.events;
        self.deliveries += other.deliveries;
        self.inbox += other.inbox;
        self.texts_back += other.texts_back;
        self.audit += other.audit;
    }

    pub fn total(&self) -> u64 {
        self.events + self.deliveries + self.inbox + self.texts_back + self.audit
    }
}

/// Where a pass has got to among the old events: the last one looked at, so the ones kept (a
/// lead's latest, one with a delivery still pending) are not looked at again.
pub type Cursor = (i64, i64);

/// One batch: up to [`BATCH`] old events with their deliveries, inbox rows, dedupe keys and
/// usage marks, then old inbox rows, texts back and audit entries. Answers what it deleted,
/// where the next batch starts, and whether there may be more.
pub async fn prune(w: &mut Write, cutoffs: Cutoffs, cursor: Cursor) -> sqlx::Result<(Deleted, Cursor, bool)> {
    let candidates: Vec<(i64, i64, bool)> = on!(w, |cx| sqlx::query_as(
        "SELECT e.id, e.received_at_ms,
                EXISTS (SELECT 1 FROM leads l WHERE l.last_event_id = e.id)
                OR EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.status = 'pending')
         FROM events e
         WHERE e.received_at_ms < $1 AND (e.received_at_ms > $2 OR (e.received_at_ms = $2 AND e.id > $3))
         ORDER BY e.received_at_ms, e.id LIMIT $4",
    )
    .bind(cutoffs.events_before_ms)
    .bind(cursor.0)
    .bind(cursor.1)
    .bind(BATCH)
    .fetch_all(cx)
    .await)?;
    let next = candidates.last().map_or(cursor, |(id, at, _)| (*at, *id));
    let ids: Vec<i64> = candidates.iter().filter(|(_, _, kept)| !kept).map(|(id, _, _)| *id).collect();
    let mut deleted = Deleted::default();
    if !ids.is_empty() {
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        execute!(
            w,
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE escalations SET event_id = NULL WHERE event_id IN ({list})"
            )))
        )?;
        deleted.inbox += execute!(
            w,
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM notifications WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_id IN ({list}))"
            )))
        )?;
        deleted.deliveries += execute!(
            w,
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM deliveries WHERE event_id IN ({list})")))
        )?;
        execute!(w, sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM alert_keys WHERE event_id IN ({list})"))))?;
        execute!(w, sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM usage_alerts WHERE event_id IN ({list})"))))?;
        deleted.events +=
            execute!(w, sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM events WHERE id IN ({list})"))))?;
    }
    let before_s = cutoffs.events_before_ms / 1000;
    deleted.inbox += execute!(
        w,
        sqlx::query(
            "DELETE FROM notifications WHERE id IN
                 (SELECT id FROM notifications WHERE created_at < $1 ORDER BY created_at LIMIT $2)",
        )
        .bind(before_s)
        .bind(BATCH)
    )?;
    deleted.texts_back += execute!(
        w,
        sqlx::query(
            "DELETE FROM sms_inbound WHERE id IN
                 (SELECT id FROM sms_inbound WHERE received_at_ms < $1 ORDER BY received_at_ms LIMIT $2)",
        )
        .bind(cutoffs.events_before_ms)
        .bind(BATCH)
    )?;
    deleted.audit += execute!(
        w,
        sqlx::query("DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < $1 ORDER BY at LIMIT $2)")
            .bind(cutoffs.audit_before)
            .bind(BATCH)
    )?;
    let more = candidates.len() as i64 == BATCH
        || deleted.inbox >= BATCH as u64
        || deleted.texts_back >= BATCH as u64
        || deleted.audit >= BATCH as u64;
    Ok((deleted, next, more))
}

/// Every batch due at `now_ms`, each its own write turn, with a pause between them so other
/// writes go first. Answers what was deleted.
pub async fn prune_all(db: &super::Db, cutoffs: Cutoffs, pause: std::time::Duration) -> anyhow::Result<Deleted> {
    let mut total = Deleted::default();
    let mut cursor: Cursor = (i64::MIN, i64::MIN);
    loop {
        let at = cursor;
        let (deleted, next, more) = db.write(move |w| Box::pin(prune(w, cutoffs, at))).await?;
        total.add(deleted);
        cursor = next;
        if !more {
            return Ok(total);
        }
        tokio::time::sleep(pause).await;
    }
}
