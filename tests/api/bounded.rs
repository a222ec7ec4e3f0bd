//! Bounded work under size and abuse: sign-in bursts, anonymous floods, rate limits, a year of
//! history, a log that shrinks back.
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kaicalls_notify::domain::Role;

use crate::helpers::{PASSWORD, TestApp, client, csrf_in, lead, spawn_app};
use crate::history::{self, History};

/// A client whose requests come from `address` (any 127.x.y.z reaches the server on loopback).
fn client_from(address: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(address)
        .build()
        .unwrap()
}

/// Signs in with a wrong password from `address` (the form first, for its token); answers the
/// status.
async fn wrong_password(app_url: String, email: &'static str, address: IpAddr) -> u16 {
    let client = client_from(address);
    let form = client.get(format!("{app_url}/login")).send().await.unwrap().text().await.unwrap();
    let csrf = csrf_in(&form);
    let body = [("email", email), ("password", "not the password"), ("csrf_token", csrf.as_str())];
    client.post(format!("{app_url}/login")).form(&body).send().await.unwrap().status().as_u16()
}

async fn burst(app: &TestApp, email: &'static str, addresses: impl Iterator<Item = IpAddr>) -> (usize, usize) {
    let tasks: Vec<_> = addresses.map(|a| tokio::spawn(wrong_password(app.address.clone(), email, a))).collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked + throttled, statuses.len(), "{statuses:?}");
    (checked, throttled)
}

#[tokio::test]
async fn sixty_concurrent_wrong_passwords_are_checked_at_most_the_budget() {
    let app = spawn_app().await;
    app.create_business("Acme", "owner@acme.test").await;

    // From sixty addresses at once: the account's budget of five holds.
    let (checked, throttled) = burst(&app, "owner@acme.test", (2..62).map(|i| IpAddr::from([127, 0, 0, i]))).await;
    assert!(checked <= 5, "{checked} passwords were checked");
    assert!(throttled >= 55);

    // From one address, sixty guesses spread over sixty accounts that do not exist: the
    // address's budget of twenty holds.
    let one: IpAddr = [127, 0, 1, 1].into();
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let email: &'static str = Box::leak(format!("nobody{i}@acme.test").into_boxed_str());
            tokio::spawn(wrong_password(app.address.clone(), email, one))
        })
        .collect();
    let mut checked = 0;
    for t in tasks {
        checked += usize::from(t.await.unwrap() == 401);
    }
    assert!(checked <= 20, "{checked} passwords were checked from one address");

    // The real owner, from another address, is slowed down, never locked out: after the wait
    // the answer names, the right password works.
    let owner = client_from([127, 0, 2, 1].into());
    let mut answer = app.login_with(&owner, "owner@acme.test", PASSWORD).await;
    if answer.status() == 429 {
        let wait: u64 = answer.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=900).contains(&wait), "{wait}");
        tokio::time::sleep(Duration::from_secs(wait)).await;
        answer = app.login_with(&owner, "owner@acme.test", PASSWORD).await;
    }
    assert_eq!(answer.status(), 303);
}

#[tokio::test]
async fn a_thousand_anonymous_visits_store_no_session() {
    let app = spawn_app().await;
    app.create_business("Acme", "owner@acme.test").await;

    let visitors: Vec<_> = (0..10)
        .map(|_| {
            let base = app.address.clone();
            tokio::spawn(async move {
                for i in 0..100 {
                    let fresh = client();
                    let path = if i % 2 == 0 { "/login".to_owned() } else { format!("/invite/not-a-real-token-{i}") };
                    let status = fresh.get(format!("{base}{path}")).send().await.unwrap().status().as_u16();
                    assert!(status == 200 || status == 404, "{path}: {status}");
                }
            })
        })
        .collect();
    for v in visitors {
        v.await.unwrap();
    }

    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions").fetch_one(&app.pool).await.unwrap();
    assert_eq!(sessions, 0);
    // And the form still works for the visitor who does sign in.
    let signed_in = app.login("owner@acme.test").await;
    assert_eq!(app.get(&signed_in, "/settings/notifications").await.status(), 200);
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions").fetch_one(&app.pool).await.unwrap();
    assert_eq!(sessions, 1);
}

#[tokio::test]
async fn a_sign_in_form_without_its_cookie_is_refused() {
    let app = spawn_app().await;
    app.create_business("Acme", "owner@acme.test").await;
    let token = csrf_in(&app.get_html(&client(), "/login").await);

    // The token of someone else's form, sent without the cookie it belongs to.
    let forged = client()
        .post(app.url("/login"))
        .form(&[("email", "owner@acme.test"), ("password", PASSWORD), ("csrf_token", &token)])
        .send()
        .await
        .unwrap();

    assert_eq!(forged.status(), 403);
    assert!(forged.text().await.unwrap().contains("security token"));
}

#[tokio::test]
async fn test_alerts_are_limited_per_person_per_minute() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    let row = app.recipient_id(business.owner.id).await.unwrap();
    let path = format!("/settings/notifications/recipients/{row}/test");

    for _ in 0..3 {
        assert_eq!(app.post_form(&owner, &path, &[]).await.status(), 303);
    }
    let fourth = app.post_form(&owner, &path, &[]).await;

    assert_eq!(fourth.status(), 429);
    let wait: u64 = fourth.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((50..=60).contains(&wait), "{wait}");
    let text = fourth.text().await.unwrap();
    assert!(text.contains("3 test alerts to your channels in the last minute is the most we send. Wait"), "{text}");
    app.smtp.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.smtp.messages().len(), 3, "three test emails, not four");
}

#[tokio::test]
async fn invitations_are_limited_per_business_per_hour() {
    let app = spawn_app().await;
    app.create_business("Acme", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;

    for i in 0..20 {
        let email = format!("person{i}@acme.test");
        let added =
            app.post_form(&owner, "/team/members", &[("name", "Person"), ("email", &email), ("role", "member")]).await;
        assert_eq!(added.status(), 200, "invitation {i}");
    }
    let extra = app
        .post_form(&owner, "/team/members", &[("name", "One More"), ("email", "more@acme.test"), ("role", "member")])
        .await;

    assert_eq!(extra.status(), 429);
    assert!(extra.headers().contains_key("retry-after"));
    let page = extra.text().await.unwrap();
    assert!(page.contains("20 invitations an hour is the most we send for a business."), "{page}");
    assert!(page.contains("value=\"more@acme.test\""), "the form keeps what was typed");
    let invited: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE password_hash IS NULL")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(invited, 20);
}

#[tokio::test]
async fn adding_someone_with_an_account_elsewhere_does_not_say_so_and_they_learn_it_themselves() {
    let app = spawn_app().await;
    app.create_business("Acme", "owner@acme.test").await;
    app.create_business("Bright Dental", "dr@bright.test").await;
    let owner = app.login("owner@acme.test").await;

    let added = app
        .post_form(&owner, "/team/members", &[("name", "Dr Bright"), ("email", "dr@bright.test"), ("role", "member")])
        .await;

    assert_eq!(added.status(), 200);
    let page = added.text().await.unwrap();
    assert!(page.contains("Added Dr Bright to the team."));
    assert!(!page.contains("already"), "nothing tells Acme that this email uses KaiCalls");
    let link = page.split("/invite/").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let invitee = client();
    let form = app.get_html(&invitee, &format!("/invite/{link}")).await;
    let accept = invitee
        .post(app.url(&format!("/invite/{link}")))
        .form(&[
            ("password", "a fresh long password"),
            ("confirm_password", "a fresh long password"),
            ("csrf_token", &csrf_in(&form)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(accept.status(), 409);
    assert!(
        accept.text().await.unwrap().contains("dr@bright.test already has a KaiCalls account with another business")
    );
    let bright = app.login("dr@bright.test").await;
    assert_eq!(app.get(&bright, "/settings/notifications").await.status(), 200, "their own account is untouched");
}

#[tokio::test]
async fn every_page_answers_for_a_business_with_a_year_of_history() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let small = History { teammates: 15, leads: 2_000, deliveries_per_event: 7, inbox: 1_000 };
    history::add(&app.db, &business.id, business.owner.id, small).await.unwrap();
    let owner = app.login("owner@acme.test").await;

    let leads = app.get_html(&owner, "/leads").await;
    assert!(leads.contains("2000 leads"), "the count comes from the business row");
    let older = leads.split("href=\"/leads?older=").nth(1).expect("a link to older leads").split('"').next().unwrap();
    let page_two = app.get_html(&owner, &format!("/leads?older={}", older.replace("&amp;", "&"))).await;
    assert!(page_two.contains("href=\"/leads?newer="), "page two links back to newer leads");
    assert!(!page_two.contains(leads.split("<tbody>").nth(1).unwrap().split("</tr>").next().unwrap()), "a new page");
    let bad = app.get(&owner, "/leads?older=yesterday").await;
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("This page link is not valid"));
    for path in ["/settings/notifications", "/notifications", "/billing", "/team", "/account", "/notifications/bell"] {
        assert_eq!(app.get(&owner, path).await.status(), 200, "{path}");
    }
    let bell = app.get_html(&owner, "/notifications/bell").await;
    assert!(bell.contains(">30<"), "thirty unread of a thousand: {bell}");
    let notifications = app.get_html(&owner, "/settings/notifications").await;
    assert!(notifications.contains("Teammate 15"), "fifteen teammates are recipients");
}

#[tokio::test]
async fn a_webhook_is_accepted_within_a_second_while_eight_page_readers_run() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let member = app.add_user(&business, "Sam", "sam@acme.test", None, Role::Member).await;
    history::add(&app.db, &business.id, member.id, History::YEAR).await.unwrap();
    let readers = Arc::new(tokio::sync::Notify::new());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let reader = app.login(if i % 2 == 0 { "owner@acme.test" } else { "sam@acme.test" }).await;
        let (base, stop, started) = (app.address.clone(), stop.clone(), readers.clone());
        tasks.push(tokio::spawn(async move {
            let paths = ["/leads", "/settings/notifications", "/billing", "/notifications", "/team"];
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let status = reader.get(format!("{base}{}", paths[n % paths.len()])).send().await.unwrap().status();
                assert!(status.is_success(), "{status}");
                n += 1;
                started.notify_one();
            }
            n
        }));
    }
    readers.notified().await;

    let mut slowest = Duration::ZERO;
    for i in 0..10 {
        let started = Instant::now();
        let response = app.post_event(&business, &format!("during-{i}"), &lead(&format!("D-{i}"), Some(80))).await;
        assert_eq!(response.status(), 202);
        slowest = slowest.max(started.elapsed());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut pages = 0;
    for t in tasks {
        pages += t.await.unwrap();
    }

    assert!(pages >= 8, "the readers were busy ({pages} pages)");
    assert!(slowest < Duration::from_secs(1), "a webhook took {slowest:?}");
}
