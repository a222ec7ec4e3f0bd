//! The states an event and a delivery move through, as the database stores them.

/// Where one delivery (event × person × channel) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// To be sent, or being sent, or waiting for its next try.
    Pending,
    Sent,
    /// Decided against, with a reason (threshold, channel off, duplicate address…).
    Skipped,
    /// Refused for good by the provider.
    Failed,
    /// Retried for a day without success, then given up.
    Dead,
}

impl DeliveryStatus {
    const CODES: [(Self, &'static str); 5] = [
        (Self::Pending, "pending"),
        (Self::Sent, "sent"),
        (Self::Skipped, "skipped"),
        (Self::Failed, "failed"),
        (Self::Dead, "dead"),
    ];

    pub fn code(self) -> &'static str {
        Self::CODES.iter().find(|(s, _)| *s == self).map(|(_, c)| *c).unwrap_or_default()
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::CODES.iter().find(|(_, c)| *c == code).map(|(s, _)| *s)
    }
}

/// What became of an event once it was planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventState {
    /// Stored by an earlier version that planned later; this version plans at ingest.
    Received,
    /// Its deliveries (and decisions not to deliver) are recorded.
    Planned,
    /// An unknown type, or nothing to alert about.
    Ignored,
    /// The same lead version or payment attempt was alerted before.
    Duplicate,
}

impl EventState {
    const CODES: [(Self, &'static str); 4] = [
        (Self::Received, "received"),
        (Self::Planned, "planned"),
        (Self::Ignored, "ignored"),
        (Self::Duplicate, "duplicate"),
    ];

    pub fn code(self) -> &'static str {
        Self::CODES.iter().find(|(s, _)| *s == self).map(|(_, c)| *c).unwrap_or_default()
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::CODES.iter().find(|(_, c)| *c == code).map(|(s, _)| *s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_back() {
        for (status, code) in DeliveryStatus::CODES {
            assert_eq!(DeliveryStatus::from_code(code), Some(status));
            assert_eq!(status.code(), code);
        }
        for (state, code) in EventState::CODES {
            assert_eq!(EventState::from_code(code), Some(state));
        }
        assert_eq!(DeliveryStatus::from_code("lost"), None);
    }
}
