//! Settings changes, told in words for the "Recent changes" list.
use super::{AlertKind, Channel};

/// One row of the audit log as stored: a change key and the values before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

impl Change {
    pub fn new(key: impl Into<String>, old: Option<String>, new: Option<String>) -> Self {
        Self { key: key.into(), old, new }
    }

    pub fn switch(key: impl Into<String>, old: bool, new: bool) -> Self {
        Self::new(key, Some(on_off(old).into()), Some(on_off(new).into()))
    }

    /// The change from `old` to `new` in words, if they differ (nothing to record otherwise).
    pub fn between(key: impl Into<String>, old: String, new: String) -> Vec<Self> {
        match old == new {
            true => Vec::new(),
            false => vec![Self::new(key, Some(old), Some(new))],
        }
    }
}

pub fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// The sentence for a change. `actor` did it; `subject` is the person it was about, if any.
pub fn describe(change: &Change, actor: &str, subject: Option<&str>) -> String {
    let old = change.old.as_deref().unwrap_or("(none)");
    let new = change.new.as_deref().unwrap_or("(none)");
    let (scope, field) = change.key.split_once('.').unwrap_or((change.key.as_str(), ""));
    // "their" when people change their own settings, "Dana's" otherwise.
    let whose = match subject {
        Some(s) if s == actor => "their".to_owned(),
        Some(s) => format!("{s}\u{2019}s"),
        None => "the".to_owned(),
    };
    let subject = subject.unwrap_or("someone");
    match (scope, field) {
        ("defaults", "notification_email") => {
            format!("{actor} changed the notification email {old} \u{2192} {new}")
        }
        ("defaults", "notification_phone") => {
            format!("{actor} changed the notification phone {old} \u{2192} {new}")
        }
        ("defaults", "claimed_updates_only") if new == "on" => {
            format!("{actor} sent each lead\u{2019}s updates only to whoever claimed it, for the business")
        }
        ("defaults", "claimed_updates_only") => {
            format!("{actor} sent lead updates to everyone who gets them again, for the business")
        }
        ("defaults", "billing_urgent") if new == "on" => {
            format!("{actor} marked payment-failed alerts urgent: they get through quiet hours")
        }
        ("defaults", "billing_urgent") => {
            format!("{actor} let payment-failed alerts wait for quiet hours to end")
        }
        ("defaults", f) => match (AlertKind::from_field(f), Channel::from_field(f)) {
            (Some(kind), _) => format!("{actor} turned {} {new} for the business", kind.phrase()),
            (_, Some(channel)) => {
                format!("{actor} turned {} {new} for the business", channel.label())
            }
            _ => format!("{actor} changed {f}"),
        },
        ("escalation", _) => format!("{actor} set escalation: {new}"),
        ("recipient", "quiet_hours") => format!("{actor} set {whose} quiet hours: {new}"),
        ("recipient", "digest") => format!("{actor} set {whose} daily summary: {new}"),
        ("recipient", "added") if whose == "their" => {
            format!("{actor} became a notification recipient")
        }
        ("recipient", "added") => format!("{actor} added {subject} to the notification recipients"),
        ("recipient", "removed") => {
            format!("{actor} removed {subject} from the notification recipients")
        }
        ("recipient", "min_lead_score") => {
            let verb = match (old.parse::<i64>(), new.parse::<i64>()) {
                (Ok(o), Ok(n)) if n > o => "raised",
                (Ok(o), Ok(n)) if n < o => "lowered",
                _ => "set",
            };
            format!("{actor} {verb} {whose} lead-score threshold {old} \u{2192} {new}")
        }
        ("recipient", "claimed_updates_only") if new == "on" => {
            format!(
                "{actor} limited {whose} lead updates to leads {} claimed",
                if whose == "their" { "they" } else { subject }
            )
        }
        ("recipient", "claimed_updates_only") => format!("{actor} turned {whose} updates of every lead back on"),
        ("recipient", f) => match (AlertKind::from_field(f), Channel::from_field(f)) {
            (Some(kind), _) => format!("{actor} turned {whose} {} {new}", kind.phrase()),
            (_, Some(channel)) => {
                format!("{actor} turned {whose} {} alerts {new}", channel.label())
            }
            _ => format!("{actor} changed {whose} {f}"),
        },
        ("webhook", "rotated") => format!("{actor} rotated the webhook secret (the old one works for 24 hours)"),
        ("team", "added") => format!("{actor} added {subject} to the team as {new}"),
        ("team", "removed") => format!("{actor} removed {subject} from the team"),
        _ => format!("{actor} changed {}", change.key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_changes_say_raised_or_lowered_and_whose() {
        let raise = Change::new("recipient.min_lead_score", Some("40".into()), Some("70".into()));
        assert_eq!(describe(&raise, "Dana", Some("Dana")), "Dana raised their lead-score threshold 40 \u{2192} 70");
        let lower = Change::new("recipient.min_lead_score", Some("70".into()), Some("50".into()));
        assert_eq!(
            describe(&lower, "Olivia", Some("Dana")),
            "Olivia lowered Dana\u{2019}s lead-score threshold 70 \u{2192} 50"
        );
    }

    #[test]
    fn switches_name_the_kind_or_channel() {
        assert_eq!(
            describe(&Change::switch("defaults.sms_enabled", false, true), "Olivia", None),
            "Olivia turned SMS on for the business"
        );
        assert_eq!(
            describe(&Change::switch("defaults.lead_created", true, false), "Olivia", None),
            "Olivia turned new-lead alerts off for the business"
        );
        assert_eq!(
            describe(&Change::switch("recipient.sms_enabled", true, false), "Sam", Some("Sam")),
            "Sam turned their SMS alerts off"
        );
    }

    #[test]
    fn destinations_show_old_and_new() {
        let change = Change::new("defaults.notification_phone", None, Some("+15555550100".into()));
        assert_eq!(
            describe(&change, "Olivia", None),
            "Olivia changed the notification phone (none) \u{2192} +15555550100"
        );
    }

    #[test]
    fn membership_changes() {
        assert_eq!(
            describe(&Change::new("recipient.added", None, None), "Olivia", Some("Olivia")),
            "Olivia became a notification recipient"
        );
        assert_eq!(
            describe(&Change::new("recipient.added", None, None), "Olivia", Some("Sam")),
            "Olivia added Sam to the notification recipients"
        );
        assert_eq!(
            describe(&Change::new("team.added", None, Some("Member".into())), "Olivia", Some("Sam")),
            "Olivia added Sam to the team as Member"
        );
    }
}
