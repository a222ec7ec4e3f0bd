//! Leads, written by the ingest writer (`db::ingest`); their count per business and the alerts
//! each caused are kept by triggers at write time (migration 0003), so pages never count them.
use super::{Link, Write};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LeadRow {
    pub lead_id: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub score: Option<i64>,
    pub summary: Option<String>,
    pub updated_at: i64,
    pub alerts_sent: i64,
    /// When Kai first told us of the lead (the call).
    pub first_seen_at: i64,
    /// Who said "I'll call them" (their name then), and when.
    pub claimed_by: Option<i64>,
    pub claimed_by_name: Option<String>,
    pub claimed_at: Option<i64>,
    /// When an escalation step last fired for it, after how many minutes without a claim.
    pub escalated_at: Option<i64>,
    pub escalated_after: Option<i64>,
}

/// A place in the leads list (newest first): a lead's last update and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub updated_at: i64,
    pub lead_id: String,
}

impl LeadRow {
    pub fn cursor(&self) -> Cursor {
        Cursor { updated_at: self.updated_at, lead_id: self.lead_id.clone() }
    }
}

/// Which page of leads to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    Newest,
    /// The leads after this one, going back in time.
    OlderThan(Cursor),
    /// The leads before this one, going forward in time.
    NewerThan(Cursor),
}

const COLUMNS: &str = "lead_id, name, phone, email, score, summary, updated_at, alerts_sent, first_seen_at, claimed_by,
     claimed_by_name, claimed_at, escalated_at, escalated_after";

/// Up to `limit` leads of a page, newest first. Paging is by position (keyset), so every page
/// costs the same however far back it is.
/// `unclaimed`: only the leads nobody said they would call back (their own index).
pub async fn page(
    conn: &mut impl Link,
    business_id: &str,
    page: &Page,
    unclaimed: bool,
    limit: i64,
) -> sqlx::Result<Vec<LeadRow>> {
    let only = if unclaimed { " AND claimed_by IS NULL" } else { "" };
    match page {
        Page::Newest => {
            on!(conn, |cx| {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM leads WHERE business_id = $1{only} ORDER BY updated_at DESC, lead_id DESC LIMIT $2"
            )))
            .bind(business_id)
            .bind(limit)
            .fetch_all(cx)
            .await
            })
        }
        Page::OlderThan(c) => {
            on!(conn, |cx| sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM leads WHERE business_id = $1{only} AND (updated_at, lead_id) < ($2, $3)
                 ORDER BY updated_at DESC, lead_id DESC LIMIT $4"
            )))
            .bind(business_id)
            .bind(c.updated_at)
            .bind(&c.lead_id)
            .bind(limit)
            .fetch_all(cx)
            .await)
        }
        Page::NewerThan(c) => {
            let mut rows: Vec<LeadRow> = on!(conn, |cx| sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM leads WHERE business_id = $1{only} AND (updated_at, lead_id) > ($2, $3)
                 ORDER BY updated_at, lead_id LIMIT $4"
            )))
            .bind(business_id)
            .bind(c.updated_at)
            .bind(&c.lead_id)
            .bind(limit)
            .fetch_all(cx)
            .await)?;
            rows.reverse();
            Ok(rows)
        }
    }
}

/// How many leads first seen since `since` had each score (no score counts as 0): at most 101
/// rows, for the threshold preview.
pub async fn scores_since(conn: &mut impl Link, business_id: &str, since: i64) -> sqlx::Result<Vec<(i64, i64)>> {
    on!(conn, |cx| sqlx::query_as(
        "SELECT coalesce(score, 0) AS s, count(*) FROM leads WHERE business_id = $1 AND first_seen_at >= $2
         GROUP BY s ORDER BY s LIMIT 101",
    )
    .bind(business_id)
    .bind(since)
    .fetch_all(cx)
    .await)
}

/// The score (no score counts as 0) and first-seen time (unix seconds) of the latest `limit`
/// leads first seen since `since`: what a preview checks against someone's quiet hours.
pub async fn seen_since(
    conn: &mut impl Link,
    business_id: &str,
    since: i64,
    limit: i64,
) -> sqlx::Result<Vec<(i64, i64)>> {
    on!(conn, |cx| sqlx::query_as(
        "SELECT coalesce(score, 0), first_seen_at FROM leads WHERE business_id = $1 AND first_seen_at >= $2
         ORDER BY first_seen_at DESC LIMIT $3",
    )
    .bind(business_id)
    .bind(since)
    .bind(limit)
    .fetch_all(cx)
    .await)
}

/// How many leads a business first heard of at or after `since` (unix seconds).
pub async fn count_since(conn: &mut impl Link, business_id: &str, since: i64) -> sqlx::Result<i64> {
    on!(conn, |cx| sqlx::query_scalar("SELECT count(*) FROM leads WHERE business_id = $1 AND first_seen_at >= $2")
        .bind(business_id)
        .bind(since)
        .fetch_one(cx)
        .await)
}

/// One lead of a business.
pub async fn get(conn: &mut impl Link, business_id: &str, lead_id: &str) -> sqlx::Result<Option<LeadRow>> {
    on!(conn, |cx| sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM leads WHERE business_id = $1 AND lead_id = $2"
    )))
    .bind(business_id)
    .bind(lead_id)
    .fetch_optional(cx)
    .await)
}

/// Claims a lead for a person on its team, unless someone claimed it first: true when this
/// claim won. A person removed from the team cannot claim.
pub async fn claim(w: &mut Write, business_id: &str, lead_id: &str, user_id: i64, now: i64) -> sqlx::Result<bool> {
    let done = execute!(
        w,
        sqlx::query(
            "UPDATE leads SET claimed_by = $3, claimed_at = $4,
             claimed_by_name = (SELECT name FROM users WHERE id = $3)
         WHERE business_id = $1 AND lead_id = $2 AND claimed_by IS NULL
           AND EXISTS (SELECT 1 FROM users WHERE id = $3 AND business_id = $1 AND removed_at IS NULL)",
        )
        .bind(business_id)
        .bind(lead_id)
        .bind(user_id)
        .bind(now)
    )?;
    if done != 1 {
        return Ok(false);
    }
    // A claim ends the lead's escalation: its pending steps say who took it.
    execute!(
        w,
        sqlx::query(
            "UPDATE escalations SET state = 'cancelled', updated_ms = $4,
                 note = (SELECT name FROM users WHERE id = $3) || ' claimed the lead'
             WHERE business_id = $1 AND lead_id = $2 AND state = 'pending'",
        )
        .bind(business_id)
        .bind(lead_id)
        .bind(user_id)
        .bind(now * 1000)
    )?;
    Ok(true)
}

/// The claims made since `since` (unix seconds): who, and how long after the call, at most
/// `limit` of them (newest first), for each person's speed to lead; `by`: only that person's.
pub async fn claims_since(
    conn: &mut impl Link,
    business_id: &str,
    since: i64,
    by: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<(i64, i64)>> {
    on!(conn, |cx| sqlx::query_as(
        "SELECT claimed_by, claimed_at - first_seen_at FROM leads
         WHERE business_id = $1 AND claimed_at >= $2 AND claimed_by IS NOT NULL AND ($3 IS NULL OR claimed_by = $3)
         ORDER BY claimed_at DESC LIMIT $4",
    )
    .bind(business_id)
    .bind(since)
    .bind(by)
    .bind(limit)
    .fetch_all(cx)
    .await)
}

/// How many leads nobody has claimed yet.
pub async fn unclaimed_count(conn: &mut impl Link, business_id: &str, limit: i64) -> sqlx::Result<i64> {
    on!(conn, |cx| sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT 1 AS one FROM leads WHERE business_id = $1 AND claimed_by IS NULL LIMIT $2) AS n",
    )
    .bind(business_id)
    .bind(limit)
    .fetch_one(cx)
    .await)
}

/// What the writer needs to know of the leads a batch updates or escalates: who claimed each
/// (`claimed_by`, `claimed_by_name`), and when its last update was alerted at once (`anchor_ms`: later
/// updates within the business's window wait and merge). Only leads with either.
#[derive(Debug, sqlx::FromRow)]
pub struct LeadFacts {
    pub lead_id: String,
    pub claimed_by: Option<i64>,
    pub claimed_by_name: Option<String>,
    pub anchor_ms: Option<i64>,
}

pub async fn facts(conn: &mut impl Link, business_id: &str, lead_ids: &[&str]) -> sqlx::Result<Vec<LeadFacts>> {
    let mut found = Vec::new();
    for chunk in lead_ids.chunks(500) {
        let rows: Vec<LeadFacts> = on!(conn, |cx| {
            let mut q = sqlx::QueryBuilder::new(
                "SELECT lead_id, claimed_by, claimed_by_name, update_alerted_at_ms AS anchor_ms FROM leads
                 WHERE (claimed_by IS NOT NULL OR update_alerted_at_ms IS NOT NULL) AND business_id = ",
            );
            q.push_bind(business_id).push(" AND lead_id IN (");
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            q.push(")");
            q.build_query_as().fetch_all(cx).await
        })?;
        found.extend(rows);
    }
    Ok(found)
}

/// Notes that an update of the lead was alerted at once at `at_ms` (its window opens).
pub async fn set_update_anchor(w: &mut Write, business_id: &str, lead_id: &str, at_ms: i64) -> sqlx::Result<()> {
    execute!(
        w,
        sqlx::query("UPDATE leads SET update_alerted_at_ms = $3 WHERE business_id = $1 AND lead_id = $2")
            .bind(business_id)
            .bind(lead_id)
            .bind(at_ms)
    )?;
    Ok(())
}
