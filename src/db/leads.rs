use sqlx::SqlitePool;

use super::Tx;
use crate::domain::events::Lead;

/// Records what a lead event says about the lead (newest wins).
pub async fn upsert(tx: &mut Tx, business_id: &str, lead: &Lead, event_id: i64, now: i64) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO leads (business_id, lead_id, name, phone, email, score, summary, first_seen_at, updated_at, last_event_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)
         ON CONFLICT (business_id, lead_id) DO UPDATE SET
             name = coalesce(excluded.name, leads.name), phone = coalesce(excluded.phone, leads.phone),
             email = coalesce(excluded.email, leads.email), score = coalesce(excluded.score, leads.score),
             summary = coalesce(excluded.summary, leads.summary), updated_at = excluded.updated_at,
             last_event_id = excluded.last_event_id",
    )
    .bind(business_id)
    .bind(&lead.lead_id)
    .bind(&lead.name)
    .bind(&lead.phone)
    .bind(&lead.email)
    .bind(lead.score.map(i64::from))
    .bind(&lead.summary)
    .bind(now)
    .bind(event_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

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
}

/// A page of leads, newest first, with how many alerts each one's latest event sent.
pub async fn page(pool: &SqlitePool, business_id: &str, limit: i64, offset: i64) -> sqlx::Result<Vec<LeadRow>> {
    sqlx::query_as(
        "SELECT l.lead_id, l.name, l.phone, l.email, l.score, l.summary, l.updated_at,
                (SELECT count(*) FROM deliveries d JOIN events e ON e.id = d.event_id
                 WHERE e.business_id = l.business_id AND d.status = 'sent'
                   AND json_extract(e.payload, '$.data.lead_id') = l.lead_id) AS alerts_sent
         FROM leads l WHERE l.business_id = $1 ORDER BY l.updated_at DESC, l.lead_id LIMIT $2 OFFSET $3",
    )
    .bind(business_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
}

pub async fn count(pool: &SqlitePool, business_id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM leads WHERE business_id = $1").bind(business_id).fetch_one(pool).await
}

/// The scores of the leads first seen since `since` (no score counts as 0).
pub async fn scores_since(pool: &SqlitePool, business_id: &str, since: i64) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar("SELECT coalesce(score, 0) FROM leads WHERE business_id = $1 AND first_seen_at >= $2")
        .bind(business_id)
        .bind(since)
        .fetch_all(pool)
        .await
}
