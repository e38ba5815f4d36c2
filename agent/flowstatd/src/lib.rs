//! flowstatd: the agent. Reads the configuration, builds capture sources,
//! the flow table, plugins and sinks, and wires them together. The binary
//! (`main.rs`) is the command line on top of this library; tests and
//! benches use the library directly.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod agent;
pub mod config;
pub mod dispatch;
mod ifaces;
pub mod interval;
pub mod listing;
pub mod merge;
pub mod outputs;
pub mod pipeline;
mod privileges;
pub mod replay;
mod resources;
pub mod signals;
mod sources;
pub mod status;
pub mod tail;
pub mod top;
pub mod worker;

pub use config::{Config, ConfigError};
pub use pipeline::PipelineConfig;
pub use replay::{ReplayOptions, ReplaySummary, replay};
