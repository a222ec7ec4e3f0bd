//! Codes texted to confirm a phone number, and the confirmations. `user_id` 0 is the business's
//! notification phone.
use super::{Link, Write};
use crate::domain::phone_code::Pending;

#[derive(sqlx::FromRow)]
struct Row {
    phone: String,
    code_hash: String,
    expires_at: i64,
    tries: i64,
    sends: i64,
    window_start: i64,
    sent_at: i64,
}

/// The code waiting for a person's phone (`user_id` 0: the business's), if any.
pub async fn pending(conn: &mut impl Link, business_id: &str, user_id: i64) -> sqlx::Result<Option<Pending>> {
    let row: Option<Row> = on!(conn, |cx| sqlx::query_as(
        "SELECT phone, code_hash, expires_at, tries, sends, window_start, sent_at
         FROM phone_codes WHERE business_id = $1 AND user_id = $2",
    )
    .bind(business_id)
    .bind(user_id)
    .fetch_optional(cx)
    .await)?;
    Ok(row.map(|r| Pending {
        phone: r.phone,
        code_hash: r.code_hash,
        expires_at: r.expires_at,
        tries: r.tries,
        sends: r.sends,
        window_start: r.window_start,
        sent_at: r.sent_at,
    }))
}

/// Stores a new code (any earlier one stops working).
pub async fn store(w: &mut Write, business_id: &str, user_id: i64, p: &Pending) -> sqlx::Result<()> {
    execute!(
        w,
        sqlx::query("DELETE FROM phone_codes WHERE business_id = $1 AND user_id = $2").bind(business_id).bind(user_id)
    )?;
    execute!(
        w,
        sqlx::query(
            "INSERT INTO phone_codes (business_id, user_id, phone, code_hash, expires_at, tries, sends, window_start, sent_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(business_id)
        .bind(user_id)
        .bind(&p.phone)
        .bind(&p.code_hash)
        .bind(p.expires_at)
        .bind(p.tries)
        .bind(p.sends)
        .bind(p.window_start)
        .bind(p.sent_at)
    )?;
    Ok(())
}

/// Counts a wrong try against the code.
pub async fn count_try(w: &mut Write, business_id: &str, user_id: i64) -> sqlx::Result<()> {
    execute!(
        w,
        sqlx::query("UPDATE phone_codes SET tries = tries + 1 WHERE business_id = $1 AND user_id = $2")
            .bind(business_id)
            .bind(user_id)
    )?;
    Ok(())
}

/// Confirms `phone` as the person's (or the business's) if it still is theirs; the code is used
/// up. Answers false when the number changed meanwhile.
pub async fn confirm(w: &mut Write, business_id: &str, user_id: i64, phone: &str, now: i64) -> sqlx::Result<bool> {
    w.routing_changed(business_id);
    execute!(
        w,
        sqlx::query("DELETE FROM phone_codes WHERE business_id = $1 AND user_id = $2").bind(business_id).bind(user_id)
    )?;
    let done = if user_id == 0 {
        execute!(
            w,
            sqlx::query(
                "UPDATE notification_defaults SET phone_confirmed_at = $3
                 WHERE business_id = $1 AND notification_phone = $2"
            )
            .bind(business_id)
            .bind(phone)
            .bind(now)
        )?
    } else {
        execute!(
            w,
            sqlx::query(
                "UPDATE users SET phone_confirmed_at = $4
                 WHERE id = $1 AND business_id = $2 AND phone = $3 AND removed_at IS NULL"
            )
            .bind(user_id)
            .bind(business_id)
            .bind(phone)
            .bind(now)
        )?
    };
    Ok(done == 1)
}

/// Whether a person's phone (`user_id` 0: the business's) is confirmed, with the number.
pub async fn state(conn: &mut impl Link, business_id: &str, user_id: i64) -> sqlx::Result<Option<(String, bool)>> {
    if user_id == 0 {
        on!(conn, |cx| sqlx::query_as(
            "SELECT notification_phone, phone_confirmed_at IS NOT NULL FROM notification_defaults
             WHERE business_id = $1 AND notification_phone IS NOT NULL",
        )
        .bind(business_id)
        .fetch_optional(cx)
        .await)
    } else {
        on!(conn, |cx| sqlx::query_as(
            "SELECT phone, phone_confirmed_at IS NOT NULL FROM users
             WHERE id = $1 AND business_id = $2 AND removed_at IS NULL AND phone IS NOT NULL",
        )
        .bind(user_id)
        .bind(business_id)
        .fetch_optional(cx)
        .await)
    }
}

/// Marks every phone of a business on file now (its people's and its notification phone) as
/// confirmed without a code: for numbers known to be right (the demo's data).
pub async fn known_good(w: &mut Write, business_id: &str, now: i64) -> sqlx::Result<()> {
    w.routing_changed(business_id);
    execute!(
        w,
        sqlx::query(
            "UPDATE users SET phone_confirmed_at = $2
             WHERE business_id = $1 AND phone IS NOT NULL AND phone_confirmed_at IS NULL"
        )
        .bind(business_id)
        .bind(now)
    )?;
    execute!(
        w,
        sqlx::query(
            "UPDATE notification_defaults SET phone_confirmed_at = $2
             WHERE business_id = $1 AND notification_phone IS NOT NULL AND phone_confirmed_at IS NULL"
        )
        .bind(business_id)
        .bind(now)
    )?;
    Ok(())
}
