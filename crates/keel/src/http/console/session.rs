//! Console sessions: a random id in an `HttpOnly` cookie, only its SHA-256 stored; the CSRF token
//! of a session is an HMAC of its id under a key derived from the data keys, so every replica
//! checks it without shared state; changes also need an `Origin` naming this host.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

pub use super::operator::Operator;
use super::refusal::Refusal;
use crate::config::AppEnv;
use crate::http::state::AppState;
use crate::ratelimit::ip::IpNet;
use crate::store::console::ConsoleSession;

pub const COOKIE: &str = "keel_console";
/// How long a session lasts after sign-in.
pub const LIFETIME_HOURS: i64 = 12;
const CSRF_PURPOSE: &str = "console csrf";

pub fn csrf_token(state: &AppState, id: &str) -> String {
    let key = state.billing.sealer().derived_mac_key(CSRF_PURPOSE);
    URL_SAFE_NO_PAD.encode(ring::hmac::sign(&key, id.as_bytes()).as_ref())
}

/// The `Set-Cookie` value carrying `id` (or, with `None`, clearing the cookie).
pub fn cookie(state: &AppState, id: Option<&str>) -> String {
    let secure = if state.settings.app_env == AppEnv::Development {
        ""
    } else {
        "; Secure"
    };
    match id {
        Some(id) => format!(
            "{COOKIE}={id}; HttpOnly{secure}; SameSite=Strict; Path=/admin; Max-Age={}",
            LIFETIME_HOURS * 3600
        ),
        None => format!("{COOKIE}=; HttpOnly{secure}; SameSite=Strict; Path=/admin; Max-Age=0"),
    }
}

/// The session id in the request's cookie, if any.
pub fn cookie_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|value| !value.is_empty())
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Refusal> {
        let id = cookie_id(&parts.headers).ok_or_else(Refusal::sign_in)?;
        let session: ConsoleSession = state
            .console_sessions
            .find(&id)
            .await
            .map_err(|_| Refusal::unavailable())?
            .ok_or_else(Refusal::sign_in)?;
        Ok(Operator {
            actor: session.actor,
            read_only: session.read_only,
            csrf: csrf_token(state, &id),
        })
    }
}

/// A change requested by a form: the operator may change things, the request comes from this
/// host (`Origin`, else `Referer`), and the form carries the session's CSRF token.
#[derive(Debug)]
pub struct Change {
    pub actor: String,
    /// The session's CSRF token, for the forms of a page this change answers with.
    pub csrf: String,
    pub fields: Fields,
}

impl Change {
    /// The operator who sent this change, to render a page for.
    pub fn operator(&self) -> Operator {
        Operator {
            actor: self.actor.clone(),
            read_only: false,
            csrf: self.csrf.clone(),
        }
    }

    /// The first value of the form field `name` (empty when absent).
    pub fn field(&self, name: &str) -> &str {
        field(&self.fields, name)
    }

    /// Every value of the form field `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A form's fields in order; a name may repeat (checkboxes).
pub type Fields = Vec<(String, String)>;

fn field<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

impl FromRequest<AppState> for Change {
    type Rejection = Refusal;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Refusal> {
        let (operator, fields) = checked_form(req, state).await?;
        if operator.read_only {
            return Err(Refusal::read_only());
        }
        Ok(Change {
            actor: operator.actor,
            csrf: operator.csrf,
            fields,
        })
    }
}

/// The form of a signed-in operator's POST, once its origin and CSRF token are checked.
pub async fn checked_form(req: Request, state: &AppState) -> Result<(Operator, Fields), Refusal> {
    let (mut parts, body) = req.into_parts();
    let operator = Operator::from_request_parts(&mut parts, state).await?;
    same_origin(&parts, state.limiter.trusted_proxies())?;
    let axum::Form(fields) =
        axum::Form::<Fields>::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|_| Refusal::bad_form())?;
    let sent = field(&fields, "csrf");
    if !crate::crypto::constant_time_eq(sent.as_bytes(), operator.csrf.as_bytes()) {
        return Err(Refusal::csrf());
    }
    Ok((operator, fields))
}

/// The request's `Origin` (or `Referer`) names the host the request was sent to: `Host`, or
/// `X-Forwarded-Host` when the peer is a trusted proxy. Schemes are not compared, so TLS ended
/// at a proxy does not matter.
pub fn same_origin(parts: &Parts, trusted: &[IpNet]) -> Result<(), Refusal> {
    let headers = &parts.headers;
    let origin = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok())
        .filter(|v| *v != "null")
        .ok_or_else(|| Refusal::origin("The request names no origin."))?;
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or_default())
        .unwrap_or_default();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let from_proxy = peer.is_some_and(|ip| trusted.iter().any(|net| net.contains(ip)));
    let forwarded = from_proxy
        .then(|| headers.get("x-forwarded-host"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').next().unwrap_or_default().trim());
    let host = forwarded
        .or_else(|| headers.get(header::HOST).and_then(|v| v.to_str().ok()))
        .unwrap_or_default();
    if !origin_host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(Refusal::origin(
            "The form was sent from another site than this console.",
        ))
    }
}

/// Whether `token` signs in, and as whom: `ADMIN_TOKEN`, an admin's token, or a read-only
/// operator's token (`ADMIN_READONLY_USER_IDS`).
pub async fn sign_in(state: &AppState, token: &str) -> Result<ConsoleSession, Refusal> {
    let expires_at = state.clock.now() + chrono::Duration::hours(LIFETIME_HOURS);
    if let Some(admin) = state.settings.auth.admin_token.as_ref() {
        let admin = secrecy::ExposeSecret::expose_secret(admin);
        if crate::crypto::constant_time_eq(token.as_bytes(), admin.as_bytes()) {
            return Ok(session("admin-token".into(), false, expires_at));
        }
    }
    let principal = state
        .verifier
        .verify(token)
        .await
        .map_err(|_| Refusal::new(StatusCode::UNAUTHORIZED, "That token does not sign in."))?;
    let actor = format!("user:{}", principal.user_id);
    if principal.is_admin() {
        return Ok(session(actor, false, expires_at));
    }
    let auth = &state.settings.auth;
    if auth.admin_readonly_user_ids.contains(&principal.user_id) {
        return Ok(session(actor, true, expires_at));
    }
    Err(Refusal::new(
        StatusCode::FORBIDDEN,
        "That user is neither an administrator nor a read-only operator.",
    ))
}

fn session(
    actor: String,
    read_only: bool,
    expires_at: chrono::DateTime<chrono::Utc>,
) -> ConsoleSession {
    ConsoleSession {
        actor,
        read_only,
        expires_at,
    }
}
