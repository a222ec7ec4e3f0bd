//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`,
//! key = base64-decoded secret after its `whsec_` prefix, timestamp within ±5 minutes.
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const TOLERANCE_SECS: i64 = 300;

/// Why a webhook's signature was refused: the message and the header it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureError {
    pub message: &'static str,
    pub field: &'static str,
}

fn refuse(message: &'static str, field: &'static str) -> SignatureError {
    SignatureError { message, field }
}

/// The HMAC key of a `whsec_…` secret.
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix("whsec_").unwrap_or(secret)).ok().filter(|k| !k.is_empty())
}

/// The `v1,…` signature of a message.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Checks the three headers against any of the business's current keys.
pub fn verify(
    keys: &[Vec<u8>],
    id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let id = id.filter(|v| !v.is_empty()).ok_or(refuse("the webhook-id header is missing", "webhook-id"))?;
    if id.len() > 200 {
        return Err(refuse("the webhook-id header is longer than 200 characters", "webhook-id"));
    }
    let timestamp = timestamp.ok_or(refuse("the webhook-timestamp header is missing", "webhook-timestamp"))?;
    let timestamp: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| refuse("the webhook-timestamp header is not a whole number of seconds", "webhook-timestamp"))?;
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return Err(refuse("the webhook-timestamp is more than 5 minutes from now", "webhook-timestamp"));
    }
    let signature = signature
        .filter(|v| !v.trim().is_empty())
        .ok_or(refuse("the webhook-signature header is missing", "webhook-signature"))?;
    for key in keys {
        let expected = sign(key, id, timestamp, body);
        let expected_b64 = &expected[3..];
        for candidate in signature.split_whitespace() {
            let Some(sig) = candidate.strip_prefix("v1,") else { continue };
            if sig.len() == expected_b64.len() && crate::tokens::same(sig, expected_b64) {
                return Ok(());
            }
        }
    }
    Err(refuse("no signature in webhook-signature matches this business's secret", "webhook-signature"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test vector published with the Standard Webhooks specification.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn keys() -> Vec<Vec<u8>> {
        vec![secret_key(SECRET).unwrap()]
    }

    #[test]
    fn the_specification_vector_signs_and_verifies() {
        assert_eq!(sign(&keys()[0], ID, TS, BODY), SIGNATURE);
        assert_eq!(verify(&keys(), Some(ID), Some("1614265330"), Some(SIGNATURE), BODY, TS), Ok(()));
    }

    #[test]
    fn any_one_of_several_signatures_may_match() {
        let header = format!("v1,bm90IGl0 v2,whatever {SIGNATURE}");
        assert_eq!(verify(&keys(), Some(ID), Some("1614265330"), Some(&header), BODY, TS + 10), Ok(()));
    }

    #[test]
    fn rotation_accepts_the_old_key_too() {
        let both = vec![crate::domain::webhook::secret_key("whsec_bmV3IGtleSBuZXcga2V5").unwrap(), keys()[0].clone()];
        assert_eq!(verify(&both, Some(ID), Some("1614265330"), Some(SIGNATURE), BODY, TS), Ok(()));
    }

    #[test]
    fn tampering_staleness_and_truncation_are_refused() {
        let field = |r: Result<(), SignatureError>| r.unwrap_err().field;
        let check =
            |sig: &str, body: &[u8], now: i64| verify(&keys(), Some(ID), Some("1614265330"), Some(sig), body, now);
        assert_eq!(field(check(SIGNATURE, br#"{"test": 2432232315}"#, TS)), "webhook-signature");
        assert_eq!(field(check(SIGNATURE, BODY, TS + 301)), "webhook-timestamp");
        assert_eq!(field(check(SIGNATURE, BODY, TS - 301)), "webhook-timestamp");
        assert_eq!(field(check(&SIGNATURE[..SIGNATURE.len() - 4], BODY, TS)), "webhook-signature");
        assert_eq!(field(check("v1,", BODY, TS)), "webhook-signature");
        assert_eq!(field(check("   ", BODY, TS)), "webhook-signature");
        assert_eq!(field(check(&SIGNATURE.replace("v1,", "v2,"), BODY, TS)), "webhook-signature");
        assert_eq!(field(verify(&keys(), None, Some("1"), Some(SIGNATURE), BODY, TS)), "webhook-id");
        assert_eq!(field(verify(&keys(), Some(ID), Some("soon"), Some(SIGNATURE), BODY, TS)), "webhook-timestamp");
        assert_eq!(field(verify(&keys(), Some(ID), Some("1614265330"), None, BODY, TS)), "webhook-signature");
    }
}
