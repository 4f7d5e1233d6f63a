//! Retry delays: `15 + attempt⁴` seconds, capped at 24 hours, plus up to 10% jitter.
//!
//! attempt 1 → ~16 s, 2 → ~31 s, 3 → ~96 s, 5 → ~11 min, 10 → ~2.8 h, 14 and later → 24 h.
//! The jitter is derived from the job id and attempt, so retries of many jobs that failed
//! together spread out instead of returning at one instant.

use std::time::Duration;

const CAP_SECS: u64 = 24 * 3600;

pub fn delay(job_id: i64, attempt: i32) -> Duration {
    let attempt = attempt.clamp(0, 1000) as u64;
    let base = 15u64
        .saturating_add(attempt.saturating_pow(4))
        .min(CAP_SECS);
    let base_ms = base * 1000;
    let jitter_ms = mix(job_id as u64 ^ (attempt << 48)) % (base_ms / 10 + 1);
    Duration::from_millis(base_ms + jitter_ms)
}

/// splitmix64: a cheap, well-spread hash.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::delay;

    #[test]
    fn grows_and_caps() {
        let secs = |a| delay(7, a).as_secs_f64();
        assert!((16.0..=17.7).contains(&secs(1)), "{}", secs(1));
        assert!((31.0..=34.2).contains(&secs(2)));
        assert!(secs(3) > secs(2) && secs(10) > secs(5));
        assert!(secs(50) <= 24.0 * 3600.0 * 1.1 && secs(50) >= 24.0 * 3600.0);
    }

    #[test]
    fn jitter_spreads_jobs() {
        let distinct: std::collections::HashSet<_> =
            (0..100).map(|id| delay(id, 3).as_millis()).collect();
        assert!(distinct.len() > 50);
    }
}
