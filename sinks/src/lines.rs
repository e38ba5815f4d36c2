use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Stdout, Write};
use std::path::Path;

use flowstat_core::{Record, Sink, SinkError};

const BUFFER_BYTES: usize = 256 * 1024;

/// Newline-delimited JSON to stdout or a file: one record per line.
///
/// Records are buffered; a record and its newline always go into the
/// buffer together, so whatever reaches the file ends with a whole line
/// at every flush.
pub struct LineSink<W: Write + Send> {
    name: String,
    out: BufWriter<W>,
}

impl LineSink<Stdout> {
    /// Writes to standard output.
    pub fn stdout() -> Self {
        LineSink {
            name: "stdout".to_owned(),
            out: BufWriter::with_capacity(BUFFER_BYTES, io::stdout()),
        }
    }
}

impl LineSink<File> {
    /// Writes to `path`, created or truncated.
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(LineSink {
            name: format!("file:{}", path.display()),
            out: BufWriter::with_capacity(BUFFER_BYTES, file),
        })
    }
}

impl<W: Write + Send> LineSink<W> {
    fn io_error(&self, source: io::Error) -> SinkError {
        SinkError::Io {
            sink: self.name.clone(),
            source,
        }
    }
}

impl<W: Write + Send> Sink for LineSink<W> {
    fn name(&self) -> &str {
        &self.name
    }

    fn write(&mut self, record: &Record) -> Result<(), SinkError> {
        let needed = record.json.len() + 1;
        let result = (|| {
            if self.out.capacity() - self.out.buffer().len() < needed {
                self.out.flush()?;
            }
            self.out.write_all(&record.json)?;
            self.out.write_all(b"\n")
        })();
        result.map_err(|e| self.io_error(e))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.out.flush().map_err(|e| self.io_error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowstat_core::RecordKind;

    #[test]
    fn writes_one_line_per_record() {
        let dir = std::env::temp_dir().join(format!("flowstat-lines-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.json");
        let mut sink = LineSink::create(&path).unwrap();
        for i in 0..3 {
            let json = format!(r#"{{"type":"flow_stats","n":{i}}}"#).into_bytes();
            sink.write(&Record {
                kind: RecordKind::FlowStats,
                json,
            })
            .unwrap();
        }
        sink.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.ends_with("{\"type\":\"flow_stats\",\"n\":2}\n"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_record_larger_than_the_buffer_still_lands_whole() {
        let mut sink = LineSink {
            name: "mem".into(),
            out: BufWriter::with_capacity(16, Vec::new()),
        };
        let big = vec![b'x'; 40];
        sink.write(&Record {
            kind: RecordKind::Flow,
            json: b"{}".to_vec(),
        })
        .unwrap();
        sink.write(&Record {
            kind: RecordKind::Flow,
            json: big.clone(),
        })
        .unwrap();
        sink.flush().unwrap();
        let mut want = b"{}\n".to_vec();
        want.extend_from_slice(&big);
        want.push(b'\n');
        assert_eq!(sink.out.get_ref(), &want);
    }
}
