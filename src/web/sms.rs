//! SMS: every text the business sent (members: the ones to them), whether the carrier delivered
//! it and why not, the numbers that cannot take texts (opted out, not confirmed), and the texts
//! people sent back. Pages go by position (`?before=` a text), newest first.
use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, web};
use askama::Template;
use serde::Deserialize;

use super::error::AppError;
use super::extract::CurrentUser;
use super::notifications::event_title;
use super::shell::Shell;
use super::{AppState, render};
use crate::clock::format_utc;
use crate::db;
use crate::db::sms::{SentText, TextFilter};
use crate::domain::delivery::DeliveryStatus;
use crate::domain::phone::local_format;
use crate::domain::sms_inbound::INBOUND_PATH;
use crate::domain::sms_status::{CarrierStatus, error_words};

const PER_PAGE: i64 = 50;
const REPLIES_SHOWN: i64 = 20;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(sms_page);
}

pub struct TextView {
    pub when: String,
    pub to: String,
    pub alert: String,
    pub status: String,
    /// "delivered", "failed" or "" for the look.
    pub class: &'static str,
    pub segments: String,
}

pub struct NumberView {
    pub who: String,
    pub phone: String,
    pub why: String,
}

pub struct ReplyView {
    pub when: String,
    pub from: String,
    pub body: String,
    pub outcome: String,
}

#[derive(Template)]
#[template(path = "sms.html")]
struct SmsPage {
    shell: Shell,
    manages: bool,
    /// Where texts come from, in words.
    sender: String,
    /// For owners and admins: the URL to give Twilio for texts back.
    inbound_url: Option<String>,
    failures: bool,
    texts: Vec<TextView>,
    older: Option<String>,
    paged: bool,
    numbers: Vec<NumberView>,
    replies: Vec<ReplyView>,
    status: Option<String>,
}

#[derive(Deserialize)]
struct Query {
    /// `failed`: only the texts that did not arrive.
    show: Option<String>,
    /// Texts older than this one (the next page).
    before: Option<String>,
}

/// Where a text stands, in words, and its look.
fn status_of(t: &SentText) -> (String, &'static str) {
    let reason = t.reason.clone().unwrap_or_default();
    match DeliveryStatus::from_code(&t.status) {
        Some(DeliveryStatus::Sent) => match t.carrier_status() {
            Some(c) if c.failed() => {
                let why = t.carrier_error.map(error_words).unwrap_or_else(|| c.words().to_owned());
                (format!("Not delivered: {why}"), "failed")
            }
            Some(CarrierStatus::Delivered) => ("Delivered to the phone".into(), "delivered"),
            Some(c) => (format!("Sent, {}", c.words()), ""),
            None => ("Sent".into(), ""),
        },
        Some(DeliveryStatus::Failed) => (format!("Failed: {reason}"), "failed"),
        Some(DeliveryStatus::Dead) => (format!("Gave up: {reason}"), "failed"),
        Some(DeliveryStatus::Pending) if reason.is_empty() => ("Sending".into(), ""),
        Some(DeliveryStatus::Pending) => (format!("Will try again: {reason}"), ""),
        _ => (t.status.clone(), ""),
    }
}

#[get("/sms")]
async fn sms_page(
    me: CurrentUser,
    state: web::Data<AppState>,
    query: web::Query<Query>,
) -> Result<HttpResponse, AppError> {
    let failures = match query.show.as_deref() {
        None | Some("" | "all") => false,
        Some("failed") => true,
        Some(_) => return Err(AppError::BadRequest("Show either all texts or the ones not delivered.".into())),
    };
    let before = match query.before.as_deref() {
        None | Some("") => None,
        Some(id) => Some(id.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
            AppError::BadRequest("This page link is not valid. Open SMS again to start from the newest.".into())
        })?),
    };
    let manages = me.manages_business();
    let business = me.business_id();
    let region = me.region;
    let mut conn = state.db.read().await?;
    let filter = TextFilter { user_id: (!manages).then_some(me.user.id), failures, before };
    let mut rows = db::sms::texts(&mut conn, business, filter, PER_PAGE + 1).await?;
    let more = rows.len() as i64 > PER_PAGE;
    rows.truncate(PER_PAGE as usize);
    let ids: Vec<i64> = rows.iter().map(|t| t.event_id).collect();
    let events: HashMap<i64, String> =
        db::events::in_business(&mut conn, business, &ids).await?.iter().map(|e| (e.id, event_title(e))).collect();
    let mut numbers = db::sms::blocked_numbers(&mut conn, business).await?;
    if !manages {
        numbers.retain(|n| n.user_id == me.user.id);
    }
    let phones: Vec<String> = if manages {
        db::sms::phones_of(&mut conn, business).await?
    } else {
        me.user.phone.iter().map(|p| p.as_str().to_owned()).collect()
    };
    let replies = db::sms::inbound_from(&mut conn, &phones, REPLIES_SHOWN).await?;
    drop(conn);

    let texts = rows
        .iter()
        .map(|t| {
            let (status, class) = status_of(t);
            let number = t.address.as_deref().map(|a| local_format(a, region)).unwrap_or_default();
            let to = match &t.person_name {
                Some(name) => format!("{name}, {number}"),
                None => format!("Business phone, {number}"),
            };
            TextView {
                when: format_utc((t.sent_at_ms.unwrap_or(t.created_at_ms)) / 1000),
                to,
                alert: events.get(&t.event_id).cloned().unwrap_or_else(|| "Alert".into()),
                status,
                class,
                segments: t.segments.map(|s| s.to_string()).unwrap_or_else(|| "\u{2013}".into()),
            }
        })
        .collect();
    let numbers = numbers
        .into_iter()
        .map(|n| NumberView {
            who: n.name,
            phone: local_format(&n.phone, region),
            why: match (n.opted_out, n.opted_out_at_ms) {
                (Some(word), Some(at)) => {
                    format!("Replied {word} on {}: no texts until it replies START.", format_utc(at / 1000))
                }
                _ if n.user_id == 0 => "Not confirmed: an owner or admin enters the code on Notifications.".into(),
                _ => "Not confirmed: its owner enters the code texted to it in Account.".into(),
            },
        })
        .collect();
    let replies = replies
        .into_iter()
        .map(|r| ReplyView {
            when: format_utc(r.received_at_ms / 1000),
            from: local_format(&r.from_phone, region),
            body: r.body,
            outcome: r.outcome,
        })
        .collect();
    let sender = match &state.config.sms_api {
        Some(api) => format!("Texts come from {}.", local_format(api.from.as_str(), region)),
        None => format!(
            "No SMS provider is set up, so texts are written to {} instead of sent.",
            state.config.sms_outbox_file().display()
        ),
    };
    let inbound_url =
        (manages && state.config.sms_api.is_some()).then(|| format!("{}{INBOUND_PATH}", state.config.public_url));
    let older = more.then(|| {
        let last = rows.last().map(|t| t.id).unwrap_or_default();
        format!("/sms?{}before={last}", if failures { "show=failed&" } else { "" })
    });
    let page = SmsPage {
        shell: Shell::new(&me, "sms"),
        manages,
        sender,
        inbound_url,
        failures,
        texts,
        older,
        paged: before.is_some(),
        numbers,
        replies,
        status: None,
    };
    render(StatusCode::OK, &page)
}
