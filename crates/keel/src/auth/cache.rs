//! Verified tokens, keyed by the SHA-256 of the token, kept until the token expires. Bounded:
//! 16 shards of at most 4,096 entries; a full shard first drops expired entries, then empties.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::Principal;

const SHARDS: usize = 16;
const PER_SHARD: usize = 4096;

type Digest = [u8; 32];

#[derive(Debug)]
pub struct TokenCache {
    shards: Vec<Mutex<HashMap<Digest, Arc<Principal>>>>,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

pub fn digest(token: &str) -> Digest {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl TokenCache {
    fn shard(&self, key: &Digest) -> &Mutex<HashMap<Digest, Arc<Principal>>> {
        &self.shards[key[0] as usize % SHARDS]
    }

    /// The principal of a token verified before, while it has not expired.
    pub fn get(&self, key: &Digest, now: i64) -> Option<Arc<Principal>> {
        let mut shard = self.shard(key).lock().ok()?;
        match shard.get(key) {
            Some(p) if p.expires_at >= now => Some(p.clone()),
            Some(_) => {
                shard.remove(key);
                None
            }
            None => None,
        }
    }

    pub fn insert(&self, key: Digest, principal: Arc<Principal>, now: i64) {
        let Ok(mut shard) = self.shard(&key).lock() else {
            return;
        };
        if shard.len() >= PER_SHARD {
            shard.retain(|_, p| p.expires_at >= now);
            if shard.len() >= PER_SHARD {
                shard.clear();
            }
        }
        shard.insert(key, principal);
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .filter_map(|s| s.lock().ok())
            .map(|s| s.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(exp: i64) -> Arc<Principal> {
        Arc::new(Principal {
            user_id: "u".into(),
            tenant_id: None,
            roles: vec![],
            session_id: None,
            expires_at: exp,
            whop_member: false,
        })
    }

    #[test]
    fn entries_expire_and_the_cache_stays_bounded() {
        let cache = TokenCache::default();
        let key = digest("t");
        cache.insert(key, principal(100), 0);
        assert!(cache.get(&key, 100).is_some());
        assert!(cache.get(&key, 101).is_none());
        assert_eq!(cache.len(), 0);
        for i in 0..(SHARDS * PER_SHARD * 2) {
            cache.insert(digest(&i.to_string()), principal(1_000), 0);
        }
        assert!(cache.len() <= SHARDS * PER_SHARD);
    }
}
