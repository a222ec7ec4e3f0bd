//! Team Members: list, invite and remove people; accept an invitation.
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use super::error::AppError;
use super::extract::{CsrfForm, CurrentUser, NoFields, csrf_token, sign_in};
use super::shell::{PublicAssets, Shell};
use super::{AppState, blocking, render, see_other};
use crate::clock::{format_utc, unix_now};
use crate::db;
use crate::db::invitations::InvitationProblem;
use crate::dispatch::email::OutgoingEmail;
use crate::domain::audit::Change;
use crate::domain::text::html_escape;
use crate::domain::{EmailAddress, PersonName, PhoneNumber, Role, password};
use crate::tokens;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(team_page)
        .service(add_member)
        .service(remove_member)
        .service(invitation_page)
        .service(accept_invitation);
}

const INVITATION_LIFETIME_SECS: i64 = 72 * 3600;

pub struct MemberView {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub phone: String,
    pub role: &'static str,
    pub invited: bool,
    pub is_recipient: bool,
    pub removable: bool,
}

#[derive(Default)]
pub struct AddForm {
    pub name: String,
    pub email: String,
    pub phone: String,
    pub role: String,
    pub name_error: Option<String>,
    pub email_error: Option<String>,
    pub phone_error: Option<String>,
    pub role_error: Option<String>,
}

pub struct InviteShown {
    pub name: String,
    pub link: String,
    pub delivery: String,
    pub delivered: bool,
}

#[derive(Template)]
#[template(path = "team.html")]
struct TeamPage {
    shell: Shell,
    members: Vec<MemberView>,
    can_manage: bool,
    form: AddForm,
    invite: Option<InviteShown>,
    status: Option<String>,
}

async fn team_page_view(
    state: &AppState,
    me: &CurrentUser,
    form: AddForm,
    invite: Option<InviteShown>,
    status: Option<String>,
) -> Result<TeamPage, AppError> {
    let users = db::users::list_active(&state.pool, me.business_id()).await?;
    let recipients = db::recipients::list(&state.pool, me.business_id()).await?;
    let members = users
        .into_iter()
        .map(|u| MemberView {
            removable: me.manages_business() && u.role != Role::Owner && u.id != me.user.id,
            is_recipient: recipients.iter().any(|r| r.user_id == u.id),
            id: u.id,
            name: u.name,
            email: u.email,
            phone: u.phone.map(|p| p.to_string()).unwrap_or_default(),
            role: u.role.label(),
            invited: !u.has_password,
        })
        .collect();
    Ok(TeamPage { shell: Shell::new(me, "team"), members, can_manage: me.manages_business(), form, invite, status })
}

#[derive(Deserialize)]
struct TeamQuery {
    removed: Option<String>,
}

#[get("/team")]
async fn team_page(
    me: CurrentUser,
    state: web::Data<AppState>,
    query: web::Query<TeamQuery>,
) -> Result<HttpResponse, AppError> {
    let status = query.removed.as_ref().map(|name| format!("Removed {name} from the team."));
    let form = AddForm { role: "member".into(), ..AddForm::default() };
    render(StatusCode::OK, &team_page_view(&state, &me, form, None, status).await?)
}

#[derive(Deserialize)]
struct AddMember {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    role: String,
}

#[post("/team/members")]
async fn add_member(
    me: CurrentUser,
    state: web::Data<AppState>,
    CsrfForm(input): CsrfForm<AddMember>,
) -> Result<HttpResponse, AppError> {
    me.require_manager("add team members")?;
    let business = db::businesses::get(&state.pool, me.business_id()).await?.ok_or(AppError::NotFound)?;
    let mut form = AddForm {
        name: input.name.clone(),
        email: input.email.clone(),
        phone: input.phone.clone(),
        role: input.role.clone(),
        ..AddForm::default()
    };
    let name = PersonName::parse(&input.name).map_err(|e| form.name_error = Some(e)).ok();
    let email = EmailAddress::parse(&input.email).map_err(|e| form.email_error = Some(e)).ok();
    let phone = if input.phone.trim().is_empty() {
        Some(None)
    } else {
        PhoneNumber::parse(&input.phone, business.region()).map(Some).map_err(|e| form.phone_error = Some(e)).ok()
    };
    let role = match Role::parse(input.role.trim()) {
        Ok(Role::Owner) | Err(_) => {
            form.role_error = Some("Choose Admin or Member.".into());
            None
        }
        Ok(role) => Some(role),
    };
    let (Some(name), Some(email), Some(phone), Some(role)) = (name, email, phone, role) else {
        let page =
            team_page_view(&state, &me, form, None, Some("Not added: fix the highlighted fields.".into())).await?;
        return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
    };

    let token = tokens::random_token();
    let now = unix_now();
    let mut tx = db::begin_write(&state.pool).await?;
    let new_user = db::users::NewUser {
        business_id: me.business_id(),
        name: &name,
        email: &email,
        phone: phone.as_ref(),
        role,
        password_hash: None,
    };
    let user_id = match db::users::insert(&mut tx, new_user, now).await {
        Ok(id) => id,
        Err(e) if db::is_unique_violation(&e) => {
            drop(tx);
            form.email_error = Some(format!("{email} already has a KaiCalls account, so it cannot be added again."));
            let page =
                team_page_view(&state, &me, form, None, Some("Not added: fix the highlighted fields.".into())).await?;
            return render(StatusCode::CONFLICT, &page);
        }
        Err(e) => return Err(e.into()),
    };
    db::invitations::create(&mut tx, user_id, &tokens::fingerprint(&token), now + INVITATION_LIFETIME_SECS).await?;
    let change = Change::new("team.added", None, Some(role.label().into()));
    db::audit::record(&mut tx, me.business_id(), Some(me.user.id), Some(user_id), &[change], now).await?;
    tx.commit().await?;

    let link = state.config.public_url.join(&format!("invite/{token}")).map(|u| u.to_string()).unwrap_or_default();
    let expires = format_utc(now + INVITATION_LIFETIME_SECS);
    let sent = state.mailer.send(invitation_email(&me, &name, &email, &link, &expires)).await;
    let (delivered, delivery) = match sent {
        Ok(()) => (true, format!("We emailed the link to {email}.")),
        Err(e) => {
            tracing::warn!(error = %e, "invitation email not sent");
            (false, format!("We could not email {email} ({e}). Copy the link below and send it yourself."))
        }
    };
    let invite = InviteShown { name: name.as_str().to_owned(), link, delivery, delivered };
    let blank = AddForm { role: "member".into(), ..AddForm::default() };
    let status = Some(format!("Added {name} to the team.", name = name.as_str()));
    render(StatusCode::OK, &team_page_view(&state, &me, blank, Some(invite), status).await?)
}

fn invitation_email(
    me: &CurrentUser,
    name: &PersonName,
    to: &EmailAddress,
    link: &str,
    expires: &str,
) -> OutgoingEmail {
    let business = &me.business_name;
    let inviter = &me.user.name;
    let text = format!(
        "Hi {name},\n\n{inviter} added you to {business} on KaiCalls, so you can hear about new leads the moment Kai captures them.\n\n\
         Set your password to get started (this link works once, until {expires}):\n{link}\n\n\
         If you did not expect this, you can ignore this email.\n",
        name = name.as_str()
    );
    let html = format!(
        "<p>Hi {name},</p><p>{inviter} added you to <strong>{business}</strong> on KaiCalls, so you can hear about new leads \
         the moment Kai captures them.</p><p><a href=\"{link}\">Set your password</a> to get started. This link works once, \
         until {expires}.</p><p>If you did not expect this, you can ignore this email.</p>",
        name = html_escape(name.as_str()),
        inviter = html_escape(inviter),
        business = html_escape(business),
        link = html_escape(link),
    );
    OutgoingEmail {
        to: to.clone(),
        to_name: Some(name.as_str().to_owned()),
        subject: format!("{inviter} invited you to {business} on KaiCalls"),
        text,
        html,
        message_id: None,
        unsubscribe_url: None,
    }
}

#[post("/team/members/{id}/remove")]
async fn remove_member(
    me: CurrentUser,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<HttpResponse, AppError> {
    let user =
        db::users::get_active(&state.pool, me.business_id(), path.into_inner()).await?.ok_or(AppError::NotFound)?;
    me.require_manager("remove team members")?;
    if user.role == Role::Owner {
        return Err(AppError::Forbidden("The business owner cannot be removed.".into()));
    }
    if user.id == me.user.id {
        return Err(AppError::Forbidden("You cannot remove yourself. Ask the owner to remove you.".into()));
    }
    let now = unix_now();
    let mut tx = db::begin_write(&state.pool).await?;
    db::users::remove(&mut tx, me.business_id(), user.id, now).await?;
    db::audit::record(
        &mut tx,
        me.business_id(),
        Some(me.user.id),
        Some(user.id),
        &[Change::new("team.removed", None, None)],
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user_id = user.id, "team member removed");
    let query = serde_urlencoded::to_string([("removed", user.name.as_str())]).unwrap_or_default();
    Ok(see_other(&format!("/team?{query}")))
}

// ---- accepting an invitation ----

#[derive(Template)]
#[template(path = "invitation.html")]
struct InvitationPage {
    assets: PublicAssets,
    csrf_token: String,
    token: String,
    name: String,
    email: String,
    problem: Option<String>,
    error: Option<String>,
}

fn problem_text(problem: InvitationProblem) -> String {
    match problem {
        InvitationProblem::Unknown => "This invitation link is not valid. Ask whoever invited you to send a new one.",
        InvitationProblem::Used => "This invitation was already used. Sign in with your email and password instead.",
        InvitationProblem::Expired => {
            "This invitation has expired (links work for 72 hours). Ask whoever invited you to add you again."
        }
    }
    .to_owned()
}

#[get("/invite/{token}")]
async fn invitation_page(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    let found = db::invitations::find(&state.pool, &tokens::fingerprint(&token), unix_now()).await?;
    let (name, email, problem, status) = match found {
        Ok(i) => (i.name, i.email, None, StatusCode::OK),
        Err(p) => (String::new(), String::new(), Some(problem_text(p)), StatusCode::NOT_FOUND),
    };
    let page = InvitationPage {
        assets: PublicAssets::new(),
        csrf_token: csrf_token(&session)?,
        token,
        name,
        email,
        problem,
        error: None,
    };
    render(status, &page)
}

#[derive(Deserialize)]
struct AcceptForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm_password: String,
}

#[post("/invite/{token}")]
async fn accept_invitation(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<AcceptForm>,
) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    let token_hash = tokens::fingerprint(&token);
    let invitation = match db::invitations::find(&state.pool, &token_hash, unix_now()).await? {
        Ok(i) => i,
        Err(p) => {
            let page = InvitationPage {
                assets: PublicAssets::new(),
                csrf_token: csrf_token(&session)?,
                token,
                name: String::new(),
                email: String::new(),
                problem: Some(problem_text(p)),
                error: None,
            };
            return render(StatusCode::NOT_FOUND, &page);
        }
    };
    if let Err(message) = password::check_new(&form.password, &form.confirm_password) {
        let page = InvitationPage {
            assets: PublicAssets::new(),
            csrf_token: csrf_token(&session)?,
            token,
            name: invitation.name,
            email: invitation.email,
            problem: None,
            error: Some(message),
        };
        return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
    }
    let new_password = form.password.clone();
    let hash = blocking(move || password::hash(&new_password)).await??;
    let mut tx = db::begin_write(&state.pool).await?;
    if !db::invitations::mark_used(&mut tx, &token_hash, unix_now()).await? {
        return Err(AppError::BadRequest(problem_text(InvitationProblem::Used)));
    }
    db::users::set_password(&mut tx, invitation.user_id, &hash).await?;
    tx.commit().await?;
    sign_in(&session, invitation.user_id)?;
    tracing::info!(user_id = invitation.user_id, business_id = %invitation.business_id, "invitation accepted");
    Ok(see_other("/settings/notifications"))
}
