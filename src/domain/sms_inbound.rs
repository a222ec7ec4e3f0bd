//! Texts people send back to our number: the carriers' opt-out and help keywords, "1" to claim
//! the lead of the last alert, and the TwiML that answers Twilio.
use super::text::to_gsm7;

/// The path of the incoming-message webhook, under `KAI_PUBLIC_URL`.
pub const INBOUND_PATH: &str = "webhooks/twilio/inbound";

/// What a text back asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// No more texts to this number (STOP and the carriers' other opt-out words).
    Stop,
    /// Texts may come again (START, UNSTOP, YES).
    Start,
    /// Who is texting and how to stop (HELP, INFO).
    Help,
    /// "1": I'll take the lead of the last alert.
    Claim,
    /// Anything else: kept for the SMS page.
    Other,
}

const STOP: [&str; 8] = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"];
const START: [&str; 3] = ["START", "UNSTOP", "YES"];
const HELP: [&str; 2] = ["HELP", "INFO"];

impl Asked {
    /// A keyword counts alone, in any case, with spaces around it (as the carriers match them).
    pub fn of(body: &str) -> Self {
        let word = body.trim().to_ascii_uppercase();
        let word = word.trim_end_matches(['.', '!']);
        if STOP.contains(&word) {
            Self::Stop
        } else if START.contains(&word) {
            Self::Start
        } else if HELP.contains(&word) {
            Self::Help
        } else if word == "1" {
            Self::Claim
        } else {
            Self::Other
        }
    }
}

/// The answer to HELP: who texts, and how to stop or claim (one GSM-7 segment).
pub fn help_reply(business: Option<&str>) -> String {
    let who = match business {
        Some(name) => format!("{} lead alerts from KaiCalls.", to_gsm7(&name.chars().take(40).collect::<String>())),
        None => "KaiCalls lead alerts.".to_owned(),
    };
    format!("{who} Reply 1 to claim the last lead, STOP to stop texts, START to get them again.")
}

/// A TwiML answer: one reply text, or none.
pub fn twiml(reply: Option<&str>) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response>");
    if let Some(text) = reply {
        out.push_str("<Message>");
        for c in text.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&apos;"),
                c => out.push(c),
            }
        }
        out.push_str("</Message>");
    }
    out.push_str("</Response>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_in_any_case_with_spaces() {
        for stop in ["STOP", "stop", " Stop ", "STOPALL", "unsubscribe", "Cancel", "END", "quit", "REVOKE", "optout"] {
            assert_eq!(Asked::of(stop), Asked::Stop, "{stop}");
        }
        for start in ["START", "start ", "Unstop", "yes"] {
            assert_eq!(Asked::of(start), Asked::Start, "{start}");
        }
        assert_eq!(Asked::of("help"), Asked::Help);
        assert_eq!(Asked::of(" 1 "), Asked::Claim);
        for other in ["please stop texting me", "11", "stopp", "", "Thanks!"] {
            assert_eq!(Asked::of(other), Asked::Other, "{other}");
        }
    }

    #[test]
    fn replies_are_escaped_twiml() {
        assert_eq!(twiml(None), "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response></Response>\n");
        let help = twiml(Some(&help_reply(Some("Smith & <Sons>"))));
        assert!(help.contains("<Message>Smith &amp; &lt;Sons&gt; lead alerts from KaiCalls."), "{help}");
        assert_eq!(super::super::text::sms_segments(&help_reply(Some(&"x".repeat(80)))), 1);
    }
}
