//! Server-side sessions for actix-session, stored in our database. The cookie holds only a
//! random key; we store its SHA-256, so a copy of the database does not hand out live sessions.
//! A session row exists only for people who signed in (the sign-in form needs none).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::Link;
use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;

use super::{Db, Write};
use crate::clock::unix_now;
use crate::tokens::{fingerprint, random_token};

/// A session ends 14 days after sign-in however active it is.
pub const ABSOLUTE_LIFETIME_SECS: i64 = 14 * 24 * 3600;

/// The state keys that make a session signed in.
pub const USER_ID_KEY: &str = "user_id";

/// An idle session's expiry moves at most this often (each move is a write).
const EXTEND_EVERY_SECS: i64 = 60;

#[derive(Clone)]
pub struct SqliteSessionStore {
    db: Db,
    /// When each session's expiry was last moved (by id hash), so a busy page does not write on
    /// every request.
    extended: Arc<Mutex<HashMap<String, i64>>>,
}

impl SqliteSessionStore {
    pub fn new(db: Db) -> Self {
        Self { db, extended: Arc::default() }
    }

    async fn insert(&self, state: &HashMap<String, String>, ttl: &Duration) -> anyhow::Result<SessionKey> {
        let key = random_token();
        let (id_hash, user_id, json) = (fingerprint(&key), user_id_of(state), serde_json::to_string(state)?);
        let (now, ttl) = (unix_now(), ttl.whole_seconds());
        self.db.write(move |w| Box::pin(insert(w, id_hash, user_id, json, now, ttl))).await?;
        Ok(SessionKey::try_from(key)?)
    }
}

async fn insert(
    w: &mut Write,
    id_hash: String,
    user_id: Option<i64>,
    state: String,
    now: i64,
    ttl: i64,
) -> sqlx::Result<()> {
    execute!(
        w,
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, state, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(id_hash)
        .bind(user_id)
        .bind(state)
        .bind(now)
        .bind(now + ttl)
    )?;
    Ok(())
}

fn user_id_of(state: &HashMap<String, String>) -> Option<i64> {
    state.get(USER_ID_KEY).and_then(|v| serde_json::from_str(v).ok())
}

impl SessionStore for SqliteSessionStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<HashMap<String, String>>, LoadError> {
        let now = unix_now();
        let mut conn = self.db.read().await.map_err(|e| LoadError::Other(e.into()))?;
        let state: Option<String> = on!(&mut conn, |cx| sqlx::query_scalar(
            "SELECT state FROM sessions WHERE id_hash = $1 AND expires_at > $2 AND created_at > $3"
        )
        .bind(fingerprint(key.as_ref()))
        .bind(now)
        .bind(now - ABSOLUTE_LIFETIME_SECS)
        .fetch_optional(cx)
        .await)
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
        let (id_hash, user_id, expires_at) =
            (fingerprint(key.as_ref()), user_id_of(&state), unix_now() + ttl.whole_seconds());
        let updated = self
            .db
            .write(move |w| {
                Box::pin(async move {
                    let done = execute!(
                        w,
                        sqlx::query("UPDATE sessions SET state = $1, user_id = $2, expires_at = $3 WHERE id_hash = $4")
                            .bind(json)
                            .bind(user_id)
                            .bind(expires_at)
                            .bind(id_hash)
                    )?;
                    Ok(done == 1)
                })
            })
            .await
            .map_err(|e| UpdateError::Other(e.into()))?;
        if updated {
            return Ok(key);
        }
        // The session was ended elsewhere (logout, password change, removal) while this request
        // ran: start a fresh, signed-out one rather than bring the old sign-in back.
        state.remove(USER_ID_KEY);
        self.insert(&state, ttl).await.map_err(UpdateError::Other)
    }

    async fn update_ttl(&self, key: &SessionKey, ttl: &Duration) -> Result<(), anyhow::Error> {
        let (id_hash, now) = (fingerprint(key.as_ref()), unix_now());
        {
            let mut extended = self.extended.lock().unwrap_or_else(|e| e.into_inner());
            if extended.get(&id_hash).is_some_and(|at| now - at < EXTEND_EVERY_SECS) {
                return Ok(());
            }
            if extended.len() > 100_000 {
                extended.clear();
            }
            extended.insert(id_hash.clone(), now);
        }
        let expires_at = now + ttl.whole_seconds();
        self.db
            .write(move |w| {
                Box::pin(async move {
                    execute!(
                        w,
                        sqlx::query("UPDATE sessions SET expires_at = $1 WHERE id_hash = $2")
                            .bind(expires_at)
                            .bind(id_hash)
                    )?;
                    Ok(())
                })
            })
            .await?;
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        let id_hash = fingerprint(key.as_ref());
        self.db.write(move |w| Box::pin(delete(w, id_hash))).await?;
        Ok(())
    }
}

async fn delete(w: &mut Write, id_hash: String) -> sqlx::Result<()> {
    execute!(w, sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash))?;
    Ok(())
}

/// Deletes sessions past their idle or absolute expiry; returns how many.
pub async fn delete_expired(w: &mut Write) -> sqlx::Result<u64> {
    let now = unix_now();
    let done = execute!(
        w,
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR created_at <= $2")
            .bind(now)
            .bind(now - ABSOLUTE_LIFETIME_SECS)
    )?;
    Ok(done)
}

/// How many live sessions a user has.
pub async fn count_for_user(conn: &mut impl Link, user_id: i64) -> sqlx::Result<i64> {
    on!(conn, |cx| sqlx::query_scalar("SELECT count(*) FROM sessions WHERE user_id = $1 AND expires_at > $2")
        .bind(user_id)
        .bind(unix_now())
        .fetch_one(cx)
        .await)
}

/// Ends every session of a person (removed from the team, or a new password).
pub async fn end_all(w: &mut Write, user_id: i64) -> sqlx::Result<u64> {
    execute!(w, sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id))
}
