//! The in-app inbox (`/notifications`) and the header bell.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;

use super::error::AppError;
use super::extract::{CsrfForm, CurrentUser, NoFields, is_htmx};
use super::shell::Shell;
use super::{AppState, render, see_other};
use crate::clock::{format_utc, unix_now};
use crate::db;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(inbox).service(bell).service(mark_all_read).service(mark_read);
}

pub struct Item {
    pub id: i64,
    pub title: String,
    pub body: String,
    pub link: String,
    pub when: String,
    pub read: bool,
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    shell: Shell,
    items: Vec<Item>,
    status: Option<String>,
}

#[derive(Template)]
#[template(path = "bell.html")]
struct Bell {
    unread: String,
    has_unread: bool,
}

/// The bell's count: "99+" past what is counted.
pub fn unread_label(unread: i64) -> String {
    if unread >= db::notifications::UNREAD_SHOWN {
        format!("{}+", db::notifications::UNREAD_SHOWN - 1)
    } else {
        unread.to_string()
    }
}

#[get("/notifications")]
async fn inbox(me: CurrentUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let items = db::notifications::list(&mut *state.db.read().await?, me.user.id, 100)
        .await?
        .into_iter()
        .map(|n| Item {
            id: n.id,
            title: n.title,
            body: n.body,
            link: n.link,
            when: format_utc(n.created_at),
            read: n.read,
        })
        .collect();
    render(StatusCode::OK, &InboxPage { shell: Shell::new(&me, "inbox"), items, status: None })
}

/// The bell alone, polled by htmx so the count rises without a reload.
#[get("/notifications/bell")]
async fn bell(me: CurrentUser) -> Result<HttpResponse, AppError> {
    render(StatusCode::OK, &Bell { unread: unread_label(me.unread), has_unread: me.unread > 0 })
}

#[post("/notifications/read-all")]
async fn mark_all_read(
    me: CurrentUser,
    state: web::Data<AppState>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<HttpResponse, AppError> {
    let user_id = me.user.id;
    state.db.write(move |w| Box::pin(db::notifications::mark_all_read(w, user_id, unix_now()))).await?;
    Ok(see_other("/notifications"))
}

#[post("/notifications/{id}/read")]
async fn mark_read(
    req: HttpRequest,
    me: CurrentUser,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<HttpResponse, AppError> {
    let (user_id, id) = (me.user.id, path.into_inner());
    if !state.db.write(move |w| Box::pin(db::notifications::mark_read(w, user_id, id, unix_now()))).await? {
        return Err(AppError::NotFound);
    }
    if is_htmx(&req) {
        return Ok(HttpResponse::Ok().insert_header(("HX-Redirect", "/notifications")).finish());
    }
    Ok(see_other("/notifications"))
}
