//! Confirming a phone number by a code texted to it: a new number receives alerts only once its
//! owner typed the 6 digits back. The rules of sending, resending and trying codes; the code
//! itself is made and hashed in `tokens`, stored and sent elsewhere.

/// How long a code works after it is sent.
pub const LIFETIME_SECS: i64 = 10 * 60;
/// Wrong codes allowed before the code is locked (a new one must be sent).
pub const MAX_TRIES: i64 = 5;
/// The least time between two codes to one phone.
pub const RESEND_GAP_SECS: i64 = 60;
/// Codes sent for one phone in an hour at most.
pub const MAX_SENDS_PER_HOUR: i64 = 5;
const HOUR: i64 = 3600;

/// A code waiting to be entered, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub phone: String,
    pub code_hash: String,
    pub expires_at: i64,
    pub tries: i64,
    /// Codes sent since `window_start` (the resend limit counts them per hour).
    pub sends: i64,
    pub window_start: i64,
    pub sent_at: i64,
}

/// The count of sends to store with a new code: `(sends, window_start)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendSlot {
    pub sends: i64,
    pub window_start: i64,
}

/// Whether a new code may be sent to `phone` now; `Err(seconds)` to wait first. The hourly
/// limit counts every code sent for the same person (or business phone), whatever the number:
/// changing the number again and again must not text strangers without end. The minute's
/// wait is per number, so a typo can be fixed at once.
pub fn may_send(pending: Option<&Pending>, phone: &str, now: i64) -> Result<SendSlot, i64> {
    let Some(p) = pending else { return Ok(SendSlot { sends: 1, window_start: now }) };
    if now - p.window_start >= HOUR {
        return Ok(SendSlot { sends: 1, window_start: now });
    }
    if p.sends >= MAX_SENDS_PER_HOUR {
        return Err(p.window_start + HOUR - now);
    }
    let since_last = now - p.sent_at;
    if p.phone == phone && since_last < RESEND_GAP_SECS {
        return Err(RESEND_GAP_SECS - since_last);
    }
    Ok(SendSlot { sends: p.sends + 1, window_start: p.window_start })
}

/// What a typed code does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Confirmed,
    /// Wrong; `left` more tries (0: the code is now locked).
    Wrong {
        left: i64,
    },
    /// Tried wrong too often: a new code is needed.
    Locked,
    Expired,
    /// No code was sent for this number (or the phone changed since).
    NoCode,
}

impl Check {
    /// Whether this try counts against the code (only wrong guesses do).
    pub fn counts(self) -> bool {
        matches!(self, Self::Wrong { .. })
    }

    /// The answer on the page, in words.
    pub fn message(self) -> String {
        match self {
            Self::Confirmed => "Phone confirmed: texts go to it from now on.".into(),
            Self::Wrong { left: 0 } => "That code is not right, and it was the last try: send a new code.".into(),
            Self::Wrong { left: 1 } => "That code is not right. 1 try left.".into(),
            Self::Wrong { left } => format!("That code is not right. {left} tries left."),
            Self::Locked => {
                format!("That code was entered wrong {MAX_TRIES} times, so it no longer works: send a new code.")
            }
            Self::Expired => "That code has expired (codes work for 10 minutes): send a new code.".into(),
            Self::NoCode => "No code is waiting for this number: send a code first.".into(),
        }
    }
}

/// Checks a typed code against the pending one for `phone`. `matches`: whether the typed code's
/// hash is the stored one (compared by the caller in constant time).
pub fn check(pending: Option<&Pending>, phone: &str, matches: bool, now: i64) -> Check {
    let Some(p) = pending.filter(|p| p.phone == phone) else { return Check::NoCode };
    if p.tries >= MAX_TRIES {
        Check::Locked
    } else if now >= p.expires_at {
        Check::Expired
    } else if matches {
        Check::Confirmed
    } else {
        Check::Wrong { left: MAX_TRIES - p.tries - 1 }
    }
}

/// The 6 digits a person typed ("123 456", "123-456" are fine), or what is wrong with them.
pub fn parse_typed(input: &str) -> Result<String, String> {
    let digits: String = input.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    if digits.len() == 6 && digits.chars().all(|c| c.is_ascii_digit()) {
        Ok(digits)
    } else {
        Err("Enter the 6 digits of the code we texted.".into())
    }
}

/// The text that carries the code (one GSM-7 segment).
pub fn text(code: &str, business: &str) -> String {
    let business = super::text::to_gsm7(business);
    let business: String = business.chars().take(40).collect();
    format!("{code} is your KaiCalls code to get {business} alerts on this phone. It expires in 10 minutes.")
}

/// "45 seconds", "12 minutes": how long to wait before another code.
pub fn wait_words(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{} second{}", s.max(1), if s == 1 { "" } else { "s" }),
        s => {
            let m = (s + 59) / 60;
            format!("{m} minute{}", if m == 1 { "" } else { "s" })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(phone: &str, sent_at: i64) -> Pending {
        Pending {
            phone: phone.into(),
            code_hash: "h".into(),
            expires_at: sent_at + LIFETIME_SECS,
            tries: 0,
            sends: 1,
            window_start: sent_at,
            sent_at,
        }
    }

    #[test]
    fn a_code_works_for_ten_minutes_and_five_tries() {
        let p = pending("+15555550101", 1000);
        assert_eq!(check(Some(&p), "+15555550101", true, 1000 + 599), Check::Confirmed);
        assert_eq!(check(Some(&p), "+15555550101", true, 1000 + 600), Check::Expired);
        assert_eq!(check(Some(&p), "+15555550101", false, 1001), Check::Wrong { left: 4 });
        let tried = Pending { tries: 4, ..p.clone() };
        assert_eq!(check(Some(&tried), "+15555550101", false, 1001), Check::Wrong { left: 0 });
        let locked = Pending { tries: 5, ..p.clone() };
        assert_eq!(check(Some(&locked), "+15555550101", true, 1001), Check::Locked, "even the right code");
        assert_eq!(check(None, "+15555550101", true, 1001), Check::NoCode);
    }

    #[test]
    fn a_code_for_an_old_number_does_not_confirm_a_new_one() {
        let p = pending("+15555550101", 1000);
        assert_eq!(check(Some(&p), "+15555550102", true, 1001), Check::NoCode);
        // A new number may have its code at once, counted with the first.
        assert_eq!(may_send(Some(&p), "+15555550102", 1001), Ok(SendSlot { sends: 2, window_start: 1000 }));
    }

    #[test]
    fn resending_waits_a_minute_and_stops_at_five_an_hour() {
        let p = pending("+15555550101", 1000);
        assert_eq!(may_send(Some(&p), "+15555550101", 1030), Err(30));
        assert_eq!(may_send(Some(&p), "+15555550101", 1060), Ok(SendSlot { sends: 2, window_start: 1000 }));
        let five = Pending { sends: 5, sent_at: 1000 + 600, ..p.clone() };
        assert_eq!(may_send(Some(&five), "+15555550101", 1000 + 700), Err(3600 - 700));
        assert_eq!(
            may_send(Some(&five), "+15555550199", 1000 + 700),
            Err(3600 - 700),
            "another number does not start the count again"
        );
        assert_eq!(may_send(Some(&five), "+15555550101", 1000 + 3600), Ok(SendSlot { sends: 1, window_start: 4600 }));
    }

    #[test]
    fn typed_codes() {
        assert_eq!(parse_typed(" 123 456 ").as_deref(), Ok("123456"));
        assert_eq!(parse_typed("123-456").as_deref(), Ok("123456"));
        for bad in ["", "12345", "1234567", "12345a", "١٢٣٤٥٦"] {
            assert!(parse_typed(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_text_is_one_segment() {
        let t = text("123456", "A business with a rather long name for a plumbing company, inc.");
        assert!(t.starts_with("123456 is your KaiCalls code"));
        assert_eq!(super::super::text::sms_segments(&t), 1, "{t}");
    }

    #[test]
    fn wait_in_words() {
        assert_eq!(wait_words(1), "1 second");
        assert_eq!(wait_words(30), "30 seconds");
        assert_eq!(wait_words(61), "2 minutes");
        assert_eq!(wait_words(60), "1 minute");
    }
}
