//! The process is killed (SIGKILL) after accepting an event and before delivering it; the alert
//! is delivered after a restart, once.
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::twilio::{self, TwilioServer};

const BIN: &str = env!("CARGO_BIN_EXE_kaicalls-notify");

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn serve(dir: &std::path::Path, port: u16, sms_api: &str) -> Server {
    let child = Command::new(BIN)
        .arg("serve")
        .env("KAI_BIND", format!("127.0.0.1:{port}"))
        .env("KAI_DATA_DIR", dir)
        .env("SMS_API_BASE", sms_api)
        .env("SMS_ACCOUNT_SID", twilio::SID)
        .env("SMS_AUTH_TOKEN", twilio::TOKEN)
        .env("SMS_FROM", twilio::FROM)
        .env("KAI_DISPATCH_LEASE_SECS", "2")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    Server(child)
}

async fn wait_until_up(port: u16) {
    for _ in 0..100 {
        if reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server did not start");
}

#[tokio::test]
async fn an_event_accepted_before_a_crash_is_delivered_after_restart_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut create = Command::new(BIN)
        .args(["create-business", "--name", "Acme", "--owner-email", "owner@acme.test"])
        .env("KAI_DATA_DIR", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    create.stdin.take().unwrap().write_all(b"a very long password\n").unwrap();
    let created: serde_json::Value = serde_json::from_slice(&create.wait_with_output().unwrap().stdout).unwrap();
    let (business, secret) = (created["business_id"].as_str().unwrap(), created["webhook_secret"].as_str().unwrap());
    // Turn SMS on with a business phone, straight in the database the server will open.
    let url = format!("sqlite://{}", dir.path().join("kaicalls.db").display());
    {
        // The server is not running yet: change the file directly.
        let writable = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query("UPDATE notification_defaults SET sms_enabled = 1, notification_phone = '+15555550100'")
            .execute(&writable)
            .await
            .unwrap();
        writable.close().await;
    }
    let pool = crate::helpers::read_only_pool(&url).await;

    // First run: the SMS provider is unreachable, so nothing can be delivered yet.
    let port = free_port();
    let dead_api = format!("http://127.0.0.1:{}", free_port());
    let mut first = serve(dir.path(), port, &dead_api);
    wait_until_up(port).await;
    let url = format!("http://127.0.0.1:{port}/webhooks/kai/{business}");
    let body = crate::helpers::lead("L-crash", Some(90)).to_string();
    let key = kaicalls_notify::domain::webhook::secret_key(secret).unwrap();
    let ts = kaicalls_notify::clock::unix_now();
    let response = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .header("webhook-id", "msg_crash")
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", kaicalls_notify::domain::webhook::sign(&key, "msg_crash", ts, body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    first.0.kill().unwrap(); // SIGKILL
    first.0.wait().unwrap();
    let sent: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE channel = 'sms' AND status = 'sent'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(sent, 0, "nothing was delivered before the crash");

    // Second run: the provider works; the stored event's SMS goes out once.
    let twilio = TwilioServer::start().await;
    let port = free_port();
    let _second = serve(dir.path(), port, &twilio.url());
    wait_until_up(port).await;
    let received = twilio.wait_for(1).await;
    assert_eq!(received.len(), 1, "delivered after the restart");
    assert_eq!(received[0].to, "+15555550100");
    assert!(received[0].body.contains("New lead 90"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(twilio.received().len(), 1, "and only once");
}
