//! A small metrics registry: families of series keyed by label values.

use std::collections::HashMap;
use std::fmt::Write;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

type Labels = Vec<String>;
/// One series: its label values and its value.
type Series<S> = (Labels, Arc<S>);

#[derive(Debug)]
struct Family<S> {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    label_names: &'static [&'static str],
    /// Keyed by a hash of the label values; a hit allocates nothing.
    series: RwLock<SeriesMap<S>>,
}

/// FNV-1a over the label values, eight bytes at a time, each value followed by a separator, then
/// mixed so every input bit reaches the low bits the map indexes by: cheap for the short label
/// values of the hot path (method, route, status). Collisions are resolved by comparing labels.
fn hash(labels: &[&str]) -> u64 {
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for l in labels {
        let mut words = l.as_bytes().chunks_exact(8);
        for w in &mut words {
            let word = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            h = (h ^ word).wrapping_mul(PRIME);
        }
        for b in words.remainder() {
            h = (h ^ u64::from(*b)).wrapping_mul(PRIME);
        }
        h = (h ^ 0xff).wrapping_mul(PRIME);
    }
    h ^= h >> 32;
    h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^ (h >> 29)
}

/// The map's own hasher: its keys are already hashes.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

fn same(stored: &Labels, labels: &[&str]) -> bool {
    stored.len() == labels.len() && stored.iter().zip(labels).all(|(a, b)| a == b)
}

type SeriesMap<S> = HashMap<u64, Vec<Series<S>>, BuildHasherDefault<Prehashed>>;

/// The series of `labels`, hashed to `key`, if the map has it.
fn find<'m, S>(series: &'m SeriesMap<S>, key: u64, labels: &[&str]) -> Option<&'m Arc<S>> {
    series
        .get(&key)
        .and_then(|v| v.iter().find(|(l, _)| same(l, labels)))
        .map(|(_, s)| s)
}

impl<S: Default> Family<S> {
    /// Runs `f` on the series of `labels`; an existing series is used under the read lock, with no
    /// reference count taken.
    fn with<R>(&self, labels: &[&str], f: impl FnOnce(&S) -> R) -> R {
        let key = hash(labels);
        if let Ok(series) = self.series.read() {
            if let Some(s) = find(&series, key, labels) {
                return f(s);
            }
        }
        f(&self.create(key, labels))
    }

    fn get(&self, labels: &[&str]) -> Arc<S> {
        let key = hash(labels);
        if let Ok(series) = self.series.read() {
            if let Some(s) = find(&series, key, labels) {
                return s.clone();
            }
        }
        self.create(key, labels)
    }

    /// The series of `labels` (hashed to `key`) under the write lock: the one another thread
    /// made meanwhile, or a new one.
    fn create(&self, key: u64, labels: &[&str]) -> Arc<S> {
        match self.series.write() {
            Ok(mut series) => {
                let bucket = series.entry(key).or_default();
                if let Some((_, s)) = bucket.iter().find(|(l, _)| same(l, labels)) {
                    return s.clone();
                }
                let values: Labels = labels.iter().map(|l| l.to_string()).collect();
                let s = Arc::new(S::default());
                bucket.push((values, s.clone()));
                s
            }
            Err(_) => Arc::new(S::default()),
        }
    }

    /// Every series, in label order.
    fn snapshot(&self) -> Vec<Series<S>> {
        let mut all: Vec<Series<S>> = self
            .series
            .read()
            .map(|s| s.values().flatten().cloned().collect())
            .unwrap_or_default();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// A counter or gauge family (gauges may go down).
#[derive(Debug, Clone)]
pub struct Counter(Arc<Family<AtomicI64>>);

/// A histogram family with fixed buckets.
#[derive(Debug, Clone)]
pub struct Histogram(Arc<Family<HistogramSeries>>, Arc<Vec<f64>>);

/// At most this many buckets per histogram (the last one is `+Inf`).
const MAX_BUCKETS: usize = 24;

#[derive(Debug, Default)]
pub struct HistogramSeries {
    buckets: [AtomicU64; MAX_BUCKETS],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

/// One series of a counter or gauge, held for updates without a lookup.
#[derive(Debug, Clone)]
pub struct CounterSeries(Arc<AtomicI64>);

impl CounterSeries {
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
}

impl Counter {
    /// The series of `labels`, for a hot path that updates it on every request.
    pub fn series(&self, labels: &[&str]) -> CounterSeries {
        CounterSeries(self.0.get(labels))
    }

    pub fn inc(&self, labels: &[&str]) {
        self.add(labels, 1);
    }

    pub fn add(&self, labels: &[&str], n: i64) {
        self.0.with(labels, |s| s.fetch_add(n, Ordering::Relaxed));
    }

    pub fn set(&self, labels: &[&str], value: i64) {
        self.0.with(labels, |s| s.store(value, Ordering::Relaxed));
    }

    pub fn get(&self, labels: &[&str]) -> i64 {
        self.0.with(labels, |s| s.load(Ordering::Relaxed))
    }
}

/// One series of a histogram, held for observations without a lookup.
#[derive(Debug, Clone)]
pub struct HistogramHandle(Arc<HistogramSeries>, Arc<Vec<f64>>);

impl HistogramHandle {
    pub fn observe(&self, seconds: f64) {
        record(&self.0, &self.1, seconds);
    }
}

impl Histogram {
    /// The series of `labels`, for a hot path that observes it on every request.
    pub fn series(&self, labels: &[&str]) -> HistogramHandle {
        HistogramHandle(self.0.get(labels), self.1.clone())
    }

    pub fn observe(&self, labels: &[&str], seconds: f64) {
        self.0.with(labels, |s| record(s, &self.1, seconds));
    }
}

fn record(series: &HistogramSeries, bounds: &[f64], seconds: f64) {
    let index = bounds
        .iter()
        .position(|b| seconds <= *b)
        .unwrap_or(bounds.len());
    if let Some(bucket) = series.buckets.get(index) {
        bucket.fetch_add(1, Ordering::Relaxed);
    }
    series.count.fetch_add(1, Ordering::Relaxed);
    series
        .sum_micros
        .fetch_add((seconds.max(0.0) * 1e6) as u64, Ordering::Relaxed);
}

#[derive(Debug, Default)]
pub struct Registry {
    counters: Mutex<Vec<Counter>>,
    histograms: Mutex<Vec<Histogram>>,
}

fn family<S>(
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    labels: &'static [&'static str],
) -> Family<S> {
    Family {
        name,
        help,
        kind,
        label_names: labels,
        series: RwLock::new(HashMap::default()),
    }
}

impl Registry {
    pub fn counter(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Counter {
        let c = Counter(Arc::new(family(name, help, "counter", labels)));
        if let Ok(mut all) = self.counters.lock() {
            all.push(c.clone());
        }
        c
    }

    pub fn gauge(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Counter {
        let c = Counter(Arc::new(family(name, help, "gauge", labels)));
        if let Ok(mut all) = self.counters.lock() {
            all.push(c.clone());
        }
        c
    }

    pub fn histogram(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        buckets: &[f64],
    ) -> Histogram {
        let buckets = &buckets[..buckets.len().min(MAX_BUCKETS - 1)];
        let h = Histogram(
            Arc::new(family(name, help, "histogram", labels)),
            Arc::new(buckets.to_vec()),
        );
        if let Ok(mut all) = self.histograms.lock() {
            all.push(h.clone());
        }
        h
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for c in self.counters.lock().map(|v| v.clone()).unwrap_or_default() {
            let f = &c.0;
            header(&mut out, f.name, f.help, f.kind);
            for (labels, value) in f.snapshot() {
                let _ = writeln!(
                    out,
                    "{}{} {}",
                    f.name,
                    label_text(f.label_names, &labels, None),
                    value.load(Ordering::Relaxed)
                );
            }
        }
        for h in self
            .histograms
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
        {
            let f = &h.0;
            header(&mut out, f.name, f.help, f.kind);
            for (labels, series) in f.snapshot() {
                let mut cumulative = 0u64;
                for (i, bound) in h.1.iter().enumerate() {
                    cumulative += series
                        .buckets
                        .get(i)
                        .map_or(0, |b| b.load(Ordering::Relaxed));
                    let le = format_float(*bound);
                    let _ = writeln!(
                        out,
                        "{}_bucket{} {cumulative}",
                        f.name,
                        label_text(f.label_names, &labels, Some(&le))
                    );
                }
                let count = series.count.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "{}_bucket{} {count}",
                    f.name,
                    label_text(f.label_names, &labels, Some("+Inf"))
                );
                let sum = series.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
                let _ = writeln!(
                    out,
                    "{}_sum{} {sum}",
                    f.name,
                    label_text(f.label_names, &labels, None)
                );
                let _ = writeln!(
                    out,
                    "{}_count{} {count}",
                    f.name,
                    label_text(f.label_names, &labels, None)
                );
            }
        }
        out
    }
}

pub(crate) fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn format_float(v: f64) -> String {
    let s = format!("{v}");
    if s.contains('.') || s.contains('e') {
        s
    } else {
        format!("{s}.0")
    }
}

/// `{a="x",b="y"}` with values escaped as the format requires; empty when there are none.
pub(crate) fn label_text(names: &[&str], values: &[String], le: Option<&str>) -> String {
    let mut parts: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// A label value as the format requires: `\`, `"` and newlines escaped.
pub(crate) fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let r = Registry::default();
        let c = r.counter("t_total", "help", &["a"]);
        c.inc(&["x\"y"]);
        c.add(&["x\"y"], 2);
        let h = r.histogram("t_seconds", "help", &[], &[0.1, 1.0]);
        h.observe(&[], 0.05);
        h.observe(&[], 0.5);
        h.observe(&[], 5.0);
        let text = r.render();
        assert!(text.contains("t_total{a=\"x\\\"y\"} 3"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"0.1\"} 1"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"1.0\"} 2"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"+Inf\"} 3"), "{text}");
        assert!(text.contains("t_seconds_count 3"), "{text}");
    }

    #[test]
    fn label_values_split_differently_are_different_series() {
        let r = Registry::default();
        let c = r.counter("split_total", "help", &["a", "b"]);
        // Values that fill whole eight-byte words and ones that do not, and the same bytes split
        // at another place: each is a series of its own.
        let pairs = [
            ("GET", "/v1/me/entitlements"),
            ("GE", "T/v1/me/entitlements"),
            ("POST0000", "/v1/jobs"),
            ("POST000", "0/v1/jobs"),
            ("", ""),
        ];
        for (i, (a, b)) in pairs.iter().enumerate() {
            c.add(&[a, b], i as i64 + 1);
        }
        for (i, (a, b)) in pairs.iter().enumerate() {
            assert_eq!(c.get(&[a, b]), i as i64 + 1, "{a:?} {b:?}");
        }
        let text = r.render();
        assert!(
            text.contains("split_total{a=\"GE\",b=\"T/v1/me/entitlements\"} 2"),
            "{text}"
        );
    }
}
