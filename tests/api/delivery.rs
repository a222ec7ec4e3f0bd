//! The delivery core: planning at ingest with cached settings, the in-memory hand-over, and the
//! dispatcher driven directly by a test.
use std::sync::Arc;
use std::time::Duration;

use kaicalls_notify::domain::Role;

use crate::alerts::{event_id, sms_on, teammate};
use crate::helpers::{TestApp, TestBusiness, all_defaults_on, lead, spawn_with};
use crate::smtp::SmtpServer;
use crate::twilio::{Reply, TwilioServer};

/// An application whose dispatcher runs only when the test says so.
async fn spawn_manual() -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    spawn_with(dir, smtp, &url, TwilioServer::start().await, |c| c.dispatch.autorun = false).await
}

fn texts_to(app: &TestApp, number: &str) -> usize {
    app.twilio.received().iter().filter(|s| s.to == number).count()
}

#[tokio::test]
async fn the_dispatcher_sends_what_the_writer_handed_over_without_reading_the_queue() {
    let app = spawn_manual().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    sms_on(&app, &owner, "(555) 555-0100").await;

    let id = event_id(app.post_event(&business, "m1", &lead("L-1", Some(80))).await).await;
    assert!(app.twilio.received().is_empty(), "nothing is sent before the dispatcher runs");
    let planned: Vec<String> =
        sqlx::query_scalar("SELECT status FROM deliveries WHERE event_id = $1 AND channel = 'sms'")
            .bind(id)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(planned, vec!["pending"], "planned and claimed in the same commit as the event");

    let report = app.dispatcher.run_once().await.unwrap();

    assert_eq!(report.handed_over, 3, "business email, business SMS, the owner's in-app alert");
    assert_eq!(report.claimed, 0, "nothing had to be read back from the database");
    assert_eq!(texts_to(&app, "+15555550100"), 1);
    assert_eq!(app.smtp.messages().len(), 1);
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT status FROM deliveries WHERE event_id = $1 AND status != 'skipped' ORDER BY id")
            .bind(id)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(statuses, vec!["sent", "sent", "sent"], "every outcome is recorded when run_once returns");
}

#[tokio::test]
async fn a_retry_that_falls_due_is_sent_then_and_not_before() {
    let app = spawn_manual().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    sms_on(&app, &owner, "(555) 555-0100").await;
    app.twilio.script(&[Reply::Error(503, 20503)]);
    event_id(app.post_event(&business, "m1", &lead("L-1", Some(80))).await).await;

    app.dispatcher.run_once().await.unwrap();
    assert_eq!(app.twilio.received().len(), 1, "the first try met a busy provider");
    let early = app.dispatcher.run_once().await.unwrap();
    assert_eq!(early.claimed, 0, "the retry is not due yet (about 200 ms in tests)");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let due = app.dispatcher.run_once().await.unwrap();

    assert_eq!(due.claimed, 1);
    assert_eq!(app.twilio.received().len(), 2);
    let (status, attempts): (String, i64) =
        sqlx::query_as("SELECT status, attempts FROM deliveries WHERE channel = 'sms'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), attempts), ("sent", 2));
}

#[tokio::test]
async fn a_settings_change_between_two_leads_applies_to_the_second() {
    let app = spawn_manual().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    sms_on(&app, &owner, "(555) 555-0100").await;
    let sam = teammate(&app, &business, &owner, "0").await;
    let sam_row = app.recipient_id(sam).await.unwrap();

    // First lead: the business phone and Sam are texted.
    event_id(app.post_event(&business, "m1", &lead("L-1", Some(60))).await).await;
    app.dispatcher.run_once().await.unwrap();
    assert_eq!((texts_to(&app, "+15555550100"), texts_to(&app, "+15555550101")), (1, 1));

    // Sam raises his threshold; the owner turns SMS off for the business.
    let prefs = [("sms_enabled", "on"), ("email_enabled", "on"), ("lead_created", "on"), ("min_lead_score", "70")];
    let path = format!("/settings/notifications/recipients/{sam_row}");
    assert_eq!(app.post_form(&owner, &path, &prefs).await.status(), 303);
    let second = event_id(app.post_event(&business, "m2", &lead("L-2", Some(60))).await).await;
    let decisions = app.decisions(second).await;
    assert!(
        decisions.contains(&(
            "Sam".into(),
            "sms".into(),
            "skipped".into(),
            "score 60 is below Sam’s threshold 70".into()
        )),
        "{decisions:?}"
    );

    let mut fields = all_defaults_on();
    fields.retain(|(k, _)| *k != "sms_enabled");
    fields.push(("action", "switches"));
    app.post_htmx(&owner, "/settings/notifications/defaults", &fields).await;
    let third = event_id(app.post_event(&business, "m3", &lead("L-3", Some(90))).await).await;
    app.dispatcher.run_once().await.unwrap();

    assert_eq!(texts_to(&app, "+15555550100"), 2, "the business phone: the first two leads, not the third");
    assert_eq!(texts_to(&app, "+15555550101"), 1, "Sam: only the first (below his new threshold, then SMS off)");
    assert!(app.decisions(third).await.contains(&(
        "business".into(),
        "sms".into(),
        "skipped".into(),
        "SMS is off for the business".into()
    )));
}

/// Acme texting only Ann ((555) 555-0107) every new lead (SMS on, no business phone: the
/// provider's scripted answers are hers alone, whatever order the workers send in); the
/// dispatcher run by hand.
async fn acme_texting_ann() -> (TestApp, TestBusiness, reqwest::Client) {
    let app = spawn_manual().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    let ann = app.add_user(&business, "Ann", "ann@acme.test", Some("(555) 555-0107"), Role::Member).await;
    let row = app.add_recipient(&owner, ann.id).await;
    let prefs = [("sms_enabled", "on"), ("lead_created", "on"), ("min_lead_score", "0")];
    let mut defaults = all_defaults_on();
    defaults.extend([("notification_email", "owner@acme.test"), ("action", "save")]);
    assert_eq!(app.post_form(&owner, "/settings/notifications/defaults", &defaults).await.status(), 303);
    assert_eq!(app.post_form(&owner, &format!("/settings/notifications/recipients/{row}"), &prefs).await.status(), 303);
    (app, business, owner)
}

#[tokio::test]
async fn a_number_the_provider_refuses_is_not_texted_for_the_next_lead() {
    let (app, business, owner) = acme_texting_ann().await;
    // The provider says Ann's number is not a number.
    app.twilio.script(&[Reply::Error(400, 21211)]);

    event_id(app.post_event(&business, "m1", &lead("L-1", Some(50))).await).await;
    app.dispatcher.run_once().await.unwrap();
    let second = event_id(app.post_event(&business, "m2", &lead("L-2", Some(50))).await).await;
    app.dispatcher.run_once().await.unwrap();

    assert_eq!(texts_to(&app, "+15555550107"), 1, "tried once, refused, never again");
    assert!(app.decisions(second).await.contains(&(
        "Ann".into(),
        "sms".into(),
        "skipped".into(),
        "the SMS provider says +15555550107 is not a valid phone number".into()
    )));
    let page = app.get_html(&owner, "/settings/notifications").await;
    assert!(page.contains(
        "The SMS provider says +15555550107 is not a valid phone number: a new number in Account turns SMS back on."
    ));
    assert!(!page.contains("Gets new-lead alerts by SMS"), "the page does not promise Ann texts routing will skip");
}

#[tokio::test]
async fn a_number_the_provider_says_opted_out_is_not_texted_until_it_replies_start() {
    let (app, business, _owner) = acme_texting_ann().await;
    // Ann replied STOP, but the text back never reached us: the provider refuses with 21610.
    app.twilio.script(&[Reply::Error(400, 21610)]);
    event_id(app.post_event(&business, "m1", &lead("L-1", Some(50))).await).await;
    app.dispatcher.run_once().await.unwrap();
    let second = event_id(app.post_event(&business, "m2", &lead("L-2", Some(50))).await).await;
    app.dispatcher.run_once().await.unwrap();
    assert_eq!(texts_to(&app, "+15555550107"), 1);
    assert!(app.decisions(second).await.contains(&(
        "Ann".into(),
        "sms".into(),
        "skipped".into(),
        "opted out by STOP".into()
    )));

    // START from her phone brings texts back.
    crate::sms_replies::text_back(&app, "+15555550107", "START", None).await;
    event_id(app.post_event(&business, "m3", &lead("L-3", Some(50))).await).await;
    app.dispatcher.run_once().await.unwrap();
    assert_eq!(texts_to(&app, "+15555550107"), 2);
}

#[tokio::test]
async fn a_burst_past_what_the_dispatcher_holds_in_memory_is_stored_and_each_lead_alerts_once() {
    let app = spawn_manual().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    // More events than the writer hands over in memory (256) while the dispatcher is not running,
    // 64 connections at a time (400 at once can outwait the server's 5 s for a request's head
    // when the test machine is saturated; the count is what matters here).
    let connections = Arc::new(tokio::sync::Semaphore::new(64));
    let posts: Vec<_> = (0..400)
        .map(|i| {
            let (app_url, body) = (app.address.clone(), lead(&format!("L-{i}"), Some(70)));
            let (id, secret, connections) = (business.id.clone(), business.secret.clone(), connections.clone());
            tokio::spawn(async move {
                let _turn = connections.acquire_owned().await.unwrap();
                crate::helpers::post_signed_to(&app_url, &id, &secret, &format!("m{i}"), &body).await
            })
        })
        .collect();
    // The same lead again under a new webhook id, and the same webhook id again.
    let again = app.post_event(&business, "m-again", &lead("L-1", Some(70))).await;
    let repeat = app.post_event(&business, "m5", &lead("L-5", Some(70))).await;
    for post in posts {
        assert!(post.await.unwrap().is_success());
    }
    assert!(again.status().is_success() && repeat.status().is_success());

    let unclaimed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE status = 'pending' AND lease_until_ms IS NULL")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(unclaimed > 0, "past the in-memory queue, deliveries wait in the database");

    let report = app.dispatcher.run_once().await.unwrap();

    assert_eq!(report.handed_over + report.claimed, 800, "an email and an in-app alert for each of the 400 leads");
    assert_eq!(report.claimed as i64, unclaimed);
    assert_eq!(app.smtp.messages().len(), 400);
    let leads: i64 = sqlx::query_scalar("SELECT leads_count FROM businesses").fetch_one(&app.pool).await.unwrap();
    assert_eq!(leads, 400);
    let sent: i64 =
        sqlx::query_scalar("SELECT CAST(sum(alerts_sent) AS BIGINT) FROM leads").fetch_one(&app.pool).await.unwrap();
    assert_eq!(sent, 800, "the leads page's counts follow the sends");
}
