//! Process-wide metrics in the Prometheus text format: counters, gauges and histograms keyed by
//! label values, cheap on the hot path (a read lock and atomic adds once a series exists).

mod process;
mod registry;
mod scrape;

pub use registry::{Counter, CounterSeries, Histogram, HistogramHandle, Registry};
pub use scrape::Scrape;

use std::sync::OnceLock;

/// Request duration buckets, in seconds.
pub const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Job duration buckets, in seconds.
pub const JOB_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
];

/// The families every process registers.
pub struct Metrics {
    pub http_requests: Counter,
    pub http_duration: Histogram,
    pub http_in_flight: Counter,
    /// The one series of `http_in_flight`.
    pub in_flight: CounterSeries,
    pub jobs_enqueued: Counter,
    pub jobs_completed: Counter,
    pub jobs_failed: Counter,
    pub jobs_discarded: Counter,
    pub job_duration: Histogram,
    pub schedule_firings: Counter,
    pub schedule_last_fired: Counter,
    pub webhooks: Counter,
    pub app_events: Counter,
    pub app_events_backlog: Counter,
    pub gateway_requests: Counter,
    pub gateway_duration: Histogram,
    pub gateway_upstream_errors: Counter,
    pub storage_operations: Counter,
    pub storage_bytes: Counter,
    pub registry: Registry,
}

/// The metrics of this process.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let registry = Registry::default();
        let http_in_flight = registry.gauge(
            "keel_http_requests_in_flight",
            "HTTP requests being served.",
            &[],
        );
        Metrics {
            in_flight: http_in_flight.series(&[]),
            http_in_flight,
            http_requests: registry.counter(
                "keel_http_requests_total",
                "HTTP requests by method, matched route and status.",
                &["method", "route", "status"],
            ),
            http_duration: registry.histogram(
                "keel_http_request_duration_seconds",
                "HTTP request duration by method and matched route.",
                &["method", "route"],
                HTTP_BUCKETS,
            ),
            jobs_enqueued: registry.counter(
                "keel_jobs_enqueued_total",
                "Jobs enqueued by queue and kind.",
                &["queue", "kind"],
            ),
            jobs_completed: registry.counter(
                "keel_jobs_completed_total",
                "Jobs completed by queue and kind.",
                &["queue", "kind"],
            ),
            jobs_failed: registry.counter(
                "keel_jobs_failed_total",
                "Failed attempts that will be retried, by queue and kind.",
                &["queue", "kind"],
            ),
            jobs_discarded: registry.counter(
                "keel_jobs_discarded_total",
                "Jobs discarded after their last attempt, by queue and kind.",
                &["queue", "kind"],
            ),
            job_duration: registry.histogram(
                "keel_job_duration_seconds",
                "Job attempt duration by queue and kind.",
                &["queue", "kind"],
                JOB_BUCKETS,
            ),
            schedule_firings: registry.counter(
                "keel_schedule_firings_total",
                "Schedule firings by this process.",
                &["schedule"],
            ),
            schedule_last_fired: registry.gauge(
                "keel_schedule_last_fired_timestamp_seconds",
                "When this process last fired each schedule (Unix seconds).",
                &["schedule"],
            ),
            webhooks: registry.counter(
                "keel_webhooks_total",
                "Billing webhook deliveries by provider and outcome (applied, ignored, duplicate, \
                 sandbox-ignored, unauthorized, invalid, error).",
                &["provider", "outcome"],
            ),
            app_events: registry.counter(
                "keel_app_events_total",
                "Delivery attempts of events for the app by type and outcome (delivered, retry, refused).",
                &["type", "outcome"],
            ),
            app_events_backlog: registry.gauge(
                "keel_app_events_backlog",
                "Events for the app written and not yet delivered, as the dispatcher last counted.",
                &[],
            ),
            gateway_requests: registry.counter(
                "keel_gateway_requests_total",
                "Requests to the app through the gateway by rule and status class (2xx, 4xx…).",
                &["rule", "class"],
            ),
            gateway_duration: registry.histogram(
                "keel_gateway_request_duration_seconds",
                "Time to the head of the gateway's answer, by rule.",
                &["rule"],
                HTTP_BUCKETS,
            ),
            gateway_upstream_errors: registry.counter(
                "keel_gateway_upstream_errors_total",
                "Requests the app did not answer, by rule and kind (connect, broken, timeout).",
                &["rule", "kind"],
            ),
            storage_operations: registry.counter(
                "keel_storage_operations_total",
                "Object storage operations by operation (put, get, head, delete, list, presign) \
                 and outcome (ok, not_found, error).",
                &["op", "outcome"],
            ),
            storage_bytes: registry.counter(
                "keel_storage_bytes_total",
                "Bytes Keel moved to (put) and from (get) object storage, and bytes of confirmed \
                 direct uploads (upload).",
                &["op"],
            ),
            registry,
        }
    })
}

/// Everything registered, plus process CPU and memory, in the text exposition format.
pub fn render() -> String {
    let mut scrape = Scrape::new();
    process_samples(&mut scrape);
    scrape.finish()
}

/// Process CPU, memory, file descriptors and start time (Linux).
pub fn process_samples(scrape: &mut Scrape) {
    process::render(scrape);
}
