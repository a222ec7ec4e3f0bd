//! `spawn_app()`: the real application on a random port with a fresh database, an SMTP listener,
//! and one helper per endpoint.
use std::sync::Arc;

use std::time::Duration;

use kaicalls_notify::clock::unix_now;
use kaicalls_notify::config::{Config, DispatchSettings};
use kaicalls_notify::db::{self, Db, businesses::NewBusiness, users::NewUser};
use kaicalls_notify::dispatch::Dispatcher;
use kaicalls_notify::domain::{EmailAddress, PersonName, PhoneNumber, Region, Role, password};
use kaicalls_notify::startup::Application;
use reqwest::header::HeaderMap;
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

use crate::smtp::SmtpServer;
use crate::twilio::{self, TwilioServer};

pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub address: String,
    /// The application's database handle (its writer, its readers).
    pub db: Db,
    /// A pool of the test's own on the same database (either engine), for checking what was
    /// stored.
    pub pool: AnyPool,
    pub dispatcher: Arc<Dispatcher>,
    pub smtp: SmtpServer,
    pub twilio: TwilioServer,
    pub dir: Arc<tempfile::TempDir>,
    password_hash: String,
}

pub struct Person {
    pub id: i64,
}

pub struct TestBusiness {
    pub id: String,
    pub owner: Person,
    pub secret: String,
}

/// A session key shared by every instance of a test (PostgreSQL requires one).
const SESSION_KEY: &str =
    "a2FpY2FsbHMtdGVzdC1zZXNzaW9uLWtleS1rYWljYWxscy10ZXN0LXNlc3Npb24ta2V5LWthaWNhbGxzLXRlc3Qtc2Vzc2lvbg==";

async fn config(dir: &std::path::Path, smtp_url: &str, twilio: &TwilioServer) -> Config {
    let vars = [
        ("DATABASE_URL", crate::engine::database_url(dir).await),
        ("SESSION_KEY", SESSION_KEY.to_owned()),
        ("KAI_BIND", "127.0.0.1:0".to_owned()),
        ("KAI_DATA_DIR", dir.display().to_string()),
        ("SMTP_URL", smtp_url.to_owned()),
        ("SMS_API_BASE", twilio.url()),
        ("SMS_ACCOUNT_SID", twilio::SID.to_owned()),
        ("SMS_AUTH_TOKEN", twilio::TOKEN.to_owned()),
        ("SMS_FROM", twilio::FROM.to_owned()),
        ("KAI_PUBLIC_URL", "http://kaicalls.test/".to_owned()),
    ];
    let mut config = Config::from_lookup(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())).unwrap();
    // Retries in tests come within a fraction of a second.
    config.dispatch = DispatchSettings {
        lease: Duration::from_secs(5),
        first_retry: Duration::from_millis(200),
        give_up_after: Duration::from_secs(3600),
        autorun: true,
    };
    config
}

pub async fn spawn_app() -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let smtp = SmtpServer::start().await;
    spawn_app_in(dir, smtp).await
}

/// Starts the application on an existing data folder, as a restart would.
pub async fn spawn_app_in(dir: Arc<tempfile::TempDir>, smtp: SmtpServer) -> TestApp {
    let twilio = TwilioServer::start().await;
    let url = smtp.url();
    spawn_with(dir, smtp, &url, twilio, |_| {}).await
}

/// The full form: any SMTP URL (one nobody listens on, say) and dispatcher settings.
pub async fn spawn_with(
    dir: Arc<tempfile::TempDir>,
    smtp: SmtpServer,
    smtp_url: &str,
    twilio: TwilioServer,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    // KAI_TEST_LOG=warn (any filter) shows the application's log in a test's output.
    if let Ok(filter) = std::env::var("KAI_TEST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
    let mut config = config(dir.path(), smtp_url, &twilio).await;
    adjust(&mut config);
    let database_url = config.database_url.clone();
    let app = Application::build(config).await.expect("the app starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let (db, dispatcher) = (app.db().clone(), app.dispatcher());
    tokio::spawn(app.run_until_stopped());
    let pool = any_pool(&database_url).await;
    let password_hash = password::hash(PASSWORD).unwrap();
    TestApp { address, db, pool, dispatcher, smtp, twilio, dir, password_hash }
}

/// A small pool on a database (either engine), for looking at what the application stored.
pub async fn any_pool(database_url: &str) -> AnyPool {
    sqlx::any::install_default_drivers();
    AnyPoolOptions::new().max_connections(2).connect(database_url).await.unwrap()
}

/// What the binary needs to run on a data folder's database (made first with `database_url`).
pub fn binary_env(dir: &std::path::Path) -> [(&'static str, String); 2] {
    [("DATABASE_URL", crate::engine::url_of(dir)), ("SESSION_KEY", SESSION_KEY.to_owned())]
}

/// The database URL of a data folder, on the engine the suite runs on (made if missing).
pub async fn database_url(dir: &std::path::Path) -> String {
    crate::engine::database_url(dir).await
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The value of the first `name="csrf_token"` field in a page.
pub fn csrf_in(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("the page has a csrf_token field") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

pub fn location(response: &reqwest::Response) -> String {
    response.headers().get("location").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn create_business(&self, name: &str, owner_email: &str) -> TestBusiness {
        let id = kaicalls_notify::tokens::business_id();
        let secret = kaicalls_notify::tokens::webhook_secret();
        let owner_name = PersonName::parse(&format!("{name} Owner")).unwrap();
        let email = EmailAddress::parse(owner_email).unwrap();
        let (new_id, new_secret, hash, name) =
            (id.clone(), secret.clone(), self.password_hash.clone(), name.to_owned());
        let owner_id = self
            .db
            .write(move |w| {
                Box::pin(async move {
                    let new = NewBusiness {
                        id: &new_id,
                        name: &name,
                        region: Region::default(),
                        webhook_secret: &new_secret,
                        owner_name: &owner_name,
                        owner_email: &email,
                        owner_password_hash: &hash,
                    };
                    db::businesses::create(w, new, unix_now()).await
                })
            })
            .await
            .unwrap();
        TestBusiness { id, owner: Person { id: owner_id }, secret }
    }

    pub async fn add_user(
        &self,
        business: &TestBusiness,
        name: &str,
        email: &str,
        phone: Option<&str>,
        role: Role,
    ) -> Person {
        let name = PersonName::parse(name).unwrap();
        let address = EmailAddress::parse(email).unwrap();
        let phone = phone.map(|p| PhoneNumber::parse(p, Region::default()).unwrap());
        let (business_id, hash) = (business.id.clone(), self.password_hash.clone());
        let id = self
            .db
            .write(move |w| {
                Box::pin(async move {
                    let new = NewUser {
                        business_id: &business_id,
                        name: &name,
                        email: &address,
                        phone: phone.as_ref(),
                        role,
                        password_hash: Some(&hash),
                    };
                    let id = db::users::insert(w, new, unix_now()).await?;
                    // A test team's numbers are known to be right (the confirmation flow has its own tests).
                    db::phone_codes::known_good(w, &business_id, unix_now()).await?;
                    Ok(id)
                })
            })
            .await
            .unwrap();
        Person { id }
    }

    /// Adds a team member to the notification recipients as `owner` would; answers the row id.
    pub async fn add_recipient(&self, owner: &reqwest::Client, user_id: i64) -> i64 {
        let added =
            self.post_form(owner, "/settings/notifications/recipients", &[("user_id", &user_id.to_string())]).await;
        assert_eq!(added.status(), 303, "adding user {user_id} as a recipient");
        self.recipient_id(user_id).await.expect("a recipient row")
    }

    /// The id of `user_id`'s recipient row.
    pub async fn recipient_id(&self, user_id: i64) -> Option<i64> {
        sqlx::query_scalar("SELECT id FROM recipients WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .unwrap()
    }

    pub async fn get(&self, client: &reqwest::Client, path: &str) -> reqwest::Response {
        client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_html(&self, client: &reqwest::Client, path: &str) -> String {
        self.get(client, path).await.text().await.unwrap()
    }

    /// A signed-in client for `email`.
    pub async fn login(&self, email: &str) -> reqwest::Client {
        let client = client();
        let response = self.login_with(&client, email, PASSWORD).await;
        assert_eq!(response.status(), 303, "sign-in of {email} failed");
        client
    }

    pub async fn login_with(&self, client: &reqwest::Client, email: &str, password: &str) -> reqwest::Response {
        let csrf = csrf_in(&self.get_html(client, "/login").await);
        client
            .post(self.url("/login"))
            .form(&[("email", email), ("password", password), ("csrf_token", &csrf)])
            .send()
            .await
            .unwrap()
    }

    /// Posts a form with the CSRF token of `token_page`.
    pub async fn post_form(&self, client: &reqwest::Client, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let csrf = csrf_in(&self.get_html(client, "/account").await);
        let mut body: Vec<(&str, &str)> = fields.to_vec();
        body.push(("csrf_token", &csrf));
        client.post(self.url(path)).form(&body).send().await.unwrap()
    }

    /// The same, as htmx sends it: token in `X-CSRF-Token`, `HX-Request: true`.
    pub async fn post_htmx(&self, client: &reqwest::Client, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let csrf = csrf_in(&self.get_html(client, "/account").await);
        let mut headers = HeaderMap::new();
        headers.insert("HX-Request", "true".parse().unwrap());
        headers.insert("X-CSRF-Token", csrf.parse().unwrap());
        client.post(self.url(path)).headers(headers).form(fields).send().await.unwrap()
    }

    pub async fn defaults(&self, business_id: &str) -> kaicalls_notify::domain::BusinessDefaults {
        db::defaults::of(&mut self.db.read().await.unwrap(), business_id).await.unwrap()
    }

    /// Counts the phones typed into the businesses' forms so far as confirmed, and forgets the
    /// codes texted to them (tests that are not about the confirmation flow skip typing the
    /// codes back).
    pub async fn phones_known_good(&self) {
        self.twilio.forget();
        let businesses: Vec<String> =
            sqlx::query_scalar("SELECT id FROM businesses").fetch_all(&self.pool).await.unwrap();
        for business in businesses {
            self.db
                .write(move |w| Box::pin(async move { db::phone_codes::known_good(w, &business, unix_now()).await }))
                .await
                .unwrap();
        }
    }

    pub async fn recipient(&self, business_id: &str, id: i64) -> Option<db::recipients::Recipient> {
        db::recipients::get(&mut self.db.read().await.unwrap(), business_id, id).await.unwrap()
    }
}

/// Every switch of the defaults form, on; remove entries to turn them off.
pub fn all_defaults_on<'a>() -> Vec<(&'a str, &'a str)> {
    vec![
        ("lead_created", "on"),
        ("lead_updated", "on"),
        ("usage_alerts", "on"),
        ("billing_alerts", "on"),
        ("email_enabled", "on"),
        ("sms_enabled", "on"),
        ("in_app_enabled", "on"),
    ]
}

impl TestApp {
    /// Posts a correctly signed event to the business's webhook.
    pub async fn post_event(
        &self,
        business: &TestBusiness,
        webhook_id: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.post_signed(&business.id, &business.secret, webhook_id, body.to_string().as_bytes()).await
    }

    pub async fn post_signed(
        &self,
        business_id: &str,
        secret: &str,
        webhook_id: &str,
        body: &[u8],
    ) -> reqwest::Response {
        signed_request(&self.address, business_id, secret, webhook_id, body).await
    }

    /// Waits (up to 10 s) until `sql` (a count) reaches `n`; answers the last count.
    pub async fn wait_count(&self, sql: &'static str, n: i64) -> i64 {
        let mut count = 0;
        for _ in 0..200 {
            count = sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap();
            if count >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        count
    }

    /// Every decision for an event: (person or "business", channel, status, reason).
    pub async fn decisions(&self, event_id: i64) -> Vec<(String, String, String, String)> {
        sqlx::query_as(
            "SELECT coalesce(person_name, 'business'), coalesce(channel, '-'), status, coalesce(reason, '')
             FROM deliveries WHERE event_id = $1 ORDER BY id",
        )
        .bind(event_id)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }
}

async fn signed_request(
    address: &str,
    business_id: &str,
    secret: &str,
    webhook_id: &str,
    body: &[u8],
) -> reqwest::Response {
    let ts = unix_now();
    let key = kaicalls_notify::domain::webhook::secret_key(secret).unwrap();
    let signature = kaicalls_notify::domain::webhook::sign(&key, webhook_id, ts, body);
    client()
        .post(format!("{address}/webhooks/kai/{business_id}"))
        .header("content-type", "application/json")
        .header("webhook-id", webhook_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

/// Posts a signed event from a spawned task (no `TestApp` borrow); answers the status.
pub async fn post_signed_to(
    address: &str,
    business_id: &str,
    secret: &str,
    webhook_id: &str,
    body: &serde_json::Value,
) -> reqwest::StatusCode {
    signed_request(address, business_id, secret, webhook_id, body.to_string().as_bytes()).await.status()
}

pub fn lead(lead_id: &str, score: Option<u8>) -> serde_json::Value {
    serde_json::json!({"type": "lead.created", "data": {"lead_id": lead_id, "name": "Jane Doe", "phone": "+15555550123",
        "email": null, "score": score, "summary": "Burst pipe, wants a quote today", "occurred_at": "2026-11-28T10:00:00Z"}})
}

pub fn usage(used: u64, included: u64, period_start: &str) -> serde_json::Value {
    serde_json::json!({"type": "usage.updated", "data": {"minutes_used": used, "included_minutes": included,
        "period_start": period_start, "period_end": "2026-12-31"}})
}
