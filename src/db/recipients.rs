use sqlx::SqlitePool;

use super::Tx;
use crate::domain::{ChannelSet, KindSet, LeadScore, PhoneNumber, RecipientPrefs};

/// A recipient with the person behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub email: String,
    pub phone: Option<PhoneNumber>,
    pub prefs: RecipientPrefs,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    user_id: i64,
    name: String,
    email: String,
    phone: Option<String>,
    email_enabled: bool,
    sms_enabled: bool,
    in_app_enabled: bool,
    lead_created: bool,
    lead_updated: bool,
    usage_alerts: bool,
    billing_alerts: bool,
    min_lead_score: i64,
}

impl From<Row> for Recipient {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            user_id: r.user_id,
            name: r.name,
            email: r.email,
            phone: r.phone.map(PhoneNumber::from_stored),
            prefs: RecipientPrefs {
                channels: ChannelSet { email: r.email_enabled, sms: r.sms_enabled, in_app: r.in_app_enabled },
                kinds: KindSet {
                    lead_created: r.lead_created,
                    lead_updated: r.lead_updated,
                    usage: r.usage_alerts,
                    billing: r.billing_alerts,
                },
                min_lead_score: LeadScore::new(r.min_lead_score).unwrap_or_default(),
            },
        }
    }
}

const SELECT: &str =
    "SELECT r.id, r.user_id, u.name, u.email, u.phone, r.email_enabled, r.sms_enabled, r.in_app_enabled,
        r.lead_created, r.lead_updated, r.usage_alerts, r.billing_alerts, r.min_lead_score
    FROM recipients r JOIN users u ON u.id = r.user_id AND u.business_id = r.business_id AND u.removed_at IS NULL";

pub async fn list(pool: &SqlitePool, business_id: &str) -> sqlx::Result<Vec<Recipient>> {
    let rows: Vec<Row> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE r.business_id = $1 ORDER BY lower(u.name), r.id")))
            .bind(business_id)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(Recipient::from).collect())
}

pub async fn get(pool: &SqlitePool, business_id: &str, id: i64) -> sqlx::Result<Option<Recipient>> {
    let row: Option<Row> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE r.business_id = $1 AND r.id = $2")))
            .bind(business_id)
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(Recipient::from))
}

pub async fn get_for_update(tx: &mut Tx, business_id: &str, id: i64) -> sqlx::Result<Option<Recipient>> {
    let row: Option<Row> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE r.business_id = $1 AND r.id = $2")))
            .bind(business_id)
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(row.map(Recipient::from))
}

/// Adds a recipient; `None` when the user already is one.
pub async fn insert(
    tx: &mut Tx,
    business_id: &str,
    user_id: i64,
    p: &RecipientPrefs,
    now: i64,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "INSERT INTO recipients (business_id, user_id, email_enabled, sms_enabled, in_app_enabled, lead_created,
             lead_updated, usage_alerts, billing_alerts, min_lead_score, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (business_id, user_id) DO NOTHING
         RETURNING id",
    )
    .bind(business_id)
    .bind(user_id)
    .bind(p.channels.email)
    .bind(p.channels.sms)
    .bind(p.channels.in_app)
    .bind(p.kinds.lead_created)
    .bind(p.kinds.lead_updated)
    .bind(p.kinds.usage)
    .bind(p.kinds.billing)
    .bind(i64::from(p.min_lead_score.value()))
    .bind(now)
    .fetch_optional(&mut **tx)
    .await
}

pub async fn update(tx: &mut Tx, business_id: &str, id: i64, p: &RecipientPrefs) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE recipients SET email_enabled = $3, sms_enabled = $4, in_app_enabled = $5, lead_created = $6,
             lead_updated = $7, usage_alerts = $8, billing_alerts = $9, min_lead_score = $10
         WHERE business_id = $1 AND id = $2",
    )
    .bind(business_id)
    .bind(id)
    .bind(p.channels.email)
    .bind(p.channels.sms)
    .bind(p.channels.in_app)
    .bind(p.kinds.lead_created)
    .bind(p.kinds.lead_updated)
    .bind(p.kinds.usage)
    .bind(p.kinds.billing)
    .bind(i64::from(p.min_lead_score.value()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn delete(tx: &mut Tx, business_id: &str, id: i64) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM recipients WHERE business_id = $1 AND id = $2")
        .bind(business_id)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The recipients of a business as the routing rules see them, read inside the planning
/// transaction so the rules use the settings as they are at dispatch time.
pub async fn for_routing(tx: &mut Tx, business_id: &str) -> sqlx::Result<Vec<crate::domain::routing::Person>> {
    #[derive(sqlx::FromRow)]
    struct WithBlock {
        #[sqlx(flatten)]
        row: Row,
        phone_blocked_reason: Option<String>,
    }
    let rows: Vec<WithBlock> = sqlx::query_as(
        "SELECT r.id, r.user_id, u.name, u.email, u.phone, r.email_enabled, r.sms_enabled, r.in_app_enabled,
                r.lead_created, r.lead_updated, r.usage_alerts, r.billing_alerts, r.min_lead_score, u.phone_blocked_reason
         FROM recipients r JOIN users u ON u.id = r.user_id AND u.business_id = r.business_id AND u.removed_at IS NULL
         WHERE r.business_id = $1 ORDER BY r.id",
    )
    .bind(business_id)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let recipient = Recipient::from(r.row);
            crate::domain::routing::Person {
                user_id: recipient.user_id,
                name: recipient.name,
                email: recipient.email,
                phone: recipient.phone.map(|p| p.to_string()),
                phone_blocked: r.phone_blocked_reason,
                prefs: recipient.prefs,
            }
        })
        .collect())
}

/// The business and recipient row of a user, if they are a recipient.
pub async fn of_user(tx: &mut Tx, user_id: i64) -> sqlx::Result<Option<(String, i64)>> {
    sqlx::query_as("SELECT business_id, id FROM recipients WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(&mut **tx)
        .await
}
