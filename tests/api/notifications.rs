use kaicalls_notify::domain::{ChannelSet, KindSet, Role};

use crate::helpers::{all_defaults_on, location, spawn_app, spawn_app_in};

#[tokio::test]
async fn a_new_business_starts_with_the_documented_defaults() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;

    let d = app.defaults(&business.id).await;
    assert_eq!(d.kinds, KindSet::ALL_ON);
    assert_eq!(d.channels, ChannelSet { email: true, sms: false, in_app: true });
    assert_eq!(d.notification_email.unwrap().as_str(), "owner@acme.test");
    assert!(d.notification_phone.is_none());
    let owner = app.recipient(&business.id, app.recipient_id(business.owner.id).await.unwrap()).await.unwrap();
    assert_eq!(owner.prefs.channels, ChannelSet { email: true, sms: false, in_app: true });
    assert_eq!(owner.prefs.kinds, KindSet::ALL_ON);
    assert_eq!(owner.prefs.min_lead_score.value(), 0);
}

#[tokio::test]
async fn update_business_defaults_without_javascript_and_they_survive_a_restart() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let client = app.login("owner@acme.test").await;

    // Step 2: turn SMS on and usage alerts off; step 3: destinations; step 4: Save.
    let mut fields = all_defaults_on();
    fields.retain(|(k, _)| *k != "usage_alerts");
    fields.push(("notification_email", "alerts@acme.test"));
    fields.push(("notification_phone", "(555) 555-0100"));
    fields.push(("action", "save"));
    let response = app.post_form(&client, "/settings/notifications/defaults", &fields).await;

    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/settings/notifications?saved=defaults#defaults");
    let page = app.get_html(&client, "/settings/notifications?saved=defaults").await;
    assert!(page.contains("Business defaults saved."));
    assert!(page.contains("value=\"(555) 555-0100\""), "shown in the business's local format");

    let restarted = spawn_app_in(app.dir.clone(), app.smtp.clone()).await;
    let d = restarted.defaults(&business.id).await;
    assert!(d.channels.sms && d.channels.email && d.channels.in_app);
    assert!(!d.kinds.usage && d.kinds.lead_created && d.kinds.lead_updated && d.kinds.billing);
    assert_eq!(d.notification_email.unwrap().as_str(), "alerts@acme.test");
    assert_eq!(d.notification_phone.unwrap().as_str(), "+15555550100");
}

#[tokio::test]
async fn every_switch_turns_off_and_on_and_persists_across_a_restart() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let client = app.login("owner@acme.test").await;

    for (field, _) in all_defaults_on() {
        let mut fields = all_defaults_on();
        fields.retain(|(k, _)| *k != field);
        fields.push(("action", "switches"));
        let response = app.post_htmx(&client, "/settings/notifications/defaults", &fields).await;
        assert_eq!(response.status(), 200, "{field}");

        let restarted = spawn_app_in(app.dir.clone(), app.smtp.clone()).await;
        let d = restarted.defaults(&business.id).await;
        let on = |f: &str| match f {
            "lead_created" => d.kinds.lead_created,
            "lead_updated" => d.kinds.lead_updated,
            "usage_alerts" => d.kinds.usage,
            "billing_alerts" => d.kinds.billing,
            "email_enabled" => d.channels.email,
            "sms_enabled" => d.channels.sms,
            _ => d.channels.in_app,
        };
        for (other, _) in all_defaults_on() {
            assert_eq!(on(other), other != field, "after turning {field} off, {other}");
        }
        assert_eq!(
            d.notification_email.as_ref().unwrap().as_str(),
            "owner@acme.test",
            "switches leave destinations alone"
        );
    }
}

#[tokio::test]
async fn a_switch_answers_htmx_with_the_fragment_and_a_saved_status() {
    let app = spawn_app().await;
    app.create_business("Acme", "owner@acme.test").await;
    let client = app.login("owner@acme.test").await;

    let mut fields = all_defaults_on();
    fields.push(("action", "switches"));
    fields.push(("notification_email", "owner@acme.test"));
    fields.push(("notification_phone", "555-555-01"));
    let response = app.post_htmx(&client, "/settings/notifications/defaults", &fields).await;

    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(
        html.starts_with("<div id=\"defaults-warnings\" hx-swap-oob=\"true\">"),
        "the switches are left as the person set them; only the warnings update: {}",
        &html[..80]
    );
    assert!(!html.contains("role=\"switch\""));
    assert!(html.contains("hx-swap-oob=\"innerHTML:#status\">Saved."));
    assert!(html.contains("SMS is on, but no notification phone number is set."));
    assert!(!html.contains("id=\"notification_phone\""), "what was typed is not touched");
    assert!(html.contains("not saved yet"), "and the page says it is not saved");
    assert!(
        html.contains("<section id=\"audit\" class=\"card\" aria-labelledby=\"audit-title\" hx-swap-oob=\"true\">")
    );
    assert!(html.contains("Acme Owner turned SMS on for the business"), "Recent changes is refreshed");
}

#[tokio::test]
async fn invalid_destinations_are_explained_next_to_the_field_and_nothing_is_saved() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let client = app.login("owner@acme.test").await;
    let before = app.defaults(&business.id).await;

    let mut fields = all_defaults_on();
    fields.push(("notification_email", "alerts@acme"));
    fields.push(("notification_phone", "(555) 555-0100"));
    fields.push(("action", "save"));
    let bad_email = app.post_form(&client, "/settings/notifications/defaults", &fields).await;

    assert_eq!(bad_email.status(), 422);
    let html = bad_email.text().await.unwrap();
    assert!(html.contains("id=\"notification_email-error\">“alerts@acme” is not a valid email address"));
    assert!(html.contains("value=\"alerts@acme\"") && html.contains("value=\"(555) 555-0100\""), "input kept");
    assert!(html.contains("aria-invalid=\"true\""));
    assert_eq!(app.defaults(&business.id).await, before, "the valid phone was not saved either");

    let mut fields = all_defaults_on();
    fields.push(("notification_email", "alerts@acme.test"));
    fields.push(("notification_phone", "555-0100"));
    fields.push(("action", "save"));
    let bad_phone = app.post_htmx(&client, "/settings/notifications/defaults", &fields).await;

    assert_eq!(bad_phone.status(), 422);
    let html = bad_phone.text().await.unwrap();
    assert!(html.contains("id=\"notification_phone-error\">“555-0100” is not a phone number we can text"));
    assert!(html.contains("Not saved: fix the highlighted fields."));
    assert_eq!(app.defaults(&business.id).await, before);
}

#[tokio::test]
async fn clearing_a_destination_is_allowed_and_warned_about() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let client = app.login("owner@acme.test").await;

    let mut fields = all_defaults_on();
    fields.push(("notification_email", ""));
    fields.push(("notification_phone", ""));
    fields.push(("action", "save"));
    assert_eq!(app.post_form(&client, "/settings/notifications/defaults", &fields).await.status(), 303);

    assert!(app.defaults(&business.id).await.notification_email.is_none());
    let page = app.get_html(&client, "/settings/notifications").await;
    assert!(page.contains("Email is on, but no notification email address is set."));
    assert!(page.contains("SMS is on, but no notification phone number is set."));
}

#[tokio::test]
async fn add_notification_users_from_the_team_list_and_set_their_preferences() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let sam = app.add_user(&business, "Sam Rivera", "sam@acme.test", Some("(555) 555-0101"), Role::Member).await;
    let client = app.login("owner@acme.test").await;

    // Steps 1-2: the picker lists team members who are not recipients yet.
    let page = app.get_html(&client, "/settings/notifications").await;
    assert!(page.contains(&format!("<option value=\"{}\">Sam Rivera (sam@acme.test)</option>", sam.id)));

    // Step 3: Add.
    let added = app.post_htmx(&client, "/settings/notifications/recipients", &[("user_id", &sam.id.to_string())]).await;
    assert_eq!(added.status(), 200);
    let html = added.text().await.unwrap();
    assert!(html.contains("Added Sam Rivera."));
    assert!(!html.contains(&format!("<option value=\"{}\">", sam.id)), "no longer offered in the picker");
    let id = app.recipient_id(sam.id).await.expect("Sam is a recipient");

    // Step 4-5: channels and threshold, saved.
    let saved = app
        .post_htmx(
            &client,
            &format!("/settings/notifications/recipients/{id}"),
            &[("email_enabled", "on"), ("lead_created", "on"), ("lead_updated", "on"), ("min_lead_score", "70")],
        )
        .await;
    assert_eq!(saved.status(), 200);
    let html = saved.text().await.unwrap();
    assert!(html.starts_with(&format!("<tbody class=\"recipient\" id=\"recipient-{id}\"")), "the row, redrawn");
    assert!(html.contains("Saved Sam Rivera’s preferences."));

    let restarted = spawn_app_in(app.dir.clone(), app.smtp.clone()).await;
    let sam_row = restarted.recipient(&business.id, id).await.unwrap();
    // New recipients start without SMS (it is opt-in); SMS was off for the business anyway.
    assert_eq!(sam_row.prefs.channels, ChannelSet { email: true, sms: false, in_app: false });
    assert!(sam_row.prefs.kinds.lead_created && sam_row.prefs.kinds.lead_updated);
    assert!(!sam_row.prefs.kinds.usage && !sam_row.prefs.kinds.billing);
    assert_eq!(sam_row.prefs.min_lead_score.value(), 70);
    let page = restarted.get_html(&restarted.login("owner@acme.test").await, "/settings/notifications").await;
    assert!(page.contains("Acme Owner added Sam Rivera to the notification recipients"));
    assert!(page.contains("Acme Owner raised Sam Rivera’s lead-score threshold 0 → 70"));
}

#[tokio::test]
async fn adding_someone_twice_or_nobody_says_so() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let client = app.login("owner@acme.test").await;

    let nobody = app.post_htmx(&client, "/settings/notifications/recipients", &[("user_id", "")]).await;
    assert_eq!(nobody.status(), 422);
    assert!(nobody.text().await.unwrap().contains("Choose a team member to add."));

    let twice = app
        .post_form(&client, "/settings/notifications/recipients", &[("user_id", &business.owner.id.to_string())])
        .await;
    assert_eq!(twice.status(), 409);
    assert!(twice.text().await.unwrap().contains("Acme Owner is already a recipient."));
}

#[tokio::test]
async fn a_bad_threshold_is_refused_with_the_input_kept() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let client = app.login("owner@acme.test").await;
    let id = app.recipient_id(business.owner.id).await.unwrap();
    let before = app.recipient(&business.id, id).await;

    for (input, message) in
        [("101", "between 0 and 100"), ("seventy", "is not a whole number"), ("", "Enter a lead-score threshold")]
    {
        let response = app
            .post_htmx(
                &client,
                &format!("/settings/notifications/recipients/{id}"),
                &[("min_lead_score", input), ("sms_enabled", "on")],
            )
            .await;
        assert_eq!(response.status(), 422, "{input:?}");
        let html = response.text().await.unwrap();
        assert!(html.contains(message), "{input:?}");
        assert!(
            html.contains(&format!(
                "name=\"r{id}-min_lead_score\" form=\"recipient-grid\" min=\"0\" max=\"100\" step=\"1\" value=\"{input}\""
            )),
            "{input:?} kept"
        );
        assert_eq!(app.recipient(&business.id, id).await, before, "nothing saved for {input:?}");
    }
    let page =
        app.post_form(&client, &format!("/settings/notifications/recipients/{id}"), &[("min_lead_score", "500")]).await;
    assert_eq!(page.status(), 422);
    assert!(
        page.text().await.unwrap().contains("<h1>Notifications</h1>"),
        "without JavaScript the whole page comes back"
    );
}

#[tokio::test]
async fn turning_sms_off_for_the_business_keeps_each_persons_choice_for_when_it_returns() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let ann = app.add_user(&business, "Ann", "ann@acme.test", Some("(555) 555-0101"), Role::Member).await;
    let owner = app.login("owner@acme.test").await;
    let member = app.login("ann@acme.test").await;
    let mut sms_on = all_defaults_on();
    sms_on.push(("action", "switches"));
    assert_eq!(app.post_htmx(&owner, "/settings/notifications/defaults", &sms_on).await.status(), 200);
    let id = app.add_recipient(&owner, ann.id).await;
    let mine = [("sms_enabled", "on"), ("email_enabled", "on"), ("lead_created", "on"), ("min_lead_score", "40")];
    assert_eq!(app.post_form(&member, &format!("/settings/notifications/recipients/{id}"), &mine).await.status(), 303);

    // The owner turns SMS off for the business.
    let mut sms_off = all_defaults_on();
    sms_off.retain(|(k, _)| *k != "sms_enabled");
    sms_off.push(("action", "switches"));
    app.post_htmx(&owner, "/settings/notifications/defaults", &sms_off).await;

    let page = app.get_html(&member, "/settings/notifications").await;
    assert!(page.contains("SMS is off for the business"));
    assert!(
        page.contains(&format!(
            "id=\"r{id}-sms_enabled\" name=\"r{id}-sms_enabled\" form=\"recipient-grid\" checked aria-disabled=\"true\""
        )),
        "shown as chosen, greyed"
    );
    // Ann saves her row meanwhile: the disabled box is not sent, yet her SMS choice stays.
    let narrowed = [("email_enabled", "on"), ("lead_created", "on"), ("min_lead_score", "60")];
    app.post_form(&member, &format!("/settings/notifications/recipients/{id}"), &narrowed).await;
    assert!(app.recipient(&business.id, id).await.unwrap().prefs.channels.sms);

    // The owner turns SMS back on: Ann's earlier choice returns.
    app.post_htmx(&owner, "/settings/notifications/defaults", &sms_on).await;
    let page = app.get_html(&member, "/settings/notifications").await;
    assert!(
        page.contains(&format!("id=\"r{id}-sms_enabled\" name=\"r{id}-sms_enabled\" form=\"recipient-grid\" checked>"))
    );
    let row = app.recipient(&business.id, id).await.unwrap();
    assert!(row.prefs.channels.sms);
    assert_eq!(row.prefs.min_lead_score.value(), 60);
}

#[tokio::test]
async fn a_teammate_narrows_their_own_preferences_and_sees_the_rest_read_only() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let ann = app.add_user(&business, "Ann", "ann@acme.test", None, Role::Member).await;
    let owner = app.login("owner@acme.test").await;
    let id = app.add_recipient(&owner, ann.id).await;
    let owner_row = app.recipient_id(business.owner.id).await.unwrap();
    let mut sms_on = all_defaults_on();
    sms_on.push(("action", "switches"));
    app.post_htmx(&owner, "/settings/notifications/defaults", &sms_on).await;
    let member = app.login("ann@acme.test").await;

    let page = app.get_html(&member, "/settings/notifications").await;
    assert!(page.contains("Only owners and admins can change the business defaults."));
    assert!(!page.contains("action=\"/settings/notifications/defaults\""), "no defaults form for members");
    assert!(page.contains(&format!("hx-post=\"/settings/notifications/recipients/{id}\"")), "her own row saves");
    assert!(
        page.contains(&format!("name=\"row\" value=\"{id}\" form=\"recipient-grid\"")),
        "and is in the grid's form"
    );
    assert!(
        !page.contains(&format!("hx-post=\"/settings/notifications/recipients/{owner_row}\""))
            && !page.contains(&format!("name=\"row\" value=\"{owner_row}\"")),
        "the owner's does not"
    );
    assert!(page.contains(&format!(
        "id=\"r{owner_row}-email_enabled\" name=\"r{owner_row}-email_enabled\" form=\"recipient-grid\" checked disabled"
    )));
    assert!(!page.contains("Add recipient"));
    assert!(page.contains("Add your phone number in Account to get SMS."), "SMS without a phone says where to add one");

    // FAQ: "A teammate gets too many notifications": raise the threshold, turn off a channel.
    let response = app
        .post_htmx(
            &member,
            &format!("/settings/notifications/recipients/{id}"),
            &[("email_enabled", "on"), ("lead_created", "on"), ("min_lead_score", "80")],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("Saved your preferences."));
    let row = app.recipient(&business.id, id).await.unwrap();
    assert_eq!(row.prefs.min_lead_score.value(), 80);
    assert!(!row.prefs.channels.in_app && !row.prefs.kinds.usage);
    let page = app.get_html(&owner, "/settings/notifications").await;
    assert!(page.contains("Ann raised their lead-score threshold 0 → 80"));
    assert!(page.contains("Ann turned their In-app alerts off"));
}

#[tokio::test]
async fn a_member_who_is_not_a_recipient_is_told_who_can_add_them() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    app.add_user(&business, "Ann", "ann@acme.test", None, Role::Member).await;
    let member = app.login("ann@acme.test").await;

    let page = app.get_html(&member, "/settings/notifications").await;

    assert!(page.contains("You are not a notification recipient yet. Ask an owner or admin (Acme Owner) to add you."));
}

#[tokio::test]
async fn removing_a_recipient_stops_their_alerts_and_is_recorded() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let ann = app.add_user(&business, "Ann", "ann@acme.test", None, Role::Member).await;
    let owner = app.login("owner@acme.test").await;
    let id = app.add_recipient(&owner, ann.id).await;

    let response = app
        .post_htmx(&owner, &format!("/settings/notifications/recipients/{id}/remove"), &[("confirmed", "yes")])
        .await;

    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("Removed Ann from the recipients."));
    assert!(html.contains(&format!("<option value=\"{}\">Ann (ann@acme.test)</option>", ann.id)), "offered again");
    assert!(app.recipient_id(ann.id).await.is_none());
    let page = app.get_html(&owner, "/settings/notifications").await;
    assert!(page.contains("Acme Owner removed Ann from the notification recipients"));
}

#[tokio::test]
async fn without_javascript_removing_a_recipient_asks_first() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let ann = app.add_user(&business, "Ann", "ann@acme.test", None, Role::Member).await;
    let owner = app.login("owner@acme.test").await;
    let id = app.add_recipient(&owner, ann.id).await;

    let asked = app.post_form(&owner, &format!("/settings/notifications/recipients/{id}/remove"), &[]).await;

    assert_eq!(asked.status(), 200);
    let html = asked.text().await.unwrap();
    assert!(html.contains("<h1>Remove Ann?</h1>") && html.contains("name=\"confirmed\" value=\"yes\""));
    assert!(app.recipient_id(ann.id).await.is_some(), "nothing removed yet");
    let removed = app
        .post_form(&owner, &format!("/settings/notifications/recipients/{id}/remove"), &[("confirmed", "yes")])
        .await;
    assert_eq!(removed.status(), 303);
    assert!(app.recipient_id(ann.id).await.is_none());
}

/// Form fields of one row of the recipients grid.
fn grid_row(row: i64, checked: &[&str], threshold: &str) -> Vec<(String, String)> {
    let mut fields =
        vec![("row".to_owned(), row.to_string()), (format!("r{row}-min_lead_score"), threshold.to_owned())];
    fields.extend(checked.iter().map(|f| (format!("r{row}-{f}"), "on".to_owned())));
    fields
}

#[tokio::test]
async fn saving_the_whole_grid_without_javascript_saves_every_row_or_none() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let ann = app.add_user(&business, "Ann", "ann@acme.test", None, Role::Member).await;
    let owner = app.login("owner@acme.test").await;
    let ann_row = app.add_recipient(&owner, ann.id).await;
    let owner_row = app.recipient_id(business.owner.id).await.unwrap();
    let (owner_before, ann_before) =
        (app.recipient(&business.id, owner_row).await, app.recipient(&business.id, ann_row).await);

    // One bad threshold: nothing is saved, and every row comes back as it was typed.
    let mut typed = grid_row(owner_row, &["email_enabled", "lead_created"], "55");
    typed.extend(grid_row(ann_row, &["in_app_enabled", "lead_created"], "150"));
    let fields: Vec<(&str, &str)> = typed.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let refused = app.post_form(&owner, "/settings/notifications/recipients/save", &fields).await;
    assert_eq!(refused.status(), 422);
    let html = refused.text().await.unwrap();
    assert!(html.contains("Not saved: fix the lead-score threshold of Ann."));
    assert!(html.contains("between 0 and 100"), "the message sits by Ann's threshold");
    assert!(html.contains(&format!(
        "name=\"r{ann_row}-min_lead_score\" form=\"recipient-grid\" min=\"0\" max=\"100\" step=\"1\" value=\"150\""
    )));
    assert!(html.contains(&format!(
        "name=\"r{owner_row}-min_lead_score\" form=\"recipient-grid\" min=\"0\" max=\"100\" step=\"1\" value=\"55\""
    )));
    assert!(
        html.contains(&format!("name=\"r{ann_row}-email_enabled\" form=\"recipient-grid\">")),
        "Ann's email unticked, as typed"
    );
    assert_eq!(app.recipient(&business.id, owner_row).await, owner_before);
    assert_eq!(app.recipient(&business.id, ann_row).await, ann_before);

    // Fixed: both rows are saved by the one press.
    let mut typed = grid_row(owner_row, &["email_enabled", "lead_created"], "55");
    typed.extend(grid_row(ann_row, &["in_app_enabled", "lead_created"], "70"));
    let fields: Vec<(&str, &str)> = typed.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let saved = app.post_form(&owner, "/settings/notifications/recipients/save", &fields).await;
    assert_eq!(saved.status(), 303);
    assert_eq!(saved.headers()["location"], "/settings/notifications?saved=recipients#recipients");
    let (o, a) =
        (app.recipient(&business.id, owner_row).await.unwrap(), app.recipient(&business.id, ann_row).await.unwrap());
    assert_eq!((o.prefs.channels.email, o.prefs.channels.in_app, o.prefs.min_lead_score.value()), (true, false, 55));
    assert_eq!((a.prefs.channels.email, a.prefs.channels.in_app, a.prefs.min_lead_score.value()), (false, true, 70));
    assert!(a.prefs.kinds.lead_created && !a.prefs.kinds.lead_updated);
    let page = app.get_html(&owner, "/settings/notifications?saved=recipients").await;
    assert!(page.contains("Recipient preferences saved."));
    assert!(page.contains("Acme Owner raised Ann’s lead-score threshold 0 → 70"));

    // The same press again changes nothing and says so.
    let again = app.post_form(&owner, "/settings/notifications/recipients/save", &fields).await;
    assert_eq!(again.headers()["location"], "/settings/notifications?saved=unchanged#recipients");

    // A teammate's grid holds only their own row; slipping in the owner's is refused whole.
    let member = app.login("ann@acme.test").await;
    let mut forged = grid_row(ann_row, &["email_enabled"], "10");
    forged.extend(grid_row(owner_row, &[], "99"));
    let fields: Vec<(&str, &str)> = forged.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(app.post_form(&member, "/settings/notifications/recipients/save", &fields).await.status(), 403);
    assert_eq!(app.recipient(&business.id, owner_row).await.unwrap().prefs.min_lead_score.value(), 55);
    assert_eq!(app.recipient(&business.id, ann_row).await.unwrap().prefs.min_lead_score.value(), 70);
}
