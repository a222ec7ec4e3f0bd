use kaicalls_notify::domain::Role;

use crate::helpers::{TestApp, TestBusiness, all_defaults_on, csrf_in, spawn_app};

#[tokio::test]
async fn state_changes_without_or_with_a_wrong_csrf_token_are_refused() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let client = app.login("owner@acme.test").await;
    let before = app.defaults(&business.id).await;

    let missing =
        client.post(app.url("/settings/notifications/defaults")).form(&[("action", "save")]).send().await.unwrap();
    let wrong = client
        .post(app.url("/settings/notifications/defaults"))
        .form(&[("action", "save"), ("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    let wrong_header = client
        .post(app.url("/settings/notifications/defaults"))
        .header("X-CSRF-Token", "forged")
        .form(&[("action", "save")])
        .send()
        .await
        .unwrap();

    assert_eq!(missing.status(), 403);
    assert!(missing.text().await.unwrap().contains("security token is missing"));
    assert_eq!(wrong.status(), 403);
    assert!(wrong.text().await.unwrap().contains("out of date or wrong"));
    assert_eq!(wrong_header.status(), 403);
    assert_eq!(app.defaults(&business.id).await, before, "nothing changed");
}

#[tokio::test]
async fn the_login_form_needs_its_token_too() {
    let app = spawn_app().await;
    app.create_business("Acme", "owner@acme.test").await;

    let response = crate::helpers::client()
        .post(app.url("/login"))
        .form(&[("email", "owner@acme.test"), ("password", crate::helpers::PASSWORD)])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn requests_from_another_site_are_refused_even_with_a_token() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let client = app.login("owner@acme.test").await;
    let csrf = csrf_in(&app.get_html(&client, "/account").await);
    let before = app.defaults(&business.id).await;

    let foreign_origin = client
        .post(app.url("/settings/notifications/defaults"))
        .header("Origin", "https://evil.example")
        .form(&[("action", "save"), ("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    let cross_site = client
        .post(app.url("/settings/notifications/defaults"))
        .header("Sec-Fetch-Site", "cross-site")
        .form(&[("action", "save"), ("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();

    assert_eq!(foreign_origin.status(), 403);
    assert!(foreign_origin.text().await.unwrap().contains("came from another website"));
    assert_eq!(cross_site.status(), 403);
    assert_eq!(app.defaults(&business.id).await, before);
}

#[tokio::test]
async fn pages_send_a_strict_content_security_policy_and_safe_headers() {
    let app = spawn_app().await;
    app.create_business("Acme", "owner@acme.test").await;
    let client = app.login("owner@acme.test").await;

    for path in ["/login", "/settings/notifications", "/team", "/account", "/no-such-page"] {
        let response = app.get(&client, path).await;
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("form-action 'self'"), "{path}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert!(headers.contains_key("referrer-policy"), "{path}");
    }
    let login = crate::helpers::client().get(app.url("/login")).send().await.unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("kai_form="), "the sign-in form's token cookie, not a session: {cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("Secure") && cookie.contains("SameSite=Strict"), "{cookie}");
    let signed_in = app.login_with(&crate::helpers::client(), "owner@acme.test", crate::helpers::PASSWORD).await;
    let session = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("kai_session="))
        .expect("a session cookie at sign-in");
    assert!(
        session.contains("HttpOnly") && session.contains("Secure") && session.contains("SameSite=Lax"),
        "{session}"
    );
}

#[tokio::test]
async fn pages_never_inline_scripts_or_styles() {
    let app = spawn_app().await;
    app.create_business("Acme", "owner@acme.test").await;
    let client = app.login("owner@acme.test").await;

    for path in ["/settings/notifications", "/team", "/account"] {
        let html = app.get_html(&client, path).await;
        assert!(!html.contains("style="), "{path} has an inline style");
        assert!(!html.contains("<script>") && !html.contains("onclick") && !html.contains("hx-on"), "{path}");
        assert!(html.contains("/static/htmx-2.0.11.min.js"), "{path}");
    }
    let htmx = app.get(&client, "/static/htmx-2.0.11.min.js").await;
    assert_eq!(htmx.status(), 200);
    assert!(htmx.headers()["content-type"].to_str().unwrap().contains("javascript"));
}

/// Two businesses, each with an owner and a member who is a recipient.
struct World {
    a: TestBusiness,
    a_member: i64,
    a_owner_recipient: i64,
    b: TestBusiness,
    b_member: i64,
    b_member_recipient: i64,
}

async fn world(app: &TestApp) -> World {
    let a = app.create_business("Acme", "owner@acme.test").await;
    let b = app.create_business("Bravo", "owner@bravo.test").await;
    let a_member = app.add_user(&a, "Ann", "ann@acme.test", Some("(555) 555-0101"), Role::Member).await.id;
    let b_member = app.add_user(&b, "Ben", "ben@bravo.test", Some("(555) 555-0102"), Role::Member).await.id;
    let b_owner = app.login("owner@bravo.test").await;
    app.add_recipient(&b_owner, b_member).await;
    let a_owner = app.login("owner@acme.test").await;
    app.add_recipient(&a_owner, a_member).await;
    World {
        a_owner_recipient: app.recipient_id(a.owner.id).await.unwrap(),
        b_member_recipient: app.recipient_id(b_member).await.unwrap(),
        a,
        a_member,
        b,
        b_member,
    }
}

/// A snapshot of everything the routes below could change.
async fn snapshot(app: &TestApp) -> String {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT 'r' || id, CAST(user_id AS TEXT) || CAST(email_enabled AS TEXT) || CAST(sms_enabled AS TEXT)
             || CAST(in_app_enabled AS TEXT) || CAST(lead_created AS TEXT) || CAST(min_lead_score AS TEXT) FROM recipients
         UNION ALL SELECT 'u' || id, coalesce(CAST(removed_at AS TEXT), '-') || name FROM users
         UNION ALL SELECT 'd' || business_id, CAST(lead_created AS TEXT) || CAST(sms_enabled AS TEXT)
             || coalesce(notification_phone, '-') FROM notification_defaults
         ORDER BY 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    format!("{rows:?}")
}

#[tokio::test]
async fn another_business_ids_answer_404_for_owners_and_members() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let before = snapshot(&app).await;

    for email in ["owner@acme.test", "ann@acme.test"] {
        let client = app.login(email).await;
        let attempts = [
            (format!("/settings/notifications/recipients/{}", w.b_member_recipient), vec![("min_lead_score", "5")]),
            (format!("/settings/notifications/recipients/{}/remove", w.b_member_recipient), vec![]),
            (format!("/team/members/{}/remove", w.b_member), vec![]),
        ];
        for (path, fields) in attempts {
            let response = app.post_form(&client, &path, &fields).await;
            assert_eq!(response.status(), 404, "{email} {path}");
        }
        let row = w.b_member_recipient.to_string();
        let score = format!("r{row}-min_lead_score");
        let grid =
            app.post_form(&client, "/settings/notifications/recipients/save", &[("row", &row), (&score, "5")]).await;
        assert_eq!(
            grid.headers()["location"],
            "/settings/notifications?saved=unchanged#recipients",
            "{email}: another business's row is not in the grid"
        );
        if email.starts_with("owner") {
            let b_member = w.b_member.to_string();
            let response =
                app.post_form(&client, "/settings/notifications/recipients", &[("user_id", &b_member)]).await;
            assert_eq!(response.status(), 404, "adding another business's person");
        }
        let page = app.get_html(&client, "/settings/notifications").await;
        assert!(!page.contains("Bravo") && !page.contains("ben@bravo.test"), "{email} sees nothing of Bravo");
        let team = app.get_html(&client, "/team").await;
        assert!(!team.contains("ben@bravo.test"));
    }

    assert_eq!(snapshot(&app).await, before, "nothing changed in either business");
    let _ = (&w.a, &w.b);
}

#[tokio::test]
async fn members_are_refused_owner_actions_with_403() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let member = app.login("ann@acme.test").await;
    let before = snapshot(&app).await;
    let a_owner = w.a.owner.id.to_string();
    let owner_row = w.a_owner_recipient.to_string();
    let owner_score = format!("r{owner_row}-min_lead_score");

    let attempts: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/settings/notifications/defaults".into(), all_defaults_on()),
        ("/settings/notifications/recipients".into(), vec![("user_id", a_owner.as_str())]),
        (format!("/settings/notifications/recipients/{}", w.a_owner_recipient), vec![("min_lead_score", "99")]),
        (format!("/settings/notifications/recipients/{}/remove", w.a_owner_recipient), vec![]),
        ("/settings/notifications/recipients/save".into(), vec![("row", &owner_row), (&owner_score, "99")]),
        ("/team/members".into(), vec![("name", "Eve"), ("email", "eve@acme.test"), ("role", "admin")]),
        (format!("/team/members/{}/remove", w.a.owner.id), vec![]),
    ];
    for (path, fields) in &attempts {
        let response = app.post_form(&member, path, fields).await;
        assert_eq!(response.status(), 403, "{path}");
        let body = response.text().await.unwrap();
        assert!(body.contains("Only owners and admins") || body.contains("only change your own"), "{path}: {body}");
    }
    for (path, fields) in &attempts {
        assert_eq!(app.post_htmx(&member, path, fields).await.status(), 403, "htmx {path}");
    }

    assert_eq!(snapshot(&app).await, before);
    let _ = w.a_member;
}

#[tokio::test]
async fn every_page_opens_for_owners_and_members() {
    let app = spawn_app().await;
    let _w = world(&app).await;
    for email in ["owner@acme.test", "ann@acme.test", "owner@bravo.test", "ben@bravo.test"] {
        let client = app.login(email).await;
        for path in ["/", "/settings/notifications", "/settings/notifications/log", "/team", "/account"] {
            assert_eq!(app.get(&client, path).await.status(), 200, "{email} {path}");
        }
    }
}

#[tokio::test]
async fn health_check_answers_200() {
    let app = spawn_app().await;
    let response = crate::helpers::client().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let engine = if crate::ENGINE == crate::engine::Engine::Sqlite { "SQLite" } else { "PostgreSQL" };
    assert_eq!(response.text().await.unwrap(), format!("ok: {engine} answers"), "it names the database it checked");
}
