//! `POST /webhooks/twilio/status`: Twilio's report of where each text is (queued, sent,
//! delivered, undelivered, failed). Signed with `X-Twilio-Signature` over the URL it called (ours,
//! under `KAI_PUBLIC_URL`) and its form parameters; anything else is refused before it is read.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, post, web};
use futures_util::StreamExt;

use super::AppState;
use crate::clock::unix_now_ms;
use crate::db;
use crate::domain::sms_status::{self, CarrierStatus, STATUS_CALLBACK_PATH};

/// A status callback is a few hundred bytes.
const MAX_BODY: usize = 16 * 1024;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(status_callback);
}

fn answer(status: StatusCode, text: &str) -> HttpResponse {
    HttpResponse::build(status).content_type("text/plain; charset=utf-8").body(text.to_owned())
}

#[post("/webhooks/twilio/status")]
async fn status_callback(req: HttpRequest, mut payload: web::Payload, state: web::Data<AppState>) -> HttpResponse {
    let Some(api) = &state.config.sms_api else {
        return answer(StatusCode::NOT_FOUND, "No SMS provider is configured, so no status callbacks are taken.");
    };
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else { return answer(StatusCode::BAD_REQUEST, "The body could not be read.") };
        if body.len() + chunk.len() > MAX_BODY {
            return answer(StatusCode::PAYLOAD_TOO_LARGE, "The body is larger than 16 KiB.");
        }
        body.extend_from_slice(&chunk);
    }
    let Ok(params) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
        return answer(StatusCode::BAD_REQUEST, "The body is not a form (application/x-www-form-urlencoded).");
    };
    let url = format!("{}{STATUS_CALLBACK_PATH}", state.config.public_url);
    let signature = req.headers().get("x-twilio-signature").and_then(|v| v.to_str().ok());
    if !sms_status::verify(&api.auth_token, &url, &params, signature) {
        return answer(
            StatusCode::FORBIDDEN,
            "The X-Twilio-Signature header is missing or does not match this request.",
        );
    }
    let field = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim());
    let Some(sid) = field("MessageSid").filter(|s| !s.is_empty() && s.len() <= 64) else {
        return answer(StatusCode::BAD_REQUEST, "MessageSid is missing.");
    };
    // A state this version does not know (or one not about an outgoing text): Twilio would retry
    // an error, so it is taken and ignored.
    let Some(status) = field("MessageStatus").and_then(CarrierStatus::from_twilio) else {
        return answer(StatusCode::OK, "Ignored: not a state of an outgoing text.");
    };
    let error = field("ErrorCode").and_then(|c| c.parse::<i64>().ok()).filter(|c| *c > 0);
    let (sid, now) = (sid.to_owned(), unix_now_ms());
    let changed = state
        .db
        .write(move |w| {
            Box::pin(async move { db::deliveries::record_carrier_status(w, &sid, status, error, now).await })
        })
        .await;
    match changed {
        Ok(true) => answer(StatusCode::OK, "Recorded."),
        // An unknown message, or a state older than one heard: nothing to change, and nothing for
        // Twilio to retry.
        Ok(false) => answer(StatusCode::OK, "Nothing to change."),
        Err(e) => {
            tracing::warn!(error = %e, "a text's status could not be recorded");
            HttpResponse::ServiceUnavailable().insert_header(("Retry-After", "1")).body("Storage is busy; try again.")
        }
    }
}
