//! `POST /webhooks/{provider}` for each enabled billing provider: authenticated over the raw body,
//! answered 200 once the event is durably stored. Each provider's route has a documented handler
//! here; all of them receive through the provider's `BillingProvider` implementation.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{post, MethodRouter};
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::RawJson;
use super::openapi::values;
use super::problem::ApiError;
use super::state::AppState;
use crate::billing::{
    registry, AuthHeaders, BillingError, BillingProvider, Provider, RevenueCat, Stripe, Whop,
};

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookReceived)]
pub struct Received {
    #[schema(schema_with = values::always_true)]
    pub received: bool,
    /// The provider delivered this event id before; nothing changed.
    pub duplicate: bool,
}

/// What `POST /webhooks/revenuecat` checks and does.
const REVENUECAT: &str = "`Authorization` must equal `REVENUECAT_WEBHOOK_SECRET` (a `Bearer ` \
    prefix is accepted), compared in constant time. Every documented event type is handled; \
    unknown types are stored and acknowledged without effect. The event is stored once per event id with its raw payload sealed; \
    deliveries in any order end as if each event were applied once in event-time order. The \
    route exists only when the provider is enabled (`BILLING_PROVIDERS`).";
/// What `POST /webhooks/stripe` checks and does.
const STRIPE: &str = "`Stripe-Signature` is verified over the raw body: any `v1` signature under \
    any secret of `STRIPE_WEBHOOK_SECRET`, its timestamp within 300 s. Handles \
    checkout.session.completed, customer.subscription.*, invoice.paid and \
    invoice.payment_failed; other types are stored and acknowledged without effect. The event is stored once per event id with its raw payload sealed; \
    deliveries in any order end as if each event were applied once in event-time order. The \
    route exists only when the provider is enabled (`BILLING_PROVIDERS`).";

/// What `POST /webhooks/whop` checks and does.
const WHOP: &str = "With `webhook-id`, `webhook-timestamp` and `webhook-signature` present, the \
    Standard Webhooks signature is verified over the raw body (a `v1` signature under any secret of \
    `WHOP_WEBHOOK_SECRET`, the dashboard secret's own bytes or a `whsec_` secret's decoded bytes); \
    otherwise the legacy `x-whop-signature: t=…,v1=<hex>` is. Either timestamp must be within \
    300 s. Membership events become the member's subscription, held in the member's company; \
    payments, refunds and disputes are stored without effect on access, as are other types. The \
    event is stored once per event id with its raw payload sealed; deliveries in any order end as \
    if each event were applied once in event-time order. The route exists only when the provider \
    is enabled (`BILLING_PROVIDERS`).";

#[utoipa::path(
    post,
    path = "/webhooks/revenuecat",
    tag = "Webhooks",
    operation_id = "revenuecatWebhook",
    summary = "RevenueCat webhook",
    description = REVENUECAT,
    security(("revenuecatWebhook" = [])),
    request_body = Object,
    responses(
        (status = 200, description = "Durably stored.", body = Received),
        (status = 400, description = "The body is not JSON, or lacks the event's id, type or time."),
        (status = 401, description = "`webhook-unauthorized`: the authentication does not match."),
        (status = 413, description = "The body is larger than `BODY_LIMIT_BYTES`."),
        (status = 415, description = "The body is not `application/json`."),
        (status = 503, description = "`database-unavailable` or `timeout`."),
    )
)]
pub async fn revenuecat(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawJson(body): RawJson,
) -> Result<Json<Received>, ApiError> {
    receive(state, &RevenueCat, headers, body).await
}

#[utoipa::path(
    post,
    path = "/webhooks/stripe",
    tag = "Webhooks",
    operation_id = "stripeWebhook",
    summary = "Stripe webhook",
    description = STRIPE,
    security(("stripeSignature" = [])),
    request_body = Object,
    responses(
        (status = 200, description = "Durably stored.", body = Received),
        (status = 400, description = "The body is not JSON, or lacks the event's id, type or time."),
        (status = 401, description = "`webhook-unauthorized`: the authentication does not match."),
        (status = 413, description = "The body is larger than `BODY_LIMIT_BYTES`."),
        (status = 415, description = "The body is not `application/json`."),
        (status = 503, description = "`database-unavailable` or `timeout`."),
    )
)]
pub async fn stripe(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawJson(body): RawJson,
) -> Result<Json<Received>, ApiError> {
    receive(state, &Stripe, headers, body).await
}

#[utoipa::path(
    post,
    path = "/webhooks/whop",
    tag = "Webhooks",
    operation_id = "whopWebhook",
    summary = "Whop webhook",
    description = WHOP,
    security(("whopStandardWebhooks" = []), ("whopLegacySignature" = [])),
    request_body = Object,
    responses(
        (status = 200, description = "Durably stored.", body = Received),
        (status = 400, description = "The body is not JSON, or lacks the event's id, type or time."),
        (status = 401, description = "`webhook-unauthorized`: the authentication does not match."),
        (status = 413, description = "The body is larger than `BODY_LIMIT_BYTES`."),
        (status = 415, description = "The body is not `application/json`."),
        (status = 503, description = "`database-unavailable` or `timeout`."),
    )
)]
pub async fn whop(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawJson(body): RawJson,
) -> Result<Json<Received>, ApiError> {
    receive(state, &Whop, headers, body).await
}

/// The webhook route of every provider the settings enable.
pub fn routes(state: &AppState) -> Router<AppState> {
    let mut routes = Router::new();
    for source in registry::all().filter(|p| state.billing.enabled(p.id())) {
        if let Some(handler) = handler(source) {
            routes = routes.route(source.webhook_path(), handler);
        }
    }
    routes
}

/// The documented handler of a provider's route.
fn handler(source: &dyn BillingProvider) -> Option<MethodRouter<AppState>> {
    match source.id() {
        Provider::RevenueCat => Some(post(revenuecat)),
        Provider::Stripe => Some(post(stripe)),
        Provider::Whop => Some(post(whop)),
        Provider::Manual => None,
    }
}

async fn receive(
    state: AppState,
    source: &'static dyn BillingProvider,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Received>, ApiError> {
    let provider = source.id();
    let mut authentication = AuthHeaders::new();
    for name in source.auth_headers() {
        if let Some(value) = headers.get(*name).and_then(|v| v.to_str().ok()) {
            authentication = authentication.with(name, value);
        }
    }
    let result = state
        .billing
        .receive(provider, &authentication, &body)
        .await;
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
