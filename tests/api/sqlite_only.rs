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
