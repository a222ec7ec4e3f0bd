//! Keeps the write-ahead log small, on a connection of its own so no commit waits for it.
//!
//! Under load a `PASSIVE` checkpoint copies committed pages into the database file every quarter
//! second without blocking the writer (which completes it between batches, see
//! `Task::finish_checkpoint`, so the log starts over). Once the writer has been idle for a
//! moment, a `TRUNCATE` checkpoint empties the log file, so after a burst the WAL returns to
//! zero bytes instead of keeping its peak size.
//!
//! A `TRUNCATE` holds off every other writer (including another process on the same file, such
//! as the command line creating a business) while it waits for readers, so it is tried once per
//! burst of this process's own commits, and after a failure not again for a while.
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::SqliteConnection;

use crate::clock::unix_now_ms;

/// How long the writer must have been idle before the log is truncated.
const IDLE_FOR_TRUNCATE_MS: i64 = 1000;

const PASSIVE: &str = "PRAGMA wal_checkpoint(PASSIVE)";
const TRUNCATE: &str = "PRAGMA wal_checkpoint(TRUNCATE)";

/// How long to wait before truncating again after readers kept a `TRUNCATE` from finishing.
const RETRY_TRUNCATE_MS: i64 = 5_000;

/// When the writer last committed (unix ms). The writer owns it; the checkpointer watches it and
/// stops when the writer has stopped.
pub struct Activity(Arc<AtomicI64>);

impl Default for Activity {
    /// A writer that just started counts as busy, not idle since 1970.
    fn default() -> Self {
        Self(Arc::new(AtomicI64::new(unix_now_ms())))
    }
}

impl Activity {
    pub fn committed(&self) {
        self.0.store(unix_now_ms(), Ordering::Relaxed);
    }

    pub fn watch(&self) -> Watch {
        Watch(Arc::downgrade(&self.0))
    }
}

pub struct Watch(Weak<AtomicI64>);

impl Watch {
    /// When the writer last committed (unix ms); `None` once it has stopped.
    fn last_commit_ms(&self) -> Option<i64> {
        self.0.upgrade().map(|last| last.load(Ordering::Relaxed))
    }
}

pub async fn run(mut conn: SqliteConnection, activity: Watch) {
    let wal = match wal_file(&mut conn).await {
        Ok(Some(path)) => path,
        _ => return,
    };
    let mut every = tokio::time::interval(Duration::from_millis(250));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The commit the last TRUNCATE attempt followed, and when a failed one may be tried again.
    let mut truncated_after = None;
    let mut retry_at_ms = 0;
    loop {
        every.tick().await;
        let Some(last_commit_ms) = activity.last_commit_ms() else { return };
        let now = unix_now_ms();
        let pages = std::fs::metadata(&wal).map(|m| m.len() / 4096).unwrap_or(0) as i64;
        let truncate = now - last_commit_ms >= IDLE_FOR_TRUNCATE_MS;
        let sql = if pages == 0 {
            continue;
        } else if !truncate {
            PASSIVE
        } else if truncated_after == Some(last_commit_ms) || now < retry_at_ms {
            continue;
        } else {
            truncated_after = Some(last_commit_ms);
            TRUNCATE
        };
        // A PASSIVE checkpoint that finds readers in the way simply runs again on a later tick.
        let started = std::time::Instant::now();
        match sqlx::query_as::<_, (i64, i64, i64)>(sql).fetch_one(&mut conn).await {
            Ok((busy, _, _)) => {
                if truncate && busy != 0 {
                    retry_at_ms = now + RETRY_TRUNCATE_MS;
                    truncated_after = None;
                }
                tracing::debug!(
                    target: "kaicalls_notify::timing",
                    checkpoint_us = started.elapsed().as_micros() as u64,
                    pages,
                    busy,
                    sql,
                    "checkpoint"
                )
            }
            Err(e) => {
                if truncate {
                    retry_at_ms = now + RETRY_TRUNCATE_MS;
                    truncated_after = None;
                }
                tracing::debug!(error = %e, sql, "checkpoint skipped")
            }
        }
    }
}

/// The path of the database's `-wal` file.
async fn wal_file(conn: &mut SqliteConnection) -> sqlx::Result<Option<std::path::PathBuf>> {
    let file: Option<String> =
        sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'").fetch_optional(conn).await?;
    Ok(file.filter(|f| !f.is_empty()).map(|f| format!("{f}-wal").into()))
}
