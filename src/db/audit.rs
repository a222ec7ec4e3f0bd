use super::Link;

use super::Write;
use crate::domain::audit::Change;

/// Appends changes made by `actor` (about `subject`, if a person) to the business's audit log.
pub async fn record(
    w: &mut Write,
    business_id: &str,
    actor: Option<i64>,
    subject: Option<i64>,
    changes: &[Change],
    now: i64,
) -> sqlx::Result<()> {
    for change in changes {
        execute!(
            w,
            sqlx::query(
                "INSERT INTO audit_log (business_id, actor_user_id, subject_user_id, change, old_value, new_value, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(business_id)
            .bind(actor)
            .bind(subject)
            .bind(&change.key)
            .bind(&change.old)
            .bind(&change.new)
            .bind(now)
        )?;
    }
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Entry {
    pub actor_name: Option<String>,
    pub subject_name: Option<String>,
    pub change: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub at: i64,
}

impl Entry {
    pub fn change(&self) -> Change {
        Change::new(self.change.clone(), self.old_value.clone(), self.new_value.clone())
    }
}

/// The newest entries first.
pub async fn recent(conn: &mut impl Link, business_id: &str, limit: i64) -> sqlx::Result<Vec<Entry>> {
    on!(conn, |cx| sqlx::query_as(
        "SELECT a.name AS actor_name, s.name AS subject_name, l.change, l.old_value, l.new_value, l.at
         FROM audit_log l
         LEFT JOIN users a ON a.id = l.actor_user_id
         LEFT JOIN users s ON s.id = l.subject_user_id
         WHERE l.business_id = $1
         ORDER BY l.id DESC LIMIT $2",
    )
    .bind(business_id)
    .bind(limit)
    .fetch_all(cx)
    .await)
}
