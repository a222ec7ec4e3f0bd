//! What only the SQLite engine has: its write-ahead log file.
use std::time::Duration;

use crate::helpers::{spawn_app, usage};

#[tokio::test]
async fn the_write_ahead_log_returns_to_nothing_after_a_burst() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let posts: Vec<_> = (0..300)
        .map(|i| {
            let (address, id, secret) = (app.address.clone(), business.id.clone(), business.secret.clone());
            let body = usage(i, 100_000, "2026-11-01");
            tokio::spawn(async move {
                crate::helpers::post_signed_to(&address, &id, &secret, &format!("u{i}"), &body).await
            })
        })
        .collect();
    for p in posts {
        assert!(p.await.unwrap().is_success());
    }
    let wal = app.dir.path().join("kaicalls.db-wal");
    assert!(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) > 0, "the burst went through the log");

    let mut size = u64::MAX;
    for _ in 0..100 {
        size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        if size == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(size, 0, "the log is emptied once the writer is idle");
}

/// A database from before phones were confirmed by code: its numbers count as confirmed once the
/// new version opens it (texts keep going to them); a number without a phone stays without.
#[tokio::test]
async fn numbers_on_file_before_confirmation_existed_keep_getting_texts_after_the_upgrade() {
    use std::str::FromStr;
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    // The schema as version 0006 left it.
    let old = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.as_str() < "0007" {
            std::fs::copy(&path, old.path().join(name)).unwrap();
        }
    }
    let url = format!("sqlite://{}", dir.path().join("kaicalls.db").display());
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(&url).unwrap().create_if_missing(true);
    let mut conn = sqlx::ConnectOptions::connect(&options).await.unwrap();
    sqlx::migrate::Migrator::new(old.path()).await.unwrap().run(&mut conn).await.unwrap();
    for sql in [
        "INSERT INTO businesses (id, name, webhook_secret, created_at) VALUES ('biz_old', 'Old Co', 'whsec_x', 1)",
        "INSERT INTO notification_defaults (business_id, lead_created, lead_updated, usage_alerts, billing_alerts,
             email_enabled, sms_enabled, in_app_enabled, notification_phone, updated_at)
         VALUES ('biz_old', 1, 1, 1, 1, 1, 1, 1, '+15555550100', 5)",
        "INSERT INTO users (business_id, name, email, phone, role, created_at)
         VALUES ('biz_old', 'Sam', 'sam@old.test', '+15555550101', 'member', 7),
                ('biz_old', 'Ann', 'ann@old.test', NULL, 'member', 8)",
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    sqlx::Connection::close(conn).await.unwrap();

    let app = crate::helpers::spawn_app_in(dir, crate::smtp::SmtpServer::start().await).await;
    let people: Vec<(String, Option<i64>)> =
        sqlx::query_as("SELECT name, phone_confirmed_at FROM users ORDER BY name").fetch_all(&app.pool).await.unwrap();
    assert_eq!(people, vec![("Ann".into(), None), ("Sam".into(), Some(7))]);
    let business: Option<i64> =
        sqlx::query_scalar("SELECT phone_confirmed_at FROM notification_defaults").fetch_one(&app.pool).await.unwrap();
    assert_eq!(business, Some(5));
}

const BIN: &str = env!("CARGO_BIN_EXE_kaicalls-notify");

/// Runs the binary on a data folder's database; answers its exit code and what it printed.
fn run(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let output = std::process::Command::new(BIN)
        .args(args)
        .env_clear()
        .env("KAI_DATA_DIR", dir)
        .envs(crate::helpers::binary_env(dir))
        .output()
        .unwrap();
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.code(), text)
}

async fn webhook_ids(file: &std::path::Path) -> std::collections::HashSet<String> {
    let pool = crate::helpers::any_pool(&format!("sqlite://{}?mode=ro", file.display())).await;
    let ids: Vec<String> = sqlx::query_scalar("SELECT webhook_id FROM events").fetch_all(&pool).await.unwrap();
    pool.close().await;
    ids.into_iter().collect()
}

#[tokio::test]
async fn a_backup_taken_under_write_load_opens_and_holds_every_committed_event() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writing = {
        let (acked, stop) = (acked.clone(), stop.clone());
        let (address, id, secret) = (app.address.clone(), business.id.clone(), business.secret.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let body = crate::helpers::lead(&format!("L-{i}"), Some(50));
                let webhook = format!("w{i}");
                let status = crate::helpers::post_signed_to(&address, &id, &secret, &webhook, &body).await;
                assert!(status.is_success(), "{status}");
                acked.lock().unwrap().push(webhook);
                i += 1;
            }
        })
    };
    while acked.lock().unwrap().len() < 150 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before: Vec<String> = acked.lock().unwrap().clone();
    let file = app.dir.path().join("backup.db");
    let (dir, target) = (app.dir.path().to_owned(), file.display().to_string());
    let (code, out) = tokio::task::spawn_blocking(move || run(&dir, &["backup", &target])).await.unwrap();
    let during = acked.lock().unwrap().len();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writing.await.unwrap();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with(&format!("Backed up to {}: 1 business, ", file.display())), "{out}");
    assert!(out.contains("integrity checked"), "{out}");
    assert!(during > before.len(), "events kept coming while the backup ran ({} then {during})", before.len());

    let copied = webhook_ids(&file).await;
    let missing: Vec<&String> = before.iter().filter(|id| !copied.contains(*id)).collect();
    assert!(missing.is_empty(), "events acknowledged before the backup began are all in it: {missing:?}");
    assert!(copied.len() <= during + 1, "and nothing that was not written: {} of {during}", copied.len());

    // A backup never overwrites.
    let (dir, target) = (app.dir.path().to_owned(), file.display().to_string());
    let (code, out) = tokio::task::spawn_blocking(move || run(&dir, &["backup", &target])).await.unwrap();
    assert_eq!(code, Some(1));
    assert!(out.contains("exists already: choose a new file name"), "{out}");
}

#[tokio::test]
async fn a_restore_refuses_a_running_server_and_brings_a_backup_back() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    for i in 0..5 {
        let body = crate::helpers::lead(&format!("L-{i}"), Some(50));
        assert!(app.post_event(&business, &format!("w{i}"), &body).await.status().is_success());
    }
    let file = app.dir.path().join("backup.db");
    let (dir, target) = (app.dir.path().to_owned(), file.display().to_string());
    let (code, out) = tokio::task::spawn_blocking(move || run(&dir, &["backup", &target])).await.unwrap();
    assert_eq!(code, Some(0), "{out}");

    // The server still runs on its database: no restore over it.
    let (dir, target) = (app.dir.path().to_owned(), file.display().to_string());
    let (code, out) = tokio::task::spawn_blocking(move || run(&dir, &["restore", &target])).await.unwrap();
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("a server is running on"), "{out}");

    // A new machine: the restore brings everything back, and a server starts on it.
    let fresh = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let (dir, target) = (fresh.path().to_owned(), file.display().to_string());
    let (code, out) = tokio::task::spawn_blocking(move || run(&dir, &["restore", &target])).await.unwrap();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("1 business, 5 events"), "{out}");
    let restored = crate::helpers::spawn_app_in(fresh, crate::smtp::SmtpServer::start().await).await;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&restored.pool).await.unwrap();
    assert_eq!(events, 5);
    assert_eq!(
        restored.login_with(&crate::helpers::client(), "owner@acme.test", crate::helpers::PASSWORD).await.status(),
        303
    );

    // Restoring over a database that is not served keeps the one it replaces.
    let garbage = app.dir.path().join("not-a-backup.db");
    std::fs::write(&garbage, b"hello").unwrap();
    let (dir, target) = (app.dir.path().to_owned(), garbage.display().to_string());
    let (code, out) = tokio::task::spawn_blocking(move || run(&dir, &["restore", &target])).await.unwrap();
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("this backup cannot be restored"), "{out}");
}
