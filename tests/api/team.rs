use kaicalls_notify::domain::Role;

use crate::helpers::{client, csrf_in, location, spawn_app};

fn invitation_link(html: &str) -> String {
    let marker = "id=\"invite-link\" value=\"";
    let start = html.find(marker).expect("the page shows the invitation link") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn an_owner_invites_a_teammate_who_sets_a_password_and_signs_in() {
    let app = spawn_app().await;
    app.create_business("Acme Plumbing", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;

    let response = app
        .post_form(
            &owner,
            "/team/members",
            &[("name", "Sam Rivera"), ("email", "sam@acme.test"), ("phone", "(555) 555-0101"), ("role", "member")],
        )
        .await;

    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("We emailed the link to sam@acme.test."));
    let link = invitation_link(&html);
    let path = &link[link.find("/invite/").unwrap()..];
    let emails = app.smtp.wait_for(1).await;
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].to, vec!["sam@acme.test".to_owned()]);
    let unfolded = emails[0].data.replace("=\n", "");
    assert!(unfolded.contains("Acme Plumbing"), "{unfolded}");
    assert!(unfolded.contains(path), "the email carries the same link");
    assert!(unfolded.contains("Content-Type: text/html") && unfolded.contains("Content-Type: text/plain"));
    let team = app.get_html(&owner, "/team").await;
    assert!(team.contains("Sam Rivera <span class=\"badge\">Invited</span>"));
    assert!(team.contains("(555) 555-0101"), "the phone in the local format");
    assert!(!team.contains("invite-link"), "the link is shown once");

    let sam = client();
    let form = app.get_html(&sam, path).await;
    assert!(form.contains("Welcome, Sam Rivera"));
    let csrf = csrf_in(&form);
    let short = sam
        .post(app.url(path))
        .form(&[("password", "short"), ("confirm_password", "short"), ("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(short.status(), 422);
    assert!(short.text().await.unwrap().contains("at least 10 characters"));
    let set = sam
        .post(app.url(path))
        .form(&[("password", "sams own password"), ("confirm_password", "sams own password"), ("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 303);
    assert_eq!(location(&set), "/", "a new teammate lands on the Dashboard");
    let page = app.get_html(&sam, "/settings/notifications").await;
    assert!(page.contains("You are not a notification recipient yet"));

    let reuse = client().get(app.url(path)).send().await.unwrap();
    assert_eq!(reuse.status(), 404);
    assert!(reuse.text().await.unwrap().contains("This invitation was already used."));
    assert_eq!(app.login_with(&client(), "sam@acme.test", "sams own password").await.status(), 303);
}

#[tokio::test]
async fn an_invited_person_cannot_sign_in_before_setting_a_password() {
    let app = spawn_app().await;
    app.create_business("Acme", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;
    app.post_form(&owner, "/team/members", &[("name", "Sam"), ("email", "sam@acme.test"), ("role", "member")]).await;

    assert_eq!(app.login_with(&client(), "sam@acme.test", "").await.status(), 422);
    assert_eq!(app.login_with(&client(), "sam@acme.test", "anything at all").await.status(), 401);
}

#[tokio::test]
async fn an_unknown_invitation_link_explains_itself() {
    let app = spawn_app().await;
    let response = client().get(app.url("/invite/not-a-real-token")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.text().await.unwrap().contains("This invitation link is not valid."));
}

#[tokio::test]
async fn adding_a_member_validates_each_field_and_keeps_the_input() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let owner = app.login("owner@acme.test").await;

    let response = app
        .post_form(&owner, "/team/members", &[("name", " "), ("email", "sam@"), ("phone", "12"), ("role", "owner")])
        .await;

    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert!(html.contains("id=\"member-name-error\">Enter a name."));
    assert!(html.contains("id=\"member-email-error\">“sam@” is not a valid email address"));
    assert!(html.contains("id=\"member-phone-error\">“12” is not a phone number we can text"));
    assert!(html.contains("id=\"member-role-error\">Choose Admin or Member."));
    assert!(html.contains("value=\"sam@\"") && html.contains("value=\"12\""));
    let people: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&app.pool).await.unwrap();
    assert_eq!(people, 1);

    let duplicate = app
        .post_form(&owner, "/team/members", &[("name", "Again"), ("email", "OWNER@acme.test"), ("role", "admin")])
        .await;
    assert_eq!(duplicate.status(), 409);
    assert!(duplicate.text().await.unwrap().contains("OWNER@acme.test is already on your team."));
    let _ = business;
}

#[tokio::test]
async fn removing_a_member_keeps_the_history_and_ends_their_recipient_row() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let sam = app.add_user(&business, "Sam", "sam@acme.test", None, Role::Member).await;
    let owner = app.login("owner@acme.test").await;
    app.add_recipient(&owner, sam.id).await;
    assert!(app.recipient_id(sam.id).await.is_some());

    let response = app.post_form(&owner, &format!("/team/members/{}/remove", sam.id), &[]).await;

    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/team?removed=Sam");
    assert!(app.get_html(&owner, "/team?removed=Sam").await.contains("Removed Sam from the team."));
    assert!(app.recipient_id(sam.id).await.is_none());
    let page = app.get_html(&owner, "/settings/notifications").await;
    assert!(page.contains("Acme Owner added Sam to the notification recipients"), "history keeps the name");
    assert!(page.contains("Acme Owner removed Sam from the team"));
    // The same email can be invited again later.
    let again = app
        .post_form(&owner, "/team/members", &[("name", "Sam"), ("email", "sam@acme.test"), ("role", "member")])
        .await;
    assert_eq!(again.status(), 200);
}

#[tokio::test]
async fn nobody_removes_the_owner_or_themselves() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let admin = app.add_user(&business, "Ada", "ada@acme.test", None, Role::Admin).await;
    let client = app.login("ada@acme.test").await;

    let owner = app.post_form(&client, &format!("/team/members/{}/remove", business.owner.id), &[]).await;
    assert_eq!(owner.status(), 403);
    assert!(owner.text().await.unwrap().contains("The business owner cannot be removed."));
    let myself = app.post_form(&client, &format!("/team/members/{}/remove", admin.id), &[]).await;
    assert_eq!(myself.status(), 403);
}

#[tokio::test]
async fn everyone_edits_their_own_name_and_phone() {
    let app = spawn_app().await;
    let business = app.create_business("Acme", "owner@acme.test").await;
    let ann = app.add_user(&business, "Ann", "ann@acme.test", None, Role::Member).await;
    let member = app.login("ann@acme.test").await;

    let bad = app.post_form(&member, "/account/profile", &[("name", "Ann Lee"), ("phone", "call me")]).await;
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.unwrap().contains("“call me” is not a phone number we can text"));

    let good = app.post_form(&member, "/account/profile", &[("name", "Ann Lee"), ("phone", "555.555.0109")]).await;
    assert_eq!(good.status(), 200);
    assert!(good.text().await.unwrap().contains("(555) 555-0109 is not confirmed"), "the page asks for the code");
    let user = kaicalls_notify::db::users::get_active(&mut app.db.read().await.unwrap(), &business.id, ann.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.name, "Ann Lee");
    assert_eq!(user.phone.unwrap().as_str(), "+15555550109");
}
