//! Load generator for the delivery core. Runs one or more server binaries, each on a fresh
//! database, with an SMTP server and a Twilio-shaped HTTP server inside this harness, and prints
//! one table with every binary side by side (compare ratios within one run: absolute times drift
//! on shared machines).
//!
//!     cargo build --release --examples
//!     ./target/release/examples/loadgen [--seconds 5] [--long 30] [--rates 200,500,1000,1500,2000]
//!         [--server PATH --name NAME]...   (default: ./target/release/kaicalls-notify as "this commit")
//!         [--engines sqlite,postgres,postgres2]   (this commit on SQLite, on PostgreSQL with one
//!                                                  instance, with two instances on one database)
//!
//! PostgreSQL runs in a cluster this harness starts (the Debian binaries, as the tests do), with
//! durable commits (`fsync` on, as SQLite's `synchronous=FULL`); every target gets a database of
//! its own. With two instances, wrk's connections and the steady leads are split between them.
//!
//! Steps, per server:
//! 1. `wrk -t2 -c64` against `GET /livez` (answers without the database), then against the webhook
//!    with usage events and with leads (dispatch running). Every request is a distinct event,
//!    signed with the product's own `domain::webhook::sign`, precomputed into a wrk script.
//! 2. Leads at a steady rate (open loop): the time from a lead's webhook request to the SMS
//!    request reaching the Twilio-shaped server and to the SMTP server accepting the email. Each
//!    lead must arrive exactly once on each channel (lost / duplicated are counted).
//! 3. The slowest leads' stage times, from the server's timing log (`kaicalls_notify::timing`).
#![allow(dead_code)]

#[path = "../tests/api/engine.rs"]
mod engine;
#[path = "../tests/api/smtp.rs"]
mod smtp;
#[path = "../tests/api/twilio.rs"]
mod twilio;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kaicalls_notify::clock::unix_now;
use kaicalls_notify::domain::webhook;

/// engine.rs asks; this harness makes its PostgreSQL databases itself.
const ENGINE: engine::Engine = engine::Engine::Postgres;

/// One or more instances of a binary on one database.
struct Server {
    children: Vec<Child>,
    ports: Vec<u16>,
    business: String,
    key: Vec<u8>,
    logs: Vec<PathBuf>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.ports[0])
    }

    fn urls(&self, path: &str) -> Vec<String> {
        self.ports.iter().map(|port| format!("http://127.0.0.1:{port}{path}")).collect()
    }

    fn webhooks(&self) -> Vec<String> {
        self.urls(&format!("/webhooks/kai/{}", self.business))
    }

    /// The highest peak memory of the instances.
    fn peak_rss_mib(&self) -> Option<f64> {
        let mut peak: Option<f64> = None;
        for child in &self.children {
            let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).ok()?;
            let kib: f64 = status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()?;
            peak = Some(peak.unwrap_or(0.0).max(kib / 1024.0));
        }
        peak
    }

    fn log_sizes(&self) -> Vec<u64> {
        self.logs.iter().map(|l| std::fs::metadata(l).map(|m| m.len()).unwrap_or(0)).collect()
    }
}

/// Where a target stores its data.
#[derive(Clone)]
enum Store {
    /// A fresh SQLite file in the target's folder.
    Sqlite,
    /// A fresh database on this PostgreSQL server, with this many instances on it.
    Postgres { server: url::Url, instances: usize },
}

const SESSION_KEY: &str =
    "bG9hZGdlbi1zZXNzaW9uLWtleS1sb2FkZ2VuLXNlc3Npb24ta2V5LWxvYWRnZW4tc2Vzc2lvbi1rZXktbG9hZGdlbg==";

async fn start(
    bin: &Path,
    store: &Store,
    smtp: &smtp::SmtpServer,
    twilio: &twilio::TwilioServer,
) -> anyhow::Result<Server> {
    let dir = tempfile::tempdir()?;
    let (database_url, instances) = match store {
        Store::Sqlite => (format!("sqlite://{}", dir.path().join("kaicalls.db").display()), 1),
        Store::Postgres { server, instances } => {
            let name =
                format!("bench_{}", kaicalls_notify::tokens::random_token().to_lowercase().replace(['-', '_'], ""));
            let name: String = name.chars().take(30).collect();
            let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(server.as_str()).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await?;
            let mut url = server.clone();
            url.set_path(&name);
            (url.to_string(), *instances)
        }
    };
    let mut create = Command::new(bin)
        .args(["create-business", "--name", "Bench Plumbing", "--owner-email", "owner@bench.test"])
        .env("KAI_DATA_DIR", dir.path())
        .env("DATABASE_URL", &database_url)
        .env("SESSION_KEY", SESSION_KEY)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    std::io::Write::write_all(&mut create.stdin.take().unwrap(), b"a long bench password\n")?;
    let created: serde_json::Value = serde_json::from_slice(&create.wait_with_output()?.stdout)?;
    let business = created["business_id"].as_str().unwrap().to_owned();
    let key = webhook::secret_key(created["webhook_secret"].as_str().unwrap()).unwrap();
    // SMS on, with a business phone: each lead is texted to it and emailed to the owner.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&database_url).await?;
    sqlx::query("UPDATE notification_defaults SET sms_enabled = TRUE, notification_phone = '+15555550100'")
        .execute(&pool)
        .await?;
    // The number is known to be right (no code to type back). Versions from before numbers were
    // confirmed have no such column: nothing to do there.
    let _ = sqlx::query("UPDATE notification_defaults SET phone_confirmed_at = 1").execute(&pool).await;
    pool.close().await;

    let mut server = Server { children: Vec::new(), ports: Vec::new(), business, key, logs: Vec::new(), _dir: dir };
    for n in 0..instances {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = server._dir.path().join(format!("server-{n}.log"));
        let child = Command::new(bin)
            .arg("serve")
            .env("KAI_BIND", format!("127.0.0.1:{port}"))
            .env("KAI_DATA_DIR", server._dir.path())
            .env("DATABASE_URL", &database_url)
            .env("SESSION_KEY", SESSION_KEY)
            .env("SMTP_URL", smtp.url())
            .env("SMS_API_BASE", twilio.url())
            .env("SMS_ACCOUNT_SID", twilio::SID)
            .env("SMS_AUTH_TOKEN", twilio::TOKEN)
            .env("SMS_FROM", twilio::FROM)
            .env("RUST_LOG", "warn,kaicalls_notify::timing=debug")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        server.children.push(child);
        server.ports.push(port);
        server.logs.push(log);
    }
    let client = reqwest::Client::new();
    for url in server.urls("/livez") {
        let mut up = false;
        for _ in 0..100 {
            if client.get(&url).send().await.is_ok() {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::ensure!(up, "{} did not start", bin.display());
    }
    Ok(server)
}

fn lead_body(name: &str) -> String {
    serde_json::json!({"type": "lead.created", "data": {"lead_id": name, "name": name, "phone": "+15555550123",
        "score": 80, "summary": "Bench", "occurred_at": "2026-11-28T10:00:00Z"}})
    .to_string()
}

fn usage_body(i: usize) -> String {
    serde_json::json!({"type": "usage.updated", "data": {"minutes_used": i % 300, "included_minutes": 100_000,
        "period_start": "2026-11-01", "period_end": "2026-11-30"}})
    .to_string()
}

/// What wrk measured.
struct Wrk {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    /// Requests made, and whether that is more than distinct events prepared (ids repeated).
    requests: u64,
    repeated: bool,
}

fn wrk_ms(value: &str) -> f64 {
    let (number, unit) = value.split_at(value.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(value.len()));
    let n: f64 = number.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        _ => f64::NAN,
    }
}

/// Runs wrk (2 threads, 64 connections). With `requests`, each request is taken in turn from
/// that list of (webhook id, body, signature) — distinct events, signed in advance.
/// Runs wrk on each URL at once, the 64 connections (and 2 threads) split between them, each
/// URL with its own share of the requests. Request rates and counts add up; latencies are the
/// worst of the runs.
fn wrk_all(urls: &[String], seconds: u64, requests: Option<&[Signed]>, dir: &Path) -> anyhow::Result<Wrk> {
    let n = urls.len().max(1);
    let shares: Vec<Option<Vec<&Signed>>> = (0..n)
        .map(|k| requests.map(|r| r.iter().enumerate().filter(|(i, _)| i % n == k).map(|(_, s)| s).collect()))
        .collect();
    let results: Vec<anyhow::Result<Wrk>> = std::thread::scope(|scope| {
        let runs: Vec<_> = urls
            .iter()
            .zip(&shares)
            .enumerate()
            .map(|(k, (url, share))| {
                let tag = format!("{k}");
                scope.spawn(move || wrk(url, seconds, share.as_deref(), dir, 64 / n, (2 / n).max(1), &tag))
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let mut total = Wrk { rps: 0.0, p50_ms: 0.0, p99_ms: 0.0, errors: 0, requests: 0, repeated: false };
    for w in results {
        let w = w?;
        total.rps += w.rps;
        total.p50_ms = total.p50_ms.max(w.p50_ms);
        total.p99_ms = total.p99_ms.max(w.p99_ms);
        total.errors += w.errors;
        total.requests += w.requests;
        total.repeated |= w.repeated;
    }
    Ok(total)
}

fn wrk(
    url: &str,
    seconds: u64,
    requests: Option<&[&Signed]>,
    dir: &Path,
    connections: usize,
    threads: usize,
    tag: &str,
) -> anyhow::Result<Wrk> {
    let mut args =
        vec![format!("-t{threads}"), format!("-c{connections}"), format!("-d{seconds}s"), "--latency".into()];
    if let Some(requests) = requests {
        // The requests go in a data file the script reads at start (a script with them inline
        // is more than Lua will load). Each of wrk's two threads takes every other one, so no id
        // is sent twice until the list runs out (the report flags that).
        let host = url.split('/').nth(2).unwrap_or_default();
        let data = dir.join(format!("requests-{tag}-{}.tsv", requests.len()));
        let mut lines = String::new();
        for Signed { id, ts, body, signature } in requests {
            lines.push_str(&format!("{id}\t{ts}\t{signature}\t{body}\n"));
        }
        std::fs::write(&data, lines)?;
        let script = format!(
            r#"local n = 0
function setup(thread)
  thread:set("tid", n)
  n = n + 1
end
local reqs = {{}}
function init(args)
  local i = 0
  for line in io.lines("{data}") do
    if i % {threads} == tid then
      local id, ts, sig, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      reqs[#reqs + 1] = wrk.format("POST", nil, {{["Host"] = "{host}", ["Content-Type"] = "application/json",
        ["webhook-id"] = id, ["webhook-timestamp"] = ts, ["webhook-signature"] = sig}}, body)
    end
    i = i + 1
  end
end
local k = 0
function request()
  k = k + 1
  if k > #reqs then k = 1 end
  return reqs[k]
end
"#,
            data = data.display(),
            threads = threads
        );
        let path = dir.join(format!("wrk-{tag}-{}.lua", requests.len()));
        std::fs::write(&path, script)?;
        args.push("-s".into());
        args.push(path.display().to_string());
    }
    args.push(url.to_owned());
    let out =
        Command::new("wrk").args(&args).output().map_err(|e| anyhow::anyhow!("run wrk (apt-get install wrk): {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str| text.lines().find(|l| l.trim_start().starts_with(prefix)).map(|l| l.trim().to_owned());
    let rps = field("Requests/sec:").and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0.0);
    let p50 = field("50%").and_then(|l| l.split_whitespace().nth(1).map(wrk_ms)).unwrap_or(f64::NAN);
    let p99 = field("99%").and_then(|l| l.split_whitespace().nth(1).map(wrk_ms)).unwrap_or(f64::NAN);
    let errors = field("Non-2xx").and_then(|l| l.split_whitespace().last()?.parse().ok()).unwrap_or(0);
    let made: u64 = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let repeated = requests.is_some_and(|r| (r.len() as u64) < made);
    Ok(Wrk { rps, p50_ms: p50, p99_ms: p99, errors, requests: made, repeated })
}

/// A webhook request signed in advance.
struct Signed {
    id: String,
    ts: i64,
    body: String,
    signature: String,
}

fn signed_requests(key: &[u8], run: &str, count: usize, body: impl Fn(usize) -> String) -> Vec<Signed> {
    let ts = unix_now();
    (0..count)
        .map(|i| {
            let id = format!("bench_{run}_{i}");
            let body = body(i);
            let signature = webhook::sign(key, &id, ts, body.as_bytes());
            Signed { id, ts, body, signature }
        })
        .collect()
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

/// One steady-rate run: leads posted at `rate` for `seconds`.
struct Steady {
    rate: u64,
    posted: usize,
    accepted: usize,
    sms: Vec<Duration>,
    email: Vec<Duration>,
    lost: usize,
    duplicated: usize,
}

async fn steady(
    server: &Server,
    smtp: &smtp::SmtpServer,
    twilio: &twilio::TwilioServer,
    rate: u64,
    seconds: f64,
) -> Steady {
    let run: String =
        kaicalls_notify::tokens::random_token().chars().filter(char::is_ascii_alphanumeric).take(6).collect();
    let client = reqwest::Client::builder().pool_max_idle_per_host(512).build().unwrap();
    let leads = (rate as f64 * seconds) as usize;
    let sent_at = Arc::new(Mutex::new(HashMap::<String, Instant>::new()));
    let mut ticker = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    let webhooks = server.webhooks();
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut posts = Vec::with_capacity(leads);
    for i in 0..leads {
        ticker.tick().await;
        let url = webhooks[i % webhooks.len()].clone();
        let (client, key, sent_at) = (client.clone(), server.key.clone(), sent_at.clone());
        let name = format!("Lead{run}x{i}");
        posts.push(tokio::spawn(async move {
            let body = lead_body(&name);
            let id = format!("lead_{name}");
            let ts = unix_now();
            let signature = webhook::sign(&key, &id, ts, body.as_bytes());
            sent_at.lock().unwrap().insert(name, Instant::now());
            client
                .post(url)
                .header("content-type", "application/json")
                .header("webhook-id", id)
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", signature)
                .body(body)
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == 202)
        }));
    }
    let mut accepted = 0;
    for p in posts {
        accepted += usize::from(p.await.unwrap_or(false));
    }
    // Let the last ones arrive.
    let prefix = format!("Lead{run}x");
    let arrived = |texts: Vec<String>| texts.iter().filter(|t| t.contains(&prefix)).count();
    for _ in 0..100 {
        let sms = arrived(twilio.received().into_iter().map(|s| s.body).collect());
        let mail = arrived(smtp.messages().into_iter().map(|m| m.data).collect());
        if sms >= accepted && mail >= accepted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent_at = sent_at.lock().unwrap().clone();
    let name_in = |text: &str| {
        text.split(|c: char| !c.is_ascii_alphanumeric()).find(|w| w.starts_with(&prefix)).map(str::to_owned)
    };
    let mut seen_sms: HashMap<String, usize> = HashMap::new();
    let mut sms = Vec::new();
    for s in twilio.received() {
        if let Some(name) = name_in(&s.body) {
            *seen_sms.entry(name.clone()).or_default() += 1;
            if let Some(at) = sent_at.get(&name) {
                sms.push(s.at.saturating_duration_since(*at));
            }
        }
    }
    let mut seen_email: HashMap<String, usize> = HashMap::new();
    let mut email = Vec::new();
    for m in smtp.messages() {
        if let Some(name) = name_in(&m.data) {
            *seen_email.entry(name.clone()).or_default() += 1;
            if let Some(at) = sent_at.get(&name) {
                email.push(m.at.saturating_duration_since(*at));
            }
        }
    }
    sms.sort();
    email.sort();
    let lost = accepted.saturating_sub(seen_sms.len()) + accepted.saturating_sub(seen_email.len());
    let duplicated = seen_sms.values().chain(seen_email.values()).map(|n| n - 1).sum();
    Steady { rate, posted: leads, accepted, sms, email, lost, duplicated }
}

/// One delivery's stage times from the server's timing log (µs).
struct Timing {
    channel: String,
    stages: [u64; 5],
}

const STAGES: [&str; 5] = ["total_us", "write_us", "handover_us", "queue_us", "send_us"];

/// The timing lines the server wrote after byte `from` of its log.
fn timings(log: &Path, from: u64) -> Vec<Timing> {
    let text = std::fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(&text[(from as usize).min(text.len())..]).into_owned();
    text.lines()
        .filter(|l| l.contains("kaicalls_notify::timing"))
        .filter_map(|l| {
            let field = |name: &str| -> Option<u64> {
                l.split_whitespace().find_map(|w| w.strip_prefix(&format!("{name}=")))?.parse().ok()
            };
            let channel = l.split_whitespace().find_map(|w| w.strip_prefix("channel="))?.trim_matches('"').to_owned();
            let mut stages = [0; 5];
            for (slot, name) in stages.iter_mut().zip(STAGES) {
                *slot = field(name)?;
            }
            Some(Timing { channel, stages })
        })
        .collect()
}

fn stage_row(label: &str, stages: &[u64; 5]) -> String {
    let cells: Vec<String> = stages.iter().map(|us| format!("{:.2}", *us as f64 / 1000.0)).collect();
    format!("| {label} | {} |", cells.join(" | "))
}

/// Per stage, the given percentile over the SMS deliveries; then the slowest deliveries.
fn stage_report(all: &[Timing]) -> Vec<String> {
    if all.is_empty() {
        return Vec::new();
    }
    let sms: Vec<&Timing> = all.iter().filter(|t| t.channel == "sms").collect();
    let mut rows = Vec::new();
    for (label, p) in [("SMS p50", 0.5), ("SMS p99", 0.99)] {
        let mut stages = [0; 5];
        for (i, slot) in stages.iter_mut().enumerate() {
            let mut values: Vec<u64> = sms.iter().map(|t| t.stages[i]).collect();
            values.sort_unstable();
            if !values.is_empty() {
                *slot = values[((values.len() as f64 * p).ceil() as usize).clamp(1, values.len()) - 1];
            }
        }
        rows.push(stage_row(label, &stages));
    }
    let mut slowest: Vec<&Timing> = all.iter().collect();
    slowest.sort_by_key(|t| std::cmp::Reverse(t.stages[0]));
    for t in slowest.into_iter().take(5) {
        rows.push(stage_row(&format!("slowest ({})", t.channel), &t.stages));
    }
    rows
}

/// The writer's commits and the checkpoints during the same part of the log: count, p50, p99
/// and max (ms) of each.
fn storage_report(log: &Path, from: u64) -> Vec<String> {
    let text = std::fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(&text[(from as usize).min(text.len())..]).into_owned();
    let mut rows = Vec::new();
    for (label, field) in [("writer commits", "commit_us="), ("checkpoints", "checkpoint_us=")] {
        let mut values: Vec<u64> = text
            .lines()
            .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix(field))?.parse().ok())
            .collect();
        values.sort_unstable();
        let at = |p: f64| {
            values
                .get(((values.len() as f64 * p).ceil() as usize).clamp(1, values.len().max(1)) - 1)
                .copied()
                .unwrap_or(0)
        };
        rows.push(format!(
            "| {label} | {} | {:.2} | {:.2} | {:.2} |",
            values.len(),
            at(0.5) as f64 / 1000.0,
            at(0.99) as f64 / 1000.0,
            values.last().copied().unwrap_or(0) as f64 / 1000.0
        ));
    }
    rows
}

/// Waits until deliveries stop arriving (a burst's backlog has drained), at most `limit`.
async fn drained(smtp: &smtp::SmtpServer, twilio: &twilio::TwilioServer, limit: Duration) {
    let started = Instant::now();
    let mut last = (usize::MAX, usize::MAX);
    while started.elapsed() < limit {
        let now = (smtp.messages().len(), twilio.received().len());
        if now == last {
            return;
        }
        last = now;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

struct Target {
    name: String,
    bin: PathBuf,
    store: Store,
}

struct Figures {
    noop: Wrk,
    usage: Wrk,
    leads: Wrk,
    runs: Vec<Steady>,
    long: Option<Steady>,
    rss_mib: Option<f64>,
    /// Stage times during the long run at 200 leads/s.
    stages: Vec<String>,
    /// Commits and checkpoints during the long run.
    storage: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let seconds: u64 = value("--seconds").and_then(|s| s.parse().ok()).unwrap_or(5);
    let long: f64 = value("--long").and_then(|s| s.parse().ok()).unwrap_or(30.0);
    let rates: Vec<u64> = value("--rates")
        .unwrap_or_else(|| "200,500,1000,1500,2000".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let mut targets = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if a == "--server" {
            let bin = PathBuf::from(args.get(i + 1).cloned().unwrap_or_default());
            let name = args.get(i + 2).filter(|n| *n == "--name").and(args.get(i + 3)).cloned();
            targets.push(Target { name: name.unwrap_or_else(|| bin.display().to_string()), bin, store: Store::Sqlite });
        }
    }
    if targets.is_empty() || value("--engines").is_some() {
        let bin =
            std::env::current_exe()?.parent().and_then(|p| p.parent()).map(|p| p.join("kaicalls-notify")).unwrap();
        match value("--engines") {
            None => targets.push(Target { name: "this commit".into(), bin, store: Store::Sqlite }),
            Some(engines) => {
                let mut postgres = None;
                for e in engines.split(',').map(str::trim) {
                    let mut pg = |instances: usize| -> anyhow::Result<Store> {
                        if postgres.is_none() {
                            postgres = Some(engine::start_durable().ok_or_else(|| {
                                anyhow::anyhow!("PostgreSQL could not be started (apt-get install postgresql)")
                            })?);
                        }
                        Ok(Store::Postgres { server: postgres.clone().unwrap(), instances })
                    };
                    let (name, store) = match e {
                        "sqlite" => ("SQLite, 1 instance", Store::Sqlite),
                        "postgres" => ("PostgreSQL, 1 instance", pg(1)?),
                        "postgres2" => ("PostgreSQL, 2 instances", pg(2)?),
                        other => anyhow::bail!("--engines: unknown engine {other} (sqlite, postgres, postgres2)"),
                    };
                    targets.push(Target { name: name.into(), bin: bin.clone(), store });
                }
            }
        }
    }
    for t in &targets {
        anyhow::ensure!(t.bin.exists(), "{} is missing (cargo build --release)", t.bin.display());
    }

    let mut all = Vec::new();
    for t in &targets {
        eprintln!("== {} ({})", t.name, t.bin.display());
        let smtp = smtp::SmtpServer::start().await;
        let twilio = twilio::TwilioServer::start().await;
        let server = start(&t.bin, &t.store, &smtp, &twilio).await?;
        let scratch = tempfile::tempdir()?;
        let run: String =
            kaicalls_notify::tokens::random_token().chars().filter(char::is_ascii_alphanumeric).take(6).collect();
        let noop = wrk_all(&server.urls("/livez"), seconds, None, scratch.path())?;
        let usage = signed_requests(&server.key, &format!("u{run}"), 200_000, usage_body);
        let usage = wrk_all(&server.webhooks(), seconds, Some(&usage), scratch.path())?;
        let leads = signed_requests(&server.key, &format!("l{run}"), 100_000, |i| lead_body(&format!("W{run}x{i}")));
        let leads = wrk_all(&server.webhooks(), seconds, Some(&leads), scratch.path())?;
        // Let the burst's deliveries drain before timing steady traffic.
        drained(&smtp, &twilio, Duration::from_secs(300)).await;
        let mut runs = Vec::new();
        for &rate in &rates {
            let s = steady(&server, &smtp, &twilio, rate, seconds as f64).await;
            eprintln!("   {rate}/s: SMS p50 {} p99 {}", ms(percentile(&s.sms, 0.5)), ms(percentile(&s.sms, 0.99)));
            let sms_p99 = percentile(&s.sms, 0.99);
            runs.push(s);
            if sms_p99 > Duration::from_millis(500) {
                break;
            }
            drained(&smtp, &twilio, Duration::from_secs(120)).await;
        }
        let log_before_long = server.log_sizes();
        let long = if long > 0.0 { Some(steady(&server, &smtp, &twilio, 200, long).await) } else { None };
        let mut all_timings = Vec::new();
        let mut storage = Vec::new();
        for (log, from) in server.logs.iter().zip(&log_before_long) {
            all_timings.extend(timings(log, *from));
            storage.extend(storage_report(log, *from));
        }
        let stages = stage_report(&all_timings);
        if let Ok(keep) = std::env::var("LOADGEN_KEEP_LOG") {
            for (n, log) in server.logs.iter().enumerate() {
                std::fs::copy(log, format!("{keep}.{}.{n}", t.name.replace([' ', ','], "-")))?;
            }
        }
        let figures = Figures { noop, usage, leads, runs, long, rss_mib: server.peak_rss_mib(), stages, storage };
        all.push((t, figures));
    }

    println!("## Ingest, wrk -t2 -c64, {seconds} s each\n");
    println!(
        "| server | /livez req/s | usage ingest req/s (÷ livez) | p50 / p99 ms | lead ingest req/s (÷ livez) | p50 / p99 ms | non-2xx |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (t, f) in &all {
        println!(
            "| {} | {:.0} | {:.0} ({:.3}×) | {:.2} / {:.2} | {:.0} ({:.3}×) | {:.2} / {:.2} | {} |",
            t.name,
            f.noop.rps,
            f.usage.rps,
            f.usage.rps / f.noop.rps,
            f.usage.p50_ms,
            f.usage.p99_ms,
            f.leads.rps,
            f.leads.rps / f.noop.rps,
            f.leads.p50_ms,
            f.leads.p99_ms,
            f.noop.errors + f.usage.errors + f.leads.errors
        );
        for (what, w) in [("usage", &f.usage), ("lead", &f.leads)] {
            if w.repeated {
                println!(
                    "\n(warning: {} made {} {what} requests, more than the distinct events prepared; some were repeats)",
                    t.name, w.requests
                );
            }
        }
    }
    println!("\n## Lead → delivery at a steady rate ({seconds} s per rate)\n");
    println!(
        "| server | leads/s | accepted / posted | SMS p50 / p99 / max ms | email p50 / p99 / max ms | lost / duplicated |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let row = |name: &str, s: &Steady| {
        println!(
            "| {name} | {} | {} / {} | {} / {} / {} | {} / {} / {} | {} / {} |",
            s.rate,
            s.accepted,
            s.posted,
            ms(percentile(&s.sms, 0.5)),
            ms(percentile(&s.sms, 0.99)),
            ms(s.sms.last().copied().unwrap_or_default()),
            ms(percentile(&s.email, 0.5)),
            ms(percentile(&s.email, 0.99)),
            ms(s.email.last().copied().unwrap_or_default()),
            s.lost,
            s.duplicated
        );
    };
    for (t, f) in &all {
        for s in &f.runs {
            row(&t.name, s);
        }
    }
    if long > 0.0 {
        println!("\n## 200 leads/s for {long:.0} s\n");
        println!(
            "| server | leads/s | accepted / posted | SMS p50 / p99 / max ms | email p50 / p99 / max ms | lost / duplicated |"
        );
        println!("|---|---:|---:|---:|---:|---:|");
        for (t, f) in &all {
            if let Some(s) = &f.long {
                row(&t.name, s);
            }
        }
    }
    println!("\n## Highest steady rate with SMS p99 ≤ 50 ms, and peak memory\n");
    println!("| server | rate | peak RSS MiB |");
    println!("|---|---:|---:|");
    for (t, f) in &all {
        let best = f
            .runs
            .iter()
            .filter(|s| percentile(&s.sms, 0.99) <= Duration::from_millis(50) && s.lost == 0)
            .map(|s| s.rate)
            .max();
        println!(
            "| {} | {} | {} |",
            t.name,
            best.map(|r| format!("{r}/s")).unwrap_or_else(|| "none of the rates tried".into()),
            f.rss_mib.map(|m| format!("{m:.1}")).unwrap_or_else(|| "?".into())
        );
    }
    for (t, f) in &all {
        if f.stages.is_empty() {
            continue;
        }
        println!("\n## Where the time goes in {}: the long run's stages (server timing log, ms)\n", t.name);
        println!("| deliveries | webhook → send done | webhook → commit | commit → queued | queued → sending | send |");
        println!("|---|---:|---:|---:|---:|---:|");
        for row in &f.stages {
            println!("{row}");
        }
        println!("\n| storage, long run | count | p50 ms | p99 ms | max ms |");
        println!("|---|---:|---:|---:|---:|");
        for row in &f.storage {
            println!("{row}");
        }
    }
    Ok(())
}
