//! Integration tests: the real application on a random port, a fresh database each.
mod alerts;
mod auth;
mod bounded;
mod browser;
mod claims;
mod cli;
mod crash;
mod delivery;
mod engine;
mod escalation;
mod helpers;
mod history;
mod metrics;
mod notifications;
mod pages;
mod phone_codes;
mod quiet_hours;
mod retention;
mod security;
mod sms_page;
mod sms_replies;
mod sms_status;
mod smtp;
mod sqlite_only;
mod team;
mod twilio;
mod webhooks;

/// The engine this copy of the suite runs on (`tests/api_postgres` runs it on PostgreSQL).
pub const ENGINE: engine::Engine = engine::Engine::Sqlite;
