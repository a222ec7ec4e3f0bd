//! Business defaults, a recipient's own preferences, and the ceiling rule between them
//! (DESIGN.md §2): a person's choices are stored as they chose them; the business defaults cap
//! them when alerts are sent and when the page shows what someone will actually receive.
use super::audit::{Change, on_off};
use super::quiet::{self, Quiet};
use super::routing::PhoneBlock;
use super::{AlertKind, Channel, EmailAddress, LeadScore, PhoneNumber};

/// On/off for each alert kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindSet {
    pub lead_created: bool,
    pub lead_updated: bool,
    pub usage: bool,
    pub billing: bool,
}

impl KindSet {
    pub const ALL_ON: Self = Self { lead_created: true, lead_updated: true, usage: true, billing: true };

    pub fn get(&self, kind: AlertKind) -> bool {
        match kind {
            AlertKind::LeadCreated => self.lead_created,
            AlertKind::LeadUpdated => self.lead_updated,
            AlertKind::Usage => self.usage,
            AlertKind::Billing => self.billing,
        }
    }

    pub fn set(&mut self, kind: AlertKind, on: bool) {
        match kind {
            AlertKind::LeadCreated => self.lead_created = on,
            AlertKind::LeadUpdated => self.lead_updated = on,
            AlertKind::Usage => self.usage = on,
            AlertKind::Billing => self.billing = on,
        }
    }

    /// Reads the set from checkbox names present in a submitted form.
    pub fn from_checked(is_checked: impl Fn(&str) -> bool) -> Self {
        let mut set = Self { lead_created: false, lead_updated: false, usage: false, billing: false };
        for kind in AlertKind::ALL {
            set.set(kind, is_checked(kind.field()));
        }
        set
    }
}

/// On/off for each channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ChannelSet {
    pub email: bool,
    pub sms: bool,
    pub in_app: bool,
}

impl ChannelSet {
    pub fn get(&self, channel: Channel) -> bool {
        match channel {
            Channel::Email => self.email,
            Channel::Sms => self.sms,
            Channel::InApp => self.in_app,
        }
    }

    pub fn set(&mut self, channel: Channel, on: bool) {
        match channel {
            Channel::Email => self.email = on,
            Channel::Sms => self.sms = on,
            Channel::InApp => self.in_app = on,
        }
    }

    pub fn from_checked(is_checked: impl Fn(&str) -> bool) -> Self {
        let mut set = Self { email: false, sms: false, in_app: false };
        for channel in Channel::ALL {
            set.set(channel, is_checked(channel.field()));
        }
        set
    }
}

/// The business-wide notification defaults: which kinds and channels are on, and the
/// business's own destinations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessDefaults {
    pub kinds: KindSet,
    pub channels: ChannelSet,
    pub notification_email: Option<EmailAddress>,
    pub notification_phone: Option<PhoneNumber>,
    /// Once a lead is claimed, its updates go only to whoever claimed it (for everyone).
    pub claimed_updates_only: bool,
}

impl BusinessDefaults {
    /// What a new business starts with: every alert kind on; email and in-app on, SMS off;
    /// alerts to the owner's email; no phone yet.
    pub fn for_new_business(owner_email: EmailAddress) -> Self {
        Self {
            kinds: KindSet::ALL_ON,
            channels: ChannelSet { email: true, sms: false, in_app: true },
            notification_email: Some(owner_email),
            notification_phone: None,
            claimed_updates_only: false,
        }
    }

    /// Problems an owner should fix: a channel that is on with nowhere to send.
    pub fn warnings(&self) -> Vec<&'static str> {
        let mut warnings = Vec::new();
        if self.channels.email && self.notification_email.is_none() {
            warnings.push("Email is on, but no notification email address is set.");
        }
        if self.channels.sms && self.notification_phone.is_none() {
            warnings.push("SMS is on, but no notification phone number is set.");
        }
        if !AlertKind::ALL.into_iter().any(|k| self.kinds.get(k)) {
            warnings.push("Every alert type is off, so nobody will be notified of anything.");
        } else if !Channel::ALL.into_iter().any(|c| self.channels.get(c)) {
            warnings.push("Every channel is off, so nobody will be notified of anything.");
        }
        warnings
    }

    /// Why the business stops a channel for everyone, if it does.
    pub fn channel_off_reason(&self, channel: Channel) -> Option<String> {
        (!self.channels.get(channel)).then(|| format!("{} is off for the business", channel.label()))
    }

    /// Why the business stops an alert kind for everyone, if it does.
    pub fn kind_off_reason(&self, kind: AlertKind) -> Option<String> {
        (!self.kinds.get(kind)).then(|| format!("{} are off for the business", kind.phrase()))
    }
}

/// A recipient's own choices, stored as chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecipientPrefs {
    pub channels: ChannelSet,
    pub kinds: KindSet,
    pub min_lead_score: LeadScore,
    /// Updates of a lead someone else claimed are not for this person.
    pub claimed_updates_only: bool,
}

impl RecipientPrefs {
    /// A newly added recipient hears about everything by email and in-app. SMS is opt-in:
    /// texts cost money and interrupt, so an owner or the person turns it on.
    pub fn new_recipient() -> Self {
        Self {
            channels: ChannelSet { email: true, sms: false, in_app: true },
            kinds: KindSet::ALL_ON,
            min_lead_score: LeadScore::default(),
            claimed_updates_only: false,
        }
    }

    /// The business owner's own row when a business is created.
    pub fn owner_at_creation() -> Self {
        Self {
            channels: ChannelSet { email: true, sms: false, in_app: true },
            kinds: KindSet::ALL_ON,
            min_lead_score: LeadScore::default(),
            claimed_updates_only: false,
        }
    }
}

/// Whether a person's phone can take texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phone<'a> {
    Missing,
    /// No text can go to it: refused by the provider, opted out, or not confirmed yet.
    Blocked(&'a PhoneBlock),
    Usable,
}

/// What a person will actually get on one channel once the ceiling is applied. The page and
/// the routing rules agree on it: SMS needs a phone the provider has not refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelStatus {
    /// They chose it and nothing stops it.
    Active,
    /// They did not choose it.
    NotChosen,
    /// The business has the channel off; their choice is kept for when it comes back.
    OffForBusiness { chosen: bool },
    /// SMS without a phone number on their profile.
    NoPhone { chosen: bool },
    /// SMS to a number no text can go to (refused, opted out, not confirmed).
    PhoneBlocked { chosen: bool, block: PhoneBlock },
}

impl ChannelStatus {
    /// True when the person cannot change the choice from the page (it is kept as it is). SMS
    /// to a phone waiting for its code can be chosen: it starts once the code is typed back.
    pub fn locked(&self) -> bool {
        !matches!(self, Self::Active | Self::NotChosen | Self::PhoneBlocked { block: PhoneBlock::Unconfirmed, .. })
    }
}

pub fn channel_status(
    defaults: &BusinessDefaults,
    prefs: &RecipientPrefs,
    phone: Phone<'_>,
    channel: Channel,
) -> ChannelStatus {
    let chosen = prefs.channels.get(channel);
    match (channel, phone) {
        _ if !defaults.channels.get(channel) => ChannelStatus::OffForBusiness { chosen },
        (Channel::Sms, Phone::Missing) => ChannelStatus::NoPhone { chosen },
        (Channel::Sms, Phone::Blocked(block)) => ChannelStatus::PhoneBlocked { chosen, block: block.clone() },
        _ if chosen => ChannelStatus::Active,
        _ => ChannelStatus::NotChosen,
    }
}

/// One line on what a person will actually get, the ceiling applied.
pub fn summary(name: &str, prefs: &RecipientPrefs, defaults: &BusinessDefaults, phone: Phone<'_>) -> String {
    let channels: Vec<&str> = Channel::ALL
        .into_iter()
        .filter(|c| channel_status(defaults, prefs, phone, *c) == ChannelStatus::Active)
        .map(Channel::label)
        .collect();
    let kinds: Vec<&str> = AlertKind::ALL
        .into_iter()
        .filter(|k| prefs.kinds.get(*k) && defaults.kinds.get(*k))
        .map(AlertKind::phrase)
        .collect();
    if channels.is_empty() || kinds.is_empty() {
        return format!("{name} gets no alerts right now.");
    }
    let threshold = prefs.min_lead_score.value();
    let leads = if threshold == 0 { "every lead".to_owned() } else { format!("leads scoring {threshold} or more") };
    format!("Gets {} by {}; {}.", kinds.join(", "), channels.join(", "), leads)
}

/// The preferences a form asks for. `checked` says whether a checkbox was sent. Choices the page
/// showed locked (a channel the business has off, SMS without a usable phone, a kind the business
/// has off) keep their stored value: a disabled checkbox is never sent, and the person's own
/// choice must survive the ceiling.
/// The form field (and audit key) of "lead updates only for leads I claimed".
pub const CLAIMED_UPDATES_ONLY: &str = "claimed_updates_only";

pub fn requested_prefs(
    checked: impl Fn(&str) -> bool,
    threshold: &str,
    stored: &RecipientPrefs,
    defaults: &BusinessDefaults,
    phone: Phone<'_>,
) -> Result<RecipientPrefs, String> {
    let mut prefs = *stored;
    for channel in Channel::ALL {
        if !channel_status(defaults, stored, phone, channel).locked() {
            prefs.channels.set(channel, checked(channel.field()));
        }
    }
    for kind in AlertKind::ALL {
        if defaults.kinds.get(kind) {
            prefs.kinds.set(kind, checked(kind.field()));
        }
    }
    // When the business sends updates only to the claimer, everyone's choice is held as it is.
    if !defaults.claimed_updates_only {
        prefs.claimed_updates_only = checked(CLAIMED_UPDATES_ONLY);
    }
    prefs.min_lead_score = LeadScore::parse(threshold)?;
    Ok(prefs)
}

/// The changes between two versions of the business defaults, for the audit log.
pub fn defaults_changes(old: &BusinessDefaults, new: &BusinessDefaults) -> Vec<Change> {
    let mut changes = Vec::new();
    for kind in AlertKind::ALL {
        if old.kinds.get(kind) != new.kinds.get(kind) {
            changes.push(Change::switch(
                format!("defaults.{}", kind.field()),
                old.kinds.get(kind),
                new.kinds.get(kind),
            ));
        }
    }
    for channel in Channel::ALL {
        if old.channels.get(channel) != new.channels.get(channel) {
            changes.push(Change::switch(
                format!("defaults.{}", channel.field()),
                old.channels.get(channel),
                new.channels.get(channel),
            ));
        }
    }
    if old.notification_email != new.notification_email {
        changes.push(Change::new(
            "defaults.notification_email",
            old.notification_email.as_ref().map(ToString::to_string),
            new.notification_email.as_ref().map(ToString::to_string),
        ));
    }
    if old.notification_phone != new.notification_phone {
        changes.push(Change::new(
            "defaults.notification_phone",
            old.notification_phone.as_ref().map(ToString::to_string),
            new.notification_phone.as_ref().map(ToString::to_string),
        ));
    }
    if old.claimed_updates_only != new.claimed_updates_only {
        changes.push(Change::switch(
            format!("defaults.{CLAIMED_UPDATES_ONLY}"),
            old.claimed_updates_only,
            new.claimed_updates_only,
        ));
    }
    changes
}

/// The changes between two versions of a person's preferences, for the audit log.
pub fn prefs_changes(old: &RecipientPrefs, new: &RecipientPrefs) -> Vec<Change> {
    let mut changes = Vec::new();
    for channel in Channel::ALL {
        let (o, n) = (old.channels.get(channel), new.channels.get(channel));
        if o != n {
            changes.push(Change::new(
                format!("recipient.{}", channel.field()),
                Some(on_off(o).into()),
                Some(on_off(n).into()),
            ));
        }
    }
    for kind in AlertKind::ALL {
        let (o, n) = (old.kinds.get(kind), new.kinds.get(kind));
        if o != n {
            changes.push(Change::switch(format!("recipient.{}", kind.field()), o, n));
        }
    }
    if old.claimed_updates_only != new.claimed_updates_only {
        changes.push(Change::switch(
            format!("recipient.{CLAIMED_UPDATES_ONLY}"),
            old.claimed_updates_only,
            new.claimed_updates_only,
        ));
    }
    if old.min_lead_score != new.min_lead_score {
        changes.push(Change::new(
            "recipient.min_lead_score",
            Some(old.min_lead_score.value().to_string()),
            Some(new.min_lead_score.value().to_string()),
        ));
    }
    changes
}

/// What a threshold would have meant over the last 30 days of leads, in one sentence.
/// `scores` counts the leads per score (no score counts as 0). `quiet`: the person's quiet
/// hours, with the score and time (unix seconds) of the leads of those 30 days, up to `now_ms`.
pub fn reach_sentence(
    name: &str,
    threshold: LeadScore,
    scores: &[(i64, i64)],
    quiet: Option<(&Quiet, &[(i64, i64)])>,
    now_ms: i64,
) -> String {
    let total: i64 = scores.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return "No leads in the last 30 days yet, so there is nothing to preview.".into();
    }
    let reached: i64 = scores.iter().filter(|(s, _)| *s >= i64::from(threshold.value())).map(|(_, n)| n).sum();
    let leads = if total == 1 { "lead" } else { "leads" };
    let mut sentence =
        format!("At {}, {name} would have received {reached} of the last {total} {leads} (30 days)", threshold.value());
    if let Some((quiet, seen)) = quiet {
        let windows = quiet.hours.windows(&quiet.zone, now_ms - 30 * 24 * 3_600_000, now_ms);
        let waited = seen
            .iter()
            .filter(|(score, _)| *score >= i64::from(threshold.value()))
            .filter(|(score, _)| quiet.urgent_score.is_none_or(|u| *score < i64::from(u)))
            .filter(|(_, at)| quiet::inside(&windows, at.saturating_mul(1000)))
            .count();
        let waited = waited as i64;
        let who = match (waited, reached) {
            (0, _) => None,
            (1, 1) => Some("it".to_owned()),
            (w, r) if w >= r => Some("all of them".to_owned()),
            (w, _) => Some(format!("{w} of them")),
        };
        if let Some(who) = who {
            sentence.push_str(&format!("; {who} would have waited for the end of quiet hours by email and SMS"));
        }
    }
    sentence.push('.');
    sentence
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> BusinessDefaults {
        BusinessDefaults::for_new_business(EmailAddress::parse("owner@acme.test").unwrap())
    }

    fn prefs() -> RecipientPrefs {
        {
            let mut p = RecipientPrefs::new_recipient();
            p.channels.sms = true;
            p
        }
    }

    #[test]
    fn a_new_business_has_every_kind_on_email_and_in_app_on_and_sms_off() {
        let d = defaults();
        assert!(AlertKind::ALL.iter().all(|k| d.kinds.get(*k)));
        assert_eq!(d.channels, ChannelSet { email: true, sms: false, in_app: true });
        assert_eq!(d.notification_email.unwrap().as_str(), "owner@acme.test");
        assert!(d.notification_phone.is_none());
    }

    #[test]
    fn the_owner_starts_as_a_recipient_of_everything_by_email_and_in_app_at_threshold_zero() {
        let owner = RecipientPrefs::owner_at_creation();
        assert_eq!(owner.channels, ChannelSet { email: true, sms: false, in_app: true });
        assert_eq!(owner.kinds, KindSet::ALL_ON);
        assert_eq!(owner.min_lead_score.value(), 0);
    }

    #[test]
    fn a_channel_without_a_destination_is_a_warning() {
        let mut d = defaults();
        assert!(d.warnings().is_empty());
        d.channels.sms = true;
        assert_eq!(d.warnings(), vec!["SMS is on, but no notification phone number is set."]);
        d.notification_email = None;
        assert!(d.warnings().contains(&"Email is on, but no notification email address is set."));
    }

    #[test]
    fn everything_off_is_a_warning() {
        let mut d = defaults();
        d.channels = ChannelSet { email: false, sms: false, in_app: false };
        assert_eq!(d.warnings(), vec!["Every channel is off, so nobody will be notified of anything."]);
        d.kinds = KindSet::from_checked(|_| false);
        assert_eq!(d.warnings(), vec!["Every alert type is off, so nobody will be notified of anything."]);
    }

    #[test]
    fn the_business_is_a_ceiling_that_keeps_the_persons_choice() {
        let mut d = defaults();
        let mut p = prefs();
        d.channels.sms = false;
        assert_eq!(channel_status(&d, &p, Phone::Usable, Channel::Sms), ChannelStatus::OffForBusiness { chosen: true });
        d.channels.sms = true;
        assert_eq!(channel_status(&d, &p, Phone::Usable, Channel::Sms), ChannelStatus::Active);
        p.channels.sms = false;
        assert_eq!(channel_status(&d, &p, Phone::Usable, Channel::Sms), ChannelStatus::NotChosen);
    }

    #[test]
    fn sms_needs_a_phone_the_provider_has_not_refused() {
        let mut d = defaults();
        d.channels.sms = true;
        assert_eq!(channel_status(&d, &prefs(), Phone::Missing, Channel::Sms), ChannelStatus::NoPhone { chosen: true });
        assert_eq!(channel_status(&d, &prefs(), Phone::Missing, Channel::Email), ChannelStatus::Active);
        let refused = channel_status(&d, &prefs(), Phone::Blocked(&PhoneBlock::OptedOut), Channel::Sms);
        assert_eq!(refused, ChannelStatus::PhoneBlocked { chosen: true, block: PhoneBlock::OptedOut });
        assert!(refused.locked());
        assert_eq!(
            summary("Sam", &prefs(), &d, Phone::Blocked(&PhoneBlock::Unconfirmed)),
            "Gets new-lead alerts, lead-update alerts, usage alerts, billing alerts by Email, In-app; every lead.",
            "the page promises only what routing will send"
        );
    }

    #[test]
    fn a_form_changes_only_the_choices_the_page_left_open() {
        let mut d = defaults();
        d.channels.sms = false;
        let stored = prefs();
        let form = |f: &str| f == "email_enabled" || AlertKind::from_field(f).is_some();
        let asked = requested_prefs(form, "50", &stored, &d, Phone::Usable).unwrap();
        assert!(asked.channels.sms, "SMS was locked, so its stored choice stays on");
        assert!(asked.channels.email && !asked.channels.in_app);
        assert_eq!(asked.min_lead_score.value(), 50);
        assert!(requested_prefs(form, "101", &stored, &d, Phone::Usable).is_err());
        assert_eq!(prefs_changes(&stored, &asked).len(), 2, "in-app off, threshold 0 → 50");
    }

    #[test]
    fn the_preview_counts_leads_at_or_above_the_threshold() {
        let scores = [(0, 2), (65, 3), (80, 1)];
        assert_eq!(
            reach_sentence("Sam", LeadScore::new(70).unwrap(), &scores, None, 0),
            "At 70, Sam would have received 1 of the last 6 leads (30 days)."
        );
        assert!(reach_sentence("you", LeadScore::default(), &[], None, 0).starts_with("No leads"));
    }

    #[test]
    fn the_preview_says_how_many_would_have_waited_for_the_end_of_quiet_hours() {
        use crate::domain::quiet::{QuietHours, Zone};
        // Nights 22:00 to 07:00 UTC; now is 2026-06-11 12:00 UTC.
        let now_ms = 1_781_179_200_000;
        let at = |days_ago: i64, hour: i64| now_ms / 1000 - days_ago * 86_400 - 12 * 3600 + hour * 3600;
        let hours = QuietHours::check([true; 7], "22:00", "07:00").unwrap();
        let quiet = Quiet { hours, zone: Zone::utc(), urgent_score: Some(90) };
        // Two leads at 03:00 (one urgent), one at 23:00, one at noon, one below the threshold at 03:00.
        let seen = [(75, at(1, 3)), (95, at(2, 3)), (80, at(3, 23)), (85, at(4, 12)), (40, at(5, 3))];
        let scores = [(40, 1), (75, 1), (80, 1), (85, 1), (95, 1)];
        let threshold = LeadScore::new(70).unwrap();
        assert_eq!(
            reach_sentence("Sam", threshold, &scores, Some((&quiet, &seen)), now_ms),
            "At 70, Sam would have received 4 of the last 5 leads (30 days); 2 of them would have waited for the end \
             of quiet hours by email and SMS."
        );
        let one = [(75, at(1, 3))];
        assert_eq!(
            reach_sentence("you", threshold, &[(75, 1)], Some((&quiet, &one)), now_ms),
            "At 70, you would have received 1 of the last 1 lead (30 days); it would have waited for the end of quiet \
             hours by email and SMS."
        );
        let by_day = [(75, at(1, 12))];
        assert_eq!(
            reach_sentence("you", threshold, &[(75, 1)], Some((&quiet, &by_day)), now_ms),
            "At 70, you would have received 1 of the last 1 lead (30 days)."
        );
    }

    #[test]
    fn reasons_read_as_sentences() {
        let mut d = defaults();
        d.kinds.lead_created = false;
        assert_eq!(d.kind_off_reason(AlertKind::LeadCreated).unwrap(), "new-lead alerts are off for the business");
        assert_eq!(d.channel_off_reason(Channel::Sms).unwrap(), "SMS is off for the business");
        assert!(d.channel_off_reason(Channel::Email).is_none());
    }

    #[test]
    fn checkbox_forms_map_to_sets() {
        let kinds = KindSet::from_checked(|f| f == "lead_created" || f == "billing_alerts");
        assert!(kinds.lead_created && kinds.billing && !kinds.lead_updated && !kinds.usage);
        let channels = ChannelSet::from_checked(|f| f == "sms_enabled");
        assert_eq!(channels, ChannelSet { email: false, sms: true, in_app: false });
    }
}
