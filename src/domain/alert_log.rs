//! The alert log's words: one line per event that answers "who got it, and why not?", and the
//! outcomes the log filters by.
use super::Channel;
use super::delivery::DeliveryStatus;
use super::routing::SkipCode;
use super::text::capitalize;

/// What became of a decision, as the log's filter offers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    NotSent,
    Failed,
    Sending,
}

impl Outcome {
    pub const ALL: [Self; 4] = [Self::Sent, Self::NotSent, Self::Failed, Self::Sending];

    /// The value in the page's address (`?outcome=not_sent`).
    pub fn param(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::NotSent => "not_sent",
            Self::Failed => "failed",
            Self::Sending => "sending",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Sent => "Sent",
            Self::NotSent => "Not sent",
            Self::Failed => "Failed or gave up",
            Self::Sending => "Still sending",
        }
    }

    pub fn from_param(param: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.param() == param)
    }

    /// The stored statuses it covers (two, repeated when it is one).
    pub fn statuses(self) -> [DeliveryStatus; 2] {
        match self {
            Self::Sent => [DeliveryStatus::Sent; 2],
            Self::NotSent => [DeliveryStatus::Skipped; 2],
            Self::Failed => [DeliveryStatus::Failed, DeliveryStatus::Dead],
            Self::Sending => [DeliveryStatus::Pending; 2],
        }
    }

    pub fn of(status: DeliveryStatus) -> Self {
        match status {
            DeliveryStatus::Sent => Self::Sent,
            DeliveryStatus::Skipped => Self::NotSent,
            DeliveryStatus::Failed | DeliveryStatus::Dead => Self::Failed,
            DeliveryStatus::Pending => Self::Sending,
        }
    }
}

/// Whom a decision was about: the business's own email and phone, or one person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whom {
    Business,
    Person(i64),
}

/// Which decisions the log shows: about whom, on which channel, with which outcome (each `None`
/// for all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogFilter {
    pub person: Option<Whom>,
    pub channel: Option<Channel>,
    pub outcome: Option<Outcome>,
}

impl LogFilter {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Whether the log shows a decision (one covering every channel is about everyone).
    pub fn matches(&self, d: &Decision) -> bool {
        let everyone = d.whom == Whom::Business && d.channel.is_none();
        self.person.is_none_or(|p| p == d.whom || everyone)
            && self.channel.is_none_or(|c| d.channel.is_none_or(|dc| dc == c))
            && self.outcome.is_none_or(|o| Outcome::of(d.status) == o)
    }
}

/// One decision about one event, as the summary needs it.
#[derive(Debug, Clone)]
pub struct Decision<'a> {
    pub whom: Whom,
    pub name: &'a str,
    /// `None` for the one decision that covers every channel ("new-lead alerts are off").
    pub channel: Option<Channel>,
    pub status: DeliveryStatus,
    pub skip: Option<SkipCode>,
    /// The reason in words (a skip's, or the provider's for a failure).
    pub reason: &'a str,
}

/// A reason in a few words, for a line that sums up several people.
fn short_reason(d: &Decision) -> String {
    let channel = d.channel.map(Channel::label).unwrap_or("this channel");
    match d.skip {
        Some(SkipCode::ChannelOffForBusiness) => format!("{channel} off for the business"),
        Some(SkipCode::NoDestination) => {
            format!("no business {} set", if d.channel == Some(Channel::Sms) { "phone" } else { "email" })
        }
        Some(SkipCode::KindOffForPerson) => "turned this alert type off".into(),
        Some(SkipCode::ChannelOffForPerson) => format!("turned {channel} off"),
        Some(SkipCode::NotARecipient) => "no longer a recipient".into(),
        Some(SkipCode::ClaimedFirst) => "the lead was claimed first".into(),
        Some(SkipCode::BelowThreshold) => "below threshold".into(),
        Some(SkipCode::NoPhone) => "no phone number".into(),
        Some(SkipCode::PhoneRefused) => "phone number refused".into(),
        Some(SkipCode::OptedOut) => "opted out by STOP".into(),
        Some(SkipCode::PhoneUnconfirmed) => "phone not confirmed".into(),
        Some(SkipCode::ClaimedByOther) => "someone else claimed the lead".into(),
        Some(SkipCode::Duplicate) => "same address as another alert".into(),
        Some(SkipCode::KindOffForBusiness) | None => d.reason.to_owned(),
    }
}

/// "the business", "2 people", "the business and 1 person".
fn whom_words(business: bool, people: usize) -> String {
    let people_words = match people {
        1 => "1 person".to_owned(),
        n => format!("{n} people"),
    };
    match (business, people) {
        (true, 0) => "the business".into(),
        (true, _) => format!("the business and {people_words}"),
        (false, _) => people_words,
    }
}

fn channels_words(decisions: &[&Decision]) -> String {
    let mut labels: Vec<&str> = Vec::new();
    for d in decisions {
        let label = d.channel.map(Channel::label).unwrap_or("every channel");
        if !labels.contains(&label) {
            labels.push(label);
        }
    }
    labels.join(", ")
}

/// The people (in first-seen order) and their decisions.
fn by_whom<'d, 'a>(decisions: &'d [Decision<'a>]) -> Vec<(Whom, Vec<&'d Decision<'a>>)> {
    let mut groups: Vec<(Whom, Vec<&Decision>)> = Vec::new();
    for d in decisions {
        match groups.iter_mut().find(|(w, _)| *w == d.whom) {
            Some((_, group)) => group.push(d),
            None => groups.push((d.whom, vec![d])),
        }
    }
    groups
}

/// One person's decisions in one line: "Sam Rivera: sent by Email · not sent by SMS: SMS is off
/// for the business". Reasons stay whole: this is the answer to "why didn't Sam get it?".
fn one_target_line(name: &str, decisions: &[&Decision]) -> String {
    let mut parts = Vec::new();
    for outcome in [Outcome::Sent, Outcome::Sending, Outcome::Failed, Outcome::NotSent] {
        let of_outcome: Vec<&Decision> =
            decisions.iter().copied().filter(|d| Outcome::of(d.status) == outcome).collect();
        if of_outcome.is_empty() {
            continue;
        }
        let verb = match outcome {
            Outcome::Sent => "sent",
            Outcome::Sending => "sending",
            Outcome::Failed => "failed",
            Outcome::NotSent => "not sent",
        };
        if matches!(outcome, Outcome::Sent | Outcome::Sending) {
            parts.push(format!("{verb} by {}", channels_words(&of_outcome)));
            continue;
        }
        // One part per distinct reason, naming its channels.
        let mut reasons: Vec<&str> = Vec::new();
        for d in &of_outcome {
            if !reasons.contains(&d.reason) {
                reasons.push(d.reason);
            }
        }
        for reason in reasons {
            let with: Vec<&Decision> = of_outcome.iter().copied().filter(|d| d.reason == reason).collect();
            let channels = match with.iter().all(|d| d.channel.is_none()) {
                true => String::new(),
                false => format!(" by {}", channels_words(&with)),
            };
            let because = if reason.is_empty() { String::new() } else { format!(": {reason}") };
            parts.push(format!("{verb}{channels}{because}"));
        }
    }
    format!("{name}: {}", parts.join(" · "))
}

/// One line about an event's decisions: "Sent to 3 people in 5 messages · not sent to 2
/// people: below threshold". About one person only, their decisions with the reasons in full.
pub fn summary_line(decisions: &[Decision]) -> String {
    let groups = by_whom(decisions);
    match groups.as_slice() {
        [] => return "No alerts for this event.".into(),
        [(Whom::Business, only)] if only.iter().all(|d| d.channel.is_none()) => {
            return format!("Not sent: {}", only.iter().map(|d| d.reason).collect::<Vec<_>>().join("; "));
        }
        [(Whom::Business, only)] => return one_target_line("The business", only),
        [(Whom::Person(_), only)] => return one_target_line(only[0].name, only),
        _ => {}
    }
    let has = |group: &[&Decision], outcome: Outcome| group.iter().any(|d| Outcome::of(d.status) == outcome);
    let count = |pick: &dyn Fn(&[&Decision]) -> bool| {
        let picked: Vec<&(Whom, Vec<&Decision>)> = groups.iter().filter(|(_, g)| pick(g)).collect();
        let business = picked.iter().any(|(w, _)| *w == Whom::Business);
        (business, picked.len() - usize::from(business), picked)
    };
    let mut parts = Vec::new();

    let (business, people, _) = count(&|g| has(g, Outcome::Sent));
    let messages = decisions.iter().filter(|d| d.status == DeliveryStatus::Sent).count();
    if messages > 0 {
        let noun = if messages == 1 { "message" } else { "messages" };
        parts.push(format!("sent to {} in {messages} {noun}", whom_words(business, people)));
    }
    let (business, people, _) = count(&|g| has(g, Outcome::Sending) && !has(g, Outcome::Sent));
    if business || people > 0 {
        parts.push(format!("sending to {}", whom_words(business, people)));
    }
    let (business, people, _) = count(&|g| has(g, Outcome::Failed));
    if business || people > 0 {
        parts.push(format!("failed for {}", whom_words(business, people)));
    }
    // Those who got nothing at all, and why (in short: the details have each reason in full).
    let (business, people, nothing) = count(&|g| g.iter().all(|d| Outcome::of(d.status) == Outcome::NotSent));
    if business || people > 0 {
        let mut reasons: Vec<String> = Vec::new();
        for d in nothing.iter().flat_map(|(_, g)| g.iter()) {
            let reason = short_reason(d);
            if !reasons.contains(&reason) {
                reasons.push(reason);
            }
        }
        parts.push(format!("not sent to {}: {}", whom_words(business, people), reasons.join(", ")));
    }
    capitalize(&parts.join(" · "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d<'a>(whom: Whom, name: &'a str, channel: Channel, status: DeliveryStatus, reason: &'a str) -> Decision<'a> {
        let skip = match reason {
            r if r.starts_with("score") => Some(SkipCode::BelowThreshold),
            r if r.starts_with("same address") => Some(SkipCode::Duplicate),
            r if r.ends_with("is off for the business") => Some(SkipCode::ChannelOffForBusiness),
            _ => None,
        };
        Decision { whom, name, channel: Some(channel), status, skip, reason }
    }

    const SENT: DeliveryStatus = DeliveryStatus::Sent;
    const SKIPPED: DeliveryStatus = DeliveryStatus::Skipped;

    #[test]
    fn an_event_for_several_people_is_summed_up_in_one_line() {
        let (b, maria, sam, ann) = (Whom::Business, Whom::Person(1), Whom::Person(2), Whom::Person(3));
        let decisions = [
            d(b, "", Channel::Email, SENT, ""),
            d(
                maria,
                "Maria",
                Channel::Email,
                SKIPPED,
                "same address as the business's notification email, which gets it",
            ),
            d(maria, "Maria", Channel::InApp, SENT, ""),
            d(sam, "Sam", Channel::Email, SENT, ""),
            d(sam, "Sam", Channel::Sms, SKIPPED, "SMS is off for the business"),
            d(sam, "Sam", Channel::InApp, SENT, ""),
            d(ann, "Ann", Channel::Email, SKIPPED, "score 40 is below Ann’s threshold 70"),
        ];
        assert_eq!(
            summary_line(&decisions),
            "Sent to the business and 2 people in 4 messages · not sent to 1 person: below threshold"
        );
    }

    #[test]
    fn one_persons_decisions_keep_their_reasons_in_full() {
        let sam = Whom::Person(2);
        let decisions = [
            d(sam, "Sam Rivera", Channel::Email, SKIPPED, "score 65 is below Sam Rivera’s threshold 70"),
            d(sam, "Sam Rivera", Channel::Sms, SKIPPED, "SMS is off for the business"),
            d(sam, "Sam Rivera", Channel::InApp, SKIPPED, "score 65 is below Sam Rivera’s threshold 70"),
        ];
        assert_eq!(
            summary_line(&decisions),
            "Sam Rivera: not sent by Email, In-app: score 65 is below Sam Rivera’s threshold 70 · not sent by SMS: SMS is off for the business"
        );
        let mixed = [d(sam, "Sam Rivera", Channel::Email, SENT, ""), decisions[1].clone()];
        assert_eq!(summary_line(&mixed), "Sam Rivera: sent by Email · not sent by SMS: SMS is off for the business");
    }

    #[test]
    fn a_kind_off_for_the_business_says_so_and_nothing_else() {
        let off = Decision {
            whom: Whom::Business,
            name: "",
            channel: None,
            status: SKIPPED,
            skip: Some(SkipCode::KindOffForBusiness),
            reason: "new-lead alerts are off for the business",
        };
        assert_eq!(summary_line(&[off]), "Not sent: new-lead alerts are off for the business");
        assert_eq!(summary_line(&[]), "No alerts for this event.");
    }

    #[test]
    fn nobody_reached_counts_everyone_with_each_short_reason_once() {
        let decisions = [
            d(Whom::Person(1), "Ann", Channel::Email, SKIPPED, "score 10 is below Ann’s threshold 50"),
            d(Whom::Person(2), "Bo", Channel::Email, SKIPPED, "score 10 is below Bo’s threshold 20"),
            d(Whom::Person(3), "Cy", Channel::Sms, SKIPPED, "SMS is off for the business"),
        ];
        assert_eq!(summary_line(&decisions), "Not sent to 3 people: below threshold, SMS off for the business");
    }

    #[test]
    fn failures_and_sends_in_progress_are_counted_by_person() {
        let decisions = [
            d(Whom::Person(1), "Ann", Channel::Email, SENT, ""),
            d(Whom::Person(1), "Ann", Channel::Sms, DeliveryStatus::Dead, "number unreachable"),
            d(Whom::Person(2), "Bo", Channel::Email, DeliveryStatus::Pending, ""),
        ];
        assert_eq!(
            summary_line(&decisions),
            "Sent to 1 person in 1 message · sending to 1 person · failed for 1 person"
        );
    }

    #[test]
    fn outcomes_round_trip_through_the_address() {
        for o in Outcome::ALL {
            assert_eq!(Outcome::from_param(o.param()), Some(o));
            assert!(o.statuses().into_iter().all(|s| Outcome::of(s) == o));
        }
        assert_eq!(Outcome::from_param("lost"), None);
    }
}
