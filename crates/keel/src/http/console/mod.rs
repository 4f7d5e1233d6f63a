//! The operations console under `/admin`: server-rendered pages (maud templates, escaped by
//! default) over the same services as the admin API. Every change is a form POST checked by
//! [`session::Change`] (a writable session, this host's `Origin`, the session's CSRF token) and
//! writes its audit row with the session's actor.

mod billing;
mod bulk;
mod job_actions;
mod job_filter;
mod jobs;
mod layout;
mod operator;
mod pages;
mod queues;
mod refusal;
mod schedules;
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
        .route("/admin/console.js", get(layout::script))
        .route("/admin/login", get(signin::form).post(signin::submit))
        .route("/admin/logout", post(signin::sign_out))
        .route("/admin/jobs", get(jobs::list))
        .route("/admin/jobs/selection", post(bulk::selection))
        .route("/admin/jobs/bulk", post(bulk::whole_filter))
        .route("/admin/jobs/{id}", get(jobs::detail))
        .route("/admin/jobs/{id}/retry", post(jobs::retry))
        .route("/admin/jobs/{id}/discard", post(jobs::discard))
        .route("/admin/queues/{name}/pause", post(queues::pause))
        .route("/admin/queues/{name}/resume", post(queues::resume))
        .route("/admin/queues/{name}/drain", post(queues::drain))
        .route("/admin/schedules", get(schedules::list))
        .route("/admin/schedules/{name}/trigger", post(queues::trigger))
        .route("/admin/flags", get(pages::flags))
        .route("/admin/flags/{name}", post(pages::set_flag))
        .route("/admin/users", get(users::show))
        .route("/admin/users/{id}/grant", post(users::grant))
        .route("/admin/users/{id}/revoke", post(users::revoke))
        .route("/admin/audit", get(pages::audit))
        .route("/admin/billing", get(billing::find))
        .route("/admin/billing/replay", post(billing::replay))
}
