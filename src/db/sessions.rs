//! Server-side sessions for actix-session, stored in our database. The cookie holds only a
//! random key; we store its SHA-256, so a copy of the database does not hand out live sessions.
use std::collections::HashMap;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;
use sqlx::SqlitePool;

use crate::clock::unix_now;
use crate::tokens::{fingerprint, random_token};

/// A session ends 14 days after sign-in however active it is.
pub const ABSOLUTE_LIFETIME_SECS: i64 = 14 * 24 * 3600;

/// The state keys that make a session signed in.
pub const USER_ID_KEY: &str = "user_id";

#[derive(Clone)]
pub struct SqliteSessionStore {
    pool: SqlitePool,
}

impl SqliteSessionStore {
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    async fn insert(&self, state: &HashMap<String, String>, ttl: &Duration) -> anyhow::Result<SessionKey> {
        let key = random_token();
        let now = unix_now();
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, state, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(fingerprint(&key))
        .bind(user_id_of(state))
        .bind(serde_json::to_string(state)?)
        .bind(now)
        .bind(now + ttl.whole_seconds())
        .execute(&self.pool)
        .await?;
        Ok(SessionKey::try_from(key)?)
    }
}

fn user_id_of(state: &HashMap<String, String>) -> Option<i64> {
    state.get(USER_ID_KEY).and_then(|v| serde_json::from_str(v).ok())
}

impl SessionStore for SqliteSessionStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<HashMap<String, String>>, LoadError> {
        let now = unix_now();
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM sessions WHERE id_hash = $1 AND expires_at > $2 AND created_at > $3")
                .bind(fingerprint(key.as_ref()))
                .bind(now)
                .bind(now - ABSOLUTE_LIFETIME_SECS)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| LoadError::Other(e.into()))?;
        state.map(|s| serde_json::from_str(&s).map_err(|e| LoadError::Deserialization(e.into()))).transpose()
    }

    async fn save(&self, state: HashMap<String, String>, ttl: &Duration) -> Result<SessionKey, SaveError> {
        self.insert(&state, ttl).await.map_err(SaveError::Other)
    }

    async fn update(
        &self,
        key: SessionKey,
        mut state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let json = serde_json::to_string(&state).map_err(|e| UpdateError::Serialization(e.into()))?;
        let done = sqlx::query("UPDATE sessions SET state = $1, user_id = $2, expires_at = $3 WHERE id_hash = $4")
            .bind(json)
            .bind(user_id_of(&state))
            .bind(unix_now() + ttl.whole_seconds())
            .bind(fingerprint(key.as_ref()))
            .execute(&self.pool)
            .await
            .map_err(|e| UpdateError::Other(e.into()))?;
        if done.rows_affected() == 1 {
            return Ok(key);
        }
        // The session was ended elsewhere (logout, password change, removal) while this request
        // ran: start a fresh, signed-out one rather than bring the old sign-in back.
        state.remove(USER_ID_KEY);
        self.insert(&state, ttl).await.map_err(UpdateError::Other)
    }

    async fn update_ttl(&self, key: &SessionKey, ttl: &Duration) -> Result<(), anyhow::Error> {
        let expires_at = unix_now() + ttl.whole_seconds();
        // Skip the write when the expiry would move by less than a minute.
        sqlx::query("UPDATE sessions SET expires_at = $1 WHERE id_hash = $2 AND expires_at < $1 - 60")
            .bind(expires_at)
            .bind(fingerprint(key.as_ref()))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(fingerprint(key.as_ref()))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Deletes sessions past their idle or absolute expiry; returns how many.
pub async fn delete_expired(pool: &SqlitePool) -> sqlx::Result<u64> {
    let now = unix_now();
    let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR created_at <= $2")
        .bind(now)
        .bind(now - ABSOLUTE_LIFETIME_SECS)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// How many live sessions a user has (tests and the account page use it).
pub async fn count_for_user(pool: &SqlitePool, user_id: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM sessions WHERE user_id = $1 AND expires_at > $2")
        .bind(user_id)
        .bind(unix_now())
        .fetch_one(pool)
        .await
}
