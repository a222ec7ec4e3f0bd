use super::Link;

use super::Write;

pub async fn create(w: &mut Write, user_id: i64, token_hash: &str, expires_at: i64) -> sqlx::Result<()> {
    execute!(
        w,
        sqlx::query("INSERT INTO invitations (token_hash, user_id, expires_at) VALUES ($1, $2, $3)")
            .bind(token_hash)
            .bind(user_id)
            .bind(expires_at)
    )?;
    Ok(())
}

/// Why an invitation link cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub enum InvitationProblem {
    Unknown,
    Used,
    Expired,
}

#[derive(Debug, sqlx::FromRow)]
pub struct Invitation {
    pub user_id: i64,
    pub business_id: String,
    pub name: String,
    pub email: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

pub async fn find(
    conn: &mut impl Link,
    token_hash: &str,
    now: i64,
) -> sqlx::Result<Result<Invitation, InvitationProblem>> {
    let found: Option<Invitation> = on!(conn, |cx| sqlx::query_as(
        "SELECT i.user_id, u.business_id, u.name, u.email, i.expires_at, i.used_at
         FROM invitations i JOIN users u ON u.id = i.user_id AND u.removed_at IS NULL
         WHERE i.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(cx)
    .await)?;
    Ok(match found {
        None => Err(InvitationProblem::Unknown),
        Some(i) if i.used_at.is_some() => Err(InvitationProblem::Used),
        Some(i) if i.expires_at <= now => Err(InvitationProblem::Expired),
        Some(i) => Ok(i),
    })
}

/// Marks the invitation used; false when another request used it first.
pub async fn mark_used(w: &mut Write, token_hash: &str, now: i64) -> sqlx::Result<bool> {
    let done = execute!(
        w,
        sqlx::query(
            "UPDATE invitations SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(token_hash)
    )?;
    Ok(done == 1)
}
