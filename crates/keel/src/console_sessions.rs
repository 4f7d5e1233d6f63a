//! Sessions of the operations console: a random id that only the operator's cookie holds; the
//! store keeps its SHA-256 with who signed in, whether read-only, and until when.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::store::console::ConsoleSession;
use crate::store::{Db, StoreError};

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("no randomness available for a session id")]
    Random,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone)]
pub struct ConsoleSessions {
    db: Db,
    clock: Clock,
}

impl ConsoleSessions {
    pub fn new(db: Db, clock: Clock) -> Self {
        Self { db, clock }
    }

    /// Stores `session` under a new random id (32 bytes, base64url) and returns the id, which
    /// only the cookie carries.
    pub async fn open(&self, session: &ConsoleSession) -> Result<String, SessionError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| SessionError::Random)?;
        let id = URL_SAFE_NO_PAD.encode(bytes);
        self.db
            .insert_console_session(&id_hash(&id), session, self.clock.now())
            .await?;
        Ok(id)
    }

    /// The session `id` names, while it has not expired.
    pub async fn find(&self, id: &str) -> Result<Option<ConsoleSession>, StoreError> {
        self.db
            .console_session(&id_hash(id), self.clock.now())
            .await
    }

    /// Ends the session `id` names (sign-out).
    pub async fn close(&self, id: &str) -> Result<(), StoreError> {
        self.db.delete_console_session(&id_hash(id)).await
    }
}

/// What the store keeps of a session id: its SHA-256, in hex.
pub fn id_hash(id: &str) -> String {
    Sha256::digest(id.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
