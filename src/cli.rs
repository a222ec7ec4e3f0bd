//! The command line (DESIGN.md §3): serve (default), demo, create-business, send-event,
//! check-config, backup, restore.
use std::io::BufRead;

use clap::{Parser, Subcommand};

use crate::clock::unix_now;
use crate::config::Config;
use crate::db::{self, businesses::NewBusiness};
use crate::dispatch::check;
use crate::domain::{EmailAddress, PersonName, PhoneNumber, Region, password};
use crate::startup::{Application, open_database};
use crate::{demo, tokens};

#[derive(Debug, Parser)]
#[command(name = "kaicalls-notify", version, about = "KaiCalls notification settings and alert delivery")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web server (the default).
    Serve,
    /// Run the web server with the seeded demo business "Acme Plumbing".
    Demo,
    /// Create a business and its owner; reads the owner's password from stdin, prints JSON.
    CreateBusiness {
        /// The business's name, as shown in the dashboard.
        #[arg(long)]
        name: String,
        /// The owner's email, used to sign in and as the first notification email.
        #[arg(long)]
        owner_email: String,
        /// The owner's name (defaults to the part of the email before the @).
        #[arg(long)]
        owner_name: Option<String>,
        /// Two-letter country code used to read national phone numbers.
        #[arg(long, default_value = "US")]
        region: String,
    },
    /// Check the settings before going live: every variable, the database, the mail server (a
    /// session, no mail) and the SMS API (its account, no text). Exits 1 if anything failed.
    CheckConfig {
        /// Also send a test email to this address.
        #[arg(long, value_name = "ADDRESS")]
        send_test_email: Option<String>,
        /// Also send a test text to this number (E.164, such as +15555550123).
        #[arg(long, value_name = "NUMBER")]
        send_test_sms: Option<String>,
    },
    /// Copy the live SQLite database to FILE (a consistent copy while the server runs), then
    /// check the copy opens and is whole. For PostgreSQL, use pg_dump.
    Backup {
        /// Where the copy goes; it must not exist yet.
        file: std::path::PathBuf,
    },
    /// Replace the SQLite database with a backup. Refuses while a server has the database
    /// open; the database it replaces is kept beside it.
    Restore {
        /// The backup to restore (made by `backup`).
        file: std::path::PathBuf,
    },
    /// Post one signed event to a webhook URL, as Kai would (a quick way to try alerts).
    SendEvent {
        /// The business's webhook URL (printed by `demo`).
        #[arg(long)]
        url: String,
        /// The business's webhook secret, `whsec_…`.
        #[arg(long)]
        secret: String,
        /// lead.created, lead.updated, usage.updated or billing.payment_failed.
        #[arg(long = "type", default_value = "lead.created")]
        event_type: String,
        /// The lead's score, 0 to 100 (lead events).
        #[arg(long, default_value_t = 82)]
        score: u8,
        /// The caller's name (lead events).
        #[arg(long, default_value = "Jane Doe")]
        name: String,
        /// Minutes used this period (usage events).
        #[arg(long, default_value_t = 460)]
        minutes_used: u64,
        /// Minutes included in the plan (usage events).
        #[arg(long, default_value_t = 500)]
        included_minutes: u64,
    },
}

/// What went wrong, as the one line the user sees; `Usage` errors exit with status 2.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

pub async fn run(cli: Cli, config: Config) -> Result<(), CliError> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config, false).await,
        Command::Demo => serve(config, true).await,
        Command::CreateBusiness { name, owner_email, owner_name, region } => {
            create_business(&config, &name, &owner_email, owner_name.as_deref(), &region).await
        }
        Command::Backup { file } => {
            let contents = db::backup::backup(&config.database_url, &file).await?;
            println!("Backed up to {}: {contents}.", file.display());
            Ok(())
        }
        Command::Restore { file } => {
            let (contents, kept) = db::backup::restore(&config.database_url, &file, unix_now()).await?;
            println!("Restored {}: {contents}.", file.display());
            if let Some(kept) = kept {
                println!("The database it replaced is kept as {}.", kept.display());
            }
            Ok(())
        }
        Command::CheckConfig { send_test_email, send_test_sms } => {
            check_config(&config, send_test_email.as_deref(), send_test_sms.as_deref()).await
        }
        Command::SendEvent { url, secret, event_type, score, name, minutes_used, included_minutes } => {
            let body = sample_event(&event_type, score, &name, minutes_used, included_minutes)?;
            send_event(&url, &secret, &body).await
        }
    }
}

/// One line per check, "✔", "!" (works, but check it) or "✘" with the fix; fails if any failed.
async fn check_config(config: &Config, email: Option<&str>, sms: Option<&str>) -> Result<(), CliError> {
    let email = email
        .map(|e| EmailAddress::parse(e).map_err(|m| CliError::Usage(format!("--send-test-email: {m}"))))
        .transpose()?;
    let sms = sms
        .map(|n| PhoneNumber::parse(n, Region::default()).map_err(|m| CliError::Usage(format!("--send-test-sms: {m}"))))
        .transpose()?;
    let database = match db::check(&config.database_url).await {
        Ok(text) => check::Line { mark: check::Mark::Passed, what: "Database", text },
        Err(text) => check::Line { mark: check::Mark::Failed, what: "Database", text },
    };
    let settings = check::Line {
        mark: check::Mark::Passed,
        what: "Settings",
        text: format!("every variable reads; listening on {}", config.bind),
    };
    let lines = [
        settings,
        database,
        check::smtp(config, email.as_ref()).await,
        check::sms(config, sms.as_ref()).await,
        check::public_url(config),
    ];
    for line in &lines {
        println!("{line}");
    }
    let failed = lines.iter().filter(|l| l.mark == check::Mark::Failed).count();
    match failed {
        0 => Ok(()),
        n => Err(CliError::Failed(anyhow::anyhow!("{n} check{} failed", if n == 1 { "" } else { "s" }))),
    }
}

async fn serve(config: Config, with_demo: bool) -> Result<(), CliError> {
    let public_url = config.public_url.clone();
    let (db, handover) = open_database(&config).await?;
    let logins = match with_demo {
        true => Some(demo::seed(&db).await?),
        false => None,
    };
    let app = Application::build_with(config, db, handover).await?;
    let login_url = public_url.join("login").map(|u| u.to_string()).unwrap_or_default();
    tracing::info!(port = app.port(), "listening");
    println!("KaiCalls Notifications is running at {login_url}");
    if let Some(logins) = logins {
        println!();
        println!("  Demo business   Acme Plumbing ({})", logins.business_id);
        println!("  Owner login     {} / {}", logins.owner_email, logins.password);
        println!("  Teammate login  {} / {}", logins.member_email, logins.password);
        println!("  Webhook URL     {}webhooks/kai/{}", public_url, logins.business_id);
        println!("  Webhook secret  {}", logins.webhook_secret);
        println!();
        println!("  Send a test lead:");
        println!(
            "    cargo run --release -- send-event --url {}webhooks/kai/{} --secret {}",
            public_url, logins.business_id, logins.webhook_secret
        );
        println!();
    }
    app.run_until_stopped().await.map_err(|e| CliError::Failed(e.into()))
}

async fn create_business(
    config: &Config,
    name: &str,
    owner_email: &str,
    owner_name: Option<&str>,
    region: &str,
) -> Result<(), CliError> {
    let business_name = PersonName::parse(name).map_err(|e| CliError::Usage(format!("--name: {e}")))?;
    let email = EmailAddress::parse(owner_email).map_err(|e| CliError::Usage(format!("--owner-email: {e}")))?;
    let region = Region::parse(region).map_err(|e| CliError::Usage(format!("--region: {e}")))?;
    let default_name = email.as_str().split('@').next().unwrap_or("Owner").to_owned();
    let owner_name = PersonName::parse(owner_name.unwrap_or(&default_name))
        .map_err(|e| CliError::Usage(format!("--owner-name: {e}")))?;

    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Usage(format!("could not read the owner's password from stdin: {e}")))?;
    let owner_password = line.trim_end_matches(['\r', '\n']).to_owned();
    if owner_password.is_empty() {
        return Err(CliError::Usage(
            "pipe the owner's password on stdin, e.g. echo 'a long password' | kaicalls-notify create-business ..."
                .into(),
        ));
    }
    password::check_new(&owner_password, &owner_password)
        .map_err(|e| CliError::Usage(format!("owner password: {e}")))?;
    let hash =
        tokio::task::spawn_blocking(move || password::hash(&owner_password)).await.map_err(anyhow::Error::from)??;

    let (db, _) = open_database(config).await?;
    let id = tokens::business_id();
    let secret = tokens::webhook_secret();
    let (new_id, new_secret, owner) = (id.clone(), secret.clone(), email.clone());
    let created = db
        .write(move |w| {
            Box::pin(async move {
                let new = NewBusiness {
                    id: &new_id,
                    name: business_name.as_str(),
                    region,
                    webhook_secret: &new_secret,
                    owner_name: &owner_name,
                    owner_email: &owner,
                    owner_password_hash: &hash,
                };
                db::businesses::create(w, new, unix_now()).await
            })
        })
        .await;
    match created {
        Ok(_) => {}
        Err(e) if db::is_unique_violation(&e) => {
            return Err(CliError::Usage(format!("--owner-email: {email} already has a KaiCalls account")));
        }
        Err(e) => return Err(CliError::Failed(e.into())),
    }
    println!("{}", serde_json::json!({ "business_id": id, "webhook_secret": secret }));
    Ok(())
}

/// A realistic event body of the given type.
fn sample_event(
    event_type: &str,
    score: u8,
    name: &str,
    minutes_used: u64,
    included: u64,
) -> Result<serde_json::Value, CliError> {
    let now = time::OffsetDateTime::now_utc();
    let at = now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let lead_id = format!("L-{}", &tokens::random_token()[..8]);
    let today = now.date();
    let first = today.replace_day(1).unwrap_or(today);
    use crate::domain::events::EventType;
    Ok(match EventType::from_name(event_type) {
        Some(EventType::LeadCreated | EventType::LeadUpdated) => serde_json::json!({"type": event_type, "data": {
            "lead_id": lead_id, "name": name, "phone": "+15555550100", "email": null, "score": score,
            "summary": "Burst pipe, wants a quote today", "occurred_at": at}}),
        Some(EventType::UsageUpdated) => serde_json::json!({"type": event_type, "data": {
            "minutes_used": minutes_used, "included_minutes": included,
            "period_start": first.to_string(), "period_end": today.to_string()}}),
        Some(EventType::PaymentFailed) => serde_json::json!({"type": event_type, "data": {
            "invoice_id": format!("in_{}", &tokens::random_token()[..8]), "amount_cents": 6900, "currency": "usd",
            "reason": "card_declined", "next_attempt_at": at}}),
        Some(EventType::Test | EventType::LeadEscalated) | None => {
            return Err(CliError::Usage(format!(
                "--type: {event_type} is not one of lead.created, lead.updated, usage.updated, billing.payment_failed"
            )));
        }
    })
}

async fn send_event(url: &str, secret: &str, body: &serde_json::Value) -> Result<(), CliError> {
    let url = url::Url::parse(url).map_err(|e| CliError::Usage(format!("--url: {url} is not a URL ({e})")))?;
    let key = crate::domain::webhook::secret_key(secret)
        .ok_or_else(|| CliError::Usage("--secret: not a webhook secret such as whsec_…".into()))?;
    let body = body.to_string();
    let id = format!("msg_{}", tokens::random_token());
    let ts = unix_now();
    let signature = crate::domain::webhook::sign(&key, &id, ts, body.as_bytes());
    let response = reqwest::Client::new()
        .post(url.clone())
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(|e| CliError::Failed(anyhow::anyhow!("could not reach {url}: {e}")))?;
    let status = response.status();
    let answer = response.text().await.unwrap_or_default();
    println!("{} {answer}", status.as_u16());
    if status.is_success() { Ok(()) } else { Err(CliError::Failed(anyhow::anyhow!("the webhook answered {status}"))) }
}
