//! The dispatcher: sends what the writer hands over the moment its commit is done, and what
//! falls due later (retries, and deliveries whose lease ran out because the process holding them
//! stopped). Each channel has its own queue and its own workers, so a slow mail server never
//! holds up texts, and a burst waits in a queue of small entries rather than as thousands of
//! tasks.
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc};

use super::outcome::{self, Decision};
use super::send::{Alert, Senders};
use crate::clock::{unix_now, unix_now_ms};
use crate::config::DispatchSettings;
use crate::db::deliveries::{self, Claimed, Outcome};
use crate::db::writer::AlertEvent;
use crate::db::{Db, Handed, Handover, events, notifications, users};
use crate::domain::Channel;
use crate::domain::delivery::DeliveryStatus;

/// Sends in flight at once, per channel (the SMTP sender keeps as many connections).
const EMAIL_WORKERS: usize = 32;
const SMS_WORKERS: usize = 32;
const IN_APP_WORKERS: usize = 64;
/// Deliveries claimed from the database per query.
const CLAIM_BATCH: usize = 256;
/// Deliveries held in memory at most (queued and being sent). Past this, the writer stores new
/// deliveries unclaimed and the dispatcher reads them back as it gets through the queue.
const MAX_IN_FLIGHT: usize = 4096;

/// When a delivery handed over in memory went through each stage (for the timing log).
#[derive(Debug, Clone, Copy)]
struct Timing {
    received: Instant,
    committed: Instant,
}

/// What `run_once` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Deliveries handed over by the writer.
    pub handed_over: usize,
    /// Deliveries claimed from the database (retries due, leases run out).
    pub claimed: usize,
}

/// One delivery waiting for a worker of its channel.
struct Job {
    delivery: Claimed,
    alert: Arc<Alert>,
    timing: Option<Timing>,
    queued: Instant,
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
    /// When the database should next be asked for due deliveries (unix ms).
    next_poll_ms: AtomicI64,
    poll_changed: Notify,
}

impl Dispatcher {
    pub fn new(db: Db, senders: Senders, settings: DispatchSettings, handed: Handed) -> Arc<Self> {
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
            // At start-up: whatever a previous run left pending.
            next_poll_ms: AtomicI64::new(0),
            poll_changed: Notify::new(),
        })
    }

    /// Asks the database for due deliveries now (a delivery was put back in the queue).
    pub fn wake(&self) {
        self.poll_at(0);
    }

    fn poll_at(&self, at_ms: i64) {
        if self.next_poll_ms.fetch_min(at_ms, Ordering::Relaxed) > at_ms {
            self.poll_changed.notify_one();
        }
    }

    fn in_flight(&self) -> usize {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Runs until the process ends. Takes what the writer hands over and what falls due, as long
    /// as there is room in memory; otherwise waits for room.
    pub async fn run(self: Arc<Self>) {
        let mut handover = self.handover.lock().await;
        loop {
            let room = self.in_flight() < MAX_IN_FLIGHT;
            let wait = Duration::from_millis((self.next_poll_ms.load(Ordering::Relaxed) - unix_now_ms()).max(0) as u64);
            tokio::select! {
                received = handover.recv(), if room => match received {
                    Some(h) => self.start_handover(h),
                    None => return,
                },
                _ = tokio::time::sleep(wait), if room => {
                    if let Err(e) = self.poll().await {
                        tracing::warn!(error = format!("{e:#}"), "could not claim due deliveries; trying again in a second");
                        self.next_poll_ms.store(unix_now_ms() + 1000, Ordering::Relaxed);
                    }
                }
                _ = self.spilled.notified() => self.poll_at(0),
                _ = self.poll_changed.notified() => {}
                _ = self.room.notified(), if !room => {}
            }
        }
    }

    /// Sends everything handed over so far and everything due now, and waits until each outcome
    /// is recorded. For tests and tools that drive the dispatcher themselves (`autorun = false`).
    pub async fn run_once(self: &Arc<Self>) -> anyhow::Result<Report> {
        let mut report = Report::default();
        {
            let mut handover = self.handover.lock().await;
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
        let (_, more) = self.claim_due().await?;
        let now = unix_now_ms();
        let lease_check = now + self.settings.lease.as_millis() as i64;
        let next = if more {
            now
        } else {
            let due = deliveries::next_due_ms(&mut self.db.system().await?).await?;
            due.map_or(lease_check, |due| due.clamp(now + 50, lease_check))
        };
        self.next_poll_ms.store(next, Ordering::Relaxed);
        Ok(())
    }

    /// Claims due deliveries from the database, at most as many as there is room for, and starts
    /// them. Answers how many, and whether more may be due.
    async fn claim_due(self: &Arc<Self>) -> anyhow::Result<(usize, bool)> {
        let limit = MAX_IN_FLIGHT.saturating_sub(self.in_flight()).min(CLAIM_BATCH);
        if limit == 0 {
            return Ok((0, true));
        }
        let (now, lease_ms) = (unix_now_ms(), self.settings.lease.as_millis() as i64);
        let claimed = self.db.write(move |w| Box::pin(deliveries::claim_due(w, now, lease_ms, limit as i64))).await?;
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
        let channel = delivery.channel;
        let job = Job { delivery, alert, timing, queued: Instant::now() };
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
            let (id, outcome) = self.deliver(job).await;
            let me = self.clone();
            tokio::spawn(async move {
                if !me.db.record(outcome).await {
                    tracing::warn!(
                        delivery = id,
                        "recording a delivery failed; its lease will run out and it will be tried again"
                    );
                }
                me.done(id);
            });
        }
    }

    /// A delivery's outcome is stored: it leaves the in-flight set.
    fn done(&self, id: i64) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        in_flight.remove(&id);
        if in_flight.is_empty() {
            self.idle.notify_waiters();
        }
        drop(in_flight);
        self.room.notify_one();
    }

    /// Sends one delivery; answers its outcome, to be recorded.
    async fn deliver(&self, job: Job) -> (i64, Outcome) {
        let Job { delivery: d, alert, timing, queued } = job;
        let send_start = Instant::now();
        let result = self.senders.send(&d, &alert).await;
        let send_done = Instant::now();
        let Decision { outcome, refused_number } = outcome::decide(&d, result, unix_now_ms(), &self.settings);
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
