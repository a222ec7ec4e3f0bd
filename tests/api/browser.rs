//! Journeys in a real Chromium over WebDriver, clicking what a person sees (labels, button
//! text), plus an axe-core check of every page. Needs Debian's `chromium` and `chromium-driver`;
//! without them these tests print one "skipped" line, unless KAI_REQUIRE_BROWSER is set (CI),
//! where a missing browser fails.
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use kaicalls_notify::domain::Role;
use serde_json::json;

use crate::helpers::{TestApp, lead, spawn_app};

const AXE: &str = include_str!("../vendor/axe-core-4.14.1.min.js");

struct Browser {
    client: Client,
    driver: Child,
    base: String,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn find_program(names: &[&str]) -> Option<String> {
    names.iter().find(|n| std::path::Path::new(n).exists()).map(|n| n.to_string())
}

async fn browser(app: &TestApp, javascript: bool) -> Option<Browser> {
    browser_with(app, javascript, false).await
}

async fn browser_with(app: &TestApp, javascript: bool, dark: bool) -> Option<Browser> {
    let (Some(chromium), Some(driver)) = (
        find_program(&["/usr/bin/chromium", "/usr/bin/chromium-browser"]),
        find_program(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]),
    ) else {
        if std::env::var_os("KAI_REQUIRE_BROWSER").is_some() {
            panic!("KAI_REQUIRE_BROWSER is set but chromium or chromedriver is missing");
        }
        eprintln!("skipped: install chromium chromium-driver to run the browser journeys");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child =
        Command::new(driver).arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let mut options = json!({
        "binary": chromium,
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-quic", "--window-size=1280,1000",
                 format!("--user-data-dir={}", profile.path().display())],
    });
    if !javascript {
        options["prefs"] = json!({"profile.managed_default_content_settings.javascript": 2});
    }
    if dark {
        options["args"].as_array_mut().unwrap().push(json!("--blink-settings=preferredColorScheme=0"));
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), options);
    let mut last = None;
    for _ in 0..50 {
        match ClientBuilder::rustls()
            .unwrap()
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => return Some(Browser { client, driver: child, base: app.address.clone(), _profile: profile }),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("could not start a browser session: {last:?}");
}

impl Browser {
    async fn open(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    async fn login(&self, email: &str) {
        self.open("/login").await;
        self.field("Email").await.send_keys(email).await.unwrap();
        self.field("Password").await.send_keys(crate::helpers::PASSWORD).await.unwrap();
        self.button("Sign in").await.click().await.unwrap();
        self.client.wait().for_element(Locator::XPath("//h1[normalize-space()='Dashboard']")).await.unwrap();
        self.open("/settings/notifications").await;
        self.client.wait().for_element(Locator::XPath("//h1[normalize-space()='Notifications']")).await.unwrap();
    }

    /// The form control a visible label names (`within` narrows to an element's XPath).
    async fn field(&self, label: &str) -> fantoccini::elements::Element {
        self.field_in("", label).await
    }

    async fn field_in(&self, within: &str, label: &str) -> fantoccini::elements::Element {
        let label = self
            .client
            .wait()
            .for_element(Locator::XPath(&format!("{within}//label[normalize-space()='{label}']")))
            .await
            .unwrap();
        let id = label.attr("for").await.unwrap().unwrap();
        self.client.find(Locator::Id(&id)).await.unwrap()
    }

    async fn click_label(&self, within: &str, label: &str) {
        let xpath = format!("{within}//label[normalize-space()='{label}']");
        self.client.wait().for_element(Locator::XPath(&xpath)).await.unwrap().click().await.unwrap();
    }

    /// Types over a field's text as a person does: select all, type, then Tab away.
    async fn retype(&self, field: &fantoccini::elements::Element, text: &str) {
        field.click().await.unwrap();
        field.send_keys("\u{E009}a\u{E000}").await.unwrap();
        field.send_keys(&format!("{text}\u{E004}")).await.unwrap();
    }

    async fn button(&self, text: &str) -> fantoccini::elements::Element {
        self.client.wait().for_element(Locator::XPath(&format!("//button[normalize-space()='{text}']"))).await.unwrap()
    }

    /// Waits until the element at `css` contains `text`.
    async fn wait_text(&self, css: &str, text: &str) {
        let found = self
            .client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::XPath(&format!("//*[@id='{css}'][contains(normalize-space(.), \"{text}\")]")))
            .await;
        assert!(found.is_ok(), "#{css} never said {text:?}");
    }

    /// Runs axe-core on the page; answers its serious and critical violations.
    async fn axe(&self) -> Vec<String> {
        self.client.execute(AXE, vec![]).await.unwrap();
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] }).then(r => done(r.violations
                   .filter(v => v.impact === 'serious' || v.impact === 'critical')
                   .map(v => v.id + ': ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))));",
                vec![],
            )
            .await
            .unwrap();
        serde_json::from_value(found).unwrap()
    }
}

/// A recipient's rows in the grid (their choices, and the "More" row below).
fn row(name: &str) -> String {
    format!("//tbody[contains(@class,'recipient')][.//th[@scope='row'][contains(normalize-space(.), '{name}')]]")
}

#[tokio::test]
async fn owner_journey_sms_threshold_and_the_why_not_log() {
    let app = spawn_app().await;
    let business = app.create_business("Acme Plumbing", "owner@acme.test").await;
    app.add_user(&business, "Sam Rivera", "sam@acme.test", Some("(555) 555-0101"), Role::Member).await;
    let Some(b) = browser(&app, true).await else { return };

    b.login("owner@acme.test").await;
    b.click_label("", "SMS").await;
    b.wait_text("status", "Saved.").await;
    let phone = b.field("Notification phone").await;
    phone.send_keys("(555) 555-0100").await.unwrap();
    b.button("Save settings").await.click().await.unwrap();
    b.client.wait().for_element(Locator::Css("#notification_phone[value='(555) 555-0100']")).await.unwrap();
    b.field("Team member").await.select_by_label("Sam Rivera (sam@acme.test)").await.unwrap();
    b.button("Add recipient").await.click().await.unwrap();
    b.wait_text("status", "Added Sam Rivera.").await;
    b.field("SMS for Sam Rivera").await.click().await.unwrap();
    b.wait_text("status", "Saved Sam Rivera’s preferences.").await;
    let score = b.field("Minimum lead score for Sam Rivera").await;
    b.retype(&score, "70").await;
    b.client
        .wait()
        .for_element(Locator::XPath(&format!("{}//input[@type='number'][@value='70']", row("Sam Rivera"))))
        .await
        .unwrap();
    // "More" opens the row below: what Sam gets, in words.
    b.client.find(Locator::XPath(&format!("{}//summary", row("Sam Rivera")))).await.unwrap().click().await.unwrap();
    let summary = b.client.find(Locator::XPath(&format!("{}//p[contains(@class,'summary')]", row("Sam Rivera")))).await;
    let summary = summary.unwrap().text().await.unwrap();
    assert!(summary.contains("by Email, SMS, In-app; leads scoring 70 or more"), "{summary}");
    assert!(b.field("SMS for Sam Rivera").await.is_selected().await.unwrap());
    assert_eq!(app.post_event(&business, "l65", &lead("L-65", Some(65))).await.status(), 202);
    assert_eq!(app.post_event(&business, "l80", &lead("L-80", Some(80))).await.status(), 202);

    let sms = app.twilio.wait_for(3).await;
    let to_sam: Vec<_> = sms.iter().filter(|s| s.to == "+15555550101").collect();
    assert_eq!(to_sam.len(), 1);
    assert!(to_sam[0].body.starts_with("New lead 80"));
    // "Why didn't Sam get that lead?": the alert log, filtered to Sam and what was not sent.
    b.client.refresh().await.unwrap();
    b.client.find(Locator::LinkText("Open the alert log")).await.unwrap().click().await.unwrap();
    b.field("Person").await.select_by_label("Sam Rivera").await.unwrap();
    b.field("Outcome").await.select_by_label("Not sent").await.unwrap();
    b.wait_text(
        "log-results",
        "Sam Rivera: not sent by Email, SMS, In-app: score 65 is below Sam Rivera’s threshold 70",
    )
    .await;
    // The person's filter answers first (both leads); the outcome's answer replaces it.
    let mut titles = Vec::new();
    for _ in 0..50 {
        titles = b.client.find_all(Locator::Css("#log-results .log-title")).await.unwrap();
        if titles.len() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(titles.len(), 1, "only the lead Sam did not get");
    assert_eq!(titles[0].text().await.unwrap(), "New lead: Jane Doe (score 65)");
    let url = b.client.current_url().await.unwrap();
    assert!(url.as_str().contains("outcome=not_sent"), "the filter is in the address, to share or go back to: {url}");
    b.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn teammate_journey_sees_defaults_read_only_and_raises_their_threshold() {
    let app = spawn_app().await;
    let business = app.create_business("Acme Plumbing", "owner@acme.test").await;
    let sam = app.add_user(&business, "Sam Rivera", "sam@acme.test", None, Role::Member).await;
    let owner = app.login("owner@acme.test").await;
    app.add_recipient(&owner, sam.id).await;
    let Some(b) = browser(&app, true).await else { return };

    b.login("sam@acme.test").await;
    assert!(!b.field("New leads").await.is_enabled().await.unwrap(), "defaults are read-only");
    assert!(b.client.find(Locator::XPath("//button[normalize-space()='Add recipient']")).await.is_err());
    assert!(b.client.find(Locator::XPath("//button[normalize-space()='Save settings']")).await.is_err());
    let score = b.field("Minimum lead score for Sam Rivera").await;
    b.retype(&score, "85").await;
    b.wait_text("status", "Saved your preferences.").await;
    let id = app.recipient_id(sam.id).await.unwrap();
    assert_eq!(app.recipient(&business.id, id).await.unwrap().prefs.min_lead_score.value(), 85);

    // A forged owner request from this page, with this page's valid CSRF token, is refused.
    let status = b
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const token = document.querySelector('input[name=csrf_token]').value;
             fetch('/settings/notifications/defaults', { method: 'POST', headers: { 'X-CSRF-Token': token,
               'Content-Type': 'application/x-www-form-urlencoded' }, body: 'action=save' }).then(r => done(r.status));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(status, json!(403));
    assert!(app.defaults(&business.id).await.kinds.lead_created, "nothing changed");
    b.client.clone().close().await.unwrap();
}

/// Every page a person can reach, as owner and as member, plus the pages outside the sign-in.
async fn axe_every_page(dark: bool) {
    let app = spawn_app().await;
    let business = app.create_business("Acme Plumbing", "owner@acme.test").await;
    let sam = app.add_user(&business, "Sam Rivera", "sam@acme.test", Some("(555) 555-0101"), Role::Member).await;
    let owner = app.login("owner@acme.test").await;
    app.add_recipient(&owner, sam.id).await;
    let invited = app
        .post_form(&owner, "/team/members", &[("name", "Ivy"), ("email", "ivy@acme.test"), ("role", "member")])
        .await;
    let html = invited.text().await.unwrap();
    let marker = "id=\"invite-link\" value=\"";
    let link = html[html.find(marker).unwrap() + marker.len()..].split('"').next().unwrap().to_owned();
    let invite_path = link[link.find("/invite/").unwrap()..].to_owned();
    assert_eq!(app.post_event(&business, "l1", &lead("L-1", Some(65))).await.status(), 202);
    app.wait_count("SELECT count(*) FROM notifications", 1).await;
    let email = app
        .smtp
        .wait_for(2)
        .await
        .iter()
        .find(|e| e.data.contains("List-Unsubscribe"))
        .map(|e| e.data.replace("=\n", ""));
    let Some(b) = browser_with(&app, true, dark).await else { return };

    b.open("/login").await;
    let dark_now = b.client.execute("return matchMedia('(prefers-color-scheme: dark)').matches", vec![]).await.unwrap();
    assert_eq!(dark_now, json!(dark), "the browser's colour scheme is the one under test");
    let mut problems = Vec::new();
    // The owner's in-app alert links to their claim page for the lead (and a broken link's page).
    let claim: String = sqlx::query_scalar("SELECT link FROM notifications").fetch_one(&app.pool).await.unwrap();
    let mut public =
        vec!["/login".to_owned(), invite_path, "/invite/not-a-token".to_owned(), claim, "/c/not-a-link".to_owned()];
    if let Some(email) = email {
        let start = email.find("http://kaicalls.test/unsubscribe/").unwrap() + "http://kaicalls.test".len();
        public.push(email[start..].split('>').next().unwrap().to_owned());
    }
    for path in &public {
        b.open(path).await;
        problems.extend(b.axe().await.into_iter().map(|v| format!("{path} {v}")));
    }
    // Sam's quiet hours and daily summary (his own page, and the owner's view of it).
    let quiet = format!("/settings/notifications/recipients/{}/quiet", app.recipient_id(sam.id).await.unwrap());
    for who in ["owner@acme.test", "sam@acme.test"] {
        b.login(who).await;
        for path in SIGNED_IN_PAGES.iter().copied().chain([quiet.as_str()]) {
            b.open(path).await;
            problems.extend(b.axe().await.into_iter().map(|v| format!("{who} {path} {v}")));
        }
        b.client.delete_all_cookies().await.unwrap();
    }
    assert!(problems.is_empty(), "axe found:\n{}", problems.join("\n"));
    b.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn every_page_passes_axe_without_serious_or_critical_violations() {
    axe_every_page(false).await;
}

#[tokio::test]
async fn every_page_passes_axe_in_dark_mode_too() {
    axe_every_page(true).await;
}

#[tokio::test]
async fn faq_not_receiving_lead_alerts_the_page_says_why_and_turning_them_on_fixes_it() {
    let app = spawn_app().await;
    let business = app.create_business("Acme Plumbing", "owner@acme.test").await;
    let Some(b) = browser(&app, true).await else { return };
    b.login("owner@acme.test").await;
    b.click_label("", "New leads").await;
    b.wait_text("status", "Saved.").await;

    assert_eq!(app.post_event(&business, "off", &lead("L-off", Some(90))).await.status(), 202);
    b.wait_text("alerts", "new-lead alerts are off for the business").await;
    assert!(app.smtp.messages().is_empty());

    b.click_label("", "New leads").await;
    b.wait_text("status", "Saved.").await;
    assert_eq!(app.post_event(&business, "on", &lead("L-on", Some(90))).await.status(), 202);
    assert_eq!(app.smtp.wait_for(1).await.len(), 1, "the next lead arrives");
    b.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn the_owner_journey_works_with_javascript_off() {
    let app = spawn_app().await;
    let business = app.create_business("Acme Plumbing", "owner@acme.test").await;
    let sam = app.add_user(&business, "Sam Rivera", "sam@acme.test", Some("(555) 555-0101"), Role::Member).await;
    let Some(b) = browser(&app, false).await else { return };

    b.login("owner@acme.test").await;
    b.click_label("", "SMS").await;
    b.field("Notification phone").await.send_keys("(555) 555-0100").await.unwrap();
    b.button("Save settings").await.click().await.unwrap();
    b.wait_text("status", "Business defaults saved.").await;
    b.field("Team member").await.select_by_label("Sam Rivera (sam@acme.test)").await.unwrap();
    b.button("Add recipient").await.click().await.unwrap();
    b.wait_text("status", "Recipient added.").await;
    b.field("SMS for Sam Rivera").await.click().await.unwrap();
    let score = b.field("Minimum lead score for Sam Rivera").await;
    score.clear().await.unwrap();
    score.send_keys("70").await.unwrap();
    b.button("Save changes").await.click().await.unwrap();
    b.wait_text("status", "Recipient preferences saved.").await;

    let d = app.defaults(&business.id).await;
    assert!(d.channels.sms);
    assert_eq!(d.notification_phone.unwrap().as_str(), "+15555550100");
    let r = app.recipient(&business.id, app.recipient_id(sam.id).await.unwrap()).await.unwrap();
    assert!(r.prefs.channels.sms && r.prefs.channels.email);
    assert_eq!(r.prefs.min_lead_score.value(), 70);

    // The alert log's filters work as a plain form too.
    assert_eq!(app.post_event(&business, "l65", &lead("L-65", Some(65))).await.status(), 202);
    app.wait_count("SELECT count(*) FROM deliveries WHERE status = 'pending'", 0).await;
    b.open("/settings/notifications/log").await;
    b.field("Person").await.select_by_label("Sam Rivera").await.unwrap();
    b.button("Show").await.click().await.unwrap();
    b.wait_text(
        "log-results",
        "Sam Rivera: not sent by Email, SMS, In-app: score 65 is below Sam Rivera’s threshold 70",
    )
    .await;
    b.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn the_bell_and_the_inbox_rise_within_two_seconds_without_a_reload_and_the_inbox_clears_them() {
    let app = spawn_app().await;
    let business = app.create_business("Acme Plumbing", "owner@acme.test").await;
    let Some(b) = browser(&app, true).await else { return };
    b.login("owner@acme.test").await;
    b.client.find(Locator::Css("#bell[aria-label='Notifications: 0 unread']")).await.unwrap();
    // Wait until the page has its live stream (its first event rewrites the bell).
    tokio::time::sleep(Duration::from_millis(500)).await;

    assert_eq!(app.post_event(&business, "l1", &lead("L-1", Some(90))).await.status(), 202);

    b.client
        .wait()
        .at_most(Duration::from_secs(2))
        .for_element(Locator::Css("#bell[aria-label='Notifications: 1 unread']"))
        .await
        .expect("the count rose within 2 s without a reload");
    b.client.find(Locator::Css("#bell")).await.unwrap().click().await.unwrap();
    b.client.wait().for_element(Locator::XPath("//a[contains(., 'New lead: Jane Doe')]")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut second = lead("L-2", Some(90));
    second["data"]["name"] = json!("Second Caller");
    assert_eq!(app.post_event(&business, "l2", &second).await.status(), 202);
    b.client
        .wait()
        .at_most(Duration::from_secs(2))
        .for_element(Locator::XPath("//a[contains(., 'New lead: Second Caller')]"))
        .await
        .expect("the open inbox shows the new alert within 2 s");
    b.client.find(Locator::Css("#bell[aria-label='Notifications: 2 unread']")).await.unwrap();
    b.button("Mark all as read").await.click().await.unwrap();
    b.client.wait().for_element(Locator::Css("#bell[aria-label='Notifications: 0 unread']")).await.unwrap();
    b.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn rapid_toggling_leaves_the_stored_state_equal_to_what_the_page_shows() {
    let app = spawn_app().await;
    let business = app.create_business("Acme Plumbing", "owner@acme.test").await;
    let Some(b) = browser(&app, true).await else { return };
    b.login("owner@acme.test").await;

    for _ in 0..5 {
        b.click_label("", "SMS").await;
    }
    b.wait_text("status", "Saved.").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let shown = b.field("SMS").await.is_selected().await.unwrap();
    assert!(shown, "five clicks from off end on");
    assert_eq!(app.defaults(&business.id).await.channels.sms, shown);
    b.client.clone().close().await.unwrap();
}

/// Every page a signed-in person can open (the same list for the accessibility and width checks).
const SIGNED_IN_PAGES: [&str; 10] = [
    "/",
    "/settings/notifications",
    "/settings/notifications/log",
    "/notifications",
    "/leads",
    "/billing",
    "/sms",
    "/team",
    "/account",
    "/no-such-page",
];

#[tokio::test]
async fn every_page_fits_a_360_px_phone_without_sideways_scrolling() {
    let app = spawn_app().await;
    let business = app.create_business("Acme Plumbing", "owner@acme.test").await;
    let long_name = "Maximiliana Wolfeschlegelsteinhausenbergerdorff";
    let sam = app
        .add_user(
            &business,
            long_name,
            "sam.with.a.rather.long.address@acme-plumbing-and-heating.test",
            Some("(555) 555-0101"),
            Role::Member,
        )
        .await;
    let owner = app.login("owner@acme.test").await;
    app.add_recipient(&owner, sam.id).await;
    // Fifteen people on the grid.
    for i in 2..15 {
        let (name, email) = (format!("Teammate {i}"), format!("mate{i}@acme.test"));
        let mate = app.add_user(&business, &name, &email, None, Role::Member).await;
        app.add_recipient(&owner, mate.id).await;
    }
    let mut wordy = lead("L-1", Some(65));
    wordy["data"]["name"] = json!(long_name);
    wordy["data"]["summary"] =
        json!("Callerleftaveryveryverylongmessagewithoutanyspacesatallwhichmustwrapsomewhere and more");
    assert_eq!(app.post_event(&business, "l1", &wordy).await.status(), 202);
    app.wait_count("SELECT count(*) FROM notifications", 1).await;
    let Some(b) = browser(&app, true).await else { return };
    b.client.set_window_size(360, 800).await.unwrap();

    let mut too_wide = Vec::new();
    let quiet = format!("/settings/notifications/recipients/{}/quiet", app.recipient_id(sam.id).await.unwrap());
    for who in ["owner@acme.test", "sam.with.a.rather.long.address@acme-plumbing-and-heating.test"] {
        b.login(who).await;
        for path in SIGNED_IN_PAGES.iter().copied().chain([quiet.as_str()]) {
            b.open(path).await;
            let widths = b
                .client
                .execute("return [document.documentElement.scrollWidth, document.documentElement.clientWidth]", vec![])
                .await
                .unwrap();
            let (content, viewport) = (widths[0].as_i64().unwrap(), widths[1].as_i64().unwrap());
            assert!(viewport <= 360, "the window is a phone's: {viewport}");
            if content > viewport {
                too_wide.push(format!("{who} {path}: {content} px in {viewport} px"));
            }
        }
        b.client.delete_all_cookies().await.unwrap();
    }
    b.open("/login").await;
    b.client.clone().close().await.unwrap();
    assert!(too_wide.is_empty(), "pages that scroll sideways:\n{}", too_wide.join("\n"));
}

#[tokio::test]
async fn the_set_up_checklist_of_a_new_business_shrinks_as_each_step_is_done() {
    let app = spawn_app().await;
    let mut create = Command::new(env!("CARGO_BIN_EXE_kaicalls-notify"))
        .args([
            "create-business",
            "--name",
            "Bright Dental",
            "--owner-email",
            "dr@bright.test",
            "--owner-name",
            "Dr Bright",
        ])
        .env("KAI_DATA_DIR", app.dir.path())
        .envs(crate::helpers::binary_env(app.dir.path()))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut create.stdin.take().unwrap(), format!("{}\n", crate::helpers::PASSWORD).as_bytes())
        .unwrap();
    // Waited for off the test's runtime, which also runs the app: blocking it would freeze the
    // app mid-write and hold the database lock the command needs.
    let output = tokio::task::spawn_blocking(move || create.wait_with_output()).await.unwrap().unwrap();
    let created: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let business = crate::helpers::TestBusiness {
        id: created["business_id"].as_str().unwrap().to_owned(),
        owner: crate::helpers::Person { id: 0 },
        secret: created["webhook_secret"].as_str().unwrap().to_owned(),
    };
    let Some(b) = browser(&app, true).await else { return };
    let setup = "//section[.//h2[starts-with(normalize-space(.), 'Set-up:')]]";

    b.login("dr@bright.test").await;
    b.open("/").await;
    b.wait_text("setup-title", "Set-up: 2 steps left").await;
    b.client.find(Locator::XPath(&format!("{setup}//li[contains(., 'Add a teammate')]"))).await.unwrap();
    let secret = b.field("Signing secret for Kai").await.prop("value").await.unwrap().unwrap();
    assert_eq!(secret, business.secret, "the secret to give Kai is right there");

    b.client
        .find(Locator::XPath(&format!("{setup}//a[normalize-space()='Team Members']")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.field("Name").await.send_keys("Sam Rivera").await.unwrap();
    b.field("Email").await.send_keys("sam@bright.test").await.unwrap();
    b.button("Add and send invitation").await.click().await.unwrap();
    b.client.wait().for_element(Locator::XPath("//*[contains(., 'Added Sam Rivera to the team.')]")).await.unwrap();
    b.open("/").await;
    b.wait_text("setup-title", "Set-up: 1 step left").await;

    assert_eq!(app.post_event(&business, "first", &lead("L-1", Some(70))).await.status(), 202);
    b.open("/").await;
    b.client.wait().for_element(Locator::XPath("//h2[normalize-space()='Activity']")).await.unwrap();
    assert!(b.client.find(Locator::Id("setup-title")).await.is_err(), "every step is done: the list is gone");
    b.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn a_choice_the_business_holds_off_is_greyed_says_why_and_opens_when_the_business_turns_it_on() {
    let app = spawn_app().await;
    let business = app.create_business("Acme Plumbing", "owner@acme.test").await;
    let sam = app.add_user(&business, "Sam Rivera", "sam@acme.test", Some("(555) 555-0101"), Role::Member).await;
    let owner = app.login("owner@acme.test").await;
    let id = app.add_recipient(&owner, sam.id).await;
    let Some(b) = browser(&app, true).await else { return };
    b.login("owner@acme.test").await;

    // SMS is off for the business: Sam's box is greyed, does not move, and says why on focus.
    let sms = b.field("SMS for Sam Rivera").await;
    assert_eq!(sms.attr("aria-disabled").await.unwrap().as_deref(), Some("true"));
    sms.click().await.unwrap();
    assert!(!sms.is_selected().await.unwrap(), "a held-off choice does not move");
    let tip = b
        .client
        .execute(
            "const tip = document.getElementById(arguments[0]);
             return [tip.getBoundingClientRect().width, tip.textContent,
                     document.activeElement.getAttribute('aria-describedby')];",
            vec![json!(format!("r{id}-sms_enabled-why"))],
        )
        .await
        .unwrap();
    assert!(tip[0].as_f64().unwrap() > 40.0, "the reason shows while the box has focus: {tip}");
    assert_eq!(tip[1], json!("SMS is off for the business."));
    assert_eq!(tip[2], json!(format!("r{id}-sms_enabled-why")), "and is the box's description");

    // The owner turns SMS on for the business: the grid is drawn again, and Sam's box opens.
    b.click_label("", "SMS").await;
    b.wait_text("status", "Saved.").await;
    b.client
        .wait()
        .for_element(Locator::Css(&format!("#r{id}-sms_enabled:not([aria-disabled])")))
        .await
        .expect("the grid follows the business defaults without a reload");
    b.field("SMS for Sam Rivera").await.click().await.unwrap();
    b.wait_text("status", "Saved Sam Rivera’s preferences.").await;
    assert!(app.recipient(&business.id, id).await.unwrap().prefs.channels.sms);
    b.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn a_teammate_claims_a_lead_from_the_inbox_and_the_owner_sees_it_on_leads() {
    let app = spawn_app().await;
    let business = app.create_business("Acme Plumbing", "owner@acme.test").await;
    let sam = app.add_user(&business, "Sam Rivera", "sam@acme.test", None, Role::Member).await;
    let owner = app.login("owner@acme.test").await;
    app.add_recipient(&owner, sam.id).await;
    assert_eq!(app.post_event(&business, "l1", &lead("L-1", Some(80))).await.status(), 202);
    app.wait_count("SELECT count(*) FROM notifications", 2).await;
    let Some(b) = browser(&app, true).await else { return };

    b.login("sam@acme.test").await;
    b.open("/notifications").await;
    let claim = Locator::XPath("//button[starts-with(normalize-space(), \"I'll call them\")]");
    b.client.wait().for_element(claim).await.unwrap().click().await.unwrap();
    b.client
        .wait()
        .for_element(Locator::XPath("//p[@role='status'][contains(., 'everyone else sees that you took it')]"))
        .await
        .expect("Sam is told the lead is his");
    assert!(b.client.source().await.unwrap().contains("tel:+15555550123"), "with the number to call");
    b.client.delete_all_cookies().await.unwrap();

    b.login("owner@acme.test").await;
    b.open("/leads").await;
    let row = "//tr[td[normalize-space()='Jane Doe']]";
    let taken = b.client.find(Locator::XPath(row)).await.unwrap().text().await.unwrap();
    assert!(taken.contains("Sam Rivera, under a minute after the call"), "{taken}");
    b.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn the_owner_sets_an_escalation_and_a_lead_nobody_claims_reaches_them() {
    let app = spawn_app().await;
    let business = app.create_business("Acme Plumbing", "owner@acme.test").await;
    let sam = app.add_user(&business, "Sam Rivera", "sam@acme.test", None, Role::Member).await;
    let owner = app.login("owner@acme.test").await;
    app.add_recipient(&owner, sam.id).await;
    let Some(b) = browser(&app, true).await else { return };

    b.login("owner@acme.test").await;
    let section = "//section[@id='escalation']";
    let first = format!("{section}//fieldset[legend[normalize-space()='First step']]");
    let second = format!("{section}//fieldset[legend[normalize-space()='Second step (optional)']]");
    b.click_label(section, "Escalate leads nobody claims").await;
    b.retype(&b.field_in(section, "If a lead scoring at least").await, "70").await;
    b.retype(&b.field_in(section, "is not claimed within (minutes)").await, "5").await;
    b.click_label(&first, "Sam Rivera").await;
    b.click_label(&second, "If it is still not claimed, alert more people").await;
    b.click_label(&second, "Acme Plumbing Owner").await;
    b.button("Save escalation").await.click().await.unwrap();
    b.wait_text("status", "Escalation saved.").await;
    b.wait_text(
        "escalation-now",
        "If a lead scoring at least 70 is not claimed within 5 min, alert Sam Rivera by SMS or In-app; then after 10 more min, alert Acme Plumbing Owner.",
    )
    .await;

    // A lead arrives; nobody claims it. Five minutes on, Sam; ten more, the owner.
    assert_eq!(app.post_event(&business, "l1", &lead("L-1", Some(80))).await.status(), 202);
    app.wait_count("SELECT count(*) FROM notifications", 2).await;
    app.dispatcher.advance_clock(Duration::from_secs(5 * 60));
    app.wait_count("SELECT count(*) FROM notifications", 3).await;
    app.dispatcher.advance_clock(Duration::from_secs(10 * 60));
    app.wait_count("SELECT count(*) FROM notifications", 4).await;

    b.open("/notifications").await;
    b.client
        .wait()
        .for_element(Locator::XPath("//*[contains(normalize-space(.), 'Not claimed after 15 min: Jane Doe')]"))
        .await
        .expect("the escalation reaches the owner's inbox");
    b.open("/leads").await;
    let row = "//tr[td[normalize-space()='Jane Doe']]";
    let state = b.client.find(Locator::XPath(row)).await.unwrap().text().await.unwrap();
    assert!(state.contains("Escalated: not claimed after 15 min"), "{state}");
    b.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn a_teammate_confirms_their_phone_by_code_and_the_owner_finds_the_text_that_did_not_arrive() {
    let app = spawn_app().await;
    let business = app.create_business("Acme Plumbing", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    crate::alerts::sms_on(&app, &owner, "(555) 555-0100").await;
    let ann = app.add_user(&business, "Ann Lee", "ann@acme.test", None, Role::Member).await;
    let row = app.add_recipient(&owner, ann.id).await;
    let Some(b) = browser(&app, true).await else { return };

    // Ann adds her phone; it is not confirmed until she types the code texted to it.
    b.login("ann@acme.test").await;
    b.open("/account").await;
    b.retype(&b.field("Mobile phone").await, "(555) 555-0109").await;
    b.button("Save profile").await.click().await.unwrap();
    b.client
        .wait()
        .for_element(Locator::XPath("//p[contains(normalize-space(.), '(555) 555-0109 is not confirmed')]"))
        .await
        .expect("the page asks for the code");
    let text = app.twilio.received().into_iter().rev().find(|t| t.to == "+15555550109").expect("a code was texted");
    b.field("Code").await.send_keys(&text.body[..6]).await.unwrap();
    b.button("Confirm phone").await.click().await.unwrap();
    b.client
        .wait()
        .for_element(Locator::XPath("//p[contains(normalize-space(.), '(555) 555-0109 is confirmed')]"))
        .await
        .expect("confirmed");
    let prefs = [("sms_enabled", "on"), ("lead_created", "on"), ("min_lead_score", "0")];
    let ann_client = app.login("ann@acme.test").await;
    assert_eq!(
        app.post_form(&ann_client, &format!("/settings/notifications/recipients/{row}"), &prefs).await.status(),
        303
    );
    b.client.delete_all_cookies().await.unwrap();

    // A lead texts the business phone and Ann; Ann's phone is off, so her text is not delivered.
    assert_eq!(app.post_event(&business, "l1", &lead("L-1", Some(80))).await.status(), 202);
    app.wait_count("SELECT count(*) FROM deliveries WHERE channel = 'sms' AND status = 'sent'", 2).await;
    let sid: String =
        sqlx::query_scalar("SELECT provider_id FROM deliveries WHERE channel = 'sms' AND user_id IS NOT NULL")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let lost = [("MessageSid", sid.as_str()), ("MessageStatus", "undelivered"), ("ErrorCode", "30003")];
    assert_eq!(crate::sms_status::callback(&app, &lost, None).await.status(), 200);

    b.login("owner@acme.test").await;
    b.client.find(Locator::LinkText("SMS")).await.unwrap().click().await.unwrap();
    b.client.wait().for_element(Locator::XPath("//h1[normalize-space()='SMS']")).await.unwrap();
    b.client.find(Locator::LinkText("Not delivered")).await.unwrap().click().await.unwrap();
    b.client.wait().for_element(Locator::XPath("//h2[normalize-space()='Texts not delivered']")).await.unwrap();
    let rows = b.client.find_all(Locator::Css("table.texts tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 1, "only Ann's text did not arrive");
    let row = rows[0].text().await.unwrap();
    assert!(row.contains("Ann Lee, (555) 555-0109"), "{row}");
    assert!(row.contains("Not delivered: the phone is unreachable"), "{row}");
    b.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn a_teammate_sets_quiet_hours_and_sees_them_explained() {
    let app = spawn_app().await;
    let business = app.create_business("Acme Plumbing", "owner@acme.test").await;
    let sam = app.add_user(&business, "Sam Rivera", "sam@acme.test", Some("(555) 555-0101"), Role::Member).await;
    let owner = app.login("owner@acme.test").await;
    app.add_recipient(&owner, sam.id).await;
    let Some(b) = browser(&app, true).await else { return };

    b.login("sam@acme.test").await;
    let sams = row("Sam Rivera");
    b.client.find(Locator::XPath(&format!("{sams}//summary"))).await.unwrap().click().await.unwrap();
    let link = format!("{sams}//a[starts-with(normalize-space(), 'Set quiet hours')]");
    b.client.wait().for_element(Locator::XPath(&link)).await.unwrap().click().await.unwrap();
    let title = "//h1[normalize-space()='Quiet hours and daily summary']";
    b.client.wait().for_element(Locator::XPath(title)).await.unwrap();
    b.click_label("", "Hold email and SMS alerts during quiet hours").await;
    for day in ["Sat", "Sun"] {
        b.click_label("", day).await;
    }
    b.retype(&b.field("Time zone").await, "Europe/London").await;
    b.click_label("", "Always alert at once for hot leads, even during quiet hours").await;
    b.retype(&b.field("Hot means a lead score of at least").await, "85").await;
    b.button("Save quiet hours").await.click().await.unwrap();
    b.wait_text("status", "Quiet hours saved.").await;
    let shown = b.client.find(Locator::XPath(&row("Sam Rivera"))).await.unwrap().html(false).await.unwrap();
    assert!(
        shown.contains(
            "Quiet hours: Every day 22:00 to 07:00 the next morning, Europe/London; leads scoring 85 or more get through."
        ),
        "{shown}"
    );

    // The daily summary of the leads below the threshold, at its suggested 08:00.
    b.client.find(Locator::XPath(&format!("{sams}//summary"))).await.unwrap().click().await.unwrap();
    b.client.wait().for_element(Locator::XPath(&link)).await.unwrap().click().await.unwrap();
    b.client.wait().for_element(Locator::XPath(title)).await.unwrap();
    b.click_label("", "Send me a daily summary of leads below my threshold").await;
    b.button("Save daily summary").await.click().await.unwrap();
    b.wait_text("status", "Daily summary saved.").await;
    let shown = b.client.find(Locator::XPath(&row("Sam Rivera"))).await.unwrap().html(false).await.unwrap();
    assert!(shown.contains("Daily summary of the leads below the threshold at 08:00."), "{shown}");
    b.client.clone().close().await.unwrap();
}
