use super::Link;

use super::Write;
use crate::domain::quiet::{Zone, zone_or_region};
use crate::domain::routing::PhoneBlock;
use crate::domain::{BusinessDefaults, ChannelSet, EmailAddress, KindSet, PhoneNumber};

#[derive(sqlx::FromRow)]
struct Row {
    lead_created: bool,
    lead_updated: bool,
    usage_alerts: bool,
    billing_alerts: bool,
    email_enabled: bool,
    sms_enabled: bool,
    in_app_enabled: bool,
    notification_email: Option<String>,
    notification_phone: Option<String>,
    claimed_updates_only: bool,
}

impl From<Row> for BusinessDefaults {
    fn from(r: Row) -> Self {
        Self {
            kinds: KindSet {
                lead_created: r.lead_created,
                lead_updated: r.lead_updated,
                usage: r.usage_alerts,
                billing: r.billing_alerts,
            },
            channels: ChannelSet { email: r.email_enabled, sms: r.sms_enabled, in_app: r.in_app_enabled },
            notification_email: r.notification_email.and_then(|e| EmailAddress::parse(&e).ok()),
            notification_phone: r.notification_phone.map(PhoneNumber::from_stored),
            claimed_updates_only: r.claimed_updates_only,
        }
    }
}

const SELECT: &str = "SELECT lead_created, lead_updated, usage_alerts, billing_alerts, email_enabled, sms_enabled,
        in_app_enabled, notification_email, notification_phone, claimed_updates_only
    FROM notification_defaults WHERE business_id = $1";

/// A business's defaults; `None` only for a business that does not exist.
pub async fn get(conn: &mut impl Link, business_id: &str) -> sqlx::Result<Option<BusinessDefaults>> {
    let row: Option<Row> = on!(conn, |cx| sqlx::query_as(SELECT).bind(business_id).fetch_optional(cx).await)?;
    Ok(row.map(Into::into))
}

/// A signed-in person's business's defaults (the row exists from the business's creation).
pub async fn of(conn: &mut impl Link, business_id: &str) -> sqlx::Result<BusinessDefaults> {
    let row: Row = on!(conn, |cx| sqlx::query_as(SELECT).bind(business_id).fetch_one(cx).await)?;
    Ok(row.into())
}

pub async fn insert(w: &mut Write, business_id: &str, d: &BusinessDefaults, now: i64) -> sqlx::Result<()> {
    w.routing_changed(business_id);
    execute!(
        w,
        sqlx::query(
            "INSERT INTO notification_defaults (business_id, lead_created, lead_updated, usage_alerts, billing_alerts,
             email_enabled, sms_enabled, in_app_enabled, notification_email, notification_phone, updated_at,
             claimed_updates_only)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(business_id)
        .bind(d.kinds.lead_created)
        .bind(d.kinds.lead_updated)
        .bind(d.kinds.usage)
        .bind(d.kinds.billing)
        .bind(d.channels.email)
        .bind(d.channels.sms)
        .bind(d.channels.in_app)
        .bind(d.notification_email.as_ref().map(EmailAddress::as_str))
        .bind(d.notification_phone.as_ref().map(PhoneNumber::as_str))
        .bind(now)
        .bind(d.claimed_updates_only)
    )?;
    Ok(())
}

pub async fn update(w: &mut Write, business_id: &str, d: &BusinessDefaults, now: i64) -> sqlx::Result<()> {
    w.routing_changed(business_id);
    execute!(w, sqlx::query(
        "UPDATE notification_defaults SET lead_created = $2, lead_updated = $3, usage_alerts = $4, billing_alerts = $5,
             email_enabled = $6, sms_enabled = $7, in_app_enabled = $8, notification_email = $9,
             notification_phone = $10, updated_at = $11, claimed_updates_only = $12,
             phone_confirmed_at = CASE WHEN notification_phone IS NOT DISTINCT FROM $10 THEN phone_confirmed_at END
         WHERE business_id = $1",
    )
    .bind(business_id)
    .bind(d.kinds.lead_created)
    .bind(d.kinds.lead_updated)
    .bind(d.kinds.usage)
    .bind(d.kinds.billing)
    .bind(d.channels.email)
    .bind(d.channels.sms)
    .bind(d.channels.in_app)
    .bind(d.notification_email.as_ref().map(EmailAddress::as_str))
    .bind(d.notification_phone.as_ref().map(PhoneNumber::as_str))
    .bind(now)
    .bind(d.claimed_updates_only))?;
    Ok(())
}

/// Why the business's notification phone cannot take texts (opted out by STOP, not confirmed),
/// if it has one and it cannot.
pub async fn phone_block(conn: &mut impl Link, business_id: &str) -> sqlx::Result<Option<PhoneBlock>> {
    let row: Option<(bool, bool)> = on!(conn, |cx| sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM sms_opt_outs o WHERE o.phone = d.notification_phone),
                d.phone_confirmed_at IS NOT NULL
         FROM notification_defaults d WHERE d.business_id = $1 AND d.notification_phone IS NOT NULL",
    )
    .bind(business_id)
    .fetch_optional(cx)
    .await)?;
    Ok(row.and_then(|(opted_out, confirmed)| PhoneBlock::of(None, opted_out, confirmed)))
}

/// What the routing rules read besides the switches: how close together lead updates merge into
/// one alert (ms; 0: each alerts), whether failed payments get through quiet hours, and the
/// business's time zone.
pub struct Timing {
    pub update_window_ms: i64,
    pub billing_urgent: bool,
    pub zone: Zone,
}

pub async fn timing(conn: &mut impl Link, business_id: &str) -> sqlx::Result<Timing> {
    let row: Option<(i64, bool, Option<String>, String)> = on!(conn, |cx| sqlx::query_as(
        "SELECT d.update_window_minutes, d.billing_urgent, b.time_zone, b.region
         FROM notification_defaults d JOIN businesses b ON b.id = d.business_id WHERE d.business_id = $1"
    )
    .bind(business_id)
    .fetch_optional(cx)
    .await)?;
    Ok(match row {
        Some((minutes, billing_urgent, zone, region)) => Timing {
            update_window_ms: minutes * 60_000,
            billing_urgent,
            zone: zone_or_region(zone.as_deref(), &region),
        },
        None => Timing { update_window_ms: 0, billing_urgent: false, zone: Zone::utc() },
    })
}

/// Whether the business's failed-payment alerts get through quiet hours.
pub async fn billing_urgent(conn: &mut impl Link, business_id: &str) -> sqlx::Result<bool> {
    let urgent: Option<bool> =
        on!(conn, |cx| sqlx::query_scalar("SELECT billing_urgent FROM notification_defaults WHERE business_id = $1")
            .bind(business_id)
            .fetch_optional(cx)
            .await)?;
    Ok(urgent.unwrap_or(false))
}

pub async fn set_billing_urgent(w: &mut Write, business_id: &str, urgent: bool) -> sqlx::Result<()> {
    w.routing_changed(business_id);
    execute!(
        w,
        sqlx::query("UPDATE notification_defaults SET billing_urgent = $2 WHERE business_id = $1")
            .bind(business_id)
            .bind(urgent)
    )?;
    Ok(())
}

pub async fn set_update_window(w: &mut Write, business_id: &str, minutes: i64) -> sqlx::Result<()> {
    w.routing_changed(business_id);
    execute!(
        w,
        sqlx::query("UPDATE notification_defaults SET update_window_minutes = $2 WHERE business_id = $1")
            .bind(business_id)
            .bind(minutes)
    )?;
    Ok(())
}
