//! The in-app inbox (`/notifications`) and the header bell, kept live by a server-sent event
//! stream: each open page hears within a moment when its person's inbox changes, without
//! holding a database connection while it waits.
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use futures_util::stream;
use tokio::sync::broadcast;

use super::error::AppError;
use super::extract::{CsrfForm, CurrentUser, NoFields, is_htmx};
use super::shell::Shell;
use super::{AppState, render, see_other};
use crate::clock::{format_utc, unix_now};
use crate::db;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(inbox)
        .service(inbox_card)
        .service(bell)
        .service(stream_changes)
        .service(mark_all_read)
        .service(mark_read);
}

pub struct Item {
    pub id: i64,
    pub title: String,
    pub body: String,
    pub link: String,
    pub when: String,
    pub read: bool,
}

impl Item {
    /// A lead alert that points at the person's claim page: the card offers "I'll call them".
    pub fn claimable(&self) -> bool {
        self.link.starts_with("/c/")
    }
}

/// The inbox list with its "mark all as read".
pub struct InboxView {
    pub csrf: String,
    pub unread: i64,
    pub items: Vec<Item>,
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    shell: Shell,
    inbox: InboxView,
    status: Option<String>,
}

/// The list alone, fetched again when the inbox changes while the page is open.
#[derive(Template)]
#[template(path = "inbox_card_response.html")]
struct InboxCard {
    inbox: InboxView,
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

async fn inbox_view(state: &AppState, me: &CurrentUser) -> Result<InboxView, AppError> {
    let mut conn = state.db.read().await?;
    let items = db::notifications::list(&mut conn, me.user.id, 100)
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
    // Read with the list, so the two agree even if an alert arrived since the page began.
    let unread = db::users::unread(&mut conn, me.user.id).await?;
    Ok(InboxView { csrf: me.csrf_token.clone(), unread, items })
}

#[get("/notifications")]
async fn inbox(me: CurrentUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let inbox = inbox_view(&state, &me).await?;
    render(StatusCode::OK, &InboxPage { shell: Shell::new(&me, "inbox"), inbox, status: None })
}

#[get("/notifications/card")]
async fn inbox_card(me: CurrentUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    render(StatusCode::OK, &InboxCard { inbox: inbox_view(&state, &me).await? })
}

/// The bell alone: what the stream sends, and the fallback the page polls when the stream is down.
#[get("/notifications/bell")]
async fn bell(me: CurrentUser) -> Result<HttpResponse, AppError> {
    render(StatusCode::OK, &Bell { unread: unread_label(me.unread), has_unread: me.unread > 0 })
}

/// Comments sent to keep an idle stream open through proxies.
const KEEP_ALIVE: Duration = Duration::from_secs(20);

/// `text/event-stream`: an event `bell` with the bell's HTML now, and again whenever this
/// person's inbox changes (an alert arrives, something is read). Waiting costs a subscription to
/// the writer's inbox signals, not a database connection.
#[get("/notifications/stream")]
async fn stream_changes(me: CurrentUser, state: web::Data<AppState>) -> HttpResponse {
    struct Listening {
        changes: broadcast::Receiver<i64>,
        state: web::Data<AppState>,
        user_id: i64,
        first: bool,
    }
    let start = Listening { changes: state.db.inbox_changes(), state: state.clone(), user_id: me.user.id, first: true };
    let events = stream::unfold(start, |mut l| async move {
        if !l.first {
            let changed = loop {
                match tokio::time::timeout(KEEP_ALIVE, l.changes.recv()).await {
                    Err(_) => break false,
                    Ok(Ok(user)) if user == l.user_id => break true,
                    Ok(Ok(_)) => continue,
                    // Fell behind: whatever was missed may have been ours.
                    Ok(Err(broadcast::error::RecvError::Lagged(_))) => break true,
                    Ok(Err(broadcast::error::RecvError::Closed)) => return None,
                }
            };
            if !changed {
                return Some((Ok::<_, actix_web::Error>(web::Bytes::from_static(b": still here\n\n")), l));
            }
        }
        l.first = false;
        let unread = match l.state.db.read().await {
            Ok(mut conn) => db::users::unread(&mut conn, l.user_id).await.unwrap_or(0),
            Err(_) => return Some((Ok(web::Bytes::from_static(b": busy\n\n")), l)),
        };
        let html = Bell { unread: unread_label(unread), has_unread: unread > 0 }.render().unwrap_or_default();
        let data: String = html.lines().map(|line| format!("data: {line}\n")).collect();
        Some((Ok(web::Bytes::from(format!("event: bell\n{data}\n"))), l))
    });
    HttpResponse::Ok().content_type("text/event-stream").insert_header(("X-Accel-Buffering", "no")).streaming(events)
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
