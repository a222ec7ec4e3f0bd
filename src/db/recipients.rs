use super::Link;

use super::Write;
use crate::domain::quiet::{Digest, Quiet, QuietHours, TimeOfDay, Zone, zone_or_region};
use crate::domain::routing::{Person, PhoneBlock};
use crate::domain::settings::Phone;
use crate::domain::{ChannelSet, KindSet, LeadScore, PhoneNumber, RecipientPrefs};

/// A recipient with the person behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub email: String,
    pub phone: Option<PhoneNumber>,
    /// Why no text can go to their phone, when one cannot.
    pub phone_blocked: Option<PhoneBlock>,
    pub prefs: RecipientPrefs,
    /// Quiet hours, when set, and the lead score that gets through them.
    pub quiet_hours: Option<QuietHours>,
    pub urgent_score: Option<u8>,
    /// When their daily summary of leads below their threshold goes, if they asked for one.
    pub digest_at: Option<TimeOfDay>,
    /// Their time zone: their own, else the business's, else the one its region suggests.
    pub zone: Zone,
}

impl Recipient {
    /// Whether their phone can take texts.
    pub fn phone_state(&self) -> Phone<'_> {
        match (&self.phone, &self.phone_blocked) {
            (None, _) => Phone::Missing,
            (Some(_), Some(block)) => Phone::Blocked(block),
            (Some(_), None) => Phone::Usable,
        }
    }

    /// The recipient as the routing rules see them.
    pub fn person(&self) -> Person {
        Person {
            user_id: self.user_id,
            name: self.name.clone(),
            email: self.email.clone(),
            phone: self.phone.as_ref().map(|p| p.to_string()),
            phone_blocked: self.phone_blocked.clone(),
            prefs: self.prefs,
            quiet: self.quiet(),
            digest: self.digest(),
            zone: self.zone.clone(),
        }
    }

    /// Their quiet hours, if they set any, in their zone.
    pub fn quiet(&self) -> Option<Quiet> {
        self.quiet_hours.map(|hours| Quiet { hours, zone: self.zone.clone(), urgent_score: self.urgent_score })
    }

    /// Their daily summary, if they asked for one.
    pub fn digest(&self) -> Option<Digest> {
        self.digest_at.map(|at| Digest { at, zone: self.zone.clone() })
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    user_id: i64,
    name: String,
    email: String,
    phone: Option<String>,
    phone_blocked_reason: Option<String>,
    phone_opted_out: bool,
    phone_confirmed: bool,
    email_enabled: bool,
    sms_enabled: bool,
    in_app_enabled: bool,
    lead_created: bool,
    lead_updated: bool,
    usage_alerts: bool,
    billing_alerts: bool,
    min_lead_score: i64,
    claimed_updates_only: bool,
    quiet_days: i64,
    quiet_from: Option<i64>,
    quiet_to: Option<i64>,
    urgent_score: Option<i64>,
    digest_at: Option<i64>,
    time_zone: Option<String>,
    region: String,
}

impl From<Row> for Recipient {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            user_id: r.user_id,
            name: r.name,
            email: r.email,
            phone: r.phone.map(PhoneNumber::from_stored),
            phone_blocked: PhoneBlock::of(r.phone_blocked_reason, r.phone_opted_out, r.phone_confirmed),
            prefs: RecipientPrefs {
                channels: ChannelSet { email: r.email_enabled, sms: r.sms_enabled, in_app: r.in_app_enabled },
                kinds: KindSet {
                    lead_created: r.lead_created,
                    lead_updated: r.lead_updated,
                    usage: r.usage_alerts,
                    billing: r.billing_alerts,
                },
                min_lead_score: LeadScore::new(r.min_lead_score).unwrap_or_default(),
                claimed_updates_only: r.claimed_updates_only,
            },
            quiet_hours: QuietHours::from_stored(r.quiet_days, r.quiet_from, r.quiet_to),
            urgent_score: r.urgent_score.and_then(|s| u8::try_from(s).ok()),
            digest_at: r.digest_at.and_then(TimeOfDay::from_minutes),
            zone: zone_or_region(r.time_zone.as_deref(), &r.region),
        }
    }
}

/// Recipients of one business at most (a team is far smaller).
const MAX_RECIPIENTS: i64 = 1000;

const SELECT: &str = "SELECT r.id, r.user_id, u.name, u.email, u.phone, u.phone_blocked_reason,
        EXISTS (SELECT 1 FROM sms_opt_outs o WHERE o.phone = u.phone) AS phone_opted_out,
        u.phone_confirmed_at IS NOT NULL AS phone_confirmed, r.email_enabled,
        r.sms_enabled, r.in_app_enabled, r.lead_created, r.lead_updated, r.usage_alerts, r.billing_alerts,
        r.min_lead_score, r.claimed_updates_only, r.quiet_days, r.quiet_from, r.quiet_to, r.urgent_score,
        r.digest_at, coalesce(u.time_zone, b.time_zone) AS time_zone, b.region
    FROM recipients r JOIN users u ON u.id = r.user_id AND u.business_id = r.business_id AND u.removed_at IS NULL
        JOIN businesses b ON b.id = r.business_id";

pub async fn list(conn: &mut impl Link, business_id: &str) -> sqlx::Result<Vec<Recipient>> {
    let rows: Vec<Row> = on!(conn, |cx| sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE r.business_id = $1 ORDER BY lower(u.name), r.id LIMIT $2"
    )))
    .bind(business_id)
    .bind(MAX_RECIPIENTS)
    .fetch_all(cx)
    .await)?;
    Ok(rows.into_iter().map(Recipient::from).collect())
}

pub async fn get(conn: &mut impl Link, business_id: &str, id: i64) -> sqlx::Result<Option<Recipient>> {
    let row: Option<Row> = on!(conn, |cx| sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE r.business_id = $1 AND r.id = $2"
    )))
    .bind(business_id)
    .bind(id)
    .fetch_optional(cx)
    .await)?;
    Ok(row.map(Recipient::from))
}

/// The recipient row of a user, if they are one.
pub async fn of_user(conn: &mut impl Link, user_id: i64) -> sqlx::Result<Option<Recipient>> {
    let row: Option<Row> =
        on!(conn, |cx| sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE r.user_id = $1")))
            .bind(user_id)
            .fetch_optional(cx)
            .await)?;
    Ok(row.map(Recipient::from))
}

/// The recipients of a business as the routing rules see them.
pub async fn for_routing(conn: &mut impl Link, business_id: &str) -> sqlx::Result<Vec<Person>> {
    let rows: Vec<Row> = on!(conn, |cx| sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE r.business_id = $1 ORDER BY r.id LIMIT $2"
    )))
    .bind(business_id)
    .bind(MAX_RECIPIENTS)
    .fetch_all(cx)
    .await)?;
    Ok(rows.into_iter().map(|r| Recipient::from(r).person()).collect())
}

/// Adds a recipient; `None` when the user already is one.
pub async fn insert(
    w: &mut Write,
    business_id: &str,
    user_id: i64,
    p: &RecipientPrefs,
    now: i64,
) -> sqlx::Result<Option<i64>> {
    w.routing_changed(business_id);
    on!(w, |cx| sqlx::query_scalar(
        "INSERT INTO recipients (business_id, user_id, email_enabled, sms_enabled, in_app_enabled, lead_created,
             lead_updated, usage_alerts, billing_alerts, min_lead_score, created_at, claimed_updates_only)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
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
    .bind(p.claimed_updates_only)
    .fetch_optional(cx)
    .await)
}

pub async fn update(w: &mut Write, business_id: &str, id: i64, p: &RecipientPrefs) -> sqlx::Result<()> {
    w.routing_changed(business_id);
    execute!(
        w,
        sqlx::query(
            "UPDATE recipients SET email_enabled = $3, sms_enabled = $4, in_app_enabled = $5, lead_created = $6,
             lead_updated = $7, usage_alerts = $8, billing_alerts = $9, min_lead_score = $10,
             claimed_updates_only = $11
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
        .bind(p.claimed_updates_only)
    )?;
    Ok(())
}

pub async fn delete(w: &mut Write, business_id: &str, id: i64) -> sqlx::Result<bool> {
    w.routing_changed(business_id);
    let user: Option<(i64, String)> = on!(w, |cx| {
        sqlx::query_as(
        "SELECT r.user_id, u.name FROM recipients r JOIN users u ON u.id = r.user_id WHERE r.business_id = $1 AND r.id = $2"
    )
    .bind(business_id)
    .bind(id)
    .fetch_optional(cx)
    .await
    })?;
    if let Some((user_id, name)) = user {
        let why = format!("{name} left the recipient list while it was held for quiet hours");
        super::deliveries::drop_held(w, business_id, user_id, &why).await?;
    }
    let done = execute!(
        w,
        sqlx::query("DELETE FROM recipients WHERE business_id = $1 AND id = $2").bind(business_id).bind(id)
    )?;
    Ok(done == 1)
}

/// Sets a recipient's quiet hours (`None`: off) and the score that gets through them, and the
/// person's own time zone (`None`: the business's).
pub async fn set_quiet(
    w: &mut Write,
    business_id: &str,
    id: i64,
    hours: Option<&QuietHours>,
    urgent_score: Option<u8>,
    zone: Option<&Zone>,
) -> sqlx::Result<bool> {
    w.routing_changed(business_id);
    let done = execute!(
        w,
        sqlx::query(
            "UPDATE recipients SET quiet_days = $3, quiet_from = $4, quiet_to = $5, urgent_score = $6
             WHERE id = $1 AND business_id = $2",
        )
        .bind(id)
        .bind(business_id)
        .bind(hours.map_or(0, QuietHours::days_bits))
        .bind(hours.map(|h| h.from.minutes()))
        .bind(hours.map(|h| h.to.minutes()))
        .bind(urgent_score.map(i64::from))
    )?;
    execute!(
        w,
        sqlx::query(
            "UPDATE users SET time_zone = $3
             WHERE id = (SELECT user_id FROM recipients WHERE id = $1 AND business_id = $2) AND business_id = $2",
        )
        .bind(id)
        .bind(business_id)
        .bind(zone.map(Zone::name))
    )?;
    Ok(done == 1)
}

/// Sets when a recipient's daily summary goes (`None`: off).
pub async fn set_digest(w: &mut Write, business_id: &str, id: i64, at: Option<TimeOfDay>) -> sqlx::Result<bool> {
    w.routing_changed(business_id);
    let done = execute!(
        w,
        sqlx::query("UPDATE recipients SET digest_at = $3 WHERE id = $1 AND business_id = $2")
            .bind(id)
            .bind(business_id)
            .bind(at.map(TimeOfDay::minutes))
    )?;
    Ok(done == 1)
}
