//! Signing in with `ADMIN_TOKEN` or an operator's bearer token, and signing out.

use axum::extract::{FromRequest, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;

use super::layout;
use super::refusal::Refusal;
use super::session;
use crate::console_sessions::SessionError;
use crate::http::state::AppState;

pub async fn form() -> Response {
    layout::respond(StatusCode::OK, sign_in_page(None))
}

fn sign_in_page(problem: Option<&str>) -> maud::Markup {
    let body = html! {
        form.signin method="post" action="/admin/login" {
            h1 { "Keel console" }
            @if let Some(problem) = problem { p.refusal { (problem) } }
            label for="token" { "Admin token or an operator's bearer token" }
            input #token type="password" name="token" autocomplete="off" required;
            button type="submit" { "Sign in" }
        }
    };
    layout::page("Sign in", None, body)
}

#[derive(Deserialize)]
pub struct SignIn {
    token: String,
}

pub async fn submit(State(state): State<AppState>, req: Request) -> Result<Response, Refusal> {
    let (parts, body) = req.into_parts();
    session::same_origin(&parts, state.limiter.trusted_proxies())?;
    let Form(sign_in) = Form::<SignIn>::from_request(Request::from_parts(parts, body), &state)
        .await
        .map_err(|_| Refusal::bad_form())?;
    let session = match session::sign_in(&state, sign_in.token.trim()).await {
        Ok(session) => session,
        Err(refusal) => {
            let page = sign_in_page(Some(refusal.reason()));
            return Ok(layout::respond(refusal.status(), page));
        }
    };
    let id = state
        .console_sessions
        .open(&session)
        .await
        .map_err(|e| match e {
            SessionError::Random => Refusal::unavailable(),
            SessionError::Store(e) => Refusal::from(e),
        })?;
    tracing::info!(actor = session.actor, "console sign-in");
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/admin".to_string()),
            (header::SET_COOKIE, session::cookie(&state, Some(&id))),
        ],
    )
        .into_response())
}

pub async fn sign_out(State(state): State<AppState>, req: Request) -> Result<Response, Refusal> {
    let id = session::cookie_id(req.headers());
    session::checked_form(req, &state).await?;
    if let Some(id) = id {
        state.console_sessions.close(&id).await?;
    }
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/admin/login".to_string()),
            (header::SET_COOKIE, session::cookie(&state, None)),
        ],
    )
        .into_response())
}
