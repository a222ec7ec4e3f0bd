//! Team Members: list, invite and remove people; accept an invitation.
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use super::error::AppError;
use super::extract::{CsrfForm, CurrentUser, NoFields, PublicForm, sign_in};
use super::limits::wait_words;
use super::phone_confirm;
use super::shell::{PublicAssets, Shell};
use super::{AppState, render, render_public, retry_after_secs, see_other};
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
    /// A phone whose code has not been typed back yet (no texts go to it).
    pub phone_unconfirmed: bool,
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
    let mut conn = state.db.read().await?;
    let users = db::users::list_active(&mut conn, me.business_id()).await?;
    let recipients = db::recipients::list(&mut conn, me.business_id()).await?;
    drop(conn);
    let members = users
        .into_iter()
        .map(|u| MemberView {
            removable: me.manages_business() && u.role != Role::Owner && u.id != me.user.id,
            is_recipient: recipients.iter().any(|r| r.user_id == u.id),
            id: u.id,
            name: u.name,
            email: u.email,
            phone_unconfirmed: u.phone.is_some() && !u.phone_confirmed,
            phone: u.phone.map(|p| p.local(me.region)).unwrap_or_default(),
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
        PhoneNumber::parse(&input.phone, me.region).map(Some).map_err(|e| form.phone_error = Some(e)).ok()
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

    if let Err(wait) = state.limits.invitations.hit(me.business_id()) {
        let status = format!(
            "Not added: {} invitations an hour is the most we send for a business. Wait {}, then add {}.",
            state.limits.invitations.max(),
            wait_words(wait),
            name.as_str()
        );
        let mut response =
            render(StatusCode::TOO_MANY_REQUESTS, &team_page_view(&state, &me, form, None, Some(status)).await?)?;
        response.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from(retry_after_secs(wait)),
        );
        return Ok(response);
    }

    let token = tokens::random_token();
    let now = unix_now();
    let (business_id, actor, token_hash) = (me.business_id().to_owned(), me.user.id, tokens::fingerprint(&token));
    let (new_name, new_email, new_phone) = (name.clone(), email.clone(), phone.clone());
    let user_id = state
        .db
        .write(move |w| {
            Box::pin(async move {
                let new_user = db::users::NewUser {
                    business_id: &business_id,
                    name: &new_name,
                    email: &new_email,
                    phone: new_phone.as_ref(),
                    role,
                    password_hash: None,
                };
                let user_id = db::users::insert(w, new_user, now).await?;
                db::invitations::create(w, user_id, &token_hash, now + INVITATION_LIFETIME_SECS).await?;
                let change = Change::new("team.added", None, Some(role.label().into()));
                db::audit::record(w, &business_id, Some(actor), Some(user_id), &[change], now).await?;
                Ok(user_id)
            })
        })
        .await;
    let user_id = match user_id {
        Ok(id) => id,
        // Only someone already on this team can clash: an email with an account elsewhere gets
        // an invitation like any other, so this page never tells which emails use KaiCalls.
        Err(e) if db::is_unique_violation(&e) => {
            form.email_error = Some(format!("{email} is already on your team."));
            let page =
                team_page_view(&state, &me, form, None, Some("Not added: fix the highlighted fields.".into())).await?;
            return render(StatusCode::CONFLICT, &page);
        }
        Err(e) => return Err(e.into()),
    };

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
    let mut status = format!("Added {name} to the team.", name = name.as_str());
    // Their phone takes alerts once they type back the code texted to it (in Account).
    if let Some(phone) = &phone {
        let then = format!("{} types it in Account once signed in (a new one can be sent from there).", name.as_str());
        let sent = phone_confirm::send_code(&state, me.business_id(), &me.business_name, user_id, phone).await?;
        status.push(' ');
        status.push_str(&sent.words(&phone.local(me.region), &then).0);
    }
    let status = Some(status);
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
    let user = db::users::get_active(&mut state.db.read().await?, me.business_id(), path.into_inner())
        .await?
        .ok_or(AppError::NotFound)?;
    me.require_manager("remove team members")?;
    if user.role == Role::Owner {
        return Err(AppError::Forbidden("The business owner cannot be removed.".into()));
    }
    if user.id == me.user.id {
        return Err(AppError::Forbidden("You cannot remove yourself. Ask the owner to remove you.".into()));
    }
    let (business, actor, user_id) = (me.business_id().to_owned(), me.user.id, user.id);
    state
        .db
        .write(move |w| {
            Box::pin(async move {
                let now = unix_now();
                db::users::remove(w, &business, user_id, now).await?;
                let change = Change::new("team.removed", None, None);
                db::audit::record(w, &business, Some(actor), Some(user_id), &[change], now).await
            })
        })
        .await?;
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

/// The invitation page: who it is for, or what is wrong with the link, and a form error.
struct Invitee {
    token: String,
    name: String,
    email: String,
    problem: Option<String>,
    error: Option<String>,
}

impl Invitee {
    fn problem(token: String, problem: InvitationProblem) -> Self {
        Self { token, name: String::new(), email: String::new(), problem: Some(problem_text(problem)), error: None }
    }

    fn answer(self, req: &HttpRequest, state: &AppState, status: StatusCode) -> Result<HttpResponse, AppError> {
        render_public(req, state, status, |csrf_token| InvitationPage {
            assets: PublicAssets::new(),
            csrf_token,
            token: self.token,
            name: self.name,
            email: self.email,
            problem: self.problem,
            error: self.error,
        })
    }
}

#[get("/invite/{token}")]
async fn invitation_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    let found = db::invitations::find(&mut state.db.read().await?, &tokens::fingerprint(&token), unix_now()).await?;
    match found {
        Ok(i) => {
            let invitee = Invitee { token, name: i.name, email: i.email, problem: None, error: None };
            invitee.answer(&req, &state, StatusCode::OK)
        }
        Err(p) => Invitee::problem(token, p).answer(&req, &state, StatusCode::NOT_FOUND),
    }
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
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
    PublicForm(form): PublicForm<AcceptForm>,
) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    let token_hash = tokens::fingerprint(&token);
    let invitation = match db::invitations::find(&mut state.db.read().await?, &token_hash, unix_now()).await? {
        Ok(i) => i,
        Err(p) => return Invitee::problem(token, p).answer(&req, &state, StatusCode::NOT_FOUND),
    };
    let again = |error: String| Invitee {
        token: token.clone(),
        name: invitation.name.clone(),
        email: invitation.email.clone(),
        problem: None,
        error: Some(error),
    };
    if let Err(message) = password::check_new(&form.password, &form.confirm_password) {
        return again(message).answer(&req, &state, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let new_password = form.password.clone();
    let hash = state.hasher.run(move || password::hash(&new_password)).await.map_err(|_| AppError::Busy)??;
    let user_id = invitation.user_id;
    let accepted = state
        .db
        .write(move |w| {
            Box::pin(async move {
                if !db::invitations::mark_used(w, &token_hash, unix_now()).await? {
                    return Ok(false);
                }
                db::users::set_password(w, user_id, &hash).await?;
                Ok(true)
            })
        })
        .await;
    match accepted {
        Ok(true) => {}
        Ok(false) => return Err(AppError::BadRequest(problem_text(InvitationProblem::Used))),
        Err(e) if db::is_unique_violation(&e) => {
            let message = format!(
                "{} already has a KaiCalls account with another business, and an email can belong to one business \
                 at a time. Sign in with that account, or ask whoever invited you to use another email.",
                invitation.email
            );
            return again(message).answer(&req, &state, StatusCode::CONFLICT);
        }
        Err(e) => return Err(e.into()),
    }
    sign_in(&session, user_id)?;
    tracing::info!(user_id, business_id = %invitation.business_id, "invitation accepted");
    Ok(see_other("/"))
}
