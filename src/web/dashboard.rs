//! The Dashboard (`/`): what happened in the last day and week, the minutes used, what needs
//! attention, and for a business still setting up, the steps left — each gone once done.
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, web};
use askama::Template;

use super::billing::UsageView;
use super::error::AppError;
use super::extract::CurrentUser;
use super::notifications::{WebhookView, webhook_view};
use super::shell::Shell;
use super::{AppState, render};
use crate::clock::{format_utc, unix_now};
use crate::db;
use crate::domain::Channel;
use crate::domain::events::{Event, EventType};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(dashboard);
}

const DAY: i64 = 24 * 3600;
/// Failed deliveries listed at most (the alert log has the rest).
const ATTENTION_SHOWN: i64 = 5;

/// Leads and alerts sent in one window.
pub struct Window {
    pub label: &'static str,
    pub leads: i64,
    pub alerts: i64,
}

/// Something to fix.
pub struct Attention {
    pub text: String,
    pub href: &'static str,
    pub link: &'static str,
}

/// A set-up step not done yet.
pub struct Step {
    pub text: &'static str,
    pub href: &'static str,
    pub link: &'static str,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    shell: Shell,
    windows: Vec<Window>,
    usage: Option<UsageView>,
    attention: Vec<Attention>,
    steps: Vec<Step>,
    /// Shown with the step "give Kai the webhook", to the people who manage the business.
    webhook: Option<WebhookView>,
    status: Option<String>,
}

#[get("/")]
async fn dashboard(me: CurrentUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let business = me.business_id();
    let mut conn = state.db.read().await?;
    let now = unix_now();
    let mut windows = Vec::new();
    for (label, secs) in [("Last 24 hours", DAY), ("Last 7 days", 7 * DAY)] {
        let since = now - secs;
        let leads = db::leads::count_since(&mut conn, business, since).await?;
        let alerts = match db::events::first_since(&mut conn, business, since * 1000).await? {
            Some(first) => db::deliveries::sent_from(&mut conn, business, first).await?,
            None => 0,
        };
        windows.push(Window { label, leads, alerts });
    }
    let usage = db::events::recent_of_type(&mut conn, business, EventType::UsageUpdated, 1).await?.first().and_then(
        |e| match e.event() {
            Ok(Event::UsageUpdated(u)) => Some(UsageView::new(&u)),
            _ => None,
        },
    );

    let mut attention = Vec::new();
    if me.manages_business() {
        for d in db::deliveries::needing_attention(&mut conn, business, ATTENTION_SHOWN).await? {
            let who = d.person_name.clone().unwrap_or_else(|| "the business".into());
            let channel = d.channel().map(Channel::label).unwrap_or("Alert");
            let why = d.reason.clone().unwrap_or_default();
            let when = d.sent_at_ms.or(d.next_attempt_ms).map(|ms| format_utc(ms / 1000)).unwrap_or_default();
            let text = format!(
                "{channel} to {who} did not go through{}: {why}",
                if when.is_empty() { String::new() } else { format!(" ({when})") }
            );
            attention.push(Attention {
                text,
                href: "/settings/notifications/log?outcome=failed",
                link: "Retry it from the alert log",
            });
        }
        for (name, why) in db::users::refused_phones(&mut conn, business).await? {
            attention.push(Attention {
                text: format!("{name}\u{2019}s phone: {why}. No texts go to it until it is changed."),
                href: "/team",
                link: "See the team",
            });
        }
    }

    let mut steps = Vec::new();
    if me.manages_business() {
        let defaults = db::defaults::of(&mut conn, business).await?;
        if defaults.notification_email.is_none() {
            steps.push(Step {
                text: "Set the notification email, where business alerts go.",
                href: "/settings/notifications#defaults",
                link: "Notification settings",
            });
        }
        if defaults.channels.sms && defaults.notification_phone.is_none() {
            steps.push(Step {
                text: "Enter the notification phone: SMS is on, with nowhere to send it.",
                href: "/settings/notifications#defaults",
                link: "Notification settings",
            });
        }
        if db::users::list_active(&mut conn, business).await?.len() < 2 {
            steps.push(Step {
                text: "Add a teammate, so the right person hears about each lead.",
                href: "/team",
                link: "Team Members",
            });
        }
        if !db::events::heard_from_kai(&mut conn, business).await? {
            steps.push(Step {
                text: "Give Kai your webhook URL and secret (below); this step is done when Kai\u{2019}s first event arrives.",
                href: "/settings/notifications#webhook",
                link: "Webhook settings",
            });
        }
    }
    let webhook = match steps.iter().any(|s| s.href.ends_with("#webhook")) {
        true => webhook_view(&mut conn, &state, &me).await?,
        false => None,
    };
    drop(conn);
    let page =
        DashboardPage { shell: Shell::new(&me, "dashboard"), windows, usage, attention, steps, webhook, status: None };
    render(StatusCode::OK, &page)
}
