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
