//! Routes, extractors and the view models of the templates. Handlers parse, call, render.
pub mod assets;
pub mod error;
pub mod extract;
pub mod throttle;

mod account;
mod alerts;
mod auth;
mod billing;
mod inbox;
mod leads;
mod notifications;
mod shell;
mod team;
mod unsubscribe;
mod webhooks;

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, web};
use askama::Template;
use sqlx::SqlitePool;

use crate::config::Config;
use crate::dispatch::email::EmailSender;
use error::AppError;

/// What every handler can reach.
pub struct AppState {
    pub pool: SqlitePool,
    pub config: Arc<Config>,
    pub mailer: Arc<dyn EmailSender>,
    pub throttle: throttle::LoginThrottle,
    /// Checked when an unknown email signs in, so that answer takes as long as a wrong password.
    pub dummy_password_hash: String,
    pub ingest: crate::db::writer::IngestQueue,
    pub secrets: webhooks::SecretCache,
    /// Wakes the dispatcher (a test alert, a retried delivery).
    pub wake_dispatcher: Arc<tokio::sync::Notify>,
    pub unsubscribe_key: Vec<u8>,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(healthz)
        .service(livez)
        .service(home)
        .service(assets::asset)
        .configure(auth::routes)
        .configure(notifications::routes)
        .configure(team::routes)
        .configure(account::routes)
        .configure(webhooks::routes)
        .configure(alerts::routes)
        .configure(inbox::routes)
        .configure(leads::routes)
        .configure(billing::routes)
        .configure(unsubscribe::routes);
}

#[get("/healthz")]
async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    match sqlx::query("SELECT 1").execute(&state.pool).await {
        Ok(_) => HttpResponse::Ok().content_type("text/plain").body("ok"),
        Err(_) => HttpResponse::ServiceUnavailable().content_type("text/plain").body("database unavailable"),
    }
}

/// Liveness: the process answers, without touching the database (also the benchmark's no-op).
#[get("/livez")]
async fn livez() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

#[get("/")]
async fn home() -> HttpResponse {
    see_other("/settings/notifications")
}

pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header(("Location", location)).finish()
}

/// Renders a template with a status of our choosing.
pub fn render(status: StatusCode, template: &impl Template) -> Result<HttpResponse, AppError> {
    let body = template.render().map_err(|e| AppError::Unexpected(e.into()))?;
    Ok(HttpResponse::build(status).content_type("text/html; charset=utf-8").body(body))
}

/// Runs CPU-heavy work (password hashing) off the async workers.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, AppError> {
    web::block(f).await.map_err(|e| AppError::Unexpected(anyhow::anyhow!("blocking task failed: {e}")))
}
