//! Who is signed in to the console: what every page shows and every form carries.

/// A signed-in operator, read from the session cookie (`session.rs`).
#[derive(Debug, Clone)]
pub struct Operator {
    pub actor: String,
    pub read_only: bool,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
}
