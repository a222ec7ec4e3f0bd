//! `POST /webhooks/kai/{business_id}`: Standard Webhooks verification, then durable storage
//! before the 2xx. Errors are JSON `{"error": "...", "field": "..."}`.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, post, web};
use futures_util::StreamExt;
use serde_json::json;

use super::AppState;
use crate::clock::{unix_now, unix_now_ms};
use crate::db::events::Stored;
use crate::db::writer::NewEvent;
use crate::db::{self, Db};
use crate::domain::{Region, events, webhook};

pub const MAX_BODY: usize = 64 * 1024;
const SECRET_TTL: Duration = Duration::from_secs(5);

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(receive);
}

/// When a business's keys were read, its region, and its current signing keys.
type CachedKeys = (Instant, Region, Vec<Vec<u8>>);

/// Each business's signing keys, kept for a few seconds so a burst of webhooks does not read
/// them from the database every time. Rotation clears the entry at once.
#[derive(Default)]
pub struct SecretCache {
    entries: Mutex<HashMap<String, CachedKeys>>,
}

impl SecretCache {
    async fn get(&self, db: &Db, business_id: &str) -> Result<Option<(Region, Vec<Vec<u8>>)>, sqlx::Error> {
        if let Some((at, region, keys)) = self.entries.lock().unwrap().get(business_id)
            && at.elapsed() < SECRET_TTL
        {
            return Ok(Some((*region, keys.clone())));
        }
        let mut conn = db.system().await?;
        let Some((region, secrets)) = db::businesses::webhook_secrets(&mut conn, business_id, unix_now()).await? else {
            return Ok(None);
        };
        let keys: Vec<Vec<u8>> = secrets.iter().filter_map(|s| webhook::secret_key(s)).collect();
        let mut entries = self.entries.lock().unwrap();
        if entries.len() > 10_000 {
            entries.clear();
        }
        entries.insert(business_id.to_owned(), (Instant::now(), region, keys.clone()));
        Ok(Some((region, keys)))
    }

    pub fn forget(&self, business_id: &str) {
        self.entries.lock().unwrap().remove(business_id);
    }
}

fn problem(status: StatusCode, error: &str, field: Option<&str>) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": error, "field": field }))
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

#[post("/webhooks/kai/{business_id}")]
async fn receive(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let response = take(req, path.into_inner(), payload, &state).await;
    state.metrics.webhook_request(response.status().as_u16());
    response
}

async fn take(req: HttpRequest, business_id: String, mut payload: web::Payload, state: &AppState) -> HttpResponse {
    if state.stopping.load(std::sync::atomic::Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(json!({ "error": "this server is stopping; send the event again shortly", "field": null }));
    }
    let (region, keys) = match state.secrets.get(&state.db, &business_id).await {
        Ok(Some(found)) => found,
        Ok(None) => return problem(StatusCode::NOT_FOUND, "no business has this id", Some("business_id")),
        Err(e) => {
            tracing::warn!(error = %e, "webhook secret lookup failed");
            return HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", "1"))
                .json(json!({ "error": "storage is busy; try again shortly", "field": null }));
        }
    };
    let is_json = header(&req, "content-type")
        .is_some_and(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the event as Content-Type: application/json",
            Some("content-type"),
        );
    }
    let too_large = || problem(StatusCode::PAYLOAD_TOO_LARGE, "the body is larger than 64 KiB", Some("body"));
    if header(&req, "content-length").and_then(|v| v.parse::<usize>().ok()).is_some_and(|n| n > MAX_BODY) {
        return too_large();
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else {
            return problem(StatusCode::BAD_REQUEST, "the body could not be read", Some("body"));
        };
        if body.len() + chunk.len() > MAX_BODY {
            return too_large();
        }
        body.extend_from_slice(&chunk);
    }

    let id = header(&req, "webhook-id");
    if let Err(e) = webhook::verify(
        &keys,
        id,
        header(&req, "webhook-timestamp"),
        header(&req, "webhook-signature"),
        &body,
        unix_now(),
    ) {
        return problem(StatusCode::UNAUTHORIZED, e.message, Some(e.field));
    }
    let event = match events::parse(&body, region) {
        Ok(event) => event,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &e.message, Some(&e.field)),
    };
    let type_name = event.event_type().map_or("unknown", |t| t.name());
    let new = NewEvent::new(business_id, id.unwrap_or_default().to_owned(), event, unix_now_ms());
    match state.db.ingest(new).await {
        Ok(Stored::New(id)) => {
            state.metrics.event(type_name);
            HttpResponse::Accepted().json(json!({ "id": id }))
        }
        Ok(Stored::Duplicate(id)) => HttpResponse::Ok().json(json!({ "id": id })),
        Err(e) => HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(json!({ "error": e.to_string(), "field": null })),
    }
}
