//! Rate limits on actions that send messages: test alerts per person, invitations per business.
//! A sliding window per key, kept in memory (bounded: the oldest keys go first when it is full).
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MAX_KEYS: usize = 100_000;

pub struct RateLimit {
    max: usize,
    window: Duration,
    hits: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl RateLimit {
    pub fn new(max: usize, window: Duration) -> Self {
        Self { max, window, hits: Mutex::new(HashMap::new()) }
    }

    /// Counts one use for `key`, or answers how long until one is allowed again.
    pub fn hit(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut hits = self.hits.lock().unwrap_or_else(|e| e.into_inner());
        if hits.len() >= MAX_KEYS && !hits.contains_key(key) {
            hits.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < self.window));
        }
        let times = hits.entry(key.to_owned()).or_default();
        while times.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            times.pop_front();
        }
        if times.len() >= self.max {
            let oldest = times.front().copied().unwrap_or(now);
            return Err(self.window.saturating_sub(now.duration_since(oldest)));
        }
        times.push_back(now);
        Ok(())
    }

    pub fn max(&self) -> usize {
        self.max
    }
}

/// The limits the product applies.
pub struct Limits {
    /// Test alerts per recipient per minute.
    pub test_alerts: RateLimit,
    /// Invitation emails per business per hour.
    pub invitations: RateLimit,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            test_alerts: RateLimit::new(3, Duration::from_secs(60)),
            invitations: RateLimit::new(20, Duration::from_secs(3600)),
        }
    }
}

/// "42 seconds", "12 minutes": a wait in words, rounded up.
pub fn wait_words(wait: Duration) -> String {
    let secs = super::retry_after_secs(wait);
    if secs < 120 {
        format!("{secs} second{}", if secs == 1 { "" } else { "s" })
    } else {
        format!("{} minutes", secs.div_ceil(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_budget_per_window_and_others_are_separate() {
        let limit = RateLimit::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(limit.hit("sam").is_ok());
        }
        let wait = limit.hit("sam").unwrap_err();
        assert!(wait > Duration::from_secs(55) && wait <= Duration::from_secs(60));
        assert!(limit.hit("ann").is_ok());
    }

    #[test]
    fn waits_read_as_words_rounded_up() {
        assert_eq!(wait_words(Duration::from_millis(1500)), "2 seconds");
        assert_eq!(wait_words(Duration::from_millis(200)), "1 second");
        assert_eq!(wait_words(Duration::from_secs(700)), "12 minutes");
    }
}
