//! `POST /webhooks/{provider}` for each enabled billing provider: authenticated over the raw body,
//! answered 200 once the event is durably stored.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;

use super::extract::RawJson;
use super::problem::ApiError;
use super::state::AppState;
use crate::billing::{provider, BillingError, BillingProvider};

#[derive(Debug, Serialize)]
pub struct Received {
    pub received: bool,
    pub duplicate: bool,
}

/// The webhook route of every provider the settings enable.
pub fn routes(state: &AppState) -> Router<AppState> {
    let mut routes = Router::new();
    for source in provider::all().filter(|p| state.billing.enabled(p.id())) {
        routes = routes.route(
            source.webhook_path(),
            post(
                move |State(state): State<AppState>, headers: HeaderMap, RawJson(body): RawJson| {
                    receive(state, source, headers, body)
                },
            ),
        );
    }
    routes
}

async fn receive(
    state: AppState,
    source: &'static dyn BillingProvider,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Received>, ApiError> {
    let provider = source.id();
    let authentication = headers
        .get(source.auth_header())
        .and_then(|v| v.to_str().ok());
    let result = state.billing.receive(provider, authentication, &body).await;
    let outcome = match &result {
        Ok(ingested) => ingested.outcome,
        Err(BillingError::Unauthorized(_)) => "unauthorized",
        Err(BillingError::Invalid(_)) => "invalid",
        Err(_) => "error",
    };
    crate::metrics::global()
        .webhooks
        .inc(&[provider.as_str(), outcome]);
    match result {
        Ok(ingested) => Ok(Json(Received {
            received: true,
            duplicate: ingested.duplicate,
        })),
        Err(e) => {
            tracing::warn!(provider = provider.as_str(), outcome, error = %e, "webhook refused");
            Err(e.into())
        }
    }
}
