//! Every statement the pages run, captured as SQLite runs it, must be bounded by an index on the
//! large tables: no full scan of events, deliveries, leads, notifications, the audit log or
//! sessions, and no sort of everything a business or a person has. A test binary of its own,
//! because it listens to every statement the process runs. `SHOW_PLANS=1` prints each plan.
#![allow(dead_code)]

#[path = "api/engine.rs"]
mod engine;
#[path = "api/helpers.rs"]
mod helpers;
#[path = "api/history.rs"]
mod history;
#[path = "api/smtp.rs"]
mod smtp;
#[path = "api/twilio.rs"]
mod twilio;

use std::collections::BTreeSet;
use std::sync::Mutex;

use kaicalls_notify::domain::Role;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// The plans checked are SQLite's.
pub const ENGINE: engine::Engine = engine::Engine::Sqlite;

static STATEMENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Keeps the SQL of every statement sqlx reports having run.
struct Capture;

#[derive(Default)]
struct Statement {
    summary: String,
    full: String,
}

impl Visit for Statement {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => self.summary = value.to_owned(),
            "db.statement" => self.full = value.to_owned(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "summary" => self.summary = format!("{value:?}").trim_matches('"').to_owned(),
            "db.statement" => self.full = format!("{value:?}").trim_matches('"').replace("\\n", "\n"),
            _ => {}
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        let mut statement = Statement::default();
        event.record(&mut statement);
        let sql = if statement.full.trim().is_empty() { statement.summary } else { statement.full };
        STATEMENTS.lock().unwrap().push(sql.trim().to_owned());
    }
}

/// Tables that grow with a business's history.
const LARGE: [&str; 10] = [
    "events",
    "deliveries",
    "leads",
    "notifications",
    "audit_log",
    "sessions",
    "alert_keys",
    "usage_alerts",
    "escalations",
    "sms_inbound",
];

fn is_read_or_change(sql: &str) -> bool {
    let first = sql.split_whitespace().next().unwrap_or("").to_uppercase();
    matches!(first.as_str(), "SELECT" | "WITH" | "UPDATE" | "DELETE")
}

#[tokio::test]
async fn the_pages_read_every_large_table_through_an_index() {
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Capture)).unwrap();
    let app = helpers::spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let sam_id = app.add_user(&business, "Sam", "sam@acme.test", Some("(555) 555-0101"), Role::Member).await.id;
    let year = history::History { teammates: 15, leads: 2_000, deliveries_per_event: 7, inbox: 500 };
    history::add(&app.db, &business.id, business.owner.id, year).await.unwrap();
    let owner = app.login("owner@acme.test").await;
    let sam = app.login("sam@acme.test").await;
    let row = app.recipient_id(business.owner.id).await.unwrap();
    let leads = app.get_html(&owner, "/leads").await;
    let older = leads.split("href=\"/leads?older=").nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&");
    STATEMENTS.lock().unwrap().clear();
    // Quiet hours and a daily summary: the pages then read each lead's time for the preview,
    // and the forms move what they hold.
    let quiet = format!("/settings/notifications/recipients/{row}/quiet");
    let form = [
        ("quiet_enabled", "on"),
        ("quiet_mon", "on"),
        ("quiet_from", "22:00"),
        ("quiet_to", "07:00"),
        ("time_zone", "UTC"),
    ];
    assert_eq!(app.post_form(&owner, &quiet, &form).await.status(), 303);
    let digest = format!("/settings/notifications/recipients/{row}/digest");
    assert_eq!(app.post_form(&owner, &digest, &[("digest_enabled", "on"), ("digest_at", "08:00")]).await.status(), 303);
    assert_eq!(app.post_form(&owner, &digest, &[("digest_at", "08:00")]).await.status(), 303);

    for client in [&owner, &sam] {
        for path in [
            "/",
            "/settings/notifications",
            "/settings/notifications/alerts",
            "/settings/notifications/log",
            "/settings/notifications/log?before=1000",
            "/settings/notifications/log?after=1000",
            &format!("/settings/notifications/log?person={sam_id}&outcome=not_sent"),
            &format!("/settings/notifications/log?person={sam_id}&channel=sms&after=1000"),
            "/settings/notifications/log?person=business&channel=email",
            "/settings/notifications/log?outcome=failed",
            "/settings/notifications/log?channel=in_app&before=500",
            &format!("/settings/notifications/recipients/{row}/preview?min_lead_score=60"),
            "/notifications",
            "/notifications/bell",
            "/leads",
            &format!("/leads?older={older}"),
            &format!("/leads?newer={older}"),
            "/leads?show=unclaimed",
            &format!("/leads?show=unclaimed&older={older}"),
            "/billing",
            "/team",
            "/account",
            "/sms",
            "/sms?show=failed",
            "/sms?before=1000",
            "/sms?show=failed&before=1000",
        ] {
            let response = app.get(client, path).await;
            assert!(response.status().is_success(), "{path}: {}", response.status());
        }
    }
    assert_eq!(app.get(&helpers::client(), "/login").await.status(), 200);
    // Texts back: each finds the last text sent to the number.
    for body in ["HELP", "1", "STOP", "START", "thanks"] {
        let params: Vec<(String, String)> =
            [("From", "+15555550101"), ("Body", body), ("MessageSid", "SMx")].map(|(k, v)| (k.into(), v.into())).into();
        let url = "http://kaicalls.test/webhooks/twilio/inbound";
        let signature = kaicalls_notify::domain::sms_status::signature(twilio::TOKEN, url, &params);
        let response = helpers::client()
            .post(app.url("/webhooks/twilio/inbound"))
            .header("X-Twilio-Signature", signature)
            .form(&params)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{body}");
    }
    // The dispatcher's look for due escalation steps (none due: the history's are all ended).
    app.dispatcher.run_once().await.unwrap();
    // /metrics reads the queue; retention deletes a year's history in batches.
    assert_eq!(app.get(&helpers::client(), "/metrics").await.status(), 200);
    let far_future = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
        + 500 * 24 * 3_600_000;
    let cutoffs = kaicalls_notify::db::retention::Cutoffs::at(far_future, 90, 400);
    kaicalls_notify::db::retention::prune_all(&app.db, cutoffs, std::time::Duration::ZERO).await.unwrap();

    let statements: BTreeSet<String> =
        STATEMENTS.lock().unwrap().iter().filter(|s| is_read_or_change(s)).cloned().collect();
    assert!(statements.len() >= 15, "the pages' statements were captured: {statements:#?}");
    let mut unbounded = Vec::new();
    for sql in &statements {
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                .fetch_all(&app.pool)
                .await
                .unwrap_or_else(|e| panic!("{e}: {sql}"));
        if std::env::var("SHOW_PLANS").is_ok() {
            eprintln!("---- {sql}\n{:?}", plan.iter().map(|p| p.3.as_str()).collect::<Vec<_>>());
        }
        let steps: Vec<&str> = plan.iter().map(|p| p.3.as_str()).collect();
        let large = |step: &str, verb: &str| {
            LARGE.iter().any(|t| step == format!("{verb} {t}") || step.starts_with(&format!("{verb} {t} ")))
        };
        for step in &steps {
            if large(step, "SCAN") {
                unbounded.push(format!("{step}\n    in: {sql}"));
            }
        }
        // Sorting in a temporary b-tree reads every row the search finds: the search must then
        // be bounded by a range or by a list of ids (one page's), not just by the business or
        // the person.
        let sorts = steps.iter().any(|s| s.starts_with("USE TEMP B-TREE"));
        let listed = sql.contains(" IN (?");
        for step in steps.iter().filter(|s| large(s, "SEARCH")) {
            if sorts && !listed && !step.contains('<') && !step.contains('>') {
                unbounded.push(format!("{step}, then sorted\n    in: {sql}"));
            }
        }
    }
    assert!(unbounded.is_empty(), "full scans of large tables:\n{}", unbounded.join("\n"));
}
