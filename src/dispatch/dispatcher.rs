//! The dispatcher: sends what the writer hands over the moment its commit is done, and what
//! falls due later (retries, deliveries whose lease ran out because the process holding them
//! stopped, and escalation steps of leads nobody claimed). Each channel has its own queue and its own workers, so a slow mail server never
//! holds up texts, and a burst waits in a queue of small entries rather than as thousands of
//! tasks.
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc};
use tracing::Instrument;

use super::outcome::{self, Decision};
use super::send::{Alert, Senders};
use crate::clock::{unix_now, unix_now_ms};
use crate::config::DispatchSettings;
use crate::db::deliveries::{self, Claimed, Outcome};
use crate::db::escalations::{self, Due};
use crate::db::events::Stored;
use crate::db::writer::{AlertEvent, NewEvent, Wakeup};
use crate::db::{Db, Handed, Handover, events, leads, notifications, users};
use crate::domain::Channel;
use crate::domain::delivery::DeliveryStatus;
use crate::domain::escalation::{self, AtDue, DueStep};
use crate::domain::events::{Escalated, Event, Lead};
use crate::domain::routing::HoldKind;
use crate::metrics::{Ended, Metrics};

/// Sends in flight at once, per channel (the SMTP sender keeps as many connections).
const EMAIL_WORKERS: usize = 32;
const SMS_WORKERS: usize = 32;
const IN_APP_WORKERS: usize = 64;
/// Deliveries claimed from the database per query.
const CLAIM_BATCH: usize = 256;
/// Escalation steps fired per look.
const ESCALATION_BATCH: i64 = 64;
/// Deliveries held in memory at most (queued and being sent). Past this, the writer stores new
/// deliveries unclaimed and the dispatcher reads them back as it gets through the queue.
const MAX_IN_FLIGHT: usize = 4096;

/// When a delivery handed over in memory went through each stage (for the timing log).
#[derive(Debug, Clone, Copy)]
struct Timing {
    received: Instant,
    committed: Instant,
}

/// A due escalation step, decided.
enum Work {
    Fire { d: Due, step: Step, next: Option<(u8, i64)> },
    Cancel { d: Due, note: String },
}

/// A step to fire: which, after how many minutes without a claim, to whom and how.
struct Step {
    step: u8,
    minutes: u32,
    people: Vec<(i64, String)>,
    channels: crate::domain::ChannelSet,
}

/// What `run_once` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Deliveries handed over by the writer.
    pub handed_over: usize,
    /// Deliveries claimed from the database (retries due, leases run out).
    pub claimed: usize,
    /// Escalation steps that fell due (fired or ended without sending).
    pub escalations: usize,
}

/// One delivery waiting for a worker of its channel.
struct Job {
    delivery: Claimed,
    alert: Arc<Alert>,
    timing: Option<Timing>,
    queued: Instant,
    /// Deliveries this one's message carries too, with where they went in words.
    merged: Vec<(i64, String)>,
}

/// A channel's queue, shared by its workers.
struct Lane {
    jobs: mpsc::UnboundedSender<Job>,
    waiting: tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>,
    workers: usize,
}

impl Lane {
    fn new(workers: usize) -> Self {
        let (jobs, waiting) = mpsc::unbounded_channel();
        Self { jobs, waiting: tokio::sync::Mutex::new(waiting), workers }
    }
}

pub struct Dispatcher {
    db: Db,
    senders: Senders,
    settings: DispatchSettings,
    handover: tokio::sync::Mutex<mpsc::Receiver<Handover>>,
    /// Told by the writer when it stored deliveries unclaimed (we were behind).
    spilled: Arc<Notify>,
    /// Told when a delivery in flight is done (there may be room again).
    room: Notify,
    /// Deliveries queued or being sent by this process: a lease that runs out meanwhile never
    /// sends one twice.
    in_flight: Mutex<HashSet<i64>>,
    /// Told when the last delivery in flight is done (`run_once` waits for it).
    idle: Notify,
    email: Lane,
    sms: Lane,
    in_app: Lane,
    workers_started: Once,
    /// When the database should next be asked for due work (on this dispatcher's clock).
    wakeup: Arc<Wakeup>,
    /// Added to the time of day: tests move the dispatcher's clock forward instead of waiting.
    clock_offset_ms: AtomicI64,
    metrics: Arc<Metrics>,
    /// Set when the process stops: no more work is taken, and what was not started is given back.
    stopping: AtomicBool,
    /// Told when the process starts stopping.
    stop: Notify,
    /// Deliveries being sent now (from their worker taking them to their outcome's commit).
    sending: Mutex<HashSet<i64>>,
    /// The deliveries a queued message carries besides its own (a summary's), by its own id.
    carried: Mutex<HashMap<i64, Vec<i64>>>,
    /// Taken while stopping and not started: to be given back.
    given_back: Mutex<Vec<i64>>,
}

/// What stopping did: deliveries sent to the end, and those given back unstarted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drained {
    /// Given back: their leases ended, so the next start (or another instance) sends them at once.
    pub given_back: usize,
    /// Still being sent when the grace ran out: their leases stay, and they are tried again
    /// when those run out (at least once, as after a crash).
    pub cut_off: usize,
}

impl Dispatcher {
    pub fn new(
        db: Db,
        senders: Senders,
        settings: DispatchSettings,
        handed: Handed,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Arc::new(Self {
            db,
            senders,
            settings,
            handover: tokio::sync::Mutex::new(handed.deliveries),
            spilled: handed.spilled,
            room: Notify::new(),
            in_flight: Mutex::new(HashSet::new()),
            idle: Notify::new(),
            email: Lane::new(EMAIL_WORKERS),
            sms: Lane::new(SMS_WORKERS),
            in_app: Lane::new(IN_APP_WORKERS),
            workers_started: Once::new(),
            wakeup: handed.wakeup,
            clock_offset_ms: AtomicI64::new(0),
            metrics,
            stopping: AtomicBool::new(false),
            stop: Notify::new(),
            sending: Mutex::new(HashSet::new()),
            carried: Mutex::new(HashMap::new()),
            given_back: Mutex::new(Vec::new()),
        })
    }

    /// The time on the dispatcher's clock (unix ms): due retries and escalations are read by it.
    fn now_ms(&self) -> i64 {
        unix_now_ms() + self.clock_offset_ms.load(Ordering::Relaxed)
    }

    /// Moves the dispatcher's clock forward, and looks for what fell due. For tests, which
    /// check what happens five minutes after a lead without waiting five minutes.
    pub fn advance_clock(&self, by: Duration) {
        self.clock_offset_ms.fetch_add(by.as_millis() as i64, Ordering::Relaxed);
        self.wake();
    }

    /// Asks the database for due deliveries now (a delivery was put back in the queue).
    pub fn wake(&self) {
        self.poll_at(0);
    }

    fn poll_at(&self, at_ms: i64) {
        self.wakeup.at(at_ms);
    }

    fn in_flight(&self) -> usize {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Runs until the process ends. Takes what the writer hands over and what falls due, as long
    /// as there is room in memory; otherwise waits for room.
    pub async fn run(self: Arc<Self>) {
        let mut handover = self.handover.lock().await;
        loop {
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            let room = self.in_flight() < MAX_IN_FLIGHT;
            let wait = Duration::from_millis((self.wakeup.next_ms() - self.now_ms()).max(0) as u64);
            tokio::select! {
                received = handover.recv(), if room => match received {
                    Some(h) => self.start_handover(h),
                    None => return,
                },
                _ = tokio::time::sleep(wait), if room => {
                    if let Err(e) = self.poll().await {
                        tracing::warn!(error = format!("{e:#}"), "could not take due work; trying again in a second");
                        self.wakeup.set(self.now_ms() + 1000);
                    }
                }
                _ = self.spilled.notified() => self.poll_at(0),
                _ = self.wakeup.changed() => {}
                _ = self.room.notified(), if !room => {}
                _ = self.stop.notified() => return,
            }
        }
    }

    /// Stops taking work, lets the sends under way finish (at most `grace`), then gives back
    /// the deliveries this process took and did not start: their leases end and their try is
    /// not counted, so the next start, or another instance, sends them at once and only once.
    pub async fn drain(&self, grace: Duration) -> Drained {
        self.stopping.store(true, Ordering::SeqCst);
        self.stop.notify_waiters();
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let idle = self.idle.notified();
            if self.in_flight() == 0 || tokio::time::timeout_at(deadline, idle).await.is_err() {
                break;
            }
        }
        let mut back: Vec<i64> = std::mem::take(&mut *self.given_back.lock().unwrap_or_else(|e| e.into_inner()));
        // What the writer handed over since the loop stopped.
        if let Ok(mut handover) = tokio::time::timeout(Duration::from_secs(1), self.handover.lock()).await {
            while let Ok(h) = handover.try_recv() {
                back.extend(h.deliveries.iter().map(|d| d.id));
            }
        }
        // Still queued when the grace ran out: not started, so given back too.
        let sending = self.sending.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let queued: Vec<i64> = {
            let in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            in_flight.iter().filter(|id| !sending.contains(id)).copied().collect()
        };
        {
            let carried = self.carried.lock().unwrap_or_else(|e| e.into_inner());
            for id in queued {
                back.push(id);
                back.extend(carried.get(&id).into_iter().flatten().copied());
            }
        }
        let given_back = back.len();
        if !back.is_empty() {
            let released = self.db.write(move |w| Box::pin(async move { deliveries::release(w, &back).await })).await;
            if let Err(e) = released {
                tracing::warn!(error = %e, "could not give back unstarted deliveries; they go when their leases run out");
            }
        }
        Drained { given_back, cut_off: sending.len() }
    }

    /// Sends everything handed over so far and everything due now, and waits until each outcome
    /// is recorded. For tests and tools that drive the dispatcher themselves (`autorun = false`).
    pub async fn run_once(self: &Arc<Self>) -> anyhow::Result<Report> {
        let mut report = Report::default();
        loop {
            let (fell_due, more) = self.fire_escalations().await?;
            report.escalations += fell_due;
            if !more {
                break;
            }
        }
        // While `run` is going, it holds the hand-over and sends what it receives itself.
        if let Ok(mut handover) = self.handover.try_lock() {
            while let Ok(h) = handover.try_recv() {
                report.handed_over += h.deliveries.len();
                self.start_handover(h);
            }
        }
        loop {
            let (claimed, more) = self.claim_due().await?;
            report.claimed += claimed;
            if !more {
                break;
            }
        }
        loop {
            let idle = self.idle.notified();
            if self.in_flight() == 0 {
                return Ok(report);
            }
            idle.await;
        }
    }

    fn start_handover(self: &Arc<Self>, h: Handover) {
        let alert = Arc::new(self.senders.prepare(h.event));
        let timing = Timing { received: h.received, committed: h.committed };
        for d in h.deliveries {
            self.start(d, alert.clone(), Some(timing));
        }
    }

    /// Claims what is due as far as there is room, and sets when to ask again: at once if more
    /// is due, else when the next retry or lease falls due (at the latest one lease from now).
    async fn poll(self: &Arc<Self>) -> anyhow::Result<()> {
        let (_, more_escalations) = self.fire_escalations().await?;
        let (_, more) = self.claim_due().await?;
        let now = self.now_ms();
        let lease_check = now + self.settings.lease.as_millis() as i64;
        let next = if more || more_escalations {
            now
        } else {
            let mut system = self.db.system().await?;
            let retry = deliveries::next_due_ms(&mut system).await?;
            let escalation = escalations::next_due_ms(&mut system).await?;
            let due = retry.into_iter().chain(escalation).min();
            due.map_or(lease_check, |due| due.clamp(now + 50, lease_check))
        };
        self.wakeup.set(next);
        Ok(())
    }

    /// Takes the escalation steps due now (a batch at most): each fires through the writer as an
    /// event of its own, or ends without one when its reason is gone (a claim, the policy turned
    /// off). Answers how many, and whether more may be due.
    ///
    /// The event's webhook id names the lead and step, so a step fired twice (a crash between
    /// storing the event and ending the timer, two instances at once) is stored and sent once.
    async fn fire_escalations(&self) -> anyhow::Result<(usize, bool)> {
        let now = self.now_ms();
        let due = escalations::due(&mut self.db.system().await?, now, ESCALATION_BATCH).await?;
        let more = due.len() as i64 == ESCALATION_BATCH;
        let mut policies: HashMap<String, Option<escalations::Stored>> = HashMap::new();
        let taken = due.len();
        let mut works = Vec::with_capacity(taken);
        for d in due {
            if !policies.contains_key(&d.business_id) {
                let policy = escalations::policy(&mut self.db.system().await?, &d.business_id).await?;
                policies.insert(d.business_id.clone(), policy);
            }
            let stored = policies.get(&d.business_id).and_then(Option::as_ref);
            let step = DueStep {
                step: u8::try_from(d.step).unwrap_or(u8::MAX),
                lead_score: d.score.and_then(|s| u8::try_from(s).ok()),
                claimed_by: d.claimed_by_name.clone(),
            };
            let decision = match d.lead_found {
                true => escalation::at_due(stored.map(|s| &s.policy), &step),
                false => AtDue::Cancel("the lead is gone".into()),
            };
            works.push(match decision {
                AtDue::Fire { step, minutes, people, channels } => {
                    let name_of = |id: i64| stored.map(|s| s.name_of(id)).unwrap_or_default();
                    let people = people.into_iter().map(|id| (id, name_of(id))).collect();
                    let next = stored.and_then(|s| escalation::next_due(&s.policy, step, now));
                    Work::Fire { d, step: Step { step, minutes, people, channels }, next }
                }
                AtDue::Cancel(note) => Work::Cancel { d, note },
            });
        }
        // All at once: the writer stores the batch's steps in a few shared commits.
        for result in futures_util::future::join_all(works.into_iter().map(|w| self.take(w, now))).await {
            result?;
        }
        Ok((taken, more))
    }

    /// Fires a due step, or ends its timer with why not.
    async fn take(&self, work: Work, now: i64) -> anyhow::Result<()> {
        match work {
            Work::Fire { d, step, next } => {
                if !self.fire(d, step, next, now).await? {
                    // This step and the rest wait for the next look, a second from now.
                    anyhow::bail!("the writer is too busy to take an escalation");
                }
                if let Some((_, at)) = next {
                    self.poll_at(at);
                }
            }
            Work::Cancel { d, note } => {
                self.db.write(move |w| Box::pin(async move { escalations::cancel(w, &d, &note, now).await })).await?;
            }
        }
        Ok(())
    }

    /// Stores a step's event (planned by the writer like any other) and ends its timer, starting
    /// the next step's. False when the writer is too busy to take it now.
    async fn fire(&self, d: Due, step: Step, next: Option<(u8, i64)>, now: i64) -> anyhow::Result<bool> {
        let Step { step, minutes, people, channels } = step;
        let Some(row) = leads::get(&mut self.db.system().await?, &d.business_id, &d.lead_id).await? else {
            let note = "the lead is gone";
            self.db.write(move |w| Box::pin(async move { escalations::cancel(w, &d, note, now).await })).await?;
            return Ok(true);
        };
        let lead = Lead {
            lead_id: row.lead_id,
            name: row.name,
            phone: row.phone,
            email: row.email,
            score: row.score.and_then(|s| u8::try_from(s).ok()),
            summary: row.summary,
            occurred_at: row.first_seen_at,
        };
        let webhook_id = format!("escalation:{}:{step}", d.lead_id);
        let event = Event::LeadEscalated(Escalated { lead, step, minutes, people, channels });
        let event_id = match self.db.ingest(NewEvent::new(d.business_id.clone(), webhook_id, event, now)).await {
            Ok(Stored::New(id) | Stored::Duplicate(id)) => id,
            Err(_) => return Ok(false),
        };
        self.db
            .write(move |w| Box::pin(async move { escalations::fired(w, &d, event_id, minutes, next, now).await }))
            .await?;
        Ok(true)
    }

    /// Claims due deliveries from the database, at most as many as there is room for, and starts
    /// them. Answers how many, and whether more may be due.
    async fn claim_due(self: &Arc<Self>) -> anyhow::Result<(usize, bool)> {
        let limit = MAX_IN_FLIGHT.saturating_sub(self.in_flight()).min(CLAIM_BATCH);
        if limit == 0 {
            return Ok((0, true));
        }
        let (due, now, lease_ms) = (self.now_ms(), unix_now_ms(), self.settings.lease.as_millis() as i64);
        let claimed =
            self.db.write(move |w| Box::pin(deliveries::claim_due(w, due, now, lease_ms, limit as i64))).await?;
        let more = claimed.len() == limit;
        let fresh: Vec<Claimed> = {
            let in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            claimed.into_iter().filter(|d| !in_flight.contains(&d.id)).collect()
        };
        let mut event_ids: Vec<i64> = fresh.iter().map(|d| d.event_id).collect();
        event_ids.sort_unstable();
        event_ids.dedup();
        let mut alerts: HashMap<i64, Result<Arc<Alert>, String>> = HashMap::new();
        for row in events::by_ids(&mut self.db.system().await?, &event_ids).await? {
            let alert = row.event().map_err(|e| format!("the stored event could not be read: {e}")).map(|event| {
                let event = AlertEvent {
                    id: row.id,
                    business_id: row.business_id.clone(),
                    event,
                    usage_threshold: row.usage_threshold(),
                };
                Arc::new(self.senders.prepare(Arc::new(event)))
            });
            alerts.insert(row.id, alert);
        }
        let started = fresh.len();
        let (fresh, summaries) = summaries(fresh, &alerts, &self.senders);
        for s in summaries {
            self.start_job(s.carrier, s.message, None, s.merged);
        }
        for d in fresh {
            match alerts.get(&d.event_id) {
                Some(Ok(alert)) => self.start(d, alert.clone(), None),
                Some(Err(error)) => {
                    self.db
                        .record(Outcome::Ended { id: d.id, status: DeliveryStatus::Failed, error: error.clone() })
                        .await;
                }
                None => {
                    let error = "its event is gone".to_owned();
                    self.db.record(Outcome::Ended { id: d.id, status: DeliveryStatus::Failed, error }).await;
                }
            }
        }
        Ok((started, more))
    }

    fn lane(&self, channel: Channel) -> &Lane {
        match channel {
            Channel::Email => &self.email,
            Channel::Sms => &self.sms,
            Channel::InApp => &self.in_app,
        }
    }

    /// Queues a delivery for its channel's workers, unless it is already in flight here.
    fn start(self: &Arc<Self>, delivery: Claimed, alert: Arc<Alert>, timing: Option<Timing>) {
        self.start_job(delivery, alert, timing, Vec::new());
    }

    fn start_job(
        self: &Arc<Self>,
        delivery: Claimed,
        alert: Arc<Alert>,
        timing: Option<Timing>,
        merged: Vec<(i64, String)>,
    ) {
        self.workers_started.call_once(|| {
            for channel in Channel::ALL {
                for _ in 0..self.lane(channel).workers {
                    tokio::spawn(self.clone().work(channel));
                }
            }
        });
        if !self.in_flight.lock().unwrap_or_else(|e| e.into_inner()).insert(delivery.id) {
            return;
        }
        if !merged.is_empty() {
            let ids = merged.iter().map(|(id, _)| *id).collect();
            self.carried.lock().unwrap_or_else(|e| e.into_inner()).insert(delivery.id, ids);
        }
        let channel = delivery.channel;
        let job = Job { delivery, alert, timing, queued: Instant::now(), merged };
        if self.lane(channel).jobs.send(job).is_err() {
            tracing::warn!("the dispatcher's workers stopped");
        }
    }

    /// One worker of a channel: takes the next delivery, sends it, hands the outcome to the
    /// writer and takes the next one (the delivery stays in flight until the outcome is stored).
    async fn work(self: Arc<Self>, channel: Channel) {
        loop {
            let next = self.lane(channel).waiting.lock().await.recv().await;
            let Some(job) = next else { return };
            if self.stopping.load(Ordering::SeqCst) {
                // Taken but not started: given back when the process stops.
                let mut back = self.given_back.lock().unwrap_or_else(|e| e.into_inner());
                back.push(job.delivery.id);
                back.extend(job.merged.iter().map(|(id, _)| *id));
                drop(back);
                self.done(job.delivery.id);
                continue;
            }
            self.sending.lock().unwrap_or_else(|e| e.into_inner()).insert(job.delivery.id);
            let merged = job.merged.clone();
            // Every log line of this delivery, from its send to its outcome's commit, names it.
            let d = &job.delivery;
            let span =
                tracing::info_span!("delivery", delivery_id = d.id, event_id = d.event_id, channel = d.channel.code());
            let (id, outcome) = self.deliver(job).instrument(span.clone()).await;
            let me = self.clone();
            let record = async move {
                // What the message carried for the others ends as it did, in the same commit; a
                // retry retries them with it, so that they are released together again and go
                // as one message.
                if let Outcome::Sent { .. } = &outcome {
                    for _ in &merged {
                        me.metrics.delivery(channel, Ended::Merged);
                    }
                }
                let mut all: Vec<Outcome> = merged
                    .iter()
                    .filter_map(|(other, note)| match &outcome {
                        Outcome::Sent { .. } => Some(Outcome::Merged { id: *other, note: note.clone() }),
                        Outcome::Retry { at_ms, error, .. } => {
                            Some(Outcome::Retry { id: *other, at_ms: *at_ms, error: error.clone() })
                        }
                        Outcome::Ended { status, error, .. } => {
                            Some(Outcome::Ended { id: *other, status: *status, error: error.clone() })
                        }
                        _ => None,
                    })
                    .collect();
                all.push(outcome);
                if !me.db.record_all(all).await {
                    tracing::warn!(
                        delivery = id,
                        "recording a delivery failed; its lease will run out and it will be tried again"
                    );
                }
                me.done(id);
            };
            tokio::spawn(record.instrument(span));
        }
    }

    /// A delivery's outcome is stored: it leaves the in-flight set.
    fn done(&self, id: i64) {
        self.sending.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        self.carried.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        in_flight.remove(&id);
        if in_flight.is_empty() {
            self.idle.notify_waiters();
        }
        drop(in_flight);
        self.room.notify_one();
    }

    /// Counts a send for `/metrics`: the provider's time, what it came to, and for an alert that
    /// was not held back, how long after its event's arrival it went.
    fn count(&self, d: &Claimed, outcome: &Outcome, call: Duration) {
        let m = &self.metrics;
        m.provider_call(d.channel, call.as_secs_f64());
        match outcome {
            Outcome::Sent { .. } => {
                m.delivery(d.channel, Ended::Sent);
                if d.held_until_ms.is_none() {
                    let after_ms = unix_now_ms().saturating_sub(d.created_at_ms).max(0);
                    m.lead_to_send(d.channel, after_ms as f64 / 1000.0);
                }
            }
            Outcome::Retry { .. } => m.retry(d.channel),
            Outcome::Ended { status: DeliveryStatus::Dead, .. } => m.delivery(d.channel, Ended::Dead),
            Outcome::Ended { .. } => m.delivery(d.channel, Ended::Failed),
            _ => {}
        }
    }

    /// Sends one delivery; answers its outcome, to be recorded.
    async fn deliver(&self, job: Job) -> (i64, Outcome) {
        let Job { delivery: d, alert, timing, queued, .. } = job;
        let send_start = Instant::now();
        let result = self.senders.send(&d, &alert).await;
        let send_done = Instant::now();
        let Decision { outcome, refused_number, opted_out } =
            outcome::decide(&d, result, unix_now_ms(), &self.settings);
        self.count(&d, &outcome, send_done.saturating_duration_since(send_start));
        if opted_out {
            // Learned from a refused send rather than from the STOP itself (texts back not set
            // up in Twilio, or missed): the same as hearing it, so START brings texts back.
            let number = d.address.clone();
            let noted = self
                .db
                .write(move |w| {
                    Box::pin(
                        async move { crate::db::sms::opt_out(w, &number, "STOP", unix_now_ms()).await.map(|_| ()) },
                    )
                })
                .await;
            if let Err(e) = noted {
                tracing::warn!(delivery = d.id, error = %e, "could not note an opted-out phone number");
            }
        }
        if let (Some(problem), Some(user_id)) = (refused_number, d.user_id)
            && let Err(e) = self.refuse_number(&d, user_id, problem).await
        {
            tracing::warn!(delivery = d.id, error = %e, "could not mark a refused phone number");
        }
        if let Outcome::Retry { at_ms, .. } = &outcome {
            self.poll_at(*at_ms);
        }
        if let Some(t) = timing {
            let us = |a: Instant, b: Instant| b.saturating_duration_since(a).as_micros() as u64;
            tracing::debug!(
                target: "kaicalls_notify::timing",
                delivery = d.id,
                channel = d.channel.code(),
                total_us = us(t.received, send_done),
                write_us = us(t.received, t.committed),
                handover_us = us(t.committed, queued),
                queue_us = us(queued, send_start),
                send_us = us(send_start, send_done),
                "delivered"
            );
        }
        (d.id, outcome)
    }

    /// Marks the person's number as refused and tells the owners and admins in-app.
    async fn refuse_number(&self, d: &Claimed, user_id: i64, problem: String) -> sqlx::Result<()> {
        let name = d.person_name.clone().unwrap_or_else(|| "A teammate".into());
        let body = format!("{problem}. No more texts go to it until {name} updates their phone number in Account.");
        let title = format!("SMS to {name} failed");
        let business = d.business_id.clone();
        self.db
            .write(move |w| {
                Box::pin(async move {
                    users::block_phone(w, &business, user_id, &problem).await?;
                    notifications::tell_managers(w, &business, &title, &body, "/team", unix_now()).await
                })
            })
            .await
    }
}

/// One message for what was held back (quiet hours, a lead's update window): the delivery that
/// carries it, and the others with where they went in words.
struct Summary {
    carrier: Claimed,
    message: Arc<Alert>,
    merged: Vec<(i64, String)>,
}

/// Deliveries released together to one address on one channel go as one message: updates of
/// the same lead merge into the latest; what is left goes as that one alert, or as a summary of
/// all of them (the end of quiet hours). A person's daily summary is a message of its own, even
/// for one lead. Answers the deliveries to send one by one, and the messages that carry several.
fn summaries(
    claimed: Vec<Claimed>,
    alerts: &HashMap<i64, Result<Arc<Alert>, String>>,
    senders: &Senders,
) -> (Vec<Claimed>, Vec<Summary>) {
    let mut single = Vec::new();
    let mut groups: HashMap<(Channel, String, bool), Vec<Claimed>> = HashMap::new();
    for d in claimed {
        match (d.held_until_ms, alerts.get(&d.event_id)) {
            (Some(_), Some(Ok(_))) => {
                let digest = d.held_for == Some(HoldKind::Digest);
                groups.entry((d.channel, d.address.clone(), digest)).or_default().push(d);
            }
            _ => single.push(d),
        }
    }
    let alert_of = |d: &Claimed| alerts.get(&d.event_id).and_then(|a| a.as_ref().ok()).cloned();
    let update_of = |d: &Claimed| {
        alert_of(d).and_then(|a| match &a.event.event {
            Event::LeadUpdated(lead) => Some(lead.lead_id.clone()),
            _ => None,
        })
    };
    let mut summaries = Vec::new();
    for ((_, _, digest), mut group) in groups {
        if group.len() == 1 && !digest {
            single.append(&mut group);
            continue;
        }
        group.sort_by_key(|d| d.id);
        // Updates of one lead: only the latest goes.
        let mut merged: Vec<(i64, String)> = Vec::new();
        let mut kept: Vec<Claimed> = Vec::new();
        for d in group.into_iter().rev() {
            let latest = update_of(&d).and_then(|lead| kept.iter().find(|k| update_of(k).as_ref() == Some(&lead)));
            match latest {
                Some(latest) => {
                    let note = match &latest.held_at {
                        Some(at) => format!("merged into the update of this lead sent at {at}"),
                        None => "merged into the latest update of this lead, which went instead".into(),
                    };
                    merged.push((d.id, note));
                }
                None => kept.push(d),
            }
        }
        kept.reverse();
        let carrier = kept.remove(0);
        let message = if kept.is_empty() && !digest {
            match alert_of(&carrier) {
                Some(alert) => alert,
                None => continue,
            }
        } else {
            let held: Vec<Arc<Alert>> = std::iter::once(&carrier).chain(kept.iter()).filter_map(alert_of).collect();
            let events: Vec<(&Event, Option<u8>)> =
                held.iter().map(|a| (&a.event.event, a.event.usage_threshold)).collect();
            let others = kept.len();
            let plural = if others == 1 { "" } else { "s" };
            let note = match (digest, &carrier.held_at) {
                (true, Some(at)) => format!("sent in the {at} digest, with {others} other lead{plural}"),
                (true, None) => format!("sent in the daily digest, with {others} other lead{plural}"),
                (false, Some(at)) => format!("sent in the {at} summary, with {others} other alert{plural}"),
                (false, None) => {
                    format!("sent in the summary at the end of quiet hours, with {others} other alert{plural}")
                }
            };
            merged.extend(kept.iter().map(|d| (d.id, note.clone())));
            let first = held.first().map(|a| a.event.clone());
            let Some(first) = first else { continue };
            Arc::new(if digest {
                senders.prepare_digest(first, &events)
            } else {
                senders.prepare_summary(first, &events)
            })
        };
        summaries.push(Summary { carrier, message, merged });
    }
    (single, summaries)
}
