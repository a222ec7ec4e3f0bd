//! Texts back to our number (Twilio's incoming-message webhook): STOP stops texts to the number
//! and START brings them back, HELP is answered, "1" claims the lead of the last alert; anything
//! not signed by our Twilio account changes nothing.
use kaicalls_notify::domain::sms_status;

use crate::alerts::{event_id, sms_on, teammate};
use crate::helpers::{TestApp, TestBusiness, client, lead, spawn_app};
use crate::twilio;

/// The incoming-message URL the product's README tells the owner to give Twilio.
const INBOUND: &str = "http://kaicalls.test/webhooks/twilio/inbound";
const SAM: &str = "+15555550101";

/// Posts a text from `from`, signed as Twilio signs it (or with `signature` as given).
pub async fn text_back(app: &TestApp, from: &str, body: &str, signature: Option<&str>) -> reqwest::Response {
    let params: Vec<(String, String)> = [
        ("MessageSid", format!("SMin{:028}", body.len())),
        ("AccountSid", twilio::SID.to_owned()),
        ("From", from.to_owned()),
        ("To", twilio::FROM.to_owned()),
        ("Body", body.to_owned()),
        ("NumMedia", "0".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let signed = sms_status::signature(twilio::TOKEN, INBOUND, &params);
    client()
        .post(app.url("/webhooks/twilio/inbound"))
        .form(&params)
        .header("X-Twilio-Signature", signature.unwrap_or(&signed))
        .send()
        .await
        .unwrap()
}

/// The reply Twilio would text back, if any.
async fn reply(response: reqwest::Response) -> Option<String> {
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/xml"));
    let xml = response.text().await.unwrap();
    assert!(xml.starts_with("<?xml") && xml.contains("<Response>") && xml.trim_end().ends_with("</Response>"), "{xml}");
    let start = xml.find("<Message>")? + "<Message>".len();
    let end = xml.find("</Message>")?;
    Some(xml[start..end].replace("&amp;", "&").replace("&apos;", "'"))
}

/// Acme texts its own phone and Sam (SMS and email, every lead).
async fn business_with_sam(app: &TestApp) -> (TestBusiness, reqwest::Client, i64) {
    let business = app.create_business("Acme Plumbing", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    sms_on(app, &owner, "(555) 555-0100").await;
    let sam = teammate(app, &business, &owner, "0").await;
    (business, owner, sam)
}

fn texts_to(app: &TestApp, number: &str) -> usize {
    app.twilio.received().iter().filter(|t| t.to == number).count()
}

#[tokio::test]
async fn stop_stops_texts_to_the_number_and_start_brings_them_back() {
    let app = spawn_app().await;
    let (business, _owner, _) = business_with_sam(&app).await;

    assert_eq!(reply(text_back(&app, SAM, "  stop ", None).await).await, None, "Twilio confirms STOP itself");
    let first = event_id(app.post_event(&business, "m1", &lead("L-1", Some(80))).await).await;
    app.wait_count("SELECT count(*) FROM deliveries WHERE status = 'pending'", 0).await;
    app.twilio.wait_for(1).await;
    let sam_sms: Vec<_> = app.decisions(first).await.into_iter().filter(|d| d.0 == "Sam" && d.1 == "sms").collect();
    assert_eq!(sam_sms.len(), 1);
    assert_eq!((sam_sms[0].2.as_str(), sam_sms[0].3.as_str()), ("skipped", "opted out by STOP"));
    assert_eq!(texts_to(&app, "+15555550100"), 1, "the business phone still gets its text");
    assert_eq!(texts_to(&app, SAM), 0, "no request for Sam reaches the SMS provider");

    assert_eq!(reply(text_back(&app, SAM, "START", None).await).await, None);
    event_id(app.post_event(&business, "m2", &lead("L-2", Some(80))).await).await;
    let texts = app.twilio.wait_for(3).await;
    assert_eq!(texts_to(&app, SAM), 1, "texts to Sam resume: {texts:?}");

    let kept: Vec<(String, String)> =
        sqlx::query_as("SELECT body, outcome FROM sms_inbound ORDER BY id").fetch_all(&app.pool).await.unwrap();
    assert_eq!(kept.len(), 2);
    assert!(kept[0].1.starts_with("Opted out (STOP)"), "{kept:?}");
    assert!(kept[1].1.starts_with("Opted back in"), "{kept:?}");
}

#[tokio::test]
async fn every_opt_out_word_counts_and_unstop_or_yes_opt_back_in() {
    let app = spawn_app().await;
    business_with_sam(&app).await;
    let opted_out = |app: &TestApp| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM sms_opt_outs WHERE phone = '+15555550101'")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    for (stop, start) in [("STOPALL", "unstop"), ("Unsubscribe", "yes"), ("cancel", "START"), ("end", "start")] {
        reply(text_back(&app, SAM, stop, None).await).await;
        assert_eq!(opted_out(&app).await, 1, "{stop}");
        reply(text_back(&app, SAM, start, None).await).await;
        assert_eq!(opted_out(&app).await, 0, "{start}");
    }
    for stop in ["QUIT", "revoke", "OptOut"] {
        reply(text_back(&app, SAM, stop, None).await).await;
        assert_eq!(opted_out(&app).await, 1, "{stop}");
        reply(text_back(&app, SAM, "start", None).await).await;
    }
    reply(text_back(&app, SAM, "please stop texting me at night", None).await).await;
    assert_eq!(opted_out(&app).await, 0, "only the word alone opts out");
}

#[tokio::test]
async fn help_gets_a_short_reply_naming_the_business() {
    let app = spawn_app().await;
    let (business, _owner, _) = business_with_sam(&app).await;
    event_id(app.post_event(&business, "m1", &lead("L-1", Some(80))).await).await;
    app.wait_count("SELECT count(*) FROM deliveries WHERE channel = 'sms' AND status = 'sent'", 2).await;
    let help = reply(text_back(&app, SAM, "help", None).await).await.expect("a reply");
    assert!(help.starts_with("Acme Plumbing lead alerts from KaiCalls."), "{help}");
    assert!(help.contains("STOP to stop texts"), "{help}");
    // From a number we never texted: the same answer without a business's name.
    let stranger = reply(text_back(&app, "+15555550177", "HELP", None).await).await.expect("a reply");
    assert!(stranger.starts_with("KaiCalls lead alerts."), "{stranger}");
}

#[tokio::test]
async fn one_claims_the_lead_of_the_last_alert_and_the_next_one_hears_who_has_it() {
    let app = spawn_app().await;
    let (business, owner, sam) = business_with_sam(&app).await;
    // Ann gets texts too.
    let ann = app
        .add_user(&business, "Ann", "ann@acme.test", Some("(555) 555-0102"), kaicalls_notify::domain::Role::Member)
        .await;
    let ann_row = app.add_recipient(&owner, ann.id).await;
    let prefs = [("sms_enabled", "on"), ("lead_created", "on"), ("min_lead_score", "0")];
    app.post_form(&owner, &format!("/settings/notifications/recipients/{ann_row}"), &prefs).await;

    event_id(app.post_event(&business, "m1", &lead("L-1", Some(80))).await).await;
    app.twilio.wait_for(3).await;
    app.wait_count("SELECT count(*) FROM deliveries WHERE channel = 'sms' AND status = 'sent'", 3).await;

    let yours = reply(text_back(&app, SAM, " 1 ", None).await).await.expect("a reply");
    assert!(yours.starts_with("Jane Doe is yours"), "{yours}");
    let (claimed_by,): (Option<i64>,) =
        sqlx::query_as("SELECT claimed_by FROM leads WHERE lead_id = 'L-1'").fetch_one(&app.pool).await.unwrap();
    assert_eq!(claimed_by, Some(sam));

    let late = reply(text_back(&app, "+15555550102", "1", None).await).await.expect("a reply");
    assert_eq!(late, "Sam already claimed Jane Doe.");
    let (still,): (Option<i64>,) =
        sqlx::query_as("SELECT claimed_by FROM leads WHERE lead_id = 'L-1'").fetch_one(&app.pool).await.unwrap();
    assert_eq!(still, Some(sam), "the first claim stands");

    // The business's own phone is nobody's in particular: it claims nothing.
    let business_phone = reply(text_back(&app, "+15555550100", "1", None).await).await.expect("a reply");
    assert!(business_phone.contains("not a lead you can claim"), "{business_phone}");
}

#[tokio::test]
async fn a_text_back_not_signed_by_our_twilio_account_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    business_with_sam(&app).await;
    let forged = text_back(&app, SAM, "STOP", Some("c2lnbmVkIGJ5IHNvbWVvbmUgZWxzZQ==")).await;
    assert_eq!(forged.status(), 403);
    let unsigned = client()
        .post(app.url("/webhooks/twilio/inbound"))
        .form(&[("From", SAM), ("Body", "STOP")])
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 403);
    let counts: (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM sms_opt_outs), (SELECT count(*) FROM sms_inbound)")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(counts, (0, 0));
}

#[tokio::test]
async fn any_other_text_is_kept_without_a_reply() {
    let app = spawn_app().await;
    business_with_sam(&app).await;
    assert_eq!(reply(text_back(&app, "+15555550177", "Who is this?", None).await).await, None);
    let kept: (String, String, String) =
        sqlx::query_as("SELECT from_phone, body, outcome FROM sms_inbound").fetch_one(&app.pool).await.unwrap();
    assert_eq!(kept, ("+15555550177".into(), "Who is this?".into(), "Kept for the SMS page.".into()));
}
