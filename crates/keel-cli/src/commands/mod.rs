pub mod config;
pub mod flags;
pub mod migrate;
pub mod queue;
pub mod report;
pub mod schedules;
pub mod serve;
pub mod smoke;
