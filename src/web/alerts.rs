//! "Recent alerts" on the Notifications page: per event, per person and channel, what was sent
//! or why not, so anyone can answer "why didn't I get this alert?". Also the actions around it:
//! send a test alert, retry a delivery that was given up, rotate the webhook secret.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;

use super::error::AppError;
use super::extract::{CsrfForm, CurrentUser, NoFields, is_htmx};
use super::{AppState, render, see_other};
use crate::clock::{format_utc, unix_now, unix_now_ms};
use crate::db;
use crate::db::deliveries::DeliveryRow;
use crate::domain::audit::Change;
use crate::domain::events::Event;
use crate::tokens;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(alerts_fragment).service(send_test).service(retry_delivery).service(rotate_secret);
}

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

fn event_title(event: &db::events::EventRow) -> String {
    match serde_json::from_str::<Event>(&event.payload) {
        Ok(Event::LeadCreated(l)) | Ok(Event::LeadUpdated(l)) => {
            let what = if event.type_name == "lead.created" { "New lead" } else { "Lead update" };
            let score = l.score.map(|s| format!("score {s}")).unwrap_or_else(|| "no score".into());
            format!("{what}: {} ({score})", l.name.unwrap_or_else(|| "Unknown caller".into()))
        }
        Ok(Event::UsageUpdated(u)) => format!(
            "Usage: {} of {} minutes{}",
            u.minutes_used,
            u.included_minutes,
            event.usage_threshold.map(|t| format!(" ({t}% alert)")).unwrap_or_default()
        ),
        Ok(Event::PaymentFailed(p)) => format!("Payment failed: invoice {}", p.invoice_id),
        Ok(Event::Test { .. }) => "Test alert".into(),
        Ok(Event::Unknown { type_name }) => format!("Event {type_name}"),
        Err(_) => format!("Event {}", event.type_name),
    }
}

fn channel_label(channel: Option<&str>) -> &'static str {
    match channel {
        Some("email") => "Email",
        Some("sms") => "SMS",
        Some("in_app") => "In-app",
        _ => "All channels",
    }
}

fn decision_view(d: &DeliveryRow, manages: bool) -> DecisionView {
    let at = |ms: Option<i64>| ms.map(|ms| format_utc(ms / 1000)).unwrap_or_default();
    let reason = d.reason.clone().unwrap_or_default();
    let (status, label, detail) = match d.status.as_str() {
        "sent" => {
            let to = d
                .address
                .as_deref()
                .filter(|a| !a.starts_with("user:"))
                .map(|a| format!(" to {a}"))
                .unwrap_or_default();
            let id = d.provider_id.as_deref().map(|p| format!(" ({p})")).unwrap_or_default();
            ("sent", "Sent", format!("{}{to}{id}", at(d.sent_at_ms)))
        }
        "skipped" => ("skipped", "Not sent", reason),
        "failed" => ("failed", "Failed", reason),
        "dead" => ("dead", "Gave up", reason),
        _ if d.attempts == 0 => ("pending", "Sending", "on its way".to_owned()),
        _ => (
            "pending",
            "Retrying",
            format!("{reason}; next try {} (attempt {} so far)", at(d.next_attempt_ms), d.attempts),
        ),
    };
    DecisionView {
        id: d.id,
        who: d.person_name.clone().unwrap_or_else(|| "Business".into()),
        channel: channel_label(d.channel.as_deref()).into(),
        status,
        label,
        detail,
        can_retry: manages && matches!(d.status.as_str(), "dead" | "failed"),
    }
}

/// The last ten events and every decision about them; members see the rows about themselves.
pub async fn alerts_view(state: &AppState, me: &CurrentUser) -> Result<AlertsView, AppError> {
    let events = db::events::recent(&state.pool, me.business_id(), 10).await?;
    let (Some(newest), Some(oldest)) = (events.first(), events.last()) else {
        return Ok(AlertsView { csrf: me.csrf_token.clone(), events: Vec::new(), only_mine: !me.manages_business() });
    };
    let rows = db::deliveries::for_events(&state.pool, me.business_id(), oldest.id, newest.id).await?;
    let manages = me.manages_business();
    let views = events
        .iter()
        .map(|e| AlertEventView {
            title: event_title(e),
            when: format_utc(e.received_at_ms / 1000),
            note: match e.state.as_str() {
                "received" => Some("Waiting to be processed.".into()),
                _ => e.note.clone(),
            },
            decisions: rows
                .iter()
                .filter(|d| d.event_id == e.id)
                .filter(|d| manages || d.user_id == Some(me.user.id) || d.channel.is_none())
                .map(|d| decision_view(d, manages))
                .collect(),
        })
        .collect();
    Ok(AlertsView { csrf: me.csrf_token.clone(), events: views, only_mine: !manages })
}

/// Polled by the page so results of new events and test alerts appear without a reload.
#[get("/settings/notifications/alerts")]
async fn alerts_fragment(me: CurrentUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    render(StatusCode::OK, &AlertsFragment { alerts: alerts_view(&state, &me).await? })
}

#[post("/settings/notifications/recipients/{id}/test")]
async fn send_test(
    req: HttpRequest,
    me: CurrentUser,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<HttpResponse, AppError> {
    let recipient =
        db::recipients::get(&state.pool, me.business_id(), path.into_inner()).await?.ok_or(AppError::NotFound)?;
    if recipient.user_id != me.user.id && !me.manages_business() {
        return Err(AppError::Forbidden("You can only send a test alert to yourself.".into()));
    }
    let payload = serde_json::to_string(&Event::Test { user_id: recipient.user_id }).map_err(anyhow::Error::from)?;
    db::events::insert_test(&state.pool, me.business_id(), &payload, unix_now_ms()).await?;
    state.wake_dispatcher.notify_one();
    if is_htmx(&req) {
        let alerts = alerts_view(&state, &me).await?;
        let whose =
            if recipient.user_id == me.user.id { "your".to_owned() } else { format!("{}\u{2019}s", recipient.name) };
        return render(
            StatusCode::OK,
            &TestSent { alerts, status: format!("Test alert on its way to {whose} channels. See Recent alerts.") },
        );
    }
    Ok(see_other("/settings/notifications#alerts"))
}

#[derive(Template)]
#[template(path = "notifications/test_sent.html")]
struct TestSent {
    alerts: AlertsView,
    status: String,
}

#[post("/settings/notifications/deliveries/{id}/retry")]
async fn retry_delivery(
    me: CurrentUser,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<HttpResponse, AppError> {
    me.require_manager("retry deliveries")?;
    if !db::deliveries::retry_dead(&state.pool, me.business_id(), path.into_inner(), unix_now_ms()).await? {
        return Err(AppError::NotFound);
    }
    state.wake_dispatcher.notify_one();
    Ok(see_other("/settings/notifications#alerts"))
}

#[post("/settings/notifications/webhook-secret")]
async fn rotate_secret(
    me: CurrentUser,
    state: web::Data<AppState>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<HttpResponse, AppError> {
    me.require_manager("rotate the webhook secret")?;
    let now = unix_now();
    let mut tx = db::begin_write(&state.pool).await?;
    db::businesses::rotate_secret(&mut tx, me.business_id(), &tokens::webhook_secret(), now + 24 * 3600).await?;
    let change = Change::new("webhook.rotated", None, None);
    db::audit::record(&mut tx, me.business_id(), Some(me.user.id), None, &[change], now).await?;
    tx.commit().await?;
    state.secrets.forget(me.business_id());
    Ok(see_other("/settings/notifications?saved=rotated#webhook"))
}
