pub mod config;
pub mod migrate;
pub mod serve;
pub mod smoke;
