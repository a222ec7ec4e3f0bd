//! Claiming a lead from its alert: the link in a person's SMS, email or inbox names the alert
//! (its delivery), is signed with a server key and expires, so a teammate on a phone can say
//! "I'll call them" without signing in. Links are short enough to fit a one-segment SMS:
//! `{delivery id}.{expiry hour}.{MAC}`, numbers in base 36.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a claim link works after the alert was sent.
pub const LINK_LIFETIME_HOURS: i64 = 7 * 24;

/// Why a claim link was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkProblem {
    /// Not one we made (mistyped, cut short, or forged).
    Invalid,
    /// Ours, but older than `LINK_LIFETIME_HOURS`.
    Expired,
}

fn base36(mut n: u64) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(digits[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII digits")
}

fn mac(key: &[u8], payload: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(b"claim:");
    mac.update(payload.as_bytes());
    // 72 bits: far beyond guessing through a rate-limited web form, and short for an SMS.
    URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..9])
}

/// The token of a claim link for one delivery, made at `now` (unix seconds).
pub fn token(key: &[u8], delivery_id: i64, now: i64) -> String {
    let expires_hour = (now / 3600 + LINK_LIFETIME_HOURS).max(0) as u64;
    let payload = format!("{}.{}", base36(delivery_id.max(0) as u64), base36(expires_hour));
    format!("{payload}.{}", mac(key, &payload))
}

/// The delivery a genuine, unexpired token names.
pub fn verify(key: &[u8], token: &str, now: i64) -> Result<i64, LinkProblem> {
    let (payload, signature) = token.rsplit_once('.').ok_or(LinkProblem::Invalid)?;
    if token.len() > 64 || !crate::tokens::same(signature, &mac(key, payload)) {
        return Err(LinkProblem::Invalid);
    }
    let (delivery, expires) = payload.split_once('.').ok_or(LinkProblem::Invalid)?;
    let delivery = i64::from_str_radix(delivery, 36).map_err(|_| LinkProblem::Invalid)?;
    let expires_hour = i64::from_str_radix(expires, 36).map_err(|_| LinkProblem::Invalid)?;
    if now / 3600 >= expires_hour {
        return Err(LinkProblem::Expired);
    }
    Ok(delivery)
}

/// "2 min", "1 h 5 min", "under a minute": how long after the call a lead was claimed.
pub fn after(seconds: i64) -> String {
    let minutes = seconds.max(0) / 60;
    match minutes {
        0 => "under a minute".into(),
        1..=59 => format!("{minutes} min"),
        _ if minutes % 60 == 0 => format!("{} h", minutes / 60),
        _ => format!("{} h {} min", minutes / 60, minutes % 60),
    }
}

/// "Sam Rivera took it at 10:04 UTC, 2 min after the call."
pub fn taken_by(name: &str, claimed_at: i64, call_at: i64) -> String {
    let format = time::macros::format_description!("[hour]:[minute]");
    let at = time::OffsetDateTime::from_unix_timestamp(claimed_at)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_default();
    format!("{name} took it at {at} UTC, {} after the call.", after(claimed_at - call_at))
}

/// A person's speed to lead: how many leads they claimed and the median time from the call to
/// their claim, or `None` without claims. `seconds` is reordered.
pub fn speed(seconds: &mut [i64]) -> Option<(usize, i64)> {
    if seconds.is_empty() {
        return None;
    }
    seconds.sort_unstable();
    let n = seconds.len();
    let median = if n % 2 == 1 { seconds[n / 2] } else { (seconds[n / 2 - 1] + seconds[n / 2]) / 2 };
    Some((n, median))
}

/// "Claimed 12 leads in 30 days, usually 4 min after the call." / "No leads claimed in 30 days."
pub fn speed_sentence(speed: Option<(usize, i64)>) -> String {
    match speed {
        None => "No leads claimed in 30 days.".into(),
        Some((1, seconds)) => format!("Claimed 1 lead in 30 days, {} after the call.", after(seconds)),
        Some((n, median)) => {
            format!("Claimed {n} leads in 30 days, usually {} after the call (median).", after(median))
        }
    }
}

/// Where a lead stands, as the Leads page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeadState {
    /// Nobody has claimed it yet (and it is recent enough to call back).
    New,
    /// An escalation went out: nobody claimed it in this many minutes.
    Escalated { minutes: i64 },
    /// "Sam Rivera, 2 min after the call" (", after escalation" when one went out first).
    Claimed(String),
    /// Its claim links expired with nobody taking it.
    NeverClaimed,
}

impl LeadState {
    /// `claimed`: who and when (unix seconds); `escalated_after`: the minutes of the last
    /// escalation step that went out for it.
    pub fn of(claimed: Option<(&str, i64)>, call_at: i64, escalated_after: Option<i64>, now: i64) -> Self {
        match (claimed, escalated_after) {
            (Some((name, at)), escalated) => {
                let after_escalation = if escalated.is_some() { ", after escalation" } else { "" };
                Self::Claimed(format!("{name}, {} after the call{after_escalation}", after(at - call_at)))
            }
            (None, _) if now - call_at > LINK_LIFETIME_HOURS * 3600 => Self::NeverClaimed,
            (None, Some(minutes)) => Self::Escalated { minutes },
            (None, None) => Self::New,
        }
    }

    /// The state in words.
    pub fn words(&self) -> String {
        match self {
            Self::New => "Not claimed yet".into(),
            Self::Escalated { minutes } => format!("Escalated: not claimed after {minutes} min"),
            Self::Claimed(text) => text.clone(),
            Self::NeverClaimed => "Never claimed".into(),
        }
    }

    /// Whether someone can still say they will call.
    pub fn claimable(&self) -> bool {
        matches!(self, Self::New | Self::Escalated { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lead_is_new_escalated_claimed_or_never_claimed() {
        let call = 1_000_000;
        assert_eq!(LeadState::of(None, call, None, call + 60), LeadState::New);
        assert_eq!(LeadState::of(None, call, Some(5), call + 400), LeadState::Escalated { minutes: 5 });
        assert_eq!(LeadState::of(None, call, Some(5), call + 400).words(), "Escalated: not claimed after 5 min");
        assert_eq!(
            LeadState::of(Some(("Sam Rivera", call + 125)), call, None, call + 400).words(),
            "Sam Rivera, 2 min after the call"
        );
        assert_eq!(
            LeadState::of(Some(("Sam Rivera", call + 420)), call, Some(5), call + 500).words(),
            "Sam Rivera, 7 min after the call, after escalation"
        );
        let week = 7 * 24 * 3600;
        assert_eq!(LeadState::of(None, call, None, call + week), LeadState::New, "claim links still work");
        assert_eq!(LeadState::of(None, call, Some(5), call + week + 1), LeadState::NeverClaimed);
        assert!(!LeadState::NeverClaimed.claimable() && LeadState::Escalated { minutes: 5 }.claimable());
    }

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: i64 = 1_790_000_000;

    #[test]
    fn a_link_names_its_delivery_until_it_expires() {
        let t = token(KEY, 123_456, NOW);
        assert!(t.len() <= 24, "{t} fits an SMS");
        assert_eq!(verify(KEY, &t, NOW), Ok(123_456));
        assert_eq!(verify(KEY, &t, NOW + 6 * 24 * 3600), Ok(123_456));
        assert_eq!(verify(KEY, &t, NOW + 8 * 24 * 3600), Err(LinkProblem::Expired));
    }

    #[test]
    fn a_changed_or_foreign_link_is_refused() {
        let t = token(KEY, 42, NOW);
        let (id, rest) = t.split_once('.').unwrap();
        assert_eq!(id, "16");
        assert_eq!(verify(KEY, &format!("17.{rest}"), NOW), Err(LinkProblem::Invalid));
        assert_eq!(verify(b"another key entirely, 32 bytes!!", &t, NOW), Err(LinkProblem::Invalid));
        assert_eq!(verify(KEY, "16", NOW), Err(LinkProblem::Invalid));
        assert_eq!(verify(KEY, "", NOW), Err(LinkProblem::Invalid));
        // The expiry cannot be pushed back: it is signed too.
        let (payload, _) = t.rsplit_once('.').unwrap();
        let later = format!("{id}.zzzzz.{}", t.rsplit_once('.').unwrap().1);
        assert_ne!(payload, "16.zzzzz");
        assert_eq!(verify(KEY, &later, NOW), Err(LinkProblem::Invalid));
    }

    #[test]
    fn speed_to_lead_is_the_median_of_the_claims() {
        assert_eq!(speed(&mut []), None);
        assert_eq!(speed(&mut [600, 60, 120]), Some((3, 120)));
        assert_eq!(speed(&mut [60, 180, 3600, 120]), Some((4, 150)));
        assert_eq!(speed_sentence(None), "No leads claimed in 30 days.");
        assert_eq!(speed_sentence(Some((1, 30))), "Claimed 1 lead in 30 days, under a minute after the call.");
        assert_eq!(
            speed_sentence(Some((12, 245))),
            "Claimed 12 leads in 30 days, usually 4 min after the call (median)."
        );
    }

    #[test]
    fn the_claim_is_told_in_words() {
        assert_eq!(after(30), "under a minute");
        assert_eq!(after(125), "2 min");
        assert_eq!(after(3600), "1 h");
        assert_eq!(after(3900), "1 h 5 min");
        // 2026-09-22 10:04 UTC, two minutes after the call.
        let claimed = 1_790_071_440;
        assert_eq!(
            taken_by("Sam Rivera", claimed, claimed - 120),
            "Sam Rivera took it at 10:04 UTC, 2 min after the call."
        );
    }
}
