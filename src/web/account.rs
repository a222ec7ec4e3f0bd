//! Account: everyone edits their own name, phone and password.
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use super::error::AppError;
use super::extract::{CsrfForm, CurrentUser, sign_in};
use super::shell::Shell;
use super::{AppState, render, see_other};
use crate::db;
use crate::domain::{PersonName, PhoneNumber, password};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(account_page).service(save_profile).service(change_password);
}

#[derive(Default)]
pub struct ProfileForm {
    pub name: String,
    pub phone: String,
    pub name_error: Option<String>,
    pub phone_error: Option<String>,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    shell: Shell,
    email: String,
    profile: ProfileForm,
    password_error: Option<String>,
    status: Option<String>,
}

fn page(
    me: &CurrentUser,
    profile: Option<ProfileForm>,
    password_error: Option<String>,
    status: Option<String>,
) -> AccountPage {
    let profile = profile.unwrap_or_else(|| ProfileForm {
        name: me.user.name.clone(),
        phone: me.user.phone.as_ref().map(|p| p.local(me.region)).unwrap_or_default(),
        ..ProfileForm::default()
    });
    AccountPage { shell: Shell::new(me, "account"), email: me.user.email.clone(), profile, password_error, status }
}

#[derive(Deserialize)]
struct AccountQuery {
    saved: Option<String>,
}

#[get("/account")]
async fn account_page(me: CurrentUser, query: web::Query<AccountQuery>) -> Result<HttpResponse, AppError> {
    let status = match query.saved.as_deref() {
        Some("profile") => Some("Profile saved.".to_owned()),
        Some("password") => Some("Password changed. You were signed out everywhere else.".to_owned()),
        _ => None,
    };
    render(StatusCode::OK, &page(&me, None, None, status))
}

#[derive(Deserialize)]
struct ProfileInput {
    #[serde(default)]
    name: String,
    #[serde(default)]
    phone: String,
}

#[post("/account/profile")]
async fn save_profile(
    me: CurrentUser,
    state: web::Data<AppState>,
    CsrfForm(input): CsrfForm<ProfileInput>,
) -> Result<HttpResponse, AppError> {
    let mut form = ProfileForm { name: input.name.clone(), phone: input.phone.clone(), ..ProfileForm::default() };
    let name = PersonName::parse(&input.name).map_err(|e| form.name_error = Some(e)).ok();
    let phone = if input.phone.trim().is_empty() {
        Some(None)
    } else {
        PhoneNumber::parse(&input.phone, me.region).map(Some).map_err(|e| form.phone_error = Some(e)).ok()
    };
    let (Some(name), Some(phone)) = (name, phone) else {
        let status = Some("Not saved: fix the highlighted fields.".to_owned());
        return render(StatusCode::UNPROCESSABLE_ENTITY, &page(&me, Some(form), None, status));
    };
    let (business, user_id) = (me.business_id().to_owned(), me.user.id);
    state
        .db
        .write(move |w| {
            Box::pin(async move { db::users::update_profile(w, &business, user_id, &name, phone.as_ref()).await })
        })
        .await?;
    Ok(see_other("/account?saved=profile"))
}

#[derive(Deserialize)]
struct PasswordInput {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

#[post("/account/password")]
async fn change_password(
    me: CurrentUser,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(input): CsrfForm<PasswordInput>,
) -> Result<HttpResponse, AppError> {
    let refuse = |message: String| render(StatusCode::UNPROCESSABLE_ENTITY, &page(&me, None, Some(message), None));
    if let Err(message) = password::check_new(&input.new_password, &input.confirm_password) {
        return refuse(message);
    }
    let stored = db::users::password_hash(&mut state.db.read().await?, me.user.id).await?.unwrap_or_default();
    let (current, new) = (input.current_password.clone(), input.new_password.clone());
    let checked = state
        .hasher
        .run(move || password::verify(&current, &stored).then(|| password::hash(&new)))
        .await
        .map_err(|_| AppError::Busy)?;
    let Some(hash) = checked else {
        return refuse("Your current password is not right.".into());
    };
    let (hash, user_id) = (hash?, me.user.id);
    state.db.write(move |w| Box::pin(async move { db::users::set_password(w, user_id, &hash).await })).await?;
    // Every session of this user was deleted; this one continues under a new id.
    sign_in(&session, me.user.id)?;
    Ok(see_other("/account?saved=password"))
}
