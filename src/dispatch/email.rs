//! Email senders: SMTP through lettre when `SMTP_URL` is set, otherwise `.eml` files.
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::domain::EmailAddress;

/// An email ready to go: plain text and HTML versions of the same message.
#[derive(Debug, Clone)]
pub struct OutgoingEmail {
    pub to: EmailAddress,
    pub to_name: Option<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Stable per delivery, so a retried send is recognisably the same message.
    pub message_id: Option<String>,
    /// One-click unsubscribe link (RFC 8058) for alerts to a person.
    pub unsubscribe_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// Worth trying again later: connection refused, timeout, 4xx reply.
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help: the server refused the message for good (5xx), a bad address.
    #[error("{0}")]
    Permanent(String),
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), EmailError>> + Send + 'a>>;

pub trait EmailSender: Send + Sync {
    fn send(&self, email: OutgoingEmail) -> SendFuture<'_>;
    /// Where mail goes, for the start-up log ("SMTP 127.0.0.1:2525", "files in ./data/outbox/email").
    fn describe(&self) -> String;
}

fn build(from: &Mailbox, email: &OutgoingEmail) -> Result<Message, EmailError> {
    let to = Mailbox::new(
        email.to_name.clone(),
        email
            .to
            .as_str()
            .parse()
            .map_err(|e| EmailError::Permanent(format!("{} is not a deliverable address: {e}", email.to)))?,
    );
    let mut builder =
        Message::builder().from(from.clone()).to(to).subject(&email.subject).message_id(email.message_id.clone());
    if let Some(url) = &email.unsubscribe_url {
        builder = builder
            .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("List-Unsubscribe"), format!("<{url}>")))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".into(),
            ));
    }
    builder
        .multipart(MultiPart::alternative_plain_html(email.text.clone(), email.html.clone()))
        .map_err(|e| EmailError::Permanent(format!("the message could not be built: {e}")))
}

pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    url_for_log: String,
}

impl SmtpSender {
    pub fn new(smtp_url: &str, from: Mailbox) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)?
            .timeout(Some(Duration::from_secs(15)))
            .pool_config(lettre::transport::smtp::PoolConfig::new().max_size(32))
            .build();
        let url_for_log = url::Url::parse(smtp_url)
            .map(|u| format!("{}://{}:{}", u.scheme(), u.host_str().unwrap_or(""), u.port().unwrap_or(0)))
            .unwrap_or_else(|_| "SMTP".into());
        Ok(Self { transport, from, url_for_log })
    }
}

impl EmailSender for SmtpSender {
    fn send(&self, email: OutgoingEmail) -> SendFuture<'_> {
        Box::pin(async move {
            let message = build(&self.from, &email)?;
            self.transport.send(message).await.map(|_| ()).map_err(|e| {
                let hint = if e.to_string().contains("tls") || e.to_string().contains("TLS") {
                    " (check that SMTP_URL uses smtps:// for port 465 and smtp://…?tls=required for STARTTLS on 587)"
                } else {
                    ""
                };
                let text = format!("the mail server at {} said: {e}{hint}", self.url_for_log);
                if e.is_permanent() { EmailError::Permanent(text) } else { EmailError::Transient(text) }
            })
        })
    }

    fn describe(&self) -> String {
        format!("SMTP at {}", self.url_for_log)
    }
}

pub struct FileSender {
    transport: AsyncFileTransport<Tokio1Executor>,
    dir: PathBuf,
    from: Mailbox,
}

impl FileSender {
    pub fn new(dir: PathBuf, from: Mailbox) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| anyhow::anyhow!("cannot create the email outbox {}: {e}", dir.display()))?;
        Ok(Self { transport: AsyncFileTransport::new(&dir), dir, from })
    }
}

impl EmailSender for FileSender {
    fn send(&self, email: OutgoingEmail) -> SendFuture<'_> {
        Box::pin(async move {
            let message = build(&self.from, &email)?;
            self.transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| EmailError::Transient(format!("could not write to {}: {e}", self.dir.display())))
        })
    }

    fn describe(&self) -> String {
        format!(".eml files in {}", self.dir.display())
    }
}
