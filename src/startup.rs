//! Builds the application: database, senders, HTTP server on a bound listener.
use std::net::TcpListener;
use std::sync::Arc;

use actix_session::SessionMiddleware;
use actix_session::config::{BrowserSession, TtlExtensionPolicy};
use actix_web::cookie::{Key, SameSite, time::Duration};
use actix_web::dev::Server;
use actix_web::middleware::DefaultHeaders;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use base64::Engine;
use sqlx::SqlitePool;

use crate::config::Config;
use crate::db;
use crate::db::writer::IngestQueue;
use crate::dispatch::email::{EmailSender, FileSender, SmtpSender};
use crate::dispatch::sms::{FileSmsSender, SmsSender, TwilioSender};
use crate::dispatch::worker::Dispatcher;
use crate::domain::password;
use crate::tokens;
use crate::web::{AppState, routes, throttle::LoginThrottle};
use tokio::sync::Notify;

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

pub struct Application {
    port: u16,
    server: Server,
    pool: SqlitePool,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let pool = db::connect(&config.database_url).await?;
        Self::build_with_pool(config, pool).await
    }

    pub async fn build_with_pool(config: Config, pool: SqlitePool) -> anyhow::Result<Self> {
        let key = session_key(&config, &pool).await?;
        let mailer: Arc<dyn EmailSender> = match &config.smtp_url {
            Some(url) => Arc::new(SmtpSender::new(url, config.mail_from.clone())?),
            None => Arc::new(FileSender::new(config.email_outbox_dir(), config.mail_from.clone())?),
        };
        tracing::info!(email = %mailer.describe(), "email delivery");
        let dummy_password_hash = tokio::task::spawn_blocking(|| password::hash(&tokens::random_token())).await??;
        let sms: Arc<dyn SmsSender> = match &config.sms_api {
            Some(api) => Arc::new(TwilioSender::new(api)?),
            None => Arc::new(FileSmsSender::new(config.sms_outbox_file())?),
        };
        tracing::info!(sms = %sms.describe(), "SMS delivery");
        let unsubscribe_key = base64::engine::general_purpose::STANDARD
            .decode(db::app_settings::get_or_insert(&pool, "unsubscribe_key", &tokens::session_key()).await?)
            .context("the stored unsubscribe key is not base64")?;
        let wake = Arc::new(Notify::new());
        let ingest = IngestQueue::start(pool.clone(), wake.clone());
        let dispatcher = Dispatcher::new(
            pool.clone(),
            wake.clone(),
            mailer.clone(),
            sms,
            config.dispatch.clone(),
            config.public_url.to_string(),
            unsubscribe_key.clone(),
        );
        tokio::spawn(dispatcher.run());

        let listener =
            TcpListener::bind(config.bind).with_context(|| format!("cannot listen on {} (KAI_BIND)", config.bind))?;
        let port = listener.local_addr()?.port();
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            config: Arc::new(config),
            mailer,
            throttle: LoginThrottle::default(),
            dummy_password_hash,
            ingest,
            secrets: Default::default(),
            wake_dispatcher: wake,
            unsubscribe_key,
        });
        tokio::spawn(sweep_expired_sessions(pool.clone()));
        tokio::spawn(db::checkpoint_loop(pool.clone()));

        let store = db::sessions::SqliteSessionStore::new(pool.clone());
        let server = HttpServer::new(move || {
            App::new()
                .wrap(
                    SessionMiddleware::builder(store.clone(), key.clone())
                        .cookie_name("kai_session".into())
                        .cookie_secure(true)
                        .cookie_http_only(true)
                        .cookie_same_site(SameSite::Lax)
                        .session_lifecycle(
                            BrowserSession::default()
                                .state_ttl(Duration::hours(24))
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
        })
        .listen(listener)?
        .run();
        Ok(Self { port, server, pool })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

async fn not_found() -> HttpResponse {
    actix_web::ResponseError::error_response(&crate::web::error::AppError::NotFound)
}

/// The cookie signing key: `SESSION_KEY` if set, else one generated on first start and stored.
async fn session_key(config: &Config, pool: &SqlitePool) -> anyhow::Result<Key> {
    let bytes = match &config.session_key {
        Some(bytes) => bytes.clone(),
        None => {
            let stored = db::app_settings::get_or_insert(pool, "session_key", &tokens::session_key()).await?;
            base64::engine::general_purpose::STANDARD.decode(stored).context("the stored session key is not base64")?
        }
    };
    Key::try_from(bytes.as_slice()).context("the session key must be at least 64 bytes")
}

async fn sweep_expired_sessions(pool: SqlitePool) {
    let mut every_hour = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every_hour.tick().await;
        match db::sessions::delete_expired(&pool).await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "expired sessions removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not remove expired sessions"),
        }
    }
}
