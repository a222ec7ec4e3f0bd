//! "I'll call them": the claim link in a lead alert opens the lead and one button. Opening the
//! page changes nothing (mail scanners follow links); the button is a POST. The first claim wins;
//! whoever comes later sees who took it, and the number anyway. The link itself is the
//! credential (signed, expiring, for one person and one alert), so no sign-in is needed.
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;

use super::error::AppError;
use super::shell::PublicAssets;
use super::{AppState, render};
use crate::clock::unix_now;
use crate::db;
use crate::db::leads::LeadRow;
use crate::domain::Region;
use crate::domain::claim::{self, LinkProblem};
use crate::domain::phone::local_format;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(open).service(take);
}

/// The lead as the claim page shows it.
pub struct LeadCard {
    pub name: String,
    pub phone: Option<String>,
    /// `tel:` form of the number.
    pub dial: Option<String>,
    pub score: String,
    pub summary: String,
}

impl LeadCard {
    fn new(lead: &LeadRow, region: Region) -> Self {
        Self {
            name: lead.name.clone().unwrap_or_else(|| "Unknown caller".into()),
            phone: lead.phone.as_deref().map(|p| local_format(p, region)),
            dial: lead.phone.clone(),
            score: lead.score.map(|s| s.to_string()).unwrap_or_else(|| "no score".into()),
            summary: lead.summary.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "claim.html")]
struct ClaimPage {
    assets: PublicAssets,
    token: String,
    business: String,
    lead: Option<LeadCard>,
    /// Who has it, in words, once someone claimed it.
    taken: Option<String>,
    /// This person just claimed it.
    yours: bool,
    /// Why the link cannot be used, when it cannot.
    problem: Option<String>,
}

/// A valid link, resolved: the lead, whose it is to claim, and the business.
struct Resolved {
    business_id: String,
    business: String,
    region: Region,
    user_id: i64,
    lead: LeadRow,
}

fn problem_page(status: StatusCode, message: &str) -> Result<HttpResponse, AppError> {
    let page = ClaimPage {
        assets: PublicAssets::new(),
        token: String::new(),
        business: String::new(),
        lead: None,
        taken: None,
        yours: false,
        problem: Some(message.to_owned()),
    };
    render(status, &page)
}

/// Checks the link and finds what it names; `Err` is the page to answer instead.
async fn resolve(state: &AppState, token: &str) -> Result<Result<Resolved, HttpResponse>, AppError> {
    let delivery_id = match claim::verify(&state.claim_key, token, unix_now()) {
        Ok(id) => id,
        Err(LinkProblem::Invalid) => {
            return problem_page(
                StatusCode::BAD_REQUEST,
                "This claim link is not valid (it may have been cut short). Nothing was changed. Open the lead on the Leads page instead.",
            )
            .map(Err);
        }
        Err(LinkProblem::Expired) => {
            return problem_page(
                StatusCode::GONE,
                "This claim link has expired (they work for 7 days). Nothing was changed. Open the lead on the Leads page instead.",
            )
            .map(Err);
        }
    };
    let mut conn = state.db.read().await?;
    let target = db::deliveries::claim_target(&mut conn, delivery_id).await?;
    let not_found =
        || problem_page(StatusCode::NOT_FOUND, "This alert is not about a lead anyone can claim. Nothing was changed.");
    let Some(target) = target else { return not_found().map(Err) };
    let (Some(user_id), Some(lead_id)) = (target.user_id, target.lead_id) else { return not_found().map(Err) };
    let Some(business) = db::businesses::get(&mut conn, &target.business_id).await? else {
        return not_found().map(Err);
    };
    if db::users::get_active(&mut conn, &business.id, user_id).await?.is_none() {
        return problem_page(
            StatusCode::FORBIDDEN,
            &format!(
                "You are no longer on the {} team, so this lead cannot be claimed with your link. Nothing was changed.",
                business.name
            ),
        )
        .map(Err);
    }
    let Some(lead) = db::leads::get(&mut conn, &business.id, &lead_id).await? else { return not_found().map(Err) };
    Ok(Ok(Resolved {
        business_id: business.id.clone(),
        region: business.region(),
        business: business.name,
        user_id,
        lead,
    }))
}

fn page(token: String, r: &Resolved, yours: bool) -> ClaimPage {
    let taken = match (&r.lead.claimed_by_name, r.lead.claimed_at) {
        (Some(name), Some(at)) => {
            let who = if r.lead.claimed_by == Some(r.user_id) { "You" } else { name.as_str() };
            Some(claim::taken_by(who, at, r.lead.first_seen_at))
        }
        _ => None,
    };
    ClaimPage {
        assets: PublicAssets::new(),
        token,
        business: r.business.clone(),
        lead: Some(LeadCard::new(&r.lead, r.region)),
        taken,
        yours,
        problem: None,
    }
}

#[get("/c/{token}")]
async fn open(state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    match resolve(&state, &token).await? {
        Ok(r) => render(StatusCode::OK, &page(token, &r, false)),
        Err(answer) => Ok(answer),
    }
}

#[post("/c/{token}")]
async fn take(state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    let r = match resolve(&state, &token).await? {
        Ok(r) => r,
        Err(answer) => return Ok(answer),
    };
    let (business, lead_id, user_id) = (r.business_id.clone(), r.lead.lead_id.clone(), r.user_id);
    let won = state
        .db
        .write(move |w| Box::pin(async move { db::leads::claim(w, &business, &lead_id, user_id, unix_now()).await }))
        .await?;
    // Read it again: who has it now (this person, or whoever was first).
    let mut conn = state.db.read().await?;
    let lead = db::leads::get(&mut conn, &r.business_id, &r.lead.lead_id).await?.unwrap_or(r.lead.clone());
    let r = Resolved { lead, ..r };
    let status = if won || r.lead.claimed_by == Some(r.user_id) { StatusCode::OK } else { StatusCode::CONFLICT };
    render(status, &page(token, &r, won))
}
