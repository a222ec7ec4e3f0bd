//! SMS senders: Twilio's Messages API when configured, otherwise JSON lines in a file.
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use crate::config::TwilioSettings;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmsError {
    /// Try again later (timeout, 429, 5xx), not before `retry_after` when the provider said so.
    #[error("{message}")]
    Transient { message: String, retry_after: Option<Duration> },
    /// Retrying will not help.
    #[error("{message}")]
    Permanent { message: String },
    /// The number itself is refused for good (invalid, cannot receive texts, opted out): no
    /// more texts should go to it. `problem` says why in words.
    #[error("{message}")]
    NumberRefused { message: String, problem: String },
    /// The number replied STOP to our sender (error 21610): no texts until it replies START.
    #[error("{message}")]
    OptedOut { message: String },
}

pub type SmsFuture<'a> = Pin<Box<dyn Future<Output = Result<String, SmsError>> + Send + 'a>>;

pub trait SmsSender: Send + Sync {
    /// Sends `body` to `to` (E.164); answers the provider's message id. `expires`: the text is
    /// worth sending only soon (a lead alert), and the provider drops it past the configured
    /// validity.
    fn send<'a>(&'a self, to: &'a str, body: &'a str, expires: bool) -> SmsFuture<'a>;
    fn describe(&self) -> String;
}

/// Twilio error codes after which a number must not be texted again.
fn number_problem(code: u32, number: &str) -> Option<String> {
    match code {
        21211 => Some(format!("the SMS provider says {number} is not a valid phone number")),
        21614 => Some(format!("the SMS provider says {number} cannot receive texts")),
        _ => None,
    }
}

pub struct TwilioSender {
    client: reqwest::Client,
    url: String,
    account_sid: String,
    auth_token: String,
    from: String,
    /// Where Twilio posts each text's later states (`StatusCallback`).
    status_callback: String,
    /// `ValidityPeriod` of the texts that expire, in seconds.
    validity_secs: String,
}

impl TwilioSender {
    /// `status_callback`: the full URL of our status callback route, as Twilio will call it.
    pub fn new(config: &TwilioSettings, status_callback: String) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        let base = config.api_base.as_str().trim_end_matches('/');
        let url = format!("{base}/2010-04-01/Accounts/{}/Messages.json", config.account_sid);
        Ok(Self {
            client,
            url,
            account_sid: config.account_sid.clone(),
            auth_token: config.auth_token.clone(),
            from: config.from.to_string(),
            status_callback,
            validity_secs: config.lead_validity.as_secs().to_string(),
        })
    }
}

#[derive(serde::Deserialize)]
struct TwilioAnswer {
    sid: Option<String>,
    code: Option<u32>,
    message: Option<String>,
}

impl SmsSender for TwilioSender {
    fn send<'a>(&'a self, to: &'a str, body: &'a str, expires: bool) -> SmsFuture<'a> {
        Box::pin(async move {
            let mut form = vec![
                ("To", to),
                ("From", self.from.as_str()),
                ("Body", body),
                ("StatusCallback", self.status_callback.as_str()),
            ];
            if expires {
                form.push(("ValidityPeriod", self.validity_secs.as_str()));
            }
            let response = self
                .client
                .post(&self.url)
                .basic_auth(&self.account_sid, Some(&self.auth_token))
                .form(&form)
                .send()
                .await
                .map_err(|e| SmsError::Transient {
                    message: format!("the SMS provider could not be reached: {e}"),
                    retry_after: None,
                })?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let answer: Option<TwilioAnswer> = response.json().await.ok();
            let (code, detail) = answer
                .as_ref()
                .map(|a| (a.code, a.message.clone().unwrap_or_default()))
                .unwrap_or((None, String::new()));
            if status.is_success() {
                return answer.and_then(|a| a.sid).ok_or_else(|| SmsError::Transient {
                    message: "the SMS provider accepted the message but sent no message id".into(),
                    retry_after: None,
                });
            }
            let message = match code {
                Some(c) => format!("the SMS provider answered {status} (error {c}: {detail})"),
                None => format!("the SMS provider answered {status}"),
            };
            if status.as_u16() == 429 || status.is_server_error() {
                Err(SmsError::Transient { message, retry_after })
            } else if code == Some(21610) {
                Err(SmsError::OptedOut { message })
            } else if let Some(problem) = code.and_then(|c| number_problem(c, to)) {
                Err(SmsError::NumberRefused { message, problem })
            } else {
                Err(SmsError::Permanent { message })
            }
        })
    }

    fn describe(&self) -> String {
        format!("Twilio Messages API at {}", self.url)
    }
}

/// Appends each SMS as a JSON line, for running without an SMS provider.
pub struct FileSmsSender {
    path: PathBuf,
    lock: Mutex<()>,
}

impl FileSmsSender {
    pub fn new(path: PathBuf) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("cannot create the SMS outbox {}: {e}", dir.display()))?;
        }
        Ok(Self { path, lock: Mutex::new(()) })
    }
}

impl SmsSender for FileSmsSender {
    fn send<'a>(&'a self, to: &'a str, body: &'a str, _expires: bool) -> SmsFuture<'a> {
        Box::pin(async move {
            let id = format!("file-{}", crate::tokens::random_token());
            let line = serde_json::json!({ "id": id, "to": to, "body": body, "at_ms": crate::clock::unix_now_ms() });
            let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .and_then(|mut f| writeln!(f, "{line}"))
                .map_err(|e| SmsError::Transient {
                    message: format!("could not write to {}: {e}", self.path.display()),
                    retry_after: None,
                })?;
            Ok(id)
        })
    }

    fn describe(&self) -> String {
        format!("JSON lines in {}", self.path.display())
    }
}
