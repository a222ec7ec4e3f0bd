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
    #[error("Too many sign-in attempts. Wait {0} seconds, then try again.")]
    TooManyAttempts(u64),
    #[error("Something went wrong on our side and nothing was changed. Please try again in a moment.")]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        Self::Unexpected(e.into())
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
            Self::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
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
            Self::TooManyAttempts(_) => "Slow down",
            _ => "Something went wrong",
        };
        let body = ErrorPage { title, message: self.to_string() }.render().unwrap_or_else(|_| self.to_string());
        let mut response = HttpResponse::build(status);
        response
            .content_type("text/html; charset=utf-8")
            .insert_header(("HX-Retarget", "#flash"))
            .insert_header(("HX-Reswap", "innerHTML"))
            .insert_header(("HX-Reselect", "#error-message"));
        if let Self::TooManyAttempts(secs) = self {
            response.insert_header(("Retry-After", secs.to_string()));
        }
        response.body(body)
    }
}
