//! Slows down password guessing: after a few failures for one account or one address, each
//! further attempt must wait, longer each time (capped), until the failures age out. Never a
//! permanent lock-out, so an attacker cannot lock a real owner out of their account for good.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const ACCOUNT_FREE_FAILURES: u32 = 5;
const ADDRESS_FREE_FAILURES: u32 = 20;
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

#[derive(Default)]
pub struct LoginThrottle {
    accounts: Mutex<HashMap<String, Failures>>,
    addresses: Mutex<HashMap<IpAddr, Failures>>,
}

fn wait_for(entry: Option<&Failures>, free: u32, now: Instant) -> Option<Duration> {
    let f = entry?;
    if f.count < free || now.duration_since(f.last) > FORGET_AFTER {
        return None;
    }
    let delay = Duration::from_secs(1u64 << (f.count - free).min(10)).min(MAX_DELAY);
    let ready = f.last + delay;
    (ready > now).then(|| ready - now)
}

fn bump<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Failures>, key: K, now: Instant) {
    let entry = map.entry(key).or_insert(Failures { count: 0, last: now });
    if now.duration_since(entry.last) > FORGET_AFTER {
        entry.count = 0;
    }
    entry.count += 1;
    entry.last = now;
    if map.len() > 100_000 {
        map.retain(|_, f| now.duration_since(f.last) <= FORGET_AFTER);
    }
}

impl LoginThrottle {
    /// How long this attempt must wait, if it must.
    pub fn check(&self, account: &str, address: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let account_wait = wait_for(self.accounts.lock().unwrap().get(account), ACCOUNT_FREE_FAILURES, now);
        let address_wait = wait_for(self.addresses.lock().unwrap().get(&address), ADDRESS_FREE_FAILURES, now);
        account_wait.max(address_wait)
    }

    pub fn failed(&self, account: &str, address: IpAddr) {
        let now = Instant::now();
        bump(&mut self.accounts.lock().unwrap(), account.to_owned(), now);
        bump(&mut self.addresses.lock().unwrap(), address, now);
    }

    pub fn succeeded(&self, account: &str) {
        self.accounts.lock().unwrap().remove(account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_failures_are_free_then_each_attempt_waits_longer() {
        let throttle = LoginThrottle::default();
        let ip: IpAddr = [127, 0, 0, 1].into();
        for _ in 0..ACCOUNT_FREE_FAILURES {
            assert!(throttle.check("a@x.test", ip).is_none());
            throttle.failed("a@x.test", ip);
        }
        let first = throttle.check("a@x.test", ip).expect("throttled after the free failures");
        throttle.failed("a@x.test", ip);
        let second = throttle.check("a@x.test", ip).unwrap();
        assert!(second > first);
        assert!(throttle.check("b@x.test", ip).is_none(), "other accounts on the same address are not slowed yet");
        throttle.succeeded("a@x.test");
        assert!(throttle.check("a@x.test", ip).is_none());
    }

    #[test]
    fn many_accounts_from_one_address_slow_that_address() {
        let throttle = LoginThrottle::default();
        let ip: IpAddr = [10, 0, 0, 1].into();
        for i in 0..ADDRESS_FREE_FAILURES {
            throttle.failed(&format!("user{i}@x.test"), ip);
        }
        assert!(throttle.check("fresh@x.test", ip).is_some());
        assert!(throttle.check("fresh@x.test", [10, 0, 0, 2].into()).is_none());
    }
}
