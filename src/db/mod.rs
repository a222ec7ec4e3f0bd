//! Every SQL statement lives in this module. Queries use `$n` placeholders, `RETURNING` and
//! `ON CONFLICT` so they port to PostgreSQL unchanged (DESIGN.md §4).
pub mod app_settings;
pub mod audit;
pub mod businesses;
pub mod defaults;
pub mod deliveries;
pub mod events;
pub mod invitations;
pub mod leads;
pub mod notifications;
pub mod recipients;
pub mod sessions;
pub mod users;
pub mod writer;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

pub type Tx = Transaction<'static, Sqlite>;

/// Opens (creating if needed) the database and brings its schema up to date.
pub async fn connect(database_url: &str) -> anyhow::Result<SqlitePool> {
    let options = SqliteConnectOptions::from_str(database_url)
        .with_context(|| format!("DATABASE_URL {database_url} is not a SQLite URL"))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5))
        // Checkpoints run in the background (see `checkpoint_loop`), not inside a commit that
        // a webhook or a delivery is waiting for.
        .pragma("wal_autocheckpoint", "0");
    if let Some(parent) = options.get_filename().parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the database folder {}", parent.display()))?;
    }
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .with_context(|| format!("cannot open the database at {database_url}"))?;
    sqlx::migrate!("./migrations").run(&pool).await.context("cannot bring the database schema up to date")?;
    Ok(pool)
}

/// SQLite has one writer at a time. Writers of this process queue here, in order, instead of
/// meeting in SQLite's busy handler, which sleeps in growing steps (up to 100 ms) between tries.
static WRITE_GATE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A write transaction holding the process's write turn until it commits or is dropped.
pub struct WriteTx {
    tx: Tx,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl std::ops::Deref for WriteTx {
    type Target = Tx;
    fn deref(&self) -> &Tx {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Tx {
        &mut self.tx
    }
}

impl WriteTx {
    pub async fn commit(self) -> sqlx::Result<()> {
        self.tx.commit().await
    }
}

/// Starts a write transaction that takes the write lock at once (`BEGIN IMMEDIATE`), so it
/// waits its turn instead of failing with "database is locked" when it later writes.
pub async fn begin_write(pool: &SqlitePool) -> sqlx::Result<WriteTx> {
    let turn = WRITE_GATE.lock().await;
    let tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    Ok(WriteTx { tx, _turn: turn })
}

/// True when an error is a UNIQUE constraint violation.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Copies the write-ahead log back into the database file every half second, off the request
/// path. `PASSIVE` never blocks writers; a busy moment is simply caught up next time.
pub async fn checkpoint_loop(pool: SqlitePool) {
    let mut every = tokio::time::interval(Duration::from_millis(500));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
            tracing::debug!(error = %e, "checkpoint skipped");
        }
    }
}
