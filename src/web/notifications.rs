//! Dashboard > Settings > Notifications: business defaults, recipients, recent changes.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use super::error::AppError;
use super::extract::{CsrfForm, CurrentUser, Fields, is_htmx};
use super::shell::Shell;
use super::{AppState, render, see_other};
use crate::clock::{format_utc, unix_now};
use crate::db;
use crate::db::recipients::Recipient;
use crate::domain::audit::{self, Change, on_off};
use crate::domain::settings::{ChannelStatus, channel_status};
use crate::domain::{
    AlertKind, BusinessDefaults, Channel, ChannelSet, EmailAddress, KindSet, LeadScore, PhoneNumber, RecipientPrefs,
    Region,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(notifications_page)
        .service(save_defaults)
        .service(add_recipient)
        .service(update_recipient)
        .service(remove_recipient)
        .service(threshold_preview);
}

// ---- view models ----

pub struct Switch {
    pub field: &'static str,
    pub label: &'static str,
    pub hint: &'static str,
    pub on: bool,
}

pub struct DefaultsView {
    pub editable: bool,
    pub kinds: Vec<Switch>,
    pub channels: Vec<Switch>,
    pub email: String,
    pub phone: String,
    pub email_error: Option<String>,
    pub phone_error: Option<String>,
    pub warnings: Vec<&'static str>,
    /// Destinations typed but not saved yet (a switch was flipped meanwhile).
    pub unsaved_destinations: bool,
}

impl DefaultsView {
    fn new(d: &BusinessDefaults, editable: bool) -> Self {
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
            email: d.notification_email.as_ref().map(|e| e.to_string()).unwrap_or_default(),
            phone: d.notification_phone.as_ref().map(|p| p.to_string()).unwrap_or_default(),
            email_error: None,
            phone_error: None,
            warnings: d.warnings(),
            unsaved_destinations: false,
        }
    }
}

pub struct CheckBox {
    pub field: &'static str,
    pub label: &'static str,
    pub checked: bool,
    pub disabled: bool,
    pub note: Option<String>,
}

pub struct RecipientView {
    pub csrf: String,
    pub id: i64,
    pub name: String,
    pub email: String,
    pub phone: String,
    pub is_me: bool,
    pub editable: bool,
    pub can_remove: bool,
    pub channels: Vec<CheckBox>,
    pub kinds: Vec<CheckBox>,
    pub score: String,
    pub score_error: Option<String>,
    pub summary: String,
    /// "At 70, Sam would have received 12 of the last 40 leads (30 days)."
    pub preview: String,
}

impl RecipientView {
    fn new(r: &Recipient, d: &BusinessDefaults, me: &CurrentUser) -> Self {
        let is_me = r.user_id == me.user.id;
        let editable = is_me || me.manages_business();
        let channels = Channel::ALL
            .into_iter()
            .map(|c| {
                let status = channel_status(d, &r.prefs, r.phone.is_some(), c);
                let (disabled, note) = match &status {
                    ChannelStatus::OffForBusiness { .. } => (true, d.channel_off_reason(c)),
                    ChannelStatus::NoPhone { .. } if is_me => {
                        (true, Some("Add your phone number in Account to get SMS.".into()))
                    }
                    ChannelStatus::NoPhone { .. } => {
                        (true, Some(format!("No phone number: {} can add one in Account.", r.name)))
                    }
                    _ => (false, None),
                };
                CheckBox { field: c.field(), label: c.label(), checked: r.prefs.channels.get(c), disabled, note }
            })
            .collect();
        let kinds = AlertKind::ALL
            .into_iter()
            .map(|k| CheckBox {
                field: k.field(),
                label: k.label(),
                checked: r.prefs.kinds.get(k),
                disabled: !d.kinds.get(k),
                note: d.kind_off_reason(k).map(|reason| capitalize(&reason)),
            })
            .collect();
        Self {
            csrf: me.csrf_token.clone(),
            id: r.id,
            name: r.name.clone(),
            email: r.email.clone(),
            phone: r.phone.as_ref().map(|p| p.to_string()).unwrap_or_default(),
            is_me,
            editable,
            can_remove: me.manages_business(),
            channels,
            kinds,
            score: r.prefs.min_lead_score.value().to_string(),
            score_error: None,
            summary: summary(r, d),
            preview: String::new(),
        }
    }
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// One line on what this person will actually get, the ceiling applied.
fn summary(r: &Recipient, d: &BusinessDefaults) -> String {
    let channels: Vec<&str> = Channel::ALL
        .into_iter()
        .filter(|c| channel_status(d, &r.prefs, r.phone.is_some(), *c) == ChannelStatus::Active)
        .map(Channel::label)
        .collect();
    let kinds: Vec<&str> = AlertKind::ALL
        .into_iter()
        .filter(|k| r.prefs.kinds.get(*k) && d.kinds.get(*k))
        .map(AlertKind::phrase)
        .collect();
    if channels.is_empty() || kinds.is_empty() {
        return format!("{} gets no alerts right now.", r.name);
    }
    let threshold = r.prefs.min_lead_score.value();
    let leads = if threshold == 0 { "every lead".to_owned() } else { format!("leads scoring {threshold} or more") };
    format!("Gets {} by {}; {}.", kinds.join(", "), channels.join(", "), leads)
}

pub struct RecipientsView {
    pub csrf: String,
    pub can_manage: bool,
    pub rows: Vec<RecipientView>,
    /// Team members who are not recipients yet: (user id, "Name (email)").
    pub candidates: Vec<(i64, String)>,
    pub me_is_recipient: bool,
    pub managers: String,
    pub add_error: Option<String>,
}

/// Where Kai posts events, for owners and admins.
pub struct WebhookView {
    pub url: String,
    pub secret: String,
    pub previous_until: Option<String>,
}

pub struct AuditLine {
    pub text: String,
    pub when: String,
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage {
    shell: Shell,
    alerts: super::alerts::AlertsView,
    webhook: Option<WebhookView>,
    d: DefaultsView,
    recipients: RecipientsView,
    audit: Vec<AuditLine>,
    status: Option<String>,
}

#[derive(Template)]
#[template(path = "notifications/defaults_response.html")]
struct DefaultsResponse {
    d: DefaultsView,
    status: Option<String>,
    /// The refreshed "Recent changes", when something was saved.
    audit: Option<Vec<AuditLine>>,
}

/// The answer to a switch: the switches stay as the person left them; only the warnings, the
/// status and the recent changes update (out of band), so rapid toggling cannot be undone by
/// an older response.
#[derive(Template)]
#[template(path = "notifications/switches_response.html")]
struct SwitchesResponse {
    d: DefaultsView,
    status: Option<String>,
    audit: Option<Vec<AuditLine>>,
}

/// Asked before removing a recipient when the page had no JavaScript to ask for us.
#[derive(Template)]
#[template(path = "notifications/confirm_remove.html")]
struct ConfirmRemove {
    shell: Shell,
    id: i64,
    name: String,
    status: Option<String>,
}

#[derive(Template)]
#[template(path = "notifications/recipients_response.html")]
struct RecipientsResponse {
    recipients: RecipientsView,
    status: Option<String>,
    /// The refreshed "Recent changes", when something was saved.
    audit: Option<Vec<AuditLine>>,
}

#[derive(Template)]
#[template(path = "notifications/recipient_response.html")]
struct RecipientResponse {
    r: RecipientView,
    status: Option<String>,
    /// The refreshed "Recent changes", when something was saved.
    audit: Option<Vec<AuditLine>>,
}

// ---- loading ----

async fn recipients_view(state: &AppState, me: &CurrentUser, d: &BusinessDefaults) -> Result<RecipientsView, AppError> {
    let business = me.business_id();
    let recipients = db::recipients::list(&state.pool, business).await?;
    let team = db::users::list_active(&state.pool, business).await?;
    let candidates = team
        .iter()
        .filter(|u| !recipients.iter().any(|r| r.user_id == u.id))
        .map(|u| (u.id, format!("{} ({})", u.name, u.email)))
        .collect();
    let managers: Vec<&str> = team.iter().filter(|u| u.role.manages_business()).map(|u| u.name.as_str()).collect();
    let scores = recent_scores(state, business).await?;
    let mut rows: Vec<RecipientView> = recipients.iter().map(|r| RecipientView::new(r, d, me)).collect();
    for (row, r) in rows.iter_mut().zip(&recipients) {
        let name = if row.is_me { "you" } else { row.name.as_str() };
        row.preview = reach_sentence(name, r.prefs.min_lead_score, &scores);
    }
    Ok(RecipientsView {
        csrf: me.csrf_token.clone(),
        can_manage: me.manages_business(),
        me_is_recipient: recipients.iter().any(|r| r.user_id == me.user.id),
        rows,
        candidates,
        managers: managers.join(", "),
        add_error: None,
    })
}

async fn audit_lines(state: &AppState, business_id: &str) -> Result<Vec<AuditLine>, AppError> {
    let entries = db::audit::recent(&state.pool, business_id, 20).await?;
    Ok(entries
        .iter()
        .map(|e| AuditLine {
            text: audit::describe(&e.change(), e.actor_name.as_deref().unwrap_or("Someone"), e.subject_name.as_deref()),
            when: format_utc(e.at),
        })
        .collect())
}

async fn full_page(
    state: &AppState,
    me: CurrentUser,
    d: DefaultsView,
    defaults: &BusinessDefaults,
    status: Option<String>,
    patch: impl FnOnce(&mut RecipientsView),
) -> Result<NotificationsPage, AppError> {
    let mut recipients = recipients_view(state, &me, defaults).await?;
    patch(&mut recipients);
    let audit = audit_lines(state, me.business_id()).await?;
    let alerts = super::alerts::alerts_view(state, &me).await?;
    let webhook = match me.manages_business() {
        false => None,
        true => db::businesses::get(&state.pool, me.business_id()).await?.map(|b| WebhookView {
            url: state
                .config
                .public_url
                .join(&format!("webhooks/kai/{}", b.id))
                .map(|u| u.to_string())
                .unwrap_or_default(),
            secret: b.webhook_secret,
            previous_until: b.previous_secret_expires_at.filter(|t| *t > unix_now()).map(format_utc),
        }),
    };
    Ok(NotificationsPage { shell: Shell::new(&me, "notifications"), alerts, webhook, d, recipients, audit, status })
}

#[derive(Deserialize)]
struct PageQuery {
    saved: Option<String>,
}

#[get("/settings/notifications")]
async fn notifications_page(
    me: CurrentUser,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let defaults = db::defaults::get(&state.pool, me.business_id()).await?;
    let status = match query.saved.as_deref() {
        Some("defaults") => Some("Business defaults saved.".to_owned()),
        Some("recipient") => Some("Recipient preferences saved.".to_owned()),
        Some("added") => Some("Recipient added. Set their channels and threshold below.".to_owned()),
        Some("removed") => Some("Recipient removed.".to_owned()),
        Some("rotated") => {
            Some("New webhook secret created. Update it in Kai; the old one keeps working for 24 hours.".to_owned())
        }
        _ => None,
    };
    let d = DefaultsView::new(&defaults, me.manages_business());
    let page = full_page(&state, me, d, &defaults, status, |_| {}).await?;
    render(StatusCode::OK, &page)
}

// ---- business defaults ----

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

fn defaults_changes(old: &BusinessDefaults, new: &BusinessDefaults) -> Vec<Change> {
    let mut changes = Vec::new();
    for kind in AlertKind::ALL {
        if old.kinds.get(kind) != new.kinds.get(kind) {
            changes.push(Change::switch(
                format!("defaults.{}", kind.field()),
                old.kinds.get(kind),
                new.kinds.get(kind),
            ));
        }
    }
    for channel in Channel::ALL {
        if old.channels.get(channel) != new.channels.get(channel) {
            changes.push(Change::switch(
                format!("defaults.{}", channel.field()),
                old.channels.get(channel),
                new.channels.get(channel),
            ));
        }
    }
    let text = |v: Option<&dyn ToString>| v.map(|v| v.to_string());
    if old.notification_email != new.notification_email {
        changes.push(Change::new(
            "defaults.notification_email",
            text(old.notification_email.as_ref().map(|v| v as _)),
            text(new.notification_email.as_ref().map(|v| v as _)),
        ));
    }
    if old.notification_phone != new.notification_phone {
        changes.push(Change::new(
            "defaults.notification_phone",
            text(old.notification_phone.as_ref().map(|v| v as _)),
            text(new.notification_phone.as_ref().map(|v| v as _)),
        ));
    }
    changes
}

/// Saves the business defaults. `action=switches` (sent by htmx when a switch flips) saves the
/// seven switches exactly as shown and leaves the destinations as typed; otherwise (the Save
/// button) everything is validated and saved together, or nothing is.
#[post("/settings/notifications/defaults")]
async fn save_defaults(
    req: HttpRequest,
    me: CurrentUser,
    state: web::Data<AppState>,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<HttpResponse, AppError> {
    me.require_manager("change the business defaults")?;
    let business = db::businesses::get(&state.pool, me.business_id()).await?.ok_or(AppError::NotFound)?;
    let switches_only = fields.get("action") == Some("switches");
    let kinds = KindSet::from_checked(|f| fields.checked(f));
    let channels = ChannelSet::from_checked(|f| fields.checked(f));

    let (email, phone) = parse_destinations(&fields, business.region());
    if !switches_only && (email.is_err() || phone.is_err()) {
        let stored = db::defaults::get(&state.pool, me.business_id()).await?;
        let shown = BusinessDefaults { kinds, channels, ..stored.clone() };
        let mut d = DefaultsView::new(&shown, true);
        d.email = fields.get("notification_email").unwrap_or("").to_owned();
        d.phone = fields.get("notification_phone").unwrap_or("").to_owned();
        d.email_error = email.err();
        d.phone_error = phone.err();
        let status = Some("Not saved: fix the highlighted fields.".to_owned());
        if is_htmx(&req) {
            return render(StatusCode::UNPROCESSABLE_ENTITY, &DefaultsResponse { d, status, audit: None });
        }
        let page = full_page(&state, me, d, &stored, status, |_| {}).await?;
        return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
    }

    let mut tx = db::begin_write(&state.pool).await?;
    let old = db::defaults::get_for_update(&mut tx, me.business_id()).await?;
    let new = if switches_only {
        BusinessDefaults { kinds, channels, ..old.clone() }
    } else {
        BusinessDefaults {
            kinds,
            channels,
            notification_email: email.unwrap_or_default(),
            notification_phone: phone.unwrap_or_default(),
        }
    };
    let changes = defaults_changes(&old, &new);
    if !changes.is_empty() {
        let now = unix_now();
        db::defaults::update(&mut tx, me.business_id(), &new, now).await?;
        db::audit::record(&mut tx, me.business_id(), Some(me.user.id), None, &changes, now).await?;
    }
    tx.commit().await?;
    tracing::info!(changes = changes.len(), "business defaults saved");

    if !is_htmx(&req) {
        return Ok(see_other("/settings/notifications?saved=defaults#defaults"));
    }
    let mut d = DefaultsView::new(&new, true);
    if switches_only {
        let typed_email = fields.get("notification_email").unwrap_or("").to_owned();
        let typed_phone = fields.get("notification_phone").unwrap_or("").to_owned();
        d.unsaved_destinations = typed_email.trim() != d.email || typed_phone.trim() != d.phone;
        d.email = typed_email;
        d.phone = typed_phone;
    }
    let status = Some(if changes.is_empty() { "No changes to save.".to_owned() } else { "Saved.".to_owned() });
    let audit = Some(audit_lines(&state, me.business_id()).await?);
    if switches_only {
        return render(StatusCode::OK, &SwitchesResponse { d, status, audit });
    }
    render(StatusCode::OK, &DefaultsResponse { d, status, audit })
}

// ---- recipients ----

#[post("/settings/notifications/recipients")]
async fn add_recipient(
    req: HttpRequest,
    me: CurrentUser,
    state: web::Data<AppState>,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<HttpResponse, AppError> {
    me.require_manager("add notification recipients")?;
    let chosen = fields.get("user_id").unwrap_or("").trim();
    let defaults = db::defaults::get(&state.pool, me.business_id()).await?;
    let Ok(user_id) = chosen.parse::<i64>() else {
        let message = "Choose a team member to add.".to_owned();
        return recipients_answer(&req, &state, me, &defaults, StatusCode::UNPROCESSABLE_ENTITY, None, Some(message))
            .await;
    };
    let user = db::users::get_active(&state.pool, me.business_id(), user_id).await?.ok_or(AppError::NotFound)?;

    let mut tx = db::begin_write(&state.pool).await?;
    let now = unix_now();
    let added =
        db::recipients::insert(&mut tx, me.business_id(), user.id, &RecipientPrefs::new_recipient(), now).await?;
    if added.is_some() {
        let change = Change::new("recipient.added", None, None);
        db::audit::record(&mut tx, me.business_id(), Some(me.user.id), Some(user.id), &[change], now).await?;
    }
    tx.commit().await?;

    if added.is_none() {
        let message = format!("{} is already a recipient.", user.name);
        return recipients_answer(&req, &state, me, &defaults, StatusCode::CONFLICT, None, Some(message)).await;
    }
    if !is_htmx(&req) {
        return Ok(see_other(&format!("/settings/notifications?saved=added#recipient-{}", added.unwrap_or_default())));
    }
    let status = format!("Added {}. Set their channels and threshold below.", user.name);
    recipients_answer(&req, &state, me, &defaults, StatusCode::OK, Some(status), None).await
}

/// Answers with the recipients section: the fragment for htmx, the whole page otherwise.
async fn recipients_answer(
    req: &HttpRequest,
    state: &AppState,
    me: CurrentUser,
    defaults: &BusinessDefaults,
    code: StatusCode,
    status: Option<String>,
    add_error: Option<String>,
) -> Result<HttpResponse, AppError> {
    if is_htmx(req) {
        let mut recipients = recipients_view(state, &me, defaults).await?;
        let audit = if add_error.is_none() { Some(audit_lines(state, me.business_id()).await?) } else { None };
        recipients.add_error = add_error;
        return render(code, &RecipientsResponse { recipients, status, audit });
    }
    let d = DefaultsView::new(defaults, me.manages_business());
    let page = full_page(state, me, d, defaults, status, |r| r.add_error = add_error).await?;
    render(code, &page)
}

fn prefs_changes(old: &RecipientPrefs, new: &RecipientPrefs) -> Vec<Change> {
    let mut changes = Vec::new();
    for channel in Channel::ALL {
        let (o, n) = (old.channels.get(channel), new.channels.get(channel));
        if o != n {
            changes.push(Change::new(
                format!("recipient.{}", channel.field()),
                Some(on_off(o).into()),
                Some(on_off(n).into()),
            ));
        }
    }
    for kind in AlertKind::ALL {
        let (o, n) = (old.kinds.get(kind), new.kinds.get(kind));
        if o != n {
            changes.push(Change::switch(format!("recipient.{}", kind.field()), o, n));
        }
    }
    if old.min_lead_score != new.min_lead_score {
        changes.push(Change::new(
            "recipient.min_lead_score",
            Some(old.min_lead_score.value().to_string()),
            Some(new.min_lead_score.value().to_string()),
        ));
    }
    changes
}

/// The preferences a form asks for. Choices the page showed locked (a channel the business has
/// off, SMS without a phone, a kind the business has off) keep their stored value: a disabled
/// checkbox is never sent, and the person's own choice must survive the ceiling.
fn requested_prefs(fields: &Fields, stored: &Recipient, d: &BusinessDefaults) -> Result<RecipientPrefs, String> {
    let mut prefs = stored.prefs;
    for channel in Channel::ALL {
        let locked = matches!(
            channel_status(d, &stored.prefs, stored.phone.is_some(), channel),
            ChannelStatus::OffForBusiness { .. } | ChannelStatus::NoPhone { .. }
        );
        if !locked {
            prefs.channels.set(channel, fields.checked(channel.field()));
        }
    }
    for kind in AlertKind::ALL {
        if d.kinds.get(kind) {
            prefs.kinds.set(kind, fields.checked(kind.field()));
        }
    }
    prefs.min_lead_score = LeadScore::parse(fields.get("min_lead_score").unwrap_or(""))?;
    Ok(prefs)
}

#[post("/settings/notifications/recipients/{id}")]
async fn update_recipient(
    req: HttpRequest,
    me: CurrentUser,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let defaults = db::defaults::get(&state.pool, me.business_id()).await?;
    let mut tx = db::begin_write(&state.pool).await?;
    let stored = db::recipients::get_for_update(&mut tx, me.business_id(), id).await?.ok_or(AppError::NotFound)?;
    if stored.user_id != me.user.id && !me.manages_business() {
        return Err(AppError::Forbidden(
            "You can only change your own notification preferences. Ask an owner or admin to change someone else\u{2019}s."
                .into(),
        ));
    }
    let prefs = match requested_prefs(&fields, &stored, &defaults) {
        Ok(prefs) => prefs,
        Err(message) => {
            drop(tx);
            let mut r = RecipientView::new(&stored, &defaults, &me);
            for check in r.channels.iter_mut().chain(r.kinds.iter_mut()) {
                if !check.disabled {
                    check.checked = fields.checked(check.field);
                }
            }
            r.score = fields.get("min_lead_score").unwrap_or("").to_owned();
            r.score_error = Some(message);
            let status = Some(format!("Not saved: fix {}\u{2019}s lead-score threshold.", stored.name));
            if is_htmx(&req) {
                return render(StatusCode::UNPROCESSABLE_ENTITY, &RecipientResponse { r, status, audit: None });
            }
            let d = DefaultsView::new(&defaults, me.manages_business());
            let page = full_page(&state, me, d, &defaults, status, |view| {
                if let Some(slot) = view.rows.iter_mut().find(|row| row.id == id) {
                    *slot = r;
                }
            })
            .await?;
            return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
    };
    let changes = prefs_changes(&stored.prefs, &prefs);
    if !changes.is_empty() {
        db::recipients::update(&mut tx, me.business_id(), id, &prefs).await?;
        db::audit::record(&mut tx, me.business_id(), Some(me.user.id), Some(stored.user_id), &changes, unix_now())
            .await?;
    }
    tx.commit().await?;

    if !is_htmx(&req) {
        return Ok(see_other(&format!("/settings/notifications?saved=recipient#recipient-{id}")));
    }
    let updated = Recipient { prefs, ..stored };
    let whose = if updated.user_id == me.user.id { "your".to_owned() } else { format!("{}\u{2019}s", updated.name) };
    let status =
        Some(if changes.is_empty() { "No changes to save.".to_owned() } else { format!("Saved {whose} preferences.") });
    render(
        StatusCode::OK,
        &RecipientResponse {
            r: RecipientView::new(&updated, &defaults, &me),
            status,
            audit: Some(audit_lines(&state, me.business_id()).await?),
        },
    )
}

#[post("/settings/notifications/recipients/{id}/remove")]
async fn remove_recipient(
    req: HttpRequest,
    me: CurrentUser,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let stored = db::recipients::get(&state.pool, me.business_id(), id).await?.ok_or(AppError::NotFound)?;
    me.require_manager("remove notification recipients")?;
    if fields.get("confirmed") != Some("yes") {
        let page = ConfirmRemove { shell: Shell::new(&me, "notifications"), id, name: stored.name, status: None };
        return render(StatusCode::OK, &page);
    }
    let mut tx = db::begin_write(&state.pool).await?;
    if db::recipients::delete(&mut tx, me.business_id(), id).await? {
        let change = Change::new("recipient.removed", None, None);
        db::audit::record(&mut tx, me.business_id(), Some(me.user.id), Some(stored.user_id), &[change], unix_now())
            .await?;
    }
    tx.commit().await?;
    if !is_htmx(&req) {
        return Ok(see_other("/settings/notifications?saved=removed#recipients"));
    }
    let defaults = db::defaults::get(&state.pool, me.business_id()).await?;
    let status = Some(format!("Removed {} from the recipients.", stored.name));
    recipients_answer(&req, &state, me, &defaults, StatusCode::OK, status, None).await
}

/// The scores of the last 30 days of leads, for the threshold preview.
async fn recent_scores(state: &AppState, business_id: &str) -> Result<Vec<i64>, AppError> {
    Ok(db::leads::scores_since(&state.pool, business_id, unix_now() - 30 * 24 * 3600).await?)
}

/// What a threshold would have meant over the last 30 days of leads, in one sentence.
pub fn reach_sentence(name: &str, threshold: LeadScore, scores: &[i64]) -> String {
    let (threshold, total) = (threshold.value(), scores.len());
    let reached = scores.iter().filter(|s| **s >= i64::from(threshold)).count();
    if total == 0 {
        return "No leads in the last 30 days yet, so there is nothing to preview.".into();
    }
    let leads = if total == 1 { "lead" } else { "leads" };
    format!("At {threshold}, {name} would have received {reached} of the last {total} {leads} (30 days).")
}

#[derive(Deserialize)]
struct PreviewQuery {
    #[serde(default)]
    min_lead_score: String,
}

/// The threshold impact preview next to each slider, asked for as the slider moves.
#[get("/settings/notifications/recipients/{id}/preview")]
async fn threshold_preview(
    me: CurrentUser,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    query: web::Query<PreviewQuery>,
) -> Result<HttpResponse, AppError> {
    let r = db::recipients::get(&state.pool, me.business_id(), path.into_inner()).await?.ok_or(AppError::NotFound)?;
    let text = match LeadScore::parse(&query.min_lead_score) {
        Err(message) => message,
        Ok(score) => {
            let scores = recent_scores(&state, me.business_id()).await?;
            let name = if r.user_id == me.user.id { "you" } else { r.name.as_str() };
            reach_sentence(name, score, &scores)
        }
    };
    Ok(HttpResponse::Ok().content_type("text/html; charset=utf-8").body(crate::domain::text::html_escape(&text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipient(sms: bool, phone: bool) -> Recipient {
        let mut prefs = RecipientPrefs::new_recipient();
        prefs.channels.sms = sms;
        Recipient {
            id: 1,
            user_id: 2,
            name: "Sam".into(),
            email: "sam@acme.test".into(),
            phone: phone.then(|| PhoneNumber::from_stored("+15555550101".into())),
            prefs,
        }
    }

    fn defaults(sms: bool) -> BusinessDefaults {
        let mut d = BusinessDefaults::for_new_business(EmailAddress::parse("o@acme.test").unwrap());
        d.channels.sms = sms;
        d
    }

    #[test]
    fn a_channel_the_business_has_off_keeps_the_persons_choice() {
        let form = Fields(vec![("email_enabled".into(), "on".into()), ("min_lead_score".into(), "50".into())]);
        let prefs = requested_prefs(&form, &recipient(true, true), &defaults(false)).unwrap();
        assert!(prefs.channels.sms, "SMS was locked, so its stored choice stays on");
        assert!(prefs.channels.email && !prefs.channels.in_app);
        assert_eq!(prefs.min_lead_score.value(), 50);
    }

    #[test]
    fn an_open_channel_follows_the_form() {
        let form = Fields(vec![("min_lead_score".into(), "0".into())]);
        let prefs = requested_prefs(&form, &recipient(true, true), &defaults(true)).unwrap();
        assert!(!prefs.channels.sms && !prefs.channels.email);
    }

    #[test]
    fn a_bad_threshold_is_refused() {
        let form = Fields(vec![("min_lead_score".into(), "101".into())]);
        assert!(requested_prefs(&form, &recipient(false, false), &defaults(true)).is_err());
    }

    #[test]
    fn the_summary_applies_the_ceiling() {
        let mut r = recipient(true, true);
        r.prefs.min_lead_score = LeadScore::new(70).unwrap();
        assert_eq!(
            summary(&r, &defaults(false)),
            "Gets new-lead alerts, lead-update alerts, usage alerts, billing alerts by Email, In-app; leads scoring 70 or more."
        );
    }
}
