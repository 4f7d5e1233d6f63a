//! The HTTP edge: routes per role and the middleware stack every response passes through.

pub mod admin;
mod app_data;
mod app_data_map;
pub mod auth;
mod conn_io;
mod console;
mod convert;
mod deep_health;
pub mod entitlements;
pub mod extract;
mod gateway;
pub mod health;
mod job_body;
mod jobs_api;
mod me;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod problem;
mod scheduler;
pub mod serve;
pub mod state;
mod storage;
mod storage_links;
mod webhooks;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::routing::{get, post};
use axum::Router;
use tower_http::cors::{AllowOrigin, Cors, CorsLayer};
use utoipa_axum::router::OpenApiRouter;

pub use app_data::{AppData, AppDataMap};
pub use auth::Tenant;
pub use entitlements::{Entitled, EntitlementName};
pub use me::entitlement_required;
pub use problem::{ApiError, FieldError};
pub use state::{AppState, Phase, Readiness};

use crate::config::{AppEnv, Settings};
use middleware::{limits, request_id, security};

/// The service a process serves: the edge around CORS around the router.
pub type App = middleware::edge::EdgeService<tower::util::Either<Cors<Router>, Router>>;

/// The complete HTTP service for the process's role. `extra` holds application routes (library
/// users' own handlers); they are served only by roles that serve the API, and those documented
/// with `#[utoipa::path]` appear in `/openapi.json` beside Keel's own.
///
/// The edge (request id, limits, timeout, panic capture, problems, security headers, access log
/// and metrics) and CORS wrap the whole router; the body limit and the rate limiter (which needs
/// the matched route, and names it for the access log) wrap each route, in one `layer` call so a
/// request crosses one boxed route rather than one per middleware.
pub fn router(state: AppState, extra: Option<OpenApiRouter<AppState>>) -> App {
    let settings = state.settings.clone();
    let mut routes = Router::new()
        .route("/health", get(health::health))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(metrics::metrics));
    if settings.role.serves_api() {
        let (extra, documented) = match extra.map(OpenApiRouter::split_for_parts) {
            Some((extra, documented)) => (Some(extra), Some(documented)),
            None => (None, None),
        };
        let document = openapi::body(documented.as_ref());
        routes = routes
            .merge(admin::routes())
            .merge(console::routes())
            .route("/health/deep", get(deep_health::deep))
            .route("/v1/me", get(me::me).delete(me::delete))
            .route("/v1/me/export", get(me::export))
            .route("/v1/me/entitlements", get(entitlements::list))
            .route("/v1/me/entitlements/sync", post(entitlements::sync))
            .route(
                "/openapi.json",
                get(move || std::future::ready(openapi::document(document.clone()))),
            )
            .route("/docs", get(openapi::page))
            .route("/v1/auth/check", get(me::check))
            .route("/v1/jobs", post(jobs_api::enqueue))
            .route("/v1/jobs/{id}", get(jobs_api::get))
            .route("/v1/me/uploads", post(storage::start))
            .route("/v1/me/files", get(storage::list))
            .route(
                "/v1/me/files/{id}",
                get(storage::get).delete(storage::delete),
            )
            .route("/v1/me/files/{id}/confirm", post(storage::confirm))
            .route(
                "/v1/storage/files/{token}",
                get(storage_links::download).put(storage_links::upload),
            )
            .route("/v1/storage/urls", post(storage_links::link))
            .route("/v1/storage/objects", post(storage_links::record));
        if settings.jobs.scheduler_secret_key.is_some() {
            routes = routes.route("/v1/scheduler/{name}/trigger", post(scheduler::trigger));
        }
        routes = routes.merge(webhooks::routes(&state));
        if let Some(extra) = extra {
            routes = routes.merge(extra);
        }
        if state.gateway.is_some() {
            routes = routes.fallback(gateway::forward);
        }
    }
    let per_route = tower::ServiceBuilder::new()
        .layer(DefaultBodyLimit::max(settings.http.body_limit_bytes))
        .layer(middleware::rate_limit::RateLimitLayer::new(&state));
    let routes = routes.layer(per_route).with_state(state);
    tower::ServiceBuilder::new()
        .layer(middleware::edge::EdgeLayer::new(edge(&settings)))
        .option_layer(cors(&settings))
        .service(routes)
}

fn edge(settings: &Settings) -> middleware::edge::Edge {
    middleware::edge::Edge {
        role: settings.role,
        hsts: security::Hsts(settings.app_env != AppEnv::Development),
        limits: limits::Limits {
            body_bytes: settings.http.body_limit_bytes,
            timeout: settings.http.request_timeout,
            gateway: settings.role.serves_api() && settings.gateway.upstream.is_some(),
        },
    }
}

fn cors(settings: &Settings) -> Option<CorsLayer> {
    let origins = &settings.http.cors_allowed_origins;
    if origins.is_empty() {
        return None;
    }
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static(request_id::HEADER),
            ])
            .expose_headers([
                HeaderName::from_static(request_id::HEADER),
                HeaderName::from_static("ratelimit"),
                HeaderName::from_static("ratelimit-policy"),
                header::RETRY_AFTER,
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
}
