//! Claiming a lead from its alert: the link in the SMS, the email and the inbox; the first claim
//! wins; links that are forged, expired, or of someone removed change nothing.
use base64::Engine;
use kaicalls_notify::clock::unix_now;
use kaicalls_notify::domain::claim;

use crate::alerts::{sms_on, teammate};
use crate::helpers::{TestApp, TestBusiness, client, lead, spawn_app};

/// The claim link in a text, on this test's server (alerts name `KAI_PUBLIC_URL`).
fn claim_path(text: &str) -> String {
    let start = text.find("http://kaicalls.test/c/").unwrap_or_else(|| panic!("no claim link in {text}"));
    let link: String =
        text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || "/:._-".contains(*c)).collect();
    link.trim_start_matches("http://kaicalls.test").trim_end_matches('.').to_owned()
}

/// An email's text as sent: quoted-printable soft line breaks undone.
fn email_text(data: &str) -> String {
    data.replace("=\r\n", "").replace("=\n", "")
}

async fn claimed_by(app: &TestApp) -> Option<String> {
    sqlx::query_scalar("SELECT claimed_by_name FROM leads").fetch_one(&app.pool).await.unwrap()
}

/// A business texting new leads to itself and to Sam (threshold 50); a lead scoring 90 arrives.
async fn lead_for_sam(app: &TestApp) -> (TestBusiness, reqwest::Client) {
    let business = app.create_business("Acme Plumbing", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    sms_on(app, &owner, "(555) 555-0100").await;
    teammate(app, &business, &owner, "50").await;
    let body = serde_json::json!({"type": "lead.created", "data": {"lead_id": "L-1", "name": "Jane Doe",
        "phone": "+15555550123", "score": 90, "summary": "Burst pipe under the sink", "occurred_at": "2026-11-29T10:00:00Z"}});
    assert_eq!(app.post_event(&business, "m1", &body).await.status(), 202);
    (business, owner)
}

#[tokio::test]
async fn a_teammate_claims_from_the_text_and_everyone_else_sees_who_took_it() {
    let app = spawn_app().await;
    let (_, owner) = lead_for_sam(&app).await;
    let texts = app.twilio.wait_for(2).await;
    let sams = texts.iter().find(|t| t.to == "+15555550101").expect("Sam gets a text");
    assert!(sams.body.len() <= 160 && sams.body.is_ascii(), "one GSM-7 segment: {:?}", sams.body);
    assert!(sams.body.contains(" Claim: http://kaicalls.test/c/"), "{}", sams.body);
    let business_text = texts.iter().find(|t| t.to == "+15555550100").unwrap();
    assert!(!business_text.body.contains("/c/"), "the business phone is nobody in particular: {}", business_text.body);
    let path = claim_path(&sams.body);

    // Opening the link (as a mail scanner would) changes nothing.
    let phone = client();
    let page = phone.get(app.url(&path)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("Jane Doe") && page.contains("tel:+15555550123") && page.contains("Burst pipe"));
    assert!(page.contains("I&#39;ll call them"), "{page}");
    assert_eq!(claimed_by(&app).await, None);

    let claimed = phone.post(app.url(&path)).send().await.unwrap();
    assert_eq!(claimed.status(), 200);
    assert!(claimed.text().await.unwrap().contains("It&#39;s yours"));
    assert_eq!(claimed_by(&app).await.as_deref(), Some("Sam"));

    // The owner's in-app alert leads to the same lead: taken, with the number anyway.
    app.wait_count("SELECT count(*) FROM notifications", 1).await;
    let link: String = sqlx::query_scalar("SELECT link FROM notifications").fetch_one(&app.pool).await.unwrap();
    assert!(link.starts_with("/c/"), "{link}");
    let seen = app.get_html(&owner, &link).await;
    assert!(seen.contains("Sam took it at") && seen.contains("after the call"), "{seen}");
    assert!(seen.contains("tel:+15555550123"));
    assert!(!seen.contains("<button type=\"submit\">I&#39;ll call them"), "nothing left to claim");
    let late = owner.post(app.url(&link)).send().await.unwrap();
    assert_eq!(late.status(), 409);
    assert!(late.text().await.unwrap().contains("Sam took it at"));
    assert_eq!(claimed_by(&app).await.as_deref(), Some("Sam"), "the first claim stands");
}

#[tokio::test]
async fn a_teammate_claims_from_the_email_link() {
    let app = spawn_app().await;
    lead_for_sam(&app).await;
    let mail = app.smtp.wait_for(2).await;
    let sams = mail.iter().find(|m| m.to.iter().any(|t| t.contains("sam@acme.test"))).expect("Sam gets an email");
    let text = email_text(&sams.data);
    assert!(text.contains("Will you call them?"), "{text}");
    let path = claim_path(&text);
    let claimed = client().post(app.url(&path)).send().await.unwrap();
    assert_eq!(claimed.status(), 200);
    assert_eq!(claimed_by(&app).await.as_deref(), Some("Sam"));
    // The notification email is the owner's own address: the business's copy is the owner's to
    // claim from (the owner's personal copy is not sent twice).
    let business = mail.iter().find(|m| m.to.iter().any(|t| t.contains("owner@acme.test"))).unwrap();
    let owners = claim_path(&email_text(&business.data));
    let late = client().post(app.url(&owners)).send().await.unwrap();
    assert_eq!(late.status(), 409, "Sam was first");
    assert!(late.text().await.unwrap().contains("Sam took it at"));
}

#[tokio::test]
async fn the_owner_claims_from_the_business_email_when_it_is_their_own_address() {
    let app = spawn_app().await;
    lead_for_sam(&app).await;
    let mail = app.smtp.wait_for(2).await;
    let business = mail.iter().find(|m| m.to.iter().any(|t| t.contains("owner@acme.test"))).unwrap();
    let text = email_text(&business.data);
    assert!(text.contains("Will you call them?"), "{text}");
    let claimed = client().post(app.url(&claim_path(&text))).send().await.unwrap();
    assert_eq!(claimed.status(), 200);
    assert_eq!(claimed_by(&app).await.as_deref(), Some("Acme Plumbing Owner"));
    // The business phone is nobody's own number: its text points at the Leads page.
    let texts = app.twilio.wait_for(2).await;
    let business_text = texts.iter().find(|t| t.to == "+15555550100").unwrap();
    assert!(business_text.body.ends_with("http://kaicalls.test/leads"), "{}", business_text.body);
}

#[tokio::test]
async fn two_claims_at_the_same_instant_one_wins_and_the_other_is_told_who() {
    let app = spawn_app().await;
    let (_, owner) = lead_for_sam(&app).await;
    let texts = app.twilio.wait_for(2).await;
    let sams = claim_path(&texts.iter().find(|t| t.to == "+15555550101").unwrap().body);
    app.wait_count("SELECT count(*) FROM notifications", 1).await;
    let owners: String = sqlx::query_scalar("SELECT link FROM notifications").fetch_one(&app.pool).await.unwrap();

    let (a, b) = tokio::join!(client().post(app.url(&sams)).send(), owner.post(app.url(&owners)).send());
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409]);
    let winner = claimed_by(&app).await.unwrap();
    let loser_page = if a.status() == 409 { a.text().await.unwrap() } else { b.text().await.unwrap() };
    assert!(loser_page.contains(&format!("{winner} took it at")), "{loser_page}");
}

#[tokio::test]
async fn forged_expired_and_removed_peoples_links_change_nothing() {
    let app = spawn_app().await;
    let (_, owner) = lead_for_sam(&app).await;
    let texts = app.twilio.wait_for(2).await;
    let path = claim_path(&texts.iter().find(|t| t.to == "+15555550101").unwrap().body);

    let forged = path.replacen("/c/", "/c/1", 1);
    let answer = client().post(app.url(&forged)).send().await.unwrap();
    assert_eq!(answer.status(), 400);
    assert!(answer.text().await.unwrap().contains("This claim link is not valid"));
    let (_, signature) = path.rsplit_once('.').unwrap();
    let id = path.trim_start_matches("/c/").split('.').next().unwrap();
    let pushed_back = client().get(app.url(&format!("/c/{id}.zzzzzz.{signature}"))).send().await.unwrap();
    assert_eq!(pushed_back.status(), 400, "the expiry is signed: changing it breaks the link");

    // A link made eight days ago, with the server's own key, has expired.
    let stored: String = sqlx::query_scalar("SELECT value FROM app_settings WHERE key = 'unsubscribe_key'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let key = kaicalls_notify::tokens::derive_key(
        &base64::engine::general_purpose::STANDARD.decode(stored).unwrap(),
        "claim links",
    );
    let delivery = i64::from_str_radix(id, 36).unwrap();
    let old = claim::token(&key, delivery, unix_now() - 8 * 24 * 3600);
    let expired = client().post(app.url(&format!("/c/{old}"))).send().await.unwrap();
    assert_eq!(expired.status(), 410);
    assert!(expired.text().await.unwrap().contains("This claim link has expired"));
    assert_eq!(claimed_by(&app).await, None);

    // Sam leaves the team: his link no longer claims.
    let sam = sqlx::query_scalar::<_, i64>("SELECT id FROM users WHERE email = 'sam@acme.test'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let removed = app.post_form(&owner, &format!("/team/members/{sam}/remove"), &[]).await;
    assert_eq!(removed.status(), 303, "Sam removed");
    let refused = client().post(app.url(&path)).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("no longer on the Acme Plumbing team"));
    assert_eq!(claimed_by(&app).await, None);
}

#[tokio::test]
async fn a_signed_in_teammate_claims_from_the_leads_page_and_the_inbox() {
    let app = spawn_app().await;
    let (business, owner) = lead_for_sam(&app).await;
    app.wait_count("SELECT count(*) FROM deliveries WHERE status = 'sent'", 4).await;
    let leads = app.get_html(&owner, "/leads").await;
    assert!(leads.contains("I&#39;ll call them<span class=\"visually-hidden\">: Jane Doe</span>"), "{leads}");

    let claimed = app.post_form(&owner, "/leads/claim", &[("lead_id", "L-1")]).await;
    assert_eq!(crate::helpers::location(&claimed), "/leads?claimed=yours");
    let leads = app.get_html(&owner, "/leads?claimed=yours").await;
    assert!(leads.contains("Acme Plumbing Owner, under a minute after the call"), "{leads}");
    assert!(leads.contains("It’s yours"));

    // Sam, signed in, is told someone was first; the owner's claim stands.
    let sam = app.login("sam@acme.test").await;
    let late = app.post_form(&sam, "/leads/claim", &[("lead_id", "L-1")]).await;
    assert_eq!(crate::helpers::location(&late), "/leads?claimed=taken");
    assert_eq!(claimed_by(&app).await.as_deref(), Some("Acme Plumbing Owner"));
    // Another business's lead id is not found here.
    let other = app.post_form(&sam, "/leads/claim", &[("lead_id", "L-404")]).await;
    assert_eq!(other.status(), 404);

    // A second lead: the owner claims it from the inbox (the card's button posts their link).
    let body = lead("L-2", Some(95));
    assert_eq!(app.post_event(&business, "m2", &body).await.status(), 202);
    app.wait_count("SELECT count(*) FROM notifications", 2).await;
    let inbox = app.get_html(&owner, "/notifications").await;
    let marker = "<form method=\"post\" action=\"/c/";
    let start = inbox.find(marker).expect("the newest alert offers a claim button") + marker.len() - 3;
    let action: String = inbox[start..].chars().take_while(|c| *c != '"').collect();
    let answer = owner.post(app.url(&action)).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let who: Option<String> = sqlx::query_scalar("SELECT claimed_by_name FROM leads WHERE lead_id = 'L-2'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(who.as_deref(), Some("Acme Plumbing Owner"));
}

#[tokio::test]
async fn leads_filter_to_the_ones_not_claimed_and_each_person_shows_their_speed_to_lead() {
    let app = spawn_app().await;
    let (business, owner) = lead_for_sam(&app).await;
    assert_eq!(app.post_event(&business, "m2", &lead("L-2", Some(95))).await.status(), 202);
    let texts = app.twilio.wait_for(4).await;
    let first = texts.iter().find(|t| t.to == "+15555550101" && t.body.contains("Burst pipe under")).unwrap();
    assert_eq!(client().post(app.url(&claim_path(&first.body))).send().await.unwrap().status(), 200);

    let open = app.get_html(&owner, "/leads?show=unclaimed").await;
    assert!(open.contains("1 lead not claimed"), "{open}");
    assert!(!open.contains("Burst pipe under the sink"), "Sam has the first lead");
    assert!(open.contains("Burst pipe, wants a quote today") && open.contains("I&#39;ll call them"), "{open}");
    let all = app.get_html(&owner, "/leads").await;
    assert!(all.contains("2 leads") && all.contains("Sam, under a minute after the call"), "{all}");
    assert_eq!(app.get(&owner, "/leads?show=everything").await.status(), 400);

    let page = app.get_html(&owner, "/settings/notifications").await;
    assert!(page.contains("Claimed 1 lead in 30 days, under a minute after the call."), "{page}");
    assert!(page.contains("No leads claimed in 30 days."), "the owner has claimed none");

    // A change to Sam's row redraws it with his speed still there.
    let sam: i64 =
        sqlx::query_scalar("SELECT id FROM users WHERE email = 'sam@acme.test'").fetch_one(&app.pool).await.unwrap();
    let row = app.recipient_id(sam).await.unwrap();
    let prefs = [("sms_enabled", "on"), ("email_enabled", "on"), ("lead_created", "on"), ("min_lead_score", "60")];
    let redrawn = app.post_htmx(&owner, &format!("/settings/notifications/recipients/{row}"), &prefs).await;
    assert_eq!(redrawn.status(), 200);
    let redrawn = redrawn.text().await.unwrap();
    assert!(redrawn.contains("Claimed 1 lead in 30 days, under a minute after the call."), "{redrawn}");
}

/// An update of a lead at `minute` past 10 (each update is a new version of the lead).
fn update(lead_id: &str, summary: &str, minute: u8) -> serde_json::Value {
    serde_json::json!({"type": "lead.updated", "data": {"lead_id": lead_id, "name": "Jane Doe", "phone": "+15555550123",
        "score": 90, "summary": summary, "occurred_at": format!("2026-11-29T10:{minute:02}:00Z")}})
}

/// Who got an event's alerts (names of the people with a sent decision) and the reasons of the
/// others.
async fn outcome(app: &TestApp, event: i64) -> (Vec<String>, Vec<String>) {
    let rows: Vec<(Option<String>, String, Option<String>)> = sqlx::query_as(
        "SELECT person_name, status, reason FROM deliveries WHERE event_id = $1 AND user_id IS NOT NULL ORDER BY id",
    )
    .bind(event)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let mut sent: Vec<String> =
        rows.iter().filter(|(_, s, _)| s != "skipped").filter_map(|(n, _, _)| n.clone()).collect();
    sent.dedup();
    let reasons = rows.iter().filter(|(_, s, _)| s == "skipped").filter_map(|(_, _, r)| r.clone()).collect();
    (sent, reasons)
}

#[tokio::test]
async fn after_a_claim_its_updates_reach_only_the_claimer_for_those_who_ask_and_for_the_business() {
    let app = spawn_app().await;
    let (business, owner) = lead_for_sam(&app).await;
    let texts = app.twilio.wait_for(2).await;
    let sams = claim_path(&texts.iter().find(|t| t.to == "+15555550101").unwrap().body);

    // The owner asks for updates only of the leads they claimed (their row's "More").
    let owner_id: i64 =
        sqlx::query_scalar("SELECT id FROM users WHERE email = 'owner@acme.test'").fetch_one(&app.pool).await.unwrap();
    let row = app.recipient_id(owner_id).await.unwrap();
    let mine = [
        ("email_enabled", "on"),
        ("in_app_enabled", "on"),
        ("lead_created", "on"),
        ("lead_updated", "on"),
        ("usage_alerts", "on"),
        ("billing_alerts", "on"),
        ("min_lead_score", "0"),
        ("claimed_updates_only", "on"),
    ];
    let saved = app.post_form(&owner, &format!("/settings/notifications/recipients/{row}"), &mine).await;
    assert_eq!(saved.status(), 303);
    let page = app.get_html(&owner, "/settings/notifications").await;
    assert!(page.contains("Lead updates: only for leads I claimed"), "{page}");

    // Nobody claimed the lead yet: its update reaches everyone.
    let first = crate::alerts::event_id(app.post_event(&business, "u1", &update("L-1", "Sent photos", 5)).await).await;
    app.wait_count("SELECT count(*) FROM events WHERE state = 'planned'", 2).await;
    let (sent, _) = outcome(&app, first).await;
    assert_eq!(sent, ["Acme Plumbing Owner", "Sam"]);

    // Sam claims it: the next update skips the owner, with the reason in the log.
    assert_eq!(client().post(app.url(&sams)).send().await.unwrap().status(), 200);
    let second = crate::alerts::event_id(app.post_event(&business, "u2", &update("L-1", "Booked", 6)).await).await;
    let (sent, reasons) = outcome(&app, second).await;
    assert_eq!(sent, ["Sam"]);
    assert!(
        reasons
            .iter()
            .any(|r| r == "Sam claimed this lead; Acme Plumbing Owner gets updates only of leads they claimed"),
        "{reasons:?}"
    );
    let log = app.get_html(&owner, "/settings/notifications/log").await;
    assert!(log.contains("someone else claimed the lead") || log.contains("Sam claimed this lead"), "{log}");

    // The business sends every claimed lead's updates only to the claimer, whatever each person
    // chose (the owner's own choice is shown on and greyed).
    let mut fields = crate::helpers::all_defaults_on();
    fields.extend([
        ("notification_email", "owner@acme.test"),
        ("notification_phone", "(555) 555-0100"),
        ("claimed_updates_only", "on"),
        ("action", "save"),
    ]);
    assert_eq!(app.post_form(&owner, "/settings/notifications/defaults", &fields).await.status(), 303);
    app.phones_known_good().await;
    let page = app.get_html(&owner, "/settings/notifications").await;
    assert!(page.contains("On for everyone: the business sends each lead"), "{page}");
    let third = crate::alerts::event_id(app.post_event(&business, "u3", &update("L-1", "Paid", 7)).await).await;
    let (sent, reasons) = outcome(&app, third).await;
    assert_eq!(sent, ["Sam"]);
    assert!(reasons.iter().all(|r| r.starts_with("Sam claimed this lead, and its updates go only to")), "{reasons:?}");
    // The business's own phone still hears of it.
    let business_texts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM deliveries WHERE event_id = $1 AND user_id IS NULL AND status <> 'skipped'",
    )
    .bind(third)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(business_texts >= 1);
}
