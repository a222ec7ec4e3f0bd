use super::Link;

use super::Write;
use crate::domain::quiet::Zone;
use crate::domain::{EmailAddress, PersonName, PhoneNumber, Region, Role};

#[derive(Debug, Clone, sqlx::FromRow)]
struct UserRow {
    id: i64,
    business_id: String,
    name: String,
    email: String,
    phone: Option<String>,
    role: String,
    has_password: bool,
    phone_confirmed: bool,
    created_at: i64,
}

/// A person on a business's team who has not been removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub business_id: String,
    pub name: String,
    pub email: String,
    pub phone: Option<PhoneNumber>,
    pub role: Role,
    /// False while an invitation is waiting to be accepted.
    pub has_password: bool,
    /// The code texted to their phone was typed back (or the number predates confirmation).
    pub phone_confirmed: bool,
    pub created_at: i64,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        Self {
            id: row.id,
            business_id: row.business_id,
            name: row.name,
            email: row.email,
            phone: row.phone.map(PhoneNumber::from_stored),
            role: Role::parse(&row.role).unwrap_or(Role::Member),
            has_password: row.has_password,
            phone_confirmed: row.phone_confirmed,
            created_at: row.created_at,
        }
    }
}

const COLUMNS: &str = "id, business_id, name, email, phone, role, password_hash IS NOT NULL AS has_password,
    phone_confirmed_at IS NOT NULL AS phone_confirmed, created_at";

pub struct NewUser<'a> {
    pub business_id: &'a str,
    pub name: &'a PersonName,
    pub email: &'a EmailAddress,
    pub phone: Option<&'a PhoneNumber>,
    pub role: Role,
    pub password_hash: Option<&'a str>,
}

/// Inserts a user. A UNIQUE violation means the email is already on this business's team, or
/// (for a user with a password) already has an active account.
pub async fn insert(w: &mut Write, new: NewUser<'_>, now: i64) -> sqlx::Result<i64> {
    w.routing_changed(new.business_id);
    on!(w, |cx| sqlx::query_scalar(
        "INSERT INTO users (business_id, name, email, phone, role, password_hash, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(new.business_id)
    .bind(new.name.as_str())
    .bind(new.email.as_str())
    .bind(new.phone.map(PhoneNumber::as_str))
    .bind(new.role.as_str())
    .bind(new.password_hash)
    .bind(now)
    .fetch_one(cx)
    .await)
}

/// The active account with this email (any business) and its password hash, for login.
pub async fn find_for_login(conn: &mut impl Link, email: &str) -> sqlx::Result<Option<(User, String)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        user: UserRow,
        password_hash: String,
    }
    let sql = "SELECT id, business_id, name, email, phone, role, TRUE AS has_password,
               phone_confirmed_at IS NOT NULL AS phone_confirmed, created_at, password_hash
               FROM users WHERE lower(email) = lower($1) AND removed_at IS NULL AND password_hash IS NOT NULL";
    let row: Option<Row> = on!(conn, |cx| sqlx::query_as(sql).bind(email).fetch_optional(cx).await)?;
    Ok(row.map(|r| (r.user.into(), r.password_hash)))
}

pub async fn get_active(conn: &mut impl Link, business_id: &str, user_id: i64) -> sqlx::Result<Option<User>> {
    let row: Option<UserRow> = on!(conn, |cx| sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users WHERE id = $1 AND business_id = $2 AND removed_at IS NULL"
    )))
    .bind(user_id)
    .bind(business_id)
    .fetch_optional(cx)
    .await)?;
    Ok(row.map(User::from))
}

/// People on one team at most (a team is far smaller).
const MAX_TEAM: i64 = 1000;

pub async fn list_active(conn: &mut impl Link, business_id: &str) -> sqlx::Result<Vec<User>> {
    let rows: Vec<UserRow> = on!(conn, |cx| sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users WHERE business_id = $1 AND removed_at IS NULL
         ORDER BY CASE role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 ELSE 2 END, lower(name) LIMIT $2"
    )))
    .bind(business_id)
    .bind(MAX_TEAM)
    .fetch_all(cx)
    .await)?;
    Ok(rows.into_iter().map(User::from).collect())
}

/// Removes a user from the team: the row stays for the history, their recipient row and
/// sessions end.
pub async fn remove(w: &mut Write, business_id: &str, user_id: i64, now: i64) -> sqlx::Result<bool> {
    w.routing_changed(business_id);
    let done = execute!(
        w,
        sqlx::query("UPDATE users SET removed_at = $1 WHERE id = $2 AND business_id = $3 AND removed_at IS NULL")
            .bind(now)
            .bind(user_id)
            .bind(business_id)
    )?;
    execute!(
        w,
        sqlx::query("DELETE FROM recipients WHERE user_id = $1 AND business_id = $2").bind(user_id).bind(business_id)
    )?;
    super::deliveries::drop_held(w, business_id, user_id, "removed from the team while it was held for quiet hours")
        .await?;
    super::sessions::end_all(w, user_id).await?;
    execute!(
        w,
        sqlx::query("UPDATE invitations SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL")
            .bind(now)
            .bind(user_id)
    )?;
    Ok(done == 1)
}

pub async fn update_profile(
    w: &mut Write,
    business_id: &str,
    user_id: i64,
    name: &PersonName,
    phone: Option<&PhoneNumber>,
) -> sqlx::Result<()> {
    w.routing_changed(business_id);
    execute!(
        w,
        sqlx::query(
            "UPDATE users SET name = $1, phone = $2,
             phone_blocked_reason = CASE WHEN phone IS NOT DISTINCT FROM $2 THEN phone_blocked_reason ELSE NULL END,
             phone_confirmed_at = CASE WHEN phone IS NOT DISTINCT FROM $2 THEN phone_confirmed_at ELSE NULL END
         WHERE id = $3 AND business_id = $4 AND removed_at IS NULL",
        )
        .bind(name.as_str())
        .bind(phone.map(PhoneNumber::as_str))
        .bind(user_id)
        .bind(business_id)
    )?;
    Ok(())
}

/// Sets a new password and ends every session of the user (the caller renews its own). A
/// UNIQUE violation means the email already has an active account with another business.
pub async fn set_password(w: &mut Write, user_id: i64, password_hash: &str) -> sqlx::Result<()> {
    execute!(
        w,
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2 AND removed_at IS NULL")
            .bind(password_hash)
            .bind(user_id)
    )?;
    super::sessions::end_all(w, user_id).await?;
    Ok(())
}

pub async fn password_hash(conn: &mut impl Link, user_id: i64) -> sqlx::Result<Option<String>> {
    on!(conn, |cx| sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1 AND removed_at IS NULL")
        .bind(user_id)
        .fetch_optional(cx)
        .await)
    .map(Option::flatten)
}

/// A signed-in person, with what every page shows about their business and their inbox.
pub struct SignedIn {
    pub user: User,
    pub business_name: String,
    pub region: Region,
    pub unread: i64,
}

/// The signed-in user and their business's name, in one query (run on every request).
/// Also answers how many in-app notifications they have not read (kept by triggers).
pub async fn get_signed_in(conn: &mut impl Link, user_id: i64) -> sqlx::Result<Option<SignedIn>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        user: UserRow,
        business_name: String,
        business_region: String,
        unread: i64,
    }
    let row: Option<Row> = on!(conn, |cx| {
        sqlx::query_as(
        "SELECT u.id, u.business_id, u.name, u.email, u.phone, u.role, u.password_hash IS NOT NULL AS has_password,
                u.phone_confirmed_at IS NOT NULL AS phone_confirmed, u.created_at, b.name AS business_name, b.region AS business_region,
                u.unread
         FROM users u JOIN businesses b ON b.id = u.business_id
         WHERE u.id = $1 AND u.removed_at IS NULL AND u.password_hash IS NOT NULL",
    )
    .bind(user_id)
    .fetch_optional(cx)
    .await
    })?;
    Ok(row.map(|r| SignedIn {
        user: r.user.into(),
        business_name: r.business_name,
        region: Region::parse(&r.business_region).unwrap_or_default(),
        unread: r.unread,
    }))
}

/// Marks a phone number the SMS provider refused for good; cleared when the person changes it.
pub async fn block_phone(w: &mut Write, business_id: &str, user_id: i64, reason: &str) -> sqlx::Result<()> {
    w.routing_changed(business_id);
    execute!(
        w,
        sqlx::query("UPDATE users SET phone_blocked_reason = $1 WHERE id = $2 AND business_id = $3")
            .bind(reason)
            .bind(user_id)
            .bind(business_id)
    )?;
    Ok(())
}

/// The business a user belongs to.
pub async fn business_of(conn: &mut impl Link, user_id: i64) -> sqlx::Result<String> {
    on!(conn, |cx| sqlx::query_scalar("SELECT business_id FROM users WHERE id = $1").bind(user_id).fetch_one(cx).await)
}

/// How many in-app notifications a person has not read (kept by triggers).
pub async fn unread(conn: &mut impl Link, user_id: i64) -> sqlx::Result<i64> {
    on!(conn, |cx| sqlx::query_scalar("SELECT unread FROM users WHERE id = $1").bind(user_id).fetch_optional(cx).await)
        .map(Option::unwrap_or_default)
}

/// The people of a business whose phone the SMS provider refused: (name, why).
pub async fn refused_phones(conn: &mut impl Link, business_id: &str) -> sqlx::Result<Vec<(String, String)>> {
    on!(conn, |cx| sqlx::query_as(
        "SELECT name, phone_blocked_reason FROM users
         WHERE business_id = $1 AND removed_at IS NULL AND phone_blocked_reason IS NOT NULL ORDER BY name LIMIT $2",
    )
    .bind(business_id)
    .bind(MAX_TEAM)
    .fetch_all(cx)
    .await)
}

/// A person's own time zone, if they set one (else the business's applies).
pub async fn time_zone(conn: &mut impl Link, user_id: i64) -> sqlx::Result<Option<String>> {
    on!(conn, |cx| sqlx::query_scalar("SELECT time_zone FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(cx)
        .await)
    .map(Option::flatten)
}

/// Sets a person's own time zone (`None`: the business's).
pub async fn set_time_zone(w: &mut Write, business_id: &str, user_id: i64, zone: Option<&Zone>) -> sqlx::Result<()> {
    w.routing_changed(business_id);
    execute!(
        w,
        sqlx::query("UPDATE users SET time_zone = $3 WHERE id = $1 AND business_id = $2")
            .bind(user_id)
            .bind(business_id)
            .bind(zone.map(Zone::name))
    )?;
    Ok(())
}
