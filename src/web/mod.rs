//! Routes, extractors and the view models of the templates. Handlers parse, call, render.
pub mod assets;
pub mod error;
pub mod extract;
pub mod hashing;
pub mod limits;
pub mod request_id;
pub mod throttle;

mod account;
mod auth;
mod billing;
mod claim;
mod dashboard;
mod inbox;
mod leads;
mod metrics;
mod notifications;
mod phone_confirm;
mod shell;
mod sms;
mod team;
mod twilio;
mod unsubscribe;
mod webhooks;

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, web};
use askama::Template;

use crate::config::Config;
use crate::db::{self, Db};
use crate::dispatch::Dispatcher;
use crate::dispatch::email::EmailSender;
use error::AppError;

/// What every handler can reach.
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub mailer: Arc<dyn EmailSender>,
    /// Texts the codes that confirm phone numbers (alerts go through the dispatcher).
    pub texter: Arc<dyn crate::dispatch::sms::SmsSender>,
    pub throttle: throttle::LoginThrottle,
    pub hasher: hashing::Hasher,
    /// Checked when an unknown email signs in, so that answer takes as long as a wrong password.
    pub dummy_password_hash: String,
    pub secrets: webhooks::SecretCache,
    pub dispatcher: Arc<Dispatcher>,
    pub unsubscribe_key: Vec<u8>,
    /// Signs the links that claim a lead from its alert.
    pub claim_key: Vec<u8>,
    /// Signs the security token of the forms shown before sign-in (login, invitation).
    pub csrf_key: Vec<u8>,
    pub limits: limits::Limits,
    /// What `/metrics` shows.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Set once the process is stopping: webhooks are refused, to be sent again.
    pub stopping: Arc<std::sync::atomic::AtomicBool>,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(healthz)
        .service(livez)
        .service(assets::asset)
        .configure(dashboard::routes)
        .configure(auth::routes)
        .configure(notifications::routes)
        .configure(team::routes)
        .configure(account::routes)
        .configure(webhooks::routes)
        .configure(twilio::routes)
        .configure(inbox::routes)
        .configure(leads::routes)
        .configure(billing::routes)
        .configure(sms::routes)
        .configure(unsubscribe::routes)
        .configure(claim::routes)
        .service(metrics::metrics);
}

#[get("/healthz")]
async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let engine = match state.db.engine() {
        db::Engine::Sqlite => "SQLite",
        db::Engine::Postgres => "PostgreSQL",
    };
    if state.db.healthy().await {
        HttpResponse::Ok().content_type("text/plain").body(format!("ok: {engine} answers"))
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body(format!("database unavailable: {engine} does not answer"))
    }
}

/// Liveness: the process answers, without touching the database (also the benchmark's no-op).
#[get("/livez")]
async fn livez() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header(("Location", location)).finish()
}

/// Renders a template with a status of our choosing.
pub fn render(status: StatusCode, template: &impl Template) -> Result<HttpResponse, AppError> {
    let body = template.render().map_err(|e| AppError::Unexpected(e.into()))?;
    Ok(HttpResponse::build(status).content_type("text/html; charset=utf-8").body(body))
}

/// Renders a page shown before sign-in (login, invitation): `page` gets its forms' security
/// token, and the cookie behind the token is set when the visitor has none yet.
pub fn render_public<T: Template>(
    req: &actix_web::HttpRequest,
    state: &AppState,
    status: StatusCode,
    page: impl FnOnce(String) -> T,
) -> Result<HttpResponse, AppError> {
    let (token, cookie) = extract::public_csrf(req, &state.csrf_key);
    let mut response = render(status, &page(token))?;
    if let Some(cookie) = cookie {
        response.add_cookie(&cookie).map_err(|e| AppError::Unexpected(e.into()))?;
    }
    Ok(response)
}

/// Seconds to put in `Retry-After` for a wait: whole seconds, rounded up, at least one.
pub fn retry_after_secs(wait: std::time::Duration) -> u64 {
    (wait.as_secs_f64().ceil() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn retry_after_rounds_up_so_an_obedient_client_is_not_early() {
        assert_eq!(super::retry_after_secs(Duration::from_millis(1990)), 2);
        assert_eq!(super::retry_after_secs(Duration::from_millis(2000)), 2);
        assert_eq!(super::retry_after_secs(Duration::from_millis(10)), 1);
        assert_eq!(super::retry_after_secs(Duration::ZERO), 1);
    }
}
