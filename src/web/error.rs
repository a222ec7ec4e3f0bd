use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

/// What a request can fail with, mapped once to a status and a page. The page carries htmx
/// headers so that, for an htmx request, only its message lands in the page's alert area.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("Please sign in to continue.")]
    SignInRequired { htmx: bool },
    #[error("{0}")]
    Forbidden(String),
    #[error("We could not find that. It may have been removed, or it belongs to another business.")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    /// Too many of something in a short time; `retry_after` is in whole seconds.
    #[error("{message}")]
    TooMany { message: String, retry_after: u64 },
    /// The server is saturated (sign-ins queued, every page connection in use).
    #[error("We are handling a lot of requests right now. Please try again in a few seconds.")]
    Busy,
    #[error("This page took too long to prepare, so we stopped it. Please try again in a moment.")]
    TooSlow,
    #[error("Something went wrong on our side and nothing was changed. Please try again in a moment.")]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        if crate::db::is_interrupted(&e) {
            tracing::warn!("a page's queries ran past their time limit and were stopped");
            Self::TooSlow
        } else if matches!(e, sqlx::Error::PoolTimedOut) {
            Self::Busy
        } else {
            Self::Unexpected(e.into())
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: String,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::SignInRequired { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Busy | Self::TooSlow => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::SignInRequired { htmx: true } => {
                return HttpResponse::Unauthorized().insert_header(("HX-Redirect", "/login")).finish();
            }
            Self::SignInRequired { htmx: false } => {
                return HttpResponse::SeeOther().insert_header(("Location", "/login")).finish();
            }
            Self::Unexpected(e) => tracing::error!(error = ?e, "request failed"),
            _ => {}
        }
        let status = self.status_code();
        let title = match self {
            Self::Forbidden(_) => "Not allowed",
            Self::NotFound => "Not found",
            Self::BadRequest(_) => "That did not work",
            Self::TooMany { .. } => "Slow down",
            Self::Busy | Self::TooSlow => "Busy",
            _ => "Something went wrong",
        };
        let body = ErrorPage { title, message: self.to_string() }.render().unwrap_or_else(|_| self.to_string());
        let mut response = HttpResponse::build(status);
        response
            .content_type("text/html; charset=utf-8")
            .insert_header(("HX-Retarget", "#flash"))
            .insert_header(("HX-Reswap", "innerHTML"))
            .insert_header(("HX-Reselect", "#error-message"));
        match self {
            Self::TooMany { retry_after, .. } => {
                response.insert_header(("Retry-After", retry_after.to_string()));
            }
            Self::Busy | Self::TooSlow => {
                response.insert_header(("Retry-After", "2"));
            }
            _ => {}
        }
        response.body(body)
    }
}
