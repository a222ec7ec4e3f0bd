use std::sync::Arc;
use std::time::Duration;

use kaicalls_notify::domain::Role;

use crate::helpers::{TestApp, TestBusiness, all_defaults_on, lead, spawn_app, spawn_with, usage};
use crate::smtp::SmtpServer;
use crate::twilio::{self, Reply, TwilioServer};

/// Turns SMS on for the business and sets its phone.
pub async fn sms_on(app: &TestApp, owner: &reqwest::Client, phone: &str) {
    let mut fields = all_defaults_on();
    fields.push(("notification_email", "owner@acme.test"));
    fields.push(("notification_phone", phone));
    fields.push(("action", "save"));
    assert_eq!(app.post_form(owner, "/settings/notifications/defaults", &fields).await.status(), 303);
    app.phones_known_good().await;
}

/// Adds a teammate with a phone as a recipient with SMS and email at `threshold`.
pub async fn teammate(app: &TestApp, business: &TestBusiness, owner: &reqwest::Client, threshold: &str) -> i64 {
    let sam = app.add_user(business, "Sam", "sam@acme.test", Some("(555) 555-0101"), Role::Member).await;
    let id = app.add_recipient(owner, sam.id).await;
    let prefs = [
        ("sms_enabled", "on"),
        ("email_enabled", "on"),
        ("lead_created", "on"),
        ("lead_updated", "on"),
        ("min_lead_score", threshold),
    ];
    assert_eq!(app.post_form(owner, &format!("/settings/notifications/recipients/{id}"), &prefs).await.status(), 303);
    sam.id
}

pub async fn event_id(response: reqwest::Response) -> i64 {
    assert!(response.status().is_success(), "{}", response.status());
    response.json::<serde_json::Value>().await.unwrap()["id"].as_i64().unwrap()
}

#[tokio::test]
async fn a_lead_reaches_the_right_people_on_each_channel_exactly_once() {
    let app = spawn_app().await;
    let business = app.create_business("Acme Plumbing", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    sms_on(&app, &owner, "(555) 555-0100").await;
    teammate(&app, &business, &owner, "70").await;

    let low = event_id(app.post_event(&business, "msg_65", &lead("L-65", Some(65))).await).await;
    let high = event_id(app.post_event(&business, "msg_80", &lead("L-80", Some(80))).await).await;

    // Business phone: both leads. Sam: only the 80 lead.
    let sms = app.twilio.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sms = if sms.len() == 3 { app.twilio.received() } else { sms };
    let to_sam: Vec<_> = sms.iter().filter(|s| s.to == "+15555550101").collect();
    assert_eq!(to_sam.len(), 1);
    assert!(to_sam[0].body.starts_with("New lead 80: Jane Doe +15555550123 Burst pipe"), "{}", to_sam[0].body);
    assert!(to_sam[0].body.chars().count() <= 160);
    assert_eq!(sms.iter().filter(|s| s.to == "+15555550100").count(), 2);
    assert_eq!(sms.len(), 3);
    for s in &sms {
        assert_eq!(s.account, twilio::SID);
        assert_eq!(s.from, twilio::FROM);
        use base64::Engine;
        let expected = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", twilio::SID, twilio::TOKEN));
        assert_eq!(s.authorization, format!("Basic {expected}"));
    }
    // Email: the owner twice (notification email = their own: one each), Sam once.
    let emails = app.smtp.wait_for(3).await;
    assert_eq!(emails.iter().filter(|e| e.to == ["sam@acme.test"]).count(), 1);
    assert_eq!(emails.iter().filter(|e| e.to == ["owner@acme.test"]).count(), 2);
    let sam_email = emails.iter().find(|e| e.to == ["sam@acme.test"]).unwrap().data.replace("=\n", "");
    assert!(sam_email.contains("Subject: New lead: Jane Doe (score 80)"), "{sam_email}");
    assert!(sam_email.contains("List-Unsubscribe: <http://kaicalls.test/unsubscribe/"));
    assert!(sam_email.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
    assert!(sam_email.contains("Message-ID: <delivery-"));

    let low_decisions = app.decisions(low).await;
    assert!(
        low_decisions.contains(&(
            "Sam".into(),
            "sms".into(),
            "skipped".into(),
            "score 65 is below Sam’s threshold 70".into()
        )),
        "{low_decisions:?}"
    );
    app.wait_count("SELECT count(*) FROM deliveries WHERE status = 'pending'", 0).await;
    let high_decisions = app.decisions(high).await;
    assert!(high_decisions.contains(&("Sam".into(), "sms".into(), "sent".into(), "".into())), "{high_decisions:?}");
    assert!(
        high_decisions.iter().any(|d| d.0 == "Acme Plumbing Owner"
            && d.1 == "email"
            && d.2 == "skipped"
            && d.3 == "same address as the business's notification email, which gets it"),
        "the owner's own email equals the notification email: {high_decisions:?}"
    );
}

#[tokio::test]
async fn with_lead_alerts_off_nothing_is_sent_and_the_reason_is_recorded() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    let mut fields = all_defaults_on();
    fields.retain(|(k, _)| *k != "lead_created");
    fields.push(("action", "switches"));
    app.post_htmx(&owner, "/settings/notifications/defaults", &fields).await;

    let id = event_id(app.post_event(&business, "m1", &lead("L-1", Some(99))).await).await;

    app.wait_count("SELECT count(*) FROM events WHERE state = 'planned'", 1).await;
    assert_eq!(
        app.decisions(id).await,
        vec![("business".into(), "-".into(), "skipped".into(), "new-lead alerts are off for the business".into())]
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(app.smtp.messages().is_empty());
}

#[tokio::test]
async fn kai_resending_the_same_lead_under_a_new_webhook_id_alerts_once() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;

    event_id(app.post_event(&business, "m1", &lead("L-1", Some(50))).await).await;
    let second = event_id(app.post_event(&business, "m2", &lead("L-1", Some(50))).await).await;

    app.wait_count("SELECT count(*) FROM events WHERE state = 'duplicate'", 1).await;
    let note: String =
        sqlx::query_scalar("SELECT note FROM events WHERE id = $1").bind(second).fetch_one(&app.pool).await.unwrap();
    assert_eq!(note, "Kai sent this lead again under a new id; it was alerted the first time, so not again");
    app.smtp.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.smtp.messages().len(), 1);
}

#[tokio::test]
async fn usage_alerts_fire_once_per_threshold_per_period_and_only_the_highest() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;

    for (i, used) in [350, 475, 480, 600].into_iter().enumerate() {
        event_id(app.post_event(&business, &format!("u{i}"), &usage(used, 500, "2026-11-01")).await).await;
    }
    event_id(app.post_event(&business, "u-next", &usage(480, 500, "2026-12-01")).await).await;
    event_id(app.post_event(&business, "u-zero", &usage(480, 0, "2026-12-01")).await).await;

    app.wait_count("SELECT count(*) FROM events WHERE state = 'planned'", 6).await;
    let fired: Vec<(String, i64)> =
        sqlx::query_as("SELECT period_start, threshold FROM usage_alerts ORDER BY event_id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(fired, vec![("2026-11-01".into(), 90), ("2026-11-01".into(), 100), ("2026-12-01".into(), 90)]);
    let emails = app.smtp.wait_for(3).await;
    let subjects: Vec<String> =
        emails.iter().map(|e| e.data.lines().find(|l| l.starts_with("Subject:")).unwrap().to_owned()).collect();
    assert_eq!(subjects.len(), 3, "{subjects:?}");
    assert!(subjects[0].contains("90%") && subjects[1].contains("100%") && subjects[2].contains("90%"), "{subjects:?}");
}

#[tokio::test]
async fn a_payment_failure_alerts_once_per_attempt_in_plain_words() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let failed = serde_json::json!({"type": "billing.payment_failed", "data": {"invoice_id": "in_1", "amount_cents": 6900,
        "currency": "usd", "reason": "card_declined", "next_attempt_at": "2026-12-01T00:00:00Z"}});

    event_id(app.post_event(&business, "b1", &failed).await).await;
    event_id(app.post_event(&business, "b2", &failed).await).await;

    app.wait_count("SELECT count(*) FROM notifications", 1).await;
    let body: String = sqlx::query_scalar("SELECT body FROM notifications").fetch_one(&app.pool).await.unwrap();
    assert_eq!(
        body,
        "Payment of $69.00 failed (card declined). We'll retry on Dec 1. Update your payment method in Billing."
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let in_app: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications").fetch_one(&app.pool).await.unwrap();
    assert_eq!(in_app, 1);
}

#[tokio::test]
async fn email_waits_out_an_smtp_outage_and_is_delivered_once() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let placeholder = SmtpServer::start().await;
    let app =
        spawn_with(dir, placeholder, &format!("smtp://127.0.0.1:{port}"), TwilioServer::start().await, |_| {}).await;
    let business = app.create_business("Acme", "owner@acme.test").await;

    let id = event_id(app.post_event(&business, "m1", &lead("L-1", Some(50))).await).await;
    let retried =
        app.wait_count("SELECT max(attempts) FROM deliveries WHERE channel = 'email' AND status = 'pending'", 2).await;
    assert!(retried >= 2, "the email was retried while SMTP refused connections");
    let reason: String =
        sqlx::query_scalar("SELECT reason FROM deliveries WHERE channel = 'email' AND status = 'pending'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(reason.contains("the mail server at smtp://127.0.0.1"), "{reason}");

    let smtp = SmtpServer::start_on(port).await;

    assert_eq!(smtp.wait_for(1).await.len(), 1);
    app.wait_count("SELECT count(*) FROM deliveries WHERE channel = 'email' AND status = 'sent'", 1).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(smtp.messages().len(), 1, "delivered once");
    assert!(app.decisions(id).await.iter().any(|d| d.1 == "email" && d.2 == "sent"));
}

#[tokio::test]
async fn an_sms_api_error_500_is_retried_and_delivered_once() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    sms_on(&app, &owner, "(555) 555-0100").await;
    app.twilio.script(&[Reply::Error(500, 20500)]);

    event_id(app.post_event(&business, "m1", &lead("L-1", Some(50))).await).await;

    let sms = app.twilio.wait_for(2).await;
    app.wait_count("SELECT count(*) FROM deliveries WHERE channel = 'sms' AND status = 'sent'", 1).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(app.twilio.received().len(), 2, "one failed try, one success: {sms:?}");
    let (status, attempts): (String, i64) =
        sqlx::query_as("SELECT status, attempts FROM deliveries WHERE channel = 'sms'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), attempts), ("sent", 2));
}

#[tokio::test]
async fn an_invalid_number_is_not_retried_is_marked_and_the_owner_is_told() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    sms_on(&app, &owner, "(555) 555-0100").await;
    let sam = teammate(&app, &business, &owner, "0").await;
    // Sam's number is refused as invalid (the business phone's text goes).
    app.twilio.script_for("+15555550101", &[Reply::Error(400, 21211)]);

    event_id(app.post_event(&business, "m1", &lead("L-1", Some(50))).await).await;

    app.wait_count("SELECT count(*) FROM deliveries WHERE status = 'failed'", 1).await;
    let (reason,): (String,) =
        sqlx::query_as("SELECT reason FROM deliveries WHERE status = 'failed'").fetch_one(&app.pool).await.unwrap();
    assert!(reason.contains("error 21211"), "{reason}");
    let blocked: Option<String> = sqlx::query_scalar("SELECT phone_blocked_reason FROM users WHERE id = $1")
        .bind(sam)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(blocked.as_deref(), Some("the SMS provider says +15555550101 is not a valid phone number"));
    let told: String = sqlx::query_scalar("SELECT title FROM notifications WHERE user_id = $1 AND delivery_id IS NULL")
        .bind(business.owner.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(told, "SMS to Sam failed");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(app.twilio.received().len(), 2, "no retry of a permanent failure");

    // The next lead does not text the refused number.
    let second = event_id(app.post_event(&business, "m2", &lead("L-2", Some(50))).await).await;
    app.wait_count("SELECT count(*) FROM events WHERE state = 'planned'", 2).await;
    assert!(app.decisions(second).await.contains(&(
        "Sam".into(),
        "sms".into(),
        "skipped".into(),
        "the SMS provider says +15555550101 is not a valid phone number".into()
    )));
}

#[tokio::test]
async fn a_lease_that_expires_mid_send_is_not_sent_twice_while_the_first_is_running() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let smtp = SmtpServer::start().await;
    let twilio = TwilioServer::start().await;
    let app =
        spawn_with(dir, smtp.clone(), &smtp.url(), twilio, |c| c.dispatch.lease = Duration::from_millis(300)).await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    sms_on(&app, &owner, "(555) 555-0100").await;
    app.twilio.script(&[Reply::Slow(Duration::from_millis(2000))]);

    event_id(app.post_event(&business, "m1", &lead("L-1", Some(50))).await).await;

    app.wait_count("SELECT count(*) FROM deliveries WHERE channel = 'sms' AND status = 'sent'", 1).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(app.twilio.received().len(), 1, "the slow send was not repeated");
    let attempts: i64 =
        sqlx::query_scalar("SELECT attempts FROM deliveries WHERE channel = 'sms'").fetch_one(&app.pool).await.unwrap();
    assert!(attempts >= 2, "the expired lease was claimed again ({attempts}) but not sent again");
}
