//! Escalation timers in a burst: LEADS hot leads arrive together and nobody claims any, so their
//! first escalation steps all fall due at once. How long until every step went out, against how
//! long the leads' own alerts took, measured in one run (compare the ratio; absolute times drift
//! on shared machines).
//!
//!     cargo build --release --examples && ./target/release/examples/escalationbench [LEADS]
//!
//! The application runs in this process on a fresh SQLite database, with its alerts going to the
//! file outboxes (no SMTP or SMS server) and its dispatcher driven by hand, so the steps fall due
//! when the harness moves the dispatcher's clock 5 minutes on. The business texts each lead to
//! itself and to Sam, and escalates to Sam by SMS and in-app.
use std::time::{Duration, Instant};

use kaicalls_notify::clock::{unix_now, unix_now_ms};
use kaicalls_notify::config::Config;
use kaicalls_notify::db::writer::NewEvent;
use kaicalls_notify::db::{self, businesses::NewBusiness, users::NewUser};
use kaicalls_notify::domain::escalation::{Policy, Step};
use kaicalls_notify::domain::events::{Event, Lead};
use kaicalls_notify::domain::{
    ChannelSet, EmailAddress, LeadScore, PersonName, PhoneNumber, RecipientPrefs, Region, Role,
};
use kaicalls_notify::startup::Application;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let leads: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(1000);
    let dir = tempfile::tempdir()?;
    let vars = [("KAI_DATA_DIR", dir.path().display().to_string()), ("KAI_BIND", "127.0.0.1:0".to_owned())];
    let mut config = Config::from_lookup(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()))?;
    config.dispatch.autorun = false;
    let app = Application::build(config).await?;
    let (db, dispatcher) = (app.db().clone(), app.dispatcher());

    let business = db
        .write(|w| {
            Box::pin(async move {
                let id = "bench".to_owned();
                let name = PersonName::parse("Owner").unwrap();
                let email = EmailAddress::parse("owner@bench.test").unwrap();
                let now = unix_now();
                let new = NewBusiness {
                    id: &id,
                    name: "Bench Plumbing",
                    region: Region::default(),
                    webhook_secret: "whsec_YmVuY2hiZW5jaGJlbmNoYmVuY2hiZW5jaGJlbmNo",
                    owner_name: &name,
                    owner_email: &email,
                    owner_password_hash: "unused",
                };
                let owner = db::businesses::create(w, new, now).await?;
                let (sam, sam_email) =
                    (PersonName::parse("Sam").unwrap(), EmailAddress::parse("sam@bench.test").unwrap());
                let phone = PhoneNumber::parse("+15555550101", Region::default()).unwrap();
                let user = NewUser {
                    business_id: &id,
                    name: &sam,
                    email: &sam_email,
                    phone: Some(&phone),
                    role: Role::Member,
                    password_hash: None,
                };
                let sam = db::users::insert(w, user, now).await?;
                let mut prefs = RecipientPrefs::new_recipient();
                prefs.channels.sms = true;
                db::recipients::insert(w, &id, sam, &prefs, now).await?;
                let mut defaults = db::defaults::of(w, &id).await?;
                defaults.channels.sms = true;
                defaults.notification_phone = Some(PhoneNumber::parse("+15555550100", Region::default()).unwrap());
                db::defaults::update(w, &id, &defaults, now).await?;
                // The numbers are known to be right: no code to type back.
                db::phone_codes::known_good(w, &id, now).await?;
                let policy = Policy {
                    enabled: true,
                    min_score: LeadScore::new(70).unwrap(),
                    first: Step { minutes: 5, people: vec![sam] },
                    second: Some(Step { minutes: 10, people: vec![owner] }),
                    channels: ChannelSet { email: false, sms: true, in_app: true },
                };
                db::escalations::save(w, &id, &policy, now).await?;
                Ok(id)
            })
        })
        .await?;

    // The leads, all at once, and their own alerts.
    let started = Instant::now();
    let posts = (0..leads).map(|i| {
        let lead = Lead {
            lead_id: format!("L-{i}"),
            name: Some(format!("Caller {i}")),
            phone: Some("+15555550123".into()),
            email: None,
            score: Some(90),
            summary: Some("Burst pipe under the sink".into()),
            occurred_at: unix_now(),
        };
        db.ingest(NewEvent::new(business.clone(), format!("m{i}"), Event::LeadCreated(lead), unix_now_ms()))
    });
    for stored in futures_util::future::join_all(posts).await {
        stored.map_err(|e| anyhow::anyhow!("a lead was not stored: {e}"))?;
    }
    let report = dispatcher.run_once().await?;
    let alerts = started.elapsed();

    // Five minutes on: every lead's first step is due.
    dispatcher.advance_clock(Duration::from_secs(5 * 60));
    let started = Instant::now();
    let escalated = dispatcher.run_once().await?;
    let escalations = started.elapsed();

    let mut conn = db.system().await?;
    let fired = db::escalations::next_due_ms(&mut conn).await?;
    drop(conn);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("{leads} hot leads, nobody claims them (SQLite, file outboxes)");
    println!(
        "  the leads' alerts:      {:>8.1} ms  ({} deliveries, {:.2} ms a lead)",
        ms(alerts),
        report.handed_over + report.claimed,
        ms(alerts) / leads as f64
    );
    println!(
        "  their first steps:      {:>8.1} ms  ({} steps, {:.2} ms a step)",
        ms(escalations),
        escalated.escalations,
        ms(escalations) / leads as f64
    );
    println!("  steps ÷ leads:          {:>8.2}×", ms(escalations) / ms(alerts));
    println!("  second steps pending:   {}", fired.is_some());
    Ok(())
}
