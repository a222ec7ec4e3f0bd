//! "Recent alerts" on the Notifications page: per event, per person and channel, what was sent
//! or why not, so anyone can answer "why didn't I get this alert?". Also the actions around it:
//! send a test alert, retry a delivery that was given up.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use sqlx::SqliteConnection;

use crate::clock::{format_utc, unix_now_ms};
use crate::db;
use crate::db::deliveries::DeliveryRow;
use crate::db::events::EventRow;
use crate::db::writer::NewEvent;
use crate::domain::delivery::{DeliveryStatus, EventState};
use crate::domain::events::{Event, Lead};
use crate::domain::phone::local_format;
use crate::domain::{Channel, Region};
use crate::tokens;
use crate::web::error::AppError;
use crate::web::extract::{CsrfForm, CurrentUser, NoFields, is_htmx};
use crate::web::limits::wait_words;
use crate::web::{AppState, render, retry_after_secs, see_other};

/// Events shown, and decisions about them read at most (15 people × 3 channels each, and more).
const EVENTS_SHOWN: i64 = 10;
const DECISIONS_READ: i64 = 1000;

pub struct DecisionView {
    pub id: i64,
    pub who: String,
    pub channel: String,
    pub status: &'static str,
    pub label: &'static str,
    pub detail: String,
    pub can_retry: bool,
}

pub struct AlertEventView {
    pub title: String,
    pub when: String,
    pub note: Option<String>,
    pub decisions: Vec<DecisionView>,
}

pub struct AlertsView {
    pub csrf: String,
    pub events: Vec<AlertEventView>,
    pub only_mine: bool,
}

#[derive(Template)]
#[template(path = "notifications/alerts.html")]
struct AlertsFragment {
    alerts: AlertsView,
}

fn event_title(event: &EventRow) -> String {
    let lead = |what: &str, l: Lead| {
        let score = l.score.map(|s| format!("score {s}")).unwrap_or_else(|| "no score".into());
        format!("{what}: {} ({score})", l.name.unwrap_or_else(|| "Unknown caller".into()))
    };
    match event.event() {
        Ok(Event::LeadCreated(l)) => lead("New lead", l),
        Ok(Event::LeadUpdated(l)) => lead("Lead update", l),
        Ok(Event::UsageUpdated(u)) => format!(
            "Usage: {} of {} minutes{}",
            u.minutes_used,
            u.included_minutes,
            event.usage_threshold().map(|t| format!(" ({t}% alert)")).unwrap_or_default()
        ),
        Ok(Event::PaymentFailed(p)) => format!("Payment failed: invoice {}", p.invoice_id),
        Ok(Event::Test { .. }) => "Test alert".into(),
        Ok(Event::Unknown { type_name }) => format!("Event {type_name}"),
        Err(_) => format!("Event {}", event.type_name),
    }
}

fn decision_view(d: &DeliveryRow, manages: bool, region: Region) -> DecisionView {
    let at = |ms: Option<i64>| ms.map(|ms| format_utc(ms / 1000)).unwrap_or_default();
    let reason = d.reason.clone().unwrap_or_default();
    let status = d.status();
    let (label, detail) = match status {
        DeliveryStatus::Sent => {
            let to = match (d.channel(), d.address.as_deref()) {
                (Some(Channel::Sms), Some(number)) => format!(" to {}", local_format(number, region)),
                (Some(Channel::Email), Some(address)) => format!(" to {address}"),
                _ => String::new(),
            };
            let id = d.provider_id.as_deref().map(|p| format!(" ({p})")).unwrap_or_default();
            ("Sent", format!("{}{to}{id}", at(d.sent_at_ms)))
        }
        DeliveryStatus::Skipped => ("Not sent", reason),
        DeliveryStatus::Failed => ("Failed", reason),
        DeliveryStatus::Dead => ("Gave up", reason),
        DeliveryStatus::Pending if d.next_attempt_ms.is_none() || reason.is_empty() => {
            ("Sending", "on its way".to_owned())
        }
        DeliveryStatus::Pending => {
            ("Retrying", format!("{reason}; next try {} (attempt {} so far)", at(d.next_attempt_ms), d.attempts))
        }
    };
    DecisionView {
        id: d.id,
        who: d.person_name.clone().unwrap_or_else(|| "Business".into()),
        channel: d.channel().map(Channel::label).unwrap_or("All channels").into(),
        status: status.code(),
        label,
        detail,
        can_retry: manages && matches!(status, DeliveryStatus::Dead | DeliveryStatus::Failed),
    }
}

/// The last ten events and every decision about them; members see the rows about themselves.
pub async fn alerts_view(conn: &mut SqliteConnection, me: &CurrentUser) -> Result<AlertsView, AppError> {
    let manages = me.manages_business();
    let events = db::events::recent(conn, me.business_id(), EVENTS_SHOWN).await?;
    let (Some(newest), Some(oldest)) = (events.first(), events.last()) else {
        return Ok(AlertsView { csrf: me.csrf_token.clone(), events: Vec::new(), only_mine: !manages });
    };
    let rows = db::deliveries::for_events(conn, me.business_id(), oldest.id, newest.id, DECISIONS_READ).await?;
    let views = events
        .iter()
        .map(|e| AlertEventView {
            title: event_title(e),
            when: format_utc(e.received_at_ms / 1000),
            note: match e.state() {
                EventState::Received => Some("Waiting to be processed.".into()),
                _ => e.note.clone(),
            },
            decisions: rows
                .iter()
                .filter(|d| d.event_id == e.id)
                .filter(|d| manages || d.user_id == Some(me.user.id) || d.channel().is_none())
                .map(|d| decision_view(d, manages, me.region))
                .collect(),
        })
        .collect();
    Ok(AlertsView { csrf: me.csrf_token.clone(), events: views, only_mine: !manages })
}

/// Polled by the page so results of new events and test alerts appear without a reload.
#[get("/settings/notifications/alerts")]
pub async fn alerts_fragment(me: CurrentUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let alerts = alerts_view(&mut *state.db.read().await?, &me).await?;
    render(StatusCode::OK, &AlertsFragment { alerts })
}

#[derive(Template)]
#[template(path = "notifications/test_sent.html")]
struct TestSent {
    alerts: AlertsView,
    status: String,
}

/// Sends a test alert to one person's channels, through the same path as a lead (stored, planned
/// and sent at once). At most a few per person per minute.
#[post("/settings/notifications/recipients/{id}/test")]
pub async fn send_test(
    req: HttpRequest,
    me: CurrentUser,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<HttpResponse, AppError> {
    let recipient = db::recipients::get(&mut *state.db.read().await?, me.business_id(), path.into_inner())
        .await?
        .ok_or(AppError::NotFound)?;
    if recipient.user_id != me.user.id && !me.manages_business() {
        return Err(AppError::Forbidden("You can only send a test alert to yourself.".into()));
    }
    let whose =
        if recipient.user_id == me.user.id { "your".to_owned() } else { format!("{}\u{2019}s", recipient.name) };
    if let Err(wait) = state.limits.test_alerts.hit(&format!("{}:{}", me.business_id(), recipient.user_id)) {
        return Err(AppError::TooMany {
            message: format!(
                "{} test alerts to {whose} channels in the last minute is the most we send. Wait {}, then try again.",
                state.limits.test_alerts.max(),
                wait_words(wait)
            ),
            retry_after: retry_after_secs(wait),
        });
    }
    let test = NewEvent::new(
        me.business_id().to_owned(),
        format!("test_{}", tokens::random_token()),
        Event::Test { user_id: recipient.user_id },
        unix_now_ms(),
    );
    state.db.ingest(test).await.map_err(|_| AppError::Busy)?;
    if is_htmx(&req) {
        let alerts = alerts_view(&mut *state.db.read().await?, &me).await?;
        let status = format!("Test alert on its way to {whose} channels. See Recent alerts.");
        return render(StatusCode::OK, &TestSent { alerts, status });
    }
    Ok(see_other("/settings/notifications?saved=test#alerts"))
}

#[post("/settings/notifications/deliveries/{id}/retry")]
pub async fn retry_delivery(
    me: CurrentUser,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<HttpResponse, AppError> {
    me.require_manager("retry deliveries")?;
    let (business, id, now) = (me.business_id().to_owned(), path.into_inner(), unix_now_ms());
    let queued = state
        .db
        .write(move |w| Box::pin(async move { db::deliveries::retry_ended(w, &business, id, now).await }))
        .await?;
    if !queued {
        return Err(AppError::NotFound);
    }
    state.dispatcher.wake();
    Ok(see_other("/settings/notifications#alerts"))
}
