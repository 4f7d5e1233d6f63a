//! The edge stack, one concern per file. Order, outermost first: request id, security headers,
//! access log, problem bodies, body size and timeout limits, panic capture, CORS, then the router.

pub mod access_log;
pub mod errors;
pub mod limits;
pub mod panic;
pub mod request_id;
pub mod security;
