//! Builds the application: database, senders, dispatcher, HTTP server on a bound listener.
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_session::SessionMiddleware;
use actix_session::config::{BrowserSession, TtlExtensionPolicy};
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::Server;
use actix_web::dev::Service;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::DefaultHeaders;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use base64::Engine;
use tracing::Instrument;

use crate::config::Config;
use crate::db::{self, Db, Handed, WriterSettings};
use crate::dispatch::{self, Dispatcher};
use crate::domain::password;
use crate::metrics::Metrics;
use crate::tokens;
use crate::web::hashing::Hasher;
use crate::web::{AppState, request_id, routes, throttle::LoginThrottle};

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// How long a stopping server lets requests in flight finish before it drops them.
const SHUTDOWN_GRACE: u64 = 5;

pub struct Application {
    port: u16,
    server: Server,
    db: Db,
    dispatcher: Arc<Dispatcher>,
    /// Set once the process is stopping: webhooks are refused with 503 from then on.
    stopping: Arc<AtomicBool>,
    /// How long sends under way may take to finish when stopping.
    grace: Duration,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let (db, handover) = open_database(&config).await?;
        Self::build_with(config, db, handover).await
    }

    /// Builds on a database opened already (the demo seeds it first).
    pub async fn build_with(config: Config, db: Db, handover: Handed) -> anyhow::Result<Self> {
        let session_key = session_key(&config, &db).await?;
        let unsubscribe_key = stored_key(&db, "unsubscribe_key").await?;
        let mailer = dispatch::email_sender(&config)?;
        // Claim links are signed with a key of their own, derived from the stored link key.
        let claim_key = tokens::derive_key(&unsubscribe_key, "claim links");
        let texter = dispatch::sms_sender(&config)?;
        let senders = dispatch::senders(
            &config,
            db.clone(),
            mailer.clone(),
            texter.clone(),
            unsubscribe_key.clone(),
            claim_key.clone(),
        )?;
        let metrics = Arc::new(Metrics::new());
        let dispatcher = Dispatcher::new(db.clone(), senders, config.dispatch.clone(), handover, metrics.clone());
        if config.dispatch.autorun {
            tokio::spawn(dispatcher.clone().run());
        }
        let hasher = Hasher::for_this_machine();
        let dummy_password_hash = hasher
            .run(|| password::hash(&tokens::random_token()))
            .await
            .map_err(|_| anyhow::anyhow!("the password hashing threads did not start"))??;

        let listener =
            TcpListener::bind(config.bind).with_context(|| format!("cannot listen on {} (KAI_BIND)", config.bind))?;
        let port = listener.local_addr()?.port();
        let key = Key::try_from(session_key.as_slice()).context("the session key must be at least 64 bytes")?;
        let stopping = Arc::new(AtomicBool::new(false));
        let grace = config.ops.shutdown_grace;
        let state = web::Data::new(AppState {
            db: db.clone(),
            config: Arc::new(config),
            mailer,
            texter,
            throttle: LoginThrottle::default(),
            hasher,
            dummy_password_hash,
            secrets: Default::default(),
            dispatcher: dispatcher.clone(),
            unsubscribe_key,
            claim_key,
            csrf_key: tokens::derive_key(&session_key, "forms before sign-in"),
            limits: Default::default(),
            metrics,
            stopping: stopping.clone(),
        });
        tokio::spawn(sweep_expired_sessions(db.clone()));
        tokio::spawn(keep_within_retention(db.clone(), state.config.ops.clone()));

        let store = db::sessions::SqliteSessionStore::new(db.clone());
        let trusted = state.config.trusted_proxies.clone();
        let server = HttpServer::new(move || {
            let trusted = trusted.clone();
            App::new()
                .wrap(
                    SessionMiddleware::builder(store.clone(), key.clone())
                        .cookie_name("kai_session".into())
                        .cookie_secure(true)
                        .cookie_http_only(true)
                        .cookie_same_site(SameSite::Lax)
                        .session_lifecycle(
                            BrowserSession::default()
                                .state_ttl(actix_web::cookie::time::Duration::hours(24))
                                .state_ttl_extension_policy(TtlExtensionPolicy::OnEveryRequest),
                        )
                        .build(),
                )
                .wrap(
                    DefaultHeaders::new()
                        .add(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
                        .add(("X-Content-Type-Options", "nosniff"))
                        .add(("Referrer-Policy", "same-origin"))
                        .add(("X-Frame-Options", "DENY"))
                        .add(("Cache-Control", "no-store")),
                )
                .app_data(state.clone())
                .configure(routes)
                .default_service(web::to(not_found))
                // Outermost: the id covers the sessions' and every handler's log lines.
                .wrap_fn(move |req, srv| {
                    let id = request_id::of(&req, &trusted);
                    let span = tracing::info_span!("request", request_id = %id, method = %req.method());
                    let call = span.in_scope(|| srv.call(req));
                    async move {
                        let mut response = call.await?;
                        if let Ok(value) = HeaderValue::from_str(&id) {
                            response.headers_mut().insert(HeaderName::from_static(request_id::HEADER), value);
                        }
                        Ok(response)
                    }
                    .instrument(span)
                })
        })
        .shutdown_timeout(SHUTDOWN_GRACE)
        // Stopping is ours (see `run_until_stopped`): sends are drained before the server goes.
        .disable_signals()
        .listen(listener)?
        .run();
        Ok(Self { port, server, db, dispatcher, stopping, grace })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The dispatcher, for tests that drive it themselves (`DispatchSettings::autorun = false`).
    pub fn dispatcher(&self) -> Arc<Dispatcher> {
        self.dispatcher.clone()
    }

    /// Serves until SIGTERM or SIGINT, then stops without dropping or doubling an alert:
    /// webhooks are refused (503 with Retry-After: Kai sends them again), the sends under way
    /// finish (at most the grace, `KAI_SHUTDOWN_GRACE_SECS`), the deliveries taken and not
    /// started are given back for the next start, and the pages in flight get a few seconds.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let mut server = tokio::spawn(self.server);
        tokio::select! {
            ended = &mut server => return ended.unwrap_or(Ok(())),
            _ = stop_signal() => {}
        }
        tracing::info!(grace_secs = self.grace.as_secs(), "stopping: webhooks refused, sends under way finishing");
        self.stopping.store(true, Ordering::SeqCst);
        let drained = self.dispatcher.drain(self.grace).await;
        tracing::info!(
            given_back = drained.given_back,
            cut_off = drained.cut_off,
            "sends drained; deliveries not started were given back"
        );
        handle.stop(true).await;
        server.await.unwrap_or(Ok(()))
    }
}

/// Waits for SIGTERM or SIGINT (forever, where signals cannot be listened to).
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

/// Opens the configured database and starts its writer.
pub async fn open_database(config: &Config) -> anyhow::Result<(Db, Handed)> {
    db::open(
        &config.database_url,
        WriterSettings {
            lease: config.dispatch.lease,
            pool_size: config.database.pool_size,
            statement_timeout: config.database.statement_timeout,
        },
    )
    .await
}

async fn not_found() -> HttpResponse {
    actix_web::ResponseError::error_response(&crate::web::error::AppError::NotFound)
}

/// A random key generated on first start and kept in the database.
async fn stored_key(db: &Db, name: &'static str) -> anyhow::Result<Vec<u8>> {
    let fresh = tokens::session_key();
    let stored =
        db.write(move |w| Box::pin(async move { db::app_settings::get_or_insert(w, name, &fresh).await })).await?;
    base64::engine::general_purpose::STANDARD.decode(stored).with_context(|| format!("the stored {name} is not base64"))
}

/// The cookie signing key: `SESSION_KEY` if set, else one generated on first start and stored.
async fn session_key(config: &Config, db: &Db) -> anyhow::Result<Vec<u8>> {
    match &config.session_key {
        Some(bytes) => Ok(bytes.clone()),
        None => stored_key(db, "session_key").await,
    }
}

/// Deletes what is older than the retention, a minute after start and then every hour, in
/// small batches with pauses between them (webhooks and sends go first).
async fn keep_within_retention(db: Db, ops: crate::config::OpsSettings) {
    tokio::time::sleep(Duration::from_secs(60)).await;
    let mut every_hour = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every_hour.tick().await;
        let cutoffs =
            db::retention::Cutoffs::at(crate::clock::unix_now_ms(), ops.retention_days, ops.audit_retention_days);
        match db::retention::prune_all(&db, cutoffs, Duration::from_millis(50)).await {
            Ok(d) if d.total() > 0 => tracing::info!(
                events = d.events,
                deliveries = d.deliveries,
                inbox = d.inbox,
                texts_back = d.texts_back,
                audit = d.audit,
                "deleted what is older than the retention"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention: could not delete old rows; trying again in an hour"),
        }
    }
}

async fn sweep_expired_sessions(db: Db) {
    let mut every_hour = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every_hour.tick().await;
        match db.write(|w| Box::pin(db::sessions::delete_expired(w))).await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "expired sessions removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not remove expired sessions"),
        }
    }
}
