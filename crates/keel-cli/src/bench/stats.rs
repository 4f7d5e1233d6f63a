//! Figures the benchmarks share.

/// The `q` quantile of ascending `sorted` (nearest rank), rounded to the microsecond; 0 when empty.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    (sorted[rank - 1] * 1000.0).round() / 1000.0
}
