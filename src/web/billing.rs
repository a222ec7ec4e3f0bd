//! Billing: minutes used against the plan, the usage alerts sent, payment failures.
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, web};
use askama::Template;

use super::error::AppError;
use super::extract::CurrentUser;
use super::shell::Shell;
use super::{AppState, render};
use crate::clock::format_utc;
use crate::db;
use crate::domain::events::{Event, EventType, Usage};
use crate::domain::text::alert_text;

/// Usage reports and payment failures shown, newest first.
const SHOWN: i64 = 50;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(billing);
}

pub struct UsageView {
    pub used: u64,
    pub included: u64,
    pub percent: u64,
    pub period: String,
    pub mark_75: u64,
    pub mark_90: u64,
}

impl UsageView {
    pub fn new(u: &Usage) -> Self {
        Self {
            percent: (u.minutes_used * 100).checked_div(u.included_minutes).unwrap_or(0),
            used: u.minutes_used,
            included: u.included_minutes,
            period: format!("{} to {}", u.period_start, u.period_end),
            mark_75: u.included_minutes * 75 / 100,
            mark_90: u.included_minutes * 90 / 100,
        }
    }
}

pub struct Line {
    pub text: String,
    pub when: String,
}

#[derive(Template)]
#[template(path = "billing.html")]
struct BillingPage {
    shell: Shell,
    usage: Option<UsageView>,
    usage_alerts: Vec<Line>,
    failures: Vec<Line>,
    status: Option<String>,
}

#[get("/billing")]
async fn billing(me: CurrentUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let business = me.business_id();
    let (usage_events, failure_events) = {
        let mut conn = state.db.read().await?;
        let usage = db::events::recent_of_type(&mut conn, business, EventType::UsageUpdated, SHOWN).await?;
        (usage, db::events::recent_of_type(&mut conn, business, EventType::PaymentFailed, SHOWN).await?)
    };
    let mut usage = None;
    let mut usage_alerts = Vec::new();
    for e in &usage_events {
        let Ok(Event::UsageUpdated(u)) = e.event() else { continue };
        if usage.is_none() {
            usage = Some(UsageView::new(&u));
        }
        if let Some(threshold) = e.usage_threshold() {
            usage_alerts.push(Line {
                text: format!(
                    "{threshold}% alert: {} of {} minutes ({} to {})",
                    u.minutes_used, u.included_minutes, u.period_start, u.period_end
                ),
                when: format_utc(e.received_at_ms / 1000),
            });
        }
    }
    let failures = failure_events
        .iter()
        .filter_map(|e| {
            let text = alert_text(&e.event().ok()?, None, "")?;
            Some(Line { text: text.body, when: format_utc(e.received_at_ms / 1000) })
        })
        .collect();
    render(
        StatusCode::OK,
        &BillingPage { shell: Shell::new(&me, "billing"), usage, usage_alerts, failures, status: None },
    )
}
