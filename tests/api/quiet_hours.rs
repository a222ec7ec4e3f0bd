//! Quiet hours: email and SMS to a person inside their window wait for its end (in-app goes at
//! once); a hot enough lead gets through; the form refuses what is not a window.
use std::time::Duration;

use std::sync::Arc;

use crate::alerts::{event_id, sms_on, teammate};
use crate::helpers::{TestApp, TestBusiness, lead, spawn_app, spawn_with};
use crate::smtp::SmtpServer;
use crate::twilio::{Reply, TwilioServer};

const SAM: &str = "+15555550101";

/// "HH:MM" in UTC, `minutes` from now.
fn utc_clock(minutes: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let t = (now / 60 + minutes).rem_euclid(24 * 60);
    format!("{:02}:{:02}", t / 60, t % 60)
}

async fn acme_with_sam(app: &TestApp) -> (TestBusiness, reqwest::Client, i64) {
    let business = app.create_business("Acme Plumbing", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    sms_on(app, &owner, "(555) 555-0100").await;
    let sam = teammate(app, &business, &owner, "0").await;
    let prefs = [("sms_enabled", "on"), ("email_enabled", "on"), ("in_app_enabled", "on"), ("lead_created", "on")];
    let row = app.recipient_id(sam).await.unwrap();
    let mut all = prefs.to_vec();
    all.push(("min_lead_score", "0"));
    assert_eq!(app.post_form(&owner, &format!("/settings/notifications/recipients/{row}"), &all).await.status(), 303);
    (business, owner, row)
}

/// Sam's quiet hours: every day from an hour ago to an hour from now, in UTC.
async fn quiet_now(app: &TestApp, owner: &reqwest::Client, row: i64, urgent: Option<&str>) -> reqwest::Response {
    let (from, to) = (utc_clock(-60), utc_clock(60));
    let mut form: Vec<(&str, &str)> =
        vec![("quiet_enabled", "on"), ("quiet_from", &from), ("quiet_to", &to), ("time_zone", "UTC")];
    for day in ["quiet_mon", "quiet_tue", "quiet_wed", "quiet_thu", "quiet_fri", "quiet_sat", "quiet_sun"] {
        form.push((day, "on"));
    }
    if let Some(score) = urgent {
        form.extend([("urgent_enabled", "on"), ("urgent_score", score)]);
    }
    app.post_form(owner, &format!("/settings/notifications/recipients/{row}/quiet"), &form).await
}

fn to_sam(app: &TestApp) -> (usize, usize) {
    let texts = app.twilio.received().iter().filter(|t| t.to == SAM).count();
    let mails = app.smtp.messages().iter().filter(|m| m.to.iter().any(|t| t.contains("sam@acme.test"))).count();
    (texts, mails)
}

#[tokio::test]
async fn leads_in_quiet_hours_wait_for_their_end_and_go_as_one_message_per_channel() {
    let app = spawn_app().await;
    let (business, owner, row) = acme_with_sam(&app).await;
    assert_eq!(quiet_now(&app, &owner, row, None).await.status(), 303);
    let page = app.get_html(&owner, "/settings/notifications").await;
    assert!(page.contains("Quiet hours: Every day"), "the row says so");

    let first = event_id(app.post_event(&business, "m1", &lead("L-1", Some(70))).await).await;
    event_id(app.post_event(&business, "m2", &lead("L-2", Some(90))).await).await;
    event_id(app.post_event(&business, "m3", &lead("L-3", Some(80))).await).await;
    app.wait_count(
        "SELECT count(*) FROM notifications WHERE user_id IN (SELECT id FROM users WHERE email = 'sam@acme.test')",
        3,
    )
    .await;
    app.wait_count("SELECT count(*) FROM deliveries WHERE status = 'sent' AND channel = 'sms'", 3).await;
    assert_eq!(to_sam(&app), (0, 0), "nothing by SMS or email to Sam during his quiet hours; in-app at once");
    let held: Vec<(String, String)> = app
        .decisions(first)
        .await
        .into_iter()
        .filter(|d| d.0 == "Sam" && d.1 != "in_app")
        .map(|d| (d.2, d.3))
        .collect();
    let until = format!("held for quiet hours until {} (Sam\u{2019}s time)", utc_clock(60));
    assert_eq!(held, vec![("pending".to_owned(), until.clone()), ("pending".to_owned(), until.clone())]);
    let log = app.get_html(&owner, "/settings/notifications/log").await;
    assert!(log.contains("held for quiet hours until"), "Recent alerts say where it went");

    // The window ends (the dispatcher's clock moves on two hours): one message per channel.
    app.dispatcher.advance_clock(Duration::from_secs(2 * 3600));
    app.wait_count(
        "SELECT count(*) FROM deliveries WHERE status = 'sent' AND person_name = 'Sam' AND channel <> 'in_app'",
        6,
    )
    .await;
    assert_eq!(to_sam(&app), (1, 1), "one text and one email for the three leads");
    let text = app.twilio.received().into_iter().find(|t| t.to == SAM).unwrap();
    assert!(text.body.starts_with("3 new leads while quiet: Jane Doe 90, Jane Doe 80, Jane Doe 70."), "{}", text.body);
    let merged: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE person_name = 'Sam' AND reason = $1")
        .bind(format!("sent in the {} summary, with 2 other alerts", utc_clock(60)))
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(merged, 4, "the two others on each channel say where they went");
}

#[tokio::test]
async fn a_lead_at_the_urgent_score_gets_through_quiet_hours() {
    let app = spawn_app().await;
    let (business, owner, row) = acme_with_sam(&app).await;
    assert_eq!(quiet_now(&app, &owner, row, Some("90")).await.status(), 303);
    event_id(app.post_event(&business, "m1", &lead("L-1", Some(95))).await).await;
    app.wait_count("SELECT count(*) FROM deliveries WHERE status = 'sent' AND person_name = 'Sam'", 3).await;
    assert_eq!(to_sam(&app), (1, 1), "a 95 beats the urgent score of 90");
    event_id(app.post_event(&business, "m2", &lead("L-2", Some(89))).await).await;
    app.wait_count("SELECT count(*) FROM deliveries WHERE status = 'pending' AND person_name = 'Sam'", 2).await;
    assert_eq!(to_sam(&app), (1, 1), "an 89 waits");
}

#[tokio::test]
async fn the_form_refuses_what_is_not_a_window_and_saves_nothing() {
    let app = spawn_app().await;
    let (_business, owner, row) = acme_with_sam(&app).await;
    let path = format!("/settings/notifications/recipients/{row}/quiet");
    let same = app
        .post_form(
            &owner,
            &path,
            &[
                ("quiet_enabled", "on"),
                ("quiet_mon", "on"),
                ("quiet_from", "07:00"),
                ("quiet_to", "07:00"),
                ("time_zone", "UTC"),
            ],
        )
        .await;
    assert_eq!(same.status(), 422);
    assert!(same.text().await.unwrap().contains("The end must differ from the start"));
    let zone = app
        .post_form(
            &owner,
            &path,
            &[
                ("quiet_enabled", "on"),
                ("quiet_mon", "on"),
                ("quiet_from", "22:00"),
                ("quiet_to", "07:00"),
                ("time_zone", "Mars/Base"),
            ],
        )
        .await;
    assert_eq!(zone.status(), 422);
    assert!(zone.text().await.unwrap().contains("is not a time zone we know"));
    let no_day = app
        .post_form(
            &owner,
            &path,
            &[("quiet_enabled", "on"), ("quiet_from", "22:00"), ("quiet_to", "07:00"), ("time_zone", "UTC")],
        )
        .await;
    assert_eq!(no_day.status(), 422);
    assert!(no_day.text().await.unwrap().contains("Tick at least one day."));
    let stored: i64 = sqlx::query_scalar("SELECT quiet_days FROM recipients WHERE id = $1")
        .bind(row)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "nothing saved");

    // A member sets only their own.
    let sam = app.login("sam@acme.test").await;
    let owner_row = app
        .recipient_id(
            sqlx::query_scalar::<_, i64>("SELECT id FROM users WHERE email = 'owner@acme.test'")
                .fetch_one(&app.pool)
                .await
                .unwrap(),
        )
        .await;
    if let Some(owner_row) = owner_row {
        assert_eq!(app.get(&sam, &format!("/settings/notifications/recipients/{owner_row}/quiet")).await.status(), 403);
    }
    assert_eq!(app.get(&sam, &path).await.status(), 200);
}

#[tokio::test]
async fn held_alerts_survive_a_restart_and_go_once() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let smtp = SmtpServer::start().await;
    let manual = |dir: Arc<tempfile::TempDir>, smtp: SmtpServer| async move {
        let url = smtp.url();
        spawn_with(dir, smtp, &url, TwilioServer::start().await, |c| c.dispatch.autorun = false).await
    };
    // The first run holds two leads for Sam and stops before the window ends.
    let first = manual(dir.clone(), smtp.clone()).await;
    let (business, owner, row) = acme_with_sam(&first).await;
    assert_eq!(quiet_now(&first, &owner, row, None).await.status(), 303);
    event_id(first.post_event(&business, "m1", &lead("L-1", Some(70))).await).await;
    event_id(first.post_event(&business, "m2", &lead("L-2", Some(90))).await).await;
    first.dispatcher.run_once().await.unwrap();
    assert_eq!(to_sam(&first), (0, 0));

    // The next run sends them when the window ends, once, as one message per channel.
    let second = manual(dir.clone(), smtp.clone()).await;
    second.dispatcher.advance_clock(Duration::from_secs(2 * 3600));
    second.dispatcher.run_once().await.unwrap();
    second.dispatcher.run_once().await.unwrap();
    assert_eq!(to_sam(&second), (1, 1));
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE status = 'pending'")
        .fetch_one(&second.pool)
        .await
        .unwrap();
    assert_eq!(pending, 0, "nothing left held");
}

#[tokio::test]
async fn a_change_of_quiet_hours_applies_to_what_they_hold_and_a_removed_person_gets_nothing() {
    let app = spawn_app().await;
    let (business, owner, row) = acme_with_sam(&app).await;
    assert_eq!(quiet_now(&app, &owner, row, None).await.status(), 303);
    event_id(app.post_event(&business, "m1", &lead("L-1", Some(70))).await).await;
    app.wait_count("SELECT count(*) FROM deliveries WHERE status = 'pending' AND person_name = 'Sam'", 2).await;

    // Quiet hours turned off: what they held goes at once.
    let off = app
        .post_form(&owner, &format!("/settings/notifications/recipients/{row}/quiet"), &[("time_zone", "UTC")])
        .await;
    assert_eq!(off.status(), 303);
    app.wait_count(
        "SELECT count(*) FROM deliveries WHERE status = 'sent' AND person_name = 'Sam' AND channel <> 'in_app'",
        2,
    )
    .await;
    assert_eq!(to_sam(&app), (1, 1));

    // Held again, then Sam leaves the recipient list: dropped, with the reason.
    assert_eq!(quiet_now(&app, &owner, row, None).await.status(), 303);
    let second = event_id(app.post_event(&business, "m2", &lead("L-2", Some(70))).await).await;
    app.wait_count("SELECT count(*) FROM deliveries WHERE status = 'pending' AND person_name = 'Sam'", 2).await;
    let removed = app
        .post_form(&owner, &format!("/settings/notifications/recipients/{row}/remove"), &[("confirmed", "yes")])
        .await;
    assert!(removed.status().is_redirection() || removed.status().is_success(), "{}", removed.status());
    let dropped: Vec<(String, String)> = app
        .decisions(second)
        .await
        .into_iter()
        .filter(|d| d.0 == "Sam" && d.1 != "in_app")
        .map(|d| (d.2, d.3))
        .collect();
    let why = "Sam left the recipient list while it was held for quiet hours".to_owned();
    assert_eq!(dropped, vec![("skipped".to_owned(), why.clone()), ("skipped".to_owned(), why)]);
    app.dispatcher.advance_clock(Duration::from_secs(2 * 3600));
    app.dispatcher.wake();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(to_sam(&app), (1, 1), "nothing more after the window");
}

#[tokio::test]
async fn the_owner_sets_the_business_time_zone_and_a_person_their_own() {
    let app = spawn_app().await;
    let (_business, owner, _row) = acme_with_sam(&app).await;
    let page = app.get_html(&owner, "/settings/notifications").await;
    assert!(page.contains("value=\"America/New_York\""), "suggested from the business's country");
    let bad = app.post_form(&owner, "/settings/notifications/time-zone", &[("time_zone", "Mars/Base")]).await;
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.unwrap().contains("is not a time zone we know"));
    let good = app.post_form(&owner, "/settings/notifications/time-zone", &[("time_zone", "Europe/London")]).await;
    assert_eq!(good.status(), 303);

    let sam = app.login("sam@acme.test").await;
    assert_eq!(app.post_form(&sam, "/settings/notifications/time-zone", &[("time_zone", "UTC")]).await.status(), 403);
    let account = app.get_html(&sam, "/account").await;
    assert!(account.contains("use the business&#39;s, Europe/London"), "{account}");
    let own = app.post_form(&sam, "/account/time-zone", &[("time_zone", "Asia/Tokyo")]).await;
    assert_eq!(own.status(), 303);
    let typo = app.post_form(&sam, "/account/time-zone", &[("time_zone", "Tokyo")]).await;
    assert_eq!(typo.status(), 422);
    let zones: (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT (SELECT time_zone FROM businesses), (SELECT time_zone FROM users WHERE email = 'sam@acme.test')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(zones, (Some("Europe/London".into()), Some("Asia/Tokyo".into())));
    // Sam's quiet hours page starts from his zone.
    let row = app
        .recipient_id(
            sqlx::query_scalar("SELECT id FROM users WHERE email = 'sam@acme.test'")
                .fetch_one(&app.pool)
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(
        app.get_html(&sam, &format!("/settings/notifications/recipients/{row}/quiet"))
            .await
            .contains("value=\"Asia/Tokyo\"")
    );
}

/// An update of a lead; `second` tells Kai's updates apart (the same one again is a duplicate).
fn update(lead_id: &str, summary: &str, second: u8) -> serde_json::Value {
    serde_json::json!({"type": "lead.updated", "data": {"lead_id": lead_id, "name": "Jane Doe", "phone": "+15555550123",
        "score": 80, "summary": summary, "occurred_at": format!("2026-11-29T10:05:{second:02}Z")}})
}

async fn statuses(app: &TestApp, event: i64) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> =
        app.decisions(event).await.into_iter().filter(|d| d.0 == "Sam").map(|d| (d.2, d.3)).collect();
    rows.dedup();
    rows
}

#[tokio::test]
async fn three_updates_of_a_lead_in_half_a_minute_become_one_follow_up_with_the_latest_state() {
    let app = spawn_app().await;
    let (business, owner, row) = acme_with_sam(&app).await;
    let prefs = [
        ("sms_enabled", "on"),
        ("email_enabled", "on"),
        ("in_app_enabled", "on"),
        ("lead_created", "on"),
        ("lead_updated", "on"),
        ("min_lead_score", "0"),
    ];
    assert_eq!(app.post_form(&owner, &format!("/settings/notifications/recipients/{row}"), &prefs).await.status(), 303);
    assert!(
        app.get_html(&owner, "/settings/notifications").await.contains(
            "name=\"update_window_minutes\" min=\"0\" max=\"60\" step=\"1\" inputmode=\"numeric\" value=\"2\""
        ),
        "2 minutes by default"
    );
    event_id(app.post_event(&business, "m1", &lead("L-1", Some(80))).await).await;
    let first = event_id(app.post_event(&business, "u1", &update("L-1", "Sent photos", 1)).await).await;
    let second = event_id(app.post_event(&business, "u2", &update("L-1", "Booked Tuesday", 10)).await).await;
    let third = event_id(app.post_event(&business, "u3", &update("L-1", "Paid the deposit", 20)).await).await;
    app.wait_count(
        "SELECT count(*) FROM deliveries WHERE channel = 'sms' AND status = 'sent' AND person_name = 'Sam'",
        2,
    )
    .await;
    assert_eq!(statuses(&app, first).await, vec![("sent".to_owned(), String::new())], "the first update goes at once");
    let held = "held to merge with the other updates of this lead that come within the window".to_owned();
    assert_eq!(statuses(&app, second).await, vec![("pending".to_owned(), held.clone())]);
    assert_eq!(statuses(&app, third).await, vec![("pending".to_owned(), held)]);

    // The window ends: only the latest goes, on each channel; the one before says where it went.
    app.dispatcher.advance_clock(Duration::from_secs(3 * 60));
    app.wait_count("SELECT count(*) FROM deliveries WHERE status = 'pending'", 0).await;
    app.wait_count("SELECT count(*) FROM deliveries WHERE channel = 'sms' AND status = 'sent' AND person_name = 'Sam' AND reason IS NULL", 3).await;
    assert_eq!(statuses(&app, third).await, vec![("sent".to_owned(), String::new())]);
    let at: String = sqlx::query_scalar(
        "SELECT held_at FROM deliveries WHERE event_id = $1 AND person_name = 'Sam' AND channel = 'sms'",
    )
    .bind(third)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(at.len() == 5 && at.as_bytes()[2] == b':', "the window's end as Sam reads it: {at}");
    assert_eq!(
        statuses(&app, second).await,
        vec![("sent".to_owned(), format!("merged into the update of this lead sent at {at}"))]
    );
    let texts: Vec<String> = app.twilio.received().into_iter().filter(|t| t.to == SAM).map(|t| t.body).collect();
    assert_eq!(texts.len(), 3, "the new lead, the first update, one follow-up: {texts:?}");
    assert!(texts[2].contains("Paid the deposit"), "the follow-up carries the latest state: {}", texts[2]);
    let inbox: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notifications WHERE user_id = (SELECT id FROM users WHERE email = 'sam@acme.test')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(inbox, 3, "in-app merges too");

    // 0 minutes: each update alerts at once.
    let zero = app.post_form(&owner, "/settings/notifications/update-window", &[("update_window_minutes", "0")]).await;
    assert_eq!(zero.status(), 303);
    let bad = app.post_form(&owner, "/settings/notifications/update-window", &[("update_window_minutes", "90")]).await;
    assert_eq!(bad.status(), 422);
    let fourth = event_id(app.post_event(&business, "u4", &update("L-1", "Job done", 40)).await).await;
    app.wait_count("SELECT count(*) FROM deliveries WHERE channel = 'sms' AND status = 'sent' AND person_name = 'Sam' AND reason IS NULL", 4).await;
    assert_eq!(statuses(&app, fourth).await, vec![("sent".to_owned(), String::new())]);
}

/// Sam wants leads of 70 and up, and a daily summary of the rest at `at` (UTC, the business's zone).
async fn sam_with_a_digest(app: &TestApp, owner: &reqwest::Client, row: i64, at: &str) {
    let zone = app.post_form(owner, "/settings/notifications/time-zone", &[("time_zone", "UTC")]).await;
    assert_eq!(zone.status(), 303);
    let prefs = [("sms_enabled", "on"), ("email_enabled", "on"), ("in_app_enabled", "on"), ("lead_created", "on")];
    let mut all = prefs.to_vec();
    all.push(("min_lead_score", "70"));
    assert_eq!(app.post_form(owner, &format!("/settings/notifications/recipients/{row}"), &all).await.status(), 303);
    let path = format!("/settings/notifications/recipients/{row}/digest");
    let saved = app.post_form(owner, &path, &[("digest_enabled", "on"), ("digest_at", at)]).await;
    assert_eq!(saved.status(), 303);
}

/// Each email to Sam: its subject, and its text with quoted-printable soft line breaks undone.
fn mails_to_sam(app: &TestApp) -> Vec<(String, String)> {
    app.smtp
        .messages()
        .into_iter()
        .filter(|m| m.to.iter().any(|t| t.contains("sam@acme.test")))
        .map(|m| {
            let subject = m.data.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or_default().to_owned();
            (subject, m.data.replace("=\r\n", "").replace("=\n", ""))
        })
        .collect()
}

#[tokio::test]
async fn leads_below_the_threshold_come_in_one_daily_summary_and_an_empty_day_sends_none() {
    let app = spawn_app().await;
    let (business, owner, row) = acme_with_sam(&app).await;
    let at = utc_clock(60);
    sam_with_a_digest(&app, &owner, row, &at).await;
    let page = app.get_html(&owner, "/settings/notifications").await;
    assert!(page.contains(&format!("Daily summary of the leads below the threshold at {at}.")), "the row says so");

    let low = event_id(app.post_event(&business, "m1", &lead("L-1", Some(40))).await).await;
    event_id(app.post_event(&business, "m2", &lead("L-2", Some(55))).await).await;
    let hot = event_id(app.post_event(&business, "m3", &lead("L-3", Some(90))).await).await;
    app.wait_count("SELECT count(*) FROM deliveries WHERE status = 'sent' AND person_name = 'Sam'", 3).await;
    assert_eq!(to_sam(&app), (1, 1), "the 90 alerts Sam at once; the 40 and the 55 do not");
    let day = if at < utc_clock(0) { "tomorrow" } else { "today" };
    let waiting = format!("score 40 is below Sam\u{2019}s threshold 70: in {day}\u{2019}s {at} digest");
    let sam_low: Vec<(String, String, String)> =
        app.decisions(low).await.into_iter().filter(|d| d.0 == "Sam").map(|d| (d.1, d.2, d.3)).collect();
    let below = "score 40 is below Sam\u{2019}s threshold 70".to_owned();
    assert_eq!(
        sam_low,
        vec![
            ("email".to_owned(), "pending".to_owned(), waiting.clone()),
            ("sms".to_owned(), "skipped".to_owned(), below.clone()),
            ("in_app".to_owned(), "skipped".to_owned(), below),
        ]
    );
    assert!(app.get_html(&owner, "/settings/notifications/log").await.contains(&waiting), "Recent alerts say where");
    assert!(app.decisions(hot).await.iter().all(|d| d.0 != "Sam" || d.2 == "sent"));

    // The summary's time comes: one email, highest score first, with a link to Leads.
    app.dispatcher.advance_clock(Duration::from_secs(2 * 3600));
    app.wait_count("SELECT count(*) FROM deliveries WHERE status = 'sent' AND person_name = 'Sam'", 5).await;
    let mails = mails_to_sam(&app);
    assert_eq!(mails.len(), 2, "the hot lead's alert and one summary");
    let (subject, body) = &mails[1];
    assert_eq!(subject, "Daily summary: 2 new leads below your threshold");
    let (first, second) = (body.find("Jane Doe (score 55)").unwrap(), body.find("Jane Doe (score 40)").unwrap());
    assert!(first < second, "highest score first: {body}");
    assert!(body.contains("/leads"), "{body}");
    let went: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE person_name = 'Sam' AND reason = $1")
        .bind(format!("sent in the {at} digest, with 1 other lead"))
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(went, 1, "the other lead says where it went");
    assert_eq!(to_sam(&app).0, 1, "never by SMS");

    // A day with only a hot lead: no summary the next day.
    event_id(app.post_event(&business, "m4", &lead("L-4", Some(95))).await).await;
    app.wait_count("SELECT count(*) FROM deliveries WHERE status = 'sent' AND person_name = 'Sam'", 8).await;
    app.dispatcher.advance_clock(Duration::from_secs(25 * 3600));
    event_id(app.post_event(&business, "m5", &lead("L-5", Some(96))).await).await;
    app.wait_count("SELECT count(*) FROM deliveries WHERE status = 'sent' AND person_name = 'Sam'", 11).await;
    let subjects: Vec<String> = mails_to_sam(&app).into_iter().map(|m| m.0).collect();
    assert_eq!(subjects.len(), 4, "two more lead alerts and no summary: {subjects:?}");
    assert!(subjects.iter().filter(|s| s.starts_with("Daily summary")).count() == 1, "{subjects:?}");
}

#[tokio::test]
async fn the_daily_summary_form_refuses_a_bad_time_and_turning_it_off_ends_what_it_held() {
    let app = spawn_app().await;
    let (business, owner, row) = acme_with_sam(&app).await;
    let page = app.get_html(&owner, &format!("/settings/notifications/recipients/{row}/quiet")).await;
    assert!(page.contains("The threshold is 0: every new lead alerts Sam, so a summary would have nothing in it."));
    let path = format!("/settings/notifications/recipients/{row}/digest");
    let bad = app.post_form(&owner, &path, &[("digest_enabled", "on"), ("digest_at", "25:00")]).await;
    assert_eq!(bad.status(), 422);
    let text = bad.text().await.unwrap();
    assert!(text.contains("is not a time of day: use 24-hour time such as 07:00."), "{text}");
    assert!(text.contains("value=\"25:00\""), "what was typed stays");
    let stored: Option<i64> = sqlx::query_scalar("SELECT digest_at FROM recipients WHERE id = $1")
        .bind(row)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, None, "nothing saved");

    sam_with_a_digest(&app, &owner, row, &utc_clock(60)).await;
    let low = event_id(app.post_event(&business, "m1", &lead("L-1", Some(40))).await).await;
    app.wait_count("SELECT count(*) FROM deliveries WHERE status = 'pending' AND person_name = 'Sam'", 1).await;
    let off = app.post_form(&owner, &path, &[("digest_at", "08:00")]).await;
    assert_eq!(off.status(), 303);
    let sam_email: Vec<(String, String)> =
        app.decisions(low).await.into_iter().filter(|d| d.0 == "Sam" && d.1 == "email").map(|d| (d.2, d.3)).collect();
    assert_eq!(
        sam_email,
        vec![("skipped".to_owned(), "below Sam\u{2019}s threshold; the daily summary was turned off".to_owned())]
    );
    let log = app.get_html(&owner, "/settings/notifications").await;
    assert!(log.contains("set Sam\u{2019}s daily summary: off"), "the change is in the audit trail");
}

#[tokio::test]
async fn a_payment_failure_marked_urgent_by_the_owner_gets_through_quiet_hours() {
    let app = spawn_app().await;
    let (business, owner, row) = acme_with_sam(&app).await;
    let prefs = [("email_enabled", "on"), ("billing_alerts", "on"), ("min_lead_score", "0")];
    assert_eq!(app.post_form(&owner, &format!("/settings/notifications/recipients/{row}"), &prefs).await.status(), 303);
    assert_eq!(quiet_now(&app, &owner, row, None).await.status(), 303);
    let failed = |invoice: &str| {
        serde_json::json!({"type": "billing.payment_failed", "data": {"invoice_id": invoice, "amount_cents": 6900,
            "currency": "usd", "reason": "card_declined", "next_attempt_at": "2026-12-01T00:00:00Z"}})
    };
    event_id(app.post_event(&business, "b1", &failed("in_1")).await).await;
    app.wait_count("SELECT count(*) FROM deliveries WHERE status = 'pending' AND person_name = 'Sam'", 1).await;
    assert_eq!(to_sam(&app), (0, 0), "by default it waits like any alert");

    // Only the owner may mark it urgent.
    let sam = app.login("sam@acme.test").await;
    let refused = app.post_form(&sam, "/settings/notifications/billing-urgent", &[("billing_urgent", "on")]).await;
    assert_eq!(refused.status(), 403);
    let page = app.get_html(&owner, "/settings/notifications").await;
    assert!(page.contains("Payment-failed alerts are urgent"));
    let marked = app.post_form(&owner, "/settings/notifications/billing-urgent", &[("billing_urgent", "on")]).await;
    assert_eq!(marked.status(), 303);
    assert!(
        app.get_html(&owner, "/settings/notifications").await.contains("marked payment-failed alerts urgent"),
        "in the audit trail"
    );
    event_id(app.post_event(&business, "b2", &failed("in_2")).await).await;
    app.wait_count("SELECT count(*) FROM deliveries WHERE status = 'sent' AND person_name = 'Sam'", 1).await;
    assert_eq!(to_sam(&app), (0, 1), "the urgent one went at once; the first still waits");
}

#[tokio::test]
async fn the_threshold_preview_says_what_quiet_hours_would_have_held() {
    let app = spawn_app().await;
    let (business, owner, row) = acme_with_sam(&app).await;
    event_id(app.post_event(&business, "m1", &lead("L-1", Some(80))).await).await;
    event_id(app.post_event(&business, "m2", &lead("L-2", Some(30))).await).await;
    app.wait_count("SELECT count(*) FROM leads", 2).await;
    let preview = |min: &'static str| {
        let (app, owner) = (&app, &owner);
        async move {
            let r =
                app.get(owner, &format!("/settings/notifications/recipients/{row}/preview?min_lead_score={min}")).await;
            r.text().await.unwrap()
        }
    };
    assert_eq!(preview("70").await, "At 70, Sam would have received 1 of the last 2 leads (30 days).");
    assert_eq!(quiet_now(&app, &owner, row, None).await.status(), 303);
    assert_eq!(
        preview("70").await,
        "At 70, Sam would have received 1 of the last 2 leads (30 days); it would have waited for the end of quiet \
         hours by email and SMS."
    );
    assert_eq!(
        preview("0").await,
        "At 0, Sam would have received 2 of the last 2 leads (30 days); all of them would have waited for the end of \
         quiet hours by email and SMS."
    );
    let page = app.get_html(&owner, "/settings/notifications").await;
    assert!(page.contains("all of them would have waited for the end of quiet hours"), "the row's preview too");
}

#[tokio::test]
async fn a_summary_the_provider_refused_for_now_is_retried_whole() {
    let app = spawn_app().await;
    let (business, owner, row) = acme_with_sam(&app).await;
    assert_eq!(quiet_now(&app, &owner, row, None).await.status(), 303);
    event_id(app.post_event(&business, "m1", &lead("L-1", Some(70))).await).await;
    event_id(app.post_event(&business, "m2", &lead("L-2", Some(90))).await).await;
    app.wait_count("SELECT count(*) FROM deliveries WHERE status = 'pending' AND person_name = 'Sam'", 4).await;
    app.wait_count("SELECT count(*) FROM deliveries WHERE status = 'sent' AND channel = 'sms'", 2).await;

    // The window ends; Twilio fails the summary once, then takes it.
    app.twilio.script(&[Reply::Error(500, 20500)]);
    app.dispatcher.advance_clock(Duration::from_secs(2 * 3600));
    app.wait_count(
        "SELECT count(*) FROM deliveries WHERE status = 'sent' AND channel = 'sms' AND person_name = 'Sam'",
        2,
    )
    .await;
    let texts: Vec<String> = app.twilio.received().into_iter().filter(|t| t.to == SAM).map(|t| t.body).collect();
    assert_eq!(texts.len(), 2, "the refused try and its retry: {texts:?}");
    assert!(
        texts.iter().all(|t| t.starts_with("2 new leads while quiet")),
        "the retry is the whole summary: {texts:?}"
    );
}

#[tokio::test]
async fn a_new_time_zone_in_account_moves_what_quiet_hours_and_the_daily_summary_hold() {
    let app = spawn_app().await;
    let (business, owner, row) = acme_with_sam(&app).await;
    let at = utc_clock(60);
    sam_with_a_digest(&app, &owner, row, &at).await;
    assert_eq!(quiet_now(&app, &owner, row, None).await.status(), 303);
    event_id(app.post_event(&business, "m1", &lead("L-1", Some(80))).await).await;
    let low = event_id(app.post_event(&business, "m2", &lead("L-2", Some(40))).await).await;
    app.wait_count("SELECT count(*) FROM deliveries WHERE status = 'pending' AND person_name = 'Sam'", 3).await;
    let digest_due = |app: &TestApp| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_as::<_, (i64, String)>(
                "SELECT held_until_ms, reason FROM deliveries WHERE event_id = $1 AND person_name = 'Sam' AND channel = 'email'",
            )
            .bind(low)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let (before, _) = digest_due(&app).await;

    // Sam moves to Tokyo (UTC+9): his window is no longer now, and his summary is at his new 08:00.
    let sam = app.login("sam@acme.test").await;
    assert_eq!(app.post_form(&sam, "/account/time-zone", &[("time_zone", "Asia/Tokyo")]).await.status(), 303);
    app.wait_count(
        "SELECT count(*) FROM deliveries WHERE status = 'sent' AND person_name = 'Sam' AND channel <> 'in_app'",
        2,
    )
    .await;
    assert_eq!(to_sam(&app), (1, 1), "what quiet hours held went at once");
    let (after, reason) = digest_due(&app).await;
    let moved = (before - after).rem_euclid(24 * 3_600_000);
    assert_eq!(moved, 9 * 3_600_000, "the same wall-clock time, nine hours earlier: {before} → {after}");
    assert!(reason.ends_with(&format!("\u{2019}s {at} digest")), "{reason}");
}
