//! Escalation on the Notifications page: "if a lead scoring at least 70 is not claimed within 5
//! minutes, alert …". Owners and admins change it; everyone sees it in one sentence.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, post, web};
use askama::Template;

use super::{Oob, answer};
use crate::clock::unix_now;
use crate::db::{self, Link};
use crate::domain::audit::Change;
use crate::domain::escalation::{self, FieldError, Policy, Typed};
use crate::domain::{AlertKind, BusinessDefaults, Channel, ChannelSet};
use crate::web::error::AppError;
use crate::web::extract::{CsrfForm, CurrentUser, Fields, is_htmx};
use crate::web::{AppState, render, see_other};

/// A teammate the policy can alert, and whether each step does.
#[derive(Clone)]
pub struct Pick {
    pub user_id: i64,
    pub name: String,
    pub first: bool,
    pub second: bool,
}

#[derive(Clone)]
pub struct ChannelPick {
    pub field: &'static str,
    pub label: &'static str,
    pub on: bool,
}

#[derive(Clone)]
pub struct EscalationView {
    pub csrf: String,
    pub editable: bool,
    /// The policy as saved, in one sentence.
    pub sentence: String,
    pub enabled: bool,
    pub min_score: String,
    pub first_minutes: String,
    pub second: bool,
    pub second_minutes: String,
    pub people: Vec<Pick>,
    pub channels: Vec<ChannelPick>,
    pub error: Option<FieldError>,
    /// What the business defaults hold back from the saved policy ("SMS is off …").
    pub warnings: Vec<String>,
}

impl EscalationView {
    /// The message for `field`, if that is the field at fault.
    pub fn error_for(&self, field: &str) -> Option<&str> {
        self.error.as_ref().filter(|e| e.field == field).map(|e| e.message.as_str())
    }

    fn new(
        me: &CurrentUser,
        saved: &Policy,
        shown: &Typed,
        team: &[(i64, String)],
        defaults: &BusinessDefaults,
    ) -> Self {
        let name_of = |id: i64| {
            team.iter().find(|(u, _)| *u == id).map(|(_, n)| n.clone()).unwrap_or_else(|| "a former teammate".into())
        };
        Self {
            csrf: me.csrf_token.clone(),
            editable: me.manages_business(),
            sentence: saved.sentence(name_of),
            enabled: shown.enabled,
            min_score: shown.min_score.clone(),
            first_minutes: shown.first_minutes.clone(),
            second: shown.second,
            second_minutes: shown.second_minutes.clone(),
            people: team
                .iter()
                .map(|(user_id, name)| Pick {
                    user_id: *user_id,
                    name: name.clone(),
                    first: shown.first_people.contains(user_id),
                    second: shown.second_people.contains(user_id),
                })
                .collect(),
            channels: Channel::ALL
                .into_iter()
                .map(|c| ChannelPick { field: c.code(), label: c.label(), on: shown.channels.get(c) })
                .collect(),
            error: None,
            warnings: warnings(saved, defaults),
        }
    }
}

/// The saved policy's choices the business defaults hold off: its alerts record them as not
/// sent, and the page says so before that happens.
fn warnings(policy: &Policy, defaults: &BusinessDefaults) -> Vec<String> {
    if !policy.enabled {
        return Vec::new();
    }
    if !defaults.kinds.get(AlertKind::LeadCreated) {
        return vec!["New-lead alerts are off in the business defaults above, so nothing is escalated.".into()];
    }
    Channel::ALL
        .into_iter()
        .filter(|c| policy.channels.get(*c) && !defaults.channels.get(*c))
        .map(|c| {
            format!("{} is off in the business defaults above, so escalations do not go by {}.", c.label(), c.label())
        })
        .collect()
}

/// The policy as the form shows it.
fn typed_of(policy: &Policy) -> Typed {
    Typed {
        enabled: policy.enabled,
        min_score: policy.min_score.value().to_string(),
        first_minutes: policy.first.minutes.to_string(),
        first_people: policy.first.people.clone(),
        channels: policy.channels,
        second: policy.second.is_some(),
        second_minutes: policy.second.as_ref().map_or_else(|| "10".to_owned(), |s| s.minutes.to_string()),
        second_people: policy.second.as_ref().map(|s| s.people.clone()).unwrap_or_default(),
    }
}

/// The saved policy's warnings under `defaults` (read alone: the form is not drawn again).
pub async fn warnings_now(
    conn: &mut impl Link,
    business_id: &str,
    defaults: &BusinessDefaults,
) -> Result<Vec<String>, AppError> {
    let saved = db::escalations::policy(conn, business_id).await?;
    Ok(saved.map(|s| warnings(&s.policy, defaults)).unwrap_or_default())
}

/// Who a policy can alert: the recipients (escalations go through their channels).
async fn team(conn: &mut impl Link, business_id: &str) -> Result<Vec<(i64, String)>, AppError> {
    Ok(db::recipients::list(conn, business_id).await?.into_iter().map(|r| (r.user_id, r.name)).collect())
}

/// The section as saved, for `me`.
pub async fn escalation_view(
    conn: &mut impl Link,
    me: &CurrentUser,
    defaults: &BusinessDefaults,
) -> Result<EscalationView, AppError> {
    let saved = db::escalations::policy(conn, me.business_id()).await?.map_or_else(Policy::suggested, |s| s.policy);
    let team = team(conn, me.business_id()).await?;
    Ok(EscalationView::new(me, &saved, &typed_of(&saved), &team, defaults))
}

#[derive(Template)]
#[template(path = "notifications/escalation_response.html")]
struct EscalationResponse {
    e: EscalationView,
    oob: Oob,
}

fn typed_from(fields: &Fields) -> Typed {
    let ids = |name: &str| fields.all(name).filter_map(|v| v.trim().parse().ok()).collect::<Vec<i64>>();
    Typed {
        enabled: fields.checked("enabled"),
        min_score: fields.get("min_score").unwrap_or("").to_owned(),
        first_minutes: fields.get("first_minutes").unwrap_or("").to_owned(),
        first_people: ids("first_people"),
        channels: ChannelSet {
            email: fields.checked(Channel::Email.code()),
            sms: fields.checked(Channel::Sms.code()),
            in_app: fields.checked(Channel::InApp.code()),
        },
        second: fields.checked("second"),
        second_minutes: fields.get("second_minutes").unwrap_or("").to_owned(),
        second_people: ids("second_people"),
    }
}

/// Saves the escalation policy: checked whole, saved whole, or refused with the field at fault.
#[post("/settings/notifications/escalation")]
pub async fn save_escalation(
    req: HttpRequest,
    me: CurrentUser,
    state: web::Data<AppState>,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<HttpResponse, AppError> {
    me.require_manager("change escalation")?;
    let typed = typed_from(&fields);
    let mut conn = state.db.read().await?;
    let team = team(&mut conn, me.business_id()).await?;
    let defaults = db::defaults::of(&mut conn, me.business_id()).await?;
    let ids: Vec<i64> = team.iter().map(|(id, _)| *id).collect();
    let policy = match escalation::check(&typed, &ids) {
        Ok(policy) => policy,
        Err(error) => {
            let saved = db::escalations::policy(&mut conn, me.business_id())
                .await?
                .map_or_else(Policy::suggested, |s| s.policy);
            drop(conn);
            let mut e = EscalationView::new(&me, &saved, &typed, &team, &defaults);
            let status = format!("Escalation not saved: {}", error.message);
            e.error = Some(error);
            let fragment = EscalationResponse { e: e.clone(), oob: Oob::status(status.clone()) };
            let code = StatusCode::UNPROCESSABLE_ENTITY;
            return answer(&req, &state, &me, code, async { Ok(fragment) }, Some(status), |page| page.escalation = e)
                .await;
        }
    };
    drop(conn);
    let (business, actor) = (me.business_id().to_owned(), me.user.id);
    let names = team.clone();
    let to_save = policy.clone();
    let changed = state
        .db
        .write(move |w| {
            Box::pin(async move {
                let old = db::escalations::policy(w, &business).await?.map(|s| s.policy);
                if old.as_ref() == Some(&to_save) {
                    return Ok(false);
                }
                let now = unix_now();
                db::escalations::save(w, &business, &to_save, now).await?;
                let name_of =
                    |id: i64| names.iter().find(|(u, _)| *u == id).map(|(_, n)| n.clone()).unwrap_or_default();
                let change = Change::new("escalation.policy", None, Some(to_save.sentence(name_of)));
                db::audit::record(w, &business, Some(actor), None, &[change], now).await?;
                Ok(true)
            })
        })
        .await?;
    tracing::info!(changed, "escalation policy saved");
    if !is_htmx(&req) {
        return Ok(see_other("/settings/notifications?saved=escalation#escalation"));
    }
    let status = if changed { "Escalation saved." } else { "No changes to save." };
    let mut conn = state.db.read().await?;
    let oob = Oob::saved(&mut conn, me.business_id(), status).await?;
    let e = EscalationView::new(&me, &policy, &typed_of(&policy), &team, &defaults);
    render(StatusCode::OK, &EscalationResponse { e, oob })
}
