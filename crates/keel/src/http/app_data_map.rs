//! The application's values kept beside Keel's services in the state (one per type); handlers
//! read them with [`AppData`](super::AppData).

use std::fmt;

/// The application's values, one per type. Cloning is cheap when the values are.
#[derive(Clone, Default)]
pub struct AppDataMap(axum::http::Extensions);

impl AppDataMap {
    /// Adds `value`, replacing an earlier value of the same type.
    pub fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        self.0.insert(value);
    }

    /// The value of type `T`, if one was added.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.0.get::<T>()
    }

    /// How many values there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for AppDataMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppDataMap")
            .field("values", &self.0.len())
            .finish()
    }
}
