//! The only code that talks to the outside world: the dispatcher and the channel senders.
//!
//! The writer hands each commit's claimed deliveries here in memory (`db::Handover`); the
//! dispatcher sends them at once, each channel within its own limit, and records every outcome
//! through the writer. The database is read only for retries that fall due, for deliveries whose
//! lease ran out (a process that stopped mid-send), and at start-up.
pub mod check;
pub mod dispatcher;
pub mod email;
pub mod outcome;
pub mod send;
pub mod sms;

use std::sync::Arc;

use crate::config::Config;
use crate::db::Db;
pub use dispatcher::Dispatcher;
use email::{EmailSender, FileSender, SmtpSender};
pub use send::{Keys, Senders};
use sms::{FileSmsSender, SmsSender, TwilioSender};

/// The email sender the configuration asks for: SMTP, or `.eml` files.
pub fn email_sender(config: &Config) -> anyhow::Result<Arc<dyn EmailSender>> {
    Ok(match &config.smtp {
        Some(smtp) => Arc::new(SmtpSender::new(smtp.clone(), config.mail_from.clone())?),
        None => Arc::new(FileSender::new(config.email_outbox_dir(), config.mail_from.clone())?),
    })
}

/// The SMS sender the configuration asks for: Twilio's Messages API, or JSON lines in a file.
pub fn sms_sender(config: &Config) -> anyhow::Result<Arc<dyn SmsSender>> {
    Ok(match &config.sms_api {
        Some(api) => {
            let callback = format!("{}{}", config.public_url, crate::domain::sms_status::STATUS_CALLBACK_PATH);
            Arc::new(TwilioSender::new(api, callback)?)
        }
        None => Arc::new(FileSmsSender::new(config.sms_outbox_file())?),
    })
}

/// The senders of every channel, as the configuration asks.
pub fn senders(
    config: &Config,
    db: Db,
    email: Arc<dyn EmailSender>,
    sms: Arc<dyn SmsSender>,
    unsubscribe_key: Vec<u8>,
    claim_key: Vec<u8>,
) -> anyhow::Result<Senders> {
    tracing::info!(email = %email.describe(), sms = %sms.describe(), "alert delivery");
    Ok(Senders::new(
        email,
        sms,
        db,
        config.public_url.to_string(),
        Keys { unsubscribe: unsubscribe_key, claim: claim_key },
    ))
}
