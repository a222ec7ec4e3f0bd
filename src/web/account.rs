//! Account: everyone edits their own name, phone and password.
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use super::error::AppError;
use super::extract::{CsrfForm, CurrentUser, NoFields, sign_in};
use super::notifications::Follow;
use super::phone_confirm::{self, PhoneCheck, Tell};
use super::shell::Shell;
use super::{AppState, render, see_other};
use crate::clock::unix_now_ms;
use crate::db;
use crate::domain::phone_code::Check;
use crate::domain::quiet::{Zone, zone_names, zone_or_region};
use crate::domain::{PersonName, PhoneNumber, password};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(account_page)
        .service(save_profile)
        .service(change_password)
        .service(send_code)
        .service(confirm_phone)
        .service(save_time_zone);
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
    /// Whether the phone on file takes texts (confirmed by code, not opted out).
    phone_check: Option<PhoneCheck>,
    /// Their own time zone ("" for the business's), the business's, and the names to pick from.
    zone: String,
    business_zone: String,
    zones: Vec<&'static str>,
    zone_error: Option<String>,
    password_error: Option<String>,
    status: Option<String>,
}

/// The page; `tell` is what to say about the phone (a code sent, a wrong code).
async fn page(
    state: &AppState,
    me: &CurrentUser,
    profile: Option<ProfileForm>,
    password_error: Option<String>,
    status: Option<String>,
    tell: Tell,
) -> Result<AccountPage, AppError> {
    let profile = profile.unwrap_or_else(|| ProfileForm {
        name: me.user.name.clone(),
        phone: me.user.phone.as_ref().map(|p| p.local(me.region)).unwrap_or_default(),
        ..ProfileForm::default()
    });
    let mut conn = state.db.read().await?;
    let phone_check = phone_confirm::check_view(&mut conn, me.business_id(), me.user.id, me.region, tell).await?;
    let own = db::users::time_zone(&mut conn, me.user.id).await?;
    let (business_zone, region) = db::businesses::time_zone(&mut conn, me.business_id()).await?;
    drop(conn);
    let business_zone = zone_or_region(business_zone.as_deref(), &region);
    Ok(AccountPage {
        shell: Shell::new(me, "account"),
        email: me.user.email.clone(),
        profile,
        phone_check,
        zone: own.unwrap_or_default(),
        business_zone: business_zone.name().to_owned(),
        zones: zone_names(),
        zone_error: None,
        password_error,
        status,
    })
}

#[derive(Deserialize)]
struct AccountQuery {
    saved: Option<String>,
}

#[get("/account")]
async fn account_page(
    me: CurrentUser,
    state: web::Data<AppState>,
    query: web::Query<AccountQuery>,
) -> Result<HttpResponse, AppError> {
    let status = match query.saved.as_deref() {
        Some("profile") => Some("Profile saved.".to_owned()),
        Some("password") => Some("Password changed. You were signed out everywhere else.".to_owned()),
        Some("phone") => Some("Phone confirmed: SMS alerts go to it from now on.".to_owned()),
        Some("zone") => Some("Time zone saved.".to_owned()),
        _ => None,
    };
    render(StatusCode::OK, &page(&state, &me, None, None, status, Tell::default()).await?)
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
        return render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &page(&state, &me, Some(form), None, status, Tell::default()).await?,
        );
    };
    let (business, user_id) = (me.business_id().to_owned(), me.user.id);
    let new_phone = phone.clone().filter(|p| Some(p) != me.user.phone.as_ref());
    state
        .db
        .write(move |w| {
            Box::pin(async move { db::users::update_profile(w, &business, user_id, &name, phone.as_ref()).await })
        })
        .await?;
    // A new number takes alerts once its code is typed back: the code goes now.
    let Some(new_phone) = new_phone else { return Ok(see_other("/account?saved=profile")) };
    let sent = phone_confirm::send_code(&state, me.business_id(), &me.business_name, me.user.id, &new_phone)
        .await?
        .words(&new_phone.local(me.region), phone_confirm::ENTER_BELOW);
    let status = Some("Profile saved. Confirm the new phone number below to get SMS alerts on it.".to_owned());
    render(StatusCode::OK, &page(&state, &me, None, None, status, Tell::said(sent)).await?)
}

/// `POST /account/phone/send`: a new code for the phone on file.
#[post("/account/phone/send")]
async fn send_code(
    me: CurrentUser,
    state: web::Data<AppState>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<HttpResponse, AppError> {
    let Some(phone) = me.user.phone.clone() else {
        let status = Some("There is no phone number to confirm: add one above first.".to_owned());
        return render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &page(&state, &me, None, None, status, Tell::default()).await?,
        );
    };
    let sent = phone_confirm::send_code(&state, me.business_id(), &me.business_name, me.user.id, &phone)
        .await?
        .words(&phone.local(me.region), phone_confirm::ENTER_BELOW);
    let status = if sent.1 { StatusCode::OK } else { StatusCode::TOO_MANY_REQUESTS };
    render(status, &page(&state, &me, None, None, None, Tell::said(sent)).await?)
}

#[derive(Deserialize)]
struct CodeInput {
    #[serde(default)]
    code: String,
}

/// `POST /account/phone/confirm`: the code texted to the phone on file, typed back.
#[post("/account/phone/confirm")]
async fn confirm_phone(
    me: CurrentUser,
    state: web::Data<AppState>,
    CsrfForm(input): CsrfForm<CodeInput>,
) -> Result<HttpResponse, AppError> {
    match phone_confirm::enter_code(&state, me.business_id(), me.user.id, &input.code).await? {
        Ok(Check::Confirmed) => Ok(see_other("/account?saved=phone")),
        result => {
            let page = page(&state, &me, None, None, None, Tell::not_confirmed(result)).await?;
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
    }
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
    if let Err(message) = password::check_new(&input.new_password, &input.confirm_password) {
        return render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &page(&state, &me, None, Some(message), None, Tell::default()).await?,
        );
    }
    let stored = db::users::password_hash(&mut state.db.read().await?, me.user.id).await?.unwrap_or_default();
    let (current, new) = (input.current_password.clone(), input.new_password.clone());
    let checked = state
        .hasher
        .run(move || password::verify(&current, &stored).then(|| password::hash(&new)))
        .await
        .map_err(|_| AppError::Busy)?;
    let Some(hash) = checked else {
        let message = Some("Your current password is not right.".to_owned());
        return render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &page(&state, &me, None, message, None, Tell::default()).await?,
        );
    };
    let (hash, user_id) = (hash?, me.user.id);
    state.db.write(move |w| Box::pin(async move { db::users::set_password(w, user_id, &hash).await })).await?;
    // Every session of this user was deleted; this one continues under a new id.
    sign_in(&session, me.user.id)?;
    Ok(see_other("/account?saved=password"))
}

#[derive(Deserialize)]
struct ZoneInput {
    #[serde(default)]
    time_zone: String,
}

/// `POST /account/time-zone`: the person's own time zone (empty: the business's).
#[post("/account/time-zone")]
async fn save_time_zone(
    me: CurrentUser,
    state: web::Data<AppState>,
    CsrfForm(input): CsrfForm<ZoneInput>,
) -> Result<HttpResponse, AppError> {
    let zone = match input.time_zone.trim() {
        "" => None,
        typed => match Zone::parse(typed) {
            Ok(zone) => Some(zone),
            Err(e) => {
                let mut shown =
                    page(&state, &me, None, None, Some("Not saved: fix the time zone.".into()), Tell::default())
                        .await?;
                shown.zone = input.time_zone.clone();
                shown.zone_error = Some(e);
                return render(StatusCode::UNPROCESSABLE_ENTITY, &shown);
            }
        },
    };
    // Their quiet hours and daily summary are in their zone: what those hold moves with it.
    let recipient = db::recipients::of_user(&mut state.db.read().await?, me.user.id).await?;
    let business_zone = match &zone {
        Some(_) => None,
        None => {
            let (own, region) = db::businesses::time_zone(&mut state.db.read().await?, me.business_id()).await?;
            Some(zone_or_region(own.as_deref(), &region))
        }
    };
    let follow = recipient.map(|r| {
        let now = zone.clone().or(business_zone).unwrap_or_else(Zone::utc);
        let changed = now != r.zone;
        Follow::settings_of(&db::recipients::Recipient { zone: now, ..r }, changed, unix_now_ms())
    });
    let (business, user_id) = (me.business_id().to_owned(), me.user.id);
    state
        .db
        .write(move |w| {
            Box::pin(async move {
                db::users::set_time_zone(w, &business, user_id, zone.as_ref()).await?;
                if let Some(follow) = &follow {
                    follow.apply(w, &business, user_id).await?;
                }
                Ok(())
            })
        })
        .await?;
    state.dispatcher.wake();
    Ok(see_other("/account?saved=zone"))
}
