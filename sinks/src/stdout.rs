//! The stdout sink: newline-delimited JSON to standard output.

use std::io::{self, Stdout};

use flowstat_core::{Delivery, Record, Sink, SinkError};
use serde::Deserialize;

use crate::config::{BuildSink, ConfigProblem, SinkContext};
use crate::lines::{BUFFER_BYTES, LineBuf, LineWriter};

/// Newline-delimited JSON to standard output: one record per line.
///
/// Records are buffered (256 KiB); a record and its newline are always
/// buffered together, so each flush ends on a whole line. After a failed
/// write the next one resumes where it stopped, so a line is never cut or
/// repeated.
pub struct StdoutSink {
    lines: LineWriter<Stdout>,
    /// A command-line filter's output (see [`StdoutSink::for_filter`]).
    filter: bool,
}

impl StdoutSink {
    /// Writes to standard output.
    pub fn new() -> Self {
        StdoutSink {
            lines: LineWriter {
                out: io::stdout(),
                buf: LineBuf::new(BUFFER_BYTES),
            },
            filter: false,
        }
    }

    /// Standard output of a command-line filter (`flowstatd replay`): when
    /// the reader goes away (`| head`), the process ends at once with
    /// status 0, as a filter that SIGPIPE ends would, rather than logging
    /// the error and retrying as an agent's sink does.
    pub fn for_filter() -> Self {
        StdoutSink {
            filter: true,
            ..StdoutSink::new()
        }
    }

    /// The sink error for a failed write to standard output.
    fn error(filter: bool, e: io::Error) -> SinkError {
        if filter && e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        SinkError::io("stdout", "cannot write to stdout", e)
    }
}

impl Default for StdoutSink {
    /// Writes to standard output.
    fn default() -> Self {
        StdoutSink::new()
    }
}

impl Sink for StdoutSink {
    fn name(&self) -> &str {
        "stdout"
    }

    fn open(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn write(&mut self, record: &Record) -> Result<Delivery, SinkError> {
        let filter = self.filter;
        self.lines
            .write(&record.json)
            .map_err(|e| Self::error(filter, e))?;
        Ok(Delivery::Sent)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let filter = self.filter;
        self.lines.flush().map_err(|e| Self::error(filter, e))
    }
}

/// `type = "stdout"`: no keys of its own.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StdoutConfig {}

impl BuildSink for StdoutConfig {
    fn problems(&self) -> Vec<ConfigProblem> {
        Vec::new()
    }

    fn build(&self, _: &SinkContext) -> Result<Box<dyn Sink>, ConfigProblem> {
        Ok(Box::new(StdoutSink::new()))
    }
}
