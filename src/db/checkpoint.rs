//! Keeps the write-ahead log small, on a connection of its own so no commit waits for it.
//!
//! Under load a `PASSIVE` checkpoint copies committed pages into the database file every quarter
//! second without blocking the writer (which completes it between batches, see
//! `Task::finish_checkpoint`, so the log starts over). Once the writer has been idle for a
//! moment, a `TRUNCATE` checkpoint empties the log file, so after a burst the WAL returns to
//! zero bytes instead of keeping its peak size.
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::SqliteConnection;

use crate::clock::unix_now_ms;

/// How long the writer must have been idle before the log is truncated.
const IDLE_FOR_TRUNCATE_MS: i64 = 1000;

/// When the writer last committed (unix ms). The writer owns it; the checkpointer watches it and
/// stops when the writer has stopped.
#[derive(Default)]
pub struct Activity(Arc<AtomicI64>);

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
    /// How long the writer has been idle; `None` once it has stopped.
    fn idle_ms(&self) -> Option<i64> {
        self.0.upgrade().map(|last| unix_now_ms() - last.load(Ordering::Relaxed))
    }
}

pub async fn run(mut conn: SqliteConnection, activity: Watch) {
    let wal = match wal_file(&mut conn).await {
        Ok(Some(path)) => path,
        _ => return,
    };
    let mut every = tokio::time::interval(Duration::from_millis(250));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(idle_ms) = activity.idle_ms() else { return };
        let pages = std::fs::metadata(&wal).map(|m| m.len() / 4096).unwrap_or(0) as i64;
        let sql = if pages == 0 {
            continue;
        } else if idle_ms >= IDLE_FOR_TRUNCATE_MS {
            "PRAGMA wal_checkpoint(TRUNCATE)"
        } else {
            "PRAGMA wal_checkpoint(PASSIVE)"
        };
        // A checkpoint that finds readers in the way simply runs again on a later tick.
        let started = std::time::Instant::now();
        match sqlx::query(sql).execute(&mut conn).await {
            Ok(_) => tracing::debug!(
                target: "kaicalls_notify::timing",
                checkpoint_us = started.elapsed().as_micros() as u64,
                pages,
                sql,
                "checkpoint"
            ),
            Err(e) => tracing::debug!(error = %e, sql, "checkpoint skipped"),
        }
    }
}

/// The path of the database's `-wal` file.
async fn wal_file(conn: &mut SqliteConnection) -> sqlx::Result<Option<std::path::PathBuf>> {
    let file: Option<String> =
        sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'").fetch_optional(conn).await?;
    Ok(file.filter(|f| !f.is_empty()).map(|f| format!("{f}-wal").into()))
}
