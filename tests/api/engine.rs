//! Which database the suite runs on, and for PostgreSQL a throwaway cluster of its own.
//!
//! The suite is compiled twice: `tests/api` runs on SQLite, `tests/api_postgres` runs the same
//! modules on PostgreSQL. The PostgreSQL run starts one cluster per test process from the
//! Debian binaries (`/usr/lib/postgresql/<version>/bin`), as the `postgres` user when the tests
//! run as root, listening on a socket in a temporary folder only, and gives every test database
//! of its own; or it uses the server at `KAI_TEST_POSTGRES_URL`. Where PostgreSQL is not
//! installed, the PostgreSQL copy is not built (see `tests/api_postgres/main.rs`).
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sqlx::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// The server tests make their databases on: a URL without a database name.
struct Server {
    /// `postgres://user@/?host=/socket/dir` or the given URL's server part.
    base: url::Url,
}

static SERVER: OnceLock<Option<Server>> = OnceLock::new();

fn server() -> Option<&'static Server> {
    SERVER.get_or_init(|| start(false)).as_ref()
}

/// A cluster of its own for benchmarks, durable like production (every commit is flushed to
/// disk, as SQLite's `synchronous=FULL` does): the URL of its `postgres` database.
#[allow(dead_code)] // used by examples/loadgen.rs
pub fn start_durable() -> Option<url::Url> {
    start(true).map(|s| s.base)
}

/// The database URL for a test's data folder: the same folder always names the same database,
/// so a restarted app finds what the first one stored.
pub async fn database_url(dir: &Path) -> String {
    match crate::ENGINE {
        Engine::Sqlite => url_of(dir),
        Engine::Postgres => {
            let server = server().expect("PostgreSQL could not be started for the tests");
            let name = database_name(dir);
            let mut admin =
                sqlx::PgConnection::connect(server.base.as_str()).await.expect("connect to the test server");
            let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
                .bind(&name)
                .fetch_optional(&mut admin)
                .await
                .unwrap();
            if exists.is_none() {
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.unwrap();
            }
            url_of(dir)
        }
    }
}

/// The database URL for a data folder, without making the database (see `database_url`).
pub fn url_of(dir: &Path) -> String {
    match crate::ENGINE {
        Engine::Sqlite => format!("sqlite://{}", dir.join("kaicalls.db").display()),
        Engine::Postgres => {
            let mut url = server().expect("PostgreSQL could not be started for the tests").base.clone();
            url.set_path(&database_name(dir));
            url.to_string()
        }
    }
}

fn database_name(dir: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut h);
    format!("kai_test_{:016x}", h.finish())
}

fn start(durable: bool) -> Option<Server> {
    if let (false, Ok(url)) = (durable, std::env::var("KAI_TEST_POSTGRES_URL")) {
        let mut base = url::Url::parse(&url).expect("KAI_TEST_POSTGRES_URL is a URL");
        base.set_path("postgres");
        return Some(Server { base });
    }
    let bin = postgres_bin()?;
    remove_stale_clusters();
    let suffix = if durable { "-durable" } else { "" };
    let dir = std::env::temp_dir().join(format!("kai-pg-{}{suffix}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let as_user = run_as();
    if let Some((uid, gid)) = as_user {
        let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
        // SAFETY: a valid C string and ids from getpwnam.
        unsafe { libc::chown(c.as_ptr(), uid, gid) };
    }
    let data = dir.join("data");
    let mut initdb = Command::new(bin.join("initdb"));
    initdb.args(["-D", data.to_str()?, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"]);
    let ok = with_user(&mut initdb, as_user).stdout(Stdio::null()).stderr(Stdio::null()).status().ok()?.success();
    if !ok {
        eprintln!("initdb failed in {}", dir.display());
        return None;
    }
    let (server_bin, socket) = (bin.clone(), dir.clone());
    // The server is started by a thread that lives as long as the test process: it dies with
    // the process (PR_SET_PDEATHSIG is tied to the thread that started it).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut postgres = Command::new(server_bin.join("postgres"));
        postgres.args(["-D", data.to_str().unwrap(), "-k", socket.to_str().unwrap(), "-c", "listen_addresses="]);
        for setting in [
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            "max_connections=400",
            "shared_buffers=64MB",
        ] {
            postgres.args(["-c", setting]);
        }
        with_user(&mut postgres, as_user).stdout(Stdio::null()).stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe; it only asks for a signal when this thread ends.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut postgres, || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT);
                Ok(())
            });
        }
        let child = postgres.spawn();
        let _ = tx.send(child.is_ok());
        if let Ok(mut child) = child {
            let _ = child.wait();
        }
        loop {
            std::thread::park();
        }
    });
    if !rx.recv().ok()? {
        return None;
    }
    // The socket appears before the server takes connections ("the database system is starting
    // up"): wait until it answers.
    let started = Instant::now();
    loop {
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-q", "-h", dir.to_str()?, "-p", "5432", "-U", "postgres"])
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            eprintln!("PostgreSQL did not start in {}", dir.display());
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut base = url::Url::parse("postgres://postgres@localhost/postgres").unwrap();
    base.query_pairs_mut().append_pair("host", dir.to_str()?);
    Some(Server { base })
}

fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|b| b.join("initdb").exists() && b.join("postgres").exists())
        .collect();
    versions.sort();
    versions.pop()
}

/// The `postgres` user's ids when the tests run as root (initdb refuses root).
fn run_as() -> Option<(u32, u32)> {
    // SAFETY: plain libc calls; the passwd entry is read at once.
    unsafe {
        if libc::geteuid() != 0 {
            return None;
        }
        let pw = libc::getpwnam(c"postgres".as_ptr());
        if pw.is_null() {
            return None;
        }
        Some(((*pw).pw_uid, (*pw).pw_gid))
    }
}

fn with_user(command: &mut Command, user: Option<(u32, u32)>) -> &mut Command {
    if let Some((uid, gid)) = user {
        std::os::unix::process::CommandExt::uid(command, uid);
        std::os::unix::process::CommandExt::gid(command, gid);
    }
    command
}

/// Clusters left by test processes that are gone.
fn remove_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("kai-pg-")) else { continue };
        let pid = pid.trim_end_matches("-durable");
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
