//! Random secrets and their stored fingerprints.
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// 32 random bytes, URL-safe: session keys, CSRF tokens, invitation links.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// A webhook signing secret in Standard Webhooks form: `whsec_` + base64 of 32 random bytes.
pub fn webhook_secret() -> String {
    format!("whsec_{}", STANDARD.encode(random_bytes::<32>()))
}

/// A business id: `biz_` + 16 random bytes in lowercase hex.
pub fn business_id() -> String {
    let hex: String = random_bytes::<16>().iter().map(|b| format!("{b:02x}")).collect();
    format!("biz_{hex}")
}

/// A password for demo accounts: 16 URL-safe characters.
pub fn demo_password() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<12>())
}

/// 64 random bytes for signing cookies, base64.
pub fn session_key() -> String {
    STANDARD.encode(random_bytes::<64>())
}

/// What we store instead of a bearer token: its SHA-256, hex.
pub fn fingerprint(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The security token of a form shown before sign-in: a MAC of the visitor's cookie value.
pub fn form_token(key: &[u8], nonce: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(b"form:");
    mac.update(nonce.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// A key for one purpose, derived from a master key (so one stored secret serves several).
pub fn derive_key(master: &[u8], purpose: &str) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<Sha256>::new_from_slice(master).expect("HMAC takes any key length");
    mac.update(purpose.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Constant-time equality for secrets.
pub fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A 6-digit code to confirm a phone number, leading zeros kept.
pub fn phone_code() -> String {
    use rand::Rng;
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

/// What is stored of a phone code: a MAC keyed with a server secret, over whose code it is and
/// the number it was sent to (so a code for one number never confirms another).
pub fn phone_code_hash(key: &[u8], subject: &str, phone: &str, code: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for part in ["phone code", subject, phone, code] {
        mac.update(part.as_bytes());
        mac.update(b"\0");
    }
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_their_documented_shape() {
        let secret = webhook_secret();
        let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
        assert_eq!(key.len(), 32);
        assert_ne!(random_token(), random_token());
        assert!(business_id().starts_with("biz_") && business_id().len() == 36);
        assert_eq!(fingerprint("abc").len(), 64);
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
