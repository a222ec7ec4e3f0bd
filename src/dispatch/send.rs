//! Sending one delivery on its channel: email, SMS, or the in-app inbox.
use std::sync::Arc;
use std::time::Duration;

use super::email::{EmailError, EmailSender, OutgoingEmail};
use super::sms::{SmsError, SmsSender};
use crate::clock::unix_now;
use crate::db::notifications::NewNotification;
use crate::db::{Db, deliveries::Claimed, writer::AlertEvent};
use crate::domain::events::Event;
use crate::domain::text::{AlertText, alert_text, claimable_text, digest_text, sms_segments, summary_text};
use crate::domain::{Channel, EmailAddress, claim, unsubscribe};

/// An event and its alert in words, shared by all its deliveries.
pub struct Alert {
    pub event: Arc<AlertEvent>,
    pub text: Option<AlertText>,
    /// A summary of several alerts (the end of quiet hours): its words are the same for
    /// everyone, with no claim link of one lead.
    pub summary: bool,
}

/// Why a send did not go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth trying again (a timeout, a busy provider), not before `retry_after` if given.
    Transient { message: String, retry_after: Option<Duration> },
    /// Trying again will not help.
    Permanent { message: String },
    /// The SMS provider refused the number itself for good; `problem` says why in words.
    NumberRefused { message: String, problem: String },
    /// The number opted out of texts (STOP).
    OptedOut { message: String },
}

impl From<EmailError> for Failure {
    fn from(e: EmailError) -> Self {
        match e {
            EmailError::Transient(message) => Self::Transient { message, retry_after: None },
            EmailError::Permanent(message) => Self::Permanent { message },
        }
    }
}

/// A delivery that went out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub provider_id: Option<String>,
    /// SMS segments the text took.
    pub segments: Option<i64>,
}

impl From<SmsError> for Failure {
    fn from(e: SmsError) -> Self {
        match e {
            SmsError::Transient { message, retry_after } => Self::Transient { message, retry_after },
            SmsError::Permanent { message } => Self::Permanent { message },
            SmsError::NumberRefused { message, problem } => Self::NumberRefused { message, problem },
            SmsError::OptedOut { message } => Self::OptedOut { message },
        }
    }
}

/// The keys that sign the links in alerts.
pub struct Keys {
    /// One-click unsubscribe in emails.
    pub unsubscribe: Vec<u8>,
    /// "I'll call them" on a lead alert.
    pub claim: Vec<u8>,
}

/// The senders of every channel.
pub struct Senders {
    email: Arc<dyn EmailSender>,
    sms: Arc<dyn SmsSender>,
    db: Db,
    base_url: String,
    keys: Keys,
}

impl Senders {
    pub fn new(email: Arc<dyn EmailSender>, sms: Arc<dyn SmsSender>, db: Db, base_url: String, keys: Keys) -> Self {
        Self { email, sms, db, base_url, keys }
    }

    /// Puts an event into words once, for all its deliveries.
    pub fn prepare(&self, event: Arc<AlertEvent>) -> Alert {
        let text = alert_text(&event.event, event.usage_threshold, &self.base_url);
        Alert { event, text, summary: false }
    }

    /// One message for several alerts held together (`first`'s event stands for them all).
    pub fn prepare_summary(&self, first: Arc<AlertEvent>, alerts: &[(&Event, Option<u8>)]) -> Alert {
        Alert { text: Some(summary_text(alerts, &self.base_url)), event: first, summary: true }
    }

    /// A person's daily summary of the leads below their threshold.
    pub fn prepare_digest(&self, first: Arc<AlertEvent>, alerts: &[(&Event, Option<u8>)]) -> Alert {
        Alert { text: Some(digest_text(alerts, &self.base_url)), event: first, summary: true }
    }

    /// Sends one delivery; answers the provider's message id, if it gives one, and for a text
    /// how many segments it took.
    pub async fn send(&self, d: &Claimed, alert: &Alert) -> Result<Sent, Failure> {
        let Some(shared) = &alert.text else {
            return Err(Failure::Permanent { message: "this event has no alert text".into() });
        };
        let own = if alert.summary { None } else { self.claimable(d, &alert.event.event) };
        let text = own.as_ref().unwrap_or(shared);
        let provider_id = |id: Option<String>| Sent { provider_id: id, segments: None };
        match d.channel {
            Channel::Email => self.send_email(d, alert, text).await.map(provider_id),
            Channel::Sms => {
                let lead_alert = alert.event.event.lead().is_some();
                let id = self.sms.send(&d.address, &text.sms, lead_alert).await?;
                Ok(Sent { provider_id: Some(id), segments: Some(i64::from(sms_segments(&text.sms))) })
            }
            Channel::InApp => self.add_to_inbox(d, text).await.map(provider_id),
        }
    }

    /// A lead alert to a person carries their own claim link, and so does the business's copy
    /// when its address is also a person's (the owner's email as the notification email); the
    /// business's other destinations get the shared words, which point at the Leads page.
    fn claimable(&self, d: &Claimed, event: &Event) -> Option<AlertText> {
        d.user_id.or(d.claim_user_id)?;
        let token = claim::token(&self.keys.claim, d.id, unix_now());
        claimable_text(event, &self.base_url, &format!("c/{token}"))
    }

    async fn send_email(&self, d: &Claimed, alert: &Alert, text: &AlertText) -> Result<Option<String>, Failure> {
        let to = EmailAddress::parse(&d.address).map_err(|message| Failure::Permanent { message })?;
        let unsubscribe_url = match (d.user_id, alert.event.event.alert_kind()) {
            (Some(user_id), Some(kind)) => Some(format!(
                "{}unsubscribe/{}",
                self.base_url,
                unsubscribe::token(&self.keys.unsubscribe, user_id, kind)
            )),
            _ => None,
        };
        let message_id = format!("<delivery-{}@kaicalls-notify>", d.id);
        let email = OutgoingEmail {
            to,
            to_name: d.person_name.clone(),
            subject: text.subject.clone(),
            text: text.text.clone(),
            html: text.html.clone(),
            message_id: Some(message_id.clone()),
            unsubscribe_url,
        };
        self.email.send(email).await?;
        Ok(Some(message_id))
    }

    async fn add_to_inbox(&self, d: &Claimed, text: &AlertText) -> Result<Option<String>, Failure> {
        let user_id = d.user_id.ok_or(Failure::Permanent { message: "an in-app alert needs a person".into() })?;
        let notification = NewNotification {
            business_id: d.business_id.clone(),
            user_id,
            delivery_id: Some(d.id),
            title: text.title.clone(),
            body: text.body.clone(),
            link: text.link.clone(),
        };
        if self.db.add_to_inbox(notification).await {
            Ok(None)
        } else {
            Err(Failure::Transient { message: "the inbox could not be written".into(), retry_after: None })
        }
    }
}
