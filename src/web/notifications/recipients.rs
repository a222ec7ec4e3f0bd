//! Notification users: the teammates who receive alerts, each with their channels, alert types
//! and lead-score threshold (with a preview of what the threshold would have let through).
use crate::db::Link;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use super::{Oob, answer};
use crate::clock::{unix_now, unix_now_ms};
use crate::db;
use crate::db::recipients::Recipient;
use crate::domain::audit::Change;
use crate::domain::claim;
use crate::domain::routing::PhoneBlock;
use crate::domain::settings::{
    CLAIMED_UPDATES_ONLY, ChannelStatus, channel_status, prefs_changes, reach_sentence, requested_prefs, summary,
};
use crate::domain::text::capitalize;
use crate::domain::{AlertKind, BusinessDefaults, Channel, LeadScore, RecipientPrefs};
use crate::web::error::AppError;
use crate::web::extract::{CsrfForm, CurrentUser, Fields, is_htmx};
use crate::web::shell::Shell;
use crate::web::{AppState, render, see_other};

/// One choice in a recipient's row: a channel or an alert type.
#[derive(Clone)]
pub struct CheckBox {
    pub field: &'static str,
    pub label: &'static str,
    /// "channel" or "kind": the group of columns it sits in.
    pub group: &'static str,
    /// The person's own choice, as stored.
    pub checked: bool,
    /// Held off by the business or a missing phone: shown greyed, kept as chosen.
    pub locked: bool,
    /// Why it is held off, in words (hover, focus and screen readers).
    pub note: Option<String>,
}

#[derive(Clone)]
pub struct RecipientView {
    pub csrf: String,
    pub id: i64,
    pub name: String,
    pub email: String,
    pub phone: String,
    pub is_me: bool,
    pub editable: bool,
    pub can_remove: bool,
    /// Channels, then alert types, in the order of the grid's columns.
    pub checks: Vec<CheckBox>,
    pub score: String,
    pub score_error: Option<String>,
    pub summary: String,
    /// "Quiet hours: Mon–Fri 22:00 to 07:00 the next morning, America/New_York", or "No quiet hours."
    pub quiet: String,
    /// "At 70, Sam would have received 12 of the last 40 leads (30 days)."
    pub preview: String,
    /// "Claimed 12 leads in 30 days, usually 4 min after the call (median)."
    pub speed: String,
    /// Lead updates only for leads this person claimed; locked (shown on) while the business
    /// sends updates only to the claimer anyway.
    pub claimed_only: bool,
    pub claimed_only_locked: bool,
    pub claimed_only_label: String,
    pub claimed_only_hint: String,
}

/// The grid's columns of choices, in the order of `RecipientView::checks`.
fn columns() -> Vec<&'static str> {
    Channel::ALL.into_iter().map(Channel::label).chain(AlertKind::ALL.into_iter().map(AlertKind::label)).collect()
}

/// Why the business holds a choice off, and what happens to the person's own choice.
fn business_off(reason: String, chosen: bool, comes_back: &str) -> String {
    match chosen {
        true => format!("{}. {comes_back}", capitalize(&reason)),
        false => format!("{}.", capitalize(&reason)),
    }
}

impl RecipientView {
    fn new(r: &Recipient, d: &BusinessDefaults, me: &CurrentUser, recent: &Recent) -> Self {
        let is_me = r.user_id == me.user.id;
        let who = if is_me { "You get" } else { "They get" };
        let channels = Channel::ALL.into_iter().map(|c| {
            let status = channel_status(d, &r.prefs, r.phone_state(), c);
            let note = match &status {
                ChannelStatus::OffForBusiness { chosen } => d
                    .channel_off_reason(c)
                    .map(|reason| business_off(reason, *chosen, &format!("{who} it again once it is back on."))),
                ChannelStatus::NoPhone { .. } if is_me => Some("Add your phone number in Account to get SMS.".into()),
                ChannelStatus::NoPhone { .. } => Some(format!("No phone number: {} can add one in Account.", r.name)),
                ChannelStatus::PhoneBlocked { block: PhoneBlock::Refused(reason), .. } => {
                    Some(format!("{}: a new number in Account turns SMS back on.", capitalize(reason)))
                }
                ChannelStatus::PhoneBlocked { block: PhoneBlock::OptedOut, .. } => Some(format!(
                    "{} phone replied STOP: replying START from it turns SMS back on.",
                    if is_me { "Your".to_owned() } else { format!("{}\u{2019}s", r.name) }
                )),
                ChannelStatus::PhoneBlocked { block: PhoneBlock::Unconfirmed, .. } if is_me => {
                    Some("Phone not confirmed: enter the code texted to it in Account to get SMS.".into())
                }
                ChannelStatus::PhoneBlocked { block: PhoneBlock::Unconfirmed, .. } => {
                    Some(format!("Phone not confirmed: {} enters the code texted to it in Account.", r.name))
                }
                _ => None,
            };
            CheckBox {
                field: c.field(),
                label: c.label(),
                group: "channel",
                checked: r.prefs.channels.get(c),
                locked: status.locked(),
                note,
            }
        });
        let kinds = AlertKind::ALL.into_iter().map(|k| {
            let chosen = r.prefs.kinds.get(k);
            CheckBox {
                field: k.field(),
                label: k.label(),
                group: "kind",
                checked: chosen,
                locked: !d.kinds.get(k),
                note: d
                    .kind_off_reason(k)
                    .map(|reason| business_off(reason, chosen, &format!("{who} them again once they are back on."))),
            }
        });
        let name = if is_me { "you" } else { r.name.as_str() };
        Self {
            csrf: me.csrf_token.clone(),
            id: r.id,
            name: r.name.clone(),
            email: r.email.clone(),
            phone: r.phone.as_ref().map(|p| p.local(me.region)).unwrap_or_default(),
            is_me,
            editable: is_me || me.manages_business(),
            can_remove: me.manages_business(),
            checks: channels.chain(kinds).collect(),
            score: r.prefs.min_lead_score.value().to_string(),
            score_error: None,
            summary: summary(&r.name, &r.prefs, d, r.phone_state()),
            quiet: {
                let quiet = match &r.quiet_hours {
                    Some(_) => format!(
                        "Quiet hours: {}.",
                        super::quiet::words(r.quiet_hours.as_ref(), &r.zone, r.urgent_score)
                    ),
                    None => "No quiet hours: alerts go out at any time.".into(),
                };
                match r.digest_at {
                    Some(at) => format!("{quiet} Daily summary of the leads below the threshold at {at}."),
                    None => quiet,
                }
            },
            preview: reach_sentence(
                name,
                r.prefs.min_lead_score,
                &recent.scores,
                r.quiet().as_ref().map(|q| (q, recent.seen.as_slice())),
                recent.now_ms,
            ),
            speed: claim::speed_sentence(recent.speed_of(r.user_id)),
            claimed_only: r.prefs.claimed_updates_only || d.claimed_updates_only,
            claimed_only_locked: d.claimed_updates_only,
            claimed_only_label: format!("Lead updates: only for leads {} claimed", if is_me { "I" } else { "they" }),
            claimed_only_hint: if d.claimed_updates_only {
                "On for everyone: the business sends each lead\u{2019}s updates only to whoever claimed it.".into()
            } else {
                "Updates of a lead nobody has claimed still come; once someone claims it, only they get them.".into()
            },
        }
    }

    /// The row as the person typed it (`field` answers a checkbox by its plain name), with a
    /// message by the threshold: nothing typed is lost.
    fn with_typed(mut self, checked: impl Fn(&str) -> bool, threshold: &str, error: Option<String>) -> Self {
        for check in self.checks.iter_mut().filter(|c| !c.locked) {
            check.checked = checked(check.field);
        }
        if !self.claimed_only_locked {
            self.claimed_only = checked(CLAIMED_UPDATES_ONLY);
        }
        self.score = threshold.to_owned();
        self.score_error = error;
        self.preview = String::new();
        self
    }
}

pub struct RecipientsView {
    pub csrf: String,
    pub can_manage: bool,
    pub columns: Vec<&'static str>,
    pub rows: Vec<RecipientView>,
    /// Whether the grid has a row this person may change (and so a Save button).
    pub any_editable: bool,
    /// Why a save of the whole grid was refused.
    pub grid_error: Option<String>,
    /// Drawn into another part's answer, replacing the section on the page (htmx out of band).
    pub out_of_band: bool,
    /// Team members who are not recipients yet: (user id, "Name (email)").
    pub candidates: Vec<(i64, String)>,
    pub me_is_recipient: bool,
    pub managers: String,
    pub add_error: Option<String>,
}

#[derive(Template)]
#[template(path = "notifications/recipients_response.html")]
struct RecipientsResponse {
    recipients: RecipientsView,
    oob: Oob,
}

#[derive(Template)]
#[template(path = "notifications/recipient_response.html")]
struct RecipientResponse {
    r: RecipientView,
    oob: Oob,
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

/// The last 30 days of a business, as the recipients' rows show them.
#[derive(Default)]
pub struct Recent {
    /// How many leads had each score (the threshold preview).
    scores: Vec<(i64, i64)>,
    /// The score and time of each lead, when someone has quiet hours (the preview counts those
    /// that would have waited); read at `now_ms`.
    seen: Vec<(i64, i64)>,
    now_ms: i64,
    /// Who claimed leads, and how long after the call (each person's speed to lead).
    claims: Vec<(i64, i64)>,
}

/// Claims read for the speed of each person: far more than 30 days of any small business.
const CLAIMS_READ: i64 = 20_000;

/// Leads whose time the preview checks against quiet hours: 30 days of a business ten times
/// busier than a large one. Past this, the oldest are not counted as waiting.
const SEEN_READ: i64 = 5_000;

impl Recent {
    /// For the rows of everyone (`person: None`), or of one person; `quiet`: whether any of
    /// them has quiet hours.
    async fn load(conn: &mut impl Link, business_id: &str, person: Option<i64>, quiet: bool) -> Result<Self, AppError> {
        let since = unix_now() - 30 * 24 * 3600;
        Ok(Self {
            scores: db::leads::scores_since(conn, business_id, since).await?,
            seen: match quiet {
                true => db::leads::seen_since(conn, business_id, since, SEEN_READ).await?,
                false => Vec::new(),
            },
            now_ms: unix_now_ms(),
            claims: db::leads::claims_since(conn, business_id, since, person, CLAIMS_READ).await?,
        })
    }

    fn speed_of(&self, user_id: i64) -> Option<(usize, i64)> {
        let mut theirs: Vec<i64> = self.claims.iter().filter(|(u, _)| *u == user_id).map(|(_, s)| *s).collect();
        claim::speed(&mut theirs)
    }
}

pub async fn recipients_view(
    conn: &mut impl Link,
    me: &CurrentUser,
    d: &BusinessDefaults,
) -> Result<RecipientsView, AppError> {
    let business = me.business_id();
    let recipients = db::recipients::list(conn, business).await?;
    let team = db::users::list_active(conn, business).await?;
    let quiet = recipients.iter().any(|r| r.quiet_hours.is_some());
    let recent = Recent::load(conn, business, None, quiet).await?;
    let candidates = team
        .iter()
        .filter(|u| !recipients.iter().any(|r| r.user_id == u.id))
        .map(|u| (u.id, format!("{} ({})", u.name, u.email)))
        .collect();
    let managers: Vec<&str> = team.iter().filter(|u| u.role.manages_business()).map(|u| u.name.as_str()).collect();
    let rows: Vec<RecipientView> = recipients.iter().map(|r| RecipientView::new(r, d, me, &recent)).collect();
    Ok(RecipientsView {
        csrf: me.csrf_token.clone(),
        can_manage: me.manages_business(),
        me_is_recipient: recipients.iter().any(|r| r.user_id == me.user.id),
        columns: columns(),
        any_editable: rows.iter().any(|r| r.editable),
        grid_error: None,
        out_of_band: false,
        rows,
        candidates,
        managers: managers.join(", "),
        add_error: None,
    })
}

/// The recipients section as stored: the fragment for htmx, the whole page otherwise.
async fn recipients_answer(
    req: &HttpRequest,
    state: &AppState,
    me: &CurrentUser,
    code: StatusCode,
    status: String,
    add_error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let saved = add_error.is_none();
    let fragment = async {
        let mut conn = state.db.read().await?;
        let defaults = db::defaults::of(&mut conn, me.business_id()).await?;
        let mut recipients = recipients_view(&mut conn, me, &defaults).await?;
        recipients.add_error = add_error.clone();
        let oob = match saved {
            true => Oob::saved(&mut conn, me.business_id(), &status).await?,
            false => Oob::status(&status),
        };
        Ok(RecipientsResponse { recipients, oob })
    };
    answer(req, state, me, code, fragment, Some(status.clone()), |page| page.recipients.add_error = add_error.clone())
        .await
}

#[post("/settings/notifications/recipients")]
pub async fn add_recipient(
    req: HttpRequest,
    me: CurrentUser,
    state: web::Data<AppState>,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<HttpResponse, AppError> {
    me.require_manager("add notification recipients")?;
    let Ok(user_id) = fields.get("user_id").unwrap_or("").trim().parse::<i64>() else {
        let problem = "Choose a team member to add.".to_owned();
        let code = StatusCode::UNPROCESSABLE_ENTITY;
        return recipients_answer(&req, &state, &me, code, format!("Not added: {problem}"), Some(problem)).await;
    };
    let user = db::users::get_active(&mut state.db.read().await?, me.business_id(), user_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let (business, actor) = (me.business_id().to_owned(), me.user.id);
    let added = state
        .db
        .write(move |w| {
            Box::pin(async move {
                let now = unix_now();
                let added =
                    db::recipients::insert(w, &business, user_id, &RecipientPrefs::new_recipient(), now).await?;
                if added.is_some() {
                    let change = Change::new("recipient.added", None, None);
                    db::audit::record(w, &business, Some(actor), Some(user_id), &[change], now).await?;
                }
                Ok(added)
            })
        })
        .await?;
    let Some(id) = added else {
        let problem = format!("{} is already a recipient.", user.name);
        return recipients_answer(&req, &state, &me, StatusCode::CONFLICT, problem.clone(), Some(problem)).await;
    };
    if !is_htmx(&req) {
        return Ok(see_other(&format!("/settings/notifications?saved=added#recipient-{id}")));
    }
    let status = format!("Added {}. Set their channels and threshold below.", user.name);
    recipients_answer(&req, &state, &me, StatusCode::OK, status, None).await
}

#[post("/settings/notifications/recipients/{id}")]
pub async fn update_recipient(
    req: HttpRequest,
    me: CurrentUser,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let (stored, defaults) = {
        let mut conn = state.db.read().await?;
        let stored = db::recipients::get(&mut conn, me.business_id(), id).await?.ok_or(AppError::NotFound)?;
        (stored, db::defaults::of(&mut conn, me.business_id()).await?)
    };
    if stored.user_id != me.user.id && !me.manages_business() {
        return Err(AppError::Forbidden(
            "You can only change your own notification preferences. Ask an owner or admin to change someone else\u{2019}s."
                .into(),
        ));
    }
    let threshold = fields.get("min_lead_score").unwrap_or("").to_owned();
    if let Err(message) = LeadScore::parse(&threshold) {
        let r = RecipientView::new(&stored, &defaults, &me, &Recent::default()).with_typed(
            |f| fields.checked(f),
            &threshold,
            Some(message),
        );
        let status = format!("Not saved: fix {}\u{2019}s lead-score threshold.", stored.name);
        let fragment = RecipientResponse { r: r.clone(), oob: Oob::status(&status) };
        let adjust = |page: &mut super::NotificationsPage| {
            if let Some(slot) = page.recipients.rows.iter_mut().find(|row| row.id == id) {
                *slot = r;
            }
        };
        let code = StatusCode::UNPROCESSABLE_ENTITY;
        return answer(&req, &state, &me, code, async { Ok(fragment) }, Some(status.clone()), adjust).await;
    }
    // The choices are applied to the row as it is at the write, with the ceiling as it is then:
    // a concurrent save or a change of the business defaults is not undone by this one.
    let (business, actor) = (me.business_id().to_owned(), me.user.id);
    let saved = state
        .db
        .write(move |w| {
            Box::pin(async move {
                let Some(current) = db::recipients::get(w, &business, id).await? else { return Ok(None) };
                let defaults = db::defaults::of(w, &business).await?;
                let phone = current.phone_state();
                let prefs = requested_prefs(|f| fields.checked(f), &threshold, &current.prefs, &defaults, phone)
                    .map_err(|e| sqlx::Error::Protocol(format!("the threshold was checked already: {e}")))?;
                let changes = prefs_changes(&current.prefs, &prefs);
                if !changes.is_empty() {
                    db::recipients::update(w, &business, id, &prefs).await?;
                    db::audit::record(w, &business, Some(actor), Some(current.user_id), &changes, unix_now()).await?;
                }
                Ok(Some((Recipient { prefs, ..current }, defaults, !changes.is_empty())))
            })
        })
        .await?;
    let Some((updated, defaults, changed)) = saved else { return Err(AppError::NotFound) };
    if !is_htmx(&req) {
        return Ok(see_other(&format!("/settings/notifications?saved=recipient#recipient-{id}")));
    }
    let mut conn = state.db.read().await?;
    let whose = if updated.user_id == me.user.id { "your".to_owned() } else { format!("{}\u{2019}s", updated.name) };
    let status = if changed { format!("Saved {whose} preferences.") } else { "No changes to save.".to_owned() };
    let recent =
        Recent::load(&mut conn, me.business_id(), Some(updated.user_id), updated.quiet_hours.is_some()).await?;
    let oob = Oob::saved(&mut conn, me.business_id(), status).await?;
    render(StatusCode::OK, &RecipientResponse { r: RecipientView::new(&updated, &defaults, &me, &recent), oob })
}

/// The most rows one save of the grid may carry (far more than any team; the rest is refused).
const MAX_GRID_ROWS: usize = 200;

/// A field of one row of the grid: `r12-sms_enabled`.
fn grid_field(id: i64, field: &str) -> String {
    format!("r{id}-{field}")
}

/// The whole grid at once: what a browser without JavaScript sends with "Save changes". Every
/// threshold is checked before anything is saved; a refused save comes back with every row as
/// typed and a message by each threshold at fault.
#[post("/settings/notifications/recipients/save")]
pub async fn save_grid(
    me: CurrentUser,
    state: web::Data<AppState>,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<HttpResponse, AppError> {
    let mut ids: Vec<i64> = fields.all("row").filter_map(|v| v.trim().parse().ok()).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() > MAX_GRID_ROWS {
        return Err(AppError::BadRequest(format!("A save carries at most {MAX_GRID_ROWS} rows.")));
    }
    let stored = db::recipients::list(&mut state.db.read().await?, me.business_id()).await?;
    // Rows removed since the page was drawn are left alone; someone else's row needs a manager.
    let rows: Vec<&Recipient> = stored.iter().filter(|r| ids.contains(&r.id)).collect();
    if rows.iter().any(|r| r.user_id != me.user.id) && !me.manages_business() {
        return Err(AppError::Forbidden(
            "You can only change your own notification preferences. Ask an owner or admin to change someone else\u{2019}s."
                .into(),
        ));
    }
    let refused: Vec<(i64, String)> = rows
        .iter()
        .filter_map(|r| {
            let typed = fields.get(&grid_field(r.id, "min_lead_score")).unwrap_or("");
            LeadScore::parse(typed).err().map(|message| (r.id, message))
        })
        .collect();
    if !refused.is_empty() {
        let names: Vec<&str> =
            refused.iter().filter_map(|(id, _)| rows.iter().find(|r| r.id == *id)).map(|r| r.name.as_str()).collect();
        let problem = format!("Not saved: fix the lead-score threshold of {}.", names.join(", "));
        let mut page = super::NotificationsPage::load(&state, &me, Some(problem.clone())).await?;
        for row in page.recipients.rows.iter_mut().filter(|row| ids.contains(&row.id)) {
            let id = row.id;
            let typed = fields.get(&grid_field(id, "min_lead_score")).unwrap_or("").to_owned();
            let error = refused.iter().find(|(r, _)| *r == id).map(|(_, m)| m.clone());
            let checked = |f: &str| fields.checked(&grid_field(id, f));
            *row = row.clone().with_typed(checked, &typed, error);
        }
        page.recipients.grid_error = Some(problem);
        return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
    }
    let (business, actor) = (me.business_id().to_owned(), me.user.id);
    let changed = state
        .db
        .write(move |w| {
            Box::pin(async move {
                let mut changed = 0;
                let defaults = db::defaults::of(w, &business).await?;
                for id in ids {
                    let Some(current) = db::recipients::get(w, &business, id).await? else { continue };
                    let threshold = fields.get(&grid_field(id, "min_lead_score")).unwrap_or("");
                    let checked = |f: &str| fields.checked(&grid_field(id, f));
                    let prefs =
                        requested_prefs(checked, threshold, &current.prefs, &defaults, current.phone_state())
                            .map_err(|e| sqlx::Error::Protocol(format!("the threshold was checked already: {e}")))?;
                    let changes = prefs_changes(&current.prefs, &prefs);
                    if !changes.is_empty() {
                        db::recipients::update(w, &business, id, &prefs).await?;
                        db::audit::record(w, &business, Some(actor), Some(current.user_id), &changes, unix_now())
                            .await?;
                        changed += 1;
                    }
                }
                Ok(changed)
            })
        })
        .await?;
    let saved = if changed == 0 { "unchanged" } else { "recipients" };
    Ok(see_other(&format!("/settings/notifications?saved={saved}#recipients")))
}

#[post("/settings/notifications/recipients/{id}/remove")]
pub async fn remove_recipient(
    req: HttpRequest,
    me: CurrentUser,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let stored =
        db::recipients::get(&mut state.db.read().await?, me.business_id(), id).await?.ok_or(AppError::NotFound)?;
    me.require_manager("remove notification recipients")?;
    if fields.get("confirmed") != Some("yes") {
        let page = ConfirmRemove { shell: Shell::new(&me, "notifications"), id, name: stored.name, status: None };
        return render(StatusCode::OK, &page);
    }
    let (business, actor, subject) = (me.business_id().to_owned(), me.user.id, stored.user_id);
    state
        .db
        .write(move |w| {
            Box::pin(async move {
                if db::recipients::delete(w, &business, id).await? {
                    let change = Change::new("recipient.removed", None, None);
                    db::audit::record(w, &business, Some(actor), Some(subject), &[change], unix_now()).await?;
                }
                Ok(())
            })
        })
        .await?;
    if !is_htmx(&req) {
        return Ok(see_other("/settings/notifications?saved=removed#recipients"));
    }
    let status = format!("Removed {} from the recipients.", stored.name);
    recipients_answer(&req, &state, &me, StatusCode::OK, status, None).await
}

#[derive(Deserialize)]
struct PreviewQuery {
    #[serde(default)]
    min_lead_score: String,
}

/// The threshold impact preview next to each slider, asked for as the slider moves.
#[get("/settings/notifications/recipients/{id}/preview")]
pub async fn threshold_preview(
    me: CurrentUser,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    query: web::Query<PreviewQuery>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.db.read().await?;
    let r = db::recipients::get(&mut conn, me.business_id(), path.into_inner()).await?.ok_or(AppError::NotFound)?;
    let text = match LeadScore::parse(&query.min_lead_score) {
        Err(message) => message,
        Ok(score) => {
            let since = unix_now() - 30 * 24 * 3600;
            let scores = db::leads::scores_since(&mut conn, me.business_id(), since).await?;
            let quiet = r.quiet();
            let seen = match quiet {
                Some(_) => db::leads::seen_since(&mut conn, me.business_id(), since, SEEN_READ).await?,
                None => Vec::new(),
            };
            let name = if r.user_id == me.user.id { "you" } else { r.name.as_str() };
            reach_sentence(name, score, &scores, quiet.as_ref().map(|q| (q, seen.as_slice())), unix_now_ms())
        }
    };
    Ok(HttpResponse::Ok().content_type("text/html; charset=utf-8").body(crate::domain::text::html_escape(&text)))
}
