//! What Kai posts to the webhook, parsed and checked. Every problem names its field.
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{AlertKind, ChannelSet, EmailAddress, PhoneNumber, Region};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lead {
    pub lead_id: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub score: Option<u8>,
    pub summary: Option<String>,
    /// Unix seconds.
    pub occurred_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub minutes_used: u64,
    pub included_minutes: u64,
    pub period_start: String,
    pub period_end: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentFailed {
    pub invoice_id: String,
    pub amount_cents: u64,
    pub currency: String,
    pub reason: String,
    pub next_attempt_at: Option<i64>,
}

/// A step of the business's escalation policy, fired for a lead nobody claimed in time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalated {
    /// The lead as stored when the step fired.
    pub lead: Lead,
    pub step: u8,
    /// Minutes the lead went without a claim, from its arrival.
    pub minutes: u32,
    /// Whom the step alerts (their names then), and on which channels.
    pub people: Vec<(i64, String)>,
    pub channels: ChannelSet,
}

/// The event types this version understands, with their names on the wire and in storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    LeadCreated,
    LeadUpdated,
    UsageUpdated,
    PaymentFailed,
    /// "Send a test alert" from the settings page; never accepted from the webhook.
    Test,
    /// An escalation step that fell due; made by the dispatcher, never accepted from the webhook.
    LeadEscalated,
}

impl EventType {
    const NAMES: [(EventType, &'static str); 6] = [
        (Self::LeadCreated, "lead.created"),
        (Self::LeadUpdated, "lead.updated"),
        (Self::UsageUpdated, "usage.updated"),
        (Self::PaymentFailed, "billing.payment_failed"),
        (Self::Test, "test"),
        (Self::LeadEscalated, "lead.escalated"),
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES.iter().find(|(t, _)| *t == self).map(|(_, n)| *n).unwrap_or_default()
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMES.iter().find(|(_, n)| *n == name).map(|(t, _)| *t)
    }
}

/// A checked event. Stored as its type name plus the JSON of its data (see `to_stored`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    LeadCreated(Lead),
    LeadUpdated(Lead),
    UsageUpdated(Usage),
    PaymentFailed(PaymentFailed),
    /// A type this version does not know: accepted and recorded as ignored.
    Unknown {
        type_name: String,
    },
    /// "Send a test alert" from the settings page, for one person.
    Test {
        user_id: i64,
    },
    LeadEscalated(Escalated),
}

#[derive(Serialize, Deserialize)]
struct TestData {
    user_id: i64,
}

impl Event {
    pub fn event_type(&self) -> Option<EventType> {
        match self {
            Self::LeadCreated(_) => Some(EventType::LeadCreated),
            Self::LeadUpdated(_) => Some(EventType::LeadUpdated),
            Self::UsageUpdated(_) => Some(EventType::UsageUpdated),
            Self::PaymentFailed(_) => Some(EventType::PaymentFailed),
            Self::Test { .. } => Some(EventType::Test),
            Self::LeadEscalated(_) => Some(EventType::LeadEscalated),
            Self::Unknown { .. } => None,
        }
    }

    pub fn type_name(&self) -> &str {
        match (self, self.event_type()) {
            (Self::Unknown { type_name }, _) => type_name,
            (_, Some(t)) => t.name(),
            (_, None) => "",
        }
    }

    /// The type name and data JSON this event is stored as.
    pub fn to_stored(&self) -> (String, String) {
        let data = match self {
            Self::LeadCreated(lead) | Self::LeadUpdated(lead) => serde_json::to_string(lead),
            Self::UsageUpdated(usage) => serde_json::to_string(usage),
            Self::PaymentFailed(p) => serde_json::to_string(p),
            Self::Test { user_id } => serde_json::to_string(&TestData { user_id: *user_id }),
            Self::LeadEscalated(e) => serde_json::to_string(e),
            Self::Unknown { .. } => Ok("{}".to_owned()),
        };
        (self.type_name().to_owned(), data.unwrap_or_else(|_| "{}".to_owned()))
    }

    /// Reads back what `to_stored` wrote.
    pub fn from_stored(type_name: &str, data: &str) -> Result<Self, serde_json::Error> {
        Ok(match EventType::from_name(type_name) {
            None => Self::Unknown { type_name: type_name.to_owned() },
            Some(EventType::LeadCreated) => Self::LeadCreated(serde_json::from_str(data)?),
            Some(EventType::LeadUpdated) => Self::LeadUpdated(serde_json::from_str(data)?),
            Some(EventType::UsageUpdated) => Self::UsageUpdated(serde_json::from_str(data)?),
            Some(EventType::PaymentFailed) => Self::PaymentFailed(serde_json::from_str(data)?),
            Some(EventType::Test) => Self::Test { user_id: serde_json::from_str::<TestData>(data)?.user_id },
            Some(EventType::LeadEscalated) => Self::LeadEscalated(serde_json::from_str(data)?),
        })
    }

    /// The alert kind this event can cause (usage events cause `usage.threshold` alerts).
    pub fn alert_kind(&self) -> Option<AlertKind> {
        match self {
            Self::LeadCreated(_) => Some(AlertKind::LeadCreated),
            Self::LeadUpdated(_) => Some(AlertKind::LeadUpdated),
            Self::UsageUpdated(_) => Some(AlertKind::Usage),
            Self::PaymentFailed(_) => Some(AlertKind::Billing),
            // An escalation is sent because the owner chose its people, whatever their alert
            // types: no alert type governs it (nor unsubscribes from it).
            Self::Unknown { .. } | Self::Test { .. } | Self::LeadEscalated(_) => None,
        }
    }

    /// The lead an event is about (an escalation's too).
    pub fn lead(&self) -> Option<&Lead> {
        match self {
            Self::LeadCreated(lead) | Self::LeadUpdated(lead) => Some(lead),
            Self::LeadEscalated(e) => Some(&e.lead),
            _ => None,
        }
    }

    /// One alert per business and this key: Kai may re-send the same lead version or the same
    /// failed payment attempt under a new webhook id. Usage is de-duplicated by threshold.
    pub fn dedupe_key(&self) -> Option<String> {
        match self {
            Self::LeadCreated(l) => Some(format!("{}:{}", self.type_name(), l.lead_id)),
            Self::LeadUpdated(l) => Some(format!("{}:{}:{}", self.type_name(), l.lead_id, l.occurred_at)),
            Self::PaymentFailed(p) => {
                Some(format!("{}:{}:{}", self.type_name(), p.invoice_id, p.next_attempt_at.unwrap_or(0)))
            }
            _ => None,
        }
    }
}

/// A problem with the body: what is wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub message: String,
    pub field: String,
}

fn err(field: &str, message: impl Into<String>) -> InputError {
    InputError { field: field.to_owned(), message: message.into() }
}

fn text(data: &Value, key: &str, max: usize, required: bool) -> Result<Option<String>, InputError> {
    let field = format!("data.{key}");
    match data.get(key) {
        None | Some(Value::Null) if required => Err(err(&field, format!("{field} is required"))),
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let s = s.trim();
            if required && s.is_empty() {
                return Err(err(&field, format!("{field} must not be empty")));
            }
            if s.chars().count() > max {
                return Err(err(&field, format!("{field} is longer than {max} characters")));
            }
            if s.chars().any(|c| c.is_control() && c != '\n') {
                return Err(err(&field, format!("{field} contains control characters")));
            }
            Ok((!s.is_empty()).then(|| s.to_owned()))
        }
        Some(_) => Err(err(&field, format!("{field} must be a string"))),
    }
}

fn whole(data: &Value, key: &str, max: u64) -> Result<u64, InputError> {
    let field = format!("data.{key}");
    let value = data.get(key).ok_or_else(|| err(&field, format!("{field} is required")))?;
    let n = value.as_u64().ok_or_else(|| err(&field, format!("{field} must be a whole number, 0 or more")))?;
    if n > max {
        return Err(err(&field, format!("{field} must be at most {max}")));
    }
    Ok(n)
}

fn timestamp(data: &Value, key: &str, required: bool) -> Result<Option<i64>, InputError> {
    let field = format!("data.{key}");
    match text(data, key, 64, required)? {
        None => Ok(None),
        Some(s) => time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
            .map(|t| Some(t.unix_timestamp()))
            .map_err(|_| err(&field, format!("{field} must be an RFC 3339 time such as 2026-11-28T10:00:00Z"))),
    }
}

fn date(data: &Value, key: &str) -> Result<String, InputError> {
    let field = format!("data.{key}");
    let s = text(data, key, 10, true)?.unwrap_or_default();
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(&s, format).map_err(|_| err(&field, format!("{field} must be a date such as 2026-11-01")))?;
    Ok(s)
}

fn lead(data: &Value, region: Region) -> Result<Lead, InputError> {
    let score = match data.get("score") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) if n <= 100 => Some(n as u8),
            _ => return Err(err("data.score", "data.score must be a whole number from 0 to 100, or null")),
        },
    };
    // A caller id Kai could not read is kept as given: losing the lead would be worse.
    let phone =
        text(data, "phone", 40, false)?.map(|p| PhoneNumber::parse(&p, region).map(|p| p.to_string()).unwrap_or(p));
    let email = text(data, "email", 254, false)?;
    if let Some(e) = &email {
        EmailAddress::parse(e).map_err(|m| err("data.email", m))?;
    }
    Ok(Lead {
        lead_id: text(data, "lead_id", 200, true)?.unwrap_or_default(),
        name: text(data, "name", 200, false)?,
        phone,
        email,
        score,
        summary: text(data, "summary", 2000, false)?,
        occurred_at: timestamp(data, "occurred_at", true)?.unwrap_or_default(),
    })
}

/// Parses a webhook body. The business's region reads national phone numbers.
pub fn parse(body: &[u8], region: Region) -> Result<Event, InputError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| err("body", format!("the body is not valid JSON: {e}")))?;
    let object = value.as_object().ok_or_else(|| err("body", "the body must be a JSON object"))?;
    let type_name = match object.get("type") {
        Some(Value::String(t)) if !t.trim().is_empty() && t.len() <= 100 => t.trim().to_owned(),
        Some(Value::String(_)) => return Err(err("type", "type must be a non-empty string of at most 100 characters")),
        Some(_) => return Err(err("type", "type must be a string such as lead.created")),
        None => return Err(err("type", "type is required")),
    };
    // Test alerts and escalations are made here, never taken from the webhook.
    let event_type = match EventType::from_name(&type_name) {
        Some(EventType::Test | EventType::LeadEscalated) | None => return Ok(Event::Unknown { type_name }),
        Some(t) => t,
    };
    let data = match object.get("data") {
        Some(d @ Value::Object(_)) => d,
        Some(_) => return Err(err("data", "data must be a JSON object")),
        None => return Err(err("data", "data is required")),
    };
    Ok(match event_type {
        EventType::LeadCreated => Event::LeadCreated(lead(data, region)?),
        EventType::LeadUpdated => Event::LeadUpdated(lead(data, region)?),
        EventType::UsageUpdated => {
            let usage = Usage {
                minutes_used: whole(data, "minutes_used", 10_000_000)?,
                included_minutes: whole(data, "included_minutes", 10_000_000)?,
                period_start: date(data, "period_start")?,
                period_end: date(data, "period_end")?,
            };
            if usage.period_end < usage.period_start {
                return Err(err("data.period_end", "data.period_end is before data.period_start"));
            }
            Event::UsageUpdated(usage)
        }
        EventType::PaymentFailed | EventType::Test | EventType::LeadEscalated => {
            let currency = text(data, "currency", 3, true)?.unwrap_or_default().to_lowercase();
            if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_alphabetic()) {
                return Err(err("data.currency", "data.currency must be a three-letter code such as usd"));
            }
            Event::PaymentFailed(PaymentFailed {
                invoice_id: text(data, "invoice_id", 200, true)?.unwrap_or_default(),
                amount_cents: whole(data, "amount_cents", 100_000_000_000)?,
                currency,
                reason: text(data, "reason", 200, false)?.unwrap_or_else(|| "unknown".into()),
                next_attempt_at: timestamp(data, "next_attempt_at", false)?,
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_json(v: serde_json::Value) -> Result<Event, InputError> {
        parse(v.to_string().as_bytes(), Region::default())
    }

    #[test]
    fn the_documented_lead_parses() {
        let event =
            parse_json(serde_json::json!({"type": "lead.created", "data": {"lead_id": "L-1", "name": "Jane Doe",
            "phone": "+15555550100", "email": null, "score": 82, "summary": "Burst pipe, wants a quote today",
            "occurred_at": "2026-11-28T10:00:00Z"}}))
            .unwrap();
        let lead = event.lead().unwrap();
        assert_eq!(lead.score, Some(82));
        assert_eq!(lead.occurred_at, 1_795_860_000);
        assert_eq!(event.alert_kind(), Some(AlertKind::LeadCreated));
        assert_eq!(event.dedupe_key().unwrap(), "lead.created:L-1");
    }

    #[test]
    fn usage_and_billing_parse() {
        let usage = parse_json(serde_json::json!({"type": "usage.updated", "data": {"minutes_used": 460,
            "included_minutes": 500, "period_start": "2026-11-01", "period_end": "2026-11-30"}}))
        .unwrap();
        assert_eq!(usage.alert_kind(), Some(AlertKind::Usage));
        let billing = parse_json(serde_json::json!({"type": "billing.payment_failed", "data": {"invoice_id": "in_1",
            "amount_cents": 6900, "currency": "USD", "reason": "card_declined", "next_attempt_at": "2026-12-01T00:00:00Z"}}))
        .unwrap();
        let Event::PaymentFailed(p) = billing else { panic!() };
        assert_eq!(p.currency, "usd");
    }

    #[test]
    fn unknown_types_are_accepted_as_unknown() {
        let event = parse_json(serde_json::json!({"type": "call.ended", "data": {"anything": 1}})).unwrap();
        assert_eq!(event, Event::Unknown { type_name: "call.ended".into() });
    }

    #[test]
    fn each_problem_names_its_field() {
        let cases = [
            (serde_json::json!([1]), "body"),
            (serde_json::json!({"data": {}}), "type"),
            (serde_json::json!({"type": 5}), "type"),
            (serde_json::json!({"type": "lead.created"}), "data"),
            (
                serde_json::json!({"type": "lead.created", "data": {"occurred_at": "2026-11-28T10:00:00Z"}}),
                "data.lead_id",
            ),
            (
                serde_json::json!({"type": "lead.created", "data": {"lead_id": "L", "score": 101, "occurred_at": "2026-11-28T10:00:00Z"}}),
                "data.score",
            ),
            (
                serde_json::json!({"type": "lead.created", "data": {"lead_id": "L", "score": -1, "occurred_at": "2026-11-28T10:00:00Z"}}),
                "data.score",
            ),
            (
                serde_json::json!({"type": "lead.created", "data": {"lead_id": "L", "occurred_at": "yesterday"}}),
                "data.occurred_at",
            ),
            (
                serde_json::json!({"type": "lead.created", "data": {"lead_id": "L", "email": "x@", "occurred_at": "2026-11-28T10:00:00Z"}}),
                "data.email",
            ),
            (
                serde_json::json!({"type": "usage.updated", "data": {"minutes_used": -5, "included_minutes": 1, "period_start": "2026-11-01", "period_end": "2026-11-30"}}),
                "data.minutes_used",
            ),
            (
                serde_json::json!({"type": "usage.updated", "data": {"minutes_used": 5, "included_minutes": 1, "period_start": "2026-13-01", "period_end": "2026-11-30"}}),
                "data.period_start",
            ),
            (
                serde_json::json!({"type": "usage.updated", "data": {"minutes_used": 5, "included_minutes": 1, "period_start": "2026-11-01", "period_end": "2026-10-30"}}),
                "data.period_end",
            ),
            (
                serde_json::json!({"type": "billing.payment_failed", "data": {"invoice_id": "i", "amount_cents": 1, "currency": "dollars"}}),
                "data.currency",
            ),
        ];
        for (body, field) in cases {
            assert_eq!(parse_json(body.clone()).unwrap_err().field, field, "{body}");
        }
        assert_eq!(parse(b"{not json", Region::default()).unwrap_err().field, "body");
    }

    #[test]
    fn stored_events_read_back_the_same() {
        let lead = parse_json(serde_json::json!({"type": "lead.updated", "data": {"lead_id": "L-1", "score": 5,
            "occurred_at": "2026-11-28T10:00:00Z"}}))
        .unwrap();
        let escalated = Event::LeadEscalated(Escalated {
            lead: lead.lead().unwrap().clone(),
            step: 2,
            minutes: 15,
            people: vec![(3, "Dana Reyes".into())],
            channels: ChannelSet { email: false, sms: true, in_app: true },
        });
        for event in [lead, escalated, Event::Test { user_id: 7 }, Event::Unknown { type_name: "call.ended".into() }] {
            let (type_name, data) = event.to_stored();
            assert_eq!(Event::from_stored(&type_name, &data).unwrap(), event);
        }
    }

    #[test]
    fn the_webhook_cannot_send_a_test_event_or_an_escalation() {
        let event = parse_json(serde_json::json!({"type": "test", "data": {"user_id": 1}})).unwrap();
        assert_eq!(event, Event::Unknown { type_name: "test".into() });
        let event = parse_json(serde_json::json!({"type": "lead.escalated", "data": {"step": 1}})).unwrap();
        assert_eq!(event, Event::Unknown { type_name: "lead.escalated".into() });
    }
}
