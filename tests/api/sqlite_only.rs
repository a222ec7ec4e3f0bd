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
