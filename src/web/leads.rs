//! Leads: what Kai captured, newest first, with how many alerts each caused. Pages go by
//! position (`?older=` / `?newer=` a lead), so the thousandth page costs what the first does.
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, web};
use askama::Template;
use serde::Deserialize;

use super::error::AppError;
use super::extract::CurrentUser;
use super::shell::Shell;
use super::{AppState, render};
use crate::clock::format_utc;
use crate::db;
use crate::db::leads::{Cursor, Page};
use crate::domain::phone::local_format;

const PER_PAGE: i64 = 25;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(leads);
}

pub struct LeadView {
    pub name: String,
    pub phone: String,
    pub score: String,
    pub summary: String,
    pub when: String,
    pub alerts: i64,
}

#[derive(Template)]
#[template(path = "leads.html")]
struct LeadsPage {
    shell: Shell,
    leads: Vec<LeadView>,
    total: i64,
    /// Links to the neighbouring pages, when there are any.
    newer: Option<String>,
    older: Option<String>,
    status: Option<String>,
}

#[derive(Deserialize)]
struct Query {
    older: Option<String>,
    newer: Option<String>,
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
    let (mut rows, total) = {
        let mut conn = state.db.read().await?;
        // One more than a page tells whether there is another page that way.
        let rows = db::leads::page(&mut conn, me.business_id(), &page, PER_PAGE + 1).await?;
        (rows, db::businesses::leads_count(&mut conn, me.business_id()).await?)
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
    let newer = first.filter(|_| has_newer).map(|c| format!("/leads?newer={}", encode(&c)));
    let older = last.filter(|_| has_older).map(|c| format!("/leads?older={}", encode(&c)));
    let leads = rows
        .into_iter()
        .map(|l| LeadView {
            name: l.name.unwrap_or_else(|| "Unknown caller".into()),
            phone: l.phone.map(|p| local_format(&p, me.region)).or(l.email).unwrap_or_default(),
            score: l.score.map(|s| s.to_string()).unwrap_or_else(|| "\u{2013}".into()),
            summary: l.summary.unwrap_or_default(),
            when: format_utc(l.updated_at),
            alerts: l.alerts_sent,
        })
        .collect();
    render(StatusCode::OK, &LeadsPage { shell: Shell::new(&me, "leads"), leads, total, newer, older, status: None })
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
