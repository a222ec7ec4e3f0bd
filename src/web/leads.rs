//! Leads: what Kai captured, newest first, with how many alerts each caused. Pages go by
//! position (`?older=` / `?newer=` a lead), so the thousandth page costs what the first does.
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use super::error::AppError;
use super::extract::{CsrfForm, CurrentUser};
use super::shell::Shell;
use super::{AppState, render, see_other};
use crate::clock::{format_utc, unix_now};
use crate::db;
use crate::db::leads::{Cursor, LeadRow, Page};
use crate::domain::claim::LeadState;
use crate::domain::phone::local_format;

const PER_PAGE: i64 = 25;
/// Unclaimed leads are counted up to this many (the count has no running total to read; the
/// heading says "More than 1,000" past it). Counting to 10,000 made the view 3.4× the demo's.
const UNCLAIMED_COUNTED: i64 = 1_000;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(leads).service(claim_lead);
}

fn state_of(l: &LeadRow, now: i64) -> LeadState {
    let claimed = l.claimed_by_name.as_deref().zip(l.claimed_at);
    LeadState::of(claimed, l.first_seen_at, l.escalated_after, now)
}

pub struct LeadView {
    pub name: String,
    pub phone: String,
    pub score: String,
    pub summary: String,
    pub when: String,
    pub alerts: i64,
    pub lead_id: String,
    /// "Not claimed yet", "Escalated: not claimed after 5 min", "Sam Rivera, 2 min after the
    /// call", "Never claimed".
    pub state: String,
    /// "escalated" or "claimed", for the look; empty otherwise.
    pub state_class: &'static str,
    pub can_claim: bool,
}

#[derive(Template)]
#[template(path = "leads.html")]
struct LeadsPage {
    shell: Shell,
    leads: Vec<LeadView>,
    /// "240 leads", "3 leads not claimed".
    heading: String,
    unclaimed: bool,
    /// Links to the neighbouring pages, when there are any.
    newer: Option<String>,
    older: Option<String>,
    status: Option<String>,
    csrf: String,
}

#[derive(Deserialize)]
struct Query {
    older: Option<String>,
    newer: Option<String>,
    /// After a claim: `yours`, or `taken` when someone was first.
    claimed: Option<String>,
    /// `unclaimed`: only the leads nobody has said they would call back.
    show: Option<String>,
}

/// A cursor as it appears in a link: `{updated_at}.{lead id}`, url-encoded.
fn encode(c: &Cursor) -> String {
    serde_urlencoded::to_string([("c", format!("{}.{}", c.updated_at, c.lead_id))]).unwrap_or_default()[2..].to_owned()
}

fn decode(value: &str) -> Result<Cursor, AppError> {
    let bad = || AppError::BadRequest("This page link is not valid. Open Leads again to start from the newest.".into());
    let (at, lead_id) = value.split_once('.').ok_or_else(bad)?;
    let updated_at = at.parse().map_err(|_| bad())?;
    if lead_id.is_empty() || lead_id.len() > 200 {
        return Err(bad());
    }
    Ok(Cursor { updated_at, lead_id: lead_id.to_owned() })
}

#[get("/leads")]
async fn leads(
    me: CurrentUser,
    state: web::Data<AppState>,
    query: web::Query<Query>,
) -> Result<HttpResponse, AppError> {
    let page = match (&query.older, &query.newer) {
        (Some(c), _) => Page::OlderThan(decode(c)?),
        (None, Some(c)) => Page::NewerThan(decode(c)?),
        (None, None) => Page::Newest,
    };
    let unclaimed = match query.show.as_deref() {
        None | Some("" | "all") => false,
        Some("unclaimed") => true,
        Some(_) => return Err(AppError::BadRequest("Show either all leads or the ones not claimed.".into())),
    };
    let (mut rows, total) = {
        let mut conn = state.db.read().await?;
        // One more than a page tells whether there is another page that way.
        let rows = db::leads::page(&mut conn, me.business_id(), &page, unclaimed, PER_PAGE + 1).await?;
        let total = if unclaimed {
            db::leads::unclaimed_count(&mut conn, me.business_id(), UNCLAIMED_COUNTED + 1).await?
        } else {
            db::businesses::leads_count(&mut conn, me.business_id()).await?
        };
        (rows, total)
    };
    let more = rows.len() as i64 > PER_PAGE;
    if more {
        match page {
            Page::NewerThan(_) => drop(rows.remove(0)),
            _ => drop(rows.pop()),
        }
    }
    let (first, last) = (rows.first().map(|r| r.cursor()), rows.last().map(|r| r.cursor()));
    let (has_newer, has_older) = match page {
        Page::Newest => (false, more),
        Page::OlderThan(_) => (true, more),
        Page::NewerThan(_) => (more, true),
    };
    let filter = if unclaimed { "show=unclaimed&" } else { "" };
    let newer = first.filter(|_| has_newer).map(|c| format!("/leads?{filter}newer={}", encode(&c)));
    let older = last.filter(|_| has_older).map(|c| format!("/leads?{filter}older={}", encode(&c)));
    let now = unix_now();
    let leads = rows
        .into_iter()
        .map(|l| {
            let state = state_of(&l, now);
            LeadView {
                name: l.name.unwrap_or_else(|| "Unknown caller".into()),
                phone: l.phone.map(|p| local_format(&p, me.region)).or(l.email).unwrap_or_default(),
                score: l.score.map(|s| s.to_string()).unwrap_or_else(|| "\u{2013}".into()),
                summary: l.summary.unwrap_or_default(),
                when: format_utc(l.updated_at),
                alerts: l.alerts_sent,
                state: state.words(),
                state_class: match state {
                    LeadState::Escalated { .. } => "escalated",
                    LeadState::Claimed(_) => "claimed",
                    LeadState::New | LeadState::NeverClaimed => "",
                },
                can_claim: state.claimable(),
                lead_id: l.lead_id,
            }
        })
        .collect();
    let status = match query.claimed.as_deref() {
        Some("yours") => Some("It\u{2019}s yours: everyone else sees that you took it.".to_owned()),
        Some("taken") => Some("Someone else took that lead first; their name is next to it.".to_owned()),
        _ => None,
    };
    let csrf = me.csrf_token.clone();
    let heading = match (unclaimed, total) {
        (false, 1) => "1 lead".to_owned(),
        (false, n) => format!("{n} leads"),
        (true, n) if n > UNCLAIMED_COUNTED => "More than 1,000 leads not claimed".to_owned(),
        (true, 1) => "1 lead not claimed".to_owned(),
        (true, n) => format!("{n} leads not claimed"),
    };
    let page = LeadsPage { shell: Shell::new(&me, "leads"), leads, heading, unclaimed, newer, older, status, csrf };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
struct ClaimForm {
    lead_id: String,
}

/// "I'll call them" from the Leads page: the first claim wins.
#[post("/leads/claim")]
async fn claim_lead(
    me: CurrentUser,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<ClaimForm>,
) -> Result<HttpResponse, AppError> {
    let (business, user_id) = (me.business_id().to_owned(), me.user.id);
    let lead_id = form.lead_id.trim().to_owned();
    if lead_id.is_empty() || lead_id.len() > 200 {
        return Err(AppError::BadRequest("That lead is not on this page any more. Open Leads again.".into()));
    }
    let exists = db::leads::get(&mut state.db.read().await?, &business, &lead_id).await?.is_some();
    if !exists {
        return Err(AppError::NotFound);
    }
    let won = state
        .db
        .write(move |w| Box::pin(async move { db::leads::claim(w, &business, &lead_id, user_id, unix_now()).await }))
        .await?;
    Ok(see_other(if won { "/leads?claimed=yours" } else { "/leads?claimed=taken" }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_survive_a_link() {
        let c = Cursor { updated_at: 1_795_860_000, lead_id: "L-1 & co.".into() };
        let link = encode(&c);
        assert!(!link.contains(' ') && !link.contains('&'), "{link}");
        let back: String =
            serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("c={link}")).unwrap()[0].1.clone();
        assert_eq!(decode(&back).unwrap(), c);
        assert!(decode("yesterday.L-1").is_err() && decode("123").is_err());
    }
}
