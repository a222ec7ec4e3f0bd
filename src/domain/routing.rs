//! DESIGN.md §2 as one pure function: who gets what, for one event, and why not.
use super::quiet::{Digest, Quiet, Zone};
use super::{AlertKind, BusinessDefaults, Channel, LeadScore, RecipientPrefs};

/// Why no text can go to a phone number on file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneBlock {
    /// The SMS provider refused the number for good; why, in words.
    Refused(String),
    /// The number replied STOP, and has not replied START since.
    OptedOut,
    /// The code texted to the number has not been entered yet.
    Unconfirmed,
}

impl PhoneBlock {
    /// From what is on file: refused by the provider, opted out by STOP, confirmed by code. In
    /// that order: the first is for good, the last only waits for a code.
    pub fn of(refused: Option<String>, opted_out: bool, confirmed: bool) -> Option<Self> {
        match (refused, opted_out, confirmed) {
            (Some(why), _, _) => Some(Self::Refused(why)),
            (None, true, _) => Some(Self::OptedOut),
            (None, false, false) => Some(Self::Unconfirmed),
            (None, false, true) => None,
        }
    }

    /// In words, as Recent alerts shows it.
    pub fn words(&self) -> &str {
        match self {
            Self::Refused(why) => why,
            Self::OptedOut => "opted out by STOP",
            Self::Unconfirmed => "phone not confirmed",
        }
    }
}

/// A recipient as the rules see them at send time.
#[derive(Debug, Clone)]
pub struct Person {
    pub user_id: i64,
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
    /// Why no text can go to their phone, when one cannot.
    pub phone_blocked: Option<PhoneBlock>,
    pub prefs: RecipientPrefs,
    /// Their quiet hours, if they set any.
    pub quiet: Option<Quiet>,
    /// Their daily summary of new leads below their threshold, if they asked for one.
    pub digest: Option<Digest>,
    /// Their time zone (their own, else the business's): the times alerts name are in it.
    pub zone: Zone,
}

impl Person {
    /// Where an alert on `channel` goes: their email, their phone, their inbox.
    fn address(&self, channel: Channel) -> Option<String> {
        match channel {
            Channel::Email => Some(self.email.clone()),
            Channel::Sms => self.phone.clone(),
            Channel::InApp => Some(format!("user:{}", self.user_id)),
        }
    }

    /// Why `channel` cannot reach them at all: no phone, or one the provider refused.
    pub fn unreachable(&self, channel: Channel) -> Option<Skip> {
        match (channel, &self.phone, &self.phone_blocked) {
            (Channel::Sms, None, _) => Some(Skip::NoPhone),
            (Channel::Sms, Some(_), Some(block)) => Some(Skip::PhoneBlocked(block.clone())),
            _ => None,
        }
    }

    /// The decision for them on `channel`: sent, or `skip`.
    pub fn decision(&self, channel: Channel, skip: Option<Skip>) -> Planned {
        let target = Target::Person { user_id: self.user_id, name: self.name.clone() };
        Planned { target, channel: Some(channel), address: self.address(channel), skip, on_behalf_of: None, hold: None }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The business's own notification email or phone.
    Business,
    Person {
        user_id: i64,
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    KindOffForBusiness(AlertKind),
    ChannelOffForBusiness(Channel),
    NoBusinessDestination(Channel),
    KindOffForPerson(AlertKind),
    /// An escalation on a channel the person turned off.
    ChannelOffForPerson(Channel),
    /// An escalation to someone who is no longer on the recipient list.
    NotARecipient,
    /// An escalation planned after someone claimed the lead.
    ClaimedFirst {
        by: String,
    },
    BelowThreshold {
        score: u8,
        threshold: u8,
    },
    NoPhone,
    PhoneBlocked(PhoneBlock),
    /// An update of a lead someone else claimed, for a person who gets updates only of leads
    /// they claimed (or in a business that sends updates only to the claimer).
    ClaimedByOther {
        by: String,
        business_wide: bool,
    },
    /// The plan already sends to the same address: `of` is that delivery's index in the plan,
    /// `same_as` says whose it is ("the business's notification email", "Sam's SMS").
    Duplicate {
        of: usize,
        same_as: String,
    },
}

impl Skip {
    /// The kind of reason, stored beside the words: the alert log sums decisions up by it.
    pub fn code(&self) -> SkipCode {
        match self {
            Self::KindOffForBusiness(_) => SkipCode::KindOffForBusiness,
            Self::ChannelOffForBusiness(_) => SkipCode::ChannelOffForBusiness,
            Self::NoBusinessDestination(_) => SkipCode::NoDestination,
            Self::KindOffForPerson(_) => SkipCode::KindOffForPerson,
            Self::ChannelOffForPerson(_) => SkipCode::ChannelOffForPerson,
            Self::NotARecipient => SkipCode::NotARecipient,
            Self::ClaimedFirst { .. } => SkipCode::ClaimedFirst,
            Self::BelowThreshold { .. } => SkipCode::BelowThreshold,
            Self::NoPhone => SkipCode::NoPhone,
            Self::PhoneBlocked(PhoneBlock::Refused(_)) => SkipCode::PhoneRefused,
            Self::PhoneBlocked(PhoneBlock::OptedOut) => SkipCode::OptedOut,
            Self::PhoneBlocked(PhoneBlock::Unconfirmed) => SkipCode::PhoneUnconfirmed,
            Self::ClaimedByOther { .. } => SkipCode::ClaimedByOther,
            Self::Duplicate { .. } => SkipCode::Duplicate,
        }
    }

    /// The reason in words, as the "Recent alerts" list shows it.
    pub fn reason(&self, name: &str) -> String {
        match self {
            Self::KindOffForBusiness(kind) => format!("{} are off for the business", kind.phrase()),
            Self::ChannelOffForBusiness(channel) => format!("{} is off for the business", channel.label()),
            Self::NoBusinessDestination(Channel::Sms) => "no notification phone number is set".into(),
            Self::NoBusinessDestination(_) => "no notification email address is set".into(),
            Self::KindOffForPerson(kind) => format!("{name} turned {} off", kind.phrase()),
            Self::ChannelOffForPerson(channel) => format!("{name} turned {} off", channel.label()),
            Self::NotARecipient => format!("{name} is no longer on the recipient list"),
            Self::ClaimedFirst { by } => format!("{by} claimed the lead first"),
            Self::BelowThreshold { score, threshold } => {
                format!("score {score} is below {name}\u{2019}s threshold {threshold}")
            }
            Self::NoPhone => "no phone number".into(),
            Self::PhoneBlocked(block) => block.words().to_owned(),
            Self::ClaimedByOther { by, business_wide: true } => {
                format!("{by} claimed this lead, and its updates go only to whoever claimed it")
            }
            Self::ClaimedByOther { by, business_wide: false } => {
                format!("{by} claimed this lead; {name} gets updates only of leads they claimed")
            }
            Self::Duplicate { same_as, .. } => format!("same address as {same_as}, which gets it"),
        }
    }
}

/// The kinds of reason not to deliver, as stored (`deliveries.skip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipCode {
    KindOffForBusiness,
    ChannelOffForBusiness,
    NoDestination,
    KindOffForPerson,
    ChannelOffForPerson,
    NotARecipient,
    ClaimedFirst,
    BelowThreshold,
    NoPhone,
    PhoneRefused,
    OptedOut,
    PhoneUnconfirmed,
    ClaimedByOther,
    Duplicate,
}

impl SkipCode {
    const CODES: [(Self, &'static str); 14] = [
        (Self::KindOffForBusiness, "kind_off_business"),
        (Self::ChannelOffForBusiness, "channel_off_business"),
        (Self::NoDestination, "no_destination"),
        (Self::KindOffForPerson, "kind_off_person"),
        (Self::ChannelOffForPerson, "channel_off_person"),
        (Self::NotARecipient, "not_recipient"),
        (Self::ClaimedFirst, "claimed_first"),
        (Self::BelowThreshold, "below_threshold"),
        (Self::NoPhone, "no_phone"),
        (Self::PhoneRefused, "phone_refused"),
        (Self::OptedOut, "opted_out"),
        (Self::PhoneUnconfirmed, "phone_unconfirmed"),
        (Self::ClaimedByOther, "claimed_by_other"),
        (Self::Duplicate, "duplicate"),
    ];

    pub fn code(self) -> &'static str {
        Self::CODES.iter().find(|(s, _)| *s == self).map(|(_, c)| *c).unwrap_or_default()
    }

    /// `None` for a code this version does not know (stored by an older one as "other").
    pub fn from_code(code: &str) -> Option<Self> {
        Self::CODES.iter().find(|(_, c)| *c == code).map(|(s, _)| *s)
    }
}

/// One decision: a delivery to make, or one not made and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub target: Target,
    pub channel: Option<Channel>,
    /// Email address, E.164 phone, or `user:{id}` for the in-app inbox.
    pub address: Option<String>,
    pub skip: Option<Skip>,
    /// For a delivery to the business's own email or phone that is also a person's address:
    /// that person, whose claim link it carries.
    pub on_behalf_of: Option<i64>,
    /// Held for the person's quiet hours.
    pub hold: Option<Hold>,
}

/// A delivery held back: until when, why, and that time in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub until_ms: i64,
    pub kind: HoldKind,
    /// "07:00": the release time as the person (or the business) reads it.
    pub at: String,
    /// "held for quiet hours until 07:00 (Sam's time)"
    pub reason: String,
}

/// Why a delivery is held: it decides what it is released with, and what Recent alerts says
/// once it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HoldKind {
    /// The person's quiet hours: released with whatever else they held, as one summary.
    Quiet,
    /// A lead's update window: only the latest update of the lead goes.
    Update,
    /// The person's daily summary of leads below their threshold.
    Digest,
}

impl HoldKind {
    pub fn code(self) -> &'static str {
        match self {
            Self::Quiet => "quiet",
            Self::Update => "update",
            Self::Digest => "digest",
        }
    }

    /// `None` for rows held before the kind was stored (quiet hours or an update window).
    pub fn from_code(code: &str) -> Option<Self> {
        [Self::Quiet, Self::Update, Self::Digest].into_iter().find(|k| k.code() == code)
    }
}

fn normalized(channel: Channel, address: &str) -> (Channel, String) {
    (channel, address.trim().to_lowercase())
}

/// Who said they would call a lead back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimer {
    pub user_id: i64,
    pub name: String,
}

/// Plans one event of `kind` (with `score` for lead alerts; no score counts as 0).
/// `business_phone`: why the business's notification phone cannot take texts, if it cannot.
/// `claimed`: who claimed the lead of a lead update, if anyone.
pub fn plan(
    kind: AlertKind,
    score: Option<LeadScore>,
    defaults: &BusinessDefaults,
    business_phone: Option<&PhoneBlock>,
    people: &[Person],
    claimed: Option<&Claimer>,
) -> Vec<Planned> {
    // Rule 1: the whole kind is off.
    if !defaults.kinds.get(kind) {
        return vec![Planned {
            target: Target::Business,
            channel: None,
            address: None,
            skip: Some(Skip::KindOffForBusiness(kind)),
            on_behalf_of: None,
            hold: None,
        }];
    }
    let mut planned = Vec::new();

    // Rule 2: the business's own destinations get every enabled kind, no score filter.
    let business = [
        (Channel::Email, defaults.notification_email.as_ref().map(|e| e.to_string())),
        (Channel::Sms, defaults.notification_phone.as_ref().map(|p| p.to_string())),
    ];
    for (channel, destination) in business {
        let skip = match (&destination, defaults.channels.get(channel)) {
            (None, false) => continue,
            (Some(_), false) => Some(Skip::ChannelOffForBusiness(channel)),
            (None, true) => Some(Skip::NoBusinessDestination(channel)),
            (Some(_), true) if channel == Channel::Sms => business_phone.cloned().map(Skip::PhoneBlocked),
            (Some(_), true) => None,
        };
        planned.push(Planned {
            target: Target::Business,
            channel: Some(channel),
            address: destination,
            skip,
            on_behalf_of: None,
            hold: None,
        });
    }

    // Rule 3: each recipient on each channel they chose.
    let is_lead = matches!(kind, AlertKind::LeadCreated | AlertKind::LeadUpdated);
    let score = score.map(LeadScore::value).unwrap_or(0);
    for person in people {
        for channel in Channel::ALL.into_iter().filter(|c| person.prefs.channels.get(*c)) {
            let threshold = person.prefs.min_lead_score.value();
            let skip = if !defaults.channels.get(channel) {
                Some(Skip::ChannelOffForBusiness(channel))
            } else if !person.prefs.kinds.get(kind) {
                Some(Skip::KindOffForPerson(kind))
            } else if let Some(by) = claimed.filter(|c| {
                kind == AlertKind::LeadUpdated
                    && c.user_id != person.user_id
                    && (defaults.claimed_updates_only || person.prefs.claimed_updates_only)
            }) {
                Some(Skip::ClaimedByOther { by: by.name.clone(), business_wide: defaults.claimed_updates_only })
            } else if is_lead && score < threshold {
                Some(Skip::BelowThreshold { score, threshold })
            } else {
                person.unreachable(channel)
            };
            planned.push(person.decision(channel, skip));
        }
    }

    // Rule 4: never the same (channel, address) twice.
    skip_duplicates(&mut planned);
    planned
}

/// Rule 5: quiet hours. A person's email and SMS planned at `now_ms` inside their quiet hours
/// wait for the window's end (in-app makes no noise: it goes at once), unless the lead scores
/// at least their urgent score, or the alert is `urgent` for the whole business (a failed
/// payment the owner marked so). Only decisions that send, and are not held already, are held.
pub fn hold_for_quiet_hours(
    planned: &mut [Planned],
    people: &[Person],
    lead_score: Option<u8>,
    urgent: bool,
    now_ms: i64,
) {
    if urgent {
        return;
    }
    for d in planned
        .iter_mut()
        .filter(|d| d.sends() && d.hold.is_none() && matches!(d.channel, Some(Channel::Email | Channel::Sms)))
    {
        let Target::Person { user_id, name } = &d.target else { continue };
        let Some(quiet) = people.iter().find(|p| p.user_id == *user_id).and_then(|p| p.quiet.as_ref()) else {
            continue;
        };
        d.hold = quiet.hold(lead_score, now_ms).map(|until_ms| Hold {
            until_ms,
            kind: HoldKind::Quiet,
            at: quiet.zone.clock(until_ms),
            reason: quiet.held_words(name, until_ms),
        });
    }
}

/// Rule 6: lead updates close together. An update inside its lead's window waits for the
/// window's end (`until_ms`), on every channel, unless quiet hours hold it longer; at the end
/// only the latest update of the lead goes. `zone`: the business's, for its own copies.
pub fn hold_for_update_window(planned: &mut [Planned], people: &[Person], business_zone: &Zone, until_ms: i64) {
    for d in planned.iter_mut().filter(|d| d.sends()) {
        if d.hold.as_ref().is_none_or(|h| h.until_ms < until_ms) {
            let zone = match &d.target {
                Target::Person { user_id, .. } => {
                    people.iter().find(|p| p.user_id == *user_id).map_or(business_zone, |p| &p.zone)
                }
                Target::Business => business_zone,
            };
            d.hold = Some(Hold {
                until_ms,
                kind: HoldKind::Update,
                at: zone.clock(until_ms),
                reason: "held to merge with the other updates of this lead that come within the window".into(),
            });
        }
    }
}

/// Rule 7: the daily summary. A new lead below the threshold of someone who asked for the
/// summary goes into it, by email, when the business sends email and new-lead alerts and the
/// person wants new-lead alerts; their texts and in-app stay skipped. Nothing goes twice: an
/// address that already gets this alert gets no summary line for it.
pub fn into_digests(
    planned: &mut Vec<Planned>,
    kind: AlertKind,
    score: Option<LeadScore>,
    defaults: &BusinessDefaults,
    people: &[Person],
    now_ms: i64,
) {
    if kind != AlertKind::LeadCreated || !defaults.kinds.get(kind) || !defaults.channels.get(Channel::Email) {
        return;
    }
    let score = score.map(LeadScore::value).unwrap_or(0);
    for person in people {
        let threshold = person.prefs.min_lead_score.value();
        let Some(digest) = person.digest.as_ref().filter(|_| person.prefs.kinds.get(kind) && score < threshold) else {
            continue;
        };
        let Some(until_ms) = digest.next(now_ms) else { continue };
        let mine = |d: &Planned| {
            d.channel == Some(Channel::Email)
                && matches!(&d.target, Target::Person { user_id, .. } if *user_id == person.user_id)
        };
        let index = match planned.iter().position(mine) {
            Some(i) => i,
            None => {
                planned.push(person.decision(Channel::Email, None));
                planned.len() - 1
            }
        };
        let below = Skip::BelowThreshold { score, threshold }.reason(&person.name);
        let key = normalized(Channel::Email, &person.email);
        let first = planned.iter().enumerate().position(|(i, d)| {
            i != index
                && d.sends()
                && d.hold.is_none()
                && d.channel == Some(Channel::Email)
                && d.address.as_deref().is_some_and(|a| normalized(Channel::Email, a) == key)
        });
        let d = &mut planned[index];
        d.skip = None;
        d.hold = Some(Hold {
            until_ms,
            kind: HoldKind::Digest,
            at: digest.zone.clock(until_ms),
            reason: format!("{below}: {}", digest.words(now_ms, until_ms)),
        });
        if let Some(first) = first {
            let same_as = planned[first].describe();
            let d = &mut planned[index];
            d.hold = None;
            d.skip = Some(Skip::Duplicate { of: first, same_as });
        }
    }
}

/// Rule 4: never the same (channel, address) twice. A later decision to an address already
/// planned is skipped, naming the first; the business's copy that reaches a person carries
/// that person's claim link.
pub fn skip_duplicates(planned: &mut [Planned]) {
    let mut seen: Vec<((Channel, String), usize)> = Vec::new();
    for i in 0..planned.len() {
        let delivery = &planned[i];
        let (Some(channel), Some(address), true) = (delivery.channel, delivery.address.as_deref(), delivery.sends())
        else {
            continue;
        };
        let key = normalized(channel, address);
        match seen.iter().find(|(k, _)| *k == key) {
            Some((_, first)) => {
                let first = *first;
                let same_as = planned[first].describe();
                // The business's copy reaches this person: it is theirs to claim from.
                if let (Target::Business, Target::Person { user_id, .. }) = (&planned[first].target, &planned[i].target)
                {
                    let person = *user_id;
                    planned[first].on_behalf_of.get_or_insert(person);
                }
                planned[i].skip = Some(Skip::Duplicate { of: first, same_as });
            }
            None => seen.push((key, i)),
        }
    }
}

impl Planned {
    pub fn sends(&self) -> bool {
        self.skip.is_none()
    }

    /// Whose delivery this is, in words: "the business's notification email", "Sam's SMS".
    fn describe(&self) -> String {
        let channel = self.channel.map(Channel::label).unwrap_or("alert");
        match &self.target {
            Target::Business => match self.channel {
                Some(Channel::Sms) => "the business's notification phone".into(),
                _ => "the business's notification email".into(),
            },
            Target::Person { name, .. } => format!("{name}\u{2019}s {channel}"),
        }
    }
}

/// The usage threshold to alert about now, if any: the highest of 75/90/100 % reached that is
/// above every threshold already alerted in this period. `included = 0` never alerts.
pub fn usage_threshold(minutes_used: u64, included: u64, already_alerted: &[u8]) -> Option<u8> {
    if included == 0 {
        return None;
    }
    let reached = [100u8, 90, 75].into_iter().find(|t| minutes_used.saturating_mul(100) >= u64::from(*t) * included)?;
    let highest_sent = already_alerted.iter().copied().max().unwrap_or(0);
    (reached > highest_sent).then_some(reached)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ChannelSet, EmailAddress, KindSet, PhoneNumber};
    use Skip::ClaimedByOther;

    fn defaults() -> BusinessDefaults {
        BusinessDefaults {
            kinds: KindSet::ALL_ON,
            channels: ChannelSet { email: true, sms: true, in_app: true },
            notification_email: Some(EmailAddress::parse("office@acme.test").unwrap()),
            notification_phone: Some(PhoneNumber::from_stored("+15555550100".into())),
            claimed_updates_only: false,
        }
    }

    fn person(id: i64, name: &str, threshold: i64) -> Person {
        Person {
            user_id: id,
            name: name.into(),
            email: format!("{}@acme.test", name.to_lowercase()),
            phone: Some(format!("+1555555010{id}")),
            phone_blocked: None,
            quiet: None,
            digest: None,
            zone: crate::domain::quiet::Zone::utc(),
            prefs: RecipientPrefs {
                channels: ChannelSet { email: true, sms: true, in_app: true },
                kinds: KindSet::ALL_ON,
                min_lead_score: LeadScore::new(threshold).unwrap(),
                claimed_updates_only: false,
            },
        }
    }

    fn score(n: i64) -> Option<LeadScore> {
        Some(LeadScore::new(n).unwrap())
    }

    fn skips_of(plan: &[Planned], user_id: i64) -> Vec<(Channel, Option<Skip>)> {
        plan.iter()
            .filter(|p| matches!(p.target, Target::Person { user_id: u, .. } if u == user_id))
            .map(|p| (p.channel.unwrap(), p.skip.clone()))
            .collect()
    }

    #[test]
    fn updates_of_a_claimed_lead_skip_those_who_want_only_their_own_claims() {
        let mut alex = person(2, "Alex", 0);
        alex.prefs.claimed_updates_only = true;
        let (sam, pat) = (person(1, "Sam", 0), person(3, "Pat", 0));
        let by_sam = Claimer { user_id: 1, name: "Sam".into() };
        let people = [sam, alex, pat];
        let sent_to = |plan: &[Planned], id: i64| skips_of(plan, id).iter().all(|(_, s)| s.is_none());

        let update = plan(AlertKind::LeadUpdated, score(80), &defaults(), None, &people, Some(&by_sam));
        assert!(sent_to(&update, 1), "the claimer gets it");
        assert!(sent_to(&update, 3), "Pat wants every update");
        let skip = ClaimedByOther { by: "Sam".into(), business_wide: false };
        assert!(skips_of(&update, 2).iter().all(|(_, s)| s.as_ref() == Some(&skip)));
        assert_eq!(skip.reason("Alex"), "Sam claimed this lead; Alex gets updates only of leads they claimed");
        assert_eq!(skip.code(), SkipCode::ClaimedByOther);

        // Nobody claimed it yet: everyone hears. A new lead is never held back.
        assert!(sent_to(&plan(AlertKind::LeadUpdated, score(80), &defaults(), None, &people, None), 2));
        assert!(sent_to(&plan(AlertKind::LeadCreated, score(80), &defaults(), None, &people, Some(&by_sam)), 2));

        // For the whole business: only the claimer, and the business's own destinations.
        let mut d = defaults();
        d.claimed_updates_only = true;
        let update = plan(AlertKind::LeadUpdated, score(80), &d, None, &people, Some(&by_sam));
        assert!(sent_to(&update, 1) && !sent_to(&update, 2) && !sent_to(&update, 3));
        assert!(update.iter().filter(|p| p.target == Target::Business).all(Planned::sends));
        let wide = ClaimedByOther { by: "Sam".into(), business_wide: true };
        assert_eq!(wide.reason("Pat"), "Sam claimed this lead, and its updates go only to whoever claimed it");
    }

    /// 2026-06-11 03:30 UTC, inside nightly 22:00–07:00 quiet hours in UTC; they end at 07:00.
    const NIGHT: i64 = 1_781_148_600_000;
    const MORNING: i64 = 1_781_161_200_000;

    fn quiet_person(id: i64, name: &str, urgent: Option<u8>) -> Person {
        use crate::domain::quiet::{QuietHours, Zone};
        let hours = QuietHours::check([true; 7], "22:00", "07:00").unwrap();
        Person { quiet: Some(Quiet { hours, zone: Zone::utc(), urgent_score: urgent }), ..person(id, name, 0) }
    }

    /// Each of a person's decisions: channel, whether it sends, and until when it is held.
    /// Until when, and why, a decision is held.
    type Held = Option<(i64, HoldKind)>;

    fn holds_of(plan: &[Planned], user_id: i64) -> Vec<(Channel, bool, Held)> {
        plan.iter()
            .filter(|p| matches!(p.target, Target::Person { user_id: u, .. } if u == user_id))
            .map(|p| (p.channel.unwrap(), p.sends(), p.hold.as_ref().map(|h| (h.until_ms, h.kind))))
            .collect()
    }

    #[test]
    fn rule_5_quiet_hours_hold_email_and_sms_but_not_in_app_hot_leads_or_urgent_billing() {
        let held = Some((MORNING, HoldKind::Quiet));
        // What, the person's urgent score, the lead's score, urgent billing, when, and each of
        // the person's channels (email, SMS, in-app).
        type Case<'a> = (&'a str, Option<u8>, Option<u8>, bool, i64, [Held; 3]);
        let cases: [Case; 5] = [
            ("a lead at night", None, Some(60), false, NIGHT, [held, held, None]),
            ("a lead by day", None, Some(60), false, MORNING, [None, None, None]),
            ("a lead at the urgent score", Some(90), Some(90), false, NIGHT, [None, None, None]),
            ("a lead just below it", Some(90), Some(89), false, NIGHT, [held, held, None]),
            ("a payment the owner marked urgent", None, None, true, NIGHT, [None, None, None]),
        ];
        for (what, urgent_score, lead, urgent, now, expected) in cases {
            let people = [quiet_person(1, "Sam", urgent_score)];
            let mut planned =
                plan(AlertKind::LeadCreated, lead.map(|s| score(s.into()).unwrap()), &defaults(), None, &people, None);
            hold_for_quiet_hours(&mut planned, &people, lead, urgent, now);
            let got: Vec<_> = holds_of(&planned, 1).into_iter().map(|(_, sends, h)| (sends, h)).collect();
            let want: Vec<_> = expected.into_iter().map(|h| (true, h)).collect();
            assert_eq!(got, want, "{what}");
        }
        // The business's own copies are never held: they have no quiet hours.
        let people = [quiet_person(1, "Sam", None)];
        let mut planned = plan(AlertKind::LeadCreated, score(60), &defaults(), None, &people, None);
        hold_for_quiet_hours(&mut planned, &people, Some(60), false, NIGHT);
        assert!(planned.iter().filter(|p| p.target == Target::Business).all(|p| p.hold.is_none()));
        let sam = planned.iter().find(|p| p.channel == Some(Channel::Sms) && p.target != Target::Business).unwrap();
        assert_eq!(sam.hold.as_ref().unwrap().reason, "held for quiet hours until 07:00 (Sam\u{2019}s time)");
        assert_eq!(sam.hold.as_ref().unwrap().at, "07:00");
    }

    #[test]
    fn rule_6_an_update_in_its_window_waits_for_its_end_unless_quiet_hours_hold_it_longer() {
        let people = [quiet_person(1, "Sam", None), person(2, "Ann", 0)];
        let mut planned = plan(AlertKind::LeadUpdated, score(80), &defaults(), None, &people, None);
        hold_for_quiet_hours(&mut planned, &people, Some(80), false, NIGHT);
        let window_end = NIGHT + 120_000;
        hold_for_update_window(&mut planned, &people, &crate::domain::quiet::Zone::utc(), window_end);
        let upd = Some((window_end, HoldKind::Update));
        assert_eq!(
            holds_of(&planned, 1),
            vec![
                (Channel::Email, true, Some((MORNING, HoldKind::Quiet))),
                (Channel::Sms, true, Some((MORNING, HoldKind::Quiet))),
                (Channel::InApp, true, upd)
            ],
            "quiet hours end later than the window: they decide"
        );
        assert!(holds_of(&planned, 2).iter().all(|(_, sends, h)| *sends && *h == upd), "Ann waits for the window");
        assert!(
            planned
                .iter()
                .filter(|p| p.target == Target::Business)
                .all(|p| p.hold.as_ref().map(|h| h.kind) == Some(HoldKind::Update))
        );
    }

    #[test]
    fn rule_7_leads_below_the_threshold_go_into_the_daily_summary_by_email_only() {
        use crate::domain::quiet::{Digest, TimeOfDay, Zone};
        let digest = Some(Digest { at: TimeOfDay::parse("08:00").unwrap(), zone: Zone::utc() });
        let eight = MORNING + 3_600_000;
        let sam = Person { digest: digest.clone(), ..person(1, "Sam", 70) };
        let planned = |kind, lead: i64, d: &BusinessDefaults, people: &[Person]| {
            let mut p = plan(kind, score(lead), d, None, people, None);
            into_digests(&mut p, kind, score(lead), d, people, NIGHT);
            hold_for_quiet_hours(&mut p, people, Some(lead as u8), false, NIGHT);
            p
        };
        let below = planned(AlertKind::LeadCreated, 40, &defaults(), std::slice::from_ref(&sam));
        assert_eq!(
            holds_of(&below, 1),
            vec![
                (Channel::Email, true, Some((eight, HoldKind::Digest))),
                (Channel::Sms, false, None),
                (Channel::InApp, false, None)
            ]
        );
        let email = below.iter().find(|p| p.hold.is_some()).unwrap();
        assert_eq!(
            email.hold.as_ref().unwrap().reason,
            "score 40 is below Sam\u{2019}s threshold 70: in today\u{2019}s 08:00 digest"
        );
        // At or above the threshold: an alert as always, no summary line.
        assert!(
            holds_of(&planned(AlertKind::LeadCreated, 70, &defaults(), std::slice::from_ref(&sam)), 1)
                .iter()
                .all(|(_, s, h)| *s && h.is_none())
        );
        // Updates never go into it.
        assert!(
            holds_of(&planned(AlertKind::LeadUpdated, 40, &defaults(), std::slice::from_ref(&sam)), 1)
                .iter()
                .all(|(_, s, _)| !*s)
        );
        // Someone who ticked no email box still gets their summary by email: they asked for it.
        let mut texts_only = sam.clone();
        texts_only.prefs.channels = ChannelSet { email: false, sms: true, in_app: false };
        let p = planned(AlertKind::LeadCreated, 40, &defaults(), &[texts_only]);
        assert_eq!(
            holds_of(&p, 1),
            vec![(Channel::Sms, false, None), (Channel::Email, true, Some((eight, HoldKind::Digest)))]
        );
        // The business sends no email: no summary (the business's rules are a ceiling).
        let mut no_email = defaults();
        no_email.channels.email = false;
        assert!(
            holds_of(&planned(AlertKind::LeadCreated, 40, &no_email, std::slice::from_ref(&sam)), 1)
                .iter()
                .all(|(_, s, _)| !*s)
        );
        // They turned new-lead alerts off: no summary of new leads either.
        let mut no_leads = sam.clone();
        no_leads.prefs.kinds.lead_created = false;
        assert!(
            holds_of(&planned(AlertKind::LeadCreated, 40, &defaults(), &[no_leads]), 1).iter().all(|(_, s, _)| !*s)
        );
        // Their address gets this alert already (it is the business's email): nothing twice.
        let mut office = defaults();
        office.notification_email = Some(crate::domain::EmailAddress::parse("Sam@acme.test").unwrap());
        let p = planned(AlertKind::LeadCreated, 40, &office, std::slice::from_ref(&sam));
        let email = p.iter().find(|d| d.channel == Some(Channel::Email) && d.target != Target::Business).unwrap();
        assert!(matches!(email.skip, Some(Skip::Duplicate { of: 0, .. })), "{:?}", email.skip);
        // Quiet hours do not move the summary: it has its own time.
        let quiet_sam = Person { digest, ..quiet_person(1, "Sam", None) };
        let mut quiet_sam = quiet_sam;
        quiet_sam.prefs.min_lead_score = LeadScore::new(70).unwrap();
        let p = planned(AlertKind::LeadCreated, 40, &defaults(), &[quiet_sam]);
        assert_eq!(holds_of(&p, 1)[0], (Channel::Email, true, Some((eight, HoldKind::Digest))));
    }

    #[test]
    fn rule_1_a_kind_off_for_the_business_records_one_decision_and_sends_nothing() {
        let mut d = defaults();
        d.kinds.lead_created = false;
        let plan = plan(AlertKind::LeadCreated, score(90), &d, None, &[person(1, "Sam", 0)], None);
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].skip, Some(Skip::KindOffForBusiness(AlertKind::LeadCreated)));
        assert_eq!(plan[0].skip.as_ref().unwrap().reason(""), "new-lead alerts are off for the business");
    }

    #[test]
    fn rule_2_business_destinations_get_every_enabled_kind_without_a_score_filter() {
        let plan = plan(AlertKind::LeadCreated, score(1), &defaults(), None, &[], None);
        let sent: Vec<_> =
            plan.iter().filter(|p| p.sends()).map(|p| (p.channel.unwrap(), p.address.clone().unwrap())).collect();
        assert_eq!(sent, vec![(Channel::Email, "office@acme.test".into()), (Channel::Sms, "+15555550100".into())]);
    }

    #[test]
    fn rule_2_a_channel_on_without_a_destination_is_recorded() {
        let mut d = defaults();
        d.notification_phone = None;
        let plan = plan(AlertKind::Billing, None, &d, None, &[], None);
        assert_eq!(plan[1].skip, Some(Skip::NoBusinessDestination(Channel::Sms)));
        assert_eq!(plan[1].skip.as_ref().unwrap().reason(""), "no notification phone number is set");
    }

    #[test]
    fn rule_3_a_channel_off_for_the_business_is_skipped_with_its_reason() {
        let mut d = defaults();
        d.channels.sms = false;
        let plan = plan(AlertKind::LeadCreated, score(90), &d, None, &[person(1, "Sam", 0)], None);
        let sam = skips_of(&plan, 1);
        assert_eq!(sam[1], (Channel::Sms, Some(Skip::ChannelOffForBusiness(Channel::Sms))));
        assert_eq!(Skip::ChannelOffForBusiness(Channel::Sms).reason("Sam"), "SMS is off for the business");
        assert!(sam[0].1.is_none() && sam[2].1.is_none());
    }

    #[test]
    fn rule_3_a_kind_the_person_turned_off_is_skipped() {
        let mut sam = person(1, "Sam", 0);
        sam.prefs.kinds.usage = false;
        let plan = plan(AlertKind::Usage, None, &defaults(), None, &[sam], None);
        assert!(skips_of(&plan, 1).iter().all(|(_, s)| *s == Some(Skip::KindOffForPerson(AlertKind::Usage))));
        assert_eq!(Skip::KindOffForPerson(AlertKind::Usage).reason("Sam"), "Sam turned usage alerts off");
    }

    #[test]
    fn rule_3_a_lead_below_the_threshold_is_skipped_and_no_score_counts_as_zero() {
        let plan_65 = plan(AlertKind::LeadCreated, score(65), &defaults(), None, &[person(1, "Sam", 70)], None);
        assert!(
            skips_of(&plan_65, 1).iter().all(|(_, s)| *s == Some(Skip::BelowThreshold { score: 65, threshold: 70 }))
        );
        assert_eq!(
            Skip::BelowThreshold { score: 62, threshold: 70 }.reason("Sam"),
            "score 62 is below Sam\u{2019}s threshold 70"
        );
        let plan_70 = plan(AlertKind::LeadCreated, score(70), &defaults(), None, &[person(1, "Sam", 70)], None);
        assert!(skips_of(&plan_70, 1).iter().all(|(_, s)| s.is_none()), "score >= threshold reaches them");
        let unscored =
            plan(AlertKind::LeadUpdated, None, &defaults(), None, &[person(1, "Sam", 1), person(2, "Ann", 0)], None);
        assert!(
            skips_of(&unscored, 1).iter().all(|(_, s)| *s == Some(Skip::BelowThreshold { score: 0, threshold: 1 }))
        );
        assert!(skips_of(&unscored, 2).iter().all(|(_, s)| s.is_none()));
    }

    #[test]
    fn rule_3_thresholds_do_not_apply_to_usage_or_billing() {
        let plan = plan(AlertKind::Billing, None, &defaults(), None, &[person(1, "Sam", 100)], None);
        assert!(skips_of(&plan, 1).iter().all(|(_, s)| s.is_none()));
    }

    #[test]
    fn rule_3_sms_without_a_phone_or_with_a_refused_number_is_skipped() {
        let mut sam = person(1, "Sam", 0);
        sam.phone = None;
        let mut ann = person(2, "Ann", 0);
        ann.phone_blocked = Some(PhoneBlock::OptedOut);
        let plan = plan(AlertKind::LeadCreated, score(50), &defaults(), None, &[sam, ann], None);
        assert_eq!(skips_of(&plan, 1)[1], (Channel::Sms, Some(Skip::NoPhone)));
        assert_eq!(skips_of(&plan, 2)[1].1.as_ref().unwrap().reason("Ann"), "opted out by STOP");
        assert_eq!(skips_of(&plan, 2)[1].1.as_ref().unwrap().code(), SkipCode::OptedOut);
        let mut lee = person(3, "Lee", 0);
        lee.phone_blocked = Some(PhoneBlock::Unconfirmed);
        let lee_plan = super::plan(AlertKind::LeadCreated, score(50), &defaults(), None, &[lee], None);
        assert_eq!(skips_of(&lee_plan, 3)[1], (Channel::Sms, Some(Skip::PhoneBlocked(PhoneBlock::Unconfirmed))));
        assert_eq!(Skip::PhoneBlocked(PhoneBlock::Unconfirmed).reason("Lee"), "phone not confirmed");
    }

    #[test]
    fn rule_2_the_business_phone_must_take_texts_too() {
        let d = defaults();
        for block in [PhoneBlock::OptedOut, PhoneBlock::Unconfirmed] {
            let blocked = plan(AlertKind::LeadCreated, score(50), &d, Some(&block), &[], None);
            let sms = blocked.iter().find(|p| p.channel == Some(Channel::Sms)).unwrap();
            assert_eq!(sms.skip, Some(Skip::PhoneBlocked(block)));
        }
        let plan = plan(AlertKind::LeadCreated, score(50), &d, None, &[], None);
        assert!(plan.iter().all(|p| p.skip.is_none()), "{plan:?}");
    }

    #[test]
    fn rule_3_only_channels_the_person_chose_appear() {
        let mut sam = person(1, "Sam", 0);
        sam.prefs.channels = ChannelSet { email: false, sms: false, in_app: true };
        let plan = plan(AlertKind::LeadCreated, score(50), &defaults(), None, &[sam], None);
        assert_eq!(skips_of(&plan, 1), vec![(Channel::InApp, None)]);
        assert_eq!(plan.iter().find(|p| p.channel == Some(Channel::InApp)).unwrap().address.as_deref(), Some("user:1"));
    }

    #[test]
    fn rule_4_the_same_address_never_gets_the_event_twice() {
        let mut owner = person(1, "Office", 0);
        owner.email = "Office@ACME.test".into();
        owner.phone = Some("+15555550100".into());
        let plan = plan(AlertKind::LeadCreated, score(50), &defaults(), None, &[owner], None);
        let office = skips_of(&plan, 1);
        let same = |of: usize, same_as: &str| Some(Skip::Duplicate { of, same_as: same_as.into() });
        assert_eq!(office[0], (Channel::Email, same(0, "the business's notification email")));
        assert_eq!(office[1], (Channel::Sms, same(1, "the business's notification phone")));
        // The business's copies reach the person: theirs to claim the lead from.
        assert_eq!(plan[0].on_behalf_of, Some(1));
        assert_eq!(plan[1].on_behalf_of, Some(1));
        assert_eq!(
            office[0].1.as_ref().unwrap().reason("Office"),
            "same address as the business's notification email, which gets it"
        );
        assert_eq!(office[2], (Channel::InApp, None));
        assert_eq!(plan.iter().filter(|p| p.sends()).count(), 3);
    }

    #[test]
    fn usage_sends_only_the_highest_new_threshold_once_per_period() {
        let mut sent = Vec::new();
        let mut sequence = Vec::new();
        for used in [350, 475, 480, 600] {
            let t = usage_threshold(used, 500, &sent);
            sent.extend(t);
            sequence.push(t);
        }
        assert_eq!(sequence, vec![None, Some(90), None, Some(100)], "70% → 95% → 96% → 120%");
        assert_eq!(usage_threshold(480, 500, &[]), Some(90), "a new period starts fresh");
        assert_eq!(usage_threshold(375, 500, &[]), Some(75), "exactly 75% counts");
        assert_eq!(usage_threshold(500, 500, &[75, 90]), Some(100));
        assert_eq!(usage_threshold(10, 0, &[]), None, "no included minutes, no alert");
        assert_eq!(usage_threshold(350, 500, &[]), None);
    }
}
