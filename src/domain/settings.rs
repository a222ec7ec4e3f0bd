//! Business defaults, a recipient's own preferences, and the ceiling rule between them
//! (DESIGN.md §2): a person's choices are stored as they chose them; the business defaults cap
//! them when alerts are sent and when the page shows what someone will actually receive.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

impl RecipientPrefs {
    /// A newly added recipient hears about everything by email and in-app. SMS is opt-in:
    /// texts cost money and interrupt, so an owner or the person turns it on.
    pub fn new_recipient() -> Self {
        Self {
            channels: ChannelSet { email: true, sms: false, in_app: true },
            kinds: KindSet::ALL_ON,
            min_lead_score: LeadScore::default(),
        }
    }

    /// The business owner's own row when a business is created.
    pub fn owner_at_creation() -> Self {
        Self {
            channels: ChannelSet { email: true, sms: false, in_app: true },
            kinds: KindSet::ALL_ON,
            min_lead_score: LeadScore::default(),
        }
    }
}

/// What a person will actually get on one channel once the ceiling is applied.
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
}

pub fn channel_status(
    defaults: &BusinessDefaults,
    prefs: &RecipientPrefs,
    person_has_phone: bool,
    channel: Channel,
) -> ChannelStatus {
    let chosen = prefs.channels.get(channel);
    if !defaults.channels.get(channel) {
        ChannelStatus::OffForBusiness { chosen }
    } else if channel == Channel::Sms && !person_has_phone {
        ChannelStatus::NoPhone { chosen }
    } else if chosen {
        ChannelStatus::Active
    } else {
        ChannelStatus::NotChosen
    }
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
        assert_eq!(channel_status(&d, &p, true, Channel::Sms), ChannelStatus::OffForBusiness { chosen: true });
        d.channels.sms = true;
        assert_eq!(channel_status(&d, &p, true, Channel::Sms), ChannelStatus::Active);
        p.channels.sms = false;
        assert_eq!(channel_status(&d, &p, true, Channel::Sms), ChannelStatus::NotChosen);
    }

    #[test]
    fn sms_needs_a_phone_on_the_persons_profile() {
        let mut d = defaults();
        d.channels.sms = true;
        assert_eq!(channel_status(&d, &prefs(), false, Channel::Sms), ChannelStatus::NoPhone { chosen: true });
        assert_eq!(channel_status(&d, &prefs(), false, Channel::Email), ChannelStatus::Active);
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
