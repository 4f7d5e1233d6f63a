//! `POST /webhooks/revenuecat` and `POST /webhooks/stripe`: authenticated over the raw body,
//! answered 200 once the event is durably stored.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::Json;
use serde::Serialize;

use super::extract::RawJson;
use super::problem::ApiError;
use super::state::AppState;
use crate::billing::{BillingError, Provider};

#[derive(Debug, Serialize)]
pub struct Received {
    pub received: bool,
    pub duplicate: bool,
}

pub async fn revenuecat(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawJson(body): RawJson,
) -> Result<Json<Received>, ApiError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    receive(&state, Provider::RevenueCat, authorization, &body).await
}

pub async fn stripe(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawJson(body): RawJson,
) -> Result<Json<Received>, ApiError> {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    receive(&state, Provider::Stripe, signature, &body).await
}

async fn receive(
    state: &AppState,
    provider: Provider,
    authentication: Option<&str>,
    body: &[u8],
) -> Result<Json<Received>, ApiError> {
    let result = state.billing.receive(provider, authentication, body).await;
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
