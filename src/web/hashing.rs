//! Password hashing on a few threads of its own. An argon2 hash takes 19 MiB and tens of
//! milliseconds: a burst of sign-ins must queue for these threads rather than start hundreds of
//! hashes at once, and past a short queue it is told to come back later. Reusing the same
//! threads also keeps their memory from growing with the size of a burst.
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

type Work = Box<dyn FnOnce() + Send>;

/// Every hashing thread is busy and the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password checks are queued to their limit")]
pub struct Busy;

pub struct Hasher {
    work: SyncSender<Work>,
}

impl Hasher {
    /// `threads` hashing threads (2 per core is the default) and at most `queue` waiting.
    pub fn start(threads: usize, queue: usize) -> Self {
        let (work, rx) = mpsc::sync_channel::<Work>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..threads.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("password-{n}")).spawn(move || {
                loop {
                    let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    match next {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password hashing thread");
            }
        }
        Self { work }
    }

    /// Two threads per core, and a queue of 32 per thread.
    pub fn for_this_machine() -> Self {
        let threads = 2 * std::thread::available_parallelism().map(usize::from).unwrap_or(2);
        Self::start(threads, 32 * threads)
    }

    /// Runs `f` on a hashing thread; `Busy` when the queue is full.
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
        let (reply, answer) = oneshot::channel();
        let job: Work = Box::new(move || {
            let _ = reply.send(f());
        });
        match self.work.try_send(job) {
            Ok(()) => answer.await.map_err(|_| Busy),
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => Err(Busy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn at_most_the_threads_run_at_once_and_past_the_queue_the_answer_is_busy() {
        let hasher = Arc::new(Hasher::start(2, 3));
        let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut waiting = Vec::new();
        for _ in 0..20 {
            let (hasher, running, peak) = (hasher.clone(), running.clone(), peak.clone());
            waiting.push(tokio::spawn(async move {
                hasher
                    .run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(50));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
            }));
        }
        let mut done = 0;
        let mut busy = 0;
        for w in waiting {
            match w.await.unwrap() {
                Ok(()) => done += 1,
                Err(Busy) => busy += 1,
            }
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2, "never more hashes at once than threads");
        assert!(busy >= 20 - 2 - 3, "everything past two running and three queued is refused: {busy}");
        assert_eq!(done + busy, 20);
    }
}
