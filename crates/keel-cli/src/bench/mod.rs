//! Built-in load generators (`keel bench …`), written against the library's public API. They
//! print figures; docs/BENCHMARKS.md holds the results and the commands that produced them.

pub mod cpu;
pub mod http;
pub mod http_jobs;
pub mod queue;
pub mod queue_trace;
pub mod stats;
pub mod upstream;
pub mod webhooks;
