//! The recipes example as real processes, on both engines.

mod common;
mod migrations;
mod serve;
