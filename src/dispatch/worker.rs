//! The dispatcher: plans stored events with the pure routing rules (settings as they are now),
//! claims due deliveries with a lease, sends them outside any transaction, records the outcome,
//! and retries what failed for a passing reason.
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use rand::Rng;
use sqlx::SqlitePool;
use tokio::sync::{Notify, Semaphore};

use super::email::{EmailError, EmailSender, OutgoingEmail};
use super::sms::{SmsError, SmsSender, number_problem};
use crate::clock::{unix_now, unix_now_ms};
use crate::db::{self, deliveries::Claimed, deliveries::NewDelivery, notifications::NewNotification};
use crate::domain::events::Event;
use crate::domain::routing::{self, Person, Planned, Target};
use crate::domain::text::{AlertText, alert_text};
use crate::domain::{
    AlertKind, BusinessDefaults, Channel, ChannelSet, EmailAddress, KindSet, LeadScore, RecipientPrefs,
};

#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// How long a claimed delivery is ours; longer than any send timeout (15 s).
    pub lease: Duration,
    /// The first retry waits about this long; each later one twice as long, at most an hour.
    pub first_retry: Duration,
    /// After this long a delivery that keeps failing is given up (dead-lettered).
    pub give_up_after: Duration,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            first_retry: Duration::from_secs(10),
            give_up_after: Duration::from_secs(24 * 3600),
        }
    }
}

/// What one pass of the dispatcher did (tests call `try_execute` directly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionOutcome {
    Idle,
    Worked { planned: usize, started: usize },
}

pub struct Dispatcher {
    pool: SqlitePool,
    wake: Arc<Notify>,
    email: Arc<dyn EmailSender>,
    sms: Arc<dyn SmsSender>,
    settings: DispatchSettings,
    base_url: String,
    unsubscribe_key: Vec<u8>,
    in_flight: Mutex<HashSet<i64>>,
    email_slots: Arc<Semaphore>,
    sms_slots: Arc<Semaphore>,
    in_app_slots: Arc<Semaphore>,
    outcomes: OutcomeWriter,
}

/// Sends in flight at once, per channel (the SMTP pool holds 32 connections).
const EMAIL_CONCURRENCY: usize = 32;
const SMS_CONCURRENCY: usize = 32;
const IN_APP_CONCURRENCY: usize = 64;
const PLAN_BATCH: i64 = 256;
const CLAIM_BATCH: i64 = 128;

impl Dispatcher {
    pub fn new(
        pool: SqlitePool,
        wake: Arc<Notify>,
        email: Arc<dyn EmailSender>,
        sms: Arc<dyn SmsSender>,
        settings: DispatchSettings,
        base_url: String,
        unsubscribe_key: Vec<u8>,
    ) -> Arc<Self> {
        Arc::new(Self {
            pool: pool.clone(),
            wake,
            email,
            sms,
            settings,
            base_url,
            unsubscribe_key,
            in_flight: Mutex::new(HashSet::new()),
            email_slots: Arc::new(Semaphore::new(EMAIL_CONCURRENCY)),
            sms_slots: Arc::new(Semaphore::new(SMS_CONCURRENCY)),
            in_app_slots: Arc::new(Semaphore::new(IN_APP_CONCURRENCY)),
            outcomes: OutcomeWriter::start(pool),
        })
    }

    /// Runs until the process ends: woken at once by ingest, otherwise when the next retry is due.
    pub async fn run(self: Arc<Self>) {
        loop {
            match self.try_execute().await {
                Ok(ExecutionOutcome::Worked { .. }) => tokio::task::yield_now().await,
                Ok(ExecutionOutcome::Idle) => {
                    let wait = match db::deliveries::next_due_ms(&self.pool).await {
                        Ok(Some(due)) => Duration::from_millis((due - unix_now_ms()).clamp(1, 1000) as u64),
                        _ => Duration::from_secs(1),
                    };
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "dispatcher pass failed; trying again in a second");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// One pass: plan what arrived, start sending what is due.
    pub async fn try_execute(self: &Arc<Self>) -> anyhow::Result<ExecutionOutcome> {
        let (planned, claimed) = self.plan_and_claim().await.context("planning and claiming deliveries")?;
        // One lead fans out to several deliveries: read and word each event once per pass.
        let mut prepared: HashMap<i64, Arc<Prepared>> = HashMap::new();
        let mut started = 0;
        for delivery in claimed {
            // A lease can run out while the first send is still going: never send it twice.
            if self.in_flight.lock().unwrap().contains(&delivery.id) {
                continue;
            }
            let alert = match prepared.get(&delivery.event_id) {
                Some(alert) => alert.clone(),
                None => match self.prepare(delivery.event_id).await {
                    Ok(alert) => {
                        let alert = Arc::new(alert);
                        prepared.insert(delivery.event_id, alert.clone());
                        alert
                    }
                    Err(e) => {
                        let error = format!("{e:#}");
                        self.outcomes
                            .record(Outcome::Failed { delivery_id: delivery.id, status: "failed", error })
                            .await?;
                        continue;
                    }
                },
            };
            if !self.in_flight.lock().unwrap().insert(delivery.id) {
                continue;
            }
            started += 1;
            // Each channel has its own limit, taken inside the task: a slow mail server never
            // holds up texts, and this loop never waits for a free slot.
            let slots = match delivery.channel.as_str() {
                "email" => self.email_slots.clone(),
                "sms" => self.sms_slots.clone(),
                _ => self.in_app_slots.clone(),
            };
            let me = self.clone();
            tokio::spawn(async move {
                let id = delivery.id;
                let Ok(_slot) = slots.acquire_owned().await else { return };
                if let Err(e) = me.deliver(delivery, &alert).await {
                    tracing::warn!(
                        delivery = id,
                        error = format!("{e:#}"),
                        "recording a delivery failed; its lease will expire and it will be retried"
                    );
                }
                me.in_flight.lock().unwrap().remove(&id);
            });
        }
        Ok(if planned == 0 && started == 0 {
            ExecutionOutcome::Idle
        } else {
            ExecutionOutcome::Worked { planned, started }
        })
    }

    /// Turns stored events into decisions and claims the deliveries that are due, in one
    /// transaction (one commit before sending; no network I/O inside).
    async fn plan_and_claim(&self) -> anyhow::Result<(usize, Vec<Claimed>)> {
        let mut tx = db::begin_write(&self.pool).await?;
        let events = db::events::to_plan(&mut tx, PLAN_BATCH).await?;
        let now_ms = unix_now_ms();
        let mut settings: HashMap<String, (BusinessDefaults, Vec<Person>)> = HashMap::new();
        for stored in &events {
            let (state, note, threshold, decisions) = match serde_json::from_str::<Event>(&stored.payload) {
                Err(e) => ("ignored", Some(format!("the stored event could not be read: {e}")), None, Vec::new()),
                Ok(event) => {
                    if !settings.contains_key(&stored.business_id) {
                        let defaults = db::defaults::get_for_update(&mut tx, &stored.business_id).await?;
                        let people = db::recipients::for_routing(&mut tx, &stored.business_id).await?;
                        settings.insert(stored.business_id.clone(), (defaults, people));
                    }
                    let (defaults, people) = &settings[&stored.business_id];
                    decide(&mut tx, stored.id, &stored.business_id, &event, defaults, people).await?
                }
            };
            let rows: Vec<NewDelivery> = decisions.iter().map(as_new_delivery).collect();
            db::deliveries::insert_plan(&mut tx, stored.id, &stored.business_id, &rows, now_ms).await?;
            db::events::mark_planned(&mut tx, stored.id, state, note.as_deref(), threshold, now_ms).await?;
        }
        let lease_ms = self.settings.lease.as_millis() as i64;
        let claimed = db::deliveries::claim_due(&mut tx, now_ms, lease_ms, CLAIM_BATCH).await?;
        tx.commit().await?;
        Ok((events.len(), claimed))
    }

    /// An event read back and put into words, shared by all its deliveries.
    async fn prepare(&self, event_id: i64) -> anyhow::Result<Prepared> {
        let event = db::events::get(&self.pool, event_id).await?.context("a delivery's event is gone")?;
        let parsed: Event = serde_json::from_str(&event.payload).context("a stored event could not be read")?;
        let threshold = event.usage_threshold.and_then(|t| u8::try_from(t).ok());
        let text = alert_text(&parsed, threshold, &self.base_url);
        Ok(Prepared { event: parsed, text })
    }

    async fn deliver(&self, d: Claimed, alert: &Prepared) -> anyhow::Result<()> {
        let (parsed, Some(text)) = (&alert.event, &alert.text) else {
            let error = "this event has no alert text".to_owned();
            return self.outcomes.record(Outcome::Failed { delivery_id: d.id, status: "failed", error }).await;
        };
        let result = match d.channel.as_str() {
            "email" => self.send_email(&d, parsed, text).await,
            "sms" => self.sms.send(&d.address, &text.sms).await.map(Some).map_err(Failure::from),
            "in_app" => return self.deliver_in_app(&d, text).await,
            other => Err(Failure::Permanent { message: format!("unknown channel {other}"), sms_code: None }),
        };
        self.record(&d, result).await
    }

    async fn send_email(&self, d: &Claimed, event: &Event, text: &AlertText) -> Result<Option<String>, Failure> {
        let to = EmailAddress::parse(&d.address).map_err(|m| Failure::Permanent { message: m, sms_code: None })?;
        let unsubscribe_url = match (d.user_id, event.alert_kind()) {
            (Some(user_id), Some(kind)) => Some(format!(
                "{}unsubscribe/{}",
                self.base_url,
                crate::domain::unsubscribe::token(&self.unsubscribe_key, user_id, kind)
            )),
            _ => None,
        };
        let message_id = format!("<delivery-{}@kaicalls-notify>", d.id);
        let email = OutgoingEmail {
            to,
            to_name: d.person_name.clone(),
            subject: text.subject.clone(),
            text: text.text.clone(),
            html: text.html.clone(),
            message_id: Some(message_id.clone()),
            unsubscribe_url,
        };
        self.email.send(email).await.map(|_| Some(message_id)).map_err(Failure::from)
    }

    async fn deliver_in_app(&self, d: &Claimed, text: &AlertText) -> anyhow::Result<()> {
        let user_id = d.user_id.context("an in-app delivery needs a person")?;
        self.outcomes
            .record(Outcome::InApp {
                delivery_id: d.id,
                business_id: d.business_id.clone(),
                user_id,
                title: text.title.clone(),
                body: text.body.clone(),
                link: text.link,
            })
            .await
    }

    async fn record(&self, d: &Claimed, result: Result<Option<String>, Failure>) -> anyhow::Result<()> {
        let now_ms = unix_now_ms();
        let outcome = match result {
            Ok(provider_id) => Outcome::Sent { delivery_id: d.id, provider_id },
            Err(Failure::Transient { message, retry_after }) => {
                let age = Duration::from_millis((now_ms - d.created_at_ms).max(0) as u64);
                if age >= self.settings.give_up_after {
                    let hours = self.settings.give_up_after.as_secs_f64() / 3600.0;
                    let error = format!("gave up after {hours:.0} h and {} attempts: {message}", d.attempts);
                    Outcome::Failed { delivery_id: d.id, status: "dead", error }
                } else {
                    let delay = retry_delay(self.settings.first_retry, d.attempts, retry_after);
                    Outcome::Retry { delivery_id: d.id, at_ms: now_ms + delay.as_millis() as i64, error: message }
                }
            }
            Err(Failure::Permanent { message, sms_code }) => {
                if let (Some(code), Some(user_id)) = (sms_code, d.user_id)
                    && let Some(problem) = number_problem(code, &d.address)
                {
                    self.block_number(d, user_id, &problem).await?;
                }
                Outcome::Failed { delivery_id: d.id, status: "failed", error: message }
            }
        };
        self.outcomes.record(outcome).await
    }

    /// Marks the number on the person and tells the owners and admins in-app.
    async fn block_number(&self, d: &Claimed, user_id: i64, problem: &str) -> anyhow::Result<()> {
        db::users::block_phone(&self.pool, user_id, problem).await?;
        let name = d.person_name.clone().unwrap_or_else(|| "A teammate".into());
        let body = format!("{problem}. No more texts go to it until {name} updates their phone number in Account.");
        let title = format!("SMS to {name} failed");
        let mut conn = self.pool.acquire().await?;
        for manager in db::users::managers(&self.pool, &d.business_id).await? {
            let n = NewNotification {
                business_id: &d.business_id,
                user_id: manager,
                delivery_id: None,
                title: &title,
                body: &body,
                link: "/team",
            };
            db::notifications::insert(&mut conn, n, unix_now()).await?;
        }
        Ok(())
    }
}

/// An event and its alert text (none for types that cause no alert).
struct Prepared {
    event: Event,
    text: Option<AlertText>,
}

/// What became of one delivery, waiting to be written.
enum Outcome {
    Sent { delivery_id: i64, provider_id: Option<String> },
    InApp { delivery_id: i64, business_id: String, user_id: i64, title: String, body: String, link: &'static str },
    Retry { delivery_id: i64, at_ms: i64, error: String },
    Failed { delivery_id: i64, status: &'static str, error: String },
}

/// Records delivery outcomes; every outcome waiting is written in one transaction, so a burst
/// of sends costs one commit instead of one each. `record` answers once the outcome is stored.
#[derive(Clone)]
struct OutcomeWriter {
    queue: tokio::sync::mpsc::UnboundedSender<(Outcome, tokio::sync::oneshot::Sender<bool>)>,
}

impl OutcomeWriter {
    fn start(pool: SqlitePool) -> Self {
        let (queue, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Outcome, tokio::sync::oneshot::Sender<bool>)>();
        tokio::spawn(async move {
            let mut batch = Vec::new();
            while rx.recv_many(&mut batch, 512).await > 0 {
                let stored = write_outcomes(&pool, batch.iter().map(|(o, _)| o)).await;
                if let Err(e) = &stored {
                    tracing::warn!(error = %e, "could not record delivery outcomes; their leases will expire and they will be retried");
                }
                for (_, done) in batch.drain(..) {
                    let _ = done.send(stored.is_ok());
                }
            }
        });
        Self { queue }
    }

    async fn record(&self, outcome: Outcome) -> anyhow::Result<()> {
        let (done, stored) = tokio::sync::oneshot::channel();
        self.queue.send((outcome, done)).map_err(|_| anyhow::anyhow!("the outcome writer stopped"))?;
        anyhow::ensure!(stored.await.unwrap_or(false), "the outcome was not stored");
        Ok(())
    }
}

async fn write_outcomes<'a>(pool: &SqlitePool, outcomes: impl Iterator<Item = &'a Outcome>) -> sqlx::Result<()> {
    let mut tx = db::begin_write(pool).await?;
    let (now, now_ms) = (unix_now(), unix_now_ms());
    for outcome in outcomes {
        match outcome {
            Outcome::Sent { delivery_id, provider_id } => {
                db::deliveries::mark_sent(&mut tx, *delivery_id, provider_id.as_deref(), now_ms).await?;
            }
            Outcome::InApp { delivery_id, business_id, user_id, title, body, link } => {
                let n = NewNotification {
                    business_id,
                    user_id: *user_id,
                    delivery_id: Some(*delivery_id),
                    title,
                    body,
                    link,
                };
                db::notifications::insert(&mut tx, n, now).await?;
                db::deliveries::mark_sent(&mut tx, *delivery_id, None, now_ms).await?;
            }
            Outcome::Retry { delivery_id, at_ms, error } => {
                db::deliveries::schedule_retry(&mut tx, *delivery_id, *at_ms, error).await?;
            }
            Outcome::Failed { delivery_id, status, error } => {
                db::deliveries::mark_failed(&mut tx, *delivery_id, status, error).await?;
            }
        }
    }
    tx.commit().await
}

enum Failure {
    Transient { message: String, retry_after: Option<Duration> },
    Permanent { message: String, sms_code: Option<u32> },
}

impl From<EmailError> for Failure {
    fn from(e: EmailError) -> Self {
        match e {
            EmailError::Transient(message) => Self::Transient { message, retry_after: None },
            EmailError::Permanent(message) => Self::Permanent { message, sms_code: None },
        }
    }
}

impl From<SmsError> for Failure {
    fn from(e: SmsError) -> Self {
        match e {
            SmsError::Transient { message, retry_after } => Self::Transient { message, retry_after },
            SmsError::Permanent { message, code } => Self::Permanent { message, sms_code: code },
        }
    }
}

/// Exponential backoff with ±20 % jitter, capped at an hour, never sooner than the provider asked.
pub fn retry_delay(first: Duration, attempts: i64, retry_after: Option<Duration>) -> Duration {
    let exponent = (attempts.max(1) - 1).min(20) as u32;
    let base = first.saturating_mul(2u32.saturating_pow(exponent)).min(Duration::from_secs(3600));
    let jittered = base.mul_f64(rand::rng().random_range(0.8..1.2));
    jittered.max(retry_after.unwrap_or_default())
}

type Decisions = (&'static str, Option<String>, Option<u8>, Vec<Planned>);

/// Decides what one event causes; records lead details and usage thresholds as it goes.
async fn decide(
    tx: &mut db::Tx,
    event_id: i64,
    business_id: &str,
    event: &Event,
    defaults: &BusinessDefaults,
    people: &[Person],
) -> anyhow::Result<Decisions> {
    if let Event::Unknown { type_name } = event {
        return Ok((
            "ignored",
            Some(format!("unknown event type {type_name}: accepted and ignored")),
            None,
            Vec::new(),
        ));
    }
    if let Event::Test { user_id } = event {
        return Ok(("planned", Some("test alert".into()), None, plan_test(*user_id, defaults, people)));
    }
    if let Some(key) = event.dedupe_key()
        && let Some(first) = db::events::claim_alert_key(tx, business_id, &key, event_id).await?
    {
        return Ok(("duplicate", Some(format!("already alerted for event {first}; not sent again")), None, Vec::new()));
    }
    let Some(kind) = event.alert_kind() else {
        return Ok(("ignored", None, None, Vec::new()));
    };
    let mut threshold = None;
    match event {
        Event::LeadCreated(lead) | Event::LeadUpdated(lead) => {
            db::leads::upsert(tx, business_id, lead, event_id, unix_now()).await?;
        }
        Event::UsageUpdated(usage) => {
            let already = db::events::usage_alerted(tx, business_id, &usage.period_start).await?;
            match routing::usage_threshold(usage.minutes_used, usage.included_minutes, &already) {
                None => {
                    let note = match (usage.minutes_used * 100).checked_div(usage.included_minutes) {
                        None => "the plan has no included minutes, so no usage alert".to_owned(),
                        Some(percent) => format!("{percent}% used: no new threshold reached this period"),
                    };
                    return Ok(("planned", Some(note), None, Vec::new()));
                }
                Some(t) => {
                    db::events::record_usage_alert(tx, business_id, &usage.period_start, t, event_id).await?;
                    threshold = Some(t);
                }
            }
        }
        _ => {}
    }
    let score = event.lead().and_then(|l| l.score).and_then(|s| LeadScore::new(i64::from(s)).ok());
    Ok(("planned", None, threshold, routing::plan(kind, score, defaults, people)))
}

/// A test alert goes to each channel one person chose, through the same rules, without the
/// business's own destinations and without alert-type or score filters.
fn plan_test(user_id: i64, defaults: &BusinessDefaults, people: &[Person]) -> Vec<Planned> {
    let Some(person) = people.iter().find(|p| p.user_id == user_id) else {
        return Vec::new();
    };
    let person = Person {
        prefs: RecipientPrefs { kinds: KindSet::ALL_ON, min_lead_score: LeadScore::default(), ..person.prefs },
        ..person.clone()
    };
    let defaults = BusinessDefaults {
        kinds: KindSet::ALL_ON,
        channels: ChannelSet { ..defaults.channels },
        notification_email: None,
        notification_phone: None,
    };
    routing::plan(AlertKind::Billing, None, &defaults, &[person])
        .into_iter()
        .filter(|p| matches!(p.target, Target::Person { .. }))
        .collect()
}

fn as_new_delivery(p: &Planned) -> NewDelivery<'_> {
    let (user_id, name) = match &p.target {
        Target::Business => (None, None),
        Target::Person { user_id, name } => (Some(*user_id), Some(name.as_str())),
    };
    NewDelivery {
        user_id,
        person_name: name,
        channel: p.channel.map(channel_code),
        address: p.address.as_deref(),
        skip_reason: p.skip.as_ref().map(|s| s.reason(name.unwrap_or("the business"))),
        duplicate_of: match p.skip {
            Some(routing::Skip::Duplicate { of }) => Some(of),
            _ => None,
        },
    }
}

pub fn channel_code(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "email",
        Channel::Sms => "sms",
        Channel::InApp => "in_app",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_with_jitter_and_respect_retry_after() {
        let first = Duration::from_secs(10);
        for _ in 0..50 {
            let one = retry_delay(first, 1, None);
            assert!(
                one >= Duration::from_secs(8) && one <= Duration::from_secs(12),
                "{one:?}: the first retry is within 30 s"
            );
            let three = retry_delay(first, 3, None);
            assert!(three >= Duration::from_secs(32) && three <= Duration::from_secs(48));
            assert!(retry_delay(first, 40, None) <= Duration::from_secs(4320));
            assert!(retry_delay(first, 1, Some(Duration::from_secs(120))) >= Duration::from_secs(120));
        }
    }
}
