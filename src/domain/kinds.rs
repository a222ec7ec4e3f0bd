/// The kinds of alert a business can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    LeadCreated,
    LeadUpdated,
    Usage,
    Billing,
}

impl AlertKind {
    pub const ALL: [AlertKind; 4] = [Self::LeadCreated, Self::LeadUpdated, Self::Usage, Self::Billing];

    /// The form field and column name.
    pub fn field(self) -> &'static str {
        match self {
            Self::LeadCreated => "lead_created",
            Self::LeadUpdated => "lead_updated",
            Self::Usage => "usage_alerts",
            Self::Billing => "billing_alerts",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::LeadCreated => "New leads",
            Self::LeadUpdated => "Lead updates",
            Self::Usage => "Usage alerts",
            Self::Billing => "Billing alerts",
        }
    }

    /// How the alert kind reads inside a sentence ("new-lead alerts are off").
    pub fn phrase(self) -> &'static str {
        match self {
            Self::LeadCreated => "new-lead alerts",
            Self::LeadUpdated => "lead-update alerts",
            Self::Usage => "usage alerts",
            Self::Billing => "billing alerts",
        }
    }

    pub fn from_field(field: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.field() == field)
    }
}

/// The ways an alert can reach a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Email,
    Sms,
    InApp,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Self::Email, Self::Sms, Self::InApp];

    pub fn field(self) -> &'static str {
        match self {
            Self::Email => "email_enabled",
            Self::Sms => "sms_enabled",
            Self::InApp => "in_app_enabled",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Email => "Email",
            Self::Sms => "SMS",
            Self::InApp => "In-app",
        }
    }

    pub fn from_field(field: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.field() == field)
    }

    /// The name stored in the database.
    pub fn code(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::InApp => "in_app",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }
}
