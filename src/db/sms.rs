//! Texts: numbers that opted out (STOP), texts people sent back, and the SMS page's lists.
use super::{Link, Write};
use crate::domain::sms_status::CarrierStatus;

/// The businesses whose people or notification phone use `phone`, at most a few hundred.
async fn businesses_with(w: &mut Write, phone: &str) -> sqlx::Result<Vec<String>> {
    on!(w, |cx| sqlx::query_scalar(
        "SELECT business_id FROM users WHERE phone = $1 AND removed_at IS NULL
         UNION SELECT business_id FROM notification_defaults WHERE notification_phone = $1
         LIMIT 500",
    )
    .bind(phone)
    .fetch_all(cx)
    .await)
}

/// Marks `phone` opted out (it replied `keyword`); no text goes to it until it opts back in.
/// Answers false when it already was.
pub async fn opt_out(w: &mut Write, phone: &str, keyword: &str, now_ms: i64) -> sqlx::Result<bool> {
    for business in businesses_with(w, phone).await? {
        w.routing_changed(&business);
    }
    let done = execute!(
        w,
        sqlx::query(
            "INSERT INTO sms_opt_outs (phone, keyword, at_ms) VALUES ($1, $2, $3) ON CONFLICT (phone) DO NOTHING"
        )
        .bind(phone)
        .bind(keyword)
        .bind(now_ms)
    )?;
    Ok(done == 1)
}

/// Lets texts go to `phone` again (it replied START). Answers false when it was not opted out.
pub async fn opt_in(w: &mut Write, phone: &str) -> sqlx::Result<bool> {
    for business in businesses_with(w, phone).await? {
        w.routing_changed(&business);
    }
    let done = execute!(w, sqlx::query("DELETE FROM sms_opt_outs WHERE phone = $1").bind(phone))?;
    Ok(done == 1)
}

/// Keeps a text someone sent to our number, with what it did.
pub async fn record_inbound(
    w: &mut Write,
    from: &str,
    body: &str,
    outcome: &str,
    provider_id: Option<&str>,
    now_ms: i64,
) -> sqlx::Result<()> {
    execute!(
        w,
        sqlx::query(
            "INSERT INTO sms_inbound (from_phone, body, outcome, provider_id, received_at_ms) VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(from)
        .bind(body)
        .bind(outcome)
        .bind(provider_id)
        .bind(now_ms)
    )?;
    Ok(())
}

/// The last lead alert texted to a number since `since_ms`: the one "1" claims.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LastAlert {
    pub business_id: String,
    pub business_name: String,
    /// Whose text it was (the person, or the person a business copy was for).
    pub user_id: Option<i64>,
    pub lead_id: Option<String>,
}

/// The newest text sent to `phone` since `since_ms`, with the lead it was about, if any.
pub async fn last_text_to(conn: &mut impl Link, phone: &str, since_ms: i64) -> sqlx::Result<Option<LastAlert>> {
    on!(conn, |cx| sqlx::query_as(
        "SELECT d.business_id, b.name AS business_name, coalesce(d.user_id, d.claim_user_id) AS user_id, e.lead_id
         FROM deliveries d JOIN events e ON e.id = d.event_id JOIN businesses b ON b.id = d.business_id
         WHERE d.channel = 'sms' AND d.address = $1 AND d.status = 'sent' AND d.created_at_ms >= $2
         ORDER BY d.id DESC LIMIT 1",
    )
    .bind(phone)
    .bind(since_ms)
    .fetch_optional(cx)
    .await)
}

/// One text as the SMS page lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SentText {
    pub id: i64,
    pub event_id: i64,
    pub person_name: Option<String>,
    pub address: Option<String>,
    pub status: String,
    pub reason: Option<String>,
    carrier_status: Option<String>,
    pub carrier_error: Option<i64>,
    pub segments: Option<i64>,
    pub created_at_ms: i64,
    pub sent_at_ms: Option<i64>,
}

impl SentText {
    pub fn carrier_status(&self) -> Option<CarrierStatus> {
        self.carrier_status.as_deref().and_then(CarrierStatus::from_code)
    }
}

/// Which texts the SMS page lists.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextFilter {
    /// Only this person's texts (a member sees their own).
    pub user_id: Option<i64>,
    /// Only texts that did not arrive: failed, given up, or undelivered by the carrier.
    pub failures: bool,
    /// Older than this delivery id (the next page).
    pub before: Option<i64>,
}

const FAILED: &str = "(status IN ('failed', 'dead') OR carrier_status IN ('undelivered', 'failed'))";

/// A page of a business's texts (every one tried, not the decisions not to send), newest first:
/// at most `limit`.
pub async fn texts(conn: &mut impl Link, business_id: &str, f: TextFilter, limit: i64) -> sqlx::Result<Vec<SentText>> {
    let mut sql = String::from(
        "SELECT id, event_id, person_name, address, status, reason, carrier_status, carrier_error, segments,
                created_at_ms, sent_at_ms
         FROM deliveries WHERE business_id = $1 AND channel = 'sms' AND status <> 'skipped' AND id < $2",
    );
    if f.user_id.is_some() {
        sql.push_str(" AND user_id = $4");
    }
    if f.failures {
        sql.push_str(" AND ");
        sql.push_str(FAILED);
    }
    sql.push_str(" ORDER BY id DESC LIMIT $3");
    on!(conn, |cx| {
        let q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(business_id)
            .bind(f.before.unwrap_or(i64::MAX))
            .bind(limit);
        match f.user_id {
            Some(user) => q.bind(user).fetch_all(cx).await,
            None => q.fetch_all(cx).await,
        }
    })
}

/// A phone of the business (a person's or its notification phone) and what stops texts to it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NumberState {
    /// The person's id; 0 for the business's notification phone.
    pub user_id: i64,
    pub name: String,
    pub phone: String,
    /// The opt-out keyword it replied and when, if it opted out.
    pub opted_out: Option<String>,
    pub opted_out_at_ms: Option<i64>,
    pub confirmed: bool,
}

/// The business's numbers that cannot take texts now: opted out, or not confirmed.
pub async fn blocked_numbers(conn: &mut impl Link, business_id: &str) -> sqlx::Result<Vec<NumberState>> {
    on!(conn, |cx| sqlx::query_as(
        "SELECT u.id AS user_id, u.name, u.phone, o.keyword AS opted_out, o.at_ms AS opted_out_at_ms,
                u.phone_confirmed_at IS NOT NULL AS confirmed
         FROM users u LEFT JOIN sms_opt_outs o ON o.phone = u.phone
         WHERE u.business_id = $1 AND u.removed_at IS NULL AND u.phone IS NOT NULL
           AND (o.phone IS NOT NULL OR u.phone_confirmed_at IS NULL)
         UNION ALL
         SELECT 0, 'Business notification phone', d.notification_phone, o.keyword, o.at_ms,
                d.phone_confirmed_at IS NOT NULL
         FROM notification_defaults d LEFT JOIN sms_opt_outs o ON o.phone = d.notification_phone
         WHERE d.business_id = $1 AND d.notification_phone IS NOT NULL
           AND (o.phone IS NOT NULL OR d.phone_confirmed_at IS NULL)
         ORDER BY 1 LIMIT 1000",
    )
    .bind(business_id)
    .fetch_all(cx)
    .await)
}

/// A text someone sent to our number.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Inbound {
    pub from_phone: String,
    pub body: String,
    pub outcome: String,
    pub received_at_ms: i64,
}

/// The latest texts sent to our number from `phones` (the business's), newest first.
pub async fn inbound_from(conn: &mut impl Link, phones: &[String], limit: i64) -> sqlx::Result<Vec<Inbound>> {
    if phones.is_empty() {
        return Ok(Vec::new());
    }
    on!(conn, |cx| {
        let mut q = sqlx::QueryBuilder::new(
            "SELECT from_phone, body, outcome, received_at_ms FROM sms_inbound WHERE from_phone IN (",
        );
        let mut list = q.separated(", ");
        for phone in phones.iter().take(1000) {
            list.push_bind(phone.as_str());
        }
        q.push(") ORDER BY id DESC LIMIT ").push_bind(limit);
        q.build_query_as().fetch_all(cx).await
    })
}

/// The phone numbers of a business (its people's and its notification phone), at most 1000.
pub async fn phones_of(conn: &mut impl Link, business_id: &str) -> sqlx::Result<Vec<String>> {
    on!(conn, |cx| {
        sqlx::query_scalar(
        "SELECT phone FROM users WHERE business_id = $1 AND removed_at IS NULL AND phone IS NOT NULL
         UNION SELECT notification_phone FROM notification_defaults WHERE business_id = $1 AND notification_phone IS NOT NULL
         LIMIT 1000",
    )
    .bind(business_id)
    .fetch_all(cx)
    .await
    })
}

/// Whether `phone` replied STOP (and not START since).
pub async fn is_opted_out(conn: &mut impl Link, phone: &str) -> sqlx::Result<bool> {
    on!(conn, |cx| sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM sms_opt_outs WHERE phone = $1)")
        .bind(phone)
        .fetch_one(cx)
        .await)
}
