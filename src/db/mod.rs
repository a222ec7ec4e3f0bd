//! Every SQL statement lives in this module. Queries use `$n` placeholders, `RETURNING` and
//! `ON CONFLICT`, and run on SQLite (the embedded default) or PostgreSQL (several instances on
//! one database), chosen by the scheme of `DATABASE_URL` (DESIGN.md §4). Each query is written
//! once and run through [`on!`] on whichever native connection a [`Link`] lends; the few that
//! must differ match on [`Conn`] side by side.
//!
//! How the process reaches the database:
//! - **One writer** per process. Every write goes through [`Db::write`] (or the typed fast
//!   paths [`Db::ingest`], [`Db::record`], [`Db::add_to_inbox`]) to a single task that owns the
//!   process's read-write connection and commits whatever is waiting in one transaction (group
//!   commit). Write functions take a [`Write`], which only that task hands out. On PostgreSQL
//!   the other instances hear of routing and inbox changes through `NOTIFY` (see `listen`).
//! - **Page reads** take a read-only connection from a small pool with [`Db::read`]; each one has
//!   a time limit, so no page can keep the database busy for long (on SQLite, or hold an old
//!   snapshot that stops the write-ahead log from being reset).
//! - **System reads** (health check, webhook keys, the dispatcher's retries) have their own
//!   read-only connections, so they never queue behind pages.

/// Runs one query (written once) on the engine behind a [`Link`]: the body is compiled for
/// each engine, with `$c` the concrete connection.
macro_rules! on {
    ($link:expr, |$c:ident| $body:expr) => {
        match $crate::db::Link::conn($link) {
            $crate::db::Conn::Lite($c) => $body,
            $crate::db::Conn::Pg($c) => $body,
        }
    };
}

/// Runs one statement that returns no rows on the engine behind a [`Link`]; answers the number
/// of rows it changed.
macro_rules! execute {
    ($link:expr, $query:expr) => {
        on!($link, |cx| $query.execute(cx).await.map(|done| done.rows_affected()))
    };
}

pub mod app_settings;
pub mod audit;
pub mod backup;
pub mod businesses;
pub mod checkpoint;
pub mod defaults;
pub mod deliveries;
pub mod escalations;
pub mod events;
pub mod ingest;
pub mod invitations;
pub mod leads;
mod listen;
pub mod notifications;
pub mod phone_codes;
pub mod recipients;
pub mod retention;
pub mod sessions;
pub mod sms;
pub mod users;
pub mod writer;

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::future::BoxFuture;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Postgres, Sqlite, SqliteConnection, SqlitePool};

pub use writer::{Handed, Handover, IngestError};

/// How long the statements of one page may run in all before the database is told to stop.
pub const PAGE_TIME_LIMIT: Duration = Duration::from_secs(2);
/// Page reads running at once; more wait for a free connection (at most `PAGE_WAIT`).
const PAGE_CONNECTIONS: u32 = 4;
const PAGE_WAIT: Duration = Duration::from_secs(3);
/// The write-ahead log is cut back to this size when it starts over after a checkpoint; under
/// load it stays below it (checkpoints complete every second), so the cut never lands in a
/// commit someone waits for.
const JOURNAL_SIZE_LIMIT: &str = "67108864";

/// One connection, to whichever engine the process runs on. Every query in `db/` is written
/// once and run on either through [`on!`]; the few statements that differ match on this.
pub enum Conn<'c> {
    Lite(&'c mut SqliteConnection),
    Pg(&'c mut PgConnection),
}

/// Anything that lends a connection for one query: a page's [`Reader`], the writer's
/// [`Write`], or a bare connection.
pub trait Link: Send {
    fn conn(&mut self) -> Conn<'_>;
}

impl Link for SqliteConnection {
    fn conn(&mut self) -> Conn<'_> {
        Conn::Lite(self)
    }
}

impl Link for PgConnection {
    fn conn(&mut self) -> Conn<'_> {
        Conn::Pg(self)
    }
}

/// Which database the process runs on, chosen by the scheme of `DATABASE_URL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

#[derive(Clone)]
enum Pools {
    Lite { pages: SqlitePool, system: SqlitePool },
    Pg { pages: PgPool, system: PgPool },
}

/// The database as the rest of the process sees it.
#[derive(Clone)]
pub struct Db {
    pools: Pools,
    writer: writer::Writer,
    /// A SQLite database is marked as served while this process has it open (a restore waits).
    _serving: Option<Arc<backup::ServingLock>>,
}

/// How the writer claims what it plans (the dispatcher's lease), and how PostgreSQL is used.
#[derive(Debug, Clone, Copy)]
pub struct WriterSettings {
    pub lease: Duration,
    /// Connections to PostgreSQL for pages (the writer, the system reads and the listener
    /// have their own).
    pub pool_size: u32,
    /// How long one PostgreSQL statement may run.
    pub statement_timeout: Duration,
}

impl WriterSettings {
    pub fn new(lease: Duration) -> Self {
        Self { lease, pool_size: PAGE_CONNECTIONS, statement_timeout: PAGE_TIME_LIMIT }
    }
}

fn options(database_url: &str) -> anyhow::Result<SqliteConnectOptions> {
    Ok(SqliteConnectOptions::from_str(database_url)
        .with_context(|| format!("DATABASE_URL {database_url} is not a SQLite URL"))?
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5)))
}

/// Opens the database named by the URL, brings its schema up to date and starts the writer.
/// `Handed` receives the deliveries the writer plans, right after each commit.
pub async fn open(database_url: &str, settings: WriterSettings) -> anyhow::Result<(Db, Handed)> {
    match Engine::of_url(database_url) {
        Some(Engine::Postgres) => open_postgres(database_url, settings).await,
        _ => open_sqlite(database_url, settings).await,
    }
}

async fn open_sqlite(database_url: &str, settings: WriterSettings) -> anyhow::Result<(Db, Handed)> {
    let base = options(database_url)?;
    if let Some(parent) = base.get_filename().parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the database folder {}", parent.display()))?;
    }
    let serving = Some(Arc::new(backup::serving(base.get_filename())?));
    let write_options = base
        .clone()
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        // Checkpoints run on their own connection (see `checkpoint`), not inside a commit that a
        // webhook or a delivery is waiting for; the log is cut back after each reset.
        .pragma("wal_autocheckpoint", "0")
        .pragma("journal_size_limit", JOURNAL_SIZE_LIMIT);
    let mut conn =
        write_options.connect().await.with_context(|| format!("cannot open the database at {database_url}"))?;
    sqlx::migrate!("./migrations/sqlite")
        .run(&mut conn)
        .await
        .context("cannot bring the database schema up to date")?;

    // Pages read small, indexed slices; the operating system caches the file for all of them.
    let read_options = base.read_only(true).pragma("cache_size", "-1024");
    let pages = SqlitePoolOptions::new()
        .max_connections(PAGE_CONNECTIONS)
        .acquire_timeout(PAGE_WAIT)
        .test_before_acquire(false)
        .connect_with(read_options.clone())
        .await
        .with_context(|| format!("cannot open the database at {database_url} for reading"))?;
    let system = SqlitePoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .test_before_acquire(false)
        .connect_with(read_options)
        .await
        .with_context(|| format!("cannot open the database at {database_url} for reading"))?;
    // A TRUNCATE checkpoint holds off every writer while it waits for readers to move on: it
    // gives up after a moment (and tries again later) rather than stall a writer for seconds.
    let checkpointer = write_options
        .busy_timeout(Duration::from_millis(100))
        .connect()
        .await
        .context("cannot open the database for checkpoints")?;

    let (writer, handover, activity) = writer::Writer::start(writer::Owned::Lite(conn), settings);
    tokio::spawn(checkpoint::run(checkpointer, activity));
    Ok((Db { pools: Pools::Lite { pages, system }, writer, _serving: serving }, handover))
}

/// The URL without its password, for messages.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "the PostgreSQL URL".to_owned(),
    }
}

pub(crate) fn pg_options(database_url: &str, statement_timeout: Duration) -> anyhow::Result<PgConnectOptions> {
    let options = PgConnectOptions::from_str(database_url)
        .map_err(|e| anyhow::anyhow!("DATABASE_URL {} is not a PostgreSQL URL: {e}", redacted(database_url)))?;
    let timeout = format!("{}ms", statement_timeout.as_millis());
    Ok(options.application_name("kaicalls-notify").options([("statement_timeout", timeout.as_str())]))
}

async fn open_postgres(database_url: &str, settings: WriterSettings) -> anyhow::Result<(Db, Handed)> {
    let base = pg_options(database_url, settings.statement_timeout)?;
    let shown = redacted(database_url);
    let connect = |options: PgConnectOptions| {
        let shown = shown.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(10), options.connect())
                .await
                .map_err(|_| anyhow::anyhow!("cannot reach PostgreSQL at {shown}: no answer in 10 s"))?
                .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL at {shown}: {e}"))
        }
    };
    // The writer's statements are not timed: like SQLite's writer, it runs what it was given
    // (a year of history, a large batch) to the end.
    let unlimited = PgConnectOptions::from_str(database_url)?.application_name("kaicalls-notify");
    let mut conn: PgConnection = connect(unlimited.clone()).await?;
    // Instances starting together take turns at the schema.
    sqlx::query("SELECT pg_advisory_lock(7427001)").execute(&mut conn).await?;
    let migrated = sqlx::migrate!("./migrations/postgres").run(&mut conn).await;
    sqlx::query("SELECT pg_advisory_unlock(7427001)").execute(&mut conn).await?;
    migrated.context("cannot bring the database schema up to date")?;

    let read_options = base.clone().options([("default_transaction_read_only", "on")]);
    let pool = |size: u32| {
        PgPoolOptions::new().max_connections(size).acquire_timeout(PAGE_WAIT).connect_with(read_options.clone())
    };
    let pages = pool(settings.pool_size.max(1)).await.with_context(|| format!("cannot open {shown} for reading"))?;
    let system = pool(2).await.with_context(|| format!("cannot open {shown} for reading"))?;
    let (writer, handover, _activity) = writer::Writer::start(writer::Owned::Pg(conn, Box::new(unlimited)), settings);
    let db = Db { pools: Pools::Pg { pages, system }, writer, _serving: None };
    tokio::spawn(listen::run(base, db.clone()));
    Ok((db, handover))
}

impl Db {
    pub fn engine(&self) -> Engine {
        match self.pools {
            Pools::Lite { .. } => Engine::Sqlite,
            Pools::Pg { .. } => Engine::Postgres,
        }
    }

    /// A read-only connection for one page, with the page's time limit set on it (PostgreSQL:
    /// each statement's, set on the connection).
    pub async fn read(&self) -> sqlx::Result<Reader> {
        match &self.pools {
            Pools::Lite { pages, .. } => {
                let mut conn = pages.acquire().await?;
                let deadline = Instant::now() + PAGE_TIME_LIMIT;
                conn.lock_handle().await?.set_progress_handler(10_000, move || Instant::now() < deadline);
                Ok(Reader::Lite(conn))
            }
            Pools::Pg { pages, .. } => Ok(Reader::Pg(pages.acquire().await?)),
        }
    }

    /// A connection for the process's own small reads, apart from the pages.
    pub async fn system(&self) -> sqlx::Result<Reader> {
        match &self.pools {
            Pools::Lite { system, .. } => Ok(Reader::Lite(system.acquire().await?)),
            Pools::Pg { system, .. } => Ok(Reader::Pg(system.acquire().await?)),
        }
    }

    /// Runs `job` in the writer's next transaction and answers once that transaction has
    /// committed. A job that fails is rolled back alone (a savepoint); the others commit.
    pub async fn write<T, F>(&self, job: F) -> sqlx::Result<T>
    where
        T: Send + 'static,
        F: for<'w> FnOnce(&'w mut Write) -> BoxFuture<'w, sqlx::Result<T>> + Send + 'static,
    {
        self.writer.run(job).await
    }

    /// Stores a webhook event durably and plans its deliveries in the same commit.
    pub async fn ingest(&self, event: writer::NewEvent) -> Result<events::Stored, IngestError> {
        self.writer.ingest(event).await
    }

    /// Records what became of a delivery; true once it is committed.
    pub async fn record(&self, outcome: deliveries::Outcome) -> bool {
        self.writer.record(vec![outcome]).await
    }

    /// Stores several delivery outcomes in one commit: a message's and those of the deliveries
    /// it carried, so that none is seen without the others.
    pub async fn record_all(&self, outcomes: Vec<deliveries::Outcome>) -> bool {
        self.writer.record(outcomes).await
    }

    /// Puts an alert in a person's in-app inbox; true once it is committed.
    pub async fn add_to_inbox(&self, notification: notifications::NewNotification) -> bool {
        self.writer.add_to_inbox(notification).await
    }

    /// Tells of every person whose inbox changed, right after the commit that changed it (on
    /// PostgreSQL, a commit by any instance).
    pub fn inbox_changes(&self) -> tokio::sync::broadcast::Receiver<i64> {
        self.writer.inbox_changes()
    }

    /// True when the database answers a query.
    pub async fn healthy(&self) -> bool {
        match self.system().await {
            Ok(mut conn) => execute!(&mut conn, sqlx::query("SELECT 1")).is_ok(),
            Err(_) => false,
        }
    }
}

/// A read-only connection lent to one page.
pub enum Reader {
    Lite(PoolConnection<Sqlite>),
    Pg(PoolConnection<Postgres>),
}

impl Link for Reader {
    fn conn(&mut self) -> Conn<'_> {
        match self {
            Reader::Lite(c) => Conn::Lite(&mut *c),
            Reader::Pg(c) => Conn::Pg(&mut *c),
        }
    }
}

/// The writer's connection, lent to one write at a time inside the writer's transaction. Write
/// functions take it, so every write goes through the writer; the ones that change what the
/// routing rules read say so, and the writer's settings cache forgets that business.
pub struct Write {
    conn: writer::Owned,
    routing_changed: HashSet<String>,
    inbox_changed: HashSet<i64>,
}

impl Write {
    fn new(conn: writer::Owned) -> Self {
        Self { conn, routing_changed: HashSet::new(), inbox_changed: HashSet::new() }
    }

    /// Marks the routing settings of a business (defaults, recipients, their people) as changed.
    pub fn routing_changed(&mut self, business_id: &str) {
        self.routing_changed.insert(business_id.to_owned());
    }

    /// Marks a person's in-app inbox as changed; their open pages hear of it after the commit.
    pub fn inbox_changed(&mut self, user_id: i64) {
        self.inbox_changed.insert(user_id);
    }
}

impl Link for Write {
    fn conn(&mut self) -> Conn<'_> {
        self.conn.conn()
    }
}

/// True when an error is a UNIQUE constraint violation.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// True when the database stopped a statement because its page ran out of time.
pub fn is_interrupted(err: &sqlx::Error) -> bool {
    // SQLITE_INTERRUPT, or PostgreSQL's query_canceled (statement_timeout)
    matches!(err, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("9" | "57014")))
}

/// For `check-config`: whether the database answers, and how far its schema is, without
/// changing anything (`serve` creates it and applies what is missing). Answers the line to
/// show, or what is wrong.
pub async fn check(database_url: &str) -> Result<String, String> {
    use sqlx::Connection;
    match Engine::of_url(database_url) {
        Some(Engine::Postgres) => {
            let shown = redacted(database_url);
            let options = PgConnectOptions::from_str(database_url).map_err(|e| e.to_string())?;
            let mut conn = tokio::time::timeout(Duration::from_secs(10), options.connect())
                .await
                .map_err(|_| format!("no answer from PostgreSQL at {shown} in 10 s: check the host and port"))?
                .map_err(|e| format!("cannot connect to PostgreSQL at {shown}: {e}"))?;
            let total = sqlx::migrate!("./migrations/postgres").migrations.len();
            let applied: Option<i64> = sqlx::query_scalar(APPLIED).fetch_one(&mut conn).await.ok();
            let _ = conn.close().await;
            Ok(format!("PostgreSQL at {shown} answers; {}", schema_words(applied, total)))
        }
        _ => {
            let options = options(database_url).map_err(|e| e.to_string())?;
            let path = options.get_filename().to_path_buf();
            let total = sqlx::migrate!("./migrations/sqlite").migrations.len();
            if !path.exists() {
                let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
                return match folder.metadata() {
                    Ok(m) if m.permissions().readonly() => {
                        Err(format!("{} is read-only: serve cannot create the database there", folder.display()))
                    }
                    _ => Ok(format!("SQLite at {} does not exist yet: serve creates it", path.display())),
                };
            }
            let mut conn = options
                .read_only(true)
                .connect()
                .await
                .map_err(|e| format!("cannot open the SQLite database at {}: {e}", path.display()))?;
            let applied: Option<i64> = sqlx::query_scalar(APPLIED).fetch_one(&mut conn).await.ok();
            let _ = conn.close().await;
            Ok(format!("SQLite at {} opens; {}", path.display(), schema_words(applied, total)))
        }
    }
}

/// How many migrations a database has applied (none: it has no schema table yet).
const APPLIED: &str = "SELECT count(*) FROM _sqlx_migrations WHERE success";

fn schema_words(applied: Option<i64>, total: usize) -> String {
    match applied.map(|n| n as usize) {
        Some(n) if n >= total => format!("its schema is up to date ({total} migrations)"),
        Some(n) => format!("{n} of {total} migrations applied: serve applies the rest on start"),
        None => "it has no schema yet: serve creates it on start".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_page_query_past_its_time_limit_is_stopped_and_the_connection_lives_on() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let (db, _handed) = open(&url, WriterSettings::new(Duration::from_secs(60))).await.unwrap();
        let endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n";

        let started = Instant::now();
        let mut page = db.read().await.unwrap();
        let stopped = on!(&mut page, |cx| sqlx::query(endless).fetch_one(cx).await.map(|_| ())).unwrap_err();

        assert!(is_interrupted(&stopped), "{stopped}");
        let took = started.elapsed();
        assert!(took >= PAGE_TIME_LIMIT && took < PAGE_TIME_LIMIT * 3, "stopped after {took:?}");
        drop(page);
        // The next page gets a fresh limit on the same connections.
        let answer: i64 =
            on!(&mut db.read().await.unwrap(), |cx| sqlx::query_scalar("SELECT 41 + 1").fetch_one(cx).await).unwrap();
        assert_eq!(answer, 42);
        assert!(matches!(crate::web::error::AppError::from(stopped), crate::web::error::AppError::TooSlow));
    }
}
