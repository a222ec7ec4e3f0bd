//! Slows down password guessing: after a few failures for one account or one address, each
//! further attempt must wait, longer each time (capped), until the failures age out. Never a
//! permanent lock-out, so an attacker cannot lock a real owner out of their account for good.
//!
//! An attempt is counted when it starts (a reservation), before its password is hashed, and
//! forgiven when it turns out right: a burst of concurrent guesses is checked at most as many
//! times as the budget allows, however many arrive at once.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The address a request came from: the peer, or, when the peer is a trusted proxy (a load
/// balancer in front of several instances), the last address in `X-Forwarded-For` that is not
/// one of the trusted proxies (the ones before it could be made up by the client).
pub fn client_address(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let Some(chain) = forwarded_for else { return peer };
    for hop in chain.rsplit(',').map(str::trim) {
        match hop.parse::<IpAddr>() {
            Ok(address) if trusted.contains(&address) => continue,
            Ok(address) => return address,
            // Garbage in the chain: nothing before it can be trusted either.
            Err(_) => return peer,
        }
    }
    peer
}

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

/// An attempt that was let through and counted as a failure until it is known to be right.
pub struct Reservation<'a> {
    throttle: &'a LoginThrottle,
    account: String,
    address: IpAddr,
}

impl Reservation<'_> {
    /// The password was right: the account's failures are forgiven, and this attempt does not
    /// count against the address.
    pub fn succeeded(self) {
        self.throttle.accounts.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.account);
        self.forgive_address();
    }

    /// The attempt was never checked (the server was too busy): it does not count.
    pub fn cancel(self) {
        if let Some(f) = self.throttle.accounts.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&self.account) {
            f.count = f.count.saturating_sub(1);
        }
        self.forgive_address();
    }

    fn forgive_address(&self) {
        if let Some(f) = self.throttle.addresses.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&self.address) {
            f.count = f.count.saturating_sub(1);
        }
    }
}

impl LoginThrottle {
    /// Lets an attempt through, counted as a failure until it succeeds, or answers how long it
    /// must wait first.
    pub fn reserve(&self, account: &str, address: IpAddr) -> Result<Reservation<'_>, Duration> {
        let now = Instant::now();
        // Both maps stay locked together, so concurrent attempts see each other's reservations.
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        let mut addresses = self.addresses.lock().unwrap_or_else(|e| e.into_inner());
        let account_wait = wait_for(accounts.get(account), ACCOUNT_FREE_FAILURES, now);
        let address_wait = wait_for(addresses.get(&address), ADDRESS_FREE_FAILURES, now);
        if let Some(wait) = account_wait.max(address_wait) {
            return Err(wait);
        }
        bump(&mut accounts, account.to_owned(), now);
        bump(&mut addresses, address, now);
        Ok(Reservation { throttle: self, account: account.to_owned(), address })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_behind_a_trusted_proxy_is_the_last_address_it_did_not_add_itself() {
        let lb: IpAddr = "10.0.0.5".parse().unwrap();
        let client: IpAddr = "203.0.113.7".parse().unwrap();
        let trusted = [lb];
        assert_eq!(client_address(lb, Some("203.0.113.7"), &trusted), client);
        // A client that sends its own X-Forwarded-For cannot choose its address.
        assert_eq!(client_address(lb, Some("1.2.3.4, 203.0.113.7"), &trusted), client);
        assert_eq!(client_address(lb, Some("203.0.113.7, 10.0.0.5"), &trusted), client);
        assert_eq!(client_address(lb, Some("not-an-ip"), &trusted), lb);
        assert_eq!(client_address(lb, None, &trusted), lb);
        // Straight from the internet, the header is ignored.
        assert_eq!(client_address(client, Some("1.2.3.4"), &trusted), client);
    }

    #[test]
    fn a_few_failures_are_free_then_attempts_must_wait() {
        let throttle = LoginThrottle::default();
        let ip: IpAddr = [127, 0, 0, 1].into();
        for _ in 0..ACCOUNT_FREE_FAILURES {
            drop(throttle.reserve("a@x.test", ip).expect("a free attempt"));
        }
        let wait = throttle.reserve("a@x.test", ip).err().expect("throttled after the free failures");
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        assert!(throttle.reserve("b@x.test", ip).is_ok(), "other accounts on the same address are not slowed yet");
    }

    #[test]
    fn attempts_count_before_they_are_checked_so_a_burst_gets_only_the_budget() {
        let throttle = LoginThrottle::default();
        // Held, as concurrent requests hold them while their passwords are hashed.
        let held: Vec<_> = (0..60).filter_map(|_| throttle.reserve("a@x.test", [10, 0, 0, 9].into()).ok()).collect();
        assert_eq!(held.len() as u32, ACCOUNT_FREE_FAILURES);
    }

    #[test]
    fn a_right_password_forgives_the_account_and_a_cancelled_attempt_does_not_count() {
        let throttle = LoginThrottle::default();
        let ip: IpAddr = [127, 0, 0, 1].into();
        for _ in 0..ACCOUNT_FREE_FAILURES - 1 {
            drop(throttle.reserve("a@x.test", ip).unwrap());
        }
        throttle.reserve("a@x.test", ip).unwrap().cancel();
        throttle.reserve("a@x.test", ip).unwrap().succeeded();
        for _ in 0..ACCOUNT_FREE_FAILURES {
            drop(throttle.reserve("a@x.test", ip).expect("failures were forgiven"));
        }
    }

    #[test]
    fn many_accounts_from_one_address_slow_that_address() {
        let throttle = LoginThrottle::default();
        let ip: IpAddr = [10, 0, 0, 1].into();
        for i in 0..ADDRESS_FREE_FAILURES {
            drop(throttle.reserve(&format!("user{i}@x.test"), ip).unwrap());
        }
        assert!(throttle.reserve("fresh@x.test", ip).is_err());
        assert!(throttle.reserve("fresh@x.test", [10, 0, 0, 2].into()).is_ok());
    }
}
