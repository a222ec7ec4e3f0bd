//! `spawn_app()`: the real application on a random port with a fresh database, an SMTP listener,
//! and one helper per endpoint.
use std::sync::Arc;

use kaicalls_notify::clock::unix_now;
use kaicalls_notify::config::Config;
use kaicalls_notify::db::{self, businesses::NewBusiness, users::NewUser};
use kaicalls_notify::domain::{EmailAddress, PersonName, PhoneNumber, Region, Role, password};
use kaicalls_notify::startup::Application;
use reqwest::header::HeaderMap;
use sqlx::SqlitePool;

use crate::smtp::SmtpServer;

pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub address: String,
    pub pool: SqlitePool,
    pub smtp: SmtpServer,
    pub dir: Arc<tempfile::TempDir>,
    password_hash: String,
}

pub struct Person {
    pub id: i64,
}

pub struct TestBusiness {
    pub id: String,
    pub owner: Person,
}

fn config(dir: &std::path::Path, smtp: &SmtpServer) -> Config {
    let vars = [
        ("KAI_BIND", "127.0.0.1:0".to_owned()),
        ("KAI_DATA_DIR", dir.display().to_string()),
        ("SMTP_URL", smtp.url()),
    ];
    Config::from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
    .unwrap()
}

pub async fn spawn_app() -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let smtp = SmtpServer::start().await;
    spawn_app_in(dir, smtp).await
}

/// Starts the application on an existing data folder, as a restart would.
pub async fn spawn_app_in(dir: Arc<tempfile::TempDir>, smtp: SmtpServer) -> TestApp {
    let app = Application::build(config(dir.path(), &smtp))
        .await
        .expect("the app starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let pool = app.pool().clone();
    tokio::spawn(app.run_until_stopped());
    let password_hash = password::hash(PASSWORD).unwrap();
    TestApp {
        address,
        pool,
        smtp,
        dir,
        password_hash,
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of the first `name="csrf_token"` field in a page.
pub fn csrf_in(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("the page has a csrf_token field") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn create_business(&self, name: &str, owner_email: &str) -> TestBusiness {
        let id = kaicalls_notify::tokens::business_id();
        let owner_name = PersonName::parse(&format!("{name} Owner")).unwrap();
        let email = EmailAddress::parse(owner_email).unwrap();
        let mut tx = db::begin_write(&self.pool).await.unwrap();
        let owner_id = db::businesses::create(
            &mut tx,
            NewBusiness {
                id: &id,
                name,
                region: Region::default(),
                webhook_secret: &kaicalls_notify::tokens::webhook_secret(),
                owner_name: &owner_name,
                owner_email: &email,
                owner_password_hash: &self.password_hash,
            },
            unix_now(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        TestBusiness {
            id,
            owner: Person { id: owner_id },
        }
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
        let mut tx = db::begin_write(&self.pool).await.unwrap();
        let new = NewUser {
            business_id: &business.id,
            name: &name,
            email: &address,
            phone: phone.as_ref(),
            role,
            password_hash: Some(&self.password_hash),
        };
        let id = db::users::insert(&mut tx, new, unix_now()).await.unwrap();
        tx.commit().await.unwrap();
        Person { id }
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

    pub async fn login_with(
        &self,
        client: &reqwest::Client,
        email: &str,
        password: &str,
    ) -> reqwest::Response {
        let csrf = csrf_in(&self.get_html(client, "/login").await);
        client
            .post(self.url("/login"))
            .form(&[
                ("email", email),
                ("password", password),
                ("csrf_token", &csrf),
            ])
            .send()
            .await
            .unwrap()
    }

    /// Posts a form with the CSRF token of `token_page`.
    pub async fn post_form(
        &self,
        client: &reqwest::Client,
        path: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let csrf = csrf_in(&self.get_html(client, "/account").await);
        let mut body: Vec<(&str, &str)> = fields.to_vec();
        body.push(("csrf_token", &csrf));
        client
            .post(self.url(path))
            .form(&body)
            .send()
            .await
            .unwrap()
    }

    /// The same, as htmx sends it: token in `X-CSRF-Token`, `HX-Request: true`.
    pub async fn post_htmx(
        &self,
        client: &reqwest::Client,
        path: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let csrf = csrf_in(&self.get_html(client, "/account").await);
        let mut headers = HeaderMap::new();
        headers.insert("HX-Request", "true".parse().unwrap());
        headers.insert("X-CSRF-Token", csrf.parse().unwrap());
        client
            .post(self.url(path))
            .headers(headers)
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    pub async fn defaults(&self, business_id: &str) -> kaicalls_notify::domain::BusinessDefaults {
        db::defaults::get(&self.pool, business_id).await.unwrap()
    }

    pub async fn recipient(&self, business_id: &str, id: i64) -> Option<db::recipients::Recipient> {
        db::recipients::get(&self.pool, business_id, id)
            .await
            .unwrap()
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
