//! Operations run from the command line against a database or a running instance.

pub mod backup;
pub mod db_copy;
pub mod dev_webhook;
pub mod queues;
pub mod smoke;
