//! Load generator: runs the release binary, posts signed events on loopback, and reports in one
//! run, side by side: the no-op route vs durable ingest at concurrency 1, 16 and 64, then the
//! time from a lead's webhook request to the SMS request reaching a Twilio-shaped server and to an
//! SMTP server accepting the email, at a steady rate. Usage:
//!
//!     cargo build --release && cargo run --release --example loadgen [-- SECONDS RATE]
#![allow(dead_code)]

#[path = "../tests/api/smtp.rs"]
mod smtp;
#[path = "../tests/api/twilio.rs"]
mod twilio;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kaicalls_notify::clock::unix_now;
use kaicalls_notify::domain::webhook;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

struct Run {
    rps: f64,
    p50: Duration,
    p99: Duration,
    errors: usize,
}

/// Keeps `concurrency` requests in flight for `seconds`; `request(i)` makes the i-th one.
async fn closed_loop<F, Fut>(concurrency: usize, seconds: f64, request: F) -> Run
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let request = Arc::new(request);
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (request, counter) = (request.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0);
            while Instant::now() < deadline {
                let i = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let t = Instant::now();
                if request(i).await {
                    latencies.push(t.elapsed());
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let (mut all, mut errors) = (Vec::new(), 0);
    for task in tasks {
        let (l, e) = task.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    Run { rps: all.len() as f64 / elapsed, p50: percentile(&all, 0.50), p99: percentile(&all, 0.99), errors }
}

fn signed(client: &reqwest::Client, url: &str, key: &[u8], id: &str, body: String) -> reqwest::RequestBuilder {
    let ts = unix_now();
    let signature = webhook::sign(key, id, ts, body.as_bytes());
    client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(body)
}

/// CPU seconds (user + system) the process has used so far.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let seconds: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(4.0);
    let rate: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(200);
    let bin = std::env::current_exe()?.parent().and_then(|p| p.parent()).map(|p| p.join("kaicalls-notify")).unwrap();
    anyhow::ensure!(bin.exists(), "build the server first: cargo build --release ({} is missing)", bin.display());

    let dir = tempfile::tempdir()?;
    let smtp = smtp::SmtpServer::start().await;
    let twilio = twilio::TwilioServer::start().await;
    let mut create = Command::new(&bin)
        .args(["create-business", "--name", "Bench Plumbing", "--owner-email", "owner@bench.test"])
        .env("KAI_DATA_DIR", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    std::io::Write::write_all(&mut create.stdin.take().unwrap(), b"a long bench password\n")?;
    let created: serde_json::Value = serde_json::from_slice(&create.wait_with_output()?.stdout)?;
    let business = created["business_id"].as_str().unwrap().to_owned();
    let key = webhook::secret_key(created["webhook_secret"].as_str().unwrap()).unwrap();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("kaicalls.db").display())).await?;
    sqlx::query("UPDATE notification_defaults SET sms_enabled = 1, notification_phone = '+15555550100'")
        .execute(&pool)
        .await?;
    pool.close().await;

    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let server = Server(
        Command::new(&bin)
            .arg("serve")
            .env("KAI_BIND", format!("127.0.0.1:{port}"))
            .env("KAI_DATA_DIR", dir.path())
            .env("SMTP_URL", smtp.url())
            .env("SMS_API_BASE", twilio.url())
            .env("SMS_ACCOUNT_SID", twilio::SID)
            .env("SMS_AUTH_TOKEN", twilio::TOKEN)
            .env("SMS_FROM", twilio::FROM)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()?,
    );
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if client.get(format!("{base}/livez")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let webhook_url = format!("{base}/webhooks/kai/{business}");
    let run_id: String =
        kaicalls_notify::tokens::random_token().chars().filter(char::is_ascii_alphanumeric).take(6).collect();

    println!("server: {} (pid {}), {seconds} s per step", bin.display(), server.0.id());
    println!();
    println!(
        "| concurrency | no-op req/s | no-op p50 ms | no-op p99 ms | ingest req/s | ingest p50 ms | ingest p99 ms | ingest / no-op |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for concurrency in [1usize, 16, 64] {
        let (c, url) = (client.clone(), format!("{base}/livez"));
        let noop = closed_loop(concurrency, seconds, move |_| {
            let (c, url) = (c.clone(), url.clone());
            async move { c.get(&url).send().await.is_ok_and(|r| r.status().is_success()) }
        })
        .await;
        let (c, url, key, run) = (client.clone(), webhook_url.clone(), key.clone(), run_id.clone());
        let ingest = closed_loop(concurrency, seconds, move |i| {
            let (c, url, key) = (c.clone(), url.clone(), key.clone());
            let id = format!("bench_{run}_{concurrency}_{i}");
            // An event type the dispatcher ignores, so this measures durable ingest alone.
            let body = serde_json::json!({"type": "bench.ping", "data": {"n": i}}).to_string();
            async move { signed(&c, &url, &key, &id, body).send().await.is_ok_and(|r| r.status().as_u16() == 202) }
        })
        .await;
        println!(
            "| {concurrency} | {:.0} | {} | {} | {:.0} | {} | {} | {:.3}× |{}",
            noop.rps,
            ms(noop.p50),
            ms(noop.p99),
            ingest.rps,
            ms(ingest.p50),
            ms(ingest.p99),
            ingest.rps / noop.rps,
            if noop.errors + ingest.errors > 0 {
                format!(" errors: {} / {}", noop.errors, ingest.errors)
            } else {
                String::new()
            }
        );
    }

    // Steady lead traffic: each lead is texted to the business phone and emailed to the business.
    let leads = (rate as f64 * seconds * 2.0) as usize;
    let sent_at = Arc::new(std::sync::Mutex::new(HashMap::<String, Instant>::new()));
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let (cpu_before, steady_start) = (cpu_seconds(server.0.id()), Instant::now());
    let mut ticker = tokio::time::interval(interval);
    let mut accepted = 0usize;
    let mut posts = Vec::with_capacity(leads);
    for i in 0..leads {
        ticker.tick().await;
        let (c, url, key, sent_at) = (client.clone(), webhook_url.clone(), key.clone(), sent_at.clone());
        let name = format!("Lead{run_id}x{i}");
        let body = serde_json::json!({"type": "lead.created", "data": {"lead_id": name, "name": name,
            "phone": "+15555550123", "score": 80, "summary": "Bench", "occurred_at": "2026-11-28T10:00:00Z"}})
        .to_string();
        posts.push(tokio::spawn(async move {
            sent_at.lock().unwrap().insert(name.clone(), Instant::now());
            signed(&c, &url, &key, &format!("lead_{name}"), body).send().await.is_ok_and(|r| r.status().as_u16() == 202)
        }));
    }
    for p in posts {
        accepted += usize::from(p.await.unwrap_or(false));
    }
    let steady = steady_start.elapsed().as_secs_f64();
    let cpu = cpu_seconds(server.0.id()).zip(cpu_before).map(|(after, before)| (after - before) / steady);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sent_at = sent_at.lock().unwrap().clone();
    let latency = |name_and_at: Vec<(String, Instant)>| {
        let mut all: Vec<Duration> =
            name_and_at.iter().filter_map(|(n, at)| sent_at.get(n).map(|s| at.saturating_duration_since(*s))).collect();
        all.sort();
        all
    };
    let find_name = |text: &str| {
        text.split(|c: char| !c.is_ascii_alphanumeric())
            .find(|w| w.starts_with(&format!("Lead{run_id}x")))
            .map(str::to_owned)
    };
    let sms = latency(twilio.received().iter().filter_map(|s| find_name(&s.body).map(|n| (n, s.at))).collect());
    let email = latency(smtp.messages().iter().filter_map(|m| find_name(&m.data).map(|n| (n, m.at))).collect());
    println!();
    println!(
        "steady {rate} leads/s for {:.0} s: {leads} posted, {accepted} accepted; server CPU while posting: {} cores of 2",
        seconds * 2.0,
        cpu.map(|c| format!("{c:.2}")).unwrap_or_else(|| "unknown".into())
    );
    println!();
    println!("| path | delivered / sent | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|");
    for (what, all) in
        [("lead → SMS request at the Twilio-shaped server", &sms), ("lead → email accepted by SMTP", &email)]
    {
        println!(
            "| {what} | {} / {accepted} | {} | {} | {} |",
            all.len(),
            ms(percentile(all, 0.5)),
            ms(percentile(all, 0.99)),
            ms(all.last().copied().unwrap_or_default())
        );
    }
    let duplicates = twilio.received().len() as i64 - sms.len() as i64;
    println!();
    println!(
        "duplicate or unmatched SMS: {duplicates}; peak RSS of the server: {} MiB",
        peak_rss_kib(server.0.id()).map(|k| format!("{:.1}", k as f64 / 1024.0)).unwrap_or_else(|| "unknown".into())
    );
    Ok(())
}
