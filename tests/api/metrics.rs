//! `/metrics`: read as Prometheus reads it (a text-format parser) after a known sequence of
//! events, and refused to a scraper off this machine without the token.
use std::collections::HashMap;
use std::sync::Arc;

use crate::alerts::{event_id, sms_on, teammate};
use crate::helpers::{TestApp, client, lead, spawn_app, spawn_with};
use crate::smtp::SmtpServer;
use crate::twilio::TwilioServer;

/// Every sample of a scrape: (name, sorted labels) → value.
type Samples = HashMap<(String, Vec<(String, String)>), f64>;

fn scrape(text: &str) -> Samples {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let parsed = prometheus_parse::Scrape::parse(lines).expect("a Prometheus text scrape");
    parsed
        .samples
        .into_iter()
        .filter_map(|s| {
            let value = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => return None,
            };
            let mut labels: Vec<(String, String)> = s.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            labels.sort();
            Some(((s.metric, labels), value))
        })
        .collect()
}

fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut labels: Vec<(String, String)> = labels.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
    labels.sort();
    samples.get(&(name.to_owned(), labels.clone())).copied().unwrap_or_else(|| panic!("no {name} {labels:?}"))
}

async fn count(app: &TestApp, sql: &'static str) -> f64 {
    sqlx::query_scalar::<_, i64>(sql).fetch_one(&app.pool).await.unwrap() as f64
}

#[tokio::test]
async fn metrics_count_what_happened() {
    let app = spawn_app().await;
    let business = app.create_business("Acme Plumbing", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    sms_on(&app, &owner, "(555) 555-0100").await;
    teammate(&app, &business, &owner, "50").await;

    // Two leads, one sent again under the same id, one forged, one wrong password.
    event_id(app.post_event(&business, "m1", &lead("L-1", Some(80))).await).await;
    event_id(app.post_event(&business, "m2", &lead("L-2", Some(30))).await).await;
    assert_eq!(app.post_event(&business, "m2", &lead("L-2", Some(30))).await.status(), 200);
    let forged = app.post_signed(&business.id, "whsec_Zm9yZ2VkLWtleS1mb3JnZWQta2V5", "m3", b"{}").await;
    assert_eq!(forged.status(), 401);
    assert_eq!(app.login_with(&client(), "owner@acme.test", "not the password").await.status(), 401);
    app.wait_count("SELECT count(*) FROM deliveries WHERE status = 'pending'", 0).await;
    app.wait_count("SELECT count(*) FROM deliveries WHERE channel = 'sms' AND status = 'sent'", 3).await;

    let response = app.get(&client(), "/metrics").await;
    assert_eq!(response.status(), 200);
    let kind = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(kind, "text/plain; version=0.0.4; charset=utf-8", "the classic format unless OpenMetrics is asked for");
    let text = response.text().await.unwrap();
    let samples = scrape(&text);
    let typed = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let webhook = typed.samples.iter().find(|s| s.metric == "kai_webhook_requests_total").unwrap();
    assert!(matches!(webhook.value, prometheus_parse::Value::Counter(_)), "typed as a counter: {:?}", webhook.value);
    let open = client()
        .get(app.url("/metrics"))
        .header("Accept", "application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5")
        .send()
        .await
        .unwrap();
    assert!(open.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    assert!(open.text().await.unwrap().ends_with("# EOF\n"));

    assert_eq!(value(&samples, "kai_webhook_requests_total", &[("status", "202")]), 2.0);
    assert_eq!(value(&samples, "kai_webhook_requests_total", &[("status", "200")]), 1.0);
    assert_eq!(value(&samples, "kai_webhook_requests_total", &[("status", "401")]), 1.0);
    assert_eq!(value(&samples, "kai_events_total", &[("type", "lead.created")]), 2.0);
    for channel in ["email", "sms", "in_app"] {
        let sent: f64 =
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM deliveries WHERE status = 'sent' AND channel = $1")
                .bind(channel)
                .fetch_one(&app.pool)
                .await
                .unwrap() as f64;
        assert!(sent > 0.0, "{channel}");
        assert_eq!(value(&samples, "kai_deliveries_total", &[("channel", channel), ("outcome", "sent")]), sent);
        assert_eq!(value(&samples, "kai_lead_to_send_seconds_count", &[("channel", channel)]), sent);
        assert_eq!(value(&samples, "kai_provider_call_seconds_count", &[("channel", channel)]), sent);
    }
    assert_eq!(value(&samples, "kai_sign_in_failures_total", &[]), 1.0);
    assert_eq!(value(&samples, "kai_sign_in_throttled_total", &[]), 0.0);
    let pending = count(&app, "SELECT count(*) FROM deliveries WHERE status = 'pending'").await;
    assert_eq!(value(&samples, "kai_queue_depth", &[]), pending);
    assert_eq!(value(&samples, "kai_oldest_pending_age_seconds", &[]), 0.0, "nothing waits");

    // A text the provider refuses for now is a retry.
    app.twilio.script_for("+15555550101", &[crate::twilio::Reply::Error(500, 20500)]);
    event_id(app.post_event(&business, "m4", &lead("L-4", Some(90))).await).await;
    app.wait_count("SELECT count(*) FROM deliveries WHERE channel = 'sms' AND status = 'sent'", 5).await;
    let samples = scrape(&app.get(&client(), "/metrics").await.text().await.unwrap());
    assert_eq!(value(&samples, "kai_delivery_retries_total", &[("channel", "sms")]), 1.0);
}

/// This machine's address on its network (not loopback): a scraper from elsewhere comes from one.
fn non_loopback_address() -> std::net::IpAddr {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    // Connecting a UDP socket sends nothing; it only picks the outgoing interface.
    socket.connect("203.0.113.1:9").expect("this test needs a network interface besides loopback");
    let ip = socket.local_addr().unwrap().ip();
    assert!(!ip.is_loopback() && !ip.is_unspecified(), "{ip}");
    ip
}

async fn open_to_the_network(token: Option<&'static str>) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    spawn_with(dir, smtp, &url, TwilioServer::start().await, move |c| {
        c.bind = "0.0.0.0:0".parse().unwrap();
        c.ops.metrics_token = token.map(str::to_owned);
    })
    .await
}

#[tokio::test]
async fn metrics_are_refused_off_this_machine_without_the_token() {
    const TOKEN: &str = "scrape-token-0123456789abcdef";
    let app = open_to_the_network(Some(TOKEN)).await;
    let port = app.address.rsplit(':').next().unwrap();
    let far = format!("http://{}:{port}/metrics", non_loopback_address());
    let http = client();
    let refused = http.get(&far).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["www-authenticate"], "Bearer");
    assert!(!refused.text().await.unwrap().contains("kai_"), "no numbers in the refusal");
    let wrong = http.get(&far).bearer_auth("scrape-token-wrong").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let right = http.get(&far).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(right.status(), 200);
    assert!(right.text().await.unwrap().contains("kai_queue_depth"));
    assert_eq!(app.get(&http, "/metrics").await.status(), 200, "loopback needs no token");

    // Without a token set, only this machine may read them.
    let closed = open_to_the_network(None).await;
    let port = closed.address.rsplit(':').next().unwrap();
    let far = format!("http://{}:{port}/metrics", non_loopback_address());
    assert_eq!(http.get(&far).send().await.unwrap().status(), 403);
}
