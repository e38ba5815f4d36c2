//! A sink that keeps every record in memory: for tests, and for programs
//! that run the pipeline as a library and read its records themselves.

use std::sync::{Arc, Mutex, PoisonError};

use flowstat_core::{Delivery, Record, Sink, SinkError};

/// Keeps every record it is given; clones share the records.
#[derive(Clone, Debug, Default)]
pub struct MemorySink(Arc<Mutex<Vec<Record>>>);

impl MemorySink {
    /// The records' JSON so far, as text, one a record.
    pub fn lines(&self) -> Vec<String> {
        let records = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        records
            .iter()
            .map(|r| String::from_utf8_lossy(&r.json).into_owned())
            .collect()
    }
}

impl Sink for MemorySink {
    fn name(&self) -> &str {
        "memory"
    }

    fn open(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn write(&mut self, record: &Record) -> Result<Delivery, SinkError> {
        let mut records = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        records.push(record.clone());
        Ok(Delivery::Sent)
    }
}
