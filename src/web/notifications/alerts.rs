//! What became of each alert: "Recent alerts" on the Notifications page (the latest few events)
//! and the alert log (every event, filtered by person, channel and outcome, paged). Each event is
//! one line that answers "who got it, and why not?", with the decisions per person and channel
//! (and the providers' ids, for support) behind it. Also the actions around it: send a test
//! alert, retry a delivery that was given up.
use crate::db::Link;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use crate::clock::{format_utc, unix_now_ms};
use crate::db;
use crate::db::deliveries::{DeliveryRow, LogPage};
use crate::db::escalations::Timer;
use crate::db::events::EventRow;
use crate::db::writer::NewEvent;
use crate::domain::alert_log::{Decision, LogFilter, Outcome, Whom, summary_line};
use crate::domain::delivery::{DeliveryStatus, EventState};
use crate::domain::events::{Event, Lead};
use crate::domain::phone::local_format;
use crate::domain::sms_status::{CarrierStatus, error_words};
use crate::domain::{Channel, Region};
use crate::tokens;
use crate::web::error::AppError;
use crate::web::extract::{CsrfForm, CurrentUser, NoFields, is_htmx};
use crate::web::limits::wait_words;
use crate::web::shell::Shell;
use crate::web::{AppState, render, retry_after_secs, see_other};

/// Events on the Notifications page (the alert log has the rest), events per page of the log,
/// and decisions read for one page at most (fifteen people on three channels is 45 an event).
const EVENTS_ON_SETTINGS: i64 = 5;
const LOG_PAGE: i64 = 20;
const DECISIONS_READ: i64 = 2000;

pub struct DecisionView {
    pub id: i64,
    pub who: String,
    pub channel: String,
    pub status: &'static str,
    pub label: &'static str,
    pub detail: String,
    pub can_retry: bool,
}

pub struct EventView {
    pub id: i64,
    pub title: String,
    pub when: String,
    pub note: Option<String>,
    /// "Sent to 3 people in 5 messages · not sent to 2 people: below threshold".
    pub summary: String,
    pub decisions: Vec<DecisionView>,
    /// Addresses, provider ids and attempts, for support.
    pub technical: Vec<String>,
    /// For a new lead the escalation policy watches: where its escalation stands.
    pub escalation: Option<String>,
}

/// A list of events as the page shows them.
pub struct AlertsView {
    pub csrf: String,
    pub events: Vec<EventView>,
    pub only_mine: bool,
    /// Said when there are no events.
    pub empty: &'static str,
}

#[derive(Template)]
#[template(path = "notifications/alerts.html")]
struct AlertsFragment {
    alerts: AlertsView,
}

pub(crate) fn event_title(event: &EventRow) -> String {
    let lead = |what: &str, l: Lead| {
        let score = l.score.map(|s| format!("score {s}")).unwrap_or_else(|| "no score".into());
        format!("{what}: {} ({score})", l.name.unwrap_or_else(|| "Unknown caller".into()))
    };
    match event.event() {
        Ok(Event::LeadCreated(l)) => lead("New lead", l),
        Ok(Event::LeadUpdated(l)) => lead("Lead update", l),
        Ok(Event::LeadEscalated(e)) => {
            let step = if e.step == 1 { String::new() } else { format!(", step {}", e.step) };
            lead(&format!("Escalation{step}, not claimed after {} min", e.minutes), e.lead)
        }
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

/// Where a lead's escalation stands: "Escalation due at …", "Escalated at …", "Escalation not
/// sent: Sam Rivera claimed the lead".
fn timer_words(t: &Timer) -> String {
    let step = if t.step > 1 { format!(" (step {})", t.step) } else { String::new() };
    match t.state.as_str() {
        "pending" => format!("Escalation{step} due at {} unless someone claims the lead.", format_utc(t.due_ms / 1000)),
        "fired" => format!("Escalated{step} at {}: nobody had claimed it.", format_utc(t.updated_ms / 1000)),
        _ => format!("Escalation{step} not sent: {}.", t.note.as_deref().unwrap_or("cancelled")),
    }
}

fn who(d: &DeliveryRow) -> String {
    d.person_name.clone().unwrap_or_else(|| "The business".into())
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
            match d.carrier_status() {
                // The provider took it, the carrier did not deliver it: that stands out.
                Some(carrier) if carrier.failed() => {
                    let why = d.carrier_error.map(error_words).unwrap_or_else(|| carrier.words().to_owned());
                    ("Not delivered", format!("{}{to}: {why}", at(d.sent_at_ms)))
                }
                Some(carrier) => ("Sent", format!("{}{to}, {}", at(d.sent_at_ms), carrier.words())),
                None => ("Sent", format!("{}{to}", at(d.sent_at_ms))),
            }
        }
        DeliveryStatus::Skipped => ("Not sent", reason),
        DeliveryStatus::Failed => ("Failed", reason),
        DeliveryStatus::Dead => ("Gave up", reason),
        // Held for quiet hours, and not tried yet: the reason says until when.
        DeliveryStatus::Pending if d.held_until_ms.is_some() && d.attempts == 0 => ("Waiting", reason),
        DeliveryStatus::Pending if d.next_attempt_ms.is_none() || reason.is_empty() => {
            ("Sending", "on its way".to_owned())
        }
        DeliveryStatus::Pending => {
            ("Retrying", format!("{reason}; next try {} (attempt {} so far)", at(d.next_attempt_ms), d.attempts))
        }
    };
    let undelivered = d.carrier_status().is_some_and(CarrierStatus::failed);
    DecisionView {
        id: d.id,
        who: who(d),
        channel: d.channel().map(Channel::label).unwrap_or("All channels").into(),
        status: if undelivered { DeliveryStatus::Failed.code() } else { status.code() },
        label,
        detail,
        can_retry: manages && matches!(status, DeliveryStatus::Dead | DeliveryStatus::Failed),
    }
}

/// Where a delivery went and under which id the provider knows it, for support.
fn technical_line(d: &DeliveryRow, region: Region) -> Option<String> {
    let channel = d.channel()?;
    if d.provider_id.is_none() && d.attempts == 0 {
        return None;
    }
    let to = match (channel, d.address.as_deref()) {
        (Channel::Sms, Some(number)) => format!(" to {}", local_format(number, region)),
        (Channel::Email, Some(address)) => format!(" to {address}"),
        _ => String::new(),
    };
    let id = match (channel, d.provider_id.as_deref()) {
        (Channel::Email, Some(id)) => format!("; message id {id}"),
        (Channel::Sms, Some(id)) => format!("; Twilio message SID {id}"),
        (Channel::InApp, Some(id)) => format!("; inbox item {id}"),
        (_, None) => String::new(),
    };
    let attempts = match d.attempts {
        1 => "1 attempt".to_owned(),
        n => format!("{n} attempts"),
    };
    Some(format!("{} · {}{to}{id}; {attempts} (delivery {})", who(d), channel.label(), d.id))
}

fn decision(d: &DeliveryRow) -> Decision<'_> {
    Decision {
        whom: d.user_id.map_or(Whom::Business, Whom::Person),
        name: d.person_name.as_deref().unwrap_or("The business"),
        channel: d.channel(),
        status: d.status(),
        skip: d.skip(),
        reason: d.reason.as_deref().unwrap_or(""),
    }
}

/// The events (newest first), each with the decisions `me` may see that the filter matches:
/// owners and admins see everyone's, teammates their own and those about everyone.
async fn event_views(
    conn: &mut impl Link,
    me: &CurrentUser,
    ids: &[i64],
    filter: &LogFilter,
) -> Result<Vec<EventView>, AppError> {
    let manages = me.manages_business();
    let events = db::events::in_business(conn, me.business_id(), ids).await?;
    let rows = db::deliveries::for_event_ids(conn, me.business_id(), ids, DECISIONS_READ).await?;
    let new_leads: Vec<(i64, String)> = events
        .iter()
        .filter_map(|e| match e.event() {
            Ok(Event::LeadCreated(lead)) => Some((e.id, lead.lead_id)),
            _ => None,
        })
        .collect();
    let lead_ids: Vec<&str> = new_leads.iter().map(|(_, id)| id.as_str()).collect();
    let timers = db::escalations::for_leads(conn, me.business_id(), &lead_ids).await?;
    let mine = LogFilter { person: Some(Whom::Person(me.user.id)), ..LogFilter::default() };
    // The line sums up the event for the people the filter is about (a channel or an outcome
    // only chooses the events and the details: "not sent to" must not count someone who got it
    // another way).
    let whom = LogFilter { person: filter.person, ..LogFilter::default() };
    Ok(events
        .iter()
        .map(|e| {
            let visible: Vec<&DeliveryRow> = rows
                .iter()
                .filter(|d| d.event_id == e.id)
                .filter(|d| manages || mine.matches(&decision(d)))
                .filter(|d| whom.matches(&decision(d)))
                .collect();
            // A text the provider took but the carrier could not deliver counts as failed in the
            // summary, with the carrier's reason.
            let undelivered: Vec<Option<String>> = visible
                .iter()
                .map(|d| {
                    let carrier = d.carrier_status().filter(|c| c.failed())?;
                    Some(d.carrier_error.map(error_words).unwrap_or_else(|| carrier.words().to_owned()))
                })
                .collect();
            let decisions: Vec<Decision> = visible
                .iter()
                .zip(&undelivered)
                .map(|(d, lost)| match lost {
                    Some(why) => Decision { status: DeliveryStatus::Failed, reason: why, ..decision(d) },
                    None => decision(d),
                })
                .collect();
            let shown: Vec<&DeliveryRow> = visible.iter().copied().filter(|d| filter.matches(&decision(d))).collect();
            let note = match e.state() {
                EventState::Received => Some("Waiting to be processed.".into()),
                _ => e.note.clone(),
            };
            let summary = match (&note, decisions.is_empty()) {
                (Some(_), true) => String::new(),
                (None, true) if !manages => "Nothing about you in this one.".into(),
                _ => summary_line(&decisions),
            };
            EventView {
                id: e.id,
                title: event_title(e),
                when: format_utc(e.received_at_ms / 1000),
                note,
                summary,
                decisions: shown.iter().map(|d| decision_view(d, manages, me.region)).collect(),
                technical: shown.iter().filter_map(|d| technical_line(d, me.region)).collect(),
                escalation: new_leads
                    .iter()
                    .find(|(id, _)| *id == e.id)
                    .and_then(|(_, lead)| timers.iter().filter(|t| t.lead_id == *lead).max_by_key(|t| t.step))
                    .map(timer_words),
            }
        })
        .collect())
}

/// The latest few events, for the Notifications page.
pub async fn alerts_view(conn: &mut impl Link, me: &CurrentUser) -> Result<AlertsView, AppError> {
    let manages = me.manages_business();
    let filter = LogFilter::default();
    let ids = match manages {
        true => db::events::page(conn, me.business_id(), LogPage::Newest, EVENTS_ON_SETTINGS).await?,
        false => {
            let mine = LogFilter { person: Some(Whom::Person(me.user.id)), ..filter };
            db::deliveries::log_events(conn, me.business_id(), &mine, LogPage::Newest, EVENTS_ON_SETTINGS).await?
        }
    };
    Ok(AlertsView {
        csrf: me.csrf_token.clone(),
        events: event_views(conn, me, &ids, &filter).await?,
        only_mine: !manages,
        empty: "No alerts yet. When Kai sends a lead, who got it and why anyone did not shows up here.",
    })
}

/// Polled by the page so results of new events and test alerts appear without a reload.
#[get("/settings/notifications/alerts")]
pub async fn alerts_fragment(me: CurrentUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let alerts = alerts_view(&mut state.db.read().await?, &me).await?;
    render(StatusCode::OK, &AlertsFragment { alerts })
}

/// One choice in a filter's list.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "alert_log.html")]
struct AlertLogPage {
    shell: Shell,
    alerts: AlertsView,
    /// `None` for teammates: their log is about them.
    people: Option<Vec<Choice>>,
    channels: Vec<Choice>,
    outcomes: Vec<Choice>,
    error: Option<String>,
    filtered: bool,
    newer: Option<String>,
    older: Option<String>,
    newest: Option<String>,
    status: Option<String>,
}

#[derive(Deserialize)]
struct LogQuery {
    #[serde(default)]
    person: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    outcome: String,
    before: Option<String>,
    after: Option<String>,
    retried: Option<String>,
}

/// The filter's values in the page's address.
fn filter_params(filter: &LogFilter, manages: bool) -> Vec<(&'static str, String)> {
    let mut params = Vec::new();
    match filter.person {
        Some(Whom::Business) if manages => params.push(("person", "business".to_owned())),
        Some(Whom::Person(id)) if manages => params.push(("person", id.to_string())),
        _ => {}
    }
    if let Some(c) = filter.channel {
        params.push(("channel", c.code().to_owned()));
    }
    if let Some(o) = filter.outcome {
        params.push(("outcome", o.param().to_owned()));
    }
    params
}

fn log_link(filter: &LogFilter, manages: bool, page: LogPage) -> String {
    let mut params = filter_params(filter, manages);
    match page {
        LogPage::Newest => {}
        LogPage::Before(id) => params.push(("before", id.to_string())),
        LogPage::After(id) => params.push(("after", id.to_string())),
    }
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    match query.is_empty() {
        true => "/settings/notifications/log".into(),
        false => format!("/settings/notifications/log?{}", query.join("&")),
    }
}

/// The filter and page a query asks for, or what is wrong with it, in words.
fn parse_query(q: &LogQuery, team: &[(i64, String)], manages: bool) -> Result<(LogFilter, LogPage), String> {
    let person = match q.person.trim() {
        "" => None,
        _ if !manages => None,
        "business" => Some(Whom::Business),
        id => match id.parse::<i64>().ok().filter(|id| team.iter().any(|(t, _)| t == id)) {
            Some(id) => Some(Whom::Person(id)),
            None => return Err("That person is not on your team: choose someone from the list.".into()),
        },
    };
    let channel = match q.channel.trim() {
        "" => None,
        code => Some(Channel::from_code(code).ok_or("Choose a channel from the list: Email, SMS or In-app.")?),
    };
    let outcome = match q.outcome.trim() {
        "" => None,
        param => Some(
            Outcome::from_param(param)
                .ok_or("Choose an outcome from the list: Sent, Not sent, Failed or gave up, Still sending.")?,
        ),
    };
    let cursor = |value: &str| value.trim().parse::<i64>().ok().filter(|id| *id > 0);
    let broken = || "That page link is broken: here are the newest alerts.".to_owned();
    let page = match (q.before.as_deref(), q.after.as_deref()) {
        (None, None) => LogPage::Newest,
        (Some(before), None) => LogPage::Before(cursor(before).ok_or_else(broken)?),
        (None, Some(after)) => LogPage::After(cursor(after).ok_or_else(broken)?),
        (Some(_), Some(_)) => return Err(broken()),
    };
    Ok((LogFilter { person, channel, outcome }, page))
}

/// The alert log: every event, newest first, twenty a page, filtered by person, channel and
/// outcome. Works as a plain form; with htmx, a change of filter redraws the list in place.
#[get("/settings/notifications/log")]
pub async fn alert_log(
    me: CurrentUser,
    state: web::Data<AppState>,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, AppError> {
    let manages = me.manages_business();
    let mut conn = state.db.read().await?;
    let team: Vec<(i64, String)> = match manages {
        true => {
            db::users::list_active(&mut conn, me.business_id()).await?.into_iter().map(|u| (u.id, u.name)).collect()
        }
        false => Vec::new(),
    };
    let (parsed, error) = match parse_query(&query, &team, manages) {
        Ok(parsed) => (parsed, None),
        Err(message) => ((LogFilter::default(), LogPage::Newest), Some(message)),
    };
    let (shown, page) = parsed;
    // A teammate's log is about them (and about everyone); the filter they see leaves that out.
    let scope = match manages {
        true => shown,
        false => LogFilter { person: Some(Whom::Person(me.user.id)), ..shown },
    };
    let mut ids = match (error.is_some(), scope.is_empty()) {
        (true, _) => Vec::new(),
        (false, true) => db::events::page(&mut conn, me.business_id(), page, LOG_PAGE + 1).await?,
        (false, false) => db::deliveries::log_events(&mut conn, me.business_id(), &scope, page, LOG_PAGE + 1).await?,
    };
    let more = ids.len() as i64 > LOG_PAGE;
    ids.truncate(LOG_PAGE as usize);
    if let LogPage::After(_) = page {
        ids.reverse();
    }
    let (has_newer, has_older) = match page {
        LogPage::Newest => (false, more),
        LogPage::Before(_) => (true, more),
        LogPage::After(_) => (more, true),
    };
    let newer = ids.first().filter(|_| has_newer).map(|id| log_link(&shown, manages, LogPage::After(*id)));
    let older = ids.last().filter(|_| has_older).map(|id| log_link(&shown, manages, LogPage::Before(*id)));
    let newest = (page != LogPage::Newest).then(|| log_link(&shown, manages, LogPage::Newest));
    let events = event_views(&mut conn, &me, &ids, &shown).await?;
    drop(conn);

    let choice = |value: String, label: String, selected: bool| Choice { value, label, selected };
    let people = manages.then(|| {
        let mut people = vec![
            choice(String::new(), "Everyone".into(), shown.person.is_none()),
            choice(
                "business".into(),
                "The business (notification email and phone)".into(),
                shown.person == Some(Whom::Business),
            ),
        ];
        people.extend(
            team.iter().map(|(id, name)| choice(id.to_string(), name.clone(), shown.person == Some(Whom::Person(*id)))),
        );
        people
    });
    let mut channels = vec![choice(String::new(), "Every channel".into(), shown.channel.is_none())];
    channels.extend(Channel::ALL.map(|c| choice(c.code().into(), c.label().into(), shown.channel == Some(c))));
    let mut outcomes = vec![choice(String::new(), "Every outcome".into(), shown.outcome.is_none())];
    outcomes.extend(Outcome::ALL.map(|o| choice(o.param().into(), o.label().into(), shown.outcome == Some(o))));
    let filtered = !shown.is_empty();
    let page = AlertLogPage {
        shell: Shell::new(&me, "notifications"),
        alerts: AlertsView {
            csrf: me.csrf_token.clone(),
            events,
            only_mine: !manages,
            empty: match filtered {
                true => "No alerts match these filters.",
                false => "No alerts yet. When Kai sends a lead, who got it and why anyone did not shows up here.",
            },
        },
        people,
        channels,
        outcomes,
        filtered,
        newer,
        older,
        newest,
        status: query.retried.as_ref().map(|_| "Trying again: the alert is back in the queue.".to_owned()),
        error: error.clone(),
    };
    let code = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    render(code, &page)
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
    let recipient = db::recipients::get(&mut state.db.read().await?, me.business_id(), path.into_inner())
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
        let alerts = alerts_view(&mut state.db.read().await?, &me).await?;
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
    Ok(see_other("/settings/notifications/log?retried=1"))
}
