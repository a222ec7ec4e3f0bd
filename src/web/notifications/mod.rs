//! Dashboard > Settings > Notifications: business defaults, recipients, recent alerts, recent
//! changes and the Kai webhook. One module per part of the page; this one holds the page itself
//! and what every part answers with.
mod alerts;
mod defaults;
mod escalation;
mod quiet;
pub use quiet::Follow;
mod recipients;
mod webhook;

pub(crate) use alerts::event_title;

use std::future::Future;

use crate::db::Link;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, web};
use askama::Template;
use serde::Deserialize;

use super::error::AppError;
use super::extract::{CurrentUser, is_htmx};
use super::phone_confirm::{self, BUSINESS_PHONE, PhoneCheck, Tell};
use super::shell::Shell;
use super::{AppState, render};
use crate::clock::format_utc;
use crate::db;
use crate::domain::audit;
use crate::domain::quiet::{zone_names, zone_or_region};
use crate::domain::{BusinessDefaults, Role};

pub use alerts::AlertsView;
use defaults::DefaultsView;
use escalation::EscalationView;
use recipients::RecipientsView;
pub use webhook::{WebhookView, webhook_view};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(notifications_page)
        .service(defaults::save_defaults)
        .service(quiet::quiet_page)
        .service(quiet::save_business_zone)
        .service(quiet::save_update_window)
        .service(quiet::save_billing_urgent)
        .service(quiet::save_digest)
        .service(quiet::save_quiet)
        .service(defaults::send_business_code)
        .service(defaults::confirm_business_phone)
        .service(escalation::save_escalation)
        .service(recipients::add_recipient)
        .service(recipients::save_grid)
        .service(recipients::update_recipient)
        .service(recipients::remove_recipient)
        .service(recipients::threshold_preview)
        .service(alerts::alerts_fragment)
        .service(alerts::alert_log)
        .service(alerts::send_test)
        .service(alerts::retry_delivery)
        .service(webhook::rotate_secret);
}

pub struct AuditLine {
    pub text: String,
    pub when: String,
}

/// What an htmx answer updates besides its own fragment: the status line, the recent changes
/// when something was saved, and the recipients grid when the business defaults it shows moved.
#[derive(Default)]
pub struct Oob {
    pub status: Option<String>,
    pub audit: Option<Vec<AuditLine>>,
    pub recipients: Option<RecipientsView>,
    /// The escalation section's warnings, drawn again (the business defaults changed).
    pub escalation_warnings: Option<Vec<String>>,
    /// The business phone's confirmation, drawn again (the notification phone changed).
    pub business_phone: Option<BusinessPhone>,
}

/// The business's time zone: quiet hours of people without their own zone follow it.
pub struct BusinessZone {
    pub name: String,
    /// Not set by the owner: the one the business's region suggests.
    pub suggested: bool,
    pub zones: Vec<&'static str>,
    pub error: Option<String>,
}

impl BusinessZone {
    async fn load(conn: &mut impl Link, business_id: &str, editable: bool) -> Result<Self, AppError> {
        let (set, region) = db::businesses::time_zone(conn, business_id).await?;
        let zone = zone_or_region(set.as_deref(), &region);
        Ok(Self {
            name: zone.name().to_owned(),
            suggested: set.is_none(),
            zones: if editable { zone_names() } else { Vec::new() },
            error: None,
        })
    }
}

/// Whether the business's notification phone is confirmed, with its code forms (owners and
/// admins only; outside the defaults form, since a form cannot hold another).
pub struct BusinessPhone {
    pub check: Option<PhoneCheck>,
    pub csrf: String,
}

impl BusinessPhone {
    /// On the page's own connection: a page never holds one connection while it waits for another.
    pub async fn load(conn: &mut impl Link, me: &CurrentUser, tell: Tell) -> Result<Option<Self>, AppError> {
        if !me.manages_business() {
            return Ok(None);
        }
        let check = phone_confirm::check_view(conn, me.business_id(), BUSINESS_PHONE, me.region, tell).await?;
        Ok(Some(Self { check, csrf: me.csrf_token.clone() }))
    }
}

impl Oob {
    fn status(status: impl Into<String>) -> Self {
        Self { status: Some(status.into()), ..Self::default() }
    }

    /// The status, and the recent changes read again (something was saved).
    async fn saved(conn: &mut impl Link, business_id: &str, status: impl Into<String>) -> Result<Self, AppError> {
        let audit = Some(audit_lines(conn, business_id).await?);
        Ok(Self { status: Some(status.into()), audit, ..Self::default() })
    }
}

#[derive(Template)]
#[template(path = "notifications.html")]
pub struct NotificationsPage {
    shell: Shell,
    alerts: AlertsView,
    webhook: Option<WebhookView>,
    d: DefaultsView,
    business_phone: Option<BusinessPhone>,
    zone: BusinessZone,
    /// Lead updates this many minutes apart merge into one alert (as typed, with its error).
    window: (String, Option<String>),
    /// Failed payments get through quiet hours; whether `me` (an owner) may change that.
    billing_urgent: bool,
    is_owner: bool,
    escalation: EscalationView,
    recipients: RecipientsView,
    audit: Vec<AuditLine>,
    status: Option<String>,
}

impl NotificationsPage {
    /// The whole page as stored, for `me`.
    async fn load(state: &AppState, me: &CurrentUser, status: Option<String>) -> Result<Self, AppError> {
        let mut conn = state.db.read().await?;
        let defaults = db::defaults::of(&mut conn, me.business_id()).await?;
        Self::load_with(&mut conn, state, me, &defaults, status).await
    }

    async fn load_with(
        conn: &mut impl Link,
        state: &AppState,
        me: &CurrentUser,
        defaults: &BusinessDefaults,
        status: Option<String>,
    ) -> Result<Self, AppError> {
        let timing = db::defaults::timing(conn, me.business_id()).await?;
        Ok(Self {
            shell: Shell::new(me, "notifications"),
            alerts: alerts::alerts_view(conn, me).await?,
            webhook: webhook::webhook_view(conn, state, me).await?,
            d: DefaultsView::new(defaults, me.manages_business(), me.region),
            business_phone: BusinessPhone::load(conn, me, Tell::default()).await?,
            zone: BusinessZone::load(conn, me.business_id(), me.manages_business()).await?,
            window: ((timing.update_window_ms / 60_000).to_string(), None),
            billing_urgent: timing.billing_urgent,
            is_owner: me.user.role == Role::Owner,
            recipients: recipients::recipients_view(conn, me, defaults).await?,
            escalation: escalation::escalation_view(conn, me, defaults).await?,
            audit: audit_lines(conn, me.business_id()).await?,
            status,
        })
    }
}

async fn audit_lines(conn: &mut impl Link, business_id: &str) -> Result<Vec<AuditLine>, AppError> {
    let entries = db::audit::recent(conn, business_id, 20).await?;
    Ok(entries
        .iter()
        .map(|e| AuditLine {
            text: audit::describe(&e.change(), e.actor_name.as_deref().unwrap_or("Someone"), e.subject_name.as_deref()),
            when: format_utc(e.at),
        })
        .collect())
}

/// The answer to a form on this page: for htmx, the fragment it swaps in (only built then);
/// otherwise the whole page, with `adjust` applied (a message by a field, typed values kept).
async fn answer<F: Template>(
    req: &HttpRequest,
    state: &AppState,
    me: &CurrentUser,
    code: StatusCode,
    fragment: impl Future<Output = Result<F, AppError>>,
    status: Option<String>,
    adjust: impl FnOnce(&mut NotificationsPage),
) -> Result<HttpResponse, AppError> {
    if is_htmx(req) {
        return render(code, &fragment.await?);
    }
    let mut page = NotificationsPage::load(state, me, status).await?;
    adjust(&mut page);
    render(code, &page)
}

#[derive(Deserialize)]
struct PageQuery {
    saved: Option<String>,
}

#[get("/settings/notifications")]
async fn notifications_page(
    me: CurrentUser,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let status = match query.saved.as_deref() {
        Some("defaults") => Some("Business defaults saved."),
        Some("escalation") => Some("Escalation saved."),
        Some("phone") => Some("Notification phone confirmed: SMS alerts go to it from now on."),
        Some("quiet") => Some("Quiet hours saved."),
        Some("digest") => Some("Daily summary saved."),
        Some("zone") => Some("Time zone saved."),
        Some("window") => Some("Saved how lead updates merge."),
        Some("urgent") => Some("Saved: payment-failed alerts are urgent and get through quiet hours."),
        Some("not-urgent") => Some("Saved: payment-failed alerts wait for quiet hours to end, like the others."),
        Some("recipient" | "recipients") => Some("Recipient preferences saved."),
        Some("unchanged") => Some("No changes to save."),
        Some("added") => Some("Recipient added. Set their channels and threshold below."),
        Some("removed") => Some("Recipient removed."),
        Some("rotated") => {
            Some("New webhook secret created. Update it in Kai; the old one keeps working for 24 hours.")
        }
        Some("test") => Some("Test alert on its way. See Recent alerts."),
        _ => None,
    };
    let page = NotificationsPage::load(&state, &me, status.map(str::to_owned)).await?;
    render(StatusCode::OK, &page)
}
