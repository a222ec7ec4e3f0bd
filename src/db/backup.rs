//! Backup and restore of the SQLite database (PostgreSQL has `pg_dump`).
//!
//! A backup is `VACUUM INTO` a new file: one read transaction, so a consistent copy of a live
//! database while the writer goes on (WAL mode lets both run). The copy is then opened and
//! checked before it gets its name. A restore refuses while a server has the database open:
//! every process serving it holds a shared `flock` on `{database}.lock`, which a restore must
//! take exclusively.
use std::fs::File;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, bail};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, SqliteConnection};

use super::Engine;

/// What a copy holds, as checked after it was made (or before it is restored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contents {
    pub businesses: i64,
    pub events: i64,
    pub deliveries: i64,
    pub migrations: i64,
    pub bytes: u64,
}

impl std::fmt::Display for Contents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} business{}, {} events, {} deliveries, schema at migration {} ({:.1} MB), integrity checked",
            self.businesses,
            if self.businesses == 1 { "" } else { "es" },
            self.events,
            self.deliveries,
            self.migrations,
            self.bytes as f64 / 1_000_000.0
        )
    }
}

/// The SQLite file a URL names; an error for PostgreSQL, which has its own tools.
pub fn sqlite_path(database_url: &str) -> anyhow::Result<PathBuf> {
    if Engine::of_url(database_url) == Some(Engine::Postgres) {
        bail!(
            "DATABASE_URL is PostgreSQL: back it up with pg_dump (pg_dump --format=custom --file=kaicalls.dump \"$DATABASE_URL\") \
             and restore with pg_restore (see the README)"
        );
    }
    let options = SqliteConnectOptions::from_str(database_url)
        .with_context(|| format!("DATABASE_URL {database_url} is not a SQLite URL"))?;
    Ok(options.get_filename().to_path_buf())
}

fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Held by each process serving the database, for as long as it runs (see the module's doc).
pub struct ServingLock(#[allow(dead_code)] File);

fn flock(file: &File, operation: libc::c_int) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock only reads the descriptor, which `file` keeps open for the call.
    unsafe { libc::flock(file.as_raw_fd(), operation | libc::LOCK_NB) == 0 }
}

/// Marks `database` as served by this process (several may serve it at once).
pub fn serving(database: &Path) -> anyhow::Result<ServingLock> {
    let path = lock_path(database);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    if !flock(&file, libc::LOCK_SH) {
        bail!("{} is being restored: wait for the restore to finish", database.display());
    }
    Ok(ServingLock(file))
}

/// Opens `path` read-only and checks it is a whole KaiCalls database.
async fn inspect(path: &Path) -> anyhow::Result<Contents> {
    let mut conn: SqliteConnection = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await
        .with_context(|| format!("{} does not open as a SQLite database", path.display()))?;
    let check: String = sqlx::query_scalar("PRAGMA quick_check")
        .fetch_one(&mut conn)
        .await
        .with_context(|| format!("{} is not a SQLite database", path.display()))?;
    if check != "ok" {
        bail!("{} is damaged: {check}", path.display());
    }
    let count = |table: &'static str| {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
    };
    let migrations: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut conn)
        .await
        .with_context(|| format!("{} is not a KaiCalls database (it has no schema history)", path.display()))?;
    let businesses = count("businesses").fetch_one(&mut conn).await?;
    let events = count("events").fetch_one(&mut conn).await?;
    let deliveries = count("deliveries").fetch_one(&mut conn).await?;
    conn.close().await?;
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Ok(Contents { businesses, events, deliveries, migrations, bytes })
}

/// Copies the live database at `database_url` to `to` (which must not exist yet), and checks
/// the copy opens and is whole.
pub async fn backup(database_url: &str, to: &Path) -> anyhow::Result<Contents> {
    let database = sqlite_path(database_url)?;
    if !database.exists() {
        bail!("there is no database at {} to back up", database.display());
    }
    if to.exists() {
        bail!("{} exists already: choose a new file name (a backup never overwrites)", to.display());
    }
    let partial = {
        let mut name = to.as_os_str().to_owned();
        name.push(".partial");
        PathBuf::from(name)
    };
    let _ = std::fs::remove_file(&partial);
    let target = partial.to_str().context("the backup's file name must be UTF-8")?.to_owned();
    let mut conn: SqliteConnection = SqliteConnectOptions::new()
        .filename(&database)
        .busy_timeout(std::time::Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("cannot open {}", database.display()))?;
    let copied = sqlx::query("VACUUM INTO ?").bind(&target).execute(&mut conn).await;
    conn.close().await?;
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&partial);
        bail!("the copy to {} failed: {e}", to.display());
    }
    let contents = match inspect(&partial).await {
        Ok(contents) => contents,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e.context("the copy did not check out, so it was deleted"));
        }
    };
    std::fs::rename(&partial, to).with_context(|| format!("cannot name the copy {}", to.display()))?;
    Ok(contents)
}

/// Replaces the database at `database_url` with the backup `from`, when no server has it open.
/// The database it replaces is kept beside it (`….replaced-{unix time}`); answers that name.
pub async fn restore(database_url: &str, from: &Path, now: i64) -> anyhow::Result<(Contents, Option<PathBuf>)> {
    let database = sqlite_path(database_url)?;
    if !from.exists() {
        bail!("there is no backup at {}", from.display());
    }
    let contents = inspect(from).await.context("this backup cannot be restored")?;
    if let Some(folder) = database.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).with_context(|| format!("cannot create {}", folder.display()))?;
    }
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path(&database))
        .with_context(|| format!("cannot open {}", lock_path(&database).display()))?;
    if !flock(&lock, libc::LOCK_EX) {
        bail!(
            "a server is running on {}: stop it first (a restore under a running server would lose what it writes)",
            database.display()
        );
    }
    let kept = if database.exists() {
        // Whatever the old database's log still holds goes into its file first, so the kept
        // copy is whole on its own.
        let mut conn: SqliteConnection = SqliteConnectOptions::new()
            .filename(&database)
            .connect()
            .await
            .with_context(|| format!("cannot open {}", database.display()))?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut conn).await?;
        conn.close().await?;
        let mut name = database.as_os_str().to_owned();
        name.push(format!(".replaced-{now}"));
        let kept = PathBuf::from(name);
        std::fs::rename(&database, &kept).with_context(|| format!("cannot move {} aside", database.display()))?;
        Some(kept)
    } else {
        None
    };
    for suffix in ["-wal", "-shm"] {
        let mut name = database.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
    let mut incoming = database.as_os_str().to_owned();
    incoming.push(".restoring");
    let incoming = PathBuf::from(incoming);
    std::fs::copy(from, &incoming).with_context(|| format!("cannot copy {}", from.display()))?;
    File::open(&incoming).and_then(|f| f.sync_all()).ok();
    std::fs::rename(&incoming, &database)
        .with_context(|| format!("cannot put the backup at {}", database.display()))?;
    drop(lock);
    Ok((contents, kept))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_is_pointed_to_its_own_tools_and_sqlite_names_its_file() {
        let e = sqlite_path("postgres://kai@db.internal/kaicalls").unwrap_err().to_string();
        assert!(e.contains("pg_dump") && e.contains("pg_restore"), "{e}");
        assert_eq!(sqlite_path("sqlite://data/kaicalls.db").unwrap(), PathBuf::from("data/kaicalls.db"));
        assert_eq!(lock_path(Path::new("data/kaicalls.db")), PathBuf::from("data/kaicalls.db.lock"));
    }
}
