//! One-click unsubscribe tokens: `{user_id}.{alert kind field}.{MAC}`, signed with a server key,
//! so the link in an email turns off one alert kind for one person without a login.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::AlertKind;

fn mac(key: &[u8], payload: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(payload.as_bytes());
    URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..18])
}

pub fn token(key: &[u8], user_id: i64, kind: AlertKind) -> String {
    let payload = format!("{user_id}.{}", kind.field());
    format!("{payload}.{}", mac(key, &payload))
}

/// The person and alert kind of a genuine token.
pub fn verify(key: &[u8], token: &str) -> Option<(i64, AlertKind)> {
    let (payload, signature) = token.rsplit_once('.')?;
    if !crate::tokens::same(signature, &mac(key, payload)) {
        return None;
    }
    let (user, kind) = payload.split_once('.')?;
    Some((user.parse().ok()?, AlertKind::from_field(kind)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_cannot_be_altered() {
        let key = b"0123456789abcdef0123456789abcdef";
        let t = token(key, 42, AlertKind::LeadUpdated);
        assert_eq!(verify(key, &t), Some((42, AlertKind::LeadUpdated)));
        assert_eq!(verify(key, &t.replacen("42", "43", 1)), None);
        assert_eq!(verify(b"another key entirely, 32 bytes!!", &t), None);
        assert_eq!(verify(key, "42.lead_updated"), None);
    }
}
