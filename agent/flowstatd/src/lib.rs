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
pub mod merge;
pub mod outputs;
pub mod pipeline;
mod privileges;
pub mod replay;
mod resources;
mod signals;
mod sources;
pub mod status;
pub mod tail;
pub mod worker;

pub use config::{Config, ConfigError};
pub use pipeline::PipelineConfig;
pub use replay::{ReplayOptions, ReplaySummary, replay};

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use flowstat_core::{Delivery, Record, Sink, SinkError};

    /// A sink that keeps every record it is given.
    #[derive(Clone, Default)]
    pub(crate) struct Collect(Arc<Mutex<Vec<Record>>>);

    impl Collect {
        /// The records' JSON, as text.
        pub(crate) fn lines(&self) -> Vec<String> {
            let records = self.0.lock().unwrap();
            records
                .iter()
                .map(|r| String::from_utf8_lossy(&r.json).into_owned())
                .collect()
        }
    }

    impl Sink for Collect {
        fn name(&self) -> &str {
            "collect"
        }
        fn open(&mut self) -> Result<(), SinkError> {
            Ok(())
        }
        fn write(&mut self, record: &Record) -> Result<Delivery, SinkError> {
            self.0.lock().unwrap().push(record.clone());
            Ok(Delivery::Sent)
        }
    }
}
