//! A year of a busy business's history written straight into the database in bulk: teammates
//! who are recipients, leads with updates, their events and delivery decisions, an inbox, a
//! year of usage reports, an escalation policy with its timers, and quiet hours and daily
//! summaries for a third of the teammates. Used by the tests that check pages stay cheap at size, and by
//! `examples/bigbusiness.rs`.
use kaicalls_notify::clock::unix_now;
use kaicalls_notify::db::{Conn, Db, Link};

/// What to add.
#[derive(Debug, Clone, Copy)]
pub struct History {
    pub teammates: i64,
    pub leads: i64,
    /// Deliveries (decisions) recorded per lead event.
    pub deliveries_per_event: i64,
    /// In-app notifications in the owner's inbox.
    pub inbox: i64,
}

impl History {
    /// The size of a real business after a year: 15 teammates, 10,000 leads (half of them
    /// updated once), about 100,000 deliveries, 5,000 inbox rows.
    pub const YEAR: History = History { teammates: 15, leads: 10_000, deliveries_per_event: 7, inbox: 5_000 };
}

const YEAR_SECS: i64 = 365 * 24 * 3600;

/// The statements below all start from these values (`WITH p(...)`), bound once.
const PARAMS: &str = "p(business, leads, start, now, teammates, per_event, inbox, owner) AS
    (SELECT $1, $2, $3, $4, $5, $6, $7, $8)";

const STATEMENTS: [&str; 8] = [
    // Teammates, each a recipient with their own threshold; a third of them take texts.
    "n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n, p WHERE i < p.teammates)
     INSERT INTO users (business_id, name, email, phone, role, password_hash, created_at)
     SELECT p.business, 'Teammate ' || i, 'teammate' || i || '-' || p.business || '@history.test',
            '+1555555' || printf('%04d', i), 'member', NULL, p.start FROM n, p",
    "n(i) AS (SELECT 0)
     INSERT INTO recipients (business_id, user_id, email_enabled, sms_enabled, in_app_enabled, lead_created,
         lead_updated, usage_alerts, billing_alerts, min_lead_score, created_at)
     SELECT p.business, u.id, 1, u.id % 3 = 0, 1, 1, u.id % 2, 1, 1, (u.id * 7) % 90, p.start FROM users u, p
     WHERE u.business_id = p.business AND u.email LIKE '%@history.test'",
    // Leads over the year, every other one updated a day later, stored in the order they came
    // in (as the webhook stores them: event ids follow time).
    "n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n, p WHERE i < p.leads),
     at(i, ms) AS (SELECT i, (p.start + i * ((p.now - p.start) / p.leads)) * 1000 FROM n, p),
     came(i, kind, ms) AS (
         SELECT i, 'created', ms FROM at
         UNION ALL SELECT i, 'updated', ms + 86400000 FROM at, p WHERE i % 2 = 0 AND ms + 86400000 < p.now * 1000)
     INSERT INTO events (business_id, webhook_id, type, payload, received_at_ms, state, planned_at_ms, lead_id)
     SELECT p.business, 'history-' || kind || '-' || i, 'lead.' || kind,
            CASE kind
                WHEN 'created' THEN json_object('lead_id', 'H-' || i, 'name', 'Caller ' || i,
                    'phone', '+1555010' || printf('%04d', i % 10000), 'email', NULL, 'score', (i * 37) % 101,
                    'summary', 'Leaking water heater, wants a visit', 'occurred_at', ms / 1000)
                ELSE json_object('lead_id', 'H-' || i, 'name', 'Caller ' || i, 'phone', NULL, 'email', NULL,
                    'score', min(100, (i * 37) % 101 + 5), 'summary', 'Booked for Tuesday', 'occurred_at', ms / 1000)
            END,
            ms, 'planned', ms, 'H-' || i
     FROM came, p ORDER BY ms, kind",
    "n(i) AS (SELECT 0)
     INSERT INTO leads (business_id, lead_id, name, phone, email, score, summary, first_seen_at, updated_at, last_event_id)
     SELECT p.business, e.lead_id, 'Caller ' || substr(e.lead_id, 3), min(json_extract(e.payload, '$.phone')), NULL,
            max(json_extract(e.payload, '$.score')), 'Leaking water heater, wants a visit',
            min(e.received_at_ms) / 1000, max(e.received_at_ms) / 1000, max(e.id)
     FROM events e, p WHERE e.business_id = p.business AND e.webhook_id LIKE 'history-%' AND e.lead_id IS NOT NULL
     GROUP BY e.lead_id",
    // Decisions per event: emails, in-app and texts to teammates, a quarter below a threshold and
    // a rare one given up.
    "slot(s) AS (SELECT 0 UNION ALL SELECT s + 1 FROM slot, p WHERE s + 1 < p.per_event),
     mates(n, id) AS MATERIALIZED (SELECT row_number() OVER (ORDER BY u.id), u.id FROM users u, p
         WHERE u.business_id = p.business AND u.email LIKE '%@history.test')
     INSERT INTO deliveries (event_id, business_id, seq, user_id, person_name, channel, address, status, reason,
         skip, attempts, created_at_ms, sent_at_ms)
     SELECT e.id, p.business, s, u.id, CASE WHEN s = 0 THEN NULL ELSE 'Teammate ' || s END,
            CASE s % 3 WHEN 0 THEN 'email' WHEN 1 THEN 'in_app' ELSE 'sms' END,
            CASE s % 3 WHEN 0 THEN 'teammate' || s || '@history.test' WHEN 1 THEN 'user:' || s
                 ELSE '+1555555' || printf('%04d', s) END,
            CASE WHEN (e.id + s) % 997 = 0 THEN 'dead' WHEN (e.id + s) % 4 = 0 THEN 'skipped' ELSE 'sent' END,
            CASE WHEN (e.id + s) % 997 = 0 THEN 'mailbox unavailable (550)'
                 WHEN (e.id + s) % 4 = 0 THEN 'score 40 is below Teammate ' || s || '’s threshold 60' END,
            CASE WHEN (e.id + s) % 997 <> 0 AND (e.id + s) % 4 = 0 THEN 'below_threshold' END,
            1, e.received_at_ms, CASE WHEN (e.id + s) % 997 <> 0 AND (e.id + s) % 4 <> 0 THEN e.received_at_ms + 900 END
     FROM events e CROSS JOIN slot CROSS JOIN p LEFT JOIN mates u ON u.n = slot.s
     WHERE e.business_id = p.business AND e.webhook_id LIKE 'history-%'",
    "n(i) AS (SELECT 0)
     UPDATE leads SET alerts_sent = sent.n
     FROM (SELECT e.lead_id, count(*) AS n FROM deliveries d JOIN events e ON e.id = d.event_id, p
           WHERE e.business_id = p.business AND d.status = 'sent' AND e.lead_id LIKE 'H-%' GROUP BY e.lead_id) AS sent
     WHERE leads.business_id = (SELECT business FROM p) AND leads.lead_id = sent.lead_id",
    // The owner's inbox, all but the last thirty read.
    "n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n, p WHERE i < p.inbox)
     INSERT INTO notifications (business_id, user_id, title, body, link, created_at, read_at)
     SELECT p.business, p.owner, 'New lead: Caller ' || i, '+15550100, score 80. Leaking water heater', '/leads',
            p.start + i * ((p.now - p.start) / p.inbox),
            CASE WHEN i <= p.inbox - 30 THEN p.start + i * ((p.now - p.start) / p.inbox) + 60 END
     FROM n, p",
    // A usage report every day over twelve monthly periods, with the thresholds they crossed.
    "d(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM d WHERE i < 364)
     INSERT INTO events (business_id, webhook_id, type, payload, received_at_ms, state, usage_threshold, planned_at_ms)
     SELECT p.business, 'history-usage-' || i, 'usage.updated',
            json_object('minutes_used', (i % 30) * 20, 'included_minutes', 500,
                'period_start', date(p.start + (i / 30) * 30 * 86400, 'unixepoch'),
                'period_end', date(p.start + ((i / 30) * 30 + 29) * 86400, 'unixepoch')),
            (p.start + i * 86400) * 1000, 'planned',
            CASE (i % 30) * 20 WHEN 380 THEN 75 WHEN 460 THEN 90 WHEN 500 THEN 100 END,
            (p.start + i * 86400) * 1000
     FROM d, p",
];

/// The same statements for PostgreSQL (its own names for formatting, JSON and dates).
/// An escalation policy (two teammates, then the owner) and the timers it left: every lead
/// scoring 70 or more escalated, or (a third of them) claimed first. The same SQL on both engines.
const ESCALATION_STATEMENTS: [&str; 4] = [
    "n(i) AS (SELECT 0)
     INSERT INTO escalation_policies (business_id, enabled, min_score, first_minutes, email, sms, in_app,
         second_minutes, updated_at)
     SELECT p.business, TRUE, 70, 5, FALSE, TRUE, TRUE, 10, p.now FROM p",
    "n(i) AS (SELECT 0)
     INSERT INTO escalation_targets (business_id, step, user_id)
     SELECT p.business, 1, u.id FROM users u, p WHERE u.business_id = p.business AND u.email LIKE '%@history.test'
         AND u.id IN (SELECT min(id) FROM users WHERE business_id = p.business AND email LIKE '%@history.test')",
    "n(i) AS (SELECT 0)
     INSERT INTO escalation_targets (business_id, step, user_id) SELECT p.business, 2, p.owner FROM p",
    "n(i) AS (SELECT 0)
     INSERT INTO escalations (business_id, lead_id, step, due_ms, state, note, updated_ms)
     SELECT p.business, l.lead_id, 1, l.first_seen_at * 1000 + 300000,
            CASE WHEN l.score % 3 = 0 THEN 'cancelled' ELSE 'fired' END,
            CASE WHEN l.score % 3 = 0 THEN 'Someone claimed the lead' END, l.first_seen_at * 1000 + 300000
     FROM leads l, p WHERE l.business_id = p.business AND l.score >= 70",
];

const PG_STATEMENTS: [&str; 8] = [
    "n(i) AS (SELECT generate_series(1, p.teammates) FROM p)
     INSERT INTO users (business_id, name, email, phone, role, password_hash, created_at)
     SELECT p.business, 'Teammate ' || i, 'teammate' || i || '-' || p.business || '@history.test',
            '+1555555' || lpad(i::text, 4, '0'), 'member', NULL, p.start FROM n, p",
    "n(i) AS (SELECT 0)
     INSERT INTO recipients (business_id, user_id, email_enabled, sms_enabled, in_app_enabled, lead_created,
         lead_updated, usage_alerts, billing_alerts, min_lead_score, created_at)
     SELECT p.business, u.id, TRUE, u.id % 3 = 0, TRUE, TRUE, u.id % 2 = 1, TRUE, TRUE, (u.id * 7) % 90, p.start
     FROM users u, p WHERE u.business_id = p.business AND u.email LIKE '%@history.test'",
    "n(i) AS (SELECT generate_series(1, p.leads) FROM p),
     at(i, ms) AS (SELECT i, (p.start + i * ((p.now - p.start) / p.leads)) * 1000 FROM n, p),
     came(i, kind, ms) AS (
         SELECT i, 'created', ms FROM at
         UNION ALL SELECT i, 'updated', ms + 86400000 FROM at, p WHERE i % 2 = 0 AND ms + 86400000 < p.now * 1000)
     INSERT INTO events (business_id, webhook_id, type, payload, received_at_ms, state, planned_at_ms, lead_id)
     SELECT p.business, 'history-' || kind || '-' || i, 'lead.' || kind,
            CASE kind
                WHEN 'created' THEN json_build_object('lead_id', 'H-' || i, 'name', 'Caller ' || i,
                    'phone', '+1555010' || lpad((i % 10000)::text, 4, '0'), 'email', NULL, 'score', (i * 37) % 101,
                    'summary', 'Leaking water heater, wants a visit', 'occurred_at', ms / 1000)::text
                ELSE json_build_object('lead_id', 'H-' || i, 'name', 'Caller ' || i, 'phone', NULL, 'email', NULL,
                    'score', least(100, (i * 37) % 101 + 5), 'summary', 'Booked for Tuesday',
                    'occurred_at', ms / 1000)::text
            END,
            ms, 'planned', ms, 'H-' || i
     FROM came, p ORDER BY ms, kind",
    "n(i) AS (SELECT 0)
     INSERT INTO leads (business_id, lead_id, name, phone, email, score, summary, first_seen_at, updated_at, last_event_id)
     SELECT p.business, e.lead_id, 'Caller ' || substr(e.lead_id, 3), min(e.payload::json ->> 'phone'), NULL,
            max((e.payload::json ->> 'score')::bigint), 'Leaking water heater, wants a visit',
            min(e.received_at_ms) / 1000, max(e.received_at_ms) / 1000, max(e.id)
     FROM events e, p WHERE e.business_id = p.business AND e.webhook_id LIKE 'history-%' AND e.lead_id IS NOT NULL
     GROUP BY p.business, e.lead_id",
    "slot(s) AS (SELECT generate_series(0, p.per_event - 1) FROM p),
     mates(n, id) AS MATERIALIZED (SELECT row_number() OVER (ORDER BY u.id), u.id FROM users u, p
         WHERE u.business_id = p.business AND u.email LIKE '%@history.test')
     INSERT INTO deliveries (event_id, business_id, seq, user_id, person_name, channel, address, status, reason,
         skip, attempts, created_at_ms, sent_at_ms)
     SELECT e.id, p.business, s, u.id, CASE WHEN s = 0 THEN NULL ELSE 'Teammate ' || s END,
            CASE s % 3 WHEN 0 THEN 'email' WHEN 1 THEN 'in_app' ELSE 'sms' END,
            CASE s % 3 WHEN 0 THEN 'teammate' || s || '@history.test' WHEN 1 THEN 'user:' || s
                 ELSE '+1555555' || lpad(s::text, 4, '0') END,
            CASE WHEN (e.id + s) % 997 = 0 THEN 'dead' WHEN (e.id + s) % 4 = 0 THEN 'skipped' ELSE 'sent' END,
            CASE WHEN (e.id + s) % 997 = 0 THEN 'mailbox unavailable (550)'
                 WHEN (e.id + s) % 4 = 0 THEN 'score 40 is below Teammate ' || s || '’s threshold 60' END,
            CASE WHEN (e.id + s) % 997 <> 0 AND (e.id + s) % 4 = 0 THEN 'below_threshold' END,
            1, e.received_at_ms, CASE WHEN (e.id + s) % 997 <> 0 AND (e.id + s) % 4 <> 0 THEN e.received_at_ms + 900 END
     FROM events e CROSS JOIN slot CROSS JOIN p LEFT JOIN mates u ON u.n = slot.s
     WHERE e.business_id = p.business AND e.webhook_id LIKE 'history-%'",
    "n(i) AS (SELECT 0)
     UPDATE leads SET alerts_sent = sent.n
     FROM (SELECT e.lead_id, count(*) AS n FROM deliveries d JOIN events e ON e.id = d.event_id, p
           WHERE e.business_id = p.business AND d.status = 'sent' AND e.lead_id LIKE 'H-%' GROUP BY e.lead_id) AS sent
     WHERE leads.business_id = (SELECT business FROM p) AND leads.lead_id = sent.lead_id",
    "n(i) AS (SELECT generate_series(1, p.inbox) FROM p)
     INSERT INTO notifications (business_id, user_id, title, body, link, created_at, read_at)
     SELECT p.business, p.owner, 'New lead: Caller ' || i, '+15550100, score 80. Leaking water heater', '/leads',
            p.start + i * ((p.now - p.start) / p.inbox),
            CASE WHEN i <= p.inbox - 30 THEN p.start + i * ((p.now - p.start) / p.inbox) + 60 END
     FROM n, p",
    "d(i) AS (SELECT generate_series(0, 364))
     INSERT INTO events (business_id, webhook_id, type, payload, received_at_ms, state, usage_threshold, planned_at_ms)
     SELECT p.business, 'history-usage-' || i, 'usage.updated',
            json_build_object('minutes_used', (i % 30) * 20, 'included_minutes', 500,
                'period_start', to_char(to_timestamp(p.start + (i / 30) * 30 * 86400) AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
                'period_end', to_char(to_timestamp(p.start + ((i / 30) * 30 + 29) * 86400) AT TIME ZONE 'UTC',
                    'YYYY-MM-DD'))::text,
            (p.start + i * 86400) * 1000, 'planned',
            CASE (i % 30) * 20 WHEN 380 THEN 75 WHEN 460 THEN 90 WHEN 500 THEN 100 END,
            (p.start + i * 86400) * 1000
     FROM d, p",
];

/// A third of the teammates have quiet hours (every night 22:00 to 07:00, hot leads of 90 get
/// through) and a daily summary at 08:00 (both engines).
const QUIET_STATEMENTS: [&str; 1] = ["n(i) AS (SELECT 0)
     UPDATE recipients SET quiet_days = 127, quiet_from = 1320, quiet_to = 420, urgent_score = 90, digest_at = 480
     WHERE business_id = (SELECT business FROM p) AND user_id % 3 = 1"];

/// Adds `history` to a business whose owner is `owner_id`, in one transaction. Answers the
/// number of rows written.
pub async fn add(db: &Db, business_id: &str, owner_id: i64, history: History) -> sqlx::Result<u64> {
    let business = business_id.to_owned();
    db.write(move |w| {
        Box::pin(async move {
            let now = unix_now();
            let mut rows = 0;
            macro_rules! each {
                ($statements:expr, $conn:expr) => {
                    for statement in $statements {
                        let sql = format!("WITH RECURSIVE {PARAMS}, {statement}");
                        rows += sqlx::query(sqlx::AssertSqlSafe(sql))
                            .bind(&business)
                            .bind(history.leads)
                            .bind(now - YEAR_SECS)
                            .bind(now)
                            .bind(history.teammates)
                            .bind(history.deliveries_per_event)
                            .bind(history.inbox)
                            .bind(owner_id)
                            .execute(&mut *$conn)
                            .await?
                            .rows_affected();
                    }
                };
            }
            match w.conn() {
                Conn::Lite(conn) => {
                    each!(STATEMENTS, conn);
                    each!(ESCALATION_STATEMENTS, conn);
                    each!(QUIET_STATEMENTS, conn);
                }
                Conn::Pg(conn) => {
                    each!(PG_STATEMENTS, conn);
                    each!(ESCALATION_STATEMENTS, conn);
                    each!(QUIET_STATEMENTS, conn);
                }
            }
            Ok(rows)
        })
    })
    .await
}
