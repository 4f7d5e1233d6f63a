//! The in-process backend: the TAT of each key in a map, split into shards that each have their
//! own mutex, so concurrent requests rarely wait for one another. The number of keys is bounded:
//! idle keys (TAT in the past, so their whole burst is back and forgetting them changes nothing)
//! are swept out, and when a shard is full of active keys the one closest to idle gives way.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use super::gcra::{self, Decision, Rate};

/// Keys kept at most, over all shards.
pub const DEFAULT_CAPACITY: usize = 100_000;
const SHARDS: usize = 64;
/// A shard sweeps out its idle keys at most this often (µs), on the next check that touches it.
const SWEEP_EVERY_US: i64 = 30_000_000;

#[derive(Debug)]
pub struct MemoryStore {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    hasher: RandomState,
}

#[derive(Debug, Default)]
struct Shard {
    tats: HashMap<Box<str>, i64>,
    last_sweep: i64,
    evicted_active: u64,
}

impl Shard {
    fn sweep(&mut self, now: i64) {
        self.tats.retain(|_, tat| *tat > now);
        self.last_sweep = now;
    }

    /// Room for one more key: idle keys go first; if every key is active, the one with the
    /// earliest TAT (the least owed) is forgotten.
    fn make_room(&mut self, now: i64, capacity: usize) {
        self.sweep(now);
        while self.tats.len() >= capacity {
            let Some(victim) = self
                .tats
                .iter()
                .min_by_key(|(_, tat)| **tat)
                .map(|(k, _)| k.clone())
            else {
                return;
            };
            self.tats.remove(&victim);
            self.evicted_active += 1;
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl MemoryStore {
    pub fn with_capacity(capacity: usize) -> Self {
        let shards = (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect();
        MemoryStore {
            shards,
            per_shard: capacity.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
        }
    }

    /// One request for `key` at `now` (µs since the epoch).
    pub fn check(&self, key: &str, rate: Rate, now: i64) -> Decision {
        let index = (self.hasher.hash_one(key) as usize) % self.shards.len();
        let mut shard = match self.shards[index].lock() {
            Ok(shard) => shard,
            // A panic while holding the lock left a map of plain integers: still consistent.
            Err(poisoned) => poisoned.into_inner(),
        };
        if now - shard.last_sweep > SWEEP_EVERY_US {
            shard.sweep(now);
        }
        // A known key costs one lookup; a new one a second (the insert).
        if let Some(slot) = shard.tats.get_mut(key) {
            let (decision, new_tat) = gcra::check(Some(*slot), now, rate);
            if let Some(tat) = new_tat {
                *slot = tat;
            }
            return decision;
        }
        let (decision, new_tat) = gcra::check(None, now, rate);
        if let Some(tat) = new_tat {
            if shard.tats.len() >= self.per_shard {
                shard.make_room(now, self.per_shard);
            }
            shard.tats.insert(key.into(), tat);
        }
        decision
    }

    /// Keys held now, and active keys forgotten to make room since start-up.
    pub fn stats(&self) -> (usize, u64) {
        self.shards.iter().fold((0, 0), |(keys, evicted), shard| {
            let shard = match shard.lock() {
                Ok(s) => s,
                Err(poisoned) => poisoned.into_inner(),
            };
            (keys + shard.tats.len(), evicted + shard.evicted_active)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const S: i64 = 1_000_000;

    #[test]
    fn keys_are_independent() {
        let store = MemoryStore::default();
        let rate = Rate::new(2, Duration::from_secs(60), 2);
        assert!(store.check("a", rate, S).allowed);
        assert!(store.check("a", rate, S).allowed);
        assert!(!store.check("a", rate, S).allowed);
        assert!(store.check("b", rate, S).allowed);
    }

    #[test]
    fn idle_keys_are_swept() {
        let store = MemoryStore::default();
        let rate = Rate::new(10, Duration::from_secs(10), 10);
        for i in 0..1000 {
            store.check(&format!("k{i}"), rate, S);
        }
        assert_eq!(store.stats().0, 1000);
        // Long after every key went idle, checks sweep the shards they touch.
        let later = S + 2 * SWEEP_EVERY_US;
        for i in 0..2000 {
            store.check(&format!("fresh{i}"), rate, later);
        }
        assert_eq!(store.stats().0, 2000, "every old key was idle and is gone");
    }

    #[test]
    fn capacity_is_a_bound_even_under_a_flood_of_active_keys() {
        let store = MemoryStore::with_capacity(640);
        let rate = Rate::new(1, Duration::from_secs(3600), 1);
        for i in 0..10_000 {
            store.check(&format!("flood{i}"), rate, S + i);
        }
        let (keys, evicted) = store.stats();
        assert!(keys <= 640, "{keys}");
        assert!(evicted >= 10_000 - 640, "{evicted}");
        // The newest keys are still limited.
        assert!(!store.check("flood9999", rate, S + 10_000).allowed);
    }
}
