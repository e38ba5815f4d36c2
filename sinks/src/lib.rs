//! flowstat-sinks: outputs for records.
//!
//! Each module is one [`Sink`](flowstat_core::Sink): [`LineSink`] writes
//! newline-delimited JSON to stdout or a file. [`SinkSet`] fans every
//! record out to the sinks that subscribed to its type and keeps their
//! delivery counters for `agent_status`.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod lines;
mod set;

pub use lines::LineSink;
pub use set::SinkSet;
