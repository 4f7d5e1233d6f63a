//! `DATA_ENCRYPTION_KEYS`: `kid:base64-32-bytes`, comma-separated, newest first.

use std::fmt;

use base64::Engine;
use secrecy::{ExposeSecret, SecretSlice};

/// A 256-bit data key and the id sealed values record.
#[derive(Clone)]
pub struct DataKey {
    pub id: String,
    pub key: SecretSlice<u8>,
}

impl DataKey {
    pub fn bytes(&self) -> &[u8] {
        self.key.expose_secret()
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey({}: [redacted])", self.id)
    }
}

/// The keys `raw` lists, and what is wrong with it (one message per bad entry; the entries that
/// parse are kept).
pub fn parse(raw: &str) -> (Vec<DataKey>, Vec<String>) {
    let mut keys: Vec<DataKey> = Vec::new();
    let mut problems = Vec::new();
    for (i, entry) in raw.split(',').map(str::trim).enumerate() {
        let position = i + 1;
        let Some((id, encoded)) = entry.split_once(':') else {
            problems.push(format!("entry {position} is not kid:base64"));
            continue;
        };
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            problems.push(format!("entry {position} has an invalid key id"));
            continue;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(encoded));
        match decoded {
            Ok(bytes) if bytes.len() == 32 => {
                if keys.iter().any(|k| k.id == id) {
                    problems.push(format!("key id {id} appears twice"));
                }
                keys.push(DataKey {
                    id: id.to_string(),
                    key: SecretSlice::from(bytes),
                });
            }
            Ok(bytes) => problems.push(format!("key {id} is {} bytes; it must be 32", bytes.len())),
            Err(_) => problems.push(format!("key {id} is not valid base64")),
        }
    }
    (keys, problems)
}
