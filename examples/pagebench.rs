//! Page benchmark: every page for a business with a year of history against the same page for
//! the demo business, on the release binary.
//!
//!     cargo build --release --examples && ./target/release/examples/pagebench [REQUESTS] [--postgres]
//!
//! With `--postgres`, the same on a PostgreSQL database in a durable cluster this harness starts
//! (the Debian binaries, as the tests do), the statistics brought up to date (`ANALYZE`) after the
//! history is written, as autovacuum would soon do.
//!
//! It creates, on a fresh database, the demo business and a large one (15 teammates, 10,000 leads
//! over a year with updates, about 100,000 delivery decisions, 5,000 inbox rows, a year of usage
//! reports), timing how long that takes; starts the server; signs in as each owner; then asks
//! for each page REQUESTS times (200 by default, after 20 to warm up), one at a time, and prints
//! p50 and p99 for both businesses and their ratio. Also the size of the database files.
#![allow(dead_code)]

#[path = "../tests/api/engine.rs"]
mod engine;
#[path = "../tests/api/history.rs"]
mod history;

/// engine.rs asks; this harness makes its PostgreSQL database itself.
const ENGINE: engine::Engine = engine::Engine::Postgres;
const SESSION_KEY: &str =
    "cGFnZWJlbmNoLXNlc3Npb24ta2V5LXBhZ2ViZW5jaC1zZXNzaW9uLWtleS1wYWdlYmVuY2gtc2Vzc2lvbi1rZXktcGFnZWJlbmNo";

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kaicalls_notify::clock::unix_now;
use kaicalls_notify::db::{self, businesses::NewBusiness};
use kaicalls_notify::domain::{EmailAddress, PersonName, Region, password};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const BIG_OWNER: &str = "owner@big.test";
const BIG_PASSWORD: &str = "a long big-business password";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn sign_in(base: &str, email: &str, password: &str) -> anyhow::Result<reqwest::Client> {
    let client = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build()?;
    let form = client.get(format!("{base}/login")).send().await?.text().await?;
    let marker = "name=\"csrf_token\" value=\"";
    let start = form.find(marker).ok_or_else(|| anyhow::anyhow!("no sign-in form"))? + marker.len();
    let token = form[start..].split('"').next().unwrap_or_default().to_owned();
    let answer = client
        .post(format!("{base}/login"))
        .form(&[("email", email), ("password", password), ("csrf_token", &token)])
        .send()
        .await?;
    anyhow::ensure!(answer.status() == 303, "signing in as {email}: {}", answer.status());
    Ok(client)
}

async fn time_page(client: &reqwest::Client, url: &str, requests: usize) -> anyhow::Result<(Duration, Duration)> {
    for _ in 0..20 {
        client.get(url).send().await?.bytes().await?;
    }
    let mut all = Vec::with_capacity(requests);
    for _ in 0..requests {
        let started = Instant::now();
        let response = client.get(url).send().await?;
        anyhow::ensure!(response.status().is_success(), "{url}: {}", response.status());
        response.bytes().await?;
        all.push(started.elapsed());
    }
    all.sort();
    Ok((percentile(&all, 0.5), percentile(&all, 0.99)))
}

fn size_mib(path: &std::path::Path) -> f64 {
    std::fs::metadata(path).map(|m| m.len() as f64 / 1024.0 / 1024.0).unwrap_or(0.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let requests: usize = args.iter().find_map(|n| n.parse().ok()).unwrap_or(200);
    let postgres = args.iter().any(|a| a == "--postgres");
    let bin = std::env::current_exe()?.parent().and_then(|p| p.parent()).map(|p| p.join("kaicalls-notify")).unwrap();
    anyhow::ensure!(bin.exists(), "build the server first: cargo build --release");
    let dir = tempfile::tempdir()?;
    let url = if postgres {
        let server = engine::start_durable().ok_or_else(|| anyhow::anyhow!("PostgreSQL could not be started"))?;
        let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(server.as_str()).await?;
        sqlx::query("CREATE DATABASE pagebench").execute(&mut admin).await?;
        let mut url = server.clone();
        url.set_path("pagebench");
        url.to_string()
    } else {
        format!("sqlite://{}", dir.path().join("kaicalls.db").display())
    };
    sqlx::any::install_default_drivers();

    // The data, written in-process before the server starts.
    let (database, _handover) = db::open(&url, db::WriterSettings::new(Duration::from_secs(60))).await?;
    let demo = kaicalls_notify::demo::seed(&database).await?;
    let hash = tokio::task::spawn_blocking(|| password::hash(BIG_PASSWORD)).await??;
    let big = kaicalls_notify::tokens::business_id();
    let started = Instant::now();
    let new_id = big.clone();
    let owner = database
        .write(move |w| {
            Box::pin(async move {
                let name = PersonName::parse("Big Owner").unwrap();
                let email = EmailAddress::parse(BIG_OWNER).unwrap();
                let new = NewBusiness {
                    id: &new_id,
                    name: "Big Plumbing",
                    region: Region::default(),
                    webhook_secret: &kaicalls_notify::tokens::webhook_secret(),
                    owner_name: &name,
                    owner_email: &email,
                    owner_password_hash: &hash,
                };
                db::businesses::create(w, new, unix_now()).await
            })
        })
        .await?;
    let rows = history::add(&database, &big, owner, history::History::YEAR).await?;
    let took = started.elapsed();
    let deep: String = {
        let pool = sqlx::AnyPool::connect(&url).await?;
        if postgres {
            sqlx::query("ANALYZE").execute(&pool).await?;
        }
        let (updated_at, lead_id): (i64, String) = sqlx::query_as(
            "SELECT updated_at, lead_id FROM leads WHERE business_id = $1 ORDER BY updated_at, lead_id LIMIT 1 OFFSET 30",
        )
        .bind(&big)
        .fetch_one(&pool)
        .await?;
        let row: (i64,) = sqlx::query_as("SELECT count(*) FROM deliveries WHERE business_id = $1")
            .bind(&big)
            .fetch_one(&pool)
            .await?;
        println!(
            "Created the large business in {:.1} s: {rows} rows, {} delivery decisions.",
            took.as_secs_f64(),
            row.0
        );
        serde_urlencoded::to_string([("older", format!("{updated_at}.{lead_id}"))])?
    };
    drop(database);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let _server = Server(
        Command::new(&bin)
            .arg("serve")
            .env("KAI_BIND", format!("127.0.0.1:{port}"))
            .env("KAI_DATA_DIR", dir.path())
            .env("DATABASE_URL", &url)
            .env("SESSION_KEY", SESSION_KEY)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()?,
    );
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if reqwest::get(format!("{base}/livez")).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let small_client = sign_in(&base, &demo.owner_email, &demo.password).await?;
    let big_client = sign_in(&base, BIG_OWNER, BIG_PASSWORD).await?;
    let big_row: i64 = {
        let pool = sqlx::AnyPool::connect(&url).await?;
        sqlx::query_scalar("SELECT r.id FROM recipients r JOIN users u ON u.id = r.user_id WHERE u.email = $1")
            .bind(BIG_OWNER)
            .fetch_one(&pool)
            .await?
    };
    let demo_row: i64 = {
        let pool = sqlx::AnyPool::connect(&url).await?;
        sqlx::query_scalar("SELECT r.id FROM recipients r JOIN users u ON u.id = r.user_id WHERE u.email = $1")
            .bind(&demo.owner_email)
            .fetch_one(&pool)
            .await?
    };

    // Someone on each team whose alerts the log is filtered to, and an old page of the log.
    let (demo_member, big_member, big_old, big_old_text): (i64, i64, i64, i64) = {
        let pool = sqlx::AnyPool::connect(&url).await?;
        let id_of = |email: String| {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>("SELECT id FROM users WHERE email = $1").bind(email).fetch_one(&pool).await
            }
        };
        let old = sqlx::query_scalar("SELECT min(id) + 100 FROM events WHERE business_id = $1")
            .bind(&big)
            .fetch_one(&pool)
            .await?;
        let old_text = sqlx::query_scalar("SELECT min(id) + 300 FROM deliveries WHERE business_id = $1")
            .bind(&big)
            .fetch_one(&pool)
            .await?;
        (id_of(demo.member_email.clone()).await?, id_of(format!("teammate3-{big}@history.test")).await?, old, old_text)
    };

    println!("\n{requests} requests per page, one at a time, after 20 to warm up.\n");
    println!("| page | demo p50 ms | demo p99 ms | large p50 ms | large p99 ms | large ÷ demo (p99) |");
    println!("|---|---:|---:|---:|---:|---:|");
    let pages: Vec<(String, String, String)> = vec![
        ("Dashboard".into(), "/".into(), "/".into()),
        ("Notifications".into(), "/settings/notifications".into(), "/settings/notifications".into()),
        (
            "Recent alerts (polled)".into(),
            "/settings/notifications/alerts".into(),
            "/settings/notifications/alerts".into(),
        ),
        (
            "Threshold preview".into(),
            format!("/settings/notifications/recipients/{demo_row}/preview?min_lead_score=60"),
            format!("/settings/notifications/recipients/{big_row}/preview?min_lead_score=60"),
        ),
        ("Alert log".into(), "/settings/notifications/log".into(), "/settings/notifications/log".into()),
        (
            "Alert log, one person, not sent".into(),
            format!("/settings/notifications/log?person={demo_member}&outcome=not_sent"),
            format!("/settings/notifications/log?person={big_member}&outcome=not_sent"),
        ),
        (
            "Alert log, gave up (rare)".into(),
            "/settings/notifications/log?outcome=failed".into(),
            "/settings/notifications/log?outcome=failed".into(),
        ),
        (
            "Alert log, a year back".into(),
            "/settings/notifications/log?before=2".into(),
            format!("/settings/notifications/log?before={big_old}&channel=sms"),
        ),
        ("Leads, newest".into(), "/leads".into(), "/leads".into()),
        ("Leads, oldest page".into(), "/leads".into(), format!("/leads?{deep}")),
        ("Leads, not claimed".into(), "/leads?show=unclaimed".into(), "/leads?show=unclaimed".into()),
        ("Billing".into(), "/billing".into(), "/billing".into()),
        ("Inbox".into(), "/notifications".into(), "/notifications".into()),
        ("Bell (polled)".into(), "/notifications/bell".into(), "/notifications/bell".into()),
        ("Team".into(), "/team".into(), "/team".into()),
        ("Account".into(), "/account".into(), "/account".into()),
        ("SMS".into(), "/sms".into(), "/sms".into()),
        ("SMS, not delivered (rare)".into(), "/sms?show=failed".into(), "/sms?show=failed".into()),
        ("SMS, a year back".into(), "/sms?before=2".into(), format!("/sms?before={big_old_text}")),
    ];
    for (name, small_path, big_path) in pages {
        let (sp50, sp99) = time_page(&small_client, &format!("{base}{small_path}"), requests).await?;
        let (bp50, bp99) = time_page(&big_client, &format!("{base}{big_path}"), requests).await?;
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}× |",
            ms(sp50),
            ms(sp99),
            ms(bp50),
            ms(bp99),
            ms(bp99) / ms(sp99)
        );
    }
    if !postgres {
        println!(
            "\nDatabase files: {:.1} MiB (kaicalls.db) + {:.1} MiB (write-ahead log) with the demo business and the large one.",
            size_mib(&dir.path().join("kaicalls.db")),
            size_mib(&dir.path().join("kaicalls.db-wal"))
        );
    }
    Ok(())
}
