//! Keel's domain types: what the store persists and the services reason about, with no knowledge
//! of either. The store crate depends on this one, and nothing here depends on the store, the
//! services or HTTP, so an import that runs back up does not compile.

pub mod audit;
pub mod billing;
pub mod flags;
pub mod jobs;
pub mod users;
