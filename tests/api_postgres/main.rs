//! The integration suite again, on PostgreSQL: the same modules as `tests/api` (plus the
//! tests of several instances on one database), with a throwaway PostgreSQL cluster (see
//! `tests/api/engine.rs`). Built only where PostgreSQL can be found (the build script looks);
//! elsewhere one test says it was skipped, and fails when `KAI_REQUIRE_POSTGRES=1`.
#[cfg(kai_postgres)]
#[path = "../api/alerts.rs"]
mod alerts;
#[cfg(kai_postgres)]
#[path = "../api/auth.rs"]
mod auth;
#[cfg(kai_postgres)]
#[path = "../api/bounded.rs"]
mod bounded;
#[cfg(kai_postgres)]
#[path = "../api/browser.rs"]
mod browser;
#[cfg(kai_postgres)]
#[path = "../api/claims.rs"]
mod claims;
#[cfg(kai_postgres)]
#[path = "../api/cli.rs"]
mod cli;
#[cfg(kai_postgres)]
#[path = "../api/crash.rs"]
mod crash;
#[cfg(kai_postgres)]
#[path = "../api/delivery.rs"]
mod delivery;
#[cfg(kai_postgres)]
#[path = "../api/engine.rs"]
mod engine;

#[path = "../api/escalation.rs"]
mod escalation;
#[cfg(kai_postgres)]
#[path = "../api/helpers.rs"]
mod helpers;
#[cfg(kai_postgres)]
#[path = "../api/history.rs"]
mod history;
#[cfg(kai_postgres)]
#[path = "../api/instances.rs"]
mod instances;
#[cfg(kai_postgres)]
#[path = "../api/metrics.rs"]
mod metrics;
#[cfg(kai_postgres)]
#[path = "../api/notifications.rs"]
mod notifications;
#[cfg(kai_postgres)]
#[path = "../api/pages.rs"]
mod pages;
#[cfg(kai_postgres)]
#[path = "../api/phone_codes.rs"]
mod phone_codes;
#[cfg(kai_postgres)]
#[path = "../api/quiet_hours.rs"]
mod quiet_hours;
#[cfg(kai_postgres)]
#[path = "../api/retention.rs"]
mod retention;
#[cfg(kai_postgres)]
#[path = "../api/security.rs"]
mod security;
#[cfg(kai_postgres)]
#[path = "../api/sms_page.rs"]
mod sms_page;
#[cfg(kai_postgres)]
#[path = "../api/sms_replies.rs"]
mod sms_replies;
#[cfg(kai_postgres)]
#[path = "../api/sms_status.rs"]
mod sms_status;
#[cfg(kai_postgres)]
#[path = "../api/smtp.rs"]
mod smtp;
#[cfg(kai_postgres)]
#[path = "../api/team.rs"]
mod team;
#[cfg(kai_postgres)]
#[path = "../api/twilio.rs"]
mod twilio;
#[cfg(kai_postgres)]
#[path = "../api/webhooks.rs"]
mod webhooks;

/// The engine this copy of the suite runs on.
#[cfg(kai_postgres)]
pub const ENGINE: engine::Engine = engine::Engine::Postgres;

#[cfg(not(kai_postgres))]
#[test]
fn postgres_suite() {
    if std::env::var("KAI_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
        panic!("KAI_REQUIRE_POSTGRES=1 but PostgreSQL was not found: install the postgresql package");
    }
    eprintln!("skipped: install postgresql");
}
