//! The application's routes, documented with utoipa so they appear in `/openapi.json` beside
//! Keel's. They reach Keel's services (`State<AppState>`), the caller (`Principal`), the paywall
//! (`Entitled<Premium>`) and the application's own state (`AppData<Kitchen>`) side by side.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use keel::auth::Principal;
use keel::http::extract::Json as Body;
use keel::http::{ApiError, AppData, AppState, Entitled, EntitlementName, FieldError};
use keel::jobs::{AppJob, JobSpec};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::store::{self, Recipe};
use crate::{Kitchen, SendCard};

/// The entitlement the export is sold under (granted by a purchase of a product `keel.toml`
/// maps to `premium`, or by an operator).
pub struct Premium;

impl EntitlementName for Premium {
    const NAME: &'static str = "premium";
}

/// Adds the recipes routes to `router`.
pub fn router(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    router.routes(routes!(create)).routes(routes!(export))
}

/// A recipe to store.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewRecipe {
    /// 1 to 200 characters.
    pub title: String,
}

/// A stored recipe, and who its card will come from.
#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    /// The recipe.
    pub recipe: Recipe,
    /// The sender of its card (the application's `RECIPES_CARD_SENDER`).
    pub card_from: String,
}

/// Every recipe of the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct Export {
    /// Oldest first.
    pub recipes: Vec<Recipe>,
}

/// Stores a recipe of the caller and enqueues the job that sends its card.
#[utoipa::path(
    post,
    path = "/v1/recipes",
    tag = "Recipes",
    operation_id = "createRecipe",
    security(("bearer" = [])),
    request_body = NewRecipe,
    responses(
        (status = 201, description = "The recipe was stored.", body = Created),
        (status = 401, description = "No bearer token, or one that does not verify."),
        (status = 422, description = "The title is empty or longer than 200 characters."),
    )
)]
async fn create(
    State(state): State<AppState>,
    user: Principal,
    AppData(kitchen): AppData<Kitchen>,
    Body(body): Body<NewRecipe>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let title = body.title.trim();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(ApiError::validation(vec![FieldError {
            field: "title".into(),
            message: "must be 1 to 200 characters".into(),
        }]));
    }
    let id = uuid::Uuid::now_v7().to_string();
    let at = state.clock.now().timestamp();
    store::insert(&state.db, &id, &user.user_id, title, at)
        .await
        .map_err(internal)?;
    let card = SendCard {
        recipe_id: id.clone(),
    };
    let args = serde_json::to_value(&card).map_err(internal)?;
    state
        .queue
        .enqueue(JobSpec::new(SendCard::KIND, args))
        .await?;
    let recipe = Recipe {
        id,
        title: title.to_string(),
        card_sent_by: None,
    };
    let created = Created {
        recipe,
        card_from: kitchen.card_sender,
    };
    Ok((StatusCode::CREATED, Json(created)))
}

/// Every recipe of the caller: a premium feature.
#[utoipa::path(
    get,
    path = "/v1/recipes/export",
    tag = "Recipes",
    operation_id = "exportRecipes",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's recipes.", body = Export),
        (status = 401, description = "No bearer token, or one that does not verify."),
        (status = 403, description = "`entitlement-required`: the caller has no `premium`."),
    )
)]
async fn export(
    State(state): State<AppState>,
    Entitled(user, _): Entitled<Premium>,
) -> Result<Json<Export>, ApiError> {
    let recipes = store::by_user(&state.db, &user.user_id)
        .await
        .map_err(internal)?;
    Ok(Json(Export { recipes }))
}

/// Logs a failure of the application's own and answers 500 (the log has the cause).
fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "recipes request failed");
    ApiError::internal()
}
