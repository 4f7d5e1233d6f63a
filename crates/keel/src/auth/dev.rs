//! Development tokens: HS256 under a key generated once into the data directory. They verify only
//! with `AUTH_DEV_MODE=true` in development (production refuses to start with it on).

use std::path::{Path, PathBuf};

use ring::rand::SecureRandom;

use super::jws;

/// The `kid` development tokens carry; a token with it is checked against the development key.
pub const DEV_KID: &str = "keel-dev";
const ISSUER: &str = "keel-dev";

pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("dev-token.key")
}

/// The development key, created (32 random bytes, hex, owner-only) on first use.
pub fn load_or_create(data_dir: &Path) -> Result<Vec<u8>, String> {
    load_or_create_file(&key_path(data_dir))
}

/// 32 random bytes kept as hex in the owner-only file `path`, created with its directory on
/// first use: the form of every development secret in the data directory.
pub fn load_or_create_file(path: &Path) -> Result<Vec<u8>, String> {
    if let Ok(text) = std::fs::read_to_string(path) {
        return decode_hex(text.trim())
            .ok_or_else(|| format!("{} is not a development key", path.display()));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut key = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| "no randomness available".to_string())?;
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let created = crate::crypto::private_file::publish_once(path, &hex)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    if created {
        return Ok(key.to_vec());
    }
    // Another process created it first: use the key that won.
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    decode_hex(text.trim()).ok_or_else(|| format!("{} is not a development key", path.display()))
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// What a development token says about its holder.
#[derive(Debug, Clone)]
pub struct DevClaims<'a> {
    pub user: &'a str,
    pub tenant: Option<&'a str>,
    pub tenant_claim: &'a str,
    pub admin: bool,
    pub ttl_s: i64,
}

pub fn mint(key: &[u8], claims: &DevClaims<'_>, now: i64) -> String {
    let mut body = serde_json::json!({
        "sub": claims.user,
        "iss": ISSUER,
        "iat": now,
        "nbf": now,
        "exp": now + claims.ttl_s,
        "keel_admin": claims.admin,
    });
    if let (Some(tenant), Some(map)) = (claims.tenant, body.as_object_mut()) {
        map.insert(claims.tenant_claim.to_string(), serde_json::json!(tenant));
    }
    jws::sign_hs256(key, DEV_KID, &body)
}
