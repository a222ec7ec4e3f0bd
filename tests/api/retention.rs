//! Retention: what is older than it goes, in batches; nothing newer does; leads stay.
use kaicalls_notify::db::retention::{Cutoffs, prune_all};

use crate::alerts::{event_id, teammate};
use crate::helpers::{lead, spawn_app};

const DAY_MS: i64 = 24 * 3_600_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[tokio::test]
async fn retention_deletes_what_is_old_and_nothing_newer() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    teammate(&app, &business, &owner, "0").await;
    // Three leads long ago (their times are moved back below), then an update of the first
    // and a new lead today.
    let old: Vec<i64> = vec![
        event_id(app.post_event(&business, "a1", &lead("L-1", Some(60))).await).await,
        event_id(app.post_event(&business, "a2", &lead("L-2", Some(60))).await).await,
        event_id(app.post_event(&business, "a3", &lead("L-3", Some(60))).await).await,
    ];
    app.wait_count("SELECT count(*) FROM notifications", 3).await;
    for id in &old {
        sqlx::query("UPDATE events SET received_at_ms = received_at_ms - $1 WHERE id = $2")
            .bind(100 * DAY_MS)
            .bind(id)
            .execute(&app.pool)
            .await
            .unwrap();
    }
    sqlx::query("UPDATE notifications SET created_at = created_at - $1")
        .bind(100 * 86_400)
        .execute(&app.pool)
        .await
        .unwrap();
    let update = serde_json::json!({"type": "lead.updated", "data": {"lead_id": "L-1", "name": "Jane Doe",
        "phone": "+15555550123", "score": 70, "summary": "Booked", "occurred_at": "2026-11-29T10:00:00Z"}});
    let recent = [
        event_id(app.post_event(&business, "b1", &update).await).await,
        event_id(app.post_event(&business, "b2", &lead("L-4", Some(60))).await).await,
    ];
    app.wait_count("SELECT count(*) FROM notifications", 5).await;
    // Audit entries 401 and 300 days old.
    let audit: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM audit_log ORDER BY id LIMIT 2").fetch_all(&app.pool).await.unwrap();
    assert_eq!(audit.len(), 2, "setting up the business left audit entries");
    for (id, days) in audit.iter().zip([401, 300]) {
        sqlx::query("UPDATE audit_log SET at = at - $1 WHERE id = $2")
            .bind(days * 86_400)
            .bind(id)
            .execute(&app.pool)
            .await
            .unwrap();
    }
    let count = |sql: &'static str| {
        let pool = app.pool.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.unwrap() }
    };
    let deliveries_before = count("SELECT count(*) FROM deliveries").await;
    let of_a1: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE event_id = $1")
        .bind(old[0])
        .fetch_one(&app.pool)
        .await
        .unwrap();

    let deleted = prune_all(&app.db, Cutoffs::at(now_ms(), 90, 400), std::time::Duration::ZERO).await.unwrap();

    // a1 went (L-1 has a newer event); a2 and a3 stay: they are their leads' latest.
    let events: Vec<String> =
        sqlx::query_scalar("SELECT webhook_id FROM events ORDER BY id").fetch_all(&app.pool).await.unwrap();
    assert_eq!(events, vec!["a2", "a3", "b1", "b2"]);
    assert_eq!(deleted.events, 1);
    assert_eq!(deleted.deliveries as i64, of_a1);
    assert_eq!(count("SELECT count(*) FROM deliveries").await, deliveries_before - of_a1);
    // The inbox rows older than 90 days went, and only those.
    assert_eq!(count("SELECT count(*) FROM notifications").await, 2, "today's two stay");
    assert_eq!(deleted.inbox, 3);
    // The audit entry older than 400 days went; the one of 300 days stays.
    let kept: Vec<i64> = sqlx::query_scalar("SELECT id FROM audit_log WHERE id IN ($1, $2)")
        .bind(audit[0])
        .bind(audit[1])
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(kept, vec![audit[1]]);
    assert_eq!(deleted.audit, 1);
    // Leads stay, and the recent events' decisions are whole.
    assert_eq!(count("SELECT count(*) FROM leads").await, 4);
    for id in recent {
        assert!(!app.decisions(id).await.is_empty());
    }
    let leads = app.get_html(&owner, "/leads").await;
    assert!(leads.matches("Jane Doe").count() >= 4, "the Leads page still lists every lead");

    // Nothing is old any more: a second pass deletes nothing.
    let again = prune_all(&app.db, Cutoffs::at(now_ms(), 90, 400), std::time::Duration::ZERO).await.unwrap();
    assert_eq!(again.total(), 0);
}
