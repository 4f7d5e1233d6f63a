//! The application's own state beside Keel's: values registered with
//! [`Server::app_data`](crate::Server::app_data) and reached in handlers with the [`AppData`]
//! extractor, next to `State<AppState>`, `Principal` and `Entitled<E>`.

use std::any::type_name;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

pub use super::app_data_map::AppDataMap;
use super::problem::ApiError;
use super::state::AppState;

/// A clone of the application's value of type `T`, registered with
/// [`Server::app_data`](crate::Server::app_data). A handler asking for a type that was never
/// registered is a programming error: it answers 500 and logs the type's name.
///
/// ```no_run
/// use keel::http::{AppData, AppState};
/// use axum::{routing::get, Router};
///
/// #[derive(Clone)]
/// struct Greeting(&'static str);
///
/// async fn hello(AppData(greeting): AppData<Greeting>) -> &'static str {
///     greeting.0
/// }
///
/// # fn settings() -> keel::Settings { unimplemented!() }
/// let server = keel::Server::new(settings())
///     .app_data(Greeting("hello"))
///     .routes(Router::<AppState>::new().route("/v1/hello", get(hello)));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct AppData<T>(pub T);

impl<T> std::ops::Deref for AppData<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Clone + Send + Sync + 'static> FromRequestParts<AppState> for AppData<T> {
    type Rejection = ApiError;

    async fn from_request_parts(_parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match state.app_data.get::<T>() {
            Some(value) => Ok(AppData(value.clone())),
            None => {
                tracing::error!(
                    r#type = type_name::<T>(),
                    "a handler asks for application data that was never registered with Server::app_data"
                );
                Err(ApiError::internal())
            }
        }
    }
}
