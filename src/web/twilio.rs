//! Twilio's webhooks, each signed with `X-Twilio-Signature` over the URL it called (ours, under
//! `KAI_PUBLIC_URL`) and its form parameters; anything else is refused before it is read.
//! - `POST /webhooks/twilio/status`: where each text is (queued, sent, delivered, undelivered,
//!   failed).
//! - `POST /webhooks/twilio/inbound`: a text sent to our number: STOP and START, HELP, "1" to
//!   claim the lead of the last alert; anything else is kept for the SMS page. Answered in TwiML.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, post, web};
use futures_util::StreamExt;

use super::AppState;
use crate::clock::unix_now_ms;
use crate::db;
use crate::db::sms::LastAlert;
use crate::domain::claim;
use crate::domain::sms_inbound::{self, Asked, INBOUND_PATH};
use crate::domain::sms_status::{self, CarrierStatus, STATUS_CALLBACK_PATH};
use crate::domain::text::to_gsm7;

/// A status callback is a few hundred bytes.
const MAX_BODY: usize = 16 * 1024;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(status_callback).service(inbound);
}

fn answer(status: StatusCode, text: &str) -> HttpResponse {
    HttpResponse::build(status).content_type("text/plain; charset=utf-8").body(text.to_owned())
}

/// The form parameters of a request Twilio signed for `path` (under `KAI_PUBLIC_URL`), or the
/// answer to give instead: no SMS provider here, a body too large or not a form, a signature
/// missing or wrong.
async fn signed_form(
    req: &HttpRequest,
    mut payload: web::Payload,
    state: &AppState,
    path: &str,
) -> Result<Vec<(String, String)>, HttpResponse> {
    let Some(api) = &state.config.sms_api else {
        return Err(answer(
            StatusCode::NOT_FOUND,
            "No SMS provider is configured, so Twilio's webhooks are not taken.",
        ));
    };
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else { return Err(answer(StatusCode::BAD_REQUEST, "The body could not be read.")) };
        if body.len() + chunk.len() > MAX_BODY {
            return Err(answer(StatusCode::PAYLOAD_TOO_LARGE, "The body is larger than 16 KiB."));
        }
        body.extend_from_slice(&chunk);
    }
    let Ok(params) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
        return Err(answer(StatusCode::BAD_REQUEST, "The body is not a form (application/x-www-form-urlencoded)."));
    };
    let url = format!("{}{path}", state.config.public_url);
    let signature = req.headers().get("x-twilio-signature").and_then(|v| v.to_str().ok());
    if !sms_status::verify(&api.auth_token, &url, &params, signature) {
        return Err(answer(
            StatusCode::FORBIDDEN,
            "The X-Twilio-Signature header is missing or does not match this request.",
        ));
    }
    Ok(params)
}

fn field<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim())
}

fn busy() -> HttpResponse {
    HttpResponse::ServiceUnavailable().insert_header(("Retry-After", "1")).body("Storage is busy; try again.")
}

#[post("/webhooks/twilio/status")]
async fn status_callback(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> HttpResponse {
    let params = match signed_form(&req, payload, &state, STATUS_CALLBACK_PATH).await {
        Ok(params) => params,
        Err(answer) => return answer,
    };
    let field = |name: &str| field(&params, name);
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
            busy()
        }
    }
}

fn twiml(reply: Option<&str>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/xml; charset=utf-8").body(sms_inbound::twiml(reply))
}

/// Longest text kept (Twilio joins a long text's segments: 1,600 characters at most).
const MAX_TEXT_CHARS: usize = 1600;

/// How long after an alert a "1" still claims its lead: as long as the alert's claim link works.
const CLAIM_BY_REPLY_MS: i64 = claim::LINK_LIFETIME_HOURS * 3600 * 1000;

#[post("/webhooks/twilio/inbound")]
async fn inbound(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> HttpResponse {
    let params = match signed_form(&req, payload, &state, INBOUND_PATH).await {
        Ok(params) => params,
        Err(answer) => return answer,
    };
    let Some(from) = field(&params, "From").filter(|f| !f.is_empty() && f.len() <= 32) else {
        return answer(StatusCode::BAD_REQUEST, "From is missing.");
    };
    let body: String = field(&params, "Body").unwrap_or_default().chars().take(MAX_TEXT_CHARS).collect();
    let sid = field(&params, "MessageSid").filter(|s| !s.is_empty() && s.len() <= 64).map(str::to_owned);
    let (from, now_ms) = (from.to_owned(), unix_now_ms());
    let asked = Asked::of(&body);
    let last = match state.db.read().await {
        Ok(mut conn) => db::sms::last_text_to(&mut conn, &from, now_ms - CLAIM_BY_REPLY_MS).await,
        Err(e) => Err(e),
    };
    let last = match last {
        Ok(last) => last,
        Err(e) => {
            tracing::warn!(error = %e, "an incoming text could not be read against the texts sent");
            return busy();
        }
    };
    let keyword = body.trim().to_ascii_uppercase();
    let done = state
        .db
        .write(move |w| {
            Box::pin(async move {
                let (outcome, reply) = match asked {
                    Asked::Stop => {
                        db::sms::opt_out(w, &from, &keyword, now_ms).await?;
                        (format!("Opted out ({keyword}): no texts go to this number until it replies START."), None)
                    }
                    Asked::Start => {
                        let was = db::sms::opt_in(w, &from).await?;
                        let outcome = if was {
                            "Opted back in (START): texts go to this number again."
                        } else {
                            "START from a number that had not opted out."
                        };
                        (outcome.to_owned(), None)
                    }
                    Asked::Help => {
                        let name = last.as_ref().map(|l| l.business_name.as_str());
                        ("Asked for help; the HELP reply was sent.".to_owned(), Some(sms_inbound::help_reply(name)))
                    }
                    Asked::Claim => claim_by_reply(w, &from, last.as_ref(), now_ms).await?,
                    Asked::Other => ("Kept for the SMS page.".to_owned(), None),
                };
                db::sms::record_inbound(w, &from, &body, &outcome, sid.as_deref(), now_ms).await?;
                Ok(reply)
            })
        })
        .await;
    match done {
        Ok(reply) => twiml(reply.as_deref()),
        Err(e) => {
            tracing::warn!(error = %e, "an incoming text could not be recorded");
            busy()
        }
    }
}

/// "1": claims the lead of the last alert texted to the number, for the person it was texted to.
/// Answers what happened (for the SMS page) and the reply.
async fn claim_by_reply(
    w: &mut db::Write,
    from: &str,
    last: Option<&LastAlert>,
    now_ms: i64,
) -> sqlx::Result<(String, Option<String>)> {
    let Some(last) = last else {
        return Ok((
            "1 from a number no lead alert was texted to in the last 7 days.".into(),
            Some("There is no recent lead alert to claim from this number.".into()),
        ));
    };
    let (Some(lead_id), Some(user_id)) = (last.lead_id.as_deref(), last.user_id) else {
        return Ok((
            "1, but the last text to this number was not a lead alert to a person.".into(),
            Some(
                "The last text to this phone was not a lead you can claim. Use the claim link in a lead alert.".into(),
            ),
        ));
    };
    // The number must still be theirs: a number given up and reused by someone else claims nothing.
    let person = db::users::get_active(w, &last.business_id, user_id).await?;
    if person.as_ref().and_then(|p| p.phone.as_ref()).map(|p| p.as_str()) != Some(from) {
        return Ok((
            "1, but the number is no longer that person's.".into(),
            Some("This phone is no longer on the team, so it cannot claim leads.".into()),
        ));
    }
    let Some(lead) = db::leads::get(w, &last.business_id, lead_id).await? else {
        return Ok(("1, but the lead is gone.".into(), Some("That lead is no longer there.".into())));
    };
    let name = lead.name.clone().unwrap_or_else(|| "the caller".into());
    let won = db::leads::claim(w, &last.business_id, lead_id, user_id, now_ms / 1000).await?;
    let after = db::leads::get(w, &last.business_id, lead_id).await?.unwrap_or(lead);
    let holder = after.claimed_by_name.clone().unwrap_or_else(|| "someone else".into());
    Ok(if won {
        let call = after.phone.as_deref().map(|p| format!(" Call {p}.")).unwrap_or_default();
        (
            format!("Claimed {name} for {holder}."),
            Some(to_gsm7(&format!("{name} is yours: everyone else sees you took it.{call}"))),
        )
    } else if after.claimed_by == Some(user_id) {
        (
            format!("1 again: {name} was already claimed by {holder}."),
            Some(to_gsm7(&format!("{name} is already yours."))),
        )
    } else {
        (
            format!("1, but {holder} had claimed {name} first."),
            Some(to_gsm7(&format!("{holder} already claimed {name}."))),
        )
    })
}
