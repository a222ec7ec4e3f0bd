/// An email address we are willing to send to: trimmed, lower-cased domain, one `@`,
/// a dotted domain, no spaces or control characters, at most 254 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(input: &str) -> Result<Self, String> {
        let raw = input.trim();
        if raw.is_empty() {
            return Err("Enter an email address.".into());
        }
        if raw.len() > 254 {
            return Err("That email address is too long (254 characters at most).".into());
        }
        let invalid = || format!("\u{201c}{raw}\u{201d} is not a valid email address, e.g. name@example.com.");
        let (local, domain) = raw.split_once('@').ok_or_else(invalid)?;
        let bad_char = |c: char| c.is_whitespace() || c.is_control() || "<>()[],;:\\\"@".contains(c);
        if local.is_empty() || local.len() > 64 || local.chars().any(bad_char) {
            return Err(invalid());
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(invalid());
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(invalid());
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address compared case-insensitively, for de-duplicating destinations.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

impl std::fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::EmailAddress;

    #[test]
    fn accepts_ordinary_addresses_and_lowercases_the_domain() {
        assert_eq!(EmailAddress::parse(" Dana@Acme.TEST ").unwrap().as_str(), "Dana@acme.test");
        assert!(EmailAddress::parse("first.last+tag@mail.example.co.uk").is_ok());
    }

    #[test]
    fn rejects_what_cannot_be_delivered() {
        for bad in [
            "",
            "   ",
            "dana",
            "dana@",
            "@acme.test",
            "dana@acme",
            "dana@@acme.test",
            "da na@acme.test",
            "dana@acme..test",
            ".dana@acme.test",
            "dana.@acme.test",
            "dana@-acme.test",
            "<dana@acme.test>",
            "da\u{7}na@acme.test",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(EmailAddress::parse(&format!("{}@acme.test", "a".repeat(65))).is_err());
    }

    #[test]
    fn the_message_names_the_input() {
        let message = EmailAddress::parse("dana@acme").unwrap_err();
        assert!(message.contains("dana@acme"), "{message}");
    }
}
