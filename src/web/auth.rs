use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use super::extract::{CsrfForm, NoFields, csrf_token, sign_in};
use super::shell::PublicAssets;
use super::{AppState, blocking, render, see_other};
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

#[get("/login")]
async fn login_page(session: Session, query: web::Query<LoginQuery>) -> Result<HttpResponse, AppError> {
    if matches!(session.get::<i64>(db::sessions::USER_ID_KEY), Ok(Some(_))) {
        return Ok(see_other("/settings/notifications"));
    }
    let page = LoginPage {
        assets: PublicAssets::new(),
        csrf_token: csrf_token(&session)?,
        email: String::new(),
        error: None,
        notice: query.signed_out.as_ref().map(|_| "You are signed out."),
    };
    render(StatusCode::OK, &page)
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
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let email = form.email.trim().to_lowercase();
    let address = req.peer_addr().map(|a| a.ip()).unwrap_or([0, 0, 0, 0].into());
    let again = |error: String, status: StatusCode| -> Result<HttpResponse, AppError> {
        let page = LoginPage {
            assets: PublicAssets::new(),
            csrf_token: csrf_token(&session)?,
            email: form.email.trim().to_owned(),
            error: Some(error),
            notice: None,
        };
        render(status, &page)
    };
    if email.is_empty() || form.password.is_empty() {
        return again("Enter your email and password.".into(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    if let Some(wait) = state.throttle.check(&email, address) {
        let secs = wait.as_secs().max(1);
        let mut response = again(
            format!("Too many sign-in attempts. Wait {secs} seconds, then try again."),
            StatusCode::TOO_MANY_REQUESTS,
        )?;
        response
            .headers_mut()
            .insert(actix_web::http::header::RETRY_AFTER, actix_web::http::header::HeaderValue::from(secs));
        return Ok(response);
    }

    let found = db::users::find_for_login(&state.pool, &email).await?;
    let stored_hash =
        found.as_ref().and_then(|(_, hash)| hash.clone()).unwrap_or_else(|| state.dummy_password_hash.clone());
    let password = form.password.clone();
    let matches = blocking(move || password::verify(&password, &stored_hash)).await?;
    let user = match found {
        Some((user, Some(_))) if matches => user,
        _ => {
            state.throttle.failed(&email, address);
            tracing::info!("failed sign-in");
            return again("That email and password do not match an account.".into(), StatusCode::UNAUTHORIZED);
        }
    };

    state.throttle.succeeded(&email);
    sign_in(&session, user.id)?;
    tracing::info!(user_id = user.id, "signed in");
    Ok(see_other("/settings/notifications"))
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
