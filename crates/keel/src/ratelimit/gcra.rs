//! The generic cell rate algorithm (GCRA), as pure functions of a stored theoretical arrival time
//! (TAT) and the current time, in microseconds. Both backends call these; the Redis script is
//! the same arithmetic in Lua.
//!
//! With an emission interval `T = period / limit` and a burst tolerance `τ = T × (burst − 1)`, a
//! request at `now` is allowed when `now ≥ TAT − τ`, and then `TAT' = max(TAT, now) + T`. A key
//! whose TAT is in the past has its whole burst available, so it need not be stored at all.

use std::time::Duration;

/// A policy's rate in the units the algorithm works in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// `T`: microseconds one request costs.
    pub interval_us: i64,
    /// `τ`: how far ahead of `now` the TAT may run, in microseconds.
    pub tolerance_us: i64,
}

impl Rate {
    /// `limit` requests per `period`, `burst` of them at once. Zero values count as one; the
    /// interval is at least one microsecond.
    pub fn new(limit: u32, period: Duration, burst: u32) -> Rate {
        let period_us = i64::try_from(period.as_micros()).unwrap_or(i64::MAX);
        let interval_us = (period_us / i64::from(limit.max(1))).max(1);
        let tolerance_us = interval_us.saturating_mul(i64::from(burst.max(1)) - 1);
        Rate {
            interval_us,
            tolerance_us,
        }
    }
}

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests that would still be allowed right now.
    pub remaining: u32,
    /// Time until the whole burst is available again (`TAT − now`).
    pub reset: Duration,
    /// When refused: time until one request will be allowed (`TAT − τ − now`); zero otherwise.
    pub retry_after: Duration,
}

impl Decision {
    /// The decision described by `allowed` and `TAT − now` after the request (the TAT as it was
    /// when refused). This is what the Redis script returns.
    pub fn from_offset(allowed: bool, tat_minus_now_us: i64, rate: Rate) -> Decision {
        let ahead = tat_minus_now_us.max(0);
        let slack = rate.tolerance_us - ahead;
        let remaining = if slack < 0 {
            0
        } else {
            slack / rate.interval_us + 1
        };
        let retry_after = if allowed {
            0
        } else {
            (ahead - rate.tolerance_us).max(1)
        };
        Decision {
            allowed,
            remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
            reset: micros(ahead),
            retry_after: micros(retry_after),
        }
    }

    /// `reset` in whole seconds, rounded up (the `t` of the `RateLimit` field).
    pub fn reset_secs(&self) -> u64 {
        ceil_secs(self.reset)
    }

    /// `retry_after` in whole seconds, rounded up and at least 1 (the `Retry-After` field).
    pub fn retry_after_secs(&self) -> u64 {
        ceil_secs(self.retry_after).max(1)
    }
}

/// One request at `now` against the stored TAT (`None`: the key is unknown or idle). Returns the
/// decision and, when allowed, the TAT to store.
pub fn check(stored_tat: Option<i64>, now: i64, rate: Rate) -> (Decision, Option<i64>) {
    let tat = stored_tat.unwrap_or(now).max(now);
    if now < tat - rate.tolerance_us {
        return (Decision::from_offset(false, tat - now, rate), None);
    }
    let new_tat = tat.saturating_add(rate.interval_us);
    (
        Decision::from_offset(true, new_tat - now, rate),
        Some(new_tat),
    )
}

fn micros(us: i64) -> Duration {
    Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_micros().div_ceil(1_000_000) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000_000;

    /// A fake clock: the tests move `now` by hand.
    struct Key {
        tat: Option<i64>,
        now: i64,
        rate: Rate,
    }

    impl Key {
        fn new(limit: u32, period_s: u64, burst: u32) -> Key {
            Key {
                tat: None,
                now: 1_700_000_000 * SECOND,
                rate: Rate::new(limit, Duration::from_secs(period_s), burst),
            }
        }

        fn hit(&mut self) -> Decision {
            let (decision, tat) = check(self.tat, self.now, self.rate);
            if let Some(tat) = tat {
                self.tat = Some(tat);
            }
            decision
        }

        fn wait(&mut self, us: i64) {
            self.now += us;
        }
    }

    #[test]
    fn a_burst_is_allowed_then_refused_and_remaining_counts_down() {
        let mut key = Key::new(10, 60, 10);
        for expected in (0..10).rev() {
            let d = key.hit();
            assert!(d.allowed);
            assert_eq!(d.remaining, expected);
        }
        let refused = key.hit();
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        // One request's worth (6 s) later exactly one more is allowed.
        assert_eq!(refused.retry_after, Duration::from_secs(6));
        assert_eq!(refused.reset, Duration::from_secs(60));
        key.wait(6 * SECOND - 1);
        assert!(!key.hit().allowed);
        key.wait(1);
        let d = key.hit();
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        assert!(!key.hit().allowed);
    }

    #[test]
    fn the_quota_refills_at_the_rate_and_resets_fully() {
        let mut key = Key::new(300, 60, 300);
        for _ in 0..300 {
            assert!(key.hit().allowed);
        }
        assert!(!key.hit().allowed);
        key.wait(SECOND); // 5 requests' worth at 300/min
        for _ in 0..5 {
            assert!(key.hit().allowed);
        }
        assert!(!key.hit().allowed);
        let reset = key.hit().reset;
        key.wait(reset.as_micros() as i64);
        let d = key.hit();
        assert!(d.allowed);
        assert_eq!(d.remaining, 299, "a full quota after reset");
    }

    #[test]
    fn burst_smaller_than_the_limit_spaces_requests() {
        let mut key = Key::new(60, 60, 1);
        assert!(key.hit().allowed);
        assert!(!key.hit().allowed);
        key.wait(SECOND);
        assert!(key.hit().allowed);
        let mut key = Key::new(10, 60, 3);
        assert_eq!(key.hit().remaining, 2);
        assert_eq!(key.hit().remaining, 1);
        assert_eq!(key.hit().remaining, 0);
        assert!(!key.hit().allowed);
    }

    #[test]
    fn an_idle_key_is_the_same_as_an_unknown_one() {
        let rate = Rate::new(10, Duration::from_secs(10), 10);
        let now = 50 * SECOND;
        let (fresh, _) = check(None, now, rate);
        let (idle, _) = check(Some(now - 5 * SECOND), now, rate);
        assert_eq!(fresh, idle);
        assert_eq!(fresh.remaining, 9);
        assert_eq!(fresh.reset, Duration::from_secs(1));
    }

    #[test]
    fn refusal_does_not_consume() {
        let mut key = Key::new(2, 10, 2);
        key.hit();
        key.hit();
        let tat = key.tat;
        for _ in 0..100 {
            assert!(!key.hit().allowed);
        }
        assert_eq!(key.tat, tat);
    }

    #[test]
    fn seconds_round_up() {
        let d = Decision::from_offset(false, 1_500_001, Rate::new(1, Duration::from_secs(1), 1));
        assert_eq!(d.reset_secs(), 2);
        assert_eq!(d.retry_after_secs(), 2);
        let allowed = Decision::from_offset(true, 0, Rate::new(1, Duration::from_secs(1), 1));
        assert_eq!(allowed.retry_after_secs(), 1);
        assert_eq!(allowed.reset_secs(), 0);
    }

    #[test]
    fn extreme_rates_stay_sane() {
        let fast = Rate::new(u32::MAX, Duration::from_secs(1), u32::MAX);
        assert_eq!(fast.interval_us, 1);
        let (d, tat) = check(None, 0, fast);
        assert!(d.allowed && tat == Some(1));
        let slow = Rate::new(1, Duration::from_secs(30 * 86_400), 1);
        let (d, _) = check(None, 0, slow);
        assert_eq!(d.reset_secs(), 30 * 86_400);
    }
}
