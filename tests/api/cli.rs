use std::io::Write;
use std::process::{Command, Stdio};

use kaicalls_notify::db;

const BIN: &str = env!("CARGO_BIN_EXE_kaicalls-notify");

#[tokio::test]
async fn create_business_reads_the_password_from_stdin_and_prints_json() {
    let dir = tempfile::tempdir().unwrap();
    let url = crate::helpers::database_url(dir.path()).await;
    let mut child = Command::new(BIN)
        .args(["create-business", "--name", "Bright Dental", "--owner-email", "dr@bright.test"])
        .env("KAI_DATA_DIR", dir.path())
        .envs(crate::helpers::binary_env(dir.path()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"a very long password\n").unwrap();
    let output = child.wait_with_output().unwrap();

    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let id = json["business_id"].as_str().unwrap();
    let secret = json["webhook_secret"].as_str().unwrap();
    assert!(id.starts_with("biz_"));
    assert!(secret.starts_with("whsec_"));
    let (db, _handed) = db::open(&url, db::WriterSettings::new(std::time::Duration::from_secs(60))).await.unwrap();
    let mut conn = db.read().await.unwrap();
    let business = db::businesses::get(&mut conn, id).await.unwrap().unwrap();
    assert_eq!(business.name, "Bright Dental");
    assert_eq!(business.webhook_secret, secret);
    let (owner, hash) = db::users::find_for_login(&mut conn, "dr@bright.test").await.unwrap().unwrap();
    assert!(kaicalls_notify::domain::password::verify("a very long password", &hash));
    assert_eq!(owner.business_id, id);
}

#[test]
fn create_business_refuses_bad_input_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: &[u8]| {
        let mut child = Command::new(BIN)
            .args(args)
            .env("KAI_DATA_DIR", dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    };

    let bad_email = run(&["create-business", "--name", "X", "--owner-email", "nope"], b"a very long password\n");
    assert_eq!(bad_email.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_email.stderr).contains("--owner-email: “nope” is not a valid email address"));

    let short = run(&["create-business", "--name", "X", "--owner-email", "x@x.test"], b"short\n");
    assert_eq!(short.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&short.stderr).contains("owner password: Use at least 10 characters"));

    let empty = run(&["create-business", "--name", "X", "--owner-email", "x@x.test"], b"");
    assert_eq!(empty.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&empty.stderr).contains("pipe the owner's password on stdin"));
}

#[test]
fn a_bad_environment_variable_stops_start_up_naming_it() {
    for (var, value) in [("KAI_BIND", "port eighty"), ("SMTP_URL", "mail server"), ("RUST_LOG", "info,[")] {
        let output = Command::new(BIN).arg("serve").env(var, value).stdin(Stdio::null()).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{var}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{var}: {stderr}");
        assert!(stderr.starts_with(&format!("error: {var}: ")), "{stderr}");
    }
}

#[tokio::test]
async fn the_demo_seed_can_run_again_on_the_same_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = crate::helpers::database_url(dir.path()).await;
    let (demo_db, _handover) =
        db::open(&url, db::WriterSettings::new(std::time::Duration::from_secs(60))).await.unwrap();

    let first = kaicalls_notify::demo::seed(&demo_db).await.unwrap();
    let second = kaicalls_notify::demo::seed(&demo_db).await.unwrap();
    let mut conn = demo_db.read().await.unwrap();

    assert_eq!(first.business_id, second.business_id);
    assert_eq!(first.webhook_secret, second.webhook_secret);
    let team = db::users::list_active(&mut conn, &first.business_id).await.unwrap();
    assert_eq!(team.len(), 5, "an owner, an admin and three members");
    assert_eq!(team.iter().filter(|u| u.phone.is_some() && u.role == kaicalls_notify::domain::Role::Member).count(), 3);
    let recipients = db::recipients::list(&mut conn, &first.business_id).await.unwrap();
    assert_eq!(recipients.len(), 2);
    assert_ne!(recipients[0].prefs.min_lead_score, recipients[1].prefs.min_lead_score);
    let (_, hash) = db::users::find_for_login(&mut conn, &second.owner_email).await.unwrap().unwrap();
    assert!(kaicalls_notify::domain::password::verify(&second.password, &hash), "the printed password works");
}

#[test]
fn an_unreachable_postgres_stops_start_up_with_one_line_that_keeps_the_password_secret() {
    let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 64]);
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let output = Command::new(BIN)
        .arg("serve")
        .env("DATABASE_URL", format!("postgres://kai:hunter2@127.0.0.1:{nobody}/kaicalls"))
        .env("SESSION_KEY", key)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: cannot connect to PostgreSQL at postgres://kai:***@127.0.0.1:{nobody}/"))
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// Runs `check-config` with these variables (and a fresh data folder); answers its exit code
/// and what it printed.
fn check_config(vars: &[(&str, String)], args: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .arg("check-config")
        .args(args)
        .env_clear()
        .env("KAI_DATA_DIR", dir.path())
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.code(), text)
}

fn twilio_vars(twilio: &crate::twilio::TwilioServer, token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SMS_API_BASE", twilio.url()),
        ("SMS_ACCOUNT_SID", crate::twilio::SID.to_owned()),
        ("SMS_AUTH_TOKEN", token.to_owned()),
        ("SMS_FROM", crate::twilio::FROM.to_owned()),
        ("KAI_PUBLIC_URL", "https://alerts.acme.test/".to_owned()),
    ]
}

#[tokio::test]
async fn check_config_passes_with_good_settings_and_sends_only_what_it_is_asked_to() {
    let smtp = crate::smtp::SmtpServer::start_with_login("alerts", "right horse battery").await;
    let twilio = crate::twilio::TwilioServer::start().await;
    let mut vars = twilio_vars(&twilio, crate::twilio::TOKEN);
    vars.push(("SMTP_URL", format!("smtp://alerts:right%20horse%20battery@127.0.0.1:{}", smtp.port)));
    let vars2 = vars.clone();
    let (code, out) = tokio::task::spawn_blocking(move || check_config(&vars2, &[])).await.unwrap();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("\u{2714} Settings: every variable reads"), "{out}");
    assert!(out.contains("\u{2714} Database: SQLite at"), "{out}");
    assert!(
        out.contains(&format!(
            "\u{2714} SMTP: smtp://127.0.0.1:{} accepted a session without TLS, signed in as alerts",
            smtp.port
        )),
        "{out}"
    );
    assert!(out.contains("\u{2714} SMS: ") && out.contains("knows the account Test account (active)"), "{out}");
    assert!(out.contains("\u{2714} Public URL: links in alerts start with https://alerts.acme.test/"), "{out}");
    assert!(smtp.messages().is_empty() && twilio.received().is_empty(), "nothing sent unless asked");

    let args = ["--send-test-email", "owner@acme.test", "--send-test-sms", "+15555550123"];
    let (code, out) = tokio::task::spawn_blocking(move || check_config(&vars, &args)).await.unwrap();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("a test email went to owner@acme.test"), "{out}");
    assert!(out.contains("a test text went to +15555550123"), "{out}");
    assert_eq!(smtp.messages().len(), 1);
    assert_eq!(twilio.received().len(), 1);
    assert_eq!(twilio.received()[0].to, "+15555550123");
}

#[tokio::test]
async fn check_config_names_each_failure_with_its_fix_and_fails() {
    let smtp = crate::smtp::SmtpServer::start_with_login("alerts", "right horse battery").await;
    let twilio = crate::twilio::TwilioServer::start().await;
    let mut vars = twilio_vars(&twilio, "not-the-token");
    vars.push(("SMTP_URL", format!("smtp://alerts:wrong@127.0.0.1:{}", smtp.port)));
    let (code, out) = tokio::task::spawn_blocking(move || check_config(&vars, &[])).await.unwrap();
    assert_eq!(code, Some(1), "{out}");
    let smtp_line = out.lines().find(|l| l.starts_with("\u{2718} SMTP:")).unwrap_or_else(|| panic!("{out}"));
    assert!(
        smtp_line.contains("535") && smtp_line.contains("fix: the user name or password in SMTP_URL is wrong"),
        "{smtp_line}"
    );
    let sms_line = out.lines().find(|l| l.starts_with("\u{2718} SMS:")).unwrap_or_else(|| panic!("{out}"));
    assert!(sms_line.contains("refused the credentials (401)") && sms_line.contains("SMS_AUTH_TOKEN"), "{sms_line}");
    assert!(out.contains("2 checks failed"), "{out}");

    // Nothing listens on the port; no SMS settings: texts go to a file (a warning, not a failure).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let vars = [("SMTP_URL", format!("smtp://127.0.0.1:{closed}"))];
    let (code, out) = tokio::task::spawn_blocking(move || check_config(&vars, &[])).await.unwrap();
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(&format!("fix: nothing listens on 127.0.0.1:{closed}")), "{out}");
    assert!(out.contains("! SMS: SMS_API_BASE and the rest are not set"), "{out}");
    assert!(out.contains("! Public URL: http://127.0.0.1:8080/"), "{out}");

    // A bad variable is the first failed check.
    let vars = [("KAI_BIND", "everywhere".to_owned())];
    let (code, out) = tokio::task::spawn_blocking(move || check_config(&vars, &[])).await.unwrap();
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("\u{2718} Settings: KAI_BIND: \u{201c}everywhere\u{201d} is not an address"), "{out}");
    let vars = [("KAI_LOG_FORMAT", "xml".to_owned())];
    let (code, out) = tokio::task::spawn_blocking(move || check_config(&vars, &[])).await.unwrap();
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("KAI_LOG_FORMAT: \u{201c}xml\u{201d} is not a log format: use text or json"), "{out}");
}
