//! The SMS page: each text with its alert, status in words and segments; the texts that did not
//! arrive; the numbers that cannot take texts; replies; members see only their own; paged.
use crate::alerts::{event_id, sms_on, teammate};
use crate::helpers::{TestApp, TestBusiness, lead, spawn_app};
use crate::sms_status::callback;

async fn acme(app: &TestApp) -> (TestBusiness, reqwest::Client) {
    let business = app.create_business("Acme Plumbing", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    sms_on(app, &owner, "(555) 555-0100").await;
    teammate(app, &business, &owner, "0").await;
    (business, owner)
}

/// The message ids of the texts sent so far, to the business phone and to Sam.
async fn sids(app: &TestApp, n: i64) -> (String, String) {
    app.wait_count("SELECT count(*) FROM deliveries WHERE channel = 'sms' AND status = 'sent'", n).await;
    let sid = |person: bool| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT provider_id FROM deliveries WHERE channel = 'sms' AND (user_id IS NOT NULL) = $1
                 ORDER BY id DESC LIMIT 1",
            )
            .bind(person)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    (sid(false).await, sid(true).await)
}

#[tokio::test]
async fn each_text_shows_its_alert_status_and_segments_and_members_see_only_theirs() {
    let app = spawn_app().await;
    let (business, owner) = acme(&app).await;
    event_id(app.post_event(&business, "m1", &lead("L-1", Some(80))).await).await;
    let (to_business, to_sam) = sids(&app, 2).await;
    let delivered = [("MessageSid", to_business.as_str()), ("MessageStatus", "delivered")];
    assert_eq!(callback(&app, &delivered, None).await.status(), 200);
    let lost = [("MessageSid", to_sam.as_str()), ("MessageStatus", "undelivered"), ("ErrorCode", "30003")];
    assert_eq!(callback(&app, &lost, None).await.status(), 200);

    let page = app.get_html(&owner, "/sms").await;
    assert!(page.contains("Texts come from (555) 555-0199."), "{page}");
    assert!(page.contains("http://kaicalls.test/webhooks/twilio/inbound"), "owners see where Twilio posts replies");
    assert_eq!(page.matches("New lead: Jane Doe (score 80)").count(), 2, "{page}");
    assert!(page.contains("Business phone, (555) 555-0100"));
    assert!(page.contains("Sam, (555) 555-0101"));
    assert!(page.contains("Delivered to the phone"));
    assert!(page.contains("Not delivered: the phone is unreachable"), "{page}");
    assert!(page.contains("<td>1</td>"), "a lead alert is one segment");

    let failed = app.get_html(&owner, "/sms?show=failed").await;
    assert!(failed.contains("Sam, (555) 555-0101") && !failed.contains("Business phone, (555) 555-0100"), "{failed}");

    let sam = app.login("sam@acme.test").await;
    let own = app.get_html(&sam, "/sms").await;
    assert!(own.contains("Sam, (555) 555-0101") && !own.contains("Business phone"), "{own}");
    assert!(!own.contains("webhooks/twilio/inbound"), "members are not shown the setup");

    // Another business sees none of it.
    app.create_business("Other Co", "other@other.test").await;
    let other = app.login("other@other.test").await;
    assert!(app.get_html(&other, "/sms").await.contains("No texts yet."));
}

#[tokio::test]
async fn numbers_that_opted_out_or_wait_for_a_code_are_listed_with_the_replies() {
    let app = spawn_app().await;
    let (_business, owner) = acme(&app).await;
    crate::sms_replies::text_back(&app, "+15555550101", "Stop", None).await;
    crate::sms_replies::text_back(&app, "+15555550101", "running late, call you at 3", None).await;
    // A new notification phone waits for its code.
    let mut fields = crate::helpers::all_defaults_on();
    fields.extend([
        ("notification_email", "owner@acme.test"),
        ("notification_phone", "(555) 555-0105"),
        ("action", "save"),
    ]);
    app.post_form(&owner, "/settings/notifications/defaults", &fields).await;

    let page = app.get_html(&owner, "/sms").await;
    assert!(page.contains("<strong>Sam</strong>, (555) 555-0101: Replied STOP on"), "{page}");
    assert!(page.contains("<strong>Business notification phone</strong>, (555) 555-0105: Not confirmed"), "{page}");
    assert!(page.contains("running late, call you at 3"), "{page}");
    assert!(page.contains("Opted out (STOP)"), "{page}");
}

#[tokio::test]
async fn texts_come_fifty_to_a_page_newest_first() {
    let app = spawn_app().await;
    let (business, owner) = acme(&app).await;
    for i in 0..30 {
        app.post_event(&business, &format!("m{i}"), &lead(&format!("L-{i}"), Some(80))).await;
    }
    app.wait_count("SELECT count(*) FROM deliveries WHERE channel = 'sms' AND status = 'sent'", 60).await;
    let first = app.get_html(&owner, "/sms").await;
    assert_eq!(first.matches("class=\"text-status").count(), 50);
    let start = first.find("/sms?before=").expect("a link to older texts");
    let link: String = first[start..].chars().take_while(|c| *c != '"').collect();
    let second = app.get_html(&owner, &link).await;
    assert_eq!(second.matches("class=\"text-status").count(), 10);
    assert!(!second.contains("rel=\"next\""), "the last page");
    assert_eq!(app.get(&owner, "/sms?before=soon").await.status(), 400);
    assert_eq!(app.get(&owner, "/sms?show=everything").await.status(), 400);
}
