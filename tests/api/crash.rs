//! The real binary as a separate process: killed (SIGKILL) at the worst moments, stopped
//! (SIGTERM) while busy, and measured for memory under a burst of sign-ins.
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{any_pool, csrf_in, lead};
use crate::twilio::{self, Reply, TwilioServer};

const BIN: &str = env!("CARGO_BIN_EXE_kaicalls-notify");
const OWNER_PASSWORD: &str = "a very long password";

pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).unwrap();
        let kib: f64 = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        kib / 1024.0
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn serve(dir: &Path, port: u16, sms_api: &str) -> Server {
    serve_with(dir, port, sms_api, &[])
}

/// `serve` with more variables.
pub fn serve_with(dir: &Path, port: u16, sms_api: &str, vars: &[(&str, &str)]) -> Server {
    let child = Command::new(BIN)
        .arg("serve")
        .env("KAI_BIND", format!("127.0.0.1:{port}"))
        .env("KAI_DATA_DIR", dir)
        .envs(crate::helpers::binary_env(dir))
        .env("SMS_API_BASE", sms_api)
        .env("SMS_ACCOUNT_SID", twilio::SID)
        .env("SMS_AUTH_TOKEN", twilio::TOKEN)
        .env("SMS_FROM", twilio::FROM)
        .env("KAI_DISPATCH_LEASE_SECS", "2")
        .env("RUST_LOG", "warn")
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    Server(child)
}

pub async fn wait_until_up(port: u16) {
    for _ in 0..100 {
        if reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server did not start");
}

/// Creates a business with the CLI, turns SMS on with a business phone; answers (id, secret).
pub async fn business_with_sms(dir: &Path) -> (String, String) {
    crate::helpers::database_url(dir).await;
    let mut create = Command::new(BIN)
        .args(["create-business", "--name", "Acme", "--owner-email", "owner@acme.test"])
        .env("KAI_DATA_DIR", dir)
        .envs(crate::helpers::binary_env(dir))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    create.stdin.take().unwrap().write_all(format!("{OWNER_PASSWORD}\n").as_bytes()).unwrap();
    let created: serde_json::Value = serde_json::from_slice(&create.wait_with_output().unwrap().stdout).unwrap();
    // The server is not running yet: change the file directly.
    let writable = any_pool(&database_url(dir)).await;
    sqlx::query("UPDATE notification_defaults SET sms_enabled = TRUE, notification_phone = '+15555550100', phone_confirmed_at = 1")
        .execute(&writable)
        .await
        .unwrap();
    writable.close().await;
    (created["business_id"].as_str().unwrap().to_owned(), created["webhook_secret"].as_str().unwrap().to_owned())
}

fn database_url(dir: &Path) -> String {
    crate::engine::url_of(dir)
}

pub async fn post_lead(port: u16, business: &str, secret: &str, webhook_id: &str, lead_id: &str) -> u16 {
    crate::helpers::post_signed_to(
        &format!("http://127.0.0.1:{port}"),
        business,
        secret,
        webhook_id,
        &lead(lead_id, Some(90)),
    )
    .await
    .as_u16()
}

async fn sms_status(dir: &Path) -> Vec<String> {
    let pool = any_pool(&database_url(dir)).await;
    sqlx::query_scalar("SELECT status FROM deliveries WHERE channel = 'sms'").fetch_all(&pool).await.unwrap()
}

#[tokio::test]
async fn killed_after_the_ingest_commit_and_before_any_send_each_alert_goes_out_once_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (business, secret) = business_with_sms(dir.path()).await;

    // First run: the SMS provider is unreachable, so nothing can be delivered.
    let port = free_port();
    let mut first = serve(dir.path(), port, &format!("http://127.0.0.1:{}", free_port()));
    wait_until_up(port).await;
    assert_eq!(post_lead(port, &business, &secret, "msg_crash", "L-crash").await, 202);
    first.0.kill().unwrap(); // SIGKILL
    first.0.wait().unwrap();
    assert_eq!(sms_status(dir.path()).await, vec!["pending"], "planned and stored, not delivered");

    // Second run: the provider works; the stored alert goes out once.
    let twilio = TwilioServer::start().await;
    let port = free_port();
    let _second = serve(dir.path(), port, &twilio.url());
    wait_until_up(port).await;
    let received = twilio.wait_for(1).await;
    assert_eq!(received.len(), 1, "delivered after the restart");
    assert_eq!(received[0].to, "+15555550100");
    assert!(received[0].body.contains("New lead 90"));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(twilio.received().len(), 1, "and only once");
}

#[tokio::test]
async fn killed_after_a_send_and_before_its_outcome_the_alert_goes_out_at_most_twice_and_is_never_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (business, secret) = business_with_sms(dir.path()).await;
    // The provider receives the first text, then does not answer for a long while.
    let twilio = TwilioServer::start_scripted(&[Reply::Slow(Duration::from_secs(30))]).await;

    let port = free_port();
    let mut first = serve(dir.path(), port, &twilio.url());
    wait_until_up(port).await;
    assert_eq!(post_lead(port, &business, &secret, "msg_midsend", "L-midsend").await, 202);
    assert_eq!(twilio.wait_for(1).await.len(), 1, "the text reached the provider");
    first.0.kill().unwrap(); // SIGKILL while the send waits for its answer
    first.0.wait().unwrap();
    assert_eq!(sms_status(dir.path()).await, vec!["pending"], "its outcome was never written");

    let port = free_port();
    let _second = serve(dir.path(), port, &twilio.url());
    wait_until_up(port).await;
    assert_eq!(twilio.wait_for(2).await.len(), 2, "sent again once its lease ran out");
    for _ in 0..50 {
        if sms_status(dir.path()).await == ["sent"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sms_status(dir.path()).await, vec!["sent"]);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(twilio.received().len(), 2, "at most twice");
}

/// A client of the running binary whose requests come from `address`, signed in as the owner
/// when `sign_in` is set.
async fn client_at(port: u16, address: IpAddr, sign_in: bool) -> reqwest::Client {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(address)
        .build()
        .unwrap();
    if sign_in {
        let form = client.get(format!("http://127.0.0.1:{port}/login")).send().await.unwrap().text().await.unwrap();
        let body = [("email", "owner@acme.test"), ("password", OWNER_PASSWORD), ("csrf_token", &csrf_in(&form))];
        let signed = client.post(format!("http://127.0.0.1:{port}/login")).form(&body).send().await.unwrap();
        assert_eq!(signed.status(), 303);
    }
    client
}

#[tokio::test]
async fn sigterm_stops_the_server_within_ten_seconds_while_pages_are_busy() {
    let dir = tempfile::tempdir().unwrap();
    let (business, _) = business_with_sms(dir.path()).await;
    {
        let (db, _handover) = kaicalls_notify::db::open(
            &database_url(dir.path()),
            kaicalls_notify::db::WriterSettings::new(Duration::from_secs(60)),
        )
        .await
        .unwrap();
        let pool = any_pool(&database_url(dir.path())).await;
        let owner: i64 = sqlx::query_scalar("SELECT id FROM users").fetch_one(&pool).await.unwrap();
        crate::history::add(&db, &business, owner, crate::history::History::YEAR).await.unwrap();
    }
    let port = free_port();
    let mut server = serve(dir.path(), port, "http://127.0.0.1:9");
    wait_until_up(port).await;
    let mut readers = Vec::new();
    for i in 0..8 {
        let client = client_at(port, IpAddr::from([127, 0, 3, i + 1]), true).await;
        readers.push(tokio::spawn(async move {
            for n in 0.. {
                let path = ["/leads", "/settings/notifications", "/billing", "/notifications"][n % 4];
                if client.get(format!("http://127.0.0.1:{port}{path}")).send().await.is_err() {
                    return n;
                }
            }
            unreachable!()
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let stopping = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &server.0.id().to_string()]).status().unwrap().success());
    let mut exit = None;
    while stopping.elapsed() < Duration::from_secs(15) {
        if let Some(status) = server.0.try_wait().unwrap() {
            exit = Some((status, stopping.elapsed()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (status, took) = exit.expect("the server exited");
    assert!(took < Duration::from_secs(10), "it took {took:?}");
    assert!(status.success(), "{status:?}");
    let mut pages = 0;
    for r in readers {
        pages += r.await.unwrap();
    }
    assert!(pages > 8, "the pages were being read ({pages})");
}

#[tokio::test]
async fn three_hundred_concurrent_sign_ins_keep_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    business_with_sms(dir.path()).await;
    let port = free_port();
    let server = serve(dir.path(), port, "http://127.0.0.1:9");
    wait_until_up(port).await;

    // Three hundred people at three hundred addresses, each with a wrong password for an
    // account of their own: no throttle stops them, only the bounded hashing.
    let tasks: Vec<_> = (0..300u16)
        .map(|i| {
            tokio::spawn(async move {
                let client = client_at(port, IpAddr::from([127, 1, (i / 200) as u8, (i % 200) as u8 + 1]), false).await;
                let form =
                    client.get(format!("http://127.0.0.1:{port}/login")).send().await.unwrap().text().await.unwrap();
                let email = format!("guess{i}@acme.test");
                let body = [("email", email.as_str()), ("password", "wrong password"), ("csrf_token", &csrf_in(&form))];
                let answer = client.post(format!("http://127.0.0.1:{port}/login")).form(&body).send().await.unwrap();
                (answer.status().as_u16(), answer.headers().contains_key("retry-after"))
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }

    assert!(answers.iter().all(|(status, retry)| *status == 401 || (*status == 503 && *retry)), "{answers:?}");
    let peak = server.peak_rss_mib();
    eprintln!("peak memory of the server under 300 concurrent sign-ins: {peak:.0} MiB");
    assert!(peak < 200.0, "peak memory {peak:.0} MiB");
}

/// A lead with a name of its own, so each text can be told from the others.
fn named_lead(i: usize) -> serde_json::Value {
    serde_json::json!({"type": "lead.created", "data": {"lead_id": format!("L-{i}"), "name": format!("Caller {i}"),
        "phone": "+15555550123", "score": 90, "summary": "Burst pipe", "occurred_at": "2026-11-29T10:00:00Z"}})
}

#[tokio::test]
async fn sigterm_in_a_burst_finishes_what_is_under_way_and_after_a_restart_every_alert_goes_exactly_once() {
    const LEADS: usize = 80;
    let dir = tempfile::tempdir().unwrap();
    let (business, secret) = business_with_sms(dir.path()).await;
    // The provider answers slowly: when the stop comes, texts are under way and more are queued.
    let twilio = TwilioServer::start_scripted(&vec![Reply::Slow(Duration::from_millis(1500)); LEADS]).await;
    let port = free_port();
    // Leases of a minute: what the next start sends at once, it sends because it was given back.
    let vars = [("KAI_SHUTDOWN_GRACE_SECS", "10"), ("KAI_DISPATCH_LEASE_SECS", "60")];
    let mut first = serve_with(dir.path(), port, &twilio.url(), &vars);
    wait_until_up(port).await;
    let address = format!("http://127.0.0.1:{port}");
    let posts: Vec<_> = (0..LEADS)
        .map(|i| {
            let (address, business, secret) = (address.clone(), business.clone(), secret.clone());
            tokio::spawn(async move {
                crate::helpers::post_signed_to(&address, &business, &secret, &format!("m{i}"), &named_lead(i)).await
            })
        })
        .collect();
    for p in posts {
        assert_eq!(p.await.unwrap().as_u16(), 202);
    }
    assert!(twilio.wait_for(5).await.len() >= 5, "texts are under way");

    let stopping = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &first.0.id().to_string()]).status().unwrap().success());
    // A webhook while it stops is refused, for Kai to send again.
    let late = crate::helpers::post_signed_to(&address, &business, &secret, "late", &named_lead(999)).await;
    assert_eq!(late.as_u16(), 503, "refused while stopping");
    let mut exit = None;
    while stopping.elapsed() < Duration::from_secs(25) {
        if let Some(status) = first.0.try_wait().unwrap() {
            exit = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = exit.expect("the server exited within its grace");
    assert!(status.success(), "{status:?}");
    let before_restart = twilio.received().len();
    assert!(before_restart < LEADS, "some texts were left for the next start ({before_restart})");
    let statuses = sms_status(dir.path()).await;
    assert_eq!(statuses.iter().filter(|s| *s == "sent").count(), before_restart, "each text sent was recorded");

    // The next start sends the rest at once (their leases were given back), each once.
    twilio.clear_script();
    let port = free_port();
    let _second = serve(dir.path(), port, &twilio.url());
    wait_until_up(port).await;
    let received = twilio.wait_for(LEADS).await;
    assert_eq!(received.len(), LEADS, "every alert went");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let received = twilio.received();
    assert_eq!(received.len(), LEADS, "and none twice, even after the leases' time");
    for i in 0..LEADS {
        let name = format!("Caller {i} ");
        assert_eq!(received.iter().filter(|t| t.body.contains(&name)).count(), 1, "{name}");
    }
}

#[tokio::test]
async fn json_logs_name_the_request_and_the_delivery_in_each_line() {
    let dir = tempfile::tempdir().unwrap();
    let (business, secret) = business_with_sms(dir.path()).await;
    let twilio = TwilioServer::start().await;
    let log_path = dir.path().join("server.log");
    let port = free_port();
    let child = Command::new(BIN)
        .arg("serve")
        .env("KAI_BIND", format!("127.0.0.1:{port}"))
        .env("KAI_DATA_DIR", dir.path())
        .envs(crate::helpers::binary_env(dir.path()))
        .env("SMS_API_BASE", twilio.url())
        .env("SMS_ACCOUNT_SID", twilio::SID)
        .env("SMS_AUTH_TOKEN", twilio::TOKEN)
        .env("SMS_FROM", twilio::FROM)
        .env("KAI_LOG_FORMAT", "json")
        .env("RUST_LOG", "info,kaicalls_notify::timing=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let server = Server(child);
    wait_until_up(port).await;

    // A wrong password: its request id is in the response and in the log line about it.
    let client = client_at(port, IpAddr::from([127, 0, 0, 1]), false).await;
    let form = client.get(format!("http://127.0.0.1:{port}/login")).send().await.unwrap();
    let first_id = form.headers()["x-request-id"].to_str().unwrap().to_owned();
    let form = form.text().await.unwrap();
    let body = [("email", "owner@acme.test"), ("password", "not it"), ("csrf_token", &csrf_in(&form))];
    let refused = client.post(format!("http://127.0.0.1:{port}/login")).form(&body).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let id = refused.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    assert_ne!(id, first_id, "each request its own");
    // A lead: its text's log lines name the delivery.
    assert_eq!(post_lead(port, &business, &secret, "m1", "L-1").await, 202);
    twilio.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(server);

    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<serde_json::Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    let span_field = |line: &serde_json::Value, span: &str, field: &str| {
        line["spans"].as_array().and_then(|spans| {
            spans
                .iter()
                .find(|s| s["name"] == span)
                .and_then(|s| s[field].as_str().map(str::to_owned).or(s[field].as_i64().map(|n| n.to_string())))
        })
    };
    let failed = lines.iter().find(|l| l["message"] == "failed sign-in").unwrap_or_else(|| panic!("{log}"));
    assert_eq!(span_field(failed, "request", "request_id").as_deref(), Some(id.as_str()), "{failed}");
    let delivered =
        lines.iter().find(|l| l["message"] == "delivered" && l["channel"] == "sms").unwrap_or_else(|| panic!("{log}"));
    let delivery: i64 = span_field(delivered, "delivery", "delivery_id").unwrap().parse().unwrap();
    let pool = any_pool(&database_url(dir.path())).await;
    let sent: i64 =
        sqlx::query_scalar("SELECT id FROM deliveries WHERE channel = 'sms'").fetch_one(&pool).await.unwrap();
    assert_eq!(delivery, sent, "{delivered}");
}
