//! Leads: what Kai captured, newest first, with how many alerts each caused.
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
    page: i64,
    pages: i64,
    total: i64,
    status: Option<String>,
}

#[derive(Deserialize)]
struct Query {
    page: Option<i64>,
}

#[get("/leads")]
async fn leads(
    me: CurrentUser,
    state: web::Data<AppState>,
    query: web::Query<Query>,
) -> Result<HttpResponse, AppError> {
    let total = db::leads::count(&state.pool, me.business_id()).await?;
    let pages = ((total + PER_PAGE - 1) / PER_PAGE).max(1);
    let page = query.page.unwrap_or(1).clamp(1, pages);
    let rows = db::leads::page(&state.pool, me.business_id(), PER_PAGE, (page - 1) * PER_PAGE).await?;
    let leads = rows
        .into_iter()
        .map(|l| LeadView {
            name: l.name.unwrap_or_else(|| "Unknown caller".into()),
            phone: l.phone.or(l.email).unwrap_or_default(),
            score: l.score.map(|s| s.to_string()).unwrap_or_else(|| "\u{2013}".into()),
            summary: l.summary.unwrap_or_default(),
            when: format_utc(l.updated_at),
            alerts: l.alerts_sent,
        })
        .collect();
    render(StatusCode::OK, &LeadsPage { shell: Shell::new(&me, "leads"), leads, page, pages, total, status: None })
}
