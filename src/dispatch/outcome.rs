//! What a send's result means for the delivery: sent, try again later (when), or the end.
use std::time::Duration;

use rand::Rng;

use super::send::{Failure, Sent};
use crate::config::DispatchSettings;
use crate::db::deliveries::{Claimed, Outcome};
use crate::domain::delivery::DeliveryStatus;

/// The outcome to record, and the refused phone number to block, if the provider refused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    /// Why the person's number must not be texted again.
    pub refused_number: Option<String>,
    /// The number replied STOP: no texts to it until it replies START.
    pub opted_out: bool,
}

pub fn decide(d: &Claimed, result: Result<Sent, Failure>, now_ms: i64, settings: &DispatchSettings) -> Decision {
    let id = d.id;
    let opted_out = matches!(result, Err(Failure::OptedOut { .. }));
    let (outcome, refused_number) = match result {
        Ok(Sent { provider_id, segments }) => (Outcome::Sent { id, provider_id, segments }, None),
        Err(Failure::Transient { message, retry_after }) => {
            let age = Duration::from_millis((now_ms - d.created_at_ms).max(0) as u64);
            if age >= settings.give_up_after {
                let hours = settings.give_up_after.as_secs_f64() / 3600.0;
                let error = format!("gave up after {hours:.0} h and {} attempts: {message}", d.attempts);
                (Outcome::Ended { id, status: DeliveryStatus::Dead, error }, None)
            } else {
                let delay = retry_delay(settings.first_retry, d.attempts, retry_after);
                (Outcome::Retry { id, at_ms: now_ms + delay.as_millis() as i64, error: message }, None)
            }
        }
        Err(Failure::Permanent { message } | Failure::OptedOut { message }) => {
            (Outcome::Ended { id, status: DeliveryStatus::Failed, error: message }, None)
        }
        Err(Failure::NumberRefused { message, problem }) => {
            (Outcome::Ended { id, status: DeliveryStatus::Failed, error: message }, Some(problem))
        }
    };
    Decision { outcome, refused_number, opted_out }
}

/// Exponential backoff with ±20 % jitter, capped at an hour, never sooner than the provider asked.
pub fn retry_delay(first: Duration, attempts: i64, retry_after: Option<Duration>) -> Duration {
    let exponent = (attempts.max(1) - 1).min(20) as u32;
    let base = first.saturating_mul(2u32.saturating_pow(exponent)).min(Duration::from_secs(3600));
    let jittered = base.mul_f64(rand::rng().random_range(0.8..1.2));
    jittered.max(retry_after.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Channel;

    fn claimed(attempts: i64, created_at_ms: i64) -> Claimed {
        Claimed {
            id: 1,
            event_id: 1,
            business_id: "b".into(),
            user_id: Some(2),
            person_name: Some("Sam".into()),
            claim_user_id: None,
            channel: Channel::Sms,
            address: "+15555550101".into(),
            attempts,
            created_at_ms,
            held_until_ms: None,
            held_for: None,
            held_at: None,
        }
    }

    #[test]
    fn retries_back_off_exponentially_with_jitter_and_respect_retry_after() {
        let first = Duration::from_secs(10);
        for _ in 0..50 {
            let one = retry_delay(first, 1, None);
            assert!(one >= Duration::from_secs(8) && one <= Duration::from_secs(12), "{one:?}");
            let three = retry_delay(first, 3, None);
            assert!(three >= Duration::from_secs(32) && three <= Duration::from_secs(48));
            assert!(retry_delay(first, 40, None) <= Duration::from_secs(4320));
            assert!(retry_delay(first, 1, Some(Duration::from_secs(120))) >= Duration::from_secs(120));
        }
    }

    #[test]
    fn a_passing_failure_retries_until_the_delivery_is_a_day_old_then_gives_up() {
        let settings = DispatchSettings::default();
        let busy = || Err(Failure::Transient { message: "busy".into(), retry_after: None });
        let young = decide(&claimed(1, 0), busy(), 5_000, &settings);
        assert!(matches!(young.outcome, Outcome::Retry { at_ms, .. } if (13_000..=17_000).contains(&at_ms)));
        let old = decide(&claimed(30, 0), busy(), 24 * 3600 * 1000, &settings);
        assert!(
            matches!(&old.outcome, Outcome::Ended { status: DeliveryStatus::Dead, error, .. } if error.starts_with("gave up after 24 h and 30 attempts"))
        );
    }

    #[test]
    fn a_refused_number_ends_the_delivery_and_says_why() {
        let refused = Err(Failure::NumberRefused { message: "error 21211".into(), problem: "not a number".into() });
        let decision = decide(&claimed(1, 0), refused, 0, &DispatchSettings::default());
        assert!(matches!(decision.outcome, Outcome::Ended { status: DeliveryStatus::Failed, .. }));
        assert_eq!(decision.refused_number.as_deref(), Some("not a number"));
    }
}
