//! Confirmed numbers: a new phone receives alerts only after the code texted to it is typed
//! back; wrong codes run out, old codes stop working when the number changes.
use kaicalls_notify::domain::Role;

use crate::alerts::{event_id, sms_on};
use crate::helpers::{TestApp, TestBusiness, lead, spawn_app};

const ANN: &str = "+15555550109";

/// The code in the last text to `number`, read from the Twilio-shaped server's requests.
fn code_sent_to(app: &TestApp, number: &str) -> String {
    let texts = app.twilio.received();
    let text = texts.iter().rev().find(|t| t.to == number).unwrap_or_else(|| panic!("no text to {number}: {texts:?}"));
    assert!(text.body.contains("is your KaiCalls code"), "{}", text.body);
    text.body[..6].to_owned()
}

/// Acme with Ann, a member with no phone yet, on the recipient list.
async fn acme_with_ann(app: &TestApp) -> (TestBusiness, reqwest::Client, reqwest::Client) {
    let business = app.create_business("Acme Plumbing", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    sms_on(app, &owner, "(555) 555-0100").await;
    let ann = app.add_user(&business, "Ann Lee", "ann@acme.test", None, Role::Member).await;
    app.add_recipient(&owner, ann.id).await;
    let member = app.login("ann@acme.test").await;
    (business, owner, member)
}

async fn set_phone(app: &TestApp, member: &reqwest::Client, phone: &str) -> String {
    let saved = app.post_form(member, "/account/profile", &[("name", "Ann Lee"), ("phone", phone)]).await;
    assert_eq!(saved.status(), 200);
    saved.text().await.unwrap()
}

/// Ann chooses SMS for every new lead: possible while her phone waits for its code.
async fn ann_chooses_sms(app: &TestApp, ann: &reqwest::Client) {
    let ann_id: i64 =
        sqlx::query_scalar("SELECT id FROM users WHERE email = 'ann@acme.test'").fetch_one(&app.pool).await.unwrap();
    let row = app.recipient_id(ann_id).await.unwrap();
    let prefs = [("sms_enabled", "on"), ("lead_created", "on"), ("min_lead_score", "0")];
    assert_eq!(app.post_form(ann, &format!("/settings/notifications/recipients/{row}"), &prefs).await.status(), 303);
}

async fn ann_sms(app: &TestApp, event: i64) -> (String, String) {
    let d = app.decisions(event).await.into_iter().find(|d| d.0 == "Ann Lee" && d.1 == "sms").expect("a decision");
    (d.2, d.3)
}

#[tokio::test]
async fn a_new_phone_gets_alerts_only_once_its_code_is_typed_back() {
    let app = spawn_app().await;
    let (business, _owner, ann) = acme_with_ann(&app).await;

    let page = set_phone(&app, &ann, "555.555.0109").await;
    assert!(page.contains("We texted a code to (555) 555-0109"), "{page}");
    assert!(page.contains("(555) 555-0109 is not confirmed"), "{page}");
    let code = code_sent_to(&app, ANN);
    assert!(code.chars().all(|c| c.is_ascii_digit()), "{code}");
    ann_chooses_sms(&app, &ann).await;
    let settings = app.get_html(&ann, "/settings/notifications").await;
    assert!(settings.contains("Phone not confirmed: enter the code texted to it in Account"), "{settings}");

    let before = event_id(app.post_event(&business, "m1", &lead("L-1", Some(80))).await).await;
    assert_eq!(ann_sms(&app, before).await, ("skipped".into(), "phone not confirmed".into()));
    let log = app.get_html(&ann, "/settings/notifications/log").await;
    assert!(log.contains("phone not confirmed"), "Recent alerts say why");

    let wrong = if code == "000000" { "111111" } else { "000000" };
    let tried = app.post_form(&ann, "/account/phone/confirm", &[("code", wrong)]).await;
    assert_eq!(tried.status(), 422);
    assert!(tried.text().await.unwrap().contains("That code is not right. 4 tries left."));
    let typo = app.post_form(&ann, "/account/phone/confirm", &[("code", "12 34")]).await;
    assert_eq!(typo.status(), 422);
    assert!(typo.text().await.unwrap().contains("Enter the 6 digits of the code we texted."));

    let spaced = format!("{} {}", &code[..3], &code[3..]);
    let confirmed = app.post_form(&ann, "/account/phone/confirm", &[("code", &spaced)]).await;
    assert_eq!(confirmed.status(), 303);
    assert_eq!(confirmed.headers()["location"], "/account?saved=phone");
    assert!(app.get_html(&ann, "/account?saved=phone").await.contains("(555) 555-0109 is confirmed"));

    let texts_before = app.twilio.received().iter().filter(|t| t.to == ANN).count();
    let after = event_id(app.post_event(&business, "m2", &lead("L-2", Some(80))).await).await;
    app.twilio.wait_for(app.twilio.received().len() + 2).await;
    assert_eq!(ann_sms(&app, after).await.0, "sent");
    assert_eq!(app.twilio.received().iter().filter(|t| t.to == ANN).count(), texts_before + 1);
}

#[tokio::test]
async fn five_wrong_codes_lock_the_code_until_a_new_one_is_sent() {
    let app = spawn_app().await;
    let (_business, _owner, ann) = acme_with_ann(&app).await;
    set_phone(&app, &ann, "555.555.0109").await;
    let code = code_sent_to(&app, ANN);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for left in (0..5).rev() {
        let page = app.post_form(&ann, "/account/phone/confirm", &[("code", wrong)]).await.text().await.unwrap();
        let said = match left {
            0 => "it was the last try".to_owned(),
            1 => "1 try left".to_owned(),
            n => format!("{n} tries left"),
        };
        assert!(page.contains(&said), "{said}");
    }
    let locked = app.post_form(&ann, "/account/phone/confirm", &[("code", &code)]).await;
    assert_eq!(locked.status(), 422);
    assert!(locked.text().await.unwrap().contains("entered wrong 5 times"), "even the right code");

    // Too soon for another code...
    let soon = app.post_form(&ann, "/account/phone/send", &[]).await;
    assert_eq!(soon.status(), 429);
    assert!(soon.text().await.unwrap().contains("Wait"));
    // ...but a minute later a new one goes, and works.
    sqlx::query("UPDATE phone_codes SET sent_at = sent_at - 61").execute(&app.pool).await.unwrap();
    assert_eq!(app.post_form(&ann, "/account/phone/send", &[]).await.status(), 200);
    let fresh = code_sent_to(&app, ANN);
    let confirmed = app.post_form(&ann, "/account/phone/confirm", &[("code", &fresh)]).await;
    assert_eq!(confirmed.status(), 303);
}

#[tokio::test]
async fn a_code_sent_to_an_old_number_does_not_confirm_a_new_one() {
    let app = spawn_app().await;
    let (_business, _owner, ann) = acme_with_ann(&app).await;
    set_phone(&app, &ann, "555.555.0109").await;
    let old = code_sent_to(&app, ANN);
    set_phone(&app, &ann, "555.555.0110").await;
    let new = code_sent_to(&app, "+15555550110");
    if old != new {
        let stale = app.post_form(&ann, "/account/phone/confirm", &[("code", &old)]).await;
        assert_eq!(stale.status(), 422, "the old number's code no longer works");
    }
    assert_eq!(app.post_form(&ann, "/account/phone/confirm", &[("code", &new)]).await.status(), 303);
    let confirmed: Option<i64> =
        sqlx::query_scalar("SELECT phone_confirmed_at FROM users WHERE phone = '+15555550110'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(confirmed.is_some());
}

#[tokio::test]
async fn the_business_notification_phone_is_confirmed_on_the_notifications_page() {
    let app = spawn_app().await;
    let business = app.create_business("Acme Plumbing", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    let mut fields = crate::helpers::all_defaults_on();
    fields.extend([
        ("notification_email", "owner@acme.test"),
        ("notification_phone", "(555) 555-0100"),
        ("action", "save"),
    ]);
    assert_eq!(app.post_form(&owner, "/settings/notifications/defaults", &fields).await.status(), 303);
    let code = code_sent_to(&app, "+15555550100");
    let page = app.get_html(&owner, "/settings/notifications").await;
    assert!(page.contains("(555) 555-0100 is not confirmed"), "{page}");

    let before = event_id(app.post_event(&business, "m1", &lead("L-1", Some(80))).await).await;
    let business_sms = |d: &Vec<(String, String, String, String)>| {
        d.iter().find(|d| d.0 == "business" && d.1 == "sms").map(|d| (d.2.clone(), d.3.clone())).unwrap()
    };
    assert_eq!(business_sms(&app.decisions(before).await), ("skipped".into(), "phone not confirmed".into()));

    let confirmed = app.post_form(&owner, "/settings/notifications/phone/confirm", &[("code", &code)]).await;
    assert_eq!(confirmed.status(), 303);
    let after = event_id(app.post_event(&business, "m2", &lead("L-2", Some(80))).await).await;
    app.wait_count("SELECT count(*) FROM deliveries WHERE channel = 'sms' AND status = 'sent'", 1).await;
    assert_eq!(business_sms(&app.decisions(after).await).0, "sent");

    // A member can neither send nor type codes for the business's phone.
    app.add_user(&business, "Ann Lee", "ann@acme.test", None, Role::Member).await;
    let ann = app.login("ann@acme.test").await;
    assert_eq!(app.post_form(&ann, "/settings/notifications/phone/send", &[]).await.status(), 403);
}

#[tokio::test]
async fn a_teammate_added_with_a_phone_is_texted_a_code_and_shown_unconfirmed() {
    let app = spawn_app().await;
    app.create_business("Acme Plumbing", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    let added = app
        .post_form(
            &owner,
            "/team/members",
            &[("name", "Sam Rivera"), ("email", "sam@acme.test"), ("phone", "(555) 555-0101"), ("role", "member")],
        )
        .await;
    assert_eq!(added.status(), 200);
    let page = added.text().await.unwrap();
    assert!(page.contains("We texted a code to (555) 555-0101"), "{page}");
    assert!(page.contains("(555) 555-0101 <span class=\"muted\">(not confirmed)</span>"), "{page}");
    code_sent_to(&app, "+15555550101");
}
