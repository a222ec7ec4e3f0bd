//! Business defaults: which alert types and channels are on, and where business alerts go.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, post, web};
use askama::Template;

use super::{BusinessPhone, NotificationsPage, Oob, answer};
use crate::clock::unix_now;
use crate::db;
use crate::domain::phone_code::Check;
use crate::domain::settings::{CLAIMED_UPDATES_ONLY, defaults_changes};
use crate::domain::{AlertKind, BusinessDefaults, Channel, ChannelSet, EmailAddress, KindSet, PhoneNumber, Region};
use crate::web::error::AppError;
use crate::web::extract::{CsrfForm, CurrentUser, Fields, is_htmx};
use crate::web::phone_confirm::{self, BUSINESS_PHONE, Tell};
use crate::web::{AppState, render, see_other};

#[derive(Clone)]
pub struct Switch {
    pub field: &'static str,
    pub label: &'static str,
    pub hint: &'static str,
    pub on: bool,
}

#[derive(Clone)]
pub struct DefaultsView {
    pub editable: bool,
    pub kinds: Vec<Switch>,
    pub channels: Vec<Switch>,
    /// Lead updates only to whoever claimed the lead.
    pub claimed: Switch,
    pub email: String,
    pub phone: String,
    pub email_error: Option<String>,
    pub phone_error: Option<String>,
    pub warnings: Vec<&'static str>,
    /// Destinations typed but not saved yet (a switch was flipped meanwhile).
    pub unsaved_destinations: bool,
}

impl DefaultsView {
    pub fn new(d: &BusinessDefaults, editable: bool, region: Region) -> Self {
        let kind_hint = |k: AlertKind| match k {
            AlertKind::LeadCreated => "When Kai captures a new lead.",
            AlertKind::LeadUpdated => "When Kai learns more about an existing lead.",
            AlertKind::Usage => "At 75%, 90% and 100% of your plan\u{2019}s included minutes.",
            AlertKind::Billing => "When a payment fails.",
        };
        let channel_hint = |c: Channel| match c {
            Channel::Email => "To the notification email and each recipient\u{2019}s email.",
            Channel::Sms => "To the notification phone and each recipient\u{2019}s phone.",
            Channel::InApp => "In each recipient\u{2019}s KaiCalls inbox.",
        };
        Self {
            editable,
            kinds: AlertKind::ALL
                .into_iter()
                .map(|k| Switch { field: k.field(), label: k.label(), hint: kind_hint(k), on: d.kinds.get(k) })
                .collect(),
            channels: Channel::ALL
                .into_iter()
                .map(|c| Switch { field: c.field(), label: c.label(), hint: channel_hint(c), on: d.channels.get(c) })
                .collect(),
            claimed: Switch {
                field: CLAIMED_UPDATES_ONLY,
                label: "Lead updates only to whoever claimed the lead",
                hint: "Once someone says they will call a lead back, its updates reach only them (and the business\u{2019}s own email and phone).",
                on: d.claimed_updates_only,
            },
            email: d.notification_email.as_ref().map(|e| e.to_string()).unwrap_or_default(),
            phone: d.notification_phone.as_ref().map(|p| p.local(region)).unwrap_or_default(),
            email_error: None,
            phone_error: None,
            warnings: d.warnings(),
            unsaved_destinations: false,
        }
    }
}

#[derive(Template)]
#[template(path = "notifications/defaults_response.html")]
struct DefaultsResponse {
    d: DefaultsView,
    oob: Oob,
}

/// The answer to a switch: the switches stay as the person left them; only the warnings, the
/// status and the recent changes update (out of band), so rapid toggling cannot be undone by
/// an older response.
#[derive(Template)]
#[template(path = "notifications/switches_response.html")]
struct SwitchesResponse {
    d: DefaultsView,
    oob: Oob,
}

/// Parses the destination fields; each error belongs next to its field.
fn parse_destinations(
    fields: &Fields,
    region: Region,
) -> (Result<Option<EmailAddress>, String>, Result<Option<PhoneNumber>, String>) {
    let email = fields.get("notification_email").unwrap_or("").trim();
    let phone = fields.get("notification_phone").unwrap_or("").trim();
    let email = if email.is_empty() { Ok(None) } else { EmailAddress::parse(email).map(Some) };
    let phone = if phone.is_empty() { Ok(None) } else { PhoneNumber::parse(phone, region).map(Some) };
    (email, phone)
}

/// Saves the business defaults. `action=switches` (sent by htmx when a switch flips) saves the
/// seven switches exactly as shown and leaves the destinations as typed; otherwise (the Save
/// button) everything is validated and saved together, or nothing is.
#[post("/settings/notifications/defaults")]
pub async fn save_defaults(
    req: HttpRequest,
    me: CurrentUser,
    state: web::Data<AppState>,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<HttpResponse, AppError> {
    me.require_manager("change the business defaults")?;
    let region = me.region;
    let switches_only = fields.get("action") == Some("switches");
    let kinds = KindSet::from_checked(|f| fields.checked(f));
    let channels = ChannelSet::from_checked(|f| fields.checked(f));
    let claimed_updates_only = fields.checked(CLAIMED_UPDATES_ONLY);

    let (email, phone) = parse_destinations(&fields, region);
    if !switches_only && (email.is_err() || phone.is_err()) {
        let stored = db::defaults::of(&mut state.db.read().await?, me.business_id()).await?;
        let shown = BusinessDefaults { kinds, channels, claimed_updates_only, ..stored };
        let mut d = DefaultsView::new(&shown, true, region);
        d.email = fields.get("notification_email").unwrap_or("").to_owned();
        d.phone = fields.get("notification_phone").unwrap_or("").to_owned();
        d.email_error = email.err();
        d.phone_error = phone.err();
        let status = "Not saved: fix the highlighted fields.";
        let fragment = DefaultsResponse { d: d.clone(), oob: Oob::status(status) };
        let code = StatusCode::UNPROCESSABLE_ENTITY;
        return answer(&req, &state, &me, code, async { Ok(fragment) }, Some(status.into()), |page| page.d = d).await;
    }

    let business = me.business_id().to_owned();
    let actor = me.user.id;
    let (new, changes, old_phone) = state
        .db
        .write(move |w| {
            Box::pin(async move {
                let old = db::defaults::of(w, &business).await?;
                let new = if switches_only {
                    BusinessDefaults { kinds, channels, claimed_updates_only, ..old.clone() }
                } else {
                    BusinessDefaults {
                        kinds,
                        channels,
                        notification_email: email.unwrap_or_default(),
                        notification_phone: phone.unwrap_or_default(),
                        claimed_updates_only,
                    }
                };
                let changes = defaults_changes(&old, &new);
                if !changes.is_empty() {
                    let now = unix_now();
                    db::defaults::update(w, &business, &new, now).await?;
                    db::audit::record(w, &business, Some(actor), None, &changes, now).await?;
                }
                Ok((new, changes.len(), old.notification_phone))
            })
        })
        .await?;
    tracing::info!(changes, "business defaults saved");
    // A new notification phone takes alerts once its code is typed back: the code goes now.
    let phone_changed = new.notification_phone != old_phone;
    let sent = match &new.notification_phone {
        Some(phone) if phone_changed => Some(
            phone_confirm::send_code(&state, me.business_id(), &me.business_name, BUSINESS_PHONE, phone)
                .await?
                .words(&phone.local(region), phone_confirm::ENTER_BELOW),
        ),
        _ => None,
    };

    if !is_htmx(&req) {
        return Ok(see_other("/settings/notifications?saved=defaults#defaults"));
    }
    let mut d = DefaultsView::new(&new, true, region);
    let status = if changes == 0 { "No changes to save." } else { "Saved." };
    let mut conn = state.db.read().await?;
    let mut oob = Oob::saved(&mut conn, me.business_id(), status).await?;
    if changes != 0 {
        // The grid greys what the business holds off: draw it again with the new ceiling.
        let mut recipients = super::recipients::recipients_view(&mut conn, &me, &new).await?;
        recipients.out_of_band = true;
        oob.recipients = Some(recipients);
        // So do the escalation section's warnings (what the defaults hold back from it); the
        // form itself keeps whatever is being typed in it.
        oob.escalation_warnings = Some(super::escalation::warnings_now(&mut conn, me.business_id(), &new).await?);
    }
    drop(conn);
    if phone_changed {
        let tell = sent.map(Tell::said).unwrap_or_default();
        oob.business_phone = BusinessPhone::load(&mut state.db.read().await?, &me, tell).await?;
    }
    if switches_only {
        let typed_email = fields.get("notification_email").unwrap_or("").to_owned();
        let typed_phone = fields.get("notification_phone").unwrap_or("").to_owned();
        let (typed, _) = parse_destinations(&fields, region);
        d.unsaved_destinations = typed.map_or(true, |email| email != new.notification_email)
            || parse_destinations(&fields, region).1.map_or(true, |phone| phone != new.notification_phone);
        d.email = typed_email;
        d.phone = typed_phone;
        return render(StatusCode::OK, &SwitchesResponse { d, oob });
    }
    render(StatusCode::OK, &DefaultsResponse { d, oob })
}

/// `POST /settings/notifications/phone/send`: a new code for the business's notification phone.
#[post("/settings/notifications/phone/send")]
pub async fn send_business_code(
    me: CurrentUser,
    state: web::Data<AppState>,
    CsrfForm(_): CsrfForm<Fields>,
) -> Result<HttpResponse, AppError> {
    me.require_manager("confirm the notification phone")?;
    let defaults = db::defaults::of(&mut state.db.read().await?, me.business_id()).await?;
    let tell = match &defaults.notification_phone {
        Some(phone) => Tell::said(
            phone_confirm::send_code(&state, me.business_id(), &me.business_name, BUSINESS_PHONE, phone)
                .await?
                .words(&phone.local(me.region), phone_confirm::ENTER_BELOW),
        ),
        None => Tell::said(("There is no notification phone to confirm: add one above first.".into(), false)),
    };
    let code = if tell.message.as_ref().is_some_and(|m| m.1) { StatusCode::OK } else { StatusCode::TOO_MANY_REQUESTS };
    phone_page(&state, &me, code, tell).await
}

/// `POST /settings/notifications/phone/confirm`: the code texted to the notification phone.
#[post("/settings/notifications/phone/confirm")]
pub async fn confirm_business_phone(
    me: CurrentUser,
    state: web::Data<AppState>,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<HttpResponse, AppError> {
    me.require_manager("confirm the notification phone")?;
    let typed = fields.get("code").unwrap_or("");
    match phone_confirm::enter_code(&state, me.business_id(), BUSINESS_PHONE, typed).await? {
        Ok(Check::Confirmed) => Ok(see_other("/settings/notifications?saved=phone#defaults")),
        result => phone_page(&state, &me, StatusCode::UNPROCESSABLE_ENTITY, Tell::not_confirmed(result)).await,
    }
}

/// The whole page with `tell` said by the notification phone.
async fn phone_page(
    state: &AppState,
    me: &CurrentUser,
    code: StatusCode,
    tell: Tell,
) -> Result<HttpResponse, AppError> {
    let mut page = NotificationsPage::load(state, me, None).await?;
    page.business_phone = BusinessPhone::load(&mut state.db.read().await?, me, tell).await?;
    render(code, &page)
}
