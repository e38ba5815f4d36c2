//! End-to-end tests: capture files in, records out, judged by golden files
//! and by tshark. One module per area; shared helpers in `common`.
#![allow(clippy::unwrap_used, missing_docs)]

mod analytics;
mod api;
mod cli;
mod clickhouse;
mod common;
mod dashboard;
mod disk_full;
mod dpi;
mod fuzz;
mod geo;
mod golden;
mod http;
mod ipfix;
mod ja4;
mod kafka;
mod live;
mod mqtt;
mod oracle;
mod pipeline;
mod records;
mod robustness;
mod schema;
mod sinks;
mod terminal;
mod top;
