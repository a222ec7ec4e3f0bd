//! The writer: one task owns the only read-write connection, takes everything that waits (webhook
//! events, delivery outcomes, inbox rows, any other write) and commits it in one transaction, so
//! many requests share one fsync. Every caller is answered only after that commit.
//!
//! Webhook events are planned here, before the transaction, from caches of each business's
//! routing settings and usage thresholds; the deliveries to send are inserted already claimed,
//! and handed to the dispatcher in memory right after the commit.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, SqliteConnection};
use tokio::sync::mpsc::OwnedPermit;
use tokio::sync::{Notify, broadcast, mpsc, oneshot};
use tracing::Instrument;

use super::checkpoint::{Activity, Watch};
use super::deliveries::{self, Claimed, Outcome};
use super::events::{self, Stored};
pub use super::ingest::NewEvent;
use super::ingest::{self, Claims, Conflict, Item, ItemPlan, UsageAlerted};
use super::notifications::{self, NewNotification};
use super::{Conn, Link, Write, WriterSettings, defaults, escalations, leads, recipients};
use crate::clock::unix_now_ms;
use crate::domain::events::{Escalated, Event};
use crate::domain::planning::Routing;
use crate::domain::routing::Claimer;

/// Jobs waiting for the writer; past this, webhooks are answered "busy".
const QUEUE: usize = 8192;
/// Events whose deliveries wait in memory for the dispatcher; past this, new deliveries are
/// stored unclaimed and the dispatcher reads them from the database when it has room, so a
/// burst costs rows on disk, not memory.
const HANDOVER_QUEUE: usize = 256;
/// Jobs per transaction at most.
const BATCH: usize = 1024;
/// Inbox changes waiting for slow listeners; past this they are told to refresh anyway.
const INBOX_SIGNALS: usize = 1024;
/// How often the writer completes a checkpoint between batches (see `finish_checkpoint`).
const FINISH_CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// How long delivery outcomes wait for other work to share a commit with.
const OUTCOME_HOLD: Duration = Duration::from_millis(20);
/// Businesses whose settings are cached at once (cleared when full).
const CACHED_BUSINESSES: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("storage is busy; try again shortly")]
    Busy,
}

/// An event as the dispatcher needs it: parsed, with the usage threshold that fired.
#[derive(Debug)]
pub struct AlertEvent {
    pub id: i64,
    pub business_id: String,
    pub event: Event,
    pub usage_threshold: Option<u8>,
}

/// What the dispatcher receives from the writer: the deliveries of each commit, a signal when
/// some were stored for it to read from the database instead (it was behind), and when to look
/// for due work next (a commit that starts an escalation timer moves it earlier).
pub struct Handed {
    pub deliveries: mpsc::Receiver<Handover>,
    pub spilled: Arc<Notify>,
    pub wakeup: Arc<Wakeup>,
}

/// When the dispatcher next asks the database for due work (unix ms, on its own clock).
#[derive(Debug, Default)]
pub struct Wakeup {
    next_ms: std::sync::atomic::AtomicI64,
    changed: Notify,
}

impl Wakeup {
    /// Asks for a look at `at_ms` at the latest.
    pub fn at(&self, at_ms: i64) {
        if self.next_ms.fetch_min(at_ms, std::sync::atomic::Ordering::Relaxed) > at_ms {
            self.changed.notify_one();
        }
    }

    /// Sets the next look (after one).
    pub fn set(&self, at_ms: i64) {
        self.next_ms.store(at_ms, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn next_ms(&self) -> i64 {
        self.next_ms.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits until `at` moved the next look earlier.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

/// Deliveries planned and claimed in one commit, for one event.
#[derive(Debug)]
pub struct Handover {
    pub event: Arc<AlertEvent>,
    pub deliveries: Vec<Claimed>,
    /// When the webhook request arrived, and when its commit finished (for the slow-alert log).
    pub received: Instant,
    pub committed: Instant,
}

/// The writer's own connection.
pub(super) enum Owned {
    Lite(SqliteConnection),
    /// With what it was opened with, to open it again after PostgreSQL dropped it.
    Pg(PgConnection, Box<PgConnectOptions>),
}

impl Owned {
    pub(super) fn conn(&mut self) -> Conn<'_> {
        match self {
            Owned::Lite(c) => Conn::Lite(c),
            Owned::Pg(c, _) => Conn::Pg(c),
        }
    }

    /// After a failed batch: a PostgreSQL connection that no longer answers is opened again.
    async fn heal(&mut self) {
        if let Owned::Pg(conn, options) = self {
            if sqlx::Connection::ping(conn).await.is_ok() {
                return;
            }
            match options.as_ref().connect().await {
                Ok(fresh) => {
                    tracing::info!("the writer reconnected to PostgreSQL");
                    *conn = fresh;
                }
                Err(e) => tracing::warn!(error = %e, "the writer cannot reconnect to PostgreSQL yet"),
            }
        }
    }
}

/// What another instance changed, heard through PostgreSQL (see `listen`).
pub(super) enum Heard {
    /// A business's routing settings (`None`: possibly any business's, while not listening).
    Routing(Option<String>),
    Inbox(i64),
}

enum Job {
    Heard(Heard),
    Ingest {
        new: NewEvent,
        received: Instant,
        reply: oneshot::Sender<Result<Stored, IngestError>>,
    },
    /// Outcomes committed together (a summary's and those of the deliveries it carried).
    Outcome(Vec<Outcome>, oneshot::Sender<bool>),
    Inbox(NewNotification, oneshot::Sender<bool>),
    Other(Box<dyn Pending>),
}

/// A write of any kind, run inside the batch's transaction in a savepoint of its own.
trait Pending: Send {
    /// Runs the write; false when it failed (and is to be rolled back).
    fn run<'w>(&'w mut self, w: &'w mut Write) -> BoxFuture<'w, bool>;
    /// Answers the caller once the batch committed, or did not.
    fn finish(self: Box<Self>, committed: Result<(), String>);
}

struct Closure<T, F> {
    job: Option<F>,
    result: Option<sqlx::Result<T>>,
    reply: oneshot::Sender<sqlx::Result<T>>,
}

impl<T, F> Pending for Closure<T, F>
where
    T: Send + 'static,
    F: for<'w> FnOnce(&'w mut Write) -> BoxFuture<'w, sqlx::Result<T>> + Send + 'static,
{
    fn run<'w>(&'w mut self, w: &'w mut Write) -> BoxFuture<'w, bool> {
        Box::pin(async move {
            let Some(job) = self.job.take() else { return false };
            let result = job(w).await;
            let ok = result.is_ok();
            self.result = Some(result);
            ok
        })
    }

    fn finish(self: Box<Self>, committed: Result<(), String>) {
        let answer = match (self.result, committed) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (_, Err(why)) => Err(not_stored(&why)),
            (None, Ok(())) => Err(not_stored("the write did not run")),
        };
        let _ = self.reply.send(answer);
    }
}

fn not_stored(why: &str) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::other(format!("the change was not saved: {why}")))
}

/// The handle every part of the process writes through.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
    inbox: broadcast::Sender<i64>,
    /// Names this process in the changes it announces, so it can ignore its own.
    pub(super) instance: u64,
}

impl Writer {
    /// Starts the writer on `conn`. Answers the handle, the receiver of planned deliveries, and
    /// the writer's activity (for the checkpointer).
    pub(super) fn start(conn: Owned, settings: WriterSettings) -> (Self, Handed, Watch) {
        let (jobs, rx) = mpsc::channel(QUEUE);
        let (handover, deliveries) = mpsc::channel(HANDOVER_QUEUE);
        let spilled = Arc::new(Notify::new());
        // At start-up: whatever a previous run left pending, at once.
        let wakeup = Arc::new(Wakeup::default());
        let (inbox, _) = broadcast::channel(INBOX_SIGNALS);
        let activity = Activity::default();
        let watch = activity.watch();
        let task = Task {
            write: Write::new(conn),
            routing: HashMap::new(),
            usage: HashMap::new(),
            claims: HashMap::new(),
            anchors: HashMap::new(),
            handover,
            spilled: spilled.clone(),
            wakeup: wakeup.clone(),
            inbox: inbox.clone(),
            lease: settings.lease,
            instance: rand::random(),
            activity,
            checkpointed: Instant::now(),
        };
        let instance = task.instance;
        tokio::spawn(task.run(rx));
        (Self { jobs, inbox, instance }, Handed { deliveries, spilled, wakeup }, watch)
    }

    pub(super) async fn run<T, F>(&self, job: F) -> sqlx::Result<T>
    where
        T: Send + 'static,
        F: for<'w> FnOnce(&'w mut Write) -> BoxFuture<'w, sqlx::Result<T>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let pending = Box::new(Closure { job: Some(job), result: None, reply });
        self.jobs.send(Job::Other(pending)).await.map_err(|_| not_stored("the writer has stopped"))?;
        answer.await.unwrap_or_else(|_| Err(not_stored("the writer has stopped")))
    }

    /// Passes on what another instance changed, in order with the writes that follow.
    pub(super) async fn heard(&self, heard: Heard) {
        let _ = self.jobs.send(Job::Heard(heard)).await;
    }

    pub(super) fn inbox_changes(&self) -> broadcast::Receiver<i64> {
        self.inbox.subscribe()
    }

    pub(super) async fn ingest(&self, new: NewEvent) -> Result<Stored, IngestError> {
        let (reply, answer) = oneshot::channel();
        let job = Job::Ingest { new, received: Instant::now(), reply };
        self.jobs.try_send(job).map_err(|_| IngestError::Busy)?;
        answer.await.unwrap_or(Err(IngestError::Busy))
    }

    /// Stores outcomes in one commit; true once it is committed.
    pub(super) async fn record(&self, outcomes: Vec<Outcome>) -> bool {
        let (done, stored) = oneshot::channel();
        self.jobs.send(Job::Outcome(outcomes, done)).await.is_ok() && stored.await.unwrap_or(false)
    }

    pub(super) async fn add_to_inbox(&self, notification: NewNotification) -> bool {
        let (done, stored) = oneshot::channel();
        self.jobs.send(Job::Inbox(notification, done)).await.is_ok() && stored.await.unwrap_or(false)
    }
}

/// True for the errors PostgreSQL answers when concurrent transactions collide (a deadlock, a
/// serialization failure): the transaction may simply run again.
fn is_retryable(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40P01" | "40001")))
}

type IngestReply = (oneshot::Sender<Result<Stored, IngestError>>, Instant);

/// Room reserved with the dispatcher, per batch item.
type Permits = HashMap<usize, OwnedPermit<Handover>>;

/// One batch, sorted by kind.
#[derive(Default)]
struct Batch {
    items: Vec<Item>,
    /// Per item, the requests waiting for it (the same webhook id may come twice in a batch).
    waiting: Vec<Vec<IngestReply>>,
    outcomes: Vec<(Outcome, oneshot::Sender<bool>)>,
    inbox: Vec<(NewNotification, oneshot::Sender<bool>)>,
    other: Vec<Box<dyn Pending>>,
    heard: Vec<Heard>,
}

impl Batch {
    fn new(jobs: Vec<Job>) -> Self {
        let mut batch = Self::default();
        let mut by_webhook: HashMap<(String, String), usize> = HashMap::new();
        for job in jobs {
            match job {
                Job::Ingest { new, received, reply } => {
                    let key = (new.business_id.clone(), new.webhook_id.clone());
                    match by_webhook.get(&key) {
                        Some(&i) => batch.waiting[i].push((reply, received)),
                        None => {
                            by_webhook.insert(key, batch.items.len());
                            batch.items.push(Item { new, stored_as: None, alerted_before: false });
                            batch.waiting.push(vec![(reply, received)]);
                        }
                    }
                }
                Job::Outcome(outcomes, done) => {
                    let last = outcomes.len().saturating_sub(1);
                    let mut done = Some(done);
                    for (i, outcome) in outcomes.into_iter().enumerate() {
                        // One answer for them all, sent with the last (they share its commit).
                        let answer = if i == last { done.take() } else { None };
                        batch.outcomes.push((outcome, answer.unwrap_or_else(|| oneshot::channel().0)));
                    }
                    if let Some(done) = done {
                        let _ = done.send(true);
                    }
                }
                Job::Inbox(notification, done) => batch.inbox.push((notification, done)),
                Job::Other(pending) => batch.other.push(pending),
                Job::Heard(heard) => batch.heard.push(heard),
            }
        }
        batch
    }
}

struct Task {
    write: Write,
    routing: HashMap<String, Arc<Routing>>,
    usage: UsageAlerted,
    /// Who claimed the leads of this batch's lead updates and escalations (read for each batch,
    /// not kept).
    claims: Claims,
    /// When the batch's updated leads last had an update alerted at once (read for each batch).
    anchors: ingest::Anchors,
    handover: mpsc::Sender<Handover>,
    spilled: Arc<Notify>,
    wakeup: Arc<Wakeup>,
    /// Whose inbox a commit changed, for their open pages.
    inbox: broadcast::Sender<i64>,
    lease: Duration,
    instance: u64,
    activity: Activity,
    /// When the writer last finished a checkpoint itself.
    checkpointed: Instant,
}

impl Task {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut jobs = Vec::with_capacity(BATCH);
        while rx.recv_many(&mut jobs, BATCH).await > 0 {
            // Outcomes alone are not worth an fsync of their own: they wait a moment for the next
            // event or write and ride in its commit (nobody is waiting for them but the log).
            if jobs.iter().all(|j| matches!(j, Job::Outcome(..))) {
                let more = tokio::time::timeout(OUTCOME_HOLD, rx.recv_many(&mut jobs, BATCH)).await;
                if matches!(more, Ok(0)) && jobs.is_empty() {
                    return;
                }
            }
            let batch = Batch::new(std::mem::take(&mut jobs));
            let span = tracing::debug_span!(
                "write_batch",
                events = batch.items.len(),
                outcomes = batch.outcomes.len(),
                inbox = batch.inbox.len(),
                other = batch.other.len()
            );
            self.process(batch).instrument(span).await;
        }
    }

    async fn process(&mut self, mut batch: Batch) {
        for heard in std::mem::take(&mut batch.heard) {
            match heard {
                Heard::Routing(Some(business)) => {
                    self.routing.remove(&business);
                }
                Heard::Routing(None) => self.routing.clear(),
                Heard::Inbox(user) => {
                    let _ = self.inbox.send(user);
                }
            }
        }
        if batch.items.is_empty() && batch.outcomes.is_empty() && batch.inbox.is_empty() && batch.other.is_empty() {
            return;
        }
        let started = Instant::now();
        let result = match self.load_caches(&batch.items).await {
            Ok(()) => self.commit(&mut batch).await,
            Err(e) => Err(e),
        };
        let committed = Instant::now();
        // Whatever happened, a business whose settings a write touched is read again next time.
        for business in self.write.routing_changed.drain() {
            self.routing.remove(&business);
        }
        let inbox_changed: Vec<i64> = self.write.inbox_changed.drain().collect();
        match result {
            Ok((plans, written, permits)) => {
                self.activity.committed();
                tracing::debug!(
                    target: "kaicalls_notify::timing",
                    commit_us = committed.duration_since(started).as_micros() as u64,
                    events = batch.items.len(),
                    "batch committed"
                );
                self.finish(batch, plans, written, permits, committed).await;
                // Nobody listening is fine: an error here only means no page is open.
                for user in inbox_changed {
                    let _ = self.inbox.send(user);
                }
                self.finish_checkpoint().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "a write batch failed; nothing in it was stored");
                self.fail(batch, &e.to_string());
                self.write.conn.heal().await;
            }
        }
    }

    /// Completes, about once a second, the checkpoint the background one keeps catching up on.
    /// Under steady writes the background checkpoint never sees the log quiet, so it never
    /// finishes, the log never starts over, and it grows without end (and is then cut back to
    /// its size limit inside some unlucky commit). Here, between two batches, no write is under
    /// way: the remaining frames are copied (few, as the background one copied the rest) and the
    /// next commit starts the log from its beginning.
    async fn finish_checkpoint(&mut self) {
        if self.checkpointed.elapsed() < FINISH_CHECKPOINT_EVERY {
            return;
        }
        self.checkpointed = Instant::now();
        let Conn::Lite(conn) = self.write.conn() else { return };
        match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(conn).await {
            Ok(_) => tracing::debug!(
                target: "kaicalls_notify::timing",
                checkpoint_us = self.checkpointed.elapsed().as_micros() as u64,
                "writer checkpoint"
            ),
            Err(e) => tracing::debug!(error = %e, "writer checkpoint skipped"),
        }
    }

    /// Reads, before the transaction, the settings and usage history the batch's events need.
    async fn load_caches(&mut self, items: &[Item]) -> sqlx::Result<()> {
        if self.routing.len() > CACHED_BUSINESSES {
            self.routing.clear();
        }
        if self.usage.len() > CACHED_BUSINESSES {
            self.usage.clear();
        }
        let mut updated: HashMap<&str, Vec<&str>> = HashMap::new();
        for item in items {
            let business = &item.new.business_id;
            if !self.routing.contains_key(business) {
                let defaults = defaults::get(&mut self.write, business).await?;
                let people = recipients::for_routing(&mut self.write, business).await?;
                let escalation = escalations::policy(&mut self.write, business).await?.map(|s| s.policy);
                let business_phone = defaults::phone_block(&mut self.write, business).await?;
                let timing = defaults::timing(&mut self.write, business).await?;
                if let Some(defaults) = defaults {
                    let routing = Routing {
                        defaults,
                        people,
                        escalation,
                        business_phone,
                        update_window_ms: timing.update_window_ms,
                        zone: timing.zone,
                        billing_urgent: timing.billing_urgent,
                    };
                    self.routing.insert(business.clone(), Arc::new(routing));
                }
            }
            if let Event::LeadUpdated(lead) | Event::LeadEscalated(Escalated { lead, .. }) = &item.new.event {
                updated.entry(business.as_str()).or_default().push(lead.lead_id.as_str());
            }
            if let Event::UsageUpdated(usage) = &item.new.event {
                let key = (business.clone(), usage.period_start.clone());
                if !self.usage.contains_key(&key) {
                    let highest = events::highest_usage_alerted(&mut self.write, business, &usage.period_start).await?;
                    self.usage.insert(key, highest);
                }
            }
        }
        self.claims.clear();
        self.anchors.clear();
        for (business, lead_ids) in updated {
            for lead in leads::facts(&mut self.write, business, &lead_ids).await? {
                let key = (business.to_owned(), lead.lead_id);
                if let (Some(user_id), Some(name)) = (lead.claimed_by, lead.claimed_by_name) {
                    self.claims.insert(key.clone(), Claimer { user_id, name });
                }
                if let Some(at_ms) = lead.anchor_ms {
                    self.anchors.insert(key, at_ms);
                }
            }
        }
        Ok(())
    }

    async fn exec(&mut self, sql: &'static str) -> sqlx::Result<()> {
        execute!(&mut self.write, sqlx::query(sql)).map(|_| ())
    }

    async fn rollback(&mut self) {
        if let Err(e) = self.exec("ROLLBACK").await {
            tracing::warn!(error = %e, "rollback failed");
        }
    }

    /// Plans, writes and commits the batch. Conflicts the plan did not expect (a webhook id or
    /// an alert key stored before) are resolved by marking those events and planning again.
    async fn commit(&mut self, batch: &mut Batch) -> sqlx::Result<(Vec<ItemPlan>, ingest::Written, Permits)> {
        for _ in 0..4 {
            let mut plans = ingest::plan(&batch.items, &self.routing, &self.usage, &self.claims, &self.anchors);
            let permits = self.reserve_handover(&mut plans);
            let (now_ms, lease_ms) = (unix_now_ms(), self.lease.as_millis() as i64);
            // SQLite: take the write lock at once (a deferred one could fail at the first insert).
            let begin = match self.write.conn() {
                Conn::Lite(_) => "BEGIN IMMEDIATE",
                Conn::Pg(_) => "BEGIN",
            };
            self.exec(begin).await?;
            let written = match ingest::write(&mut self.write, &batch.items, &plans, now_ms, lease_ms).await {
                Ok(written) => written,
                Err(conflict) => {
                    self.rollback().await;
                    match conflict {
                        Conflict::Webhooks(items) => {
                            for i in items {
                                let new = &batch.items[i].new;
                                let id =
                                    events::id_of_webhook(&mut self.write, &new.business_id, &new.webhook_id).await?;
                                batch.items[i].stored_as = Some(id);
                            }
                        }
                        Conflict::AlertKeys(items) => {
                            items.into_iter().for_each(|i| batch.items[i].alerted_before = true)
                        }
                        // Another instance alerted a usage threshold this one had not heard of.
                        Conflict::Usage(keys) => {
                            for (business, period) in keys {
                                let highest =
                                    events::highest_usage_alerted(&mut self.write, &business, &period).await?;
                                self.usage.insert((business, period), highest);
                            }
                        }
                        // Two instances' batches waited on each other: PostgreSQL stopped this
                        // one; it runs again.
                        Conflict::Db(e) if is_retryable(&e) => continue,
                        Conflict::Db(e) => return Err(e),
                    }
                    continue;
                }
            };
            if let Err(e) = self.write_the_rest(batch, now_ms).await {
                self.rollback().await;
                return Err(e);
            }
            if let Err(e) = self.announce().await {
                self.rollback().await;
                return Err(e);
            }
            if let Err(e) = self.exec("COMMIT").await {
                self.rollback().await;
                return Err(e);
            }
            return Ok((plans, written, permits));
        }
        Err(not_stored("the batch kept meeting conflicts"))
    }

    /// On PostgreSQL, tells the other instances (when this transaction commits) whose routing
    /// settings and whose inbox it changed.
    async fn announce(&mut self) -> sqlx::Result<()> {
        let instance = self.instance;
        let Write { conn, routing_changed, inbox_changed } = &mut self.write;
        let Conn::Pg(conn) = conn.conn() else { return Ok(()) };
        let messages: Vec<String> = routing_changed
            .iter()
            .map(|b| format!("{instance} routing {b}"))
            .chain(inbox_changed.iter().map(|u| format!("{instance} inbox {u}")))
            .collect();
        if !messages.is_empty() {
            // One round trip for all of them.
            sqlx::query("SELECT pg_notify($1, m) FROM unnest($2::text[]) AS m")
                .bind(super::listen::CHANNEL)
                .bind(messages)
                .execute(conn)
                .await?;
        }
        Ok(())
    }

    /// Reserves room with the dispatcher for each planned event that sends something; the ones
    /// that find none are stored unclaimed.
    fn reserve_handover(&self, plans: &mut [ItemPlan]) -> Permits {
        let mut permits = HashMap::new();
        for plan in plans.iter_mut().filter(|p| p.sends()) {
            if let Ok(permit) = self.handover.clone().try_reserve_owned() {
                plan.claimed = true;
                permits.insert(plan.item, permit);
            }
        }
        permits
    }

    /// Outcomes, inbox rows and the other writes, inside the open transaction.
    async fn write_the_rest(&mut self, batch: &mut Batch, now_ms: i64) -> sqlx::Result<()> {
        let outcomes: Vec<Outcome> = batch.outcomes.iter().map(|(o, _)| o.clone()).collect();
        deliveries::apply(&mut self.write, &outcomes, now_ms).await?;
        let inbox: Vec<NewNotification> = batch.inbox.iter().map(|(n, _)| n.clone()).collect();
        notifications::insert_batch(&mut self.write, &inbox, now_ms / 1000).await?;
        for job in &mut batch.other {
            self.exec("SAVEPOINT job").await?;
            if job.run(&mut self.write).await {
                self.exec("RELEASE job").await?;
            } else {
                self.exec("ROLLBACK TO job").await?;
                self.exec("RELEASE job").await?;
            }
        }
        Ok(())
    }

    /// Answers everyone after the commit and hands the claimed deliveries to the dispatcher.
    async fn finish(
        &mut self,
        batch: Batch,
        plans: Vec<ItemPlan>,
        written: ingest::Written,
        mut permits: Permits,
        committed: Instant,
    ) {
        if plans.iter().any(|p| p.sends() && !p.claimed) {
            self.spilled.notify_one();
        }
        // The next escalation step or end of quiet hours this batch planned: the dispatcher
        // looks for due work then.
        let held =
            plans.iter().flat_map(|p| p.plan.decisions.iter().filter_map(|d| d.hold.as_ref().map(|h| h.until_ms)));
        if let Some(first) = plans.iter().filter_map(|p| p.escalate_at).chain(held).min() {
            self.wakeup.at(first);
        }
        for plan in &plans {
            if let Some((period, threshold)) = &plan.usage_alert {
                let business = batch.items[plan.item].new.business_id.clone();
                self.usage.insert((business, period.clone()), Some(*threshold));
            }
        }
        let mut claimed: HashMap<usize, Vec<Claimed>> = HashMap::new();
        for (item, delivery) in written.claimed {
            claimed.entry(item).or_default().push(delivery);
        }
        let thresholds: HashMap<usize, Option<u8>> = plans.iter().map(|p| (p.item, p.plan.usage_threshold)).collect();
        for (index, (item, waiting)) in batch.items.into_iter().zip(batch.waiting).enumerate() {
            let (stored, first_new) = match (item.stored_as, written.event_ids.get(&index)) {
                (Some(id), _) => (id, false),
                (None, Some(&id)) => (id, true),
                (None, None) => {
                    waiting.into_iter().for_each(|(reply, _)| {
                        let _ = reply.send(Err(IngestError::Busy));
                    });
                    continue;
                }
            };
            let received = waiting.iter().map(|(_, at)| *at).min().unwrap_or(committed);
            // Handed over before the answer: whoever waits for it finds the deliveries queued.
            if let (Some(deliveries), Some(permit)) = (claimed.remove(&index), permits.remove(&index)) {
                let event = Arc::new(AlertEvent {
                    id: stored,
                    business_id: item.new.business_id,
                    event: item.new.event,
                    usage_threshold: thresholds.get(&index).copied().flatten(),
                });
                permit.send(Handover { event, deliveries, received, committed });
            }
            for (n, (reply, _)) in waiting.into_iter().enumerate() {
                let answer = if first_new && n == 0 { Stored::New(stored) } else { Stored::Duplicate(stored) };
                let _ = reply.send(Ok(answer));
            }
        }
        batch.outcomes.into_iter().for_each(|(_, done)| {
            let _ = done.send(true);
        });
        batch.inbox.into_iter().for_each(|(_, done)| {
            let _ = done.send(true);
        });
        batch.other.into_iter().for_each(|job| job.finish(Ok(())));
    }

    fn fail(&mut self, batch: Batch, why: &str) {
        for waiting in batch.waiting {
            waiting.into_iter().for_each(|(reply, _)| {
                let _ = reply.send(Err(IngestError::Busy));
            });
        }
        batch.outcomes.into_iter().for_each(|(_, done)| {
            let _ = done.send(false);
        });
        batch.inbox.into_iter().for_each(|(_, done)| {
            let _ = done.send(false);
        });
        batch.other.into_iter().for_each(|job| job.finish(Err(why.to_owned())));
    }
}
