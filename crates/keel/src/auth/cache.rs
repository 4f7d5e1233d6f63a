//! Verified tokens, kept until the token expires, keyed by a MAC of the token: SipHash-2-4 with a
//! 128-bit output under a key drawn at random for the process. The cache holds no token, and a
//! token that is not one verified before cannot be made to match one's key without the key. The
//! MAC costs a fraction of a SHA-256 of the same token (RS256 tokens run to 500 bytes and more), and
//! it is computed on every authenticated request. Bounded: 16 shards of at most 4,096 entries; a
//! full shard first drops expired entries, then empties.

use std::collections::HashMap;
use std::hash::Hasher;
use std::sync::{Arc, Mutex};

use ring::rand::{SecureRandom, SystemRandom};
use siphasher::sip128::{Hasher128, SipHasher24};

use super::Principal;

const SHARDS: usize = 16;
const PER_SHARD: usize = 4096;

/// A token's key in the cache.
pub type TokenKey = u128;

#[derive(Debug)]
pub struct TokenCache {
    mac_key: [u8; 16],
    shards: Vec<Mutex<HashMap<TokenKey, Arc<Principal>>>>,
}

impl Default for TokenCache {
    fn default() -> Self {
        let mut mac_key = [0u8; 16];
        if SystemRandom::new().fill(&mut mac_key).is_err() {
            // No randomness: the cache stays empty (every key is distinct), and every token is
            // verified on each request.
            tracing::warn!("no randomness for the verified-token cache; tokens are not cached");
            return Self {
                mac_key,
                shards: Vec::new(),
            };
        }
        Self {
            mac_key,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

impl TokenCache {
    /// The key of `token` in this cache.
    pub fn key(&self, token: &str) -> TokenKey {
        let mut mac = SipHasher24::new_with_key(&self.mac_key);
        mac.write(token.as_bytes());
        mac.finish128().as_u128()
    }

    fn shard(&self, key: &TokenKey) -> Option<&Mutex<HashMap<TokenKey, Arc<Principal>>>> {
        self.shards.get(*key as usize % SHARDS)
    }

    /// The principal of a token verified before, while it has not expired.
    pub fn get(&self, key: &TokenKey, now: i64) -> Option<Arc<Principal>> {
        let mut shard = self.shard(key)?.lock().ok()?;
        match shard.get(key) {
            Some(p) if p.expires_at >= now => Some(p.clone()),
            Some(_) => {
                shard.remove(key);
                None
            }
            None => None,
        }
    }

    pub fn insert(&self, key: TokenKey, principal: Arc<Principal>, now: i64) {
        let Some(Ok(mut shard)) = self.shard(&key).map(Mutex::lock) else {
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
        let key = cache.key("t");
        cache.insert(key, principal(100), 0);
        assert!(cache.get(&key, 100).is_some());
        assert!(cache.get(&key, 101).is_none());
        assert_eq!(cache.len(), 0);
        for i in 0..(SHARDS * PER_SHARD * 2) {
            cache.insert(cache.key(&i.to_string()), principal(1_000), 0);
        }
        assert!(cache.len() <= SHARDS * PER_SHARD);
    }

    #[test]
    fn keys_differ_by_token_and_by_process_key() {
        let cache = TokenCache::default();
        assert_eq!(cache.key("a.b.c"), cache.key("a.b.c"));
        assert_ne!(cache.key("a.b.c"), cache.key("a.b.d"));
        assert_ne!(cache.key("a.b.c"), TokenCache::default().key("a.b.c"));
    }
}
