//! `check-config`: each outside service the configuration names, tried the way a send uses
//! it, with the fix for the usual mistakes. Nothing is sent unless asked for.
use std::time::Duration;

use crate::config::{Config, SmtpSettings, SmtpTls, TwilioSettings};
use crate::domain::{EmailAddress, PhoneNumber};

use super::email::{EmailSender, OutgoingEmail, SmtpSender};
use super::sms::{SmsSender, TwilioSender};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Passed,
    /// Works, but probably not as meant (alerts would go to files, links to this machine).
    Warning,
    Failed,
}

/// One line of the report: "✔ SMTP: …".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub mark: Mark,
    pub what: &'static str,
    pub text: String,
}

impl Line {
    fn new(mark: Mark, what: &'static str, text: impl Into<String>) -> Self {
        Self { mark, what, text: text.into() }
    }
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = match self.mark {
            Mark::Passed => "\u{2714}",
            Mark::Warning => "!",
            Mark::Failed => "\u{2718}",
        };
        write!(f, "{sign} {}: {}", self.what, self.text)
    }
}

/// The fix for what a mail server (or the way to it) answered, when it is a usual mistake.
pub fn smtp_fix(settings: &SmtpSettings, problem: &str) -> Option<String> {
    let p = problem.to_lowercase();
    let port = settings.port;
    if p.contains("refused") {
        return Some(format!("nothing listens on {}:{port}: check the host and port in SMTP_URL", settings.host));
    }
    if p.contains("535") || p.contains("authentication failed") || p.contains("invalid credentials") {
        return Some(
            "the user name or password in SMTP_URL is wrong (characters such as @ : / in them must be \
             percent-encoded, @ as %40)"
                .into(),
        );
    }
    if p.contains("mechanism") {
        return Some(
            "the server offers no way to sign in on this connection: most allow it only after STARTTLS \
             (smtp://host:587?tls=required)"
                .into(),
        );
    }
    match (settings.tls, port) {
        (SmtpTls::None | SmtpTls::StartTls { .. }, 465) => {
            Some("port 465 expects TLS from the first byte: use smtps://host:465".into())
        }
        (SmtpTls::Wrapper, 587 | 25) => {
            Some(format!("port {port} starts in plain text: use smtp://host:{port}?tls=required (STARTTLS)"))
        }
        _ if p.contains("no answer") => Some(
            "a firewall may drop the connection, or the port expects TLS (smtps://) or plain text (smtp://)".into(),
        ),
        _ if p.contains("dns") || p.contains("lookup") || p.contains("resolve") => {
            Some(format!("{} does not resolve: check the host name in SMTP_URL", settings.host))
        }
        _ => None,
    }
}

fn with_fix(problem: String, fix: Option<String>) -> String {
    match fix {
        Some(fix) => format!("{problem} \u{2014} fix: {fix}"),
        None => problem,
    }
}

/// The mail server: a session as a send opens it; with `test_to`, one test email too.
pub async fn smtp(config: &Config, test_to: Option<&EmailAddress>) -> Line {
    let Some(settings) = &config.smtp else {
        return Line::new(
            Mark::Warning,
            "SMTP",
            format!(
                "SMTP_URL is not set: emails are written as files to {} instead of sent",
                config.email_outbox_dir().display()
            ),
        );
    };
    let sender = match SmtpSender::new(settings.clone(), config.mail_from.clone()) {
        Ok(sender) => sender,
        Err(e) => return Line::new(Mark::Failed, "SMTP", e.to_string()),
    };
    let session = match sender.check().await {
        Ok(session) => session,
        Err(problem) => {
            let fix = smtp_fix(settings, &problem);
            return Line::new(Mark::Failed, "SMTP", with_fix(problem, fix));
        }
    };
    let Some(to) = test_to else { return Line::new(Mark::Passed, "SMTP", session) };
    let email = OutgoingEmail {
        to: to.clone(),
        to_name: None,
        subject: "KaiCalls test email".into(),
        text: "This test email comes from kaicalls-notify check-config: email alerts can reach this address.\n".into(),
        html: "<p>This test email comes from kaicalls-notify check-config: email alerts can reach this \
               address.</p>"
            .into(),
        message_id: None,
        unsubscribe_url: None,
    };
    match sender.send(email).await {
        Ok(()) => Line::new(Mark::Passed, "SMTP", format!("{session}; a test email went to {to}")),
        Err(e) => {
            let problem = e.to_string();
            let fix = smtp_fix(settings, &problem);
            Line::new(Mark::Failed, "SMTP", with_fix(format!("{session}, but the test email failed: {problem}"), fix))
        }
    }
}

#[derive(serde::Deserialize)]
struct Account {
    #[serde(default)]
    friendly_name: String,
    #[serde(default)]
    status: String,
}

/// The SMS API: its account endpoint with the configured credentials (no text is sent); with
/// `test_to`, one test text too.
pub async fn sms(config: &Config, test_to: Option<&PhoneNumber>) -> Line {
    let Some(api) = &config.sms_api else {
        return Line::new(
            Mark::Warning,
            "SMS",
            format!(
                "SMS_API_BASE and the rest are not set: texts are written to {} instead of sent",
                config.sms_outbox_file().display()
            ),
        );
    };
    let account = match account(api).await {
        Ok(account) => account,
        Err(problem) => return Line::new(Mark::Failed, "SMS", problem),
    };
    let Some(to) = test_to else { return Line::new(Mark::Passed, "SMS", account) };
    let callback = format!("{}{}", config.public_url, crate::domain::sms_status::STATUS_CALLBACK_PATH);
    let sender = match TwilioSender::new(api, callback) {
        Ok(sender) => sender,
        Err(e) => return Line::new(Mark::Failed, "SMS", e.to_string()),
    };
    let body = "KaiCalls test text from check-config: lead alerts can reach this number.";
    match sender.send(to.as_str(), body, false).await {
        Ok(id) => Line::new(Mark::Passed, "SMS", format!("{account}; a test text went to {to} ({id})")),
        Err(e) => Line::new(Mark::Failed, "SMS", format!("{account}, but the test text failed: {e}")),
    }
}

async fn account(api: &TwilioSettings) -> Result<String, String> {
    let base = api.api_base.as_str().trim_end_matches('/');
    let url = format!("{base}/2010-04-01/Accounts/{}.json", api.account_sid);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let response =
        client.get(&url).basic_auth(&api.account_sid, Some(&api.auth_token)).send().await.map_err(|e| {
            format!("cannot reach {base}: {e} \u{2014} fix: check SMS_API_BASE (https://api.twilio.com)")
        })?;
    let status = response.status();
    match status.as_u16() {
        200 => {
            let account: Account =
                response.json().await.map_err(|e| format!("{base} answered, but not as Twilio: {e}"))?;
            let name = if account.friendly_name.is_empty() { api.account_sid.clone() } else { account.friendly_name };
            let state = if account.status.is_empty() { String::new() } else { format!(" ({})", account.status) };
            if !account.status.is_empty() && account.status != "active" {
                return Err(format!(
                    "the account {name} is {} \u{2014} fix: texts need an active account",
                    account.status
                ));
            }
            Ok(format!("{base} knows the account {name}{state}; texts will come from {}", api.from))
        }
        401 => Err(format!(
            "{base} refused the credentials (401) \u{2014} fix: SMS_ACCOUNT_SID (AC…) and SMS_AUTH_TOKEN must be \
             the pair shown together in the Twilio console; a test or sub-account token does not work with \
             another account's SID"
        )),
        404 => Err(format!(
            "{base} knows no account {} (404) \u{2014} fix: check SMS_ACCOUNT_SID, which starts with AC",
            api.account_sid
        )),
        code => Err(format!("{base} answered {code} for the account; try again, or check SMS_API_BASE")),
    }
}

/// The public URL the links in alerts use.
pub fn public_url(config: &Config) -> Line {
    let url = config.public_url.as_str();
    let local = config.public_url.host_str().is_some_and(|h| h == "127.0.0.1" || h == "localhost" || h == "0.0.0.0");
    if local {
        Line::new(
            Mark::Warning,
            "Public URL",
            format!(
                "{url}: links in alerts and Twilio's callbacks would point at this machine \u{2014} fix: set KAI_PUBLIC_URL to the address people open"
            ),
        )
    } else {
        Line::new(Mark::Passed, "Public URL", format!("links in alerts start with {url}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smtp(url: &str) -> SmtpSettings {
        SmtpSettings::parse(url).unwrap()
    }

    #[test]
    fn the_usual_smtp_mistakes_get_their_fix() {
        let fix = |url: &str, problem: &str| smtp_fix(&smtp(url), problem).unwrap_or_default();
        assert!(fix("smtp://mail.test:465", "no answer from smtp://mail.test:465 within 10 s").contains("smtps://"));
        assert!(fix("smtps://mail.test:587", "TLS: received corrupt message").contains("tls=required"));
        assert!(fix("smtp://u:p@mail.test:587?tls=required", "535 5.7.8 Authentication failed").contains("%40"));
        assert!(fix("smtp://mail.test:2525", "Connection refused (os error 111)").contains("nothing listens"));
        assert!(
            fix("smtp://u:p@mail.test:25", "No compatible authentication mechanism was found").contains("STARTTLS")
        );
        assert_eq!(smtp_fix(&smtp("smtp://mail.test:25"), "451 try later"), None);
    }

    #[test]
    fn a_line_reads_with_its_mark() {
        assert_eq!(Line::new(Mark::Passed, "SMTP", "ok").to_string(), "\u{2714} SMTP: ok");
        assert_eq!(Line::new(Mark::Failed, "SMS", "no").to_string(), "\u{2718} SMS: no");
    }
}
