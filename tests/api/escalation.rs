//! Escalation: a hot lead nobody claims within the owner's limit goes to the next people, then
//! to the owner; a claim stops it; the timers survive a restart and never fire twice. Time is
//! the dispatcher's clock, moved forward by the tests (no waiting minutes).
use std::sync::Arc;
use std::time::Duration;

use kaicalls_notify::domain::Role;

use crate::alerts::{sms_on, teammate};
use crate::helpers::{TestApp, TestBusiness, client, spawn_with};
use crate::smtp::SmtpServer;
use crate::twilio::TwilioServer;

const MINUTE: Duration = Duration::from_secs(60);

/// An application on `dir` whose dispatcher runs only when the test says so (`after`).
async fn spawn_manual_in(dir: Arc<tempfile::TempDir>, smtp: SmtpServer) -> TestApp {
    let url = smtp.url();
    spawn_with(dir, smtp, &url, TwilioServer::start().await, |c| c.dispatch.autorun = false).await
}

async fn spawn_manual() -> TestApp {
    spawn_manual_in(Arc::new(tempfile::tempdir().unwrap()), SmtpServer::start().await).await
}

/// The owner's policy: leads scoring 70 or more, not claimed in 5 minutes, go to Sam by SMS and
/// in-app; 10 minutes later to the owner.
pub async fn set_policy(app: &TestApp, owner: &reqwest::Client, sam: i64, owner_id: i64) -> reqwest::Response {
    let (sam, owner_id) = (sam.to_string(), owner_id.to_string());
    let fields = [
        ("enabled", "on"),
        ("min_score", "70"),
        ("first_minutes", "5"),
        ("first_people", sam.as_str()),
        ("sms", "on"),
        ("in_app", "on"),
        ("second", "on"),
        ("second_minutes", "10"),
        ("second_people", owner_id.as_str()),
    ];
    app.post_form(owner, "/settings/notifications/escalation", &fields).await
}

pub async fn owner_id(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT id FROM users WHERE email = 'owner@acme.test'").fetch_one(&app.pool).await.unwrap()
}

/// A business texting new leads to its phone and to Sam (threshold 50), with the policy above.
async fn escalating(app: &TestApp) -> (TestBusiness, reqwest::Client, i64) {
    let business = app.create_business("Acme Plumbing", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    sms_on(app, &owner, "(555) 555-0100").await;
    let sam = teammate(app, &business, &owner, "50").await;
    let saved = set_policy(app, &owner, sam, owner_id(app).await).await;
    assert_eq!(crate::helpers::location(&saved), "/settings/notifications?saved=escalation#escalation");
    (business, owner, sam)
}

fn hot_lead() -> serde_json::Value {
    serde_json::json!({"type": "lead.created", "data": {"lead_id": "L-1", "name": "Jane Doe", "phone": "+15555550123",
        "score": 90, "summary": "Burst pipe under the sink", "occurred_at": "2026-11-29T10:00:00Z"}})
}

/// The escalation timers: (step, state, note).
async fn timers(pool: &sqlx::AnyPool) -> Vec<(i64, String, Option<String>)> {
    sqlx::query_as("SELECT step, state, note FROM escalations ORDER BY step").fetch_all(pool).await.unwrap()
}

async fn escalation_events(pool: &sqlx::AnyPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE type = 'lead.escalated'").fetch_one(pool).await.unwrap()
}

/// Moves the dispatcher's clock and waits until what fell due is sent.
async fn after(app: &TestApp, by: Duration) {
    app.dispatcher.advance_clock(by);
    app.dispatcher.run_once().await.unwrap();
}

fn unclaimed_texts(twilio: &TwilioServer) -> Vec<crate::twilio::Sms> {
    twilio.received().into_iter().filter(|t| t.body.starts_with("Unclaimed")).collect()
}

#[tokio::test]
async fn an_unclaimed_hot_lead_goes_to_the_next_people_after_the_limit_then_to_the_owner() {
    let app = spawn_manual().await;
    let (business, owner, _) = escalating(&app).await;
    let page = app.get_html(&owner, "/settings/notifications").await;
    assert!(
        page.contains(
            "If a lead scoring at least 70 is not claimed within 5 min, alert Sam by SMS or In-app; then after 10 \
             more min, alert Acme Plumbing Owner."
        ),
        "{page}"
    );
    assert_eq!(app.post_event(&business, "m1", &hot_lead()).await.status(), 202);
    after(&app, Duration::ZERO).await;
    app.twilio.wait_for(2).await;

    // Four minutes: nothing yet.
    after(&app, 4 * MINUTE).await;
    assert_eq!(escalation_events(&app.pool).await, 0);
    assert_eq!(timers(&app.pool).await, vec![(1, "pending".to_owned(), None)]);

    // Five: Sam gets the escalation by SMS, with his claim link; his in-app is off, and says so.
    after(&app, MINUTE).await;
    let texts = unclaimed_texts(&app.twilio);
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert_eq!(texts[0].to, "+15555550101");
    assert!(texts[0].body.starts_with("Unclaimed 5 min, lead 90: Jane Doe +15555550123"), "{}", texts[0].body);
    assert!(texts[0].body.contains(" Claim: http://kaicalls.test/c/") && texts[0].body.len() <= 160);
    let decisions: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT d.status, d.reason FROM deliveries d JOIN events e ON e.id = d.event_id
         WHERE e.type = 'lead.escalated' ORDER BY d.seq",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        decisions,
        vec![("sent".to_owned(), None), ("skipped".to_owned(), Some("Sam turned In-app off".to_owned()))]
    );
    assert_eq!(
        timers(&app.pool).await,
        vec![(1, "fired".to_owned(), None), (2, "pending".to_owned(), None)],
        "the second step waits its 10 minutes"
    );
    let leads = app.get_html(&owner, "/leads").await;
    assert!(leads.contains("Escalated: not claimed after 5 min"), "{leads}");

    // Ten more minutes: the owner (in-app; no phone of their own), and the log says why.
    after(&app, 9 * MINUTE).await;
    assert_eq!(escalation_events(&app.pool).await, 1);
    after(&app, MINUTE).await;
    assert_eq!(escalation_events(&app.pool).await, 2);
    let inbox: Vec<String> =
        sqlx::query_scalar("SELECT n.title FROM notifications n JOIN users u ON u.id = n.user_id WHERE u.email = 'owner@acme.test' ORDER BY n.id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(inbox.last().map(String::as_str), Some("Not claimed after 15 min: Jane Doe"), "{inbox:?}");
    let log = app.get_html(&owner, "/settings/notifications/log").await;
    assert!(log.contains("Escalation, step 2, not claimed after 15 min: Jane Doe (score 90)"), "{log}");
    assert!(log.contains("Escalated (step 2) at"), "the new lead tells where its escalation stands: {log}");
    let leads = app.get_html(&owner, "/leads").await;
    assert!(leads.contains("Escalated: not claimed after 15 min"), "{leads}");

    // Two steps at most: nothing more, however long nobody claims it.
    after(&app, 60 * MINUTE).await;
    assert_eq!(escalation_events(&app.pool).await, 2);
    assert_eq!(unclaimed_texts(&app.twilio).len(), 1);

    // Sam claims it from the escalation text: the Leads page says so.
    let claim = texts[0].body.split(" Claim: http://kaicalls.test").nth(1).unwrap().to_owned();
    assert_eq!(client().post(app.url(&claim)).send().await.unwrap().status(), 200);
    let leads = app.get_html(&owner, "/leads").await;
    assert!(leads.contains("Sam, under a minute after the call, after escalation"), "{leads}");
}

#[tokio::test]
async fn a_lead_claimed_before_the_limit_is_not_escalated_and_the_log_says_why() {
    let app = spawn_manual().await;
    let (business, owner, _) = escalating(&app).await;
    assert_eq!(app.post_event(&business, "m1", &hot_lead()).await.status(), 202);
    after(&app, Duration::ZERO).await;
    let texts = app.twilio.wait_for(2).await;
    let sams = texts.iter().find(|t| t.to == "+15555550101").unwrap();
    let claim = sams.body.split(" Claim: http://kaicalls.test").nth(1).unwrap();
    assert_eq!(client().post(app.url(claim)).send().await.unwrap().status(), 200);

    after(&app, 20 * MINUTE).await;
    assert_eq!(escalation_events(&app.pool).await, 0, "no escalation once claimed");
    assert_eq!(timers(&app.pool).await, vec![(1, "cancelled".to_owned(), Some("Sam claimed the lead".to_owned()))]);
    let page = app.get_html(&owner, "/settings/notifications").await;
    assert!(page.contains("Escalation not sent: Sam claimed the lead."), "{page}");
    assert!(unclaimed_texts(&app.twilio).is_empty());
}

#[tokio::test]
async fn leads_below_the_score_or_with_escalation_off_start_no_timer_and_a_policy_turned_off_ends_one() {
    let app = spawn_manual().await;
    let (business, owner, sam) = escalating(&app).await;
    let cool = crate::helpers::lead("L-2", Some(60));
    assert_eq!(app.post_event(&business, "m2", &cool).await.status(), 202);
    assert_eq!(app.post_event(&business, "m1", &hot_lead()).await.status(), 202);
    app.wait_count("SELECT count(*) FROM escalations", 1).await;
    assert_eq!(timers(&app.pool).await.len(), 1, "only the lead scoring 70 or more");

    // The owner turns escalation off before it falls due: the timer ends, nothing is sent.
    let owner_id = owner_id(&app).await.to_string();
    let sam = sam.to_string();
    let off = [
        ("min_score", "70"),
        ("first_minutes", "5"),
        ("first_people", sam.as_str()),
        ("sms", "on"),
        ("second_minutes", "10"),
        ("second_people", owner_id.as_str()),
    ];
    assert_eq!(app.post_form(&owner, "/settings/notifications/escalation", &off).await.status(), 303);
    assert!(app.get_html(&owner, "/settings/notifications").await.contains("Escalation is off."));
    after(&app, 6 * MINUTE).await;
    assert_eq!(escalation_events(&app.pool).await, 0);
    assert_eq!(
        timers(&app.pool).await,
        vec![(1, "cancelled".to_owned(), Some("escalation was turned off".to_owned()))]
    );
    let lead = serde_json::json!({"type": "lead.created", "data": {"lead_id": "L-3", "score": 99,
        "occurred_at": "2026-11-29T10:00:00Z"}});
    assert_eq!(app.post_event(&business, "m3", &lead).await.status(), 202);
    app.wait_count("SELECT count(*) FROM events WHERE state = 'planned'", 3).await;
    assert_eq!(timers(&app.pool).await.len(), 1, "off: new leads start no timer");
}

#[tokio::test]
async fn an_escalation_whose_channels_are_all_off_is_recorded_as_not_sent_with_the_reason() {
    let app = spawn_manual().await;
    let business = app.create_business("Acme Plumbing", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    // The business never turned SMS on; the policy escalates by SMS only.
    let sam = app.add_user(&business, "Sam", "sam@acme.test", Some("(555) 555-0101"), Role::Member).await;
    app.add_recipient(&owner, sam.id).await;
    let sam = sam.id.to_string();
    let fields =
        [("enabled", "on"), ("min_score", "70"), ("first_minutes", "5"), ("first_people", sam.as_str()), ("sms", "on")];
    assert_eq!(app.post_form(&owner, "/settings/notifications/escalation", &fields).await.status(), 303);
    let warning = "SMS is off in the business defaults above, so escalations do not go by SMS.";
    assert!(app.get_html(&owner, "/settings/notifications").await.contains(warning), "said before it happens");
    assert_eq!(app.post_event(&business, "m1", &hot_lead()).await.status(), 202);
    app.wait_count("SELECT count(*) FROM escalations", 1).await;

    after(&app, 5 * MINUTE).await;
    let decisions: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT d.status, d.channel, d.reason FROM deliveries d JOIN events e ON e.id = d.event_id
         WHERE e.type = 'lead.escalated'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(decisions, vec![("skipped".into(), "sms".into(), Some("SMS is off for the business".into()))]);
    assert!(app.twilio.received().is_empty());
    let log = app.get_html(&owner, "/settings/notifications/log").await;
    assert!(log.contains("Escalation, not claimed after 5 min: Jane Doe (score 90)"), "{log}");
    assert!(log.contains("Sam: not sent by SMS: SMS is off for the business"), "{log}");

    // The owner turns SMS on: the answer draws the escalation warnings again, without this one.
    let mut on = crate::helpers::all_defaults_on();
    on.extend([("notification_email", "owner@acme.test"), ("action", "save")]);
    let answer = app.post_htmx(&owner, "/settings/notifications/defaults", &on).await.text().await.unwrap();
    assert!(answer.contains("<div id=\"escalation-warnings\" hx-swap-oob=\"true\">"), "{answer}");
    assert!(!answer.contains(warning) && !answer.contains("<section id=\"escalation\""), "the form is left alone");
}

#[tokio::test]
async fn a_pending_escalation_survives_a_restart_and_fires_once() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let smtp = SmtpServer::start().await;
    // The first run stores the lead and its timer, and stops before anything falls due.
    let first = spawn_manual_in(dir.clone(), smtp.clone()).await;
    let (business, _, _) = escalating(&first).await;
    assert_eq!(first.post_event(&business, "m1", &hot_lead()).await.status(), 202);
    assert_eq!(timers(&first.pool).await, vec![(1, "pending".to_owned(), None)]);

    // After the restart, the step falls due on the new run's clock and goes out once.
    let second = spawn_manual_in(dir.clone(), smtp.clone()).await;
    after(&second, 5 * MINUTE).await;
    assert_eq!(escalation_events(&second.pool).await, 1);
    assert_eq!(unclaimed_texts(&second.twilio).len(), 1);

    // A run that stopped after storing the escalation and before ending its timer: the next
    // run fires the step again, which finds its event stored, and sends nothing twice.
    sqlx::query("DELETE FROM escalations WHERE step = 2").execute(&second.pool).await.unwrap();
    sqlx::query("UPDATE escalations SET state = 'pending', event_id = NULL").execute(&second.pool).await.unwrap();
    let third = spawn_manual_in(dir.clone(), smtp).await;
    after(&third, 5 * MINUTE).await;
    after(&second, Duration::ZERO).await;
    assert_eq!(escalation_events(&third.pool).await, 1, "stored once");
    assert_eq!(timers(&third.pool).await[0].1, "fired");
    assert!(unclaimed_texts(&third.twilio).is_empty(), "not sent again");
    assert_eq!(unclaimed_texts(&second.twilio).len(), 1, "not sent again");
}

#[tokio::test]
async fn the_policy_form_names_the_field_at_fault_and_only_owners_and_admins_change_it() {
    let app = spawn_manual().await;
    let (business, owner, sam) = escalating(&app).await;
    let sam_s = sam.to_string();
    let typed = [
        ("enabled", "on"),
        ("min_score", "70"),
        ("first_minutes", "0"),
        ("first_people", sam_s.as_str()),
        ("sms", "on"),
    ];
    let refused = app.post_form(&owner, "/settings/notifications/escalation", &typed).await;
    assert_eq!(refused.status(), 422);
    let page = refused.text().await.unwrap();
    assert!(page.contains("Enter whole minutes from 1 to 1440.") && page.contains("value=\"0\""), "{page}");
    let nobody = [("enabled", "on"), ("min_score", "70"), ("first_minutes", "5"), ("sms", "on")];
    let refused = app.post_htmx(&owner, "/settings/notifications/escalation", &nobody).await;
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.unwrap().contains("Pick at least one person to alert."));
    // Another business's person cannot be picked.
    let other = app.create_business("Other Co", "boss@other.test").await;
    let stranger = other.owner.id.to_string();
    let smuggled = [
        ("enabled", "on"),
        ("min_score", "70"),
        ("first_minutes", "5"),
        ("first_people", stranger.as_str()),
        ("sms", "on"),
    ];
    let refused = app.post_form(&owner, "/settings/notifications/escalation", &smuggled).await;
    assert_eq!(refused.status(), 422);
    let targets: i64 = sqlx::query_scalar("SELECT count(*) FROM escalation_targets WHERE user_id = $1")
        .bind(other.owner.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(targets, 0);

    // A teammate sees the policy in words, and cannot change it.
    let member = app.login("sam@acme.test").await;
    let page = app.get_html(&member, "/settings/notifications").await;
    assert!(page.contains("Only owners and admins can change escalation."), "{page}");
    assert!(page.contains("alert Sam by SMS or In-app"));
    let forbidden = app.post_form(&member, "/settings/notifications/escalation", &typed).await;
    assert_eq!(forbidden.status(), 403);
    let _ = business;
    // The change is in Recent changes, in words.
    let page = app.get_html(&owner, "/settings/notifications").await;
    assert!(page.contains("Acme Plumbing Owner set escalation: If a lead scoring at least 70"), "{page}");
}
