//! The edge stack, one concern per file, driven by [`edge`]: request id, body size and timeout
//! limits, problem bodies, security headers, access log and metrics; inside it panic capture and
//! CORS, then the router.

pub mod access_log;
pub mod edge;
pub mod errors;
pub mod input;
pub mod limits;
pub mod panic;
pub mod rate_limit;
pub mod request_id;
pub mod security;
