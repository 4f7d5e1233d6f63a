//! Per-rule metrics of the gateway: requests by status class, the time to the answer's head, and
//! the requests the app did not answer. Each rule's series are looked up once, when the gateway
//! is built, so a request only adds to atomics.

use axum::http::StatusCode;

use crate::metrics::{CounterSeries, HistogramHandle};

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// One rule's series.
#[derive(Debug, Clone)]
pub struct RuleMetrics {
    label: std::sync::Arc<str>,
    by_class: [CounterSeries; 5],
    duration: HistogramHandle,
}

impl RuleMetrics {
    pub fn new(label: std::sync::Arc<str>) -> Self {
        let metrics = crate::metrics::global();
        let by_class = CLASSES.map(|class| metrics.gateway_requests.series(&[&label, class]));
        let duration = metrics.gateway_duration.series(&[&label]);
        RuleMetrics {
            label,
            by_class,
            duration,
        }
    }

    /// One answer, `seconds` after the request arrived.
    pub fn answered(&self, status: StatusCode, seconds: f64) {
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        if let Some(series) = self.by_class.get(class) {
            series.add(1);
        }
        self.duration.observe(seconds);
    }

    /// A request the app did not answer (`connect`, `broken`, `timeout`).
    pub fn upstream_error(&self, kind: &str) {
        crate::metrics::global()
            .gateway_upstream_errors
            .inc(&[&self.label, kind]);
    }
}
