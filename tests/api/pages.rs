use std::time::Duration;

use kaicalls_notify::domain::Role;

use crate::helpers::{TestApp, all_defaults_on, lead, location, spawn_app, usage};

async fn accepted(response: reqwest::Response) {
    assert_eq!(response.status(), 202);
}

async fn add_recipient(app: &TestApp, owner: &reqwest::Client, user_id: i64, threshold: &str) -> i64 {
    let id = app.add_recipient(owner, user_id).await;
    let prefs =
        [("email_enabled", "on"), ("in_app_enabled", "on"), ("lead_created", "on"), ("min_lead_score", threshold)];
    app.post_form(owner, &format!("/settings/notifications/recipients/{id}"), &prefs).await;
    id
}

#[tokio::test]
async fn the_bell_counts_new_alerts_and_the_inbox_clears_it() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    assert!(!app.get_html(&owner, "/notifications/bell").await.contains("class=\"count\""));

    accepted(app.post_event(&business, "m1", &lead("L-1", Some(82))).await).await;
    app.wait_count("SELECT count(*) FROM notifications", 1).await;

    let bell = app.get_html(&owner, "/notifications/bell").await;
    assert!(
        bell.contains("aria-label=\"Notifications: 1 unread\"") && bell.contains("<span class=\"count\">1</span>"),
        "{bell}"
    );
    let page = app.get_html(&owner, "/settings/notifications").await;
    assert!(page.contains("<span class=\"count\">1</span>"), "the header shows it on every page");
    let inbox = app.get_html(&owner, "/notifications").await;
    assert!(inbox.contains("New lead: Jane Doe"));
    let id: i64 = sqlx::query_scalar("SELECT id FROM notifications").fetch_one(&app.pool).await.unwrap();

    let read = app.post_form(&owner, &format!("/notifications/{id}/read"), &[]).await;

    assert_eq!(read.status(), 303);
    assert!(app.get_html(&owner, "/notifications/bell").await.contains("Notifications: 0 unread"));
    accepted(app.post_event(&business, "m2", &lead("L-2", Some(82))).await).await;
    accepted(app.post_event(&business, "m3", &lead("L-3", Some(82))).await).await;
    app.wait_count("SELECT count(*) FROM notifications", 3).await;
    assert!(app.get_html(&owner, "/notifications/bell").await.contains("Notifications: 2 unread"));
    assert_eq!(app.post_form(&owner, "/notifications/read-all", &[]).await.status(), 303);
    assert!(app.get_html(&owner, "/notifications/bell").await.contains("Notifications: 0 unread"));
}

#[tokio::test]
async fn nobody_marks_someone_elses_notification() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    app.add_user(&business, "Ann", "ann@acme.test", None, Role::Member).await;
    accepted(app.post_event(&business, "m1", &lead("L-1", Some(82))).await).await;
    app.wait_count("SELECT count(*) FROM notifications", 1).await;
    let id: i64 = sqlx::query_scalar("SELECT id FROM notifications").fetch_one(&app.pool).await.unwrap();
    let ann = app.login("ann@acme.test").await;

    assert_eq!(app.post_form(&ann, &format!("/notifications/{id}/read"), &[]).await.status(), 404);
    let unread: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications WHERE read_at IS NULL")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(unread, 1);
}

#[tokio::test]
async fn recent_alerts_answer_why_someone_did_not_get_a_lead() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let sam = app.add_user(&business, "Sam", "sam@acme.test", None, Role::Member).await;
    let owner = app.login("owner@acme.test").await;
    add_recipient(&app, &owner, sam.id, "70").await;

    accepted(app.post_event(&business, "m1", &lead("L-62", Some(62))).await).await;
    app.wait_count("SELECT count(*) FROM deliveries WHERE status = 'sent'", 2).await;

    let page = app.get_html(&owner, "/settings/notifications").await;
    assert!(page.contains("New lead: Jane Doe (score 62)"));
    assert!(
        page.contains("Sent to the business and 1 person in 2 messages · not sent to 1 person: below threshold"),
        "one line sums the event up"
    );
    assert!(page.contains("score 62 is below Sam’s threshold 70"), "the details say why in full");
    assert!(page.contains("same address as the business&#39;s notification email, which gets it"));
    assert!(page.contains("<span class=\"pill sent\">Sent</span> <strong>The business</strong> · Email"));
    let (summary, details) = page.split_once("Technical details").expect("provider ids sit behind Technical details");
    assert!(!summary.contains("@kaicalls-notify&#62;"), "no provider id before them");
    assert!(details.contains("message id &#60;delivery-"), "the email’s message id is there for support: {details}");
    let member = app.login("sam@acme.test").await;
    let mine = app.get_html(&member, "/settings/notifications/alerts").await;
    assert!(mine.contains("Sam: not sent by Email, In-app: score 62 is below Sam’s threshold 70"), "{mine}");
    assert!(!mine.contains("<strong>The business</strong>"), "a member sees the rows about themselves");
    assert!(!mine.contains("owner@acme.test"));
}

/// The events of an alert log page, in order: their titles.
fn titles(html: &str) -> Vec<String> {
    html.split("<span class=\"log-title\">").skip(1).map(|s| s.split('<').next().unwrap().to_owned()).collect()
}

/// The address of the pager's link marked `rel` ("next": older, "prev": newer).
fn link(html: &str, rel: &str) -> Option<String> {
    let at = html.find(&format!("rel=\"{rel}\""))?;
    let start = html[..at].rfind("href=\"")? + 6;
    Some(html[start..].split('"').next()?.replace("&amp;", "&"))
}

#[tokio::test]
async fn the_alert_log_filters_by_person_channel_and_outcome_and_pages_through_older_events() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let sam = app.add_user(&business, "Sam", "sam@acme.test", None, Role::Member).await;
    let owner = app.login("owner@acme.test").await;
    add_recipient(&app, &owner, sam.id, "70").await;
    // 25 leads, every other one (13) below Sam's threshold.
    for i in 0..25 {
        let score = if i % 2 == 0 { 62 } else { 80 };
        let mut body = lead(&format!("L-{i}"), Some(score));
        body["data"]["name"] = serde_json::json!(format!("Caller {i}"));
        accepted(app.post_event(&business, &format!("m{i}"), &body).await).await;
    }
    app.wait_count("SELECT count(*) FROM deliveries WHERE status = 'pending'", 0).await;

    // Everything, newest first, twenty a page.
    let first = app.get_html(&owner, "/settings/notifications/log").await;
    assert_eq!(titles(&first).len(), 20);
    assert!(titles(&first)[0].starts_with("New lead: Caller 24 "), "{:?}", titles(&first));
    let older = link(&first, "next").expect("a link to older events");
    let second = app.get_html(&owner, &older).await;
    assert_eq!(titles(&second).len(), 5);
    assert!(titles(&second)[4].starts_with("New lead: Caller 0 "));
    assert!(link(&second, "next").is_none(), "nothing older");
    let newer = app.get_html(&owner, &link(&second, "prev").expect("a link back")).await;
    assert_eq!(titles(&newer), titles(&first), "Newer leads back to the same twenty");

    // "Why didn't Sam get that lead?": one line each, with the reason.
    let why = app.get_html(&owner, &format!("/settings/notifications/log?person={}&outcome=not_sent", sam.id)).await;
    assert_eq!(titles(&why).len(), 13, "only the leads Sam did not get");
    assert!(titles(&why).iter().all(|t| t.ends_with("(score 62)")));
    assert_eq!(why.matches("Sam: not sent by Email, In-app: score 62 is below Sam’s threshold 70").count(), 13);
    assert!(why.contains(&format!("<option value=\"{}\" selected>Sam</option>", sam.id)), "the filter shows");
    let sent = app.get_html(&owner, &format!("/settings/notifications/log?person={}&outcome=sent", sam.id)).await;
    assert_eq!(titles(&sent).len(), 12);
    // An outcome chooses the events and the details; the line still sums up the whole event.
    let not_sent = app.get_html(&owner, "/settings/notifications/log?outcome=not_sent").await;
    assert_eq!(titles(&not_sent).len(), 20, "the owner's email is a duplicate of the business's each time");
    assert!(
        not_sent.contains("Sent to the business and 1 person in 2 messages · not sent to 1 person: below threshold")
    );
    assert!(!not_sent.contains("Not sent to 2 people"), "the owner got each alert in-app: not counted as not sent");
    let by_sms = app.get_html(&owner, "/settings/notifications/log?channel=sms").await;
    assert!(by_sms.contains("No alerts match these filters."), "nobody has SMS");
    let business_rows = app.get_html(&owner, "/settings/notifications/log?person=business&channel=email").await;
    assert_eq!(titles(&business_rows).len(), 20);
    assert!(business_rows.contains("The business: sent by Email"));

    // Bad filters are named, and nothing is shown for them.
    for (query, message) in [
        ("outcome=lost", "Choose an outcome from the list"),
        ("channel=fax", "Choose a channel from the list"),
        ("person=99999", "That person is not on your team"),
        ("before=yesterday", "That page link is broken"),
    ] {
        let response = app.get(&owner, &format!("/settings/notifications/log?{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        assert!(response.text().await.unwrap().contains(message), "{query}");
    }

    // Sam's own log is about Sam, whatever the address asks for.
    let member = app.login("sam@acme.test").await;
    let own = app.get_html(&member, &format!("/settings/notifications/log?person={}", business.owner.id)).await;
    assert_eq!(titles(&own).len(), 20);
    assert!(!own.contains("The business: ") && !own.contains("<strong>The business</strong>"));
    assert!(!own.contains("name=\"person\""), "no person filter for a teammate");
}

#[tokio::test]
async fn a_test_alert_goes_to_each_of_the_persons_channels_now() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let sam = app.add_user(&business, "Sam", "sam@acme.test", None, Role::Member).await;
    let owner = app.login("owner@acme.test").await;
    let id = add_recipient(&app, &owner, sam.id, "100").await;
    let member = app.login("sam@acme.test").await;

    let response = app.post_htmx(&member, &format!("/settings/notifications/recipients/{id}/test"), &[]).await;

    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("Test alert on its way to your channels."));
    let emails = app.smtp.wait_for(1).await;
    assert_eq!(emails[0].to, vec!["sam@acme.test".to_owned()]);
    assert!(emails[0].data.contains("Subject: Test alert from KaiCalls"));
    app.wait_count("SELECT count(*) FROM notifications WHERE title = 'Test alert'", 1).await;
    let owner_row = app.recipient_id(business.owner.id).await.unwrap();
    let forbidden = app.post_form(&member, &format!("/settings/notifications/recipients/{owner_row}/test"), &[]).await;
    assert_eq!(forbidden.status(), 403);
}

#[tokio::test]
async fn the_email_unsubscribe_link_turns_off_that_alert_kind_on_post_only() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    let mut fields = all_defaults_on();
    fields.retain(|(k, _)| *k != "sms_enabled");
    fields.push(("notification_email", "office@acme.test"));
    fields.push(("action", "save"));
    app.post_form(&owner, "/settings/notifications/defaults", &fields).await;
    accepted(app.post_event(&business, "m1", &lead("L-1", Some(82))).await).await;
    let emails = app.smtp.wait_for(2).await;
    let office = emails.iter().find(|e| e.to == ["office@acme.test"]).unwrap();
    assert!(!office.data.contains("List-Unsubscribe"), "the business's own address has no personal unsubscribe");
    let email = emails.iter().find(|e| e.to == ["owner@acme.test"]).unwrap().data.replace("=\n", "");
    let start = email.find("List-Unsubscribe: <http://kaicalls.test").unwrap()
        + "List-Unsubscribe: <http://kaicalls.test".len();
    let path = email[start..].split('>').next().unwrap().to_owned();
    let id = app.recipient_id(business.owner.id).await.unwrap();

    let page = crate::helpers::client().get(app.url(&path)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Unsubscribe from new-lead alerts"));
    assert!(app.recipient(&business.id, id).await.unwrap().prefs.kinds.lead_created, "a GET changes nothing");

    let done =
        crate::helpers::client().post(app.url(&path)).form(&[("List-Unsubscribe", "One-Click")]).send().await.unwrap();

    assert_eq!(done.status(), 200);
    let prefs = app.recipient(&business.id, id).await.unwrap().prefs;
    assert!(!prefs.kinds.lead_created && prefs.kinds.lead_updated);
    let forged =
        crate::helpers::client().post(app.url(&path.replace("lead_created", "billing_alerts"))).send().await.unwrap();
    assert_eq!(forged.status(), 400);
}

#[tokio::test]
async fn after_rotating_the_secret_both_the_old_and_the_new_one_work() {
    let app = spawn_app().await;
    let mut business = app.create_business("Acme", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    accepted(app.post_event(&business, "m0", &lead("L-0", Some(82))).await).await;

    let rotated = app.post_form(&owner, "/settings/notifications/webhook-secret", &[]).await;

    assert_eq!(rotated.status(), 303);
    let page = app.get_html(&owner, &location(&rotated)).await;
    assert!(page.contains("The previous secret also works until"));
    let new_secret: String = sqlx::query_scalar("SELECT webhook_secret FROM businesses WHERE id = $1")
        .bind(&business.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_ne!(new_secret, business.secret);
    assert!(page.contains(&new_secret));
    accepted(app.post_event(&business, "m1", &lead("L-1", Some(82))).await).await;
    business.secret = new_secret;
    accepted(app.post_event(&business, "m2", &lead("L-2", Some(82))).await).await;
    let member_view = app.add_user(&business, "Ann", "ann@acme.test", None, Role::Member).await;
    let ann = app.login("ann@acme.test").await;
    assert!(
        !app.get_html(&ann, "/settings/notifications").await.contains(&business.secret),
        "members never see the secret"
    );
    assert_eq!(app.post_form(&ann, "/settings/notifications/webhook-secret", &[]).await.status(), 403);
    let _ = member_view;
}

#[tokio::test]
async fn a_given_up_delivery_can_be_retried_from_the_page() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    let mut fields = all_defaults_on();
    fields.push(("notification_phone", "(555) 555-0100"));
    fields.push(("notification_email", "owner@acme.test"));
    fields.push(("action", "save"));
    app.post_form(&owner, "/settings/notifications/defaults", &fields).await;
    app.phones_known_good().await;
    app.twilio.script(&[crate::twilio::Reply::Error(400, 30003)]);
    accepted(app.post_event(&business, "m1", &lead("L-1", Some(82))).await).await;
    app.wait_count("SELECT count(*) FROM deliveries WHERE status = 'failed'", 1).await;
    let id: i64 =
        sqlx::query_scalar("SELECT id FROM deliveries WHERE status = 'failed'").fetch_one(&app.pool).await.unwrap();
    assert!(
        app.get_html(&owner, "/settings/notifications")
            .await
            .contains(&format!("/settings/notifications/deliveries/{id}/retry"))
    );

    let retried = app.post_form(&owner, &format!("/settings/notifications/deliveries/{id}/retry"), &[]).await;

    assert_eq!(retried.status(), 303);
    app.wait_count("SELECT count(*) FROM deliveries WHERE channel = 'sms' AND status = 'sent'", 1).await;
    assert_eq!(app.twilio.received().len(), 2);
}

#[tokio::test]
async fn the_leads_and_billing_pages_show_what_caused_the_alerts() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    accepted(app.post_event(&business, "m1", &lead("L-1", Some(82))).await).await;
    accepted(app.post_event(&business, "u1", &usage(460, 500, "2026-11-01")).await).await;
    let failed = serde_json::json!({"type": "billing.payment_failed", "data": {"invoice_id": "in_1", "amount_cents": 6900,
        "currency": "usd", "reason": "card_declined", "next_attempt_at": "2026-12-01T00:00:00Z"}});
    accepted(app.post_event(&business, "b1", &failed).await).await;
    app.wait_count("SELECT count(*) FROM events WHERE state = 'planned'", 3).await;
    app.wait_count("SELECT count(*) FROM deliveries WHERE status = 'pending'", 0).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let leads = app.get_html(&owner, "/leads").await;
    assert!(
        leads.contains("<td>Jane Doe</td><td>(555) 555-0123</td><td>82</td><td>Burst pipe, wants a quote today</td>"),
        "{leads}"
    );
    assert!(leads.contains("1 lead"));
    assert!(app.get(&owner, "/leads?page=999").await.status().is_success());
    let billing = app.get_html(&owner, "/billing").await;
    assert!(billing.contains("<strong>460</strong> of 500 included minutes used (92%)"));
    assert!(billing.contains("90% alert: 460 of 500 minutes"));
    assert!(
        billing.contains("Payment of $69.00 failed (card declined). We&#39;ll retry on Dec 1.")
            || billing.contains("Payment of $69.00 failed (card declined). We'll retry on Dec 1."),
        "{billing}"
    );
}

#[tokio::test]
async fn send_event_posts_a_signed_lead() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let url = app.url(&format!("/webhooks/kai/{}", business.id));
    let bin = env!("CARGO_BIN_EXE_kaicalls-notify");

    let secret = business.secret.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .args(["send-event", "--url", &url, "--secret", &secret, "--score", "77"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();

    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("202 {\"id\":"));
    let emails = app.smtp.wait_for(1).await;
    assert!(emails[0].data.contains("(score 77)"));
}

#[tokio::test]
async fn the_threshold_preview_counts_the_leads_a_threshold_would_have_let_through() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    for (i, score) in [90u8, 75, 60, 40].into_iter().enumerate() {
        accepted(app.post_event(&business, &format!("m{i}"), &lead(&format!("L-{i}"), Some(score))).await).await;
    }
    accepted(app.post_event(&business, "m-none", &lead("L-none", None)).await).await;
    app.wait_count("SELECT count(*) FROM leads", 5).await;
    let id = app.recipient_id(business.owner.id).await.unwrap();

    let at_70 =
        app.get_html(&owner, &format!("/settings/notifications/recipients/{id}/preview?min_lead_score=70")).await;
    let bad =
        app.get_html(&owner, &format!("/settings/notifications/recipients/{id}/preview?min_lead_score=700")).await;

    assert_eq!(at_70, "At 70, you would have received 2 of the last 5 leads (30 days).");
    assert!(bad.contains("between 0 and 100"));
    let page = app.get_html(&owner, "/settings/notifications").await;
    assert!(
        page.contains("At 0, you would have received 5 of the last 5 leads (30 days)."),
        "shown without JavaScript too"
    );
    let other = app.create_business("Other", "o@other.test").await;
    let other_owner = app.login("o@other.test").await;
    let _ = other;
    assert_eq!(
        app.get(&other_owner, &format!("/settings/notifications/recipients/{id}/preview?min_lead_score=1"))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn phones_show_in_the_businesss_local_format_and_others_in_international_format() {
    let app = crate::helpers::spawn_app().await;
    app.create_business("Acme", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;

    let typed = app.post_form(&owner, "/account/profile", &[("name", "Olive Owner"), ("phone", "555.555.0100")]).await;
    assert_eq!(typed.status(), 200, "saved, and the page asks for the code texted to the new number");
    assert!(app.get_html(&owner, "/account").await.contains("value=\"(555) 555-0100\""));

    let abroad =
        app.post_form(&owner, "/account/profile", &[("name", "Olive Owner"), ("phone", "+44 20 7946 0958")]).await;
    assert_eq!(abroad.status(), 200);
    assert!(app.get_html(&owner, "/account").await.contains("value=\"+44 20 7946 0958\""));
    let stored: String = sqlx::query_scalar("SELECT phone FROM users").fetch_one(&app.pool).await.unwrap();
    assert_eq!(stored, "+442079460958", "stored as E.164");
}

/// Reads the stream until the next `bell` event; answers its data.
async fn next_bell(stream: &mut reqwest::Response, buffer: &mut String) -> String {
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if event.starts_with("event: bell") {
                return event.lines().filter_map(|l| l.strip_prefix("data: ")).collect::<Vec<_>>().join("\n");
            }
            continue;
        }
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), stream.chunk()).await;
        let chunk = chunk.expect("an event within 5 s").unwrap().expect("the stream stays open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn the_inbox_stream_tells_each_person_of_their_own_alerts() {
    let app = crate::helpers::spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    app.add_user(&business, "Sam", "sam@acme.test", None, kaicalls_notify::domain::Role::Member).await;
    let owner = app.login("owner@acme.test").await;
    let sam = app.login("sam@acme.test").await;
    let mut owner_stream = app.get(&owner, "/notifications/stream").await;
    assert_eq!(owner_stream.headers()["content-type"], "text/event-stream");
    let mut sam_stream = app.get(&sam, "/notifications/stream").await;
    let (mut owner_buffer, mut sam_buffer) = (String::new(), String::new());
    assert!(next_bell(&mut owner_stream, &mut owner_buffer).await.contains("Notifications: 0 unread"));
    assert!(next_bell(&mut sam_stream, &mut sam_buffer).await.contains("Notifications: 0 unread"));

    assert_eq!(app.post_event(&business, "m1", &crate::helpers::lead("L-1", Some(90))).await.status(), 202);

    let bell = next_bell(&mut owner_stream, &mut owner_buffer).await;
    assert!(bell.contains("Notifications: 1 unread") && bell.contains("<span class=\"count\">1</span>"), "{bell}");
    let quiet = tokio::time::timeout(std::time::Duration::from_millis(800), sam_stream.chunk()).await;
    assert!(quiet.is_err(), "Sam is not a recipient: his stream stays quiet");
    let anonymous = crate::helpers::client().get(app.url("/notifications/stream")).send().await.unwrap();
    assert_eq!(anonymous.status(), 303, "the stream is for signed-in people");
}

#[tokio::test]
async fn the_dashboard_counts_leads_and_alerts_and_shows_what_needs_attention() {
    let app = crate::helpers::spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    app.add_user(&business, "Sam", "sam@acme.test", None, kaicalls_notify::domain::Role::Member).await;
    accepted(app.post_event(&business, "m1", &lead("L-1", Some(82))).await).await;
    accepted(app.post_event(&business, "u1", &crate::helpers::usage(460, 500, "2026-11-01")).await).await;
    app.wait_count("SELECT count(*) FROM deliveries WHERE status = 'sent'", 4).await;

    let page = app.get_html(&owner, "/").await;

    assert!(page.contains("<h1>Dashboard</h1>"));
    assert!(page.contains("<strong class=\"figure\">1</strong> lead"), "one lead in the last 24 hours");
    assert!(
        page.contains("<strong class=\"figure\">4</strong> alerts sent"),
        "an email and an in-app alert for the lead, the same for the 90% usage alert"
    );
    assert!(page.contains("460</strong> of 500 included minutes used (92%)"));
    assert!(!page.contains("Needs attention"));
    let sam = app.login("sam@acme.test").await;
    let sam_page = app.get_html(&sam, "/").await;
    assert!(sam_page.contains("<h1>Dashboard</h1>") && !sam_page.contains("Set-up:"), "members see no set-up steps");
}
