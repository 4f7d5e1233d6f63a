//! The caller's entitlements (`GET /v1/me/entitlements`, `POST /v1/me/entitlements/sync`) and
//! the paywall extractor for application routes.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::Json;
use serde::Serialize;

use super::me::entitlement_required;
use super::problem::ApiError;
use super::state::AppState;
use crate::auth::Principal;
use crate::billing::Entitlement;

#[derive(Debug, Serialize)]
pub struct Entitlements {
    pub entitlements: BTreeMap<String, Entitlement>,
}

pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Entitlements>, ApiError> {
    let entitlements = state.billing.entitlements(&principal.user_id).await?;
    Ok(Json(Entitlements { entitlements }))
}

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
