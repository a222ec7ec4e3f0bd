//! Types and rules of the product. No I/O lives here.
pub mod alert_log;
pub mod audit;
pub mod claim;
pub mod delivery;
pub mod email;
pub mod escalation;
pub mod events;
pub mod kinds;
pub mod password;
pub mod phone;
pub mod phone_code;
pub mod planning;
pub mod quiet;
pub mod role;
pub mod routing;
pub mod score;
pub mod settings;
pub mod sms_inbound;
pub mod sms_status;
pub mod text;
pub mod unsubscribe;
pub mod webhook;

pub use email::EmailAddress;
pub use kinds::{AlertKind, Channel};
pub use phone::{PhoneNumber, Region};
pub use role::Role;
pub use score::LeadScore;
pub use settings::{BusinessDefaults, ChannelSet, KindSet, RecipientPrefs};

/// A name a person types for themselves or a teammate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(input: &str) -> Result<Self, String> {
        let name = input.trim();
        if name.is_empty() {
            return Err("Enter a name.".into());
        }
        if name.chars().count() > 100 {
            return Err("Keep the name under 100 characters.".into());
        }
        if name.chars().any(char::is_control) {
            return Err("The name contains characters that cannot be shown.".into());
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::PersonName;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(PersonName::parse("  Dana Reyes ").unwrap().as_str(), "Dana Reyes");
        assert!(PersonName::parse("   ").is_err());
        assert!(PersonName::parse(&"x".repeat(101)).is_err());
        assert!(PersonName::parse("a\u{0007}b").is_err());
    }
}
