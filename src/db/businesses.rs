use super::Link;
use crate::domain::quiet::Zone;

use super::{Write, audit, defaults, recipients};
use crate::domain::{BusinessDefaults, EmailAddress, PersonName, RecipientPrefs, Region, Role, audit::Change};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Business {
    pub id: String,
    pub name: String,
    pub region: String,
    pub webhook_secret: String,
    pub previous_secret_expires_at: Option<i64>,
}

impl Business {
    pub fn region(&self) -> Region {
        Region::parse(&self.region).unwrap_or_default()
    }
}

pub struct NewBusiness<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub region: Region,
    pub webhook_secret: &'a str,
    pub owner_name: &'a PersonName,
    pub owner_email: &'a EmailAddress,
    pub owner_password_hash: &'a str,
}

/// Creates a business with its owner, its notification defaults and the owner as the first
/// recipient, in one transaction. Returns the owner's user id.
pub async fn create(w: &mut Write, new: NewBusiness<'_>, now: i64) -> sqlx::Result<i64> {
    execute!(
        w,
        sqlx::query(
            "INSERT INTO businesses (id, name, region, webhook_secret, created_at) VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(new.id)
        .bind(new.name)
        .bind(new.region.code())
        .bind(new.webhook_secret)
        .bind(now)
    )?;
    let owner_id = super::users::insert(
        w,
        super::users::NewUser {
            business_id: new.id,
            name: new.owner_name,
            email: new.owner_email,
            phone: None,
            role: Role::Owner,
            password_hash: Some(new.owner_password_hash),
        },
        now,
    )
    .await?;
    defaults::insert(w, new.id, &BusinessDefaults::for_new_business(new.owner_email.clone()), now).await?;
    recipients::insert(w, new.id, owner_id, &RecipientPrefs::owner_at_creation(), now).await?;
    audit::record(w, new.id, Some(owner_id), Some(owner_id), &[Change::new("recipient.added", None, None)], now)
        .await?;
    Ok(owner_id)
}

pub async fn get(conn: &mut impl Link, id: &str) -> sqlx::Result<Option<Business>> {
    on!(conn, |cx| sqlx::query_as(
        "SELECT id, name, region, webhook_secret, previous_secret_expires_at FROM businesses WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(cx)
    .await)
}

/// How many leads a business has (kept by a trigger as leads are added).
pub async fn leads_count(conn: &mut impl Link, id: &str) -> sqlx::Result<i64> {
    on!(conn, |cx| sqlx::query_scalar("SELECT leads_count FROM businesses WHERE id = $1").bind(id).fetch_one(cx).await)
}

/// The signing keys a webhook may use now: the current secret, and the previous one for 24 hours
/// after a rotation.
pub async fn webhook_secrets(conn: &mut impl Link, id: &str, now: i64) -> sqlx::Result<Option<(Region, Vec<String>)>> {
    let row: Option<(String, String, Option<String>, Option<i64>)> = on!(conn, |cx| {
        sqlx::query_as(
        "SELECT region, webhook_secret, previous_webhook_secret, previous_secret_expires_at FROM businesses WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(cx)
    .await
    })?;
    Ok(row.map(|(region, current, previous, expires)| {
        let mut secrets = vec![current];
        if let (Some(previous), Some(expires)) = (previous, expires)
            && expires > now
        {
            secrets.push(previous);
        }
        (Region::parse(&region).unwrap_or_default(), secrets)
    }))
}

/// Replaces the webhook secret; the old one keeps working until `old_valid_until`.
pub async fn rotate_secret(w: &mut Write, id: &str, new_secret: &str, old_valid_until: i64) -> sqlx::Result<()> {
    on!(w, |cx| {
        sqlx::query(
        "UPDATE businesses SET previous_webhook_secret = webhook_secret, previous_secret_expires_at = $1, webhook_secret = $2
         WHERE id = $3",
    )
    .bind(old_valid_until)
    .bind(new_secret)
    .bind(id)
    .execute(cx)
    .await.map(|done| done.rows_affected())
    })?;
    Ok(())
}

/// The business's time zone as set by its owner (`None`: the one its region suggests), and its
/// region.
pub async fn time_zone(conn: &mut impl Link, business_id: &str) -> sqlx::Result<(Option<String>, String)> {
    on!(conn, |cx| sqlx::query_as("SELECT time_zone, region FROM businesses WHERE id = $1")
        .bind(business_id)
        .fetch_one(cx)
        .await)
}

pub async fn set_time_zone(w: &mut Write, business_id: &str, zone: &Zone) -> sqlx::Result<()> {
    w.routing_changed(business_id);
    execute!(w, sqlx::query("UPDATE businesses SET time_zone = $2 WHERE id = $1").bind(business_id).bind(zone.name()))?;
    Ok(())
}
