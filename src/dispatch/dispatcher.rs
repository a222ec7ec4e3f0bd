//! The dispatcher: sends what the writer hands over the moment its commit is done, and what
//! falls due later (retries, and deliveries whose lease ran out because the process holding them
//! stopped). Each channel has its own limit, so a slow mail server never holds up texts.
use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinSet;

use super::outcome::{self, Decision};
use super::send::{Alert, Senders};
use crate::clock::{unix_now, unix_now_ms};
use crate::config::DispatchSettings;
use crate::db::deliveries::{self, Claimed, Outcome};
use crate::db::writer::AlertEvent;
use crate::db::{Db, Handover, events, notifications, users};
use crate::domain::Channel;

/// Sends in flight at once, per channel (the SMTP sender keeps as many connections).
const EMAIL_CONCURRENCY: usize = 32;
const SMS_CONCURRENCY: usize = 32;
const IN_APP_CONCURRENCY: usize = 64;
/// Deliveries claimed from the database per query.
const CLAIM_BATCH: i64 = 256;

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

pub struct Dispatcher {
    db: Db,
    senders: Senders,
    settings: DispatchSettings,
    handover: tokio::sync::Mutex<mpsc::Receiver<Handover>>,
    /// Deliveries being sent by this process: a lease that runs out mid-send is never sent twice.
    in_flight: Mutex<HashSet<i64>>,
    email_slots: Arc<Semaphore>,
    sms_slots: Arc<Semaphore>,
    in_app_slots: Arc<Semaphore>,
    /// When the database should next be asked for due deliveries (unix ms).
    next_poll_ms: AtomicI64,
    poll_changed: Notify,
}

impl Dispatcher {
    pub fn new(db: Db, senders: Senders, settings: DispatchSettings, handover: mpsc::Receiver<Handover>) -> Arc<Self> {
        Arc::new(Self {
            db,
            senders,
            settings,
            handover: tokio::sync::Mutex::new(handover),
            in_flight: Mutex::new(HashSet::new()),
            email_slots: Arc::new(Semaphore::new(EMAIL_CONCURRENCY)),
            sms_slots: Arc::new(Semaphore::new(SMS_CONCURRENCY)),
            in_app_slots: Arc::new(Semaphore::new(IN_APP_CONCURRENCY)),
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

    /// Runs until the process ends.
    pub async fn run(self: Arc<Self>) {
        let mut handover = self.handover.lock().await;
        loop {
            let wait = Duration::from_millis((self.next_poll_ms.load(Ordering::Relaxed) - unix_now_ms()).max(0) as u64);
            tokio::select! {
                received = handover.recv() => match received {
                    Some(h) => self.start_handover(h, None),
                    None => return,
                },
                _ = tokio::time::sleep(wait) => {
                    if let Err(e) = self.poll(None).await {
                        tracing::warn!(error = format!("{e:#}"), "could not claim due deliveries; trying again in a second");
                        self.next_poll_ms.store(unix_now_ms() + 1000, Ordering::Relaxed);
                    }
                }
                _ = self.poll_changed.notified() => {}
            }
        }
    }

    /// Sends everything handed over so far and everything due now, and waits until each outcome
    /// is recorded. For tests and tools that drive the dispatcher themselves (`autorun = false`).
    pub async fn run_once(self: &Arc<Self>) -> anyhow::Result<Report> {
        let mut report = Report::default();
        let mut sends = JoinSet::new();
        {
            let mut handover = self.handover.lock().await;
            while let Ok(h) = handover.try_recv() {
                report.handed_over += h.deliveries.len();
                self.start_handover(h, Some(&mut sends));
            }
        }
        report.claimed = self.poll(Some(&mut sends)).await?;
        while sends.join_next().await.is_some() {}
        Ok(report)
    }

    fn start_handover(self: &Arc<Self>, h: Handover, mut sends: Option<&mut JoinSet<()>>) {
        let alert = Arc::new(self.senders.prepare(h.event));
        let timing = Timing { received: h.received, committed: h.committed };
        for d in h.deliveries {
            self.start(d, alert.clone(), Some(timing), sends.as_deref_mut());
        }
    }

    /// Claims due deliveries from the database and starts them; answers how many.
    async fn poll(self: &Arc<Self>, mut sends: Option<&mut JoinSet<()>>) -> anyhow::Result<usize> {
        let mut started = 0;
        loop {
            let (now, lease_ms) = (unix_now_ms(), self.settings.lease.as_millis() as i64);
            let claimed =
                self.db.write(move |w| Box::pin(deliveries::claim_due(w, now, lease_ms, CLAIM_BATCH))).await?;
            let full = claimed.len() as i64 == CLAIM_BATCH;
            let fresh: Vec<Claimed> = {
                let in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
                claimed.into_iter().filter(|d| !in_flight.contains(&d.id)).collect()
            };
            let mut event_ids: Vec<i64> = fresh.iter().map(|d| d.event_id).collect();
            event_ids.sort_unstable();
            event_ids.dedup();
            let rows = events::by_ids(&mut *self.db.system().acquire().await?, &event_ids).await?;
            for d in fresh {
                let Some(row) = rows.iter().find(|r| r.id == d.event_id) else { continue };
                let event = match row.event() {
                    Ok(event) => event,
                    Err(e) => {
                        let error = format!("the stored event could not be read: {e}");
                        let ended =
                            Outcome::Ended { id: d.id, status: crate::domain::delivery::DeliveryStatus::Failed, error };
                        self.db.record(ended).await;
                        continue;
                    }
                };
                let event = Arc::new(AlertEvent {
                    id: row.id,
                    business_id: row.business_id.clone(),
                    event,
                    usage_threshold: row.usage_threshold(),
                });
                self.start(d, Arc::new(self.senders.prepare(event)), None, sends.as_deref_mut());
                started += 1;
            }
            if !full {
                break;
            }
        }
        let next_due = deliveries::next_due_ms(&mut *self.db.system().acquire().await?).await?;
        let lease_check = unix_now_ms() + self.settings.lease.as_millis() as i64;
        self.next_poll_ms
            .store(next_due.map_or(lease_check, |due| due.clamp(unix_now_ms() + 50, lease_check)), Ordering::Relaxed);
        Ok(started)
    }

    fn start(self: &Arc<Self>, d: Claimed, alert: Arc<Alert>, timing: Option<Timing>, sends: Option<&mut JoinSet<()>>) {
        if !self.in_flight.lock().unwrap_or_else(|e| e.into_inner()).insert(d.id) {
            return;
        }
        let me = self.clone();
        let task = async move { me.deliver(d, &alert, timing).await };
        match sends {
            Some(set) => {
                set.spawn(task);
            }
            None => {
                tokio::spawn(task);
            }
        }
    }

    async fn deliver(&self, d: Claimed, alert: &Alert, timing: Option<Timing>) {
        let task_start = Instant::now();
        let slots = match d.channel {
            Channel::Email => &self.email_slots,
            Channel::Sms => &self.sms_slots,
            Channel::InApp => &self.in_app_slots,
        };
        let Ok(_slot) = slots.acquire().await else { return };
        let send_start = Instant::now();
        let result = self.senders.send(&d, alert).await;
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
        let stored = self.db.record(outcome).await;
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner()).remove(&d.id);
        if !stored {
            tracing::warn!(
                delivery = d.id,
                "recording a delivery failed; its lease will run out and it will be tried again"
            );
        }
        if let Some(t) = timing {
            let us = |a: Instant, b: Instant| b.saturating_duration_since(a).as_micros() as u64;
            let recorded = Instant::now();
            tracing::debug!(
                target: "kaicalls_notify::timing",
                delivery = d.id,
                channel = d.channel.code(),
                total_us = us(t.received, send_done),
                write_us = us(t.received, t.committed),
                handover_us = us(t.committed, task_start),
                slot_us = us(task_start, send_start),
                send_us = us(send_start, send_done),
                record_us = us(send_done, recorded),
                "delivered"
            );
        }
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
