//! What one event causes, decided from the event, the business's routing settings and what was
//! alerted before: the state recorded on the event and every delivery decision. Pure: the
//! ingest writer gathers the inputs (cached settings, earlier usage alerts, duplicate keys) and
//! stores the result in the same commit as the event.
use super::delivery::EventState;
use super::escalation::{self, Policy};
use super::events::Event;
use super::quiet::Zone;
use super::routing::{self, Claimer, Person, PhoneBlock, Planned, Target};
use super::{AlertKind, BusinessDefaults, ChannelSet, KindSet, LeadScore, RecipientPrefs};

/// The settings the rules read: business defaults and the recipients with their people.
#[derive(Debug, Clone)]
pub struct Routing {
    pub defaults: BusinessDefaults,
    pub people: Vec<Person>,
    /// The escalation policy, if the business ever set one (new leads start its timer).
    pub escalation: Option<Policy>,
    /// Why the business's notification phone cannot take texts, if it cannot.
    pub business_phone: Option<PhoneBlock>,
    /// Lead updates this close together merge into one alert (ms; 0: each alerts).
    pub update_window_ms: i64,
    /// The business's time zone: the times its own alerts name are in it.
    pub zone: Zone,
    /// Failed payments get through everyone's quiet hours (the owner marked them urgent).
    pub billing_urgent: bool,
}

impl Routing {
    /// A business's switches with nobody else: no recipients, policy, blocked phone, update
    /// window or urgent billing, in UTC.
    pub fn for_defaults(defaults: BusinessDefaults) -> Self {
        Self {
            defaults,
            people: Vec::new(),
            escalation: None,
            business_phone: None,
            update_window_ms: 0,
            zone: Zone::utc(),
            billing_urgent: false,
        }
    }
}

/// What an event causes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPlan {
    pub state: EventState,
    pub note: Option<String>,
    /// For usage events: the threshold (75, 90, 100) this event alerts about.
    pub usage_threshold: Option<u8>,
    pub decisions: Vec<Planned>,
}

impl EventPlan {
    fn nothing(state: EventState, note: impl Into<String>) -> Self {
        Self { state, note: Some(note.into()), usage_threshold: None, decisions: Vec::new() }
    }
}

/// Plans `event`. `highest_usage_alerted` is the highest usage threshold already alerted in the
/// event's billing period; `already_alerted` is true when the event's dedupe key was used before;
/// `claimed` names who claimed the event's lead, if anyone (read for updates and escalations).
/// `now_ms`: when it is planned (quiet hours hold what falls inside them).
pub fn plan_event(
    event: &Event,
    routing: &Routing,
    highest_usage_alerted: Option<u8>,
    already_alerted: bool,
    claimed: Option<&Claimer>,
    now_ms: i64,
) -> EventPlan {
    let mut plan = plan_now(event, routing, highest_usage_alerted, already_alerted, claimed, now_ms);
    // A test alert is asked for now: it is never held.
    if !matches!(event, Event::Test { .. }) {
        let score = event.lead().and_then(|l| l.score);
        let urgent = routing.billing_urgent && matches!(event, Event::PaymentFailed(_));
        routing::hold_for_quiet_hours(&mut plan.decisions, &routing.people, score, urgent, now_ms);
    }
    plan
}

fn plan_now(
    event: &Event,
    routing: &Routing,
    highest_usage_alerted: Option<u8>,
    already_alerted: bool,
    claimed: Option<&Claimer>,
    now_ms: i64,
) -> EventPlan {
    let kind = match event {
        Event::Unknown { type_name } => {
            return EventPlan::nothing(
                EventState::Ignored,
                format!("unknown event type {type_name}: accepted and ignored"),
            );
        }
        Event::Test { user_id } => {
            return EventPlan {
                state: EventState::Planned,
                note: Some("test alert".into()),
                usage_threshold: None,
                decisions: plan_test(*user_id, routing),
            };
        }
        Event::LeadEscalated(e) => {
            return EventPlan {
                state: EventState::Planned,
                note: None,
                usage_threshold: None,
                decisions: escalation::plan_step(&e.people, e.channels, &routing.defaults, &routing.people, claimed),
            };
        }
        _ => event.alert_kind(),
    };
    if already_alerted {
        let what = match event {
            Event::LeadUpdated(_) => "this lead update",
            Event::PaymentFailed(_) => "this payment attempt",
            _ => "this lead",
        };
        return EventPlan::nothing(
            EventState::Duplicate,
            format!("Kai sent {what} again under a new id; it was alerted the first time, so not again"),
        );
    }
    let Some(kind) = kind else {
        return EventPlan { state: EventState::Ignored, note: None, usage_threshold: None, decisions: Vec::new() };
    };
    let mut usage_threshold = None;
    if let Event::UsageUpdated(usage) = event {
        let already: Vec<u8> = highest_usage_alerted.into_iter().collect();
        match routing::usage_threshold(usage.minutes_used, usage.included_minutes, &already) {
            Some(threshold) => usage_threshold = Some(threshold),
            None => {
                let note = match (usage.minutes_used * 100).checked_div(usage.included_minutes) {
                    None => "the plan has no included minutes, so no usage alert".to_owned(),
                    Some(percent) => format!("{percent}% used: no new threshold reached this period"),
                };
                return EventPlan::nothing(EventState::Planned, note);
            }
        }
    }
    let score = event.lead().and_then(|l| l.score).and_then(|s| LeadScore::new(i64::from(s)).ok());
    let mut decisions =
        routing::plan(kind, score, &routing.defaults, routing.business_phone.as_ref(), &routing.people, claimed);
    routing::into_digests(&mut decisions, kind, score, &routing.defaults, &routing.people, now_ms);
    EventPlan { state: EventState::Planned, note: None, usage_threshold, decisions }
}

/// A test alert goes to each channel one person chose, through the same rules, without the
/// business's own destinations and without alert-type or score filters.
fn plan_test(user_id: i64, routing: &Routing) -> Vec<Planned> {
    let Some(person) = routing.people.iter().find(|p| p.user_id == user_id) else {
        return Vec::new();
    };
    let person = Person {
        prefs: RecipientPrefs { kinds: KindSet::ALL_ON, min_lead_score: LeadScore::default(), ..person.prefs },
        ..person.clone()
    };
    let defaults = BusinessDefaults {
        kinds: KindSet::ALL_ON,
        channels: ChannelSet { ..routing.defaults.channels },
        notification_email: None,
        notification_phone: None,
        claimed_updates_only: false,
    };
    routing::plan(AlertKind::Billing, None, &defaults, None, &[person], None)
        .into_iter()
        .filter(|p| matches!(p.target, Target::Person { .. }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::events::{Lead, Usage};
    use crate::domain::{Channel, EmailAddress};

    fn routing() -> Routing {
        let mut defaults = BusinessDefaults::for_new_business(EmailAddress::parse("office@acme.test").unwrap());
        defaults.channels.sms = true;
        let sam = Person {
            user_id: 7,
            name: "Sam".into(),
            email: "sam@acme.test".into(),
            phone: Some("+15555550101".into()),
            phone_blocked: None,
            quiet: None,
            digest: None,
            zone: crate::domain::quiet::Zone::utc(),
            prefs: RecipientPrefs { min_lead_score: LeadScore::new(70).unwrap(), ..RecipientPrefs::new_recipient() },
        };
        Routing { people: vec![sam], ..Routing::for_defaults(defaults) }
    }

    fn lead(score: u8) -> Event {
        Event::LeadCreated(Lead {
            lead_id: "L-1".into(),
            name: None,
            phone: None,
            email: None,
            score: Some(score),
            summary: None,
            occurred_at: 0,
        })
    }

    fn usage(used: u64) -> Event {
        Event::UsageUpdated(Usage {
            minutes_used: used,
            included_minutes: 500,
            period_start: "2026-11-01".into(),
            period_end: "2026-11-30".into(),
        })
    }

    #[test]
    fn a_lead_is_planned_with_the_routing_rules() {
        let plan = plan_event(&lead(80), &routing(), None, false, None, 0);
        assert_eq!(plan.state, EventState::Planned);
        let sending: Vec<_> = plan.decisions.iter().filter(|d| d.sends()).map(|d| d.channel.unwrap()).collect();
        assert_eq!(sending, vec![Channel::Email, Channel::Email, Channel::InApp], "business email, Sam email + in-app");
    }

    #[test]
    fn an_already_alerted_lead_is_a_duplicate_with_no_decisions() {
        let plan = plan_event(&lead(80), &routing(), None, true, None, 0);
        assert_eq!(plan.state, EventState::Duplicate);
        assert!(plan.decisions.is_empty());
        assert!(plan.note.unwrap().starts_with("Kai sent this lead again under a new id"));
    }

    #[test]
    fn usage_alerts_only_a_new_higher_threshold() {
        assert_eq!(plan_event(&usage(460), &routing(), None, false, None, 0).usage_threshold, Some(90));
        let none = plan_event(&usage(460), &routing(), Some(90), false, None, 0);
        assert_eq!((none.usage_threshold, none.decisions.len()), (None, 0));
        assert_eq!(none.note.as_deref(), Some("92% used: no new threshold reached this period"));
        assert_eq!(plan_event(&usage(500), &routing(), Some(90), false, None, 0).usage_threshold, Some(100));
    }

    #[test]
    fn unknown_events_are_ignored_and_test_alerts_reach_only_their_person() {
        let unknown = plan_event(&Event::Unknown { type_name: "call.ended".into() }, &routing(), None, false, None, 0);
        assert_eq!(unknown.state, EventState::Ignored);
        let test = plan_event(&Event::Test { user_id: 7 }, &routing(), None, false, None, 0);
        assert!(test.decisions.iter().all(|d| matches!(d.target, Target::Person { user_id: 7, .. })));
        assert_eq!(test.decisions.iter().filter(|d| d.sends()).count(), 2, "email and in-app, as Sam chose");
        assert!(plan_event(&Event::Test { user_id: 99 }, &routing(), None, false, None, 0).decisions.is_empty());
    }
}
