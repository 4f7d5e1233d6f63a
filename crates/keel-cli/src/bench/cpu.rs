//! CPU time of this process and of the local Postgres server's processes, read from `/proc`
//! (Linux), so a benchmark can say which side a phase's time went to. Postgres counts only when it
//! runs on the same machine; elsewhere, or off Linux, there is nothing to read and the figures are
//! absent.

use serde::Serialize;

/// Clock ticks per second of `/proc/*/stat` (`USER_HZ`, 100 on Linux's architectures).
const TICKS_PER_S: f64 = 100.0;

/// CPU ticks used so far.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    own: u64,
    postgres: u64,
}

/// CPU time per unit of work (an event, a job), in microseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CpuPerUnit {
    /// This process: the HTTP client and server, Keel's own work, the database driver.
    pub keel_us: f64,
    /// Every process named `postgres` on the machine (backends, WAL writer, checkpointer).
    pub postgres_us: f64,
}

impl CpuSample {
    /// Now; `None` where `/proc` cannot be read.
    pub fn now() -> Option<CpuSample> {
        let own = ticks(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
        let mut postgres = 0;
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let path = entry.path();
            let is_postgres = std::fs::read_to_string(path.join("comm"))
                .is_ok_and(|comm| comm.trim_end() == "postgres");
            if is_postgres {
                let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
                postgres += ticks(&stat).unwrap_or(0);
            }
        }
        Some(CpuSample { own, postgres })
    }

    /// What was used from `self` to `later`, per unit of `units`.
    pub fn per_unit(self, later: CpuSample, units: usize) -> CpuPerUnit {
        let per =
            |a: u64, b: u64| b.saturating_sub(a) as f64 / TICKS_PER_S * 1e6 / units.max(1) as f64;
        CpuPerUnit {
            keel_us: per(self.own, later.own),
            postgres_us: per(self.postgres, later.postgres),
        }
    }
}

/// `utime + stime` of one `/proc/PID/stat` line (the 14th and 15th fields; the command name in
/// parentheses may hold spaces, so fields are counted after its closing parenthesis).
fn ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_read_after_the_command_name() {
        let stat = "4242 (post gres) S 1 4242 4242 0 -1 4194560 100 0 0 0 37 5 0 0 20 0 1 0 9 0 0";
        assert_eq!(ticks(stat), Some(42));
        assert_eq!(ticks("garbage"), None);
    }

    #[test]
    fn per_unit_spreads_the_difference() {
        let a = CpuSample {
            own: 10,
            postgres: 100,
        };
        let b = CpuSample {
            own: 20,
            postgres: 300,
        };
        let spent = a.per_unit(b, 1000);
        assert!((spent.keel_us - 100.0).abs() < 1e-9);
        assert!((spent.postgres_us - 2000.0).abs() < 1e-9);
    }
}
