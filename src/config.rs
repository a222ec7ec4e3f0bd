//! Configuration from the environment (DESIGN.md §3). Every variable is optional; a bad value
//! stops start-up with one line naming the variable and what is wrong with it.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use lettre::message::Mailbox;
use sqlx::sqlite::SqliteConnectOptions;
use url::Url;

use crate::domain::{PhoneNumber, Region};

#[derive(Debug, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

fn bad(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError { var, problem: problem.into() }
}

/// Where and how to send SMS through Twilio's Messages API.
#[derive(Debug, Clone)]
pub struct SmsApiConfig {
    pub api_base: Url,
    pub account_sid: String,
    pub auth_token: String,
    pub from: PhoneNumber,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub database_url: String,
    /// Folder for the default database and the file outboxes (`outbox/email`, `outbox/sms.jsonl`).
    pub data_dir: PathBuf,
    pub smtp_url: Option<String>,
    pub mail_from: Mailbox,
    pub sms_api: Option<SmsApiConfig>,
    pub public_url: Url,
    /// Signing key for session cookies; generated and stored in the database when unset.
    pub session_key: Option<Vec<u8>>,
    /// Leases and retry timing of the dispatcher (tests shorten them).
    pub dispatch: crate::dispatch::worker::DispatchSettings,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, so tests can pass their own variables.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());

        let bind = match get("KAI_BIND") {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(v) => v.parse().map_err(|_| {
                bad("KAI_BIND", format!("\u{201c}{v}\u{201d} is not an address and port such as 127.0.0.1:8080"))
            })?,
        };

        let data_dir = PathBuf::from(get("KAI_DATA_DIR").unwrap_or_else(|| "data".into()));
        let database_url = match get("DATABASE_URL") {
            None => format!("sqlite://{}", data_dir.join("kaicalls.db").display()),
            Some(v) if !v.starts_with("sqlite:") => {
                return Err(bad(
                    "DATABASE_URL",
                    format!("\u{201c}{v}\u{201d} is not a SQLite URL; use one such as sqlite://data/kaicalls.db"),
                ));
            }
            Some(v) => {
                SqliteConnectOptions::from_str(&v).map_err(|e| {
                    bad(
                        "DATABASE_URL",
                        format!("\u{201c}{v}\u{201d} is not a SQLite URL such as sqlite://data/kaicalls.db ({e})"),
                    )
                })?;
                v
            }
        };

        let smtp_url = match get("SMTP_URL") {
            None => None,
            Some(v) => {
                lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(&v).map_err(|e| {
                    bad(
                        "SMTP_URL",
                        format!("\u{201c}{v}\u{201d} is not an SMTP URL such as smtp://127.0.0.1:2525 ({e})"),
                    )
                })?;
                Some(v)
            }
        };

        let mail_from = get("MAIL_FROM").unwrap_or_else(|| "KaiCalls Alerts <alerts@kaicalls.localhost>".into());
        let mail_from = mail_from.parse::<Mailbox>().map_err(|e| {
            bad(
                "MAIL_FROM",
                format!("\u{201c}{mail_from}\u{201d} is not a sender such as KaiCalls <alerts@example.com> ({e})"),
            )
        })?;

        let sms_api = sms_api_config(&get)?;

        let public_url = match get("KAI_PUBLIC_URL") {
            None => Url::parse(&format!("http://{bind}/")).expect("a socket address makes a valid URL"),
            Some(v) => {
                let url = Url::parse(&v)
                    .map_err(|e| bad("KAI_PUBLIC_URL", format!("\u{201c}{v}\u{201d} is not a URL ({e})")))?;
                if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                    return Err(bad(
                        "KAI_PUBLIC_URL",
                        format!("\u{201c}{v}\u{201d} must be an http(s) URL with a host"),
                    ));
                }
                url
            }
        };

        let session_key = match get("SESSION_KEY") {
            None => None,
            Some(v) => {
                use base64::Engine;
                let key = base64::engine::general_purpose::STANDARD
                    .decode(&v)
                    .map_err(|_| bad("SESSION_KEY", "must be base64 (for example: openssl rand -base64 64)"))?;
                if key.len() < 64 {
                    return Err(bad("SESSION_KEY", format!("must decode to at least 64 bytes, got {}", key.len())));
                }
                Some(key)
            }
        };

        let mut dispatch = crate::dispatch::worker::DispatchSettings::default();
        if let Some(v) = get("KAI_DISPATCH_LEASE_SECS") {
            let secs: u64 = v.parse().ok().filter(|s| (1..=3600).contains(s)).ok_or_else(|| {
                bad("KAI_DISPATCH_LEASE_SECS", format!("\u{201c}{v}\u{201d} is not a number of seconds from 1 to 3600"))
            })?;
            dispatch.lease = std::time::Duration::from_secs(secs);
        }

        Ok(Self { bind, database_url, data_dir, smtp_url, mail_from, sms_api, public_url, session_key, dispatch })
    }

    pub fn email_outbox_dir(&self) -> PathBuf {
        self.data_dir.join("outbox").join("email")
    }

    pub fn sms_outbox_file(&self) -> PathBuf {
        self.data_dir.join("outbox").join("sms.jsonl")
    }
}

fn sms_api_config(get: &impl Fn(&str) -> Option<String>) -> Result<Option<SmsApiConfig>, ConfigError> {
    let names = ["SMS_API_BASE", "SMS_ACCOUNT_SID", "SMS_AUTH_TOKEN", "SMS_FROM"];
    let values: Vec<Option<String>> = names.iter().map(|n| get(n)).collect();
    if values.iter().all(Option::is_none) {
        return Ok(None);
    }
    if let Some(missing) = names.iter().zip(&values).find(|(_, v)| v.is_none()).map(|(n, _)| *n) {
        return Err(ConfigError {
            var: missing,
            problem: "is required when any of SMS_API_BASE, SMS_ACCOUNT_SID, SMS_AUTH_TOKEN, SMS_FROM is set".into(),
        });
    }
    let [base, sid, token, from] = <[Option<String>; 4]>::try_from(values).expect("four names");
    let (base, sid, token, from) = (base.unwrap(), sid.unwrap(), token.unwrap(), from.unwrap());
    let api_base = Url::parse(&base).ok().filter(|u| matches!(u.scheme(), "http" | "https")).ok_or_else(|| {
        bad("SMS_API_BASE", format!("\u{201c}{base}\u{201d} is not an http(s) URL such as https://api.twilio.com"))
    })?;
    if !sid.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(bad("SMS_ACCOUNT_SID", "must be letters and digits only, such as AC0123…"));
    }
    let from = PhoneNumber::parse(&from, Region::default()).map_err(|e| bad("SMS_FROM", e))?;
    Ok(Some(SmsApiConfig { api_base, account_sid: sid, auth_token: token, from }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn nothing_set_gives_working_defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://data/kaicalls.db");
        assert!(c.smtp_url.is_none() && c.sms_api.is_none() && c.session_key.is_none());
        assert_eq!(c.public_url.as_str(), "http://127.0.0.1:8080/");
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        for (var, value) in [
            ("KAI_BIND", "localhost"),
            ("SMTP_URL", "not a url"),
            ("MAIL_FROM", "nobody"),
            ("KAI_PUBLIC_URL", "ftp://x"),
            ("SESSION_KEY", "c2hvcnQ="),
            ("DATABASE_URL", "postgres://x"),
            ("KAI_DISPATCH_LEASE_SECS", "0"),
        ] {
            let err = config(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var, "{err}");
            assert!(err.to_string().starts_with(var), "{err}");
        }
    }

    #[test]
    fn sms_settings_come_as_a_set() {
        let err = config(&[("SMS_API_BASE", "http://127.0.0.1:9")]).unwrap_err();
        assert_eq!(err.var, "SMS_ACCOUNT_SID");
        let c = config(&[
            ("SMS_API_BASE", "http://127.0.0.1:9"),
            ("SMS_ACCOUNT_SID", "AC123"),
            ("SMS_AUTH_TOKEN", "secret"),
            ("SMS_FROM", "(555) 555-0199"),
        ])
        .unwrap();
        assert_eq!(c.sms_api.unwrap().from.as_str(), "+15555550199");
    }
}
