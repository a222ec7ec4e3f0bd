//! Quiet hours and the daily summary for one recipient, on a page of its own (linked from their
//! row's "More"): the days and times they do not want to be woken, in their time zone, the lead
//! score that gets through anyway, and when the summary of leads below their threshold goes.
//! Owners and admins set anyone's; each person their own.
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;

use crate::clock::{unix_now, unix_now_ms};
use crate::db;
use crate::db::recipients::Recipient;
use crate::domain::LeadScore;
use crate::domain::audit::Change;
use crate::domain::quiet::{DAYS, Digest, QuietErrors, QuietHours, TimeOfDay, Zone, zone_names};
use crate::domain::{Channel, Role};
use crate::web::error::AppError;
use crate::web::extract::{CsrfForm, CurrentUser, Fields};
use crate::web::shell::Shell;
use crate::web::{AppState, render, see_other};

pub struct DayBox {
    pub field: &'static str,
    pub label: &'static str,
    pub on: bool,
}

#[derive(Template)]
#[template(path = "notifications/quiet.html")]
struct QuietPage {
    shell: Shell,
    id: i64,
    name: String,
    is_me: bool,
    enabled: bool,
    days: Vec<DayBox>,
    from: String,
    to: String,
    zone: String,
    zones: Vec<&'static str>,
    urgent: bool,
    urgent_score: String,
    errors: QuietErrors,
    zone_error: Option<String>,
    urgent_error: Option<String>,
    /// The daily summary: on, its time (as typed), what is wrong with it.
    digest: bool,
    digest_at: String,
    digest_error: Option<String>,
    threshold: u8,
    /// Why the summary cannot go now, when it cannot (the business sends no email).
    digest_blocked: Option<String>,
    status: Option<String>,
}

fn page(me: &CurrentUser, r: &Recipient, email_on: bool) -> QuietPage {
    let hours = r.quiet_hours;
    QuietPage {
        shell: Shell::new(me, "notifications"),
        id: r.id,
        name: r.name.clone(),
        is_me: r.user_id == me.user.id,
        enabled: hours.is_some(),
        days: DAYS
            .iter()
            .enumerate()
            .map(|(i, (field, label))| DayBox { field, label, on: hours.map_or(i < 5, |h| h.days[i]) })
            .collect(),
        from: hours.map_or("22:00".into(), |h| h.from.to_string()),
        to: hours.map_or("07:00".into(), |h| h.to.to_string()),
        zone: r.zone.name().to_owned(),
        zones: zone_names(),
        urgent: r.urgent_score.is_some(),
        urgent_score: r.urgent_score.unwrap_or(90).to_string(),
        errors: QuietErrors::default(),
        zone_error: None,
        urgent_error: None,
        digest: r.digest_at.is_some(),
        digest_at: r.digest_at.map_or("08:00".into(), |t| t.to_string()),
        digest_error: None,
        threshold: r.prefs.min_lead_score.value(),
        digest_blocked: (!email_on)
            .then(|| "Email is off for the business, so no summary goes until an owner or admin turns it on.".into()),
        status: None,
    }
}

/// The recipient `id`, if `me` may change their quiet hours, and whether the business sends email.
async fn recipient(state: &AppState, me: &CurrentUser, id: i64) -> Result<(Recipient, bool), AppError> {
    let mut conn = state.db.read().await?;
    let r = db::recipients::get(&mut conn, me.business_id(), id).await?.ok_or(AppError::NotFound)?;
    if r.user_id != me.user.id && !me.manages_business() {
        return Err(AppError::Forbidden(
            "You can only set your own quiet hours. Ask an owner or admin to change someone else\u{2019}s.".into(),
        ));
    }
    let email_on = db::defaults::of(&mut conn, me.business_id()).await?.channels.get(Channel::Email);
    Ok((r, email_on))
}

#[get("/settings/notifications/recipients/{id}/quiet")]
pub async fn quiet_page(
    me: CurrentUser,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let (r, email_on) = recipient(&state, &me, path.into_inner()).await?;
    render(StatusCode::OK, &page(&me, &r, email_on))
}

/// In words for the audit log: "Mon–Fri 22:00 to 07:00 the next morning, America/New_York; leads
/// scoring 90 or more get through", "off".
pub fn words(hours: Option<&QuietHours>, zone: &Zone, urgent: Option<u8>) -> String {
    match hours {
        None => "off".into(),
        Some(h) => {
            let through = urgent.map(|s| format!("; leads scoring {s} or more get through")).unwrap_or_default();
            format!("{}, {}{through}", h.describe(), zone.name())
        }
    }
}

#[post("/settings/notifications/recipients/{id}/quiet")]
pub async fn save_quiet(
    me: CurrentUser,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<HttpResponse, AppError> {
    let (r, email_on) = recipient(&state, &me, path.into_inner()).await?;
    let enabled = fields.checked("quiet_enabled");
    let days: [bool; 7] = std::array::from_fn(|i| fields.checked(DAYS[i].0));
    let (from, to) = (fields.get("quiet_from").unwrap_or(""), fields.get("quiet_to").unwrap_or(""));
    let zone = Zone::parse(fields.get("time_zone").unwrap_or(""));
    let urgent = fields.checked("urgent_enabled");
    let score_typed = fields.get("urgent_score").unwrap_or("").trim().to_owned();
    let urgent_score = if urgent {
        LeadScore::parse(&score_typed).map(|s| Some(s.value())).map_err(|e| e.to_string())
    } else {
        Ok(None)
    };
    let hours = if enabled { QuietHours::check(days, from, to).map(Some) } else { Ok(None) };
    let (Ok(hours), Ok(zone), Ok(urgent_score)) = (&hours, &zone, &urgent_score) else {
        let mut shown = page(&me, &r, email_on);
        shown.enabled = enabled;
        shown.days.iter_mut().zip(days).for_each(|(d, on)| d.on = on);
        shown.from = from.to_owned();
        shown.to = to.to_owned();
        shown.zone = fields.get("time_zone").unwrap_or("").to_owned();
        shown.urgent = urgent;
        shown.urgent_score = score_typed;
        shown.errors = hours.clone().err().unwrap_or_default();
        shown.zone_error = zone.clone().err();
        shown.urgent_error = urgent_score.clone().err();
        shown.status = Some("Not saved: fix the highlighted fields.".into());
        return render(StatusCode::UNPROCESSABLE_ENTITY, &shown);
    };
    let (hours, zone, urgent_score) = (*hours, zone.clone(), *urgent_score);
    let before = words(r.quiet_hours.as_ref(), &r.zone, r.urgent_score);
    let after = words(hours.as_ref(), &zone, urgent_score);
    // What the old hours hold now follows the new ones; the daily summary, a new time zone.
    let changed = Recipient { quiet_hours: hours, urgent_score, zone: zone.clone(), ..r.clone() };
    let follow = Follow::settings_of(&changed, zone != r.zone, unix_now_ms());
    let (business, actor, id, subject) = (me.business_id().to_owned(), me.user.id, r.id, r.user_id);
    state
        .db
        .write(move |w| {
            Box::pin(async move {
                if db::recipients::set_quiet(w, &business, id, hours.as_ref(), urgent_score, Some(&zone)).await? {
                    follow.apply(w, &business, subject).await?;
                    let changes = Change::between("recipient.quiet_hours", before, after);
                    db::audit::record(w, &business, Some(actor), Some(subject), &changes, unix_now()).await?;
                }
                Ok(())
            })
        })
        .await?;
    state.dispatcher.wake();
    Ok(see_other(&format!("/settings/notifications?saved=quiet#recipient-{id}")))
}

/// What a person's held alerts do after their quiet hours or time zone changed: what quiet
/// hours hold waits for the new end (or goes now), and the daily summary moves to its next time
/// in the new zone.
pub struct Follow {
    until: i64,
    at: Option<String>,
    held: String,
    digest: Option<(i64, String, String)>,
}

impl Follow {
    /// For `r` as it is now set; `zone_changed`: the summary moves too.
    pub fn settings_of(r: &Recipient, zone_changed: bool, now_ms: i64) -> Self {
        let quiet = r.quiet();
        let (until, at, held) = match quiet.as_ref().and_then(|q| q.hours.held_until(&q.zone, now_ms).map(|t| (q, t))) {
            Some((q, t)) => (t, Some(q.zone.clock(t)), q.held_words(&r.name, t)),
            None => (now_ms, None, "released when the quiet hours changed".to_owned()),
        };
        let digest = r.digest().filter(|_| zone_changed).and_then(|d| moved_digest(&r.name, &d, now_ms));
        Self { until, at, held, digest }
    }

    /// Moves the person's held alerts, in the write that changed their settings.
    pub async fn apply(&self, w: &mut db::Write, business_id: &str, user_id: i64) -> sqlx::Result<()> {
        db::deliveries::rehold(w, business_id, user_id, self.until, self.at.as_deref(), &self.held).await?;
        if let Some((until, at, reason)) = &self.digest {
            db::deliveries::reschedule_digest(w, business_id, user_id, Some((*until, at)), reason).await?;
        }
        Ok(())
    }
}

/// Where what a summary holds goes once it moved: its new time, that time in words, and why.
fn moved_digest(name: &str, digest: &Digest, now_ms: i64) -> Option<(i64, String, String)> {
    let until = digest.next(now_ms)?;
    let why = format!("below {name}\u{2019}s threshold: {}", digest.words(now_ms, until));
    Some((until, digest.zone.clock(until), why))
}

/// In words for the audit log: "daily at 08:00, America/New_York", "off".
fn digest_words(at: Option<TimeOfDay>, zone: &Zone) -> String {
    at.map_or("off".into(), |at| format!("daily at {at}, {}", zone.name()))
}

/// `POST /settings/notifications/recipients/{id}/digest`: the daily summary of new leads below
/// the recipient's threshold, by email, at a time of day in their zone (or off).
#[post("/settings/notifications/recipients/{id}/digest")]
pub async fn save_digest(
    me: CurrentUser,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<HttpResponse, AppError> {
    let (r, email_on) = recipient(&state, &me, path.into_inner()).await?;
    let enabled = fields.checked("digest_enabled");
    let typed = fields.get("digest_at").unwrap_or("").trim().to_owned();
    let at = if enabled { TimeOfDay::parse(&typed).map(Some) } else { Ok(None) };
    let at = match at {
        Ok(at) => at,
        Err(e) => {
            let mut shown = page(&me, &r, email_on);
            shown.digest = true;
            shown.digest_at = typed;
            shown.digest_error = Some(e);
            shown.status = Some("Not saved: fix the time of the daily summary.".into());
            return render(StatusCode::UNPROCESSABLE_ENTITY, &shown);
        }
    };
    let (before, after) = (digest_words(r.digest_at, &r.zone), digest_words(at, &r.zone));
    let now_ms = unix_now_ms();
    let moved = at.and_then(|at| moved_digest(&r.name, &Digest { at, zone: r.zone.clone() }, now_ms));
    let off = format!("below {}\u{2019}s threshold; the daily summary was turned off", r.name);
    let (business, actor, id, subject) = (me.business_id().to_owned(), me.user.id, r.id, r.user_id);
    state
        .db
        .write(move |w| {
            Box::pin(async move {
                if db::recipients::set_digest(w, &business, id, at).await? {
                    match &moved {
                        Some((until, at, why)) => {
                            db::deliveries::reschedule_digest(w, &business, subject, Some((*until, at)), why).await?
                        }
                        None => db::deliveries::reschedule_digest(w, &business, subject, None, &off).await?,
                    };
                    let changes = Change::between("recipient.digest", before, after);
                    db::audit::record(w, &business, Some(actor), Some(subject), &changes, unix_now()).await?;
                }
                Ok(())
            })
        })
        .await?;
    state.dispatcher.wake();
    Ok(see_other(&format!("/settings/notifications?saved=digest#recipient-{id}")))
}

/// `POST /settings/notifications/billing-urgent`: whether payment-failed alerts get through
/// everyone's quiet hours (the owner's call).
#[post("/settings/notifications/billing-urgent")]
pub async fn save_billing_urgent(
    me: CurrentUser,
    state: web::Data<AppState>,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<HttpResponse, AppError> {
    if me.user.role != Role::Owner {
        return Err(AppError::Forbidden(
            "Only the owner can mark payment-failed alerts urgent: they wake everyone up.".into(),
        ));
    }
    let urgent = fields.checked("billing_urgent");
    let (business, actor) = (me.business_id().to_owned(), me.user.id);
    state
        .db
        .write(move |w| {
            Box::pin(async move {
                let before = db::defaults::billing_urgent(w, &business).await?;
                if before != urgent {
                    db::defaults::set_billing_urgent(w, &business, urgent).await?;
                    let change = Change::switch("defaults.billing_urgent", before, urgent);
                    db::audit::record(w, &business, Some(actor), None, &[change], unix_now()).await?;
                }
                Ok(())
            })
        })
        .await?;
    Ok(see_other(if urgent {
        "/settings/notifications?saved=urgent#defaults"
    } else {
        "/settings/notifications?saved=not-urgent#defaults"
    }))
}

/// `POST /settings/notifications/time-zone`: the business's time zone (owners and admins).
#[post("/settings/notifications/time-zone")]
pub async fn save_business_zone(
    me: CurrentUser,
    state: web::Data<AppState>,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<HttpResponse, AppError> {
    me.require_manager("change the business\u{2019}s time zone")?;
    let typed = fields.get("time_zone").unwrap_or("").to_owned();
    let zone = match Zone::parse(&typed) {
        Ok(zone) => zone,
        Err(e) => {
            let mut page =
                super::NotificationsPage::load(&state, &me, Some("Not saved: fix the time zone.".into())).await?;
            page.zone.name = typed;
            page.zone.error = Some(e);
            return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
    };
    let business = me.business_id().to_owned();
    state.db.write(move |w| Box::pin(async move { db::businesses::set_time_zone(w, &business, &zone).await })).await?;
    Ok(see_other("/settings/notifications?saved=zone#defaults"))
}

/// `POST /settings/notifications/update-window`: lead updates this many minutes apart merge
/// into one alert (0 to 60; 0 alerts each update).
#[post("/settings/notifications/update-window")]
pub async fn save_update_window(
    me: CurrentUser,
    state: web::Data<AppState>,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<HttpResponse, AppError> {
    me.require_manager("change how lead updates merge")?;
    let typed = fields.get("update_window_minutes").unwrap_or("").trim().to_owned();
    let Some(minutes) = typed.parse::<i64>().ok().filter(|m| (0..=60).contains(m)) else {
        let mut page = super::NotificationsPage::load(&state, &me, Some("Not saved: fix the minutes.".into())).await?;
        page.window = (typed, Some("Enter whole minutes from 0 to 60 (0 alerts each update).".into()));
        return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
    };
    let business = me.business_id().to_owned();
    state
        .db
        .write(move |w| Box::pin(async move { db::defaults::set_update_window(w, &business, minutes).await }))
        .await?;
    Ok(see_other("/settings/notifications?saved=window#defaults"))
}
