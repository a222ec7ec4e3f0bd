//! Several instances on one PostgreSQL database (the `api_postgres` suite only): each alert is
//! delivered once whichever instance accepted it, webhook ids and usage thresholds hold across
//! instances, settings changed on one apply to the next lead on another, sign-ins are valid on
//! every instance, and an instance killed mid-burst loses nothing.
use std::time::Duration;

use kaicalls_notify::db::{Conn, Link};

use crate::alerts::{sms_on, teammate};
use crate::crash::{business_with_sms, free_port, post_lead, serve, wait_until_up};
use crate::helpers::{TestApp, all_defaults_on, lead, location, spawn_app, spawn_with, usage};
use crate::twilio::TwilioServer;

/// A second instance on the same database as `app`, sending through the same SMTP and SMS
/// servers.
async fn second_instance(app: &TestApp) -> TestApp {
    spawn_with(app.dir.clone(), app.smtp.clone(), &app.smtp.url(), app.twilio.clone(), |_| {}).await
}

async fn count(app: &TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap()
}

#[tokio::test]
async fn five_hundred_leads_posted_alternately_to_two_instances_are_each_alerted_exactly_once() {
    let a = spawn_app().await;
    let b = second_instance(&a).await;
    let business = a.create_business("Acme", "owner@acme.test").await;
    let owner = a.login("owner@acme.test").await;
    sms_on(&a, &owner, "(555) 555-0100").await;

    // 64 connections at a time (as the burst test does): hundreds at once can outwait the
    // server's 5 s for a request head on a saturated 2-core machine.
    for wave in (0..500).collect::<Vec<usize>>().chunks(64) {
        let posts: Vec<_> = wave
            .iter()
            .map(|&i| {
                let app = if i % 2 == 0 { &a } else { &b };
                let (address, id, secret) = (app.address.clone(), business.id.clone(), business.secret.clone());
                tokio::spawn(async move {
                    let body = lead(&format!("L{i}"), Some(80));
                    crate::helpers::post_signed_to(&address, &id, &secret, &format!("m{i}"), &body).await
                })
            })
            .collect();
        for post in posts {
            assert_eq!(post.await.unwrap(), 202);
        }
    }

    // Each lead: one email and one text to the business, one in-app alert for the owner.
    a.wait_count("SELECT count(*) FROM deliveries WHERE status = 'sent'", 1500).await;
    a.twilio.wait_for(500).await;
    a.smtp.wait_for(500).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(a.twilio.received().len(), 500, "no text twice");
    assert_eq!(a.smtp.messages().len(), 500, "no email twice");
    assert_eq!(count(&a, "SELECT count(*) FROM notifications").await, 500);
    assert_eq!(count(&a, "SELECT count(*) FROM deliveries WHERE status NOT IN ('sent', 'skipped')").await, 0);
    let per_lead = "SELECT count(*) FROM (SELECT event_id FROM deliveries WHERE status = 'sent'
                    GROUP BY event_id HAVING count(*) <> 3) AS odd";
    assert_eq!(count(&a, per_lead).await, 0, "every lead: one text, one email, one in-app alert");
}

#[tokio::test]
async fn the_same_webhook_id_posted_to_both_instances_at_once_makes_one_event() {
    let a = spawn_app().await;
    let b = second_instance(&a).await;
    let business = a.create_business("Acme", "owner@acme.test").await;
    let body = lead("L-7", Some(90));

    for round in 0..20 {
        let id = format!("msg_same_{round}");
        let (on_a, on_b) = tokio::join!(a.post_event(&business, &id, &body), b.post_event(&business, &id, &body));
        let mut statuses = [on_a.status().as_u16(), on_b.status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 202], "one instance stores it, the other answers it was stored");
        let (x, y): (serde_json::Value, serde_json::Value) = (on_a.json().await.unwrap(), on_b.json().await.unwrap());
        assert_eq!(x["id"], y["id"], "both name the same event");
    }
    assert_eq!(count(&a, "SELECT count(*) FROM events").await, 20);
    // One lead, alerted once: the first version only (the same lead again is a duplicate).
    a.wait_count("SELECT count(*) FROM deliveries WHERE status = 'sent'", 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(a.smtp.messages().len(), 1);
}

#[tokio::test]
async fn a_settings_change_on_one_instance_applies_to_the_next_lead_the_other_accepts() {
    let a = spawn_app().await;
    let b = second_instance(&a).await;
    let business = a.create_business("Acme", "owner@acme.test").await;
    let owner = a.login("owner@acme.test").await;
    sms_on(&a, &owner, "(555) 555-0100").await;
    let sam = teammate(&a, &business, &owner, "50").await;
    let sms_off: Vec<(&str, &str)> = all_defaults_on().into_iter().filter(|(k, _)| *k != "sms_enabled").collect();
    let sms_off = [sms_off, vec![("notification_email", "owner@acme.test"), ("action", "save")]].concat();
    assert_eq!(a.post_form(&owner, "/settings/notifications/defaults", &sms_off).await.status(), 303);

    // B plans a lead with the settings it has cached: SMS off for the business.
    assert_eq!(b.post_event(&business, "m1", &lead("L1", Some(90))).await.status(), 202);
    b.wait_count("SELECT count(*) FROM deliveries WHERE status = 'sent'", 3).await;
    assert!(a.twilio.received().is_empty(), "SMS is off for the business");

    // A turns SMS on; the very next lead B accepts is texted to the business and to Sam.
    sms_on(&a, &owner, "(555) 555-0100").await;
    assert_eq!(b.post_event(&business, "m2", &lead("L2", Some(90))).await.status(), 202);
    let texts = a.twilio.wait_for(2).await;
    let mut to: Vec<&str> = texts.iter().map(|t| t.to.as_str()).collect();
    to.sort_unstable();
    assert_eq!(to, ["+15555550100", "+15555550101"]);

    // And a change to one person (Sam's threshold, on B) applies to the next lead on A.
    let prefs = [("sms_enabled", "on"), ("email_enabled", "on"), ("lead_created", "on"), ("min_lead_score", "95")];
    let recipient = a.recipient_id(sam).await.unwrap();
    let saved = b.post_form(&owner, &format!("/settings/notifications/recipients/{recipient}"), &prefs).await;
    assert_eq!(saved.status(), 303);
    assert_eq!(a.post_event(&business, "m3", &lead("L3", Some(90))).await.status(), 202);
    a.twilio.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let last: Vec<String> = a.twilio.received().iter().skip(2).map(|t| t.to.clone()).collect();
    assert_eq!(last, ["+15555550100"], "Sam's new threshold 95 is above the score 90");
}

#[tokio::test]
async fn a_sign_in_on_one_instance_holds_on_the_other_and_sign_out_on_either_ends_it() {
    let a = spawn_app().await;
    let b = second_instance(&a).await;
    a.create_business("Acme", "owner@acme.test").await;

    // The cookie store sends the same cookie to both (same host, other port).
    let client = a.login("owner@acme.test").await;
    assert_eq!(b.get(&client, "/settings/notifications").await.status(), 200, "signed in on B too");
    // A form shown by A is accepted by B: the CSRF token belongs to the session, not the instance.
    let token = crate::helpers::csrf_in(&a.get_html(&client, "/account").await);
    let out = client.post(b.url("/logout")).form(&[("csrf_token", token.as_str())]).send().await.unwrap();
    assert_eq!(out.status(), 303);
    let after = a.get(&client, "/settings/notifications").await;
    assert_eq!(after.status(), 303, "signed out on A as well");
    assert!(location(&after).starts_with("/login"));

    // And the other way round: in on B, out on A.
    let client = b.login("owner@acme.test").await;
    assert_eq!(a.get(&client, "/").await.status(), 200);
    assert_eq!(a.post_form(&client, "/logout", &[]).await.status(), 303);
    assert_eq!(b.get(&client, "/").await.status(), 303);
}

#[tokio::test]
async fn usage_thresholds_are_alerted_once_per_period_with_events_on_both_instances() {
    let a = spawn_app().await;
    let b = second_instance(&a).await;
    let business = a.create_business("Acme", "owner@acme.test").await;

    // Reports racing on both instances, crossing 75 %, 90 % and 100 % of the minutes.
    let posts: Vec<_> = (0..60)
        .map(|i| {
            let app = if i % 2 == 0 { &a } else { &b };
            let (address, id, secret) = (app.address.clone(), business.id.clone(), business.secret.clone());
            let body = usage(70 + i, 100, "2026-11-01");
            tokio::spawn(async move {
                crate::helpers::post_signed_to(&address, &id, &secret, &format!("u{i}"), &body).await
            })
        })
        .collect();
    for post in posts {
        assert_eq!(post.await.unwrap(), 202);
    }
    let thresholds: Vec<i64> =
        sqlx::query_scalar("SELECT threshold FROM usage_alerts ORDER BY threshold").fetch_all(&a.pool).await.unwrap();
    assert_eq!(thresholds, [75, 90, 100]);
    let planned = count(&a, "SELECT count(*) FROM events WHERE usage_threshold IS NOT NULL").await;
    assert_eq!(planned, 3, "one event alerts each threshold");
    a.smtp.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(a.smtp.messages().len(), 3, "one email per threshold");
}

/// A server that accepts connections and never answers: a send to it hangs until its lease runs
/// out.
async fn black_hole() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    url
}

#[tokio::test]
async fn an_instance_killed_mid_burst_leaves_its_alerts_to_the_other_which_sends_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let (business, secret) = business_with_sms(dir.path()).await;
    // A: the real binary, whose texts hang (its SMS API never answers), with a 2 s lease.
    let port = free_port();
    let mut a = serve(dir.path(), port, &black_hole().await);
    wait_until_up(port).await;
    for i in 0..40 {
        assert_eq!(post_lead(port, &business, &secret, &format!("m{i}"), &format!("L{i}")).await, 202);
    }
    a.0.kill().unwrap(); // SIGKILL, with every text claimed and in flight
    a.0.wait().unwrap();

    // B: the same database, a working SMS API. It takes A's texts once their lease runs out.
    let twilio = TwilioServer::start().await;
    let smtp = crate::smtp::SmtpServer::start().await;
    let dir = std::sync::Arc::new(dir);
    let b = spawn_with(dir, smtp.clone(), &smtp.url(), twilio.clone(), |_| {}).await;
    twilio.wait_for(40).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(twilio.received().len(), 40, "each text once");
    assert_eq!(count(&b, "SELECT count(*) FROM deliveries WHERE channel = 'sms' AND status = 'sent'").await, 40);
    assert_eq!(count(&b, "SELECT count(*) FROM deliveries WHERE channel = 'sms' AND status <> 'sent'").await, 0);
}

#[tokio::test]
async fn the_healthz_of_each_instance_reports_the_database() {
    let a = spawn_app().await;
    let body = reqwest::get(a.url("/healthz")).await.unwrap().text().await.unwrap();
    assert_eq!(body, "ok: PostgreSQL answers");
}

#[tokio::test]
async fn the_bell_open_on_one_instance_rings_for_a_lead_the_other_accepted() {
    let a = spawn_app().await;
    let b = second_instance(&a).await;
    let business = a.create_business("Acme", "owner@acme.test").await;
    let owner = a.login("owner@acme.test").await;

    let mut stream = a.get(&owner, "/notifications/stream").await;
    let first = String::from_utf8(stream.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    assert!(first.starts_with("event: bell") && !first.contains("1 unread"), "{first}");

    assert_eq!(b.post_event(&business, "m1", &lead("L1", Some(90))).await.status(), 202);
    let rang = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let chunk = stream.chunk().await.unwrap().expect("the stream stays open");
            let text = String::from_utf8(chunk.to_vec()).unwrap();
            if text.starts_with("event: bell") {
                return text;
            }
        }
    })
    .await
    .expect("A's stream hears of the alert B stored");
    assert!(rang.contains("Notifications: 1 unread"), "{rang}");
}

#[tokio::test]
async fn a_page_statement_past_the_time_limit_is_stopped_and_the_pool_lives_on() {
    let a = spawn_app().await;
    let mut page = a.db.read().await.unwrap();
    let Conn::Pg(conn) = page.conn() else { panic!("this suite runs on PostgreSQL") };
    let stopped = sqlx::query("SELECT pg_sleep(5)").execute(&mut *conn).await.unwrap_err();
    assert!(kaicalls_notify::db::is_interrupted(&stopped), "{stopped}");
    drop(page);
    let mut page = a.db.read().await.unwrap();
    let Conn::Pg(conn) = page.conn() else { unreachable!() };
    let answer: i32 = sqlx::query_scalar("SELECT 41 + 1").fetch_one(&mut *conn).await.unwrap();
    assert_eq!(answer, 42);
}

#[tokio::test]
async fn after_postgresql_drops_every_connection_the_instance_recovers_and_loses_nothing() {
    let a = spawn_app().await;
    let business = a.create_business("Acme", "owner@acme.test").await;
    let owner = a.login("owner@acme.test").await;
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name = 'kaicalls-notify' AND datname = current_database()",
    )
    .execute(&a.pool)
    .await
    .unwrap();

    // Kai retries a webhook the instance could not store (503); the retry is stored once.
    let mut statuses = Vec::new();
    for _ in 0..50 {
        let status = a.post_event(&business, "m1", &lead("L1", Some(90))).await.status().as_u16();
        statuses.push(status);
        if status == 202 || status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(statuses.iter().all(|s| [202, 200, 503].contains(s)), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&202), "stored once the writer reconnected: {statuses:?}");
    a.wait_count("SELECT count(*) FROM deliveries WHERE status = 'sent'", 2).await;
    assert_eq!(a.get(&owner, "/settings/notifications").await.status(), 200, "pages read again");
}

#[tokio::test]
async fn escalation_steps_falling_due_on_two_instances_at_once_go_out_once_each() {
    let a = spawn_app().await;
    let b = second_instance(&a).await;
    let business = a.create_business("Acme", "owner@acme.test").await;
    let owner = a.login("owner@acme.test").await;
    sms_on(&a, &owner, "(555) 555-0100").await;
    let sam = teammate(&a, &business, &owner, "50").await;
    let owner_id = crate::escalation::owner_id(&a).await;
    assert_eq!(crate::escalation::set_policy(&a, &owner, sam, owner_id).await.status(), 303);
    for i in 0..20 {
        let app = if i % 2 == 0 { &a } else { &b };
        assert_eq!(app.post_event(&business, &format!("m{i}"), &lead(&format!("L{i}"), Some(90))).await.status(), 202);
    }
    a.twilio.wait_for(40).await;

    // Both instances' clocks pass the 5 minutes together: each step is taken by both.
    a.dispatcher.advance_clock(Duration::from_secs(5 * 60));
    b.dispatcher.advance_clock(Duration::from_secs(5 * 60));
    a.wait_count("SELECT count(*) FROM escalations WHERE step = 1 AND state = 'fired'", 20).await;
    a.twilio.wait_for(60).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let unclaimed = a.twilio.received().into_iter().filter(|t| t.body.starts_with("Unclaimed 5 min")).count();
    assert_eq!(unclaimed, 20, "one escalation text a lead");
    assert_eq!(count(&a, "SELECT count(*) FROM events WHERE type = 'lead.escalated'").await, 20);
    assert_eq!(count(&a, "SELECT count(*) FROM escalations WHERE step = 2 AND state = 'pending'").await, 20);
}
