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
use crate::domain::events::Event;
use crate::domain::text::alert_text;

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
    let usage_events = db::events::recent_of_type(&state.pool, business, "usage.updated", 50).await?;
    let mut usage = None;
    let mut usage_alerts = Vec::new();
    for e in &usage_events {
        let Ok(Event::UsageUpdated(u)) = serde_json::from_str::<Event>(&e.payload) else { continue };
        if usage.is_none() {
            usage = Some(UsageView {
                percent: (u.minutes_used * 100).checked_div(u.included_minutes).unwrap_or(0),
                used: u.minutes_used,
                included: u.included_minutes,
                period: format!("{} to {}", u.period_start, u.period_end),
                mark_75: u.included_minutes * 75 / 100,
                mark_90: u.included_minutes * 90 / 100,
            });
        }
        if let Some(threshold) = e.usage_threshold {
            usage_alerts.push(Line {
                text: format!(
                    "{threshold}% alert: {} of {} minutes ({} to {})",
                    u.minutes_used, u.included_minutes, u.period_start, u.period_end
                ),
                when: format_utc(e.received_at_ms / 1000),
            });
        }
    }
    let failures = db::events::recent_of_type(&state.pool, business, "billing.payment_failed", 50)
        .await?
        .iter()
        .filter_map(|e| {
            let event = serde_json::from_str::<Event>(&e.payload).ok()?;
            let text = alert_text(&event, None, "")?;
            Some(Line { text: text.body, when: format_utc(e.received_at_ms / 1000) })
        })
        .collect();
    render(
        StatusCode::OK,
        &BillingPage { shell: Shell::new(&me, "billing"), usage, usage_alerts, failures, status: None },
    )
}
