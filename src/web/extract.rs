//! Typed extractors: who is signed in, and forms whose CSRF token and origin were checked.
use std::future::Future;
use std::pin::Pin;

use actix_session::{Session, SessionExt};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::AppError;
use crate::db;
use crate::db::users::User;
use crate::domain::Region;
use crate::tokens;

pub const CSRF_KEY: &str = "csrf";
const FORM_LIMIT: usize = 64 * 1024;

pub fn is_htmx(req: &HttpRequest) -> bool {
    req.headers().get("HX-Request").is_some_and(|v| v == "true")
}

/// The CSRF token of this session, creating one for a new visitor.
pub fn csrf_token(session: &Session) -> Result<String, AppError> {
    if let Ok(Some(token)) = session.get::<String>(CSRF_KEY) {
        return Ok(token);
    }
    let token = tokens::random_token();
    session.insert(CSRF_KEY, &token).map_err(|e| AppError::Unexpected(anyhow::anyhow!("{e}")))?;
    Ok(token)
}

/// Signs `user_id` in on this session: a new session id (so a fixated one is worthless), and a
/// new CSRF token.
pub fn sign_in(session: &Session, user_id: i64) -> Result<(), AppError> {
    session.renew();
    session
        .insert(db::sessions::USER_ID_KEY, user_id)
        .and_then(|_| session.insert(CSRF_KEY, tokens::random_token()))
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("could not store the session: {e}")))
}

/// The signed-in person, loaded fresh on every request so a removed user is out at once.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub business_name: String,
    /// The business's country: how its people write phone numbers.
    pub region: Region,
    pub csrf_token: String,
    /// Unread in-app notifications, for the header bell.
    pub unread: i64,
}

impl CurrentUser {
    pub fn business_id(&self) -> &str {
        &self.user.business_id
    }

    pub fn manages_business(&self) -> bool {
        self.user.role.manages_business()
    }

    /// Refuses members with the given reason.
    pub fn require_manager(&self, what: &str) -> Result<(), AppError> {
        if self.manages_business() {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "Only owners and admins can {what}. Ask an owner or admin to do it for you."
            )))
        }
    }
}

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let signed_out = AppError::SignInRequired { htmx: is_htmx(&req) };
            let session = req.get_session();
            let state = req.app_data::<web::Data<AppState>>().expect("AppState is registered");
            let Ok(Some(user_id)) = session.get::<i64>(db::sessions::USER_ID_KEY) else {
                return Err(signed_out);
            };
            let found = db::users::get_signed_in(&mut state.db.read().await?, user_id).await?;
            let Some(db::users::SignedIn { user, business_name, region, unread }) = found else {
                session.purge();
                return Err(signed_out);
            };
            let csrf_token = csrf_token(&session)?;
            Ok(Self { user, business_name, region, csrf_token, unread })
        })
    }
}

/// A url-encoded form from a page of ours: the request came from our origin and carries this
/// session's CSRF token (form field `csrf_token` or header `X-CSRF-Token`).
pub struct CsrfForm<T>(pub T);

fn forbidden(message: &str) -> AppError {
    AppError::Forbidden(format!("{message} Reload the page and try again."))
}

fn check_origin(req: &HttpRequest) -> Result<(), AppError> {
    let headers = req.headers();
    if headers.get("Sec-Fetch-Site").is_some_and(|v| v == "cross-site") {
        return Err(forbidden("This request came from another website, so it was refused."));
    }
    if let Some(origin) = headers.get("Origin").and_then(|v| v.to_str().ok()) {
        let host = req.connection_info().host().to_owned();
        let origin_host = url::Url::parse(origin).ok().and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_owned(),
            })
        });
        if origin_host.as_deref() != Some(host.as_str()) {
            return Err(forbidden("This request came from another website, so it was refused."));
        }
    }
    Ok(())
}

/// Reads a url-encoded form body from our own origin: its fields, and the body to parse again
/// into the handler's type.
async fn read_form(
    req: &HttpRequest,
    body: impl Future<Output = Result<web::Bytes, actix_web::Error>>,
) -> Result<(Vec<(String, String)>, web::Bytes), AppError> {
    check_origin(req)?;
    let is_form = req
        .headers()
        .get("Content-Type")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(AppError::BadRequest("Send this form as application/x-www-form-urlencoded.".into()));
    }
    let body = body.await.map_err(|_| AppError::BadRequest("The form could not be read.".into()))?;
    if body.len() > FORM_LIMIT {
        return Err(AppError::BadRequest("The form is too large.".into()));
    }
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(&body).map_err(|_| AppError::BadRequest("The form could not be read.".into()))?;
    Ok((pairs, body))
}

fn parse_form<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    serde_urlencoded::from_bytes(body).map_err(|e| AppError::BadRequest(format!("The form could not be read ({e}).")))
}

fn check_token(sent: Option<String>, expected: Option<String>) -> Result<(), AppError> {
    match (sent, expected) {
        (None, _) => Err(forbidden("The form's security token is missing.")),
        (Some(sent), Some(expected)) if tokens::same(&sent, &expected) => Ok(()),
        _ => Err(forbidden("The form's security token is out of date or wrong.")),
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let (pairs, body) = read_form(&req, body).await?;
            let sent = req
                .headers()
                .get("X-CSRF-Token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .or_else(|| pairs.iter().find(|(k, _)| k == "csrf_token").map(|(_, v)| v.clone()));
            check_token(sent, req.get_session().get::<String>(CSRF_KEY).ok().flatten())?;
            Ok(Self(parse_form(&body)?))
        })
    }
}

/// The cookie behind the security token of the forms shown before sign-in.
const FORM_COOKIE: &str = "kai_form";

/// The security token for a form shown before sign-in (login, invitation), and the cookie to set
/// when the visitor has none yet. The token is a MAC of a random value kept in that cookie, so
/// nothing is stored for a visitor who never signs in.
pub fn public_csrf(req: &HttpRequest, key: &[u8]) -> (String, Option<Cookie<'static>>) {
    if let Some(cookie) = req.cookie(FORM_COOKIE).filter(|c| c.value().len() == 43) {
        return (tokens::form_token(key, cookie.value()), None);
    }
    let nonce = tokens::random_token();
    let token = tokens::form_token(key, &nonce);
    let cookie = Cookie::build(FORM_COOKIE, nonce)
        .path("/")
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::hours(12))
        .finish();
    (token, Some(cookie))
}

/// A url-encoded form shown before sign-in: from our origin, with the token of `public_csrf`.
pub struct PublicForm<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for PublicForm<T> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let (pairs, body) = read_form(&req, body).await?;
            let state = req.app_data::<web::Data<AppState>>().expect("AppState is registered");
            let sent = pairs.iter().find(|(k, _)| k == "csrf_token").map(|(_, v)| v.clone());
            let expected = req.cookie(FORM_COOKIE).map(|c| tokens::form_token(&state.csrf_key, c.value()));
            check_token(sent, expected)?;
            Ok(Self(parse_form(&body)?))
        })
    }
}

/// A form with nothing in it but the CSRF token.
#[derive(serde::Deserialize)]
pub struct NoFields {}

/// A form read as name/value pairs, for pages whose fields are sets of checkboxes.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(transparent)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value sent under `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A checkbox is checked when its name was sent (with any value but "off").
    pub fn checked(&self, name: &str) -> bool {
        self.0.iter().any(|(k, v)| k == name && v != "off")
    }
}
