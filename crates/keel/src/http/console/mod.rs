//! The operations console under `/admin`: server-rendered pages (maud templates, escaped by
//! default) over the same services as the admin API. Every change is a form POST checked by
//! [`session::Change`] (a writable session, this host's `Origin`, the session's CSRF token) and
//! writes its audit row with the session's actor.

mod jobs;
mod layout;
mod operator;
mod pages;
mod queues;
mod refusal;
mod session;
mod signin;
mod users;

use axum::routing::{get, post};
use axum::Router;

use super::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(pages::overview))
        .route("/admin/", get(pages::overview))
        .route("/admin/console.css", get(layout::stylesheet))
        .route("/admin/login", get(signin::form).post(signin::submit))
        .route("/admin/logout", post(signin::sign_out))
        .route("/admin/jobs", get(jobs::list))
        .route("/admin/jobs/retry-failed", post(jobs::retry_failed))
        .route("/admin/jobs/{id}", get(jobs::detail))
        .route("/admin/jobs/{id}/retry", post(jobs::retry))
        .route("/admin/jobs/{id}/discard", post(jobs::discard))
        .route("/admin/queues/{name}/pause", post(queues::pause))
        .route("/admin/queues/{name}/resume", post(queues::resume))
        .route("/admin/schedules/{name}/trigger", post(queues::trigger))
        .route("/admin/flags", get(pages::flags))
        .route("/admin/flags/{name}", post(pages::set_flag))
        .route("/admin/users", get(users::show))
        .route("/admin/users/{id}/grant", post(users::grant))
        .route("/admin/users/{id}/revoke", post(users::revoke))
        .route("/admin/audit", get(pages::audit))
}
