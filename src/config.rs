//! Configuration from the environment (DESIGN.md §3). Every variable is optional; a bad value
//! stops start-up with one line naming the variable and what is wrong with it. This module is a
//! leaf: the settings of each part of the process are defined here and read there.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use lettre::message::Mailbox;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;

use crate::db::Engine;
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
pub struct TwilioSettings {
    pub api_base: Url,
    pub account_sid: String,
    pub auth_token: String,
    pub from: PhoneNumber,
    /// How long a lead alert may wait in the provider's queue before it is dropped
    /// (`ValidityPeriod`): a lead alert hours late is worse than none.
    pub lead_validity: std::time::Duration,
}

/// How the connection to the mail server is secured (lettre's `SMTP_URL` conventions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// `smtp://host` — plain text (a local relay).
    None,
    /// `smtp://host?tls=required` (or `opportunistic`) — STARTTLS, port 587 by default.
    StartTls { required: bool },
    /// `smtps://host` — TLS from the first byte, port 465 by default.
    Wrapper,
}

/// The mail server, read from `SMTP_URL`.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// User name and password, when the URL carries them.
    pub credentials: Option<(String, String)>,
    /// The name we greet the server with (the URL's path), if not this machine's.
    pub hello_name: Option<String>,
}

impl SmtpSettings {
    pub fn parse(value: &str) -> Result<Self, String> {
        let url = Url::parse(value).map_err(|e| e.to_string())?;
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or("it has no host")?.to_owned();
        let tls_param = url.query_pairs().find(|(k, _)| k == "tls").map(|(_, v)| v.into_owned());
        let (tls, default_port) = match (url.scheme(), tls_param.as_deref()) {
            ("smtp", None | Some("none")) => (SmtpTls::None, 25),
            ("smtp", Some("required")) => (SmtpTls::StartTls { required: true }, 587),
            ("smtp", Some("opportunistic")) => (SmtpTls::StartTls { required: false }, 587),
            ("smtps", _) => (SmtpTls::Wrapper, 465),
            ("smtp", Some(other)) => return Err(format!("tls={other} is not one of required, opportunistic")),
            (scheme, _) => return Err(format!("the scheme {scheme}: is not smtp: or smtps:")),
        };
        let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
        let credentials = url.password().map(|p| (decode(url.username()), decode(p)));
        let hello_name = Some(url.path().trim_matches('/').to_owned()).filter(|p| !p.is_empty());
        Ok(Self { host, port: url.port().unwrap_or(default_port), tls, credentials, hello_name })
    }

    /// "smtp://mail.example:587" without credentials, for logs and messages.
    pub fn describe(&self) -> String {
        let scheme = if self.tls == SmtpTls::Wrapper { "smtps" } else { "smtp" };
        format!("{scheme}://{}:{}", self.host, self.port)
    }
}

/// Leases and retry timing of the dispatcher (tests shorten them).
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// How long a claimed delivery is ours; longer than any send timeout (15 s).
    pub lease: Duration,
    /// The first retry waits about this long; each later one twice as long, at most an hour.
    pub first_retry: Duration,
    /// After this long a delivery that keeps failing is given up (dead-lettered).
    pub give_up_after: Duration,
    /// Run the dispatcher loop (false: a test drives it with `Dispatcher::run_once`).
    pub autorun: bool,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            first_retry: Duration::from_secs(10),
            give_up_after: Duration::from_secs(24 * 3600),
            autorun: true,
        }
    }
}

/// How PostgreSQL is used (SQLite's connections are fixed: one writer, a few readers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatabaseSettings {
    /// Connections for pages (`KAI_DB_POOL_SIZE`).
    pub pool_size: u32,
    /// How long one statement may run (`KAI_DB_STATEMENT_TIMEOUT_MS`).
    pub statement_timeout: std::time::Duration,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self { pool_size: 8, statement_timeout: std::time::Duration::from_secs(2) }
    }
}

/// Running it for real: who may read `/metrics`, how long rows are kept, how long a stop waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsSettings {
    /// `Authorization: Bearer …` that lets a scraper off this machine read `/metrics`
    /// (`KAI_METRICS_TOKEN`); without it only loopback may.
    pub metrics_token: Option<String>,
    /// Events, deliveries, inbox rows and webhook ids older than this are deleted
    /// (`KAI_RETENTION_DAYS`, 7 to 3650).
    pub retention_days: u32,
    /// The audit log's own (`KAI_AUDIT_RETENTION_DAYS`, 30 to 3650).
    pub audit_retention_days: u32,
    /// How long a stopping server lets sends in flight finish (`KAI_SHUTDOWN_GRACE_SECS`, 1 to 300).
    pub shutdown_grace: Duration,
}

impl Default for OpsSettings {
    fn default() -> Self {
        Self {
            metrics_token: None,
            retention_days: 90,
            audit_retention_days: 400,
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub database_url: String,
    pub database: DatabaseSettings,
    /// Load balancers or proxies whose `X-Forwarded-For` names the client (`KAI_TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Folder for the default database and the file outboxes (`outbox/email`, `outbox/sms.jsonl`).
    pub data_dir: PathBuf,
    pub smtp: Option<SmtpSettings>,
    pub mail_from: Mailbox,
    pub sms_api: Option<TwilioSettings>,
    pub public_url: Url,
    /// Signing key for session cookies; generated and stored in the database when unset.
    pub session_key: Option<Vec<u8>>,
    pub dispatch: DispatchSettings,
    pub ops: OpsSettings,
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
            Some(v) => match Engine::of_url(&v) {
                Some(Engine::Sqlite) => {
                    SqliteConnectOptions::from_str(&v).map_err(|e| {
                        bad(
                            "DATABASE_URL",
                            format!("\u{201c}{v}\u{201d} is not a SQLite URL such as sqlite://data/kaicalls.db ({e})"),
                        )
                    })?;
                    v
                }
                Some(Engine::Postgres) => {
                    // The message never repeats the URL: it may hold a password.
                    PgConnectOptions::from_str(&v).map_err(|e| {
                        bad(
                            "DATABASE_URL",
                            format!("is not a PostgreSQL URL such as postgres://user:password@host/kaicalls ({e})"),
                        )
                    })?;
                    v
                }
                None => {
                    return Err(bad(
                        "DATABASE_URL",
                        "must start with sqlite: (sqlite://data/kaicalls.db) or postgres:// (postgres://user@host/kaicalls)",
                    ));
                }
            },
        };
        let mut database = DatabaseSettings::default();
        if let Some(v) = get("KAI_DB_POOL_SIZE") {
            database.pool_size = v.parse().ok().filter(|n| (1..=200).contains(n)).ok_or_else(|| {
                bad("KAI_DB_POOL_SIZE", format!("\u{201c}{v}\u{201d} is not a number of connections from 1 to 200"))
            })?;
        }
        if let Some(v) = get("KAI_DB_STATEMENT_TIMEOUT_MS") {
            let ms: u64 = v.parse().ok().filter(|n| (100..=600_000).contains(n)).ok_or_else(|| {
                bad(
                    "KAI_DB_STATEMENT_TIMEOUT_MS",
                    format!("\u{201c}{v}\u{201d} is not a number of milliseconds from 100 to 600000"),
                )
            })?;
            database.statement_timeout = std::time::Duration::from_millis(ms);
        }

        let smtp = match get("SMTP_URL") {
            None => None,
            Some(v) => Some(SmtpSettings::parse(&v).map_err(|e| {
                bad("SMTP_URL", format!("\u{201c}{v}\u{201d} is not an SMTP URL such as smtp://127.0.0.1:2525 ({e})"))
            })?),
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

        let trusted_proxies = match get("KAI_TRUSTED_PROXIES") {
            None => Vec::new(),
            Some(v) => v
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(|a| {
                    a.parse().map_err(|_| {
                        bad(
                            "KAI_TRUSTED_PROXIES",
                            format!(
                                "\u{201c}{a}\u{201d} is not an IP address (list them with commas: 10.0.0.5,10.0.0.6)"
                            ),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };

        if session_key.is_none() && Engine::of_url(&database_url) == Some(Engine::Postgres) {
            return Err(bad(
                "SESSION_KEY",
                "must be set when DATABASE_URL is PostgreSQL: every instance signs sign-ins with the same key \
                 (make one with: openssl rand -base64 64)",
            ));
        }

        let mut dispatch = DispatchSettings::default();
        if let Some(v) = get("KAI_DISPATCH_LEASE_SECS") {
            let secs: u64 = v.parse().ok().filter(|s| (1..=3600).contains(s)).ok_or_else(|| {
                bad("KAI_DISPATCH_LEASE_SECS", format!("\u{201c}{v}\u{201d} is not a number of seconds from 1 to 3600"))
            })?;
            dispatch.lease = std::time::Duration::from_secs(secs);
        }

        let ops = ops_config(&get)?;

        Ok(Self {
            bind,
            database_url,
            database,
            trusted_proxies,
            data_dir,
            smtp,
            mail_from,
            sms_api,
            public_url,
            session_key,
            dispatch,
            ops,
        })
    }

    pub fn email_outbox_dir(&self) -> PathBuf {
        self.data_dir.join("outbox").join("email")
    }

    pub fn sms_outbox_file(&self) -> PathBuf {
        self.data_dir.join("outbox").join("sms.jsonl")
    }
}

/// A whole number from `lo` to `hi`, or a message naming the variable and the range.
fn number_in(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    lo: u64,
    hi: u64,
    what: &str,
) -> Result<Option<u64>, ConfigError> {
    let Some(v) = get(var) else { return Ok(None) };
    v.parse()
        .ok()
        .filter(|n| (lo..=hi).contains(n))
        .map(Some)
        .ok_or_else(|| bad(var, format!("\u{201c}{v}\u{201d} is not a number of {what} from {lo} to {hi}")))
}

fn ops_config(get: &impl Fn(&str) -> Option<String>) -> Result<OpsSettings, ConfigError> {
    let mut ops = OpsSettings::default();
    if let Some(token) = get("KAI_METRICS_TOKEN") {
        if token.len() < 16 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(
                "KAI_METRICS_TOKEN",
                "must be at least 16 characters with no spaces (for example: openssl rand -hex 24)",
            ));
        }
        ops.metrics_token = Some(token);
    }
    if let Some(days) = number_in(get, "KAI_RETENTION_DAYS", 7, 3650, "days")? {
        ops.retention_days = days as u32;
    }
    if let Some(days) = number_in(get, "KAI_AUDIT_RETENTION_DAYS", 30, 3650, "days")? {
        ops.audit_retention_days = days as u32;
    }
    if let Some(secs) = number_in(get, "KAI_SHUTDOWN_GRACE_SECS", 1, 300, "seconds")? {
        ops.shutdown_grace = Duration::from_secs(secs);
    }
    Ok(ops)
}

fn sms_api_config(get: &impl Fn(&str) -> Option<String>) -> Result<Option<TwilioSettings>, ConfigError> {
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
    // Twilio takes 1 to 36,000 seconds.
    let minutes = match get("SMS_LEAD_VALIDITY_MINUTES") {
        None => 15,
        Some(v) => v.trim().parse::<u64>().ok().filter(|m| (1..=600).contains(m)).ok_or_else(|| {
            bad("SMS_LEAD_VALIDITY_MINUTES", format!("\u{201c}{v}\u{201d} is not a number of minutes from 1 to 600"))
        })?,
    };
    let lead_validity = std::time::Duration::from_secs(minutes * 60);
    Ok(Some(TwilioSettings { api_base, account_sid: sid, auth_token: token, from, lead_validity }))
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
    fn postgres_needs_a_shared_session_key_and_a_bad_url_keeps_its_password_secret() {
        let e = config(&[("DATABASE_URL", "postgres://kai@db.internal/kaicalls")]).unwrap_err();
        assert_eq!(e.var, "SESSION_KEY");
        let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 64]);
        let c = config(&[("DATABASE_URL", "postgres://kai@db.internal/kaicalls"), ("SESSION_KEY", &key)]).unwrap();
        assert_eq!(c.database, DatabaseSettings::default());
        let e = config(&[("DATABASE_URL", "postgres://kai:hunter2@db/k?sslmode=bogus"), ("SESSION_KEY", &key)])
            .unwrap_err();
        assert_eq!(e.var, "DATABASE_URL");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn nothing_set_gives_working_defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://data/kaicalls.db");
        assert!(c.smtp.is_none() && c.sms_api.is_none() && c.session_key.is_none());
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
            ("DATABASE_URL", "mysql://x"),
            ("DATABASE_URL", "postgres://user:hunter2@/db?sslmode=bogus"),
            ("KAI_DB_POOL_SIZE", "0"),
            ("KAI_TRUSTED_PROXIES", "10.0.0.5, load-balancer"),
            ("KAI_DB_STATEMENT_TIMEOUT_MS", "5"),
            ("KAI_DISPATCH_LEASE_SECS", "0"),
        ] {
            let err = config(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var, "{err}");
            assert!(err.to_string().starts_with(var), "{err}");
        }
    }

    #[test]
    fn smtp_urls_follow_lettres_conventions() {
        let plain = SmtpSettings::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!((plain.port, plain.tls, plain.credentials), (2525, SmtpTls::None, None));
        let submission = SmtpSettings::parse("smtp://me%40x.test:p%2Fw@mail.x.test?tls=required").unwrap();
        assert_eq!((submission.port, submission.tls), (587, SmtpTls::StartTls { required: true }));
        assert_eq!(submission.credentials, Some(("me@x.test".into(), "p/w".into())));
        assert_eq!(submission.describe(), "smtp://mail.x.test:587");
        let wrapped = SmtpSettings::parse("smtps://mail.x.test/relay.x.test").unwrap();
        assert_eq!(
            (wrapped.port, wrapped.tls, wrapped.hello_name.as_deref()),
            (465, SmtpTls::Wrapper, Some("relay.x.test"))
        );
        assert!(SmtpSettings::parse("smtp://x?tls=maybe").unwrap_err().contains("tls=maybe"));
        assert!(SmtpSettings::parse("http://x").is_err());
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
        let sms = c.sms_api.unwrap();
        assert_eq!(sms.from.as_str(), "+15555550199");
        assert_eq!(sms.lead_validity, std::time::Duration::from_secs(15 * 60), "lead alerts expire after 15 min");
        for (value, ok) in [("60", true), ("0", false), ("601", false), ("soon", false)] {
            let c = config(&[
                ("SMS_API_BASE", "http://127.0.0.1:9"),
                ("SMS_ACCOUNT_SID", "AC123"),
                ("SMS_AUTH_TOKEN", "secret"),
                ("SMS_FROM", "(555) 555-0199"),
                ("SMS_LEAD_VALIDITY_MINUTES", value),
            ]);
            match c {
                Ok(c) => assert!(ok && c.sms_api.unwrap().lead_validity.as_secs() == 3600, "{value}"),
                Err(e) => {
                    assert!(!ok && e.var == "SMS_LEAD_VALIDITY_MINUTES" && e.to_string().contains("1 to 600"), "{e}")
                }
            }
        }
    }
}
