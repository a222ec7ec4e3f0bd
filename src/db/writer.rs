//! Durable ingest with group commit: one task writes every waiting webhook event in a single
//! transaction, so many requests share one fsync. A request is answered only after its event
//! is committed.
use std::sync::Arc;

use sqlx::SqlitePool;
use tokio::sync::{Notify, mpsc, oneshot};

use super::events::{NewEvent, Stored, insert_batch};

const QUEUE: usize = 8192;
const BATCH: usize = 512;

struct Job {
    event: NewEvent,
    reply: oneshot::Sender<Result<Stored, IngestError>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("storage is busy; try again shortly")]
    Busy,
}

#[derive(Clone)]
pub struct IngestQueue {
    jobs: mpsc::Sender<Job>,
}

impl IngestQueue {
    /// Starts the writer; `stored` is notified after each commit that stored something new.
    pub fn start(pool: SqlitePool, stored: Arc<Notify>) -> Self {
        let (jobs, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_loop(pool, rx, stored));
        Self { jobs }
    }

    /// Stores one event durably. `Busy` when the queue is full or the database refused.
    pub async fn store(&self, event: NewEvent) -> Result<Stored, IngestError> {
        let (reply, answer) = oneshot::channel();
        self.jobs.try_send(Job { event, reply }).map_err(|_| IngestError::Busy)?;
        answer.await.unwrap_or(Err(IngestError::Busy))
    }
}

async fn write_loop(pool: SqlitePool, mut rx: mpsc::Receiver<Job>, stored: Arc<Notify>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let (events, replies): (Vec<NewEvent>, Vec<_>) = batch.drain(..).map(|j| (j.event, j.reply)).unzip();
        match insert_batch(&pool, &events).await {
            Ok(results) => {
                if results.iter().any(|r| matches!(r, Stored::New(_))) {
                    stored.notify_one();
                }
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(Ok(result));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, events = events.len(), "could not store webhook events");
                for reply in replies {
                    let _ = reply.send(Err(IngestError::Busy));
                }
            }
        }
    }
}
