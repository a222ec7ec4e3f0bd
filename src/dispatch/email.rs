//! Email senders: SMTP when `SMTP_URL` is set, otherwise `.eml` files.
//!
//! The SMTP sender keeps its own small pool of connections, each on a socket with `TCP_NODELAY`.
//! lettre writes a message's body and its closing `.` in two writes; on a socket with Nagle's
//! algorithm on, the second waits for the server's delayed ACK (about 40 ms on Linux) — a delay
//! on every email that lettre's own transport gives no way to turn off.
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::config::{SmtpSettings, SmtpTls};
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

/// Connections open at once (and sends in flight) at most.
const CONNECTIONS: usize = 32;
/// An idle connection is reused this long; the server may have closed an older one.
const REUSE_FOR: Duration = Duration::from_secs(30);
const TIMEOUT: Duration = Duration::from_secs(15);

pub struct SmtpSender {
    settings: SmtpSettings,
    from: Mailbox,
    hello: ClientId,
    tls: Option<Arc<rustls::ClientConfig>>,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    slots: Semaphore,
}

impl SmtpSender {
    pub fn new(settings: SmtpSettings, from: Mailbox) -> anyhow::Result<Self> {
        let tls = match settings.tls {
            SmtpTls::Wrapper => Some(Arc::new(tls_config()?)),
            _ => None,
        };
        let hello = settings.hello_name.clone().map(ClientId::Domain).unwrap_or_default();
        Ok(Self { settings, from, hello, tls, idle: Mutex::new(Vec::new()), slots: Semaphore::new(CONNECTIONS) })
    }

    fn problem(&self, e: impl std::fmt::Display) -> String {
        let text = e.to_string();
        let hint = if text.to_lowercase().contains("tls") {
            " (check that SMTP_URL uses smtps:// for port 465 and smtp://…?tls=required for STARTTLS on 587)"
        } else {
            ""
        };
        format!("the mail server at {} said: {text}{hint}", self.settings.describe())
    }

    fn classify(&self, e: lettre::transport::smtp::Error) -> EmailError {
        if e.is_permanent() { EmailError::Permanent(self.problem(e)) } else { EmailError::Transient(self.problem(e)) }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, EmailError> {
        let address = (self.settings.host.as_str(), self.settings.port);
        let tcp = TcpStream::connect(address).await.map_err(|e| EmailError::Transient(self.problem(e)))?;
        tcp.set_nodelay(true).map_err(|e| EmailError::Transient(self.problem(e)))?;
        let stream: Box<dyn AsyncTokioStream> = match &self.tls {
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(self.settings.host.clone())
                    .map_err(|e| EmailError::Permanent(self.problem(e)))?;
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| EmailError::Transient(self.problem(format!("TLS: {e}"))))?;
                Box::new(TlsTcp(tls))
            }
            None => Box::new(tcp),
        };
        let mut conn =
            AsyncSmtpConnection::connect_with_transport(stream, &self.hello).await.map_err(|e| self.classify(e))?;
        if let SmtpTls::StartTls { required } = self.settings.tls {
            if conn.can_starttls() {
                let params = TlsParameters::new(self.settings.host.clone()).map_err(|e| self.classify(e))?;
                conn.starttls(params, &self.hello).await.map_err(|e| self.classify(e))?;
            } else if required {
                return Err(EmailError::Permanent(self.problem("the server does not offer STARTTLS (tls=required)")));
            }
        }
        if let Some((user, password)) = &self.settings.credentials {
            let credentials = Credentials::new(user.clone(), password.clone());
            conn.auth(&[Mechanism::Plain, Mechanism::Login], &credentials).await.map_err(|e| self.classify(e))?;
        }
        Ok(conn)
    }

    /// For `check-config`: opens a session as a send does (TCP, TLS or STARTTLS, EHLO, login),
    /// then says goodbye. Answers what the server accepted, or what went wrong.
    pub async fn check(&self) -> Result<String, String> {
        let mut conn = match tokio::time::timeout(Duration::from_secs(10), self.connect()).await {
            Err(_) => return Err(format!("no answer from {} within 10 s", self.settings.describe())),
            Ok(Err(EmailError::Transient(e) | EmailError::Permanent(e))) => return Err(e),
            Ok(Ok(conn)) => conn,
        };
        let _ = conn.quit().await;
        let tls = match self.settings.tls {
            SmtpTls::None => "without TLS",
            SmtpTls::StartTls { .. } => "with STARTTLS",
            SmtpTls::Wrapper => "over TLS",
        };
        let login = match &self.settings.credentials {
            Some((user, _)) => format!(", signed in as {user}"),
            None => String::new(),
        };
        Ok(format!("{} accepted a session {tls}{login}", self.settings.describe()))
    }

    fn take_idle(&self) -> Option<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((conn, since)) = idle.pop() {
            if since.elapsed() < REUSE_FOR && !conn.has_broken() {
                return Some(conn);
            }
        }
        None
    }

    fn put_back(&self, conn: AsyncSmtpConnection) {
        if !conn.has_broken() {
            self.idle.lock().unwrap_or_else(|e| e.into_inner()).push((conn, Instant::now()));
        }
    }

    async fn send_on(
        &self,
        conn: &mut AsyncSmtpConnection,
        message: &Message,
    ) -> Result<(), lettre::transport::smtp::Error> {
        conn.send(message.envelope(), &message.formatted()).await.map(|_| ())
    }
}

impl EmailSender for SmtpSender {
    fn send(&self, email: OutgoingEmail) -> SendFuture<'_> {
        Box::pin(async move {
            let message = build(&self.from, &email)?;
            let _slot = self.slots.acquire().await.map_err(|_| EmailError::Transient("shutting down".into()))?;
            let timed_out = || EmailError::Transient(self.problem("no answer within 15 seconds"));
            if let Some(mut conn) = self.take_idle() {
                match tokio::time::timeout(TIMEOUT, self.send_on(&mut conn, &message)).await {
                    Ok(Ok(())) => {
                        self.put_back(conn);
                        return Ok(());
                    }
                    // The server replied: that is the answer for this message.
                    Ok(Err(e)) if e.is_permanent() || e.is_transient() => return Err(self.classify(e)),
                    // The connection went stale while idle (the server closed it): use a new one.
                    Ok(Err(_)) => {}
                    Err(_) => return Err(timed_out()),
                }
            }
            let mut conn = tokio::time::timeout(TIMEOUT, self.connect()).await.map_err(|_| timed_out())??;
            match tokio::time::timeout(TIMEOUT, self.send_on(&mut conn, &message)).await {
                Ok(Ok(())) => {
                    self.put_back(conn);
                    Ok(())
                }
                Ok(Err(e)) => Err(self.classify(e)),
                Err(_) => Err(timed_out()),
            }
        })
    }

    fn describe(&self) -> String {
        format!("SMTP at {}", self.settings.describe())
    }
}

/// The TLS client settings lettre uses: rustls with the platform's certificate verifier.
fn tls_config() -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone())?;
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// A TLS stream over our own socket, in the form lettre's connection takes.
#[derive(Debug)]
struct TlsTcp(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncTokioStream for TlsTcp {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for TlsTcp {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsTcp {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
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
