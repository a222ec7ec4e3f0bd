//! Password hashing with argon2id and the crate's default (OWASP) parameters.
//! Both functions are CPU-heavy: call them from a blocking thread.
use argon2::{Argon2, PasswordHasher, PasswordVerifier};

pub const MIN_LENGTH: usize = 10;
pub const MAX_LENGTH: usize = 128;

/// The rule a new password must meet, as the message a person sees.
pub fn check_new(password: &str, confirmation: &str) -> Result<(), String> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(format!("Use at least {MIN_LENGTH} characters for your password."));
    }
    if length > MAX_LENGTH {
        return Err(format!("Use at most {MAX_LENGTH} characters for your password."));
    }
    if password != confirmation {
        return Err("The two passwords do not match.".into());
    }
    Ok(())
}

pub fn hash(password: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password failed: {e}"))
}

/// `false` for a wrong password and for a stored hash that cannot be read.
pub fn verify(password: &str, stored_hash: &str) -> bool {
    Argon2::default().verify_password(password.as_bytes(), stored_hash).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash("correct horse battery").unwrap();
        let b = hash("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify("correct horse battery", &a));
        assert!(!verify("correct horse batter", &a));
        assert!(!verify("anything", "not a hash"));
    }

    #[test]
    fn new_passwords_have_a_length_and_must_match() {
        assert!(check_new("short", "short").unwrap_err().contains("at least 10"));
        assert!(check_new("long enough one", "long enough two").unwrap_err().contains("do not match"));
        assert!(check_new(&"x".repeat(129), &"x".repeat(129)).is_err());
        assert!(check_new("long enough one", "long enough one").is_ok());
    }
}
