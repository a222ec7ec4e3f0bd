//! Sign in and sign out. The sign-in form needs no session: its security token lives in a
//! cookie (see `extract::public_csrf`), and a session row is created only at a successful sign-in.
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use super::extract::{CsrfForm, NoFields, PublicForm, sign_in};
use super::shell::PublicAssets;
use super::{AppState, render_public, retry_after_secs, see_other, throttle};
use crate::db;
use crate::domain::password;
use crate::web::error::AppError;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(login_page).service(login).service(logout);
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    assets: PublicAssets,
    csrf_token: String,
    email: String,
    error: Option<String>,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
struct LoginQuery {
    signed_out: Option<String>,
}

/// The sign-in page with `error` (if any), its status, and the form's security token.
fn login_answer(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    email: String,
    error: Option<String>,
    notice: Option<&'static str>,
) -> Result<HttpResponse, AppError> {
    render_public(req, state, status, |csrf_token| LoginPage {
        assets: PublicAssets::new(),
        csrf_token,
        email,
        error,
        notice,
    })
}

#[get("/login")]
async fn login_page(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, AppError> {
    if matches!(session.get::<i64>(db::sessions::USER_ID_KEY), Ok(Some(_))) {
        return Ok(see_other("/"));
    }
    let notice = query.signed_out.as_ref().map(|_| "You are signed out.");
    login_answer(&req, &state, StatusCode::OK, String::new(), None, notice)
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

#[post("/login")]
async fn login(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    PublicForm(form): PublicForm<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let email = form.email.trim().to_lowercase();
    let typed = form.email.trim().to_owned();
    let peer = req.peer_addr().map(|a| a.ip()).unwrap_or([0, 0, 0, 0].into());
    let forwarded = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let address = throttle::client_address(peer, forwarded, &state.config.trusted_proxies);
    let again =
        |status: StatusCode, error: String| login_answer(&req, &state, status, typed.clone(), Some(error), None);
    if email.is_empty() || form.password.is_empty() {
        return again(StatusCode::UNPROCESSABLE_ENTITY, "Enter your email and password.".into());
    }
    // The form again with a wait: 429 when this account or address must slow down, 503 when the
    // server is checking too many passwords at once.
    let wait = |status: StatusCode, secs: u64, message: String| -> Result<HttpResponse, AppError> {
        let mut response = again(status, message)?;
        response
            .headers_mut()
            .insert(actix_web::http::header::RETRY_AFTER, actix_web::http::header::HeaderValue::from(secs));
        Ok(response)
    };
    let attempt = match state.throttle.reserve(&email, address) {
        Ok(attempt) => attempt,
        Err(pause) => {
            state.metrics.sign_in_throttled();
            let secs = retry_after_secs(pause);
            let message = format!("Too many sign-in attempts. Wait {secs} seconds, then try again.");
            return wait(StatusCode::TOO_MANY_REQUESTS, secs, message);
        }
    };

    let found = db::users::find_for_login(&mut state.db.read().await?, &email).await?;
    let stored_hash = found.as_ref().map(|(_, hash)| hash.clone()).unwrap_or_else(|| state.dummy_password_hash.clone());
    let password = form.password.clone();
    let matches = match state.hasher.run(move || password::verify(&password, &stored_hash)).await {
        Ok(matches) => matches,
        Err(_) => {
            attempt.cancel();
            let message = "We are checking a lot of sign-ins right now. Wait 2 seconds, then try again.".to_owned();
            return wait(StatusCode::SERVICE_UNAVAILABLE, 2, message);
        }
    };
    let Some((user, _)) = found.filter(|_| matches) else {
        tracing::info!("failed sign-in");
        state.metrics.sign_in_failed();
        return again(StatusCode::UNAUTHORIZED, "That email and password do not match an account.".into());
    };

    attempt.succeeded();
    sign_in(&session, user.id)?;
    tracing::info!(user_id = user.id, "signed in");
    Ok(see_other("/"))
}

/// Signs out. A form from a session that has already ended (idle, elsewhere) just lands on the
/// sign-in page; a forged request against a live session is still refused.
#[post("/logout")]
async fn logout(session: Session, form: Result<CsrfForm<NoFields>, AppError>) -> Result<HttpResponse, AppError> {
    let signed_in = matches!(session.get::<i64>(db::sessions::USER_ID_KEY), Ok(Some(_)));
    match form {
        Err(refused) if signed_in => Err(refused),
        _ => {
            session.purge();
            Ok(see_other("/login?signed_out=1"))
        }
    }
}
