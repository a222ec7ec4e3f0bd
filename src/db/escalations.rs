//! Escalation: each business's policy, and the timers of the leads it watches. A timer is a row
//! per lead and step with a due time (started by the ingest writer for a hot new lead), found by
//! the dispatcher when due like a retry, and ended as fired (with its event) or cancelled (with
//! why: a claim, the policy turned off).
use std::collections::HashMap;

use super::{Link, Write};
use crate::domain::escalation::{Policy, Step};
use crate::domain::{ChannelSet, LeadScore};

#[derive(sqlx::FromRow)]
struct PolicyRow {
    enabled: bool,
    min_score: i64,
    first_minutes: i64,
    email: bool,
    sms: bool,
    in_app: bool,
    second_minutes: Option<i64>,
}

/// A policy with the names of the people it alerts (as they are now).
#[derive(Debug, Clone)]
pub struct Stored {
    pub policy: Policy,
    pub names: HashMap<i64, String>,
}

impl Stored {
    pub fn name_of(&self, user_id: i64) -> String {
        self.names.get(&user_id).cloned().unwrap_or_else(|| "a former teammate".into())
    }
}

/// A business's policy, if it ever set one.
pub async fn policy(conn: &mut impl Link, business_id: &str) -> sqlx::Result<Option<Stored>> {
    let row: Option<PolicyRow> = on!(conn, |cx| sqlx::query_as(
        "SELECT enabled, min_score, first_minutes, email, sms, in_app, second_minutes
         FROM escalation_policies WHERE business_id = $1",
    )
    .bind(business_id)
    .fetch_optional(cx)
    .await)?;
    let Some(row) = row else { return Ok(None) };
    // At most one row per step and teammate: bounded by the team.
    let targets: Vec<(i64, i64, String)> = on!(conn, |cx| sqlx::query_as(
        "SELECT t.step, t.user_id, u.name FROM escalation_targets t JOIN users u ON u.id = t.user_id
         WHERE t.business_id = $1 AND u.business_id = $1 ORDER BY t.step, u.name, t.user_id LIMIT 1000",
    )
    .bind(business_id)
    .fetch_all(cx)
    .await)?;
    let people = |step: i64| targets.iter().filter(|t| t.0 == step).map(|t| t.1).collect::<Vec<_>>();
    let minutes = |m: i64| u32::try_from(m).unwrap_or(1);
    let policy = Policy {
        enabled: row.enabled,
        min_score: LeadScore::new(row.min_score).unwrap_or_default(),
        first: Step { minutes: minutes(row.first_minutes), people: people(1) },
        second: row.second_minutes.map(|m| Step { minutes: minutes(m), people: people(2) }),
        channels: ChannelSet { email: row.email, sms: row.sms, in_app: row.in_app },
    };
    let names = targets.into_iter().map(|(_, id, name)| (id, name)).collect();
    Ok(Some(Stored { policy, names }))
}

/// Stores a business's policy (its people were checked to be on its team).
pub async fn save(w: &mut Write, business_id: &str, policy: &Policy, now: i64) -> sqlx::Result<()> {
    w.routing_changed(business_id);
    execute!(
        w,
        sqlx::query(
            "INSERT INTO escalation_policies (business_id, enabled, min_score, first_minutes, email, sms, in_app,
                 second_minutes, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (business_id) DO UPDATE SET enabled = excluded.enabled, min_score = excluded.min_score,
                 first_minutes = excluded.first_minutes, email = excluded.email, sms = excluded.sms,
                 in_app = excluded.in_app, second_minutes = excluded.second_minutes, updated_at = excluded.updated_at",
        )
        .bind(business_id)
        .bind(policy.enabled)
        .bind(i64::from(policy.min_score.value()))
        .bind(i64::from(policy.first.minutes))
        .bind(policy.channels.email)
        .bind(policy.channels.sms)
        .bind(policy.channels.in_app)
        .bind(policy.second.as_ref().map(|s| i64::from(s.minutes)))
        .bind(now)
    )?;
    execute!(w, sqlx::query("DELETE FROM escalation_targets WHERE business_id = $1").bind(business_id))?;
    let steps = [(1i64, &policy.first.people)].into_iter().chain(policy.second.as_ref().map(|s| (2i64, &s.people)));
    for (step, people) in steps {
        for user_id in people {
            execute!(
                w,
                sqlx::query(
                    "INSERT INTO escalation_targets (business_id, step, user_id)
                     SELECT $1, $2, id FROM users WHERE id = $3 AND business_id = $1",
                )
                .bind(business_id)
                .bind(step)
                .bind(*user_id)
            )?;
        }
    }
    Ok(())
}

/// A timer that is due, with its lead as stored now.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Due {
    pub business_id: String,
    pub lead_id: String,
    pub step: i64,
    pub due_ms: i64,
    pub score: Option<i64>,
    pub claimed_by_name: Option<String>,
    /// False when the lead row is gone.
    pub lead_found: bool,
}

/// Up to `limit` timers due at `now_ms`, the longest due first.
pub async fn due(conn: &mut impl Link, now_ms: i64, limit: i64) -> sqlx::Result<Vec<Due>> {
    on!(conn, |cx| sqlx::query_as(
        "SELECT e.business_id, e.lead_id, e.step, e.due_ms, l.score, l.claimed_by_name,
                l.lead_id IS NOT NULL AS lead_found
         FROM escalations e LEFT JOIN leads l ON l.business_id = e.business_id AND l.lead_id = e.lead_id
         WHERE e.state = 'pending' AND e.due_ms <= $1 ORDER BY e.due_ms LIMIT $2",
    )
    .bind(now_ms)
    .bind(limit)
    .fetch_all(cx)
    .await)
}

/// When the next timer falls due, if any is pending.
pub async fn next_due_ms(conn: &mut impl Link) -> sqlx::Result<Option<i64>> {
    on!(conn, |cx| sqlx::query_scalar("SELECT min(due_ms) FROM escalations WHERE state = 'pending'")
        .fetch_one(cx)
        .await)
}

/// A fired step: ends its timer with its event, marks the lead escalated and, while nobody has
/// claimed the lead, starts the next step's timer. False when the timer was ended already
/// (another instance fired it, or a claim cancelled it).
pub async fn fired(
    w: &mut Write,
    due: &Due,
    event_id: i64,
    minutes: u32,
    next: Option<(u8, i64)>,
    now_ms: i64,
) -> sqlx::Result<bool> {
    let ended = end(w, due, "fired", Some(event_id), None, now_ms).await?;
    if ended == 0 {
        return Ok(false);
    }
    execute!(
        w,
        sqlx::query(
            "UPDATE leads SET escalated_at = $3, escalated_after = $4
             WHERE business_id = $1 AND lead_id = $2 AND claimed_by IS NULL",
        )
        .bind(&due.business_id)
        .bind(&due.lead_id)
        .bind(now_ms / 1000)
        .bind(i64::from(minutes))
    )?;
    if let Some((step, due_ms)) = next {
        execute!(
            w,
            sqlx::query(
                "INSERT INTO escalations (business_id, lead_id, step, due_ms, state, updated_ms)
                 SELECT $1, $2, $3, $4, 'pending', $5 FROM leads
                 WHERE business_id = $1 AND lead_id = $2 AND claimed_by IS NULL
                 ON CONFLICT (business_id, lead_id, step) DO NOTHING",
            )
            .bind(&due.business_id)
            .bind(&due.lead_id)
            .bind(i64::from(step))
            .bind(due_ms)
            .bind(now_ms)
        )?;
    }
    Ok(true)
}

/// Ends one pending timer without sending anything, saying why.
pub async fn cancel(w: &mut Write, due: &Due, note: &str, now_ms: i64) -> sqlx::Result<()> {
    end(w, due, "cancelled", None, Some(note), now_ms).await.map(|_| ())
}

/// Ends a timer that is still pending: fired (with its event) or cancelled (with why). Answers
/// how many rows it ended (0: another instance or a claim ended it first).
async fn end(
    w: &mut Write,
    due: &Due,
    state: &str,
    event_id: Option<i64>,
    note: Option<&str>,
    now_ms: i64,
) -> sqlx::Result<u64> {
    execute!(
        w,
        sqlx::query(
            "UPDATE escalations SET state = $4, event_id = $5, note = $6, updated_ms = $7
             WHERE business_id = $1 AND lead_id = $2 AND step = $3 AND state = 'pending'",
        )
        .bind(&due.business_id)
        .bind(&due.lead_id)
        .bind(due.step)
        .bind(state)
        .bind(event_id)
        .bind(note)
        .bind(now_ms)
    )
}

/// A lead's timer as the alert log tells it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Timer {
    pub lead_id: String,
    pub step: i64,
    pub state: String,
    pub due_ms: i64,
    pub note: Option<String>,
    pub updated_ms: i64,
}

/// The timers of these leads (two steps at most each).
pub async fn for_leads(conn: &mut impl Link, business_id: &str, lead_ids: &[&str]) -> sqlx::Result<Vec<Timer>> {
    if lead_ids.is_empty() {
        return Ok(Vec::new());
    }
    on!(conn, |cx| {
        let mut q = sqlx::QueryBuilder::new(
            "SELECT lead_id, step, state, due_ms, note, updated_ms FROM escalations WHERE business_id = ",
        );
        q.push_bind(business_id).push(" AND lead_id IN (");
        let mut list = q.separated(", ");
        for id in lead_ids.iter().take(500) {
            list.push_bind(*id);
        }
        q.push(") ORDER BY lead_id, step LIMIT 1000");
        q.build_query_as().fetch_all(cx).await
    })
}
