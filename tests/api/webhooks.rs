use kaicalls_notify::clock::unix_now;
use kaicalls_notify::domain::webhook;

use crate::helpers::{client, lead, spawn_app};

#[tokio::test]
async fn a_signed_lead_is_stored_before_the_202_and_answered_with_its_id() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;

    let response = app.post_event(&business, "msg_1", &lead("L-1", Some(82))).await;

    assert_eq!(response.status(), 202);
    let id = response.json::<serde_json::Value>().await.unwrap()["id"].as_i64().unwrap();
    let stored: (String, String) = sqlx::query_as("SELECT type, webhook_id FROM events WHERE id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, ("lead.created".into(), "msg_1".into()));
}

#[tokio::test]
async fn the_same_webhook_id_again_answers_200_with_the_same_id_and_no_new_alerts() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let first = app.post_event(&business, "msg_1", &lead("L-1", Some(82))).await;
    let first_id = first.json::<serde_json::Value>().await.unwrap()["id"].clone();
    app.smtp.wait_for(1).await;

    let again = app.post_event(&business, "msg_1", &lead("L-1", Some(82))).await;

    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<serde_json::Value>().await.unwrap()["id"], first_id);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(app.smtp.messages().len(), 1, "one email, to the owner");
}

#[tokio::test]
async fn fifty_concurrent_posts_of_one_webhook_id_make_one_event_and_one_alert_per_person_and_channel() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let body = lead("L-7", Some(90));

    let posts = (0..50).map(|_| app.post_event(&business, "msg_same", &body));
    let responses = futures_util::future::join_all(posts).await;

    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 49, "{statuses:?}");
    let mut ids = Vec::new();
    for r in responses {
        ids.push(r.json::<serde_json::Value>().await.unwrap()["id"].as_i64().unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every answer names the same event");
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&app.pool).await.unwrap();
    assert_eq!(events, 1);
    // The owner: email (the notification email and their own are the same: one) and in-app.
    app.wait_count("SELECT count(*) FROM deliveries WHERE status = 'sent'", 2).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.smtp.messages().len(), 1);
    let in_app: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications").fetch_one(&app.pool).await.unwrap();
    assert_eq!(in_app, 1);
}

async fn post_raw(
    app: &crate::helpers::TestApp,
    business_id: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> reqwest::Response {
    let mut request = client().post(app.url(&format!("/webhooks/kai/{business_id}"))).body(body.to_vec());
    for (k, v) in headers {
        request = request.header(*k, v);
    }
    request.send().await.unwrap()
}

fn signed_headers(secret: &str, id: &str, ts: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    let key = webhook::secret_key(secret).unwrap();
    vec![
        ("content-type", "application/json".into()),
        ("webhook-id", id.into()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", webhook::sign(&key, id, ts, body)),
    ]
}

async fn error_of(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let json: serde_json::Value = response.json().await.unwrap();
    (status, json["error"].as_str().unwrap_or("").to_owned(), json["field"].as_str().unwrap_or("").to_owned())
}

#[tokio::test]
async fn every_bad_input_gets_its_documented_status_and_names_the_field() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let body = lead("L-1", Some(50)).to_string().into_bytes();
    let now = unix_now();

    let unknown = post_raw(&app, "biz_nope", &signed_headers(&business.secret, "m1", now, &body), &body).await;
    assert_eq!(error_of(unknown).await, (404, "no business has this id".into(), "business_id".into()));

    let mut text = signed_headers(&business.secret, "m1", now, &body);
    text[0].1 = "text/plain".into();
    assert_eq!(error_of(post_raw(&app, &business.id, &text, &body).await).await.0, 415);

    let big = vec![b' '; 64 * 1024 + 1];
    let (status, _, field) =
        error_of(post_raw(&app, &business.id, &signed_headers(&business.secret, "m1", now, &big), &big).await).await;
    assert_eq!((status, field.as_str()), (413, "body"));

    let mut forged = signed_headers(&business.secret, "m1", now, &body);
    forged[3].1 = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
    assert_eq!(error_of(post_raw(&app, &business.id, &forged, &body).await).await.2, "webhook-signature");
    let stale = signed_headers(&business.secret, "m1", now - 301, &body);
    assert_eq!(
        error_of(post_raw(&app, &business.id, &stale, &body).await).await,
        (401, "the webhook-timestamp is more than 5 minutes from now".into(), "webhook-timestamp".into())
    );
    let mut missing = signed_headers(&business.secret, "m1", now, &body);
    missing.remove(3);
    assert_eq!(error_of(post_raw(&app, &business.id, &missing, &body).await).await.0, 401);
    let other = app.create_business("Other", "o@other.test").await;
    assert_eq!(
        error_of(post_raw(&app, &business.id, &signed_headers(&other.secret, "m1", now, &body), &body).await).await.0,
        401,
        "another business's secret"
    );

    let malformed = b"{\"type\": \"lead.created\", ";
    let (status, error, field) = error_of(
        post_raw(&app, &business.id, &signed_headers(&business.secret, "m2", now, malformed), malformed).await,
    )
    .await;
    assert_eq!((status, field.as_str()), (400, "body"));
    assert!(error.starts_with("the body is not valid JSON"));
    let out_of_range = serde_json::json!({"type": "lead.created", "data": {"lead_id": "L", "score": 140, "occurred_at": "2026-11-28T10:00:00Z"}}).to_string().into_bytes();
    assert_eq!(
        error_of(
            post_raw(&app, &business.id, &signed_headers(&business.secret, "m3", now, &out_of_range), &out_of_range)
                .await
        )
        .await,
        (400, "data.score must be a whole number from 0 to 100, or null".into(), "data.score".into())
    );

    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&app.pool).await.unwrap();
    assert_eq!(events, 0, "nothing refused was stored");
}

#[tokio::test]
async fn an_unknown_event_type_is_accepted_and_recorded_as_ignored() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;

    let response =
        app.post_event(&business, "m1", &serde_json::json!({"type": "call.summarized", "data": {"x": 1}})).await;

    assert_eq!(response.status(), 202);
    let n = app.wait_count("SELECT count(*) FROM events WHERE state = 'ignored'", 1).await;
    assert_eq!(n, 1);
    let note: String = sqlx::query_scalar("SELECT note FROM events").fetch_one(&app.pool).await.unwrap();
    assert_eq!(note, "unknown event type call.summarized: accepted and ignored");
    assert_eq!(app.decisions(1).await.len(), 0);
}
