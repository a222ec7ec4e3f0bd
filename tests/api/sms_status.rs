//! Twilio's status callbacks: each text's state moves forward only, whatever order and however
//! often the callbacks come; a text that did not arrive says why in words; a callback that is not
//! signed by our Twilio account changes nothing.
use kaicalls_notify::domain::sms_status;

use crate::alerts::sms_on;
use crate::helpers::{TestApp, client, lead, spawn_app};
use crate::twilio;

/// The callback URL the product gives Twilio, under the tests' `KAI_PUBLIC_URL`.
const CALLBACK: &str = "http://kaicalls.test/webhooks/twilio/status";

/// Posts a callback signed as Twilio signs it (or with `signature` as given).
pub async fn callback(app: &TestApp, params: &[(&str, &str)], signature: Option<&str>) -> reqwest::Response {
    let owned: Vec<(String, String)> = params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let signed = sms_status::signature(twilio::TOKEN, CALLBACK, &owned);
    let mut request = client().post(app.url("/webhooks/twilio/status")).form(&owned);
    if let Some(signature) = signature.or(Some(signed.as_str())).filter(|s| *s != "none") {
        request = request.header("X-Twilio-Signature", signature);
    }
    request.send().await.unwrap()
}

async fn state(app: &TestApp, sid: &str) -> (Option<String>, Option<i64>) {
    sqlx::query_as("SELECT carrier_status, carrier_error FROM deliveries WHERE provider_id = $1")
        .bind(sid)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// A business texting its leads to its own phone; one lead; answers the text's message id.
async fn one_text(app: &TestApp) -> (reqwest::Client, String) {
    let business = app.create_business("Acme Plumbing", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    sms_on(app, &owner, "(555) 555-0100").await;
    assert_eq!(app.post_event(&business, "m1", &lead("L-1", Some(80))).await.status(), 202);
    let texts = app.twilio.wait_for(1).await;
    assert_eq!(texts[0].status_callback, CALLBACK, "each text asks for its states");
    assert_eq!(texts[0].validity, "900", "a lead alert that waits 15 minutes in a queue is dropped");
    app.wait_count("SELECT count(*) FROM deliveries WHERE channel = 'sms' AND status = 'sent'", 1).await;
    let sid: String = sqlx::query_scalar("SELECT provider_id FROM deliveries WHERE channel = 'sms'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    (owner, sid)
}

#[tokio::test]
async fn a_texts_state_moves_forward_only_whatever_the_order_and_repeats_of_the_callbacks() {
    let app = spawn_app().await;
    let (owner, sid) = one_text(&app).await;
    for status in ["queued", "sent", "delivered"] {
        let answer =
            callback(&app, &[("MessageSid", &sid), ("MessageStatus", status), ("AccountSid", twilio::SID)], None).await;
        assert_eq!(answer.status(), 200, "{status}");
    }
    assert_eq!(state(&app, &sid).await, (Some("delivered".into()), None));
    // Late and repeated callbacks: the highest state stays.
    for status in ["sent", "queued", "delivered", "sending"] {
        assert_eq!(callback(&app, &[("MessageSid", &sid), ("MessageStatus", status)], None).await.status(), 200);
    }
    assert_eq!(state(&app, &sid).await, (Some("delivered".into()), None));
    let log = app.get_html(&owner, "/settings/notifications/log").await;
    assert!(log.contains("delivered to the phone"), "{log}");
}

#[tokio::test]
async fn callbacks_in_reverse_order_end_at_the_final_state_and_an_undelivered_text_says_why() {
    let app = spawn_app().await;
    let (owner, sid) = one_text(&app).await;
    let undelivered = [("MessageSid", sid.as_str()), ("MessageStatus", "undelivered"), ("ErrorCode", "30003")];
    assert_eq!(callback(&app, &undelivered, None).await.status(), 200);
    for status in ["sent", "queued", "delivered"] {
        assert_eq!(callback(&app, &[("MessageSid", &sid), ("MessageStatus", status)], None).await.status(), 200);
    }
    assert_eq!(state(&app, &sid).await, (Some("undelivered".into()), Some(30003)), "the first final state stays");
    let log = app.get_html(&owner, "/settings/notifications/log").await;
    assert!(log.contains("Not delivered"), "{log}");
    assert!(log.contains("the phone is unreachable (switched off or out of coverage) (error 30003)"), "{log}");
    // The event's one line counts it as failed, not as sent.
    assert!(log.contains("Sent to the business and 1 person in 2 messages · failed for the business"), "{log}");
}

#[tokio::test]
async fn a_callback_not_signed_by_our_twilio_account_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let (_, sid) = one_text(&app).await;
    let delivered = [("MessageSid", sid.as_str()), ("MessageStatus", "delivered")];
    for signature in ["none", "", "RSOYDt4T1cUTdK1PDd93/VVr8B8="] {
        let refused = callback(&app, &delivered, Some(signature)).await;
        assert_eq!(refused.status(), 403, "signature {signature:?}");
        assert!(refused.text().await.unwrap().contains("X-Twilio-Signature"));
    }
    // Signed for another URL (a copy of a real callback sent elsewhere).
    let owned: Vec<(String, String)> = delivered.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let elsewhere = sms_status::signature(twilio::TOKEN, "https://elsewhere.test/status", &owned);
    assert_eq!(callback(&app, &delivered, Some(&elsewhere)).await.status(), 403);
    assert_eq!(state(&app, &sid).await, (None, None));

    // Signed, but about a message that is not ours: taken, nothing changes (Twilio would retry).
    let unknown = callback(&app, &[("MessageSid", "SM0123456789abcdef"), ("MessageStatus", "delivered")], None).await;
    assert_eq!(unknown.status(), 200);
    assert_eq!(unknown.text().await.unwrap(), "Nothing to change.");
    let no_sid = callback(&app, &[("MessageStatus", "delivered")], None).await;
    assert_eq!(no_sid.status(), 400);
    assert_eq!(state(&app, &sid).await, (None, None));
}

#[tokio::test]
async fn only_lead_alerts_expire_in_the_queue() {
    let app = spawn_app().await;
    let business = app.create_business("Acme Plumbing", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    sms_on(&app, &owner, "(555) 555-0100").await;
    let usage = crate::helpers::usage(460, 500, "2026-11-01");
    assert_eq!(app.post_event(&business, "u1", &usage).await.status(), 202);
    let texts = app.twilio.wait_for(1).await;
    assert!(texts[0].body.contains("90% of included minutes"), "{}", texts[0].body);
    assert_eq!(texts[0].validity, "", "a usage alert keeps the provider's default");
}
