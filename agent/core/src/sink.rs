use std::io;

use crate::Record;

/// An output for records: stdout, a file, a socket server, ZeroMQ...
///
/// `write` is the one required method. A sink writes whole records: if it
/// fails part-way it must not leave a partial record where a consumer will
/// read it (a file sink writes a record and its newline in one call).
pub trait Sink: Send {
    /// The sink's name, used in logs and in `agent_status`.
    fn name(&self) -> &str;

    /// Writes one record.
    fn write(&mut self, record: &Record) -> Result<(), SinkError>;

    /// Pushes buffered records to their destination. Called at the end of
    /// every interval and at shutdown.
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Why a sink could not deliver.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Writing failed.
    #[error("sink {sink} failed")]
    Io {
        /// The sink's name.
        sink: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}
