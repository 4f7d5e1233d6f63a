//! Why the console refused a request, as a page that says so (or, without a session, the way to
//! the sign-in form).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::html;

use super::layout;

#[derive(Debug, Clone)]
pub struct Refusal {
    status: StatusCode,
    reason: String,
}

impl Refusal {
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Refusal {
            status,
            reason: reason.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// No session: the browser is sent to the sign-in form.
    pub fn sign_in() -> Self {
        Self::new(StatusCode::SEE_OTHER, "")
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The database did not answer; try again.",
        )
    }

    pub fn read_only() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "This session is read-only: it can look at everything and change nothing.",
        )
    }

    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "The form did not carry this session's CSRF token. Reload the page and try again.",
        )
    }

    pub fn origin(why: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            format!("{why} Changes are accepted only from the console's own pages."),
        )
    }

    pub fn bad_form() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "The form could not be read.")
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("No {what} by that name."))
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        if self.status == StatusCode::SEE_OTHER {
            return (StatusCode::SEE_OTHER, [(header::LOCATION, "/admin/login")]).into_response();
        }
        let body = html! {
            h1 { "Refused" }
            p.refusal { (self.reason) }
            p { a href="/admin" { "Back to the console" } }
        };
        layout::respond(self.status, layout::page("Refused", None, body))
    }
}

impl From<crate::http::problem::ApiError> for Refusal {
    fn from(e: crate::http::problem::ApiError) -> Self {
        let mut reason = e.detail;
        for field in &e.errors {
            if !reason.contains(&field.message) {
                reason.push_str(&format!(" `{}` {}.", field.field, field.message));
            }
        }
        if !reason.ends_with('.') {
            reason.push('.');
        }
        Self::new(e.status, reason)
    }
}

macro_rules! through_problem {
    ($($error:ty),*) => {$(
        impl From<$error> for Refusal {
            fn from(e: $error) -> Self {
                crate::http::problem::ApiError::from(e).into()
            }
        }
    )*};
}

through_problem!(
    crate::store::StoreError,
    crate::jobs::JobError,
    crate::flags::FlagError,
    crate::billing::BillingError,
    crate::schedule::ScheduleError
);
