//! What the SMS provider tells us after a text left: Twilio's request signature (HMAC-SHA1 of the
//! URL it called and its sorted POST parameters, keyed with the account's auth token), the
//! carrier states a message moves through, and the common error codes in words.
use base64::Engine;
use hmac::{Hmac, Mac};

/// The path of the status callback, under `KAI_PUBLIC_URL`.
pub const STATUS_CALLBACK_PATH: &str = "webhooks/twilio/status";

/// The signature Twilio sends in `X-Twilio-Signature` for a POST to `url` with `params`: the URL
/// followed by each parameter's name and value, sorted by name (then value), HMAC-SHA1 with the
/// auth token, base64.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `header` is the signature of this request (compared in constant time).
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], header: Option<&str>) -> bool {
    let Some(sent) = header.map(str::trim).filter(|h| !h.is_empty()) else { return false };
    let expected = signature(auth_token, url, params);
    subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), sent.as_bytes()).into()
}

/// Where a text is, as the carrier reports it. Callbacks arrive out of order and more than once:
/// a state only ever moves forward (`rank`), and the first final one stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CarrierStatus {
    Queued,
    Sending,
    Sent,
    Delivered,
    Undelivered,
    Failed,
}

impl CarrierStatus {
    const CODES: [(Self, &'static str); 6] = [
        (Self::Queued, "queued"),
        (Self::Sending, "sending"),
        (Self::Sent, "sent"),
        (Self::Delivered, "delivered"),
        (Self::Undelivered, "undelivered"),
        (Self::Failed, "failed"),
    ];

    pub fn code(self) -> &'static str {
        Self::CODES.iter().find(|(s, _)| *s == self).map(|(_, c)| *c).unwrap_or_default()
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::CODES.iter().find(|(_, c)| *c == code).map(|(s, _)| *s)
    }

    /// Twilio's `MessageStatus`, mapped to ours (`accepted` and `scheduled` are still queued;
    /// `read` is past delivered; `canceled` never left). `None` for states that are not about an
    /// outgoing text.
    pub fn from_twilio(status: &str) -> Option<Self> {
        match status.trim().to_ascii_lowercase().as_str() {
            "accepted" | "scheduled" | "queued" => Some(Self::Queued),
            "sending" => Some(Self::Sending),
            "sent" => Some(Self::Sent),
            "delivered" | "read" => Some(Self::Delivered),
            "undelivered" => Some(Self::Undelivered),
            "failed" | "canceled" => Some(Self::Failed),
            _ => None,
        }
    }

    /// How far along: a callback moves a text only to a higher rank.
    pub fn rank(self) -> i64 {
        match self {
            Self::Queued => 1,
            Self::Sending => 2,
            Self::Sent => 3,
            Self::Delivered | Self::Undelivered | Self::Failed => 4,
        }
    }

    /// The state in words, for the alert log.
    pub fn words(self) -> &'static str {
        match self {
            Self::Queued => "waiting at the SMS provider",
            Self::Sending => "being sent by the SMS provider",
            Self::Sent => "handed to the carrier",
            Self::Delivered => "delivered to the phone",
            Self::Undelivered => "not delivered",
            Self::Failed => "failed at the SMS provider",
        }
    }

    /// True when the text did not reach the phone.
    pub fn failed(self) -> bool {
        matches!(self, Self::Undelivered | Self::Failed)
    }
}

/// A carrier or provider error code in words; the raw code for the others.
pub fn error_words(code: i64) -> String {
    let words = match code {
        30003 => "the phone is unreachable (switched off or out of coverage)",
        30005 => "the number is unknown to its carrier",
        30006 => "a landline, or a number that cannot take texts",
        30007 => "the carrier filtered it as unwanted",
        21610 => "the number opted out (replied STOP)",
        21211 => "not a valid phone number",
        _ => return format!("error {code}"),
    };
    format!("{words} (error {code})")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Twilio's documented example (webhook security): auth token 12345, this URL and these
    /// parameters sign to this value.
    fn documented() -> (&'static str, &'static str, Vec<(String, String)>, &'static str) {
        let params = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .rev()
        .collect();
        ("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    }

    #[test]
    fn the_signature_matches_twilios_documented_example() {
        let (token, url, params, expected) = documented();
        assert_eq!(signature(token, url, &params), expected, "parameters in any order");
        assert!(verify(token, url, &params, Some(expected)));
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let (token, url, mut params, expected) = documented();
        assert!(!verify("54321", url, &params, Some(expected)), "another token");
        assert!(!verify(token, "https://mycompany.com/myapp.php?foo=1&bar=3", &params, Some(expected)));
        assert!(!verify(token, url, &params, None), "no header");
        assert!(!verify(token, url, &params, Some("")), "an empty header");
        params[0].1.push('0');
        assert!(!verify(token, url, &params, Some(expected)), "a changed parameter");
    }

    #[test]
    fn states_move_only_forward_and_read_in_words() {
        let states =
            ["accepted", "queued", "sending", "sent", "delivered"].map(|s| CarrierStatus::from_twilio(s).unwrap());
        assert!(states.windows(2).all(|w| w[0].rank() <= w[1].rank()));
        assert_eq!(CarrierStatus::from_twilio("READ"), Some(CarrierStatus::Delivered));
        assert_eq!(CarrierStatus::from_twilio("receiving"), None, "not about an outgoing text");
        assert_eq!(CarrierStatus::Undelivered.rank(), CarrierStatus::Delivered.rank(), "the first final state stays");
        assert_eq!(error_words(30003), "the phone is unreachable (switched off or out of coverage) (error 30003)");
        assert_eq!(error_words(30008), "error 30008");
        assert_eq!(CarrierStatus::from_code(CarrierStatus::Sent.code()), Some(CarrierStatus::Sent));
    }
}
