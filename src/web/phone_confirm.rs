//! Confirming a phone by code, for the pages that edit one: a person's own (Account), a
//! teammate's added on the Team page (the code goes to them), the business's notification phone
//! (Notifications). A number takes alerts only once the code texted to it is typed back.
use super::AppState;
use super::error::AppError;
use crate::clock::{format_utc, unix_now};
use crate::db;
use crate::db::Link;
use crate::domain::phone::local_format;
use crate::domain::phone_code::{self, Check, Pending};
use crate::domain::{PhoneNumber, Region};
use crate::tokens;

/// Whose phone: a person's id, or 0 for the business's notification phone.
pub type Whose = i64;
pub const BUSINESS_PHONE: Whose = 0;

/// What the page shows about a phone on file.
pub struct PhoneCheck {
    /// The number, as the business's region writes it.
    pub phone: String,
    pub confirmed: bool,
    /// It replied STOP: no texts until it replies START.
    pub opted_out: bool,
    /// "A code was sent at 13:02 UTC; it works until 13:12 UTC."
    pub pending: Option<String>,
    /// The answer to the last thing done (a code sent, a wrong code), and whether it went well.
    pub message: Option<(String, bool)>,
    /// The form field's error (not 6 digits).
    pub code_error: Option<String>,
}

/// What to say about the phone after something was done: the answer, and the code field's error.
#[derive(Default)]
pub struct Tell {
    pub message: Option<(String, bool)>,
    pub code_error: Option<String>,
}

impl Tell {
    pub fn said(message: (String, bool)) -> Self {
        Self { message: Some(message), code_error: None }
    }

    /// The answer to a typed code that did not confirm the phone.
    pub fn not_confirmed(result: Result<Check, String>) -> Self {
        match result {
            Ok(check) => Self::said((check.message(), false)),
            Err(field) => Self { message: None, code_error: Some(field) },
        }
    }

    fn apply(self, check: &mut PhoneCheck) {
        check.message = self.message;
        check.code_error = self.code_error;
    }
}

fn subject(whose: Whose) -> String {
    if whose == BUSINESS_PHONE { "business".into() } else { format!("user:{whose}") }
}

fn code_hash(state: &AppState, whose: Whose, phone: &str, code: &str) -> String {
    let key = tokens::derive_key(&state.claim_key, "phone codes");
    tokens::phone_code_hash(&key, &subject(whose), phone, code)
}

/// The state of a phone on file, for the page, with `tell` said about it; `None` when there is
/// no phone.
pub async fn check_view(
    conn: &mut impl Link,
    business_id: &str,
    whose: Whose,
    region: Region,
    tell: Tell,
) -> Result<Option<PhoneCheck>, AppError> {
    let Some((phone, confirmed)) = db::phone_codes::state(conn, business_id, whose).await? else {
        return Ok(None);
    };
    let opted_out = db::sms::is_opted_out(conn, &phone).await?;
    let pending = match db::phone_codes::pending(conn, business_id, whose).await? {
        Some(p) if !confirmed && p.phone == phone && p.expires_at > unix_now() && p.tries < phone_code::MAX_TRIES => {
            Some(format!("A code was sent at {}; it works until {}.", format_utc(p.sent_at), format_utc(p.expires_at)))
        }
        _ => None,
    };
    let mut check = PhoneCheck {
        phone: local_format(&phone, region),
        confirmed,
        opted_out,
        pending,
        message: None,
        code_error: None,
    };
    tell.apply(&mut check);
    Ok(Some(check))
}

/// What became of a request for a code.
pub enum CodeSent {
    Texted,
    /// No SMS provider here: written to the outbox file.
    Written(String),
    /// Too soon after the last code; seconds to wait.
    Wait(i64),
    Failed(String),
}

impl CodeSent {
    /// In words, for the number as written locally; `then` says where the code is typed.
    pub fn words(&self, local: &str, then: &str) -> (String, bool) {
        match self {
            Self::Texted => (format!("We texted a code to {local}. {then}"), true),
            Self::Written(file) => (
                format!(
                    "No SMS provider is set up, so the code for {local} was written to {file} instead of texted. {then}"
                ),
                true,
            ),
            Self::Wait(secs) => (
                format!(
                    "A code went out only a short while ago. Wait {} before asking for another code for {local}.",
                    phone_code::wait_words(*secs)
                ),
                false,
            ),
            Self::Failed(e) => (
                format!("The code could not be texted to {local}: {e}. Check the number, then send a new code."),
                false,
            ),
        }
    }
}

/// Texts a new code to `phone` (the one on file for `whose`), unless one went moments ago.
pub async fn send_code(
    state: &AppState,
    business_id: &str,
    business_name: &str,
    whose: Whose,
    phone: &PhoneNumber,
) -> Result<CodeSent, AppError> {
    let now = unix_now();
    let code = tokens::phone_code();
    let (number, hash) = (phone.as_str().to_owned(), code_hash(state, whose, phone.as_str(), &code));
    let business = business_id.to_owned();
    let allowed = state
        .db
        .write(move |w| {
            Box::pin(async move {
                let pending = db::phone_codes::pending(w, &business, whose).await?;
                let slot = match phone_code::may_send(pending.as_ref(), &number, now) {
                    Ok(slot) => slot,
                    Err(wait) => return Ok(Err(wait)),
                };
                let new = Pending {
                    phone: number,
                    code_hash: hash,
                    expires_at: now + phone_code::LIFETIME_SECS,
                    tries: 0,
                    sends: slot.sends,
                    window_start: slot.window_start,
                    sent_at: now,
                };
                db::phone_codes::store(w, &business, whose, &new).await?;
                Ok(Ok(()))
            })
        })
        .await?;
    if let Err(wait) = allowed {
        return Ok(CodeSent::Wait(wait));
    }
    Ok(match state.texter.send(phone.as_str(), &phone_code::text(&code, business_name), true).await {
        Ok(_) if state.config.sms_api.is_none() => {
            CodeSent::Written(state.config.sms_outbox_file().display().to_string())
        }
        Ok(_) => CodeSent::Texted,
        Err(e) => {
            tracing::warn!(error = %e, "a phone code was not sent");
            CodeSent::Failed(e.to_string())
        }
    })
}

/// Where a person types the code on the page that sent it.
pub const ENTER_BELOW: &str = "Enter it below within 10 minutes.";

/// Checks a typed code for the phone on file; `Err` is the field's error.
pub async fn enter_code(
    state: &AppState,
    business_id: &str,
    whose: Whose,
    typed: &str,
) -> Result<Result<Check, String>, AppError> {
    let typed = match phone_code::parse_typed(typed) {
        Ok(code) => code,
        Err(e) => return Ok(Err(e)),
    };
    let now = unix_now();
    let mut conn = state.db.read().await?;
    let Some((phone, confirmed)) = db::phone_codes::state(&mut conn, business_id, whose).await? else {
        return Ok(Err("There is no phone number to confirm.".into()));
    };
    drop(conn);
    if confirmed {
        return Ok(Ok(Check::Confirmed));
    }
    let hash = code_hash(state, whose, &phone, &typed);
    let business = business_id.to_owned();
    let check = state
        .db
        .write(move |w| {
            Box::pin(async move {
                // Read and counted inside the write turn: two guesses at once both count.
                let pending = db::phone_codes::pending(w, &business, whose).await?;
                let matches = pending.as_ref().is_some_and(|p| tokens::same(&p.code_hash, &hash));
                let check = phone_code::check(pending.as_ref(), &phone, matches, now);
                if check == Check::Confirmed && !db::phone_codes::confirm(w, &business, whose, &phone, now).await? {
                    return Ok(Check::NoCode);
                }
                if check.counts() {
                    db::phone_codes::count_try(w, &business, whose).await?;
                }
                Ok(check)
            })
        })
        .await?;
    Ok(Ok(check))
}
