//! flowstat-plugins: processors that turn flow events into records.
//!
//! Each module is one [`Plugin`](flowstat_core::Plugin). [`CorePlugin`]
//! produces the telemetry of SPEC.md: `flow`, `flow_stats`, `flow_purge`,
//! `agent_status` and `interface_stats`, encoded once as JSON. Plugins do
//! no I/O; the records they return go to the sinks.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod core_plugin;
mod json;

pub use core_plugin::{CorePlugin, agent_hello};
