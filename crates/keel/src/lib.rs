//! Keel: the production backend for subscription apps. API, worker and scheduler in one binary,
//! usable as a library by Rust applications.

pub mod auth;
pub mod billing;
pub mod bytesize;
pub mod clock;
pub mod config;
pub mod console_sessions;
pub mod crypto;
pub mod events;
pub mod flags;
pub mod gateway;
pub mod http;
pub mod jobs;
pub mod kinds;
pub mod metrics;
pub mod ops;
pub mod outbound;
pub mod percent;
pub mod privacy;
pub mod probe;
pub mod ratelimit;
pub mod redis_target;
pub mod runtime;
pub mod schedule;
pub mod services;
pub mod storage;
pub mod telemetry;
pub mod users;

pub use keel_domain as domain;
pub use keel_store as store;

pub use config::Settings;
pub use runtime::Server;
