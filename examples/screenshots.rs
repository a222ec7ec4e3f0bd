//! Writes PNGs of the main pages, at desktop and phone width, into docs/screenshots/, from a demo
//! business with a few leads. Needs Debian's chromium and chromium-driver. Usage:
//!
//!     cargo run --example screenshots
use std::process::{Command, Stdio};
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};
use kaicalls_notify::config::Config;
use kaicalls_notify::startup::Application;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().display().to_string();
    let config = Config::from_lookup(|name| match name {
        "KAI_BIND" => Some("127.0.0.1:0".into()),
        "KAI_DATA_DIR" => Some(data.clone()),
        _ => None,
    })?;
    let (db, handover) = kaicalls_notify::startup::open_database(&config).await?;
    let demo = kaicalls_notify::demo::seed(&db).await?;
    let app = Application::build_with(config, db, handover).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());

    let key = kaicalls_notify::domain::webhook::secret_key(&demo.webhook_secret).unwrap();
    let client = reqwest::Client::new();
    let leads = [
        ("Jane Doe", 82, "Burst pipe, wants a quote today"),
        ("Marcus Lee", 64, "Dripping tap, no rush"),
        ("Ana Ruiz", 91, "Water heater leaking into the garage"),
    ];
    for (i, (name, score, summary)) in leads.iter().enumerate() {
        let body = serde_json::json!({"type": "lead.created", "data": {"lead_id": format!("L-{i}"), "name": name,
            "phone": format!("+1555555012{i}"), "score": score, "summary": summary, "occurred_at": "2026-11-28T10:00:00Z"}})
        .to_string();
        let ts = kaicalls_notify::clock::unix_now();
        let id = format!("shot-{i}");
        client
            .post(format!("{base}/webhooks/kai/{}", demo.business_id))
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", kaicalls_notify::domain::webhook::sign(&key, &id, ts, body.as_bytes()))
            .body(body)
            .send()
            .await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut driver = Command::new("chromedriver").arg(format!("--port={port}")).stdout(Stdio::null()).spawn()?;
    let profile = tempfile::tempdir()?;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
            "--disable-quic", "--hide-scrollbars", format!("--user-data-dir={}", profile.path().display())]}),
    );
    let mut browser = None;
    for _ in 0..50 {
        if let Ok(c) =
            ClientBuilder::rustls()?.capabilities(caps.clone()).connect(&format!("http://127.0.0.1:{port}")).await
        {
            browser = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let b = browser
        .ok_or_else(|| anyhow::anyhow!("chromedriver did not start (apt-get install chromium chromium-driver)"))?;
    b.goto(&format!("{base}/login")).await?;
    b.find(Locator::Id("email")).await?.send_keys(&demo.owner_email).await?;
    b.find(Locator::Id("password")).await?.send_keys(&demo.password).await?;
    b.find(Locator::Css("button[type=submit]")).await?.click().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    std::fs::create_dir_all(&out)?;
    for (page, path) in [
        ("dashboard", "/"),
        ("notifications", "/settings/notifications"),
        ("alert-log", "/settings/notifications/log"),
        ("inbox", "/notifications"),
        ("leads", "/leads"),
        ("team", "/team"),
    ] {
        for (label, width) in [("desktop", 1280u32), ("phone", 390)] {
            b.set_window_size(width, 900).await?;
            b.goto(&format!("{base}{path}")).await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let height =
                b.execute("return document.documentElement.scrollHeight", vec![]).await?.as_u64().unwrap_or(900);
            b.set_window_size(width, height.min(6000) as u32).await?;
            tokio::time::sleep(Duration::from_millis(200)).await;
            let file = out.join(format!("{page}-{label}.png"));
            std::fs::write(&file, b.screenshot().await?)?;
            println!("{}", file.display());
        }
    }
    b.close().await?;
    let _ = driver.kill();
    Ok(())
}
