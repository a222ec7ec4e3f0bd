//! Escalation: a hot lead that nobody claims within the owner's limit is alerted to the next
//! people. The policy as the owner sets it ("if a lead scoring at least 70 is not claimed within
//! 5 minutes, alert Maria by SMS; then after 10 more minutes, alert Dana"), the schedule rules
//! (when a step falls due, and what a due step does), and the decisions of a step, through the
//! same ceiling as every alert. Pure: the ingest writer and the dispatcher keep the timers.
use super::routing::{self, Claimer, Person, Planned, Skip, Target};
use super::{AlertKind, BusinessDefaults, Channel, ChannelSet, LeadScore};

/// The longest wait before the first step (a day), and before the second.
pub const MAX_FIRST_MINUTES: u32 = 1440;
pub const MAX_SECOND_MINUTES: u32 = 1440;
const MINUTE_MS: i64 = 60_000;

/// One step: how long to wait, and whom to alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Step 1: minutes after the lead arrived; step 2: minutes after step 1.
    pub minutes: u32,
    pub people: Vec<i64>,
}

/// A business's escalation policy. Both steps alert on the same channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub enabled: bool,
    pub min_score: LeadScore,
    pub first: Step,
    pub second: Option<Step>,
    pub channels: ChannelSet,
}

impl Policy {
    /// What a business that never set one sees in the form: off, 70, 5 minutes, SMS and in-app.
    pub fn suggested() -> Self {
        Self {
            enabled: false,
            min_score: LeadScore::new(70).unwrap_or_default(),
            first: Step { minutes: 5, people: Vec::new() },
            second: None,
            channels: ChannelSet { email: false, sms: true, in_app: true },
        }
    }

    /// When a new lead's first step falls due: `None` when the policy is off or the lead's
    /// score is below the policy's (a lead without a score is never escalated).
    pub fn first_due(&self, score: Option<u8>, arrived_ms: i64) -> Option<i64> {
        let score = score?;
        (self.enabled && score >= self.min_score.value())
            .then(|| arrived_ms + i64::from(self.first.minutes) * MINUTE_MS)
    }

    pub fn step(&self, n: u8) -> Option<&Step> {
        match n {
            1 => Some(&self.first),
            2 => self.second.as_ref(),
            _ => None,
        }
    }

    /// Minutes without a claim when step `n` fires, counted from the lead's arrival.
    pub fn minutes_unclaimed(&self, n: u8) -> u32 {
        match n {
            1 => self.first.minutes,
            _ => self.first.minutes + self.second.as_ref().map_or(0, |s| s.minutes),
        }
    }

    /// The policy in one sentence, for the page and the change log.
    pub fn sentence(&self, name_of: impl Fn(i64) -> String) -> String {
        if !self.enabled {
            return "Escalation is off.".into();
        }
        let names = |people: &[i64]| list_words(&people.iter().map(|id| name_of(*id)).collect::<Vec<_>>());
        let channels: Vec<String> =
            Channel::ALL.into_iter().filter(|c| self.channels.get(*c)).map(|c| c.label().to_owned()).collect();
        let mut s = format!(
            "If a lead scoring at least {} is not claimed within {} min, alert {} by {}",
            self.min_score.value(),
            self.first.minutes,
            names(&self.first.people),
            list_words(&channels).replace(" and ", " or ")
        );
        if let Some(second) = &self.second {
            s.push_str(&format!("; then after {} more min, alert {}", second.minutes, names(&second.people)));
        }
        s.push('.');
        s
    }
}

/// "Sam", "Sam and Ann", "Sam, Ann and Dana".
pub fn list_words(items: &[String]) -> String {
    match items {
        [] => "nobody".into(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// A field the owner has to fix, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

fn field(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError { field, message: message.into() }
}

/// The policy as typed in the form, before it is checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Typed {
    pub enabled: bool,
    pub min_score: String,
    pub first_minutes: String,
    pub first_people: Vec<i64>,
    pub channels: ChannelSet,
    pub second: bool,
    pub second_minutes: String,
    pub second_people: Vec<i64>,
}

fn minutes(typed: &str, max: u32, name: &'static str) -> Result<u32, FieldError> {
    let raw = typed.trim();
    let message = format!("Enter whole minutes from 1 to {max}.");
    if raw.is_empty() {
        return Err(field(name, message));
    }
    match raw.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        Ok(_) => Err(field(name, message)),
        Err(_) => Err(field(name, format!("\u{201c}{raw}\u{201d} is not a whole number. {message}"))),
    }
}

/// Checks a typed policy. `team`: the people who may be alerted (the business's recipients);
/// anyone else is refused. A policy turned off keeps what was typed, as long as it reads.
pub fn check(typed: &Typed, team: &[i64]) -> Result<Policy, FieldError> {
    let min_score = LeadScore::parse(&typed.min_score)
        .map_err(|m| field("min_score", m.replace("lead-score threshold", "lead score")))?;
    let first_minutes = minutes(&typed.first_minutes, MAX_FIRST_MINUTES, "first_minutes")?;
    let outsider = |people: &[i64]| people.iter().any(|id| !team.contains(id));
    if outsider(&typed.first_people) || outsider(&typed.second_people) {
        return Err(field(
            "first_people",
            "Someone picked is no longer on the recipient list. Reload the page and pick again.",
        ));
    }
    let dedup = |people: &[i64]| {
        let mut people = people.to_vec();
        people.sort_unstable();
        people.dedup();
        people
    };
    let second = if typed.second {
        let minutes = minutes(&typed.second_minutes, MAX_SECOND_MINUTES, "second_minutes")?;
        Some(Step { minutes, people: dedup(&typed.second_people) })
    } else {
        None
    };
    let policy = Policy {
        enabled: typed.enabled,
        min_score,
        first: Step { minutes: first_minutes, people: dedup(&typed.first_people) },
        second,
        channels: typed.channels,
    };
    if policy.enabled {
        if policy.first.people.is_empty() {
            return Err(field("first_people", "Pick at least one person to alert."));
        }
        if !Channel::ALL.into_iter().any(|c| policy.channels.get(c)) {
            return Err(field("channels", "Pick at least one channel: SMS, email or in-app."));
        }
        if policy.second.as_ref().is_some_and(|s| s.people.is_empty()) {
            return Err(field("second_people", "Pick at least one person for the second step, or turn it off."));
        }
    }
    Ok(policy)
}

/// A step that is due, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueStep {
    pub step: u8,
    pub lead_score: Option<u8>,
    /// Who claimed the lead meanwhile, if anyone.
    pub claimed_by: Option<String>,
}

/// What a due step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AtDue {
    /// Alert these people on these channels; the lead has gone `minutes` without a claim.
    Fire { step: u8, minutes: u32, people: Vec<i64>, channels: ChannelSet },
    /// Nothing is sent; the timer ends with this note.
    Cancel(String),
}

/// Decides a due step with the policy as it is now: an owner who turned escalation off, raised
/// its score or removed its second step meanwhile is obeyed; a lead claimed meanwhile ends it.
pub fn at_due(policy: Option<&Policy>, due: &DueStep) -> AtDue {
    if let Some(by) = &due.claimed_by {
        return AtDue::Cancel(format!("{by} claimed the lead first"));
    }
    let Some(policy) = policy.filter(|p| p.enabled) else {
        return AtDue::Cancel("escalation was turned off".into());
    };
    let min = policy.min_score.value();
    match due.lead_score {
        Some(score) if score >= min => {}
        Some(score) => return AtDue::Cancel(format!("the lead's score {score} is below the escalation's {min} now")),
        None => return AtDue::Cancel("the lead has no score".into()),
    }
    match policy.step(due.step) {
        Some(step) => AtDue::Fire {
            step: due.step,
            minutes: policy.minutes_unclaimed(due.step),
            people: step.people.clone(),
            channels: policy.channels,
        },
        None => AtDue::Cancel("the second step was removed".into()),
    }
}

/// When the step after `step` falls due if `step` fires at `now_ms` (none after the last).
pub fn next_due(policy: &Policy, step: u8, now_ms: i64) -> Option<(u8, i64)> {
    let next = step + 1;
    policy.step(next).map(|s| (next, now_ms + i64::from(s.minutes) * MINUTE_MS))
}

/// The decisions of a step that fires: each of its people on each of the step's channels,
/// within the business's ceiling and the person's own channels (the person's alert types and
/// threshold do not apply: the owner chose them for this). `claimed`: the lead was claimed
/// after the step fell due, before it was planned.
pub fn plan_step(
    people: &[(i64, String)],
    channels: ChannelSet,
    defaults: &BusinessDefaults,
    recipients: &[Person],
    claimed: Option<&Claimer>,
) -> Vec<Planned> {
    let whole = |user_id: i64, name: &str, skip: Skip| Planned {
        target: Target::Person { user_id, name: name.to_owned() },
        channel: None,
        address: None,
        skip: Some(skip),
        on_behalf_of: None,
        hold: None,
    };
    if let Some(by) = claimed {
        return people.iter().map(|(id, name)| whole(*id, name, Skip::ClaimedFirst { by: by.name.clone() })).collect();
    }
    if !defaults.kinds.get(AlertKind::LeadCreated) {
        return vec![Planned {
            target: Target::Business,
            channel: None,
            address: None,
            skip: Some(Skip::KindOffForBusiness(AlertKind::LeadCreated)),
            on_behalf_of: None,
            hold: None,
        }];
    }
    let mut planned = Vec::new();
    for (user_id, name) in people {
        let Some(person) = recipients.iter().find(|p| p.user_id == *user_id) else {
            planned.push(whole(*user_id, name, Skip::NotARecipient));
            continue;
        };
        for channel in Channel::ALL.into_iter().filter(|c| channels.get(*c)) {
            let skip = if !defaults.channels.get(channel) {
                Some(Skip::ChannelOffForBusiness(channel))
            } else if !person.prefs.channels.get(channel) {
                Some(Skip::ChannelOffForPerson(channel))
            } else {
                person.unreachable(channel)
            };
            planned.push(person.decision(channel, skip));
        }
    }
    routing::skip_duplicates(&mut planned);
    planned
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EmailAddress, KindSet, RecipientPrefs};

    fn policy() -> Policy {
        Policy {
            enabled: true,
            min_score: LeadScore::new(70).unwrap(),
            first: Step { minutes: 5, people: vec![2] },
            second: Some(Step { minutes: 10, people: vec![1] }),
            channels: ChannelSet { email: false, sms: true, in_app: true },
        }
    }

    fn due(step: u8, score: Option<u8>) -> DueStep {
        DueStep { step, lead_score: score, claimed_by: None }
    }

    #[test]
    fn a_lead_at_or_above_the_score_starts_the_timer_at_its_arrival() {
        let p = policy();
        assert_eq!(p.first_due(Some(70), 1_000), Some(1_000 + 5 * 60_000));
        assert_eq!(p.first_due(Some(95), 0), Some(300_000));
        assert_eq!(p.first_due(Some(69), 0), None, "below the policy's score");
        assert_eq!(p.first_due(None, 0), None, "a lead without a score is never escalated");
        assert_eq!(Policy { enabled: false, ..p }.first_due(Some(99), 0), None, "off");
    }

    #[test]
    fn the_second_step_is_due_its_minutes_after_the_first_fired() {
        let p = policy();
        assert_eq!(next_due(&p, 1, 400_000), Some((2, 400_000 + 10 * 60_000)));
        assert_eq!(next_due(&p, 2, 400_000), None, "two steps at most");
        assert_eq!(next_due(&Policy { second: None, ..p }, 1, 0), None);
        assert_eq!(policy().minutes_unclaimed(1), 5);
        assert_eq!(policy().minutes_unclaimed(2), 15, "counted from the lead's arrival");
    }

    #[test]
    fn a_due_step_fires_with_the_policy_as_it_is_now() {
        let p = policy();
        assert_eq!(
            at_due(Some(&p), &due(1, Some(80))),
            AtDue::Fire { step: 1, minutes: 5, people: vec![2], channels: p.channels }
        );
        assert_eq!(
            at_due(Some(&p), &due(2, Some(80))),
            AtDue::Fire { step: 2, minutes: 15, people: vec![1], channels: p.channels }
        );
    }

    #[test]
    fn a_due_step_ends_quietly_when_its_reason_is_gone() {
        let p = policy();
        let claimed = DueStep { claimed_by: Some("Sam Rivera".into()), ..due(1, Some(80)) };
        assert_eq!(at_due(Some(&p), &claimed), AtDue::Cancel("Sam Rivera claimed the lead first".into()));
        assert_eq!(at_due(None, &due(1, Some(80))), AtDue::Cancel("escalation was turned off".into()));
        let off = Policy { enabled: false, ..p.clone() };
        assert_eq!(at_due(Some(&off), &due(1, Some(80))), AtDue::Cancel("escalation was turned off".into()));
        let raised = Policy { min_score: LeadScore::new(90).unwrap(), ..p.clone() };
        assert_eq!(
            at_due(Some(&raised), &due(1, Some(80))),
            AtDue::Cancel("the lead's score 80 is below the escalation's 90 now".into())
        );
        let one_step = Policy { second: None, ..p };
        assert_eq!(at_due(Some(&one_step), &due(2, Some(80))), AtDue::Cancel("the second step was removed".into()));
    }

    fn typed() -> Typed {
        Typed {
            enabled: true,
            min_score: "70".into(),
            first_minutes: "5".into(),
            first_people: vec![2, 2],
            channels: ChannelSet { email: false, sms: true, in_app: false },
            second: true,
            second_minutes: "10".into(),
            second_people: vec![1],
        }
    }

    #[test]
    fn the_form_is_checked_field_by_field() {
        let p = check(&typed(), &[1, 2]).unwrap();
        assert_eq!(p.first.people, vec![2], "picked twice, alerted once");
        assert_eq!(p.second, Some(Step { minutes: 10, people: vec![1] }));
        let refused = |t: Typed| check(&t, &[1, 2]).unwrap_err();
        assert_eq!(refused(Typed { min_score: "101".into(), ..typed() }).field, "min_score");
        assert_eq!(
            refused(Typed { first_minutes: "0".into(), ..typed() }).message,
            "Enter whole minutes from 1 to 1440."
        );
        assert!(refused(Typed { first_minutes: "five".into(), ..typed() }).message.contains("not a whole number"));
        assert_eq!(refused(Typed { second_minutes: "".into(), ..typed() }).field, "second_minutes");
        assert_eq!(refused(Typed { first_people: vec![], ..typed() }).field, "first_people");
        assert_eq!(refused(Typed { second_people: vec![], ..typed() }).field, "second_people");
        assert_eq!(refused(Typed { channels: ChannelSet::default(), ..typed() }).field, "channels");
        assert!(
            refused(Typed { first_people: vec![9], ..typed() }).message.contains("no longer on the recipient list")
        );
        // Off: kept as typed, people or not.
        let off = check(&Typed { enabled: false, first_people: vec![], second: false, ..typed() }, &[1, 2]).unwrap();
        assert!(!off.enabled && off.second.is_none());
    }

    #[test]
    fn the_policy_reads_as_a_sentence() {
        let name = |id: i64| if id == 1 { "Dana".to_owned() } else { "Sam".to_owned() };
        assert_eq!(
            policy().sentence(name),
            "If a lead scoring at least 70 is not claimed within 5 min, alert Sam by SMS or In-app; \
             then after 10 more min, alert Dana."
        );
        assert_eq!(Policy { enabled: false, ..policy() }.sentence(name), "Escalation is off.");
    }

    fn person(id: i64, sms: bool) -> Person {
        let mut prefs = RecipientPrefs::new_recipient();
        prefs.channels.sms = sms;
        Person {
            user_id: id,
            name: format!("P{id}"),
            email: format!("p{id}@acme.test"),
            phone: Some(format!("+1555555010{id}")),
            phone_blocked: None,
            quiet: None,
            digest: None,
            zone: crate::domain::quiet::Zone::utc(),
            prefs,
        }
    }

    fn defaults() -> BusinessDefaults {
        let mut d = BusinessDefaults::for_new_business(EmailAddress::parse("office@acme.test").unwrap());
        d.channels = ChannelSet { email: true, sms: true, in_app: true };
        d
    }

    #[test]
    fn a_step_goes_through_the_business_ceiling_and_the_persons_channels() {
        let channels = ChannelSet { email: false, sms: true, in_app: true };
        let people = [(1, "P1".to_owned()), (2, "P2".to_owned()), (3, "Gone".to_owned())];
        let plan = plan_step(&people, channels, &defaults(), &[person(1, true), person(2, false)], None);
        let of = |id: i64| -> Vec<(Option<Channel>, Option<Skip>)> {
            plan.iter()
                .filter(|p| matches!(p.target, Target::Person { user_id, .. } if user_id == id))
                .map(|p| (p.channel, p.skip.clone()))
                .collect()
        };
        assert_eq!(of(1), vec![(Some(Channel::Sms), None), (Some(Channel::InApp), None)], "no email: not chosen");
        assert_eq!(
            of(2),
            vec![(Some(Channel::Sms), Some(Skip::ChannelOffForPerson(Channel::Sms))), (Some(Channel::InApp), None)]
        );
        assert_eq!(of(3), vec![(None, Some(Skip::NotARecipient))]);
        // The business holds SMS off: nobody gets one.
        let mut held = defaults();
        held.channels.sms = false;
        let plan = plan_step(&people[..1], channels, &held, &[person(1, true)], None);
        assert_eq!(plan[0].skip, Some(Skip::ChannelOffForBusiness(Channel::Sms)));
        // New-lead alerts off for the business: nothing at all.
        let mut quiet = defaults();
        quiet.kinds = KindSet { lead_created: false, ..KindSet::ALL_ON };
        let plan = plan_step(&people, channels, &quiet, &[person(1, true)], None);
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].skip, Some(Skip::KindOffForBusiness(AlertKind::LeadCreated)));
    }

    #[test]
    fn a_step_planned_after_a_claim_sends_nothing_and_says_who() {
        let by = Claimer { user_id: 2, name: "Sam Rivera".into() };
        let plan = plan_step(&[(1, "P1".into())], ChannelSet::default(), &defaults(), &[person(1, true)], Some(&by));
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].skip.as_ref().map(|s| s.reason("P1")).as_deref(), Some("Sam Rivera claimed the lead first"));
    }
}
