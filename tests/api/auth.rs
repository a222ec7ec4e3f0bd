use kaicalls_notify::db;
use kaicalls_notify::domain::Role;

use crate::helpers::{PASSWORD, client, csrf_in, location, spawn_app};

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("kai_session="))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

#[tokio::test]
async fn an_owner_signs_in_and_lands_on_the_notifications_page() {
    let app = spawn_app().await;
    app.create_business("Acme Plumbing", "owner@acme.test").await;
    let client = client();

    let response = app.login_with(&client, "owner@acme.test", PASSWORD).await;

    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap_or_default());
    assert_eq!(location(&response), "/", "a person lands on the Dashboard");
    let page = app.get_html(&client, "/settings/notifications").await;
    assert!(page.contains("Acme Plumbing"));
    assert!(page.contains("Business defaults"));
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer() {
    let app = spawn_app().await;
    app.create_business("Acme", "owner@acme.test").await;
    let client = client();

    let wrong = app.login_with(&client, "owner@acme.test", "not the password").await;
    let wrong_status = wrong.status();
    let wrong_body = wrong.text().await.unwrap().replace("owner@acme.test", "EMAIL");
    let unknown = app.login_with(&client, "nobody@acme.test", "not the password").await;
    let unknown_status = unknown.status();
    let unknown_body = unknown.text().await.unwrap().replace("nobody@acme.test", "EMAIL");

    assert_eq!(wrong_status, 401);
    assert_eq!(unknown_status, 401);
    assert_eq!(wrong_body, unknown_body);
    assert!(wrong_body.contains("That email and password do not match an account."));
    assert!(wrong_body.contains("value=\"EMAIL\""), "the email is kept in the form");
}

#[tokio::test]
async fn repeated_failures_are_slowed_down_with_retry_after() {
    let app = spawn_app().await;
    app.create_business("Acme", "owner@acme.test").await;
    let client = client();

    for _ in 0..5 {
        assert_eq!(app.login_with(&client, "owner@acme.test", "guess").await.status(), 401);
    }
    let throttled = app.login_with(&client, "owner@acme.test", PASSWORD).await;

    assert_eq!(throttled.status(), 429);
    let retry_after: u64 = throttled.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    assert!(throttled.text().await.unwrap().contains("Too many sign-in attempts"));
}

#[tokio::test]
async fn the_sign_in_form_starts_no_session_and_a_planted_session_id_is_not_adopted() {
    let app = spawn_app().await;
    app.create_business("Acme", "owner@acme.test").await;
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let planted = "kai_session=planted-by-someone-else; Path=/";
    jar.add_cookie_str(planted, &app.address.parse().unwrap());
    let client =
        reqwest::Client::builder().cookie_provider(jar).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login_page = client.get(app.url("/login")).send().await.unwrap();
    assert!(session_cookie(&login_page).is_none(), "the sign-in page sets no session cookie");
    let csrf = csrf_in(&login_page.text().await.unwrap());

    let response = client
        .post(app.url("/login"))
        .form(&[("email", "owner@acme.test"), ("password", PASSWORD), ("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 303);
    let after = session_cookie(&response).expect("sign-in sets a new session cookie");
    assert!(!after.contains("planted-by-someone-else"));
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions").fetch_one(&app.pool).await.unwrap();
    assert_eq!(sessions, 1, "one session, made at sign-in");
    let old = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let with_old = old.get(app.url("/settings/notifications")).header("cookie", planted).send().await.unwrap();
    assert_eq!(with_old.status(), 303, "the planted id does not carry the sign-in");
}

#[tokio::test]
async fn after_sign_out_the_old_cookie_no_longer_works() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let client = client();
    let signed_in = app.login_with(&client, "owner@acme.test", PASSWORD).await;
    let cookie = session_cookie(&signed_in).unwrap();
    let raw = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = raw.get(app.url("/settings/notifications")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), 200);

    let out = app.post_form(&client, "/logout", &[]).await;

    assert_eq!(out.status(), 303);
    assert_eq!(location(&out), "/login?signed_out=1");
    let page = raw.get(app.url("/settings/notifications")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), 303);
    assert_eq!(location(&page), "/login");
    assert_eq!(db::sessions::count_for_user(&mut app.db.read().await.unwrap(), business.owner.id).await.unwrap(), 0);
}

#[tokio::test]
async fn signing_out_needs_the_token_but_an_ended_session_just_goes_to_sign_in() {
    let app = spawn_app().await;
    app.create_business("Acme", "owner@acme.test").await;
    let client = app.login("owner@acme.test").await;

    let forged = client.post(app.url("/logout")).form(&[("csrf_token", "forged")]).send().await.unwrap();
    assert_eq!(forged.status(), 403, "a cross-site sign-out is refused");
    assert_eq!(app.get(&client, "/account").await.status(), 200, "still signed in");

    let stale_tab =
        crate::helpers::client().post(app.url("/logout")).form(&[("csrf_token", "old")]).send().await.unwrap();
    assert_eq!(stale_tab.status(), 303);
    assert_eq!(location(&stale_tab), "/login?signed_out=1");
}

#[tokio::test]
async fn htmx_requests_without_a_session_are_told_to_go_to_login() {
    let app = spawn_app().await;

    let response = client()
        .post(app.url("/settings/notifications/defaults"))
        .header("HX-Request", "true")
        .form(&[("lead_created", "on")])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["hx-redirect"], "/login");
    let page = client().get(app.url("/team")).send().await.unwrap();
    assert_eq!(page.status(), 303);
    assert_eq!(location(&page), "/login");
}

#[tokio::test]
async fn changing_a_password_ends_the_other_sessions_but_keeps_this_one() {
    let app = spawn_app().await;
    app.create_business("Acme", "owner@acme.test").await;
    let laptop = app.login("owner@acme.test").await;
    let phone = app.login("owner@acme.test").await;

    let response = app
        .post_form(
            &laptop,
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "a brand new secret"),
                ("confirm_password", "a brand new secret"),
            ],
        )
        .await;

    assert_eq!(response.status(), 303);
    assert_eq!(app.get(&laptop, "/account").await.status(), 200);
    assert_eq!(app.get(&phone, "/account").await.status(), 303, "the other device is signed out");
    let again = client();
    assert_eq!(app.login_with(&again, "owner@acme.test", "a brand new secret").await.status(), 303);
}

#[tokio::test]
async fn a_wrong_current_password_changes_nothing() {
    let app = spawn_app().await;
    app.create_business("Acme", "owner@acme.test").await;
    let client = app.login("owner@acme.test").await;

    let response = app
        .post_form(
            &client,
            "/account/password",
            &[
                ("current_password", "wrong one!!"),
                ("new_password", "a brand new secret"),
                ("confirm_password", "a brand new secret"),
            ],
        )
        .await;

    assert_eq!(response.status(), 422);
    assert!(response.text().await.unwrap().contains("Your current password is not right."));
    assert_eq!(app.login_with(&crate::helpers::client(), "owner@acme.test", PASSWORD).await.status(), 303);
}

#[tokio::test]
async fn a_removed_member_is_signed_out_at_once() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let sam = app.add_user(&business, "Sam", "sam@acme.test", None, Role::Member).await;
    let owner = app.login("owner@acme.test").await;
    let member = app.login("sam@acme.test").await;
    assert_eq!(app.get(&member, "/settings/notifications").await.status(), 200);

    let response = app.post_form(&owner, &format!("/team/members/{}/remove", sam.id), &[]).await;

    assert_eq!(response.status(), 303);
    assert_eq!(app.get(&member, "/settings/notifications").await.status(), 303);
    assert_eq!(app.login_with(&crate::helpers::client(), "sam@acme.test", PASSWORD).await.status(), 401);
}

/// A client whose requests say, as a load balancer would, that they come from `address`.
fn forwarded_client(address: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", address.parse().unwrap());
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

#[tokio::test]
async fn behind_a_trusted_load_balancer_each_client_is_slowed_down_on_its_own_address() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let smtp = crate::smtp::SmtpServer::start().await;
    let twilio = crate::twilio::TwilioServer::start().await;
    let url = smtp.url();
    let app = crate::helpers::spawn_with(dir, smtp, &url, twilio, |c| {
        c.trusted_proxies = vec![std::net::IpAddr::from([127, 0, 0, 1])];
    })
    .await;
    app.create_business("Acme", "owner@acme.test").await;

    // One client guesses at many accounts (each account stays under its own limit).
    let guesser = forwarded_client("203.0.113.7");
    for i in 0..20 {
        let answer = app.login_with(&guesser, &format!("person{i}@acme.test"), "guess").await;
        assert_eq!(answer.status(), 401);
    }
    assert_eq!(app.login_with(&guesser, "owner@acme.test", PASSWORD).await.status(), 429, "that address must wait");

    // The owner, through the same load balancer from another address, is not held up.
    let owner = forwarded_client("198.51.100.9");
    assert_eq!(app.login_with(&owner, "owner@acme.test", PASSWORD).await.status(), 303);
}
