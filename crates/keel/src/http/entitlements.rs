//! The caller's entitlements (`GET /v1/me/entitlements`, `POST /v1/me/entitlements/sync`) and
//! the paywall extractor for application routes.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::me::entitlement_required;
use super::problem::ApiError;
use super::state::AppState;
use crate::auth::Principal;
use crate::billing::Entitlement;

#[derive(Debug, Serialize, ToSchema)]
pub struct Entitlements {
    /// Every entitlement the user holds or held, by name.
    pub entitlements: BTreeMap<String, Entitlement>,
}

#[utoipa::path(
    get,
    path = "/v1/me/entitlements",
    tag = "Users",
    operation_id = "getEntitlements",
    summary = "The caller's entitlements",
    description = "From RevenueCat and Stripe webhooks and manual grants. Changes show in every \
        process within 5 seconds.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The entitlements.", body = Entitlements),
        (status = 401, description = "No bearer token, or one that does not verify."),
        (status = 503, description = "`auth-unavailable`, `database-unavailable` or `timeout`."),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Entitlements>, ApiError> {
    let entitlements = state.billing.entitlements(&principal.user_id).await?;
    Ok(Json(Entitlements { entitlements }))
}

#[utoipa::path(
    post,
    path = "/v1/me/entitlements/sync",
    tag = "Users",
    operation_id = "syncEntitlements",
    summary = "Sync from RevenueCat now",
    description = "Asks RevenueCat's REST API (`GET /v1/subscribers/{id}`, 10 s timeout) for the \
        caller, records what it says and answers the entitlements.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The entitlements.", body = Entitlements),
        (status = 401, description = "No bearer token, or one that does not verify."),
        (status = 404, description = "`not-configured`: `REVENUECAT_API_KEY` is not set."),
        (status = 429, description = "The `sensitive` rate limit is used up."),
        (
            status = 502,
            description = "`revenuecat-unavailable`: RevenueCat failed or did not answer."
        ),
        (status = 503, description = "`database-unavailable` or `timeout`."),
    )
)]
pub async fn sync(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Entitlements>, ApiError> {
    let entitlements = state.billing.sync(&principal.user_id).await?;
    Ok(Json(Entitlements { entitlements }))
}

/// Names an entitlement for [`Entitled`].
pub trait EntitlementName: Send + Sync + 'static {
    const NAME: &'static str;
}

/// The paywall: the caller holds the active entitlement `E::NAME`. Without a valid token: 401;
/// without the entitlement: 403 `entitlement-required`.
///
/// ```ignore
/// struct Premium;
/// impl EntitlementName for Premium { const NAME: &'static str = "premium"; }
/// async fn export(Entitled(user, ..): Entitled<Premium>) -> String { user.user_id }
/// ```
#[derive(Debug, Clone)]
pub struct Entitled<E>(pub Principal, pub PhantomData<E>);

impl<E: EntitlementName> FromRequestParts<AppState> for Entitled<E> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = Principal::from_request_parts(parts, state).await?;
        if state
            .billing
            .is_entitled(&principal.user_id, E::NAME)
            .await?
        {
            Ok(Entitled(principal, PhantomData))
        } else {
            Err(entitlement_required(E::NAME))
        }
    }
}
