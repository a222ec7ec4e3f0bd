//! One-click unsubscribe from alert emails (RFC 8058): the link's token names the person and the
//! alert kind. A GET only shows a confirmation button; the change happens on POST.
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;

use super::error::AppError;
use super::shell::PublicAssets;
use super::{AppState, render};
use crate::clock::unix_now;
use crate::db;
use crate::domain::{AlertKind, audit::Change, unsubscribe};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(confirm).service(unsubscribe_now);
}

#[derive(Template)]
#[template(path = "unsubscribe.html")]
struct UnsubscribePage {
    assets: PublicAssets,
    token: String,
    what: String,
    done: bool,
}

fn check(state: &AppState, token: &str) -> Result<(i64, AlertKind), AppError> {
    unsubscribe::verify(&state.unsubscribe_key, token).ok_or_else(|| {
        AppError::BadRequest(
            "This unsubscribe link is not valid. Change your alerts on the Notifications page instead.".into(),
        )
    })
}

#[get("/unsubscribe/{token}")]
async fn confirm(state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    let (_, kind) = check(&state, &token)?;
    render(
        StatusCode::OK,
        &UnsubscribePage { assets: PublicAssets::new(), token, what: kind.phrase().into(), done: false },
    )
}

#[post("/unsubscribe/{token}")]
async fn unsubscribe_now(state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    let (user_id, kind) = check(&state, &token)?;
    state
        .db
        .write(move |w| {
            Box::pin(async move {
                let Some(mut recipient) = db::recipients::of_user(w, user_id).await? else { return Ok(()) };
                let business_id = db::users::business_of(w, user_id).await?;
                if recipient.prefs.kinds.get(kind) {
                    recipient.prefs.kinds.set(kind, false);
                    db::recipients::update(w, &business_id, recipient.id, &recipient.prefs).await?;
                    let change = Change::new(
                        format!("recipient.{}", kind.field()),
                        Some("on".into()),
                        Some("off (email link)".into()),
                    );
                    db::audit::record(w, &business_id, Some(user_id), Some(user_id), &[change], unix_now()).await?;
                }
                Ok(())
            })
        })
        .await?;
    render(
        StatusCode::OK,
        &UnsubscribePage { assets: PublicAssets::new(), token, what: kind.phrase().into(), done: true },
    )
}
