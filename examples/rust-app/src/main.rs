//! `recipes`: an application built on Keel as a library. It keeps every `keel` subcommand
//! (`recipes serve`, `recipes migrate up`, `recipes queue stats`, …) and adds
//!
//! - its own table, created by its own migration (`migrations/`, history `keel_app_migrations`);
//! - its own state ([`Kitchen`]) beside Keel's in the router, read with `AppData<Kitchen>`;
//! - routes documented in `/openapi.json`, one of them behind the `premium` paywall;
//! - a typed job ([`SendCard`]) that runs with the application's own context.

mod jobs;
mod routes;
mod store;

use keel::store::migrate::{AppMigrations, Migration};
use keel::{Server, Settings};
use utoipa_axum::router::OpenApiRouter;

pub use jobs::SendCard;

/// The application's migrations: one portable set for both engines.
const MIGRATIONS: AppMigrations = AppMigrations::portable(&[Migration {
    version: 1,
    name: "0001_recipes",
    up: include_str!("../migrations/0001_recipes.up.sql"),
    down: include_str!("../migrations/0001_recipes.down.sql"),
}]);

/// The application's own state, built once at start-up: handlers read it with
/// `AppData<Kitchen>`, and [`SendCard`] runs receive a clone.
#[derive(Debug, Clone)]
pub struct Kitchen {
    /// Who recipe cards are sent from (`RECIPES_CARD_SENDER`).
    pub card_sender: String,
}

impl Kitchen {
    fn from_env() -> Self {
        Self {
            card_sender: std::env::var("RECIPES_CARD_SENDER")
                .unwrap_or_else(|_| "chef@recipes.example".into()),
        }
    }
}

/// The application: Keel plus the recipes routes, state, job and migrations.
fn server(settings: Settings) -> Server {
    let kitchen = Kitchen::from_env();
    let job_context = kitchen.clone();
    Server::new(settings)
        .app_data(kitchen)
        .migrations(MIGRATIONS)
        .documented_routes(routes::router(OpenApiRouter::new()))
        .jobs(move |registry| {
            registry.register_with::<SendCard>(job_context);
        })
}

fn main() -> std::process::ExitCode {
    keel_cli::run(server)
}
