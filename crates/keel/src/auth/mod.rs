//! Authentication: bearer tokens (JWKS-published RS256/ES256/EdDSA keys, an HS256 secret, or a
//! development key) verified into a [`Principal`].

mod cache;
pub mod dev;
mod jwks;
mod jws;
mod principal;
mod reason;
mod service;
mod settings;
mod verifier;

pub use jwks::KeysStatus;
pub use jws::MAX_TOKEN_BYTES;
pub use principal::{Principal, ROLE_ADMIN, ROLE_USER};
pub use reason::{AuthStats, Reason};
pub use service::{ServiceTokens, MIN_SERVICE_SECRET_LEN};
pub use settings::{AuthSettings, WHOP_JWKS_URL};
pub use verifier::Verifier;
