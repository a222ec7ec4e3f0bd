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
        .busy_timeout(Duration::from_secs(5));
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

/// Starts a write transaction that takes the write lock at once, so it waits on the busy timeout
/// instead of failing with "database is locked" when it later writes.
pub async fn begin_write(pool: &SqlitePool) -> sqlx::Result<Tx> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// True when an error is a UNIQUE constraint violation.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}
