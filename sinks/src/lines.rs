//! Newline-delimited JSON framing.
//!
//! [`LineBuf`] holds whole lines until they are written out; the stdout
//! and file sinks both frame records with it.

use std::io::{self, Write};

/// Bytes of lines buffered before they are written out.
pub(crate) const BUFFER_BYTES: usize = 256 * 1024;

/// Whole lines (record + `\n`) waiting to be written.
///
/// A record and its newline always enter the buffer together, and a
/// record that does not fit waits until the buffer was written out, so
/// the destination only ever receives whole lines — unless a write fails
/// part-way, which [`write_to`](LineBuf::write_to) reports and resumes.
/// A record longer than the buffer is held alone and written in one go.
#[derive(Debug)]
pub(crate) struct LineBuf {
    buf: Vec<u8>,
    capacity: usize,
    /// Bytes at the front of `buf` already written: the head of a line
    /// that a failed write cut short. `buf` always starts with a line.
    written: usize,
    /// Lines in `buf` (the one whose head is written included).
    lines: usize,
}

impl LineBuf {
    /// An empty buffer that holds up to `capacity` bytes of lines.
    pub(crate) fn new(capacity: usize) -> Self {
        LineBuf {
            buf: Vec::with_capacity(capacity),
            capacity,
            written: 0,
            lines: 0,
        }
    }

    /// Bytes not yet written.
    pub(crate) fn pending(&self) -> usize {
        self.buf.len() - self.written
    }

    /// Lines not yet completely written.
    pub(crate) fn lines(&self) -> usize {
        self.lines
    }

    /// Bytes of the line a failed write cut short that did reach the
    /// destination (0 when the last write failed between lines).
    pub(crate) fn torn(&self) -> usize {
        self.written
    }

    /// Drops every line not yet written; returns how many there were.
    pub(crate) fn discard(&mut self) -> usize {
        self.buf.clear();
        self.written = 0;
        std::mem::take(&mut self.lines)
    }

    /// Whether a record of `json_len` bytes can be pushed without first
    /// writing out what is buffered. An empty buffer takes any record.
    pub(crate) fn has_room(&self, json_len: usize) -> bool {
        self.buf.is_empty() || self.buf.len() + json_len < self.capacity
    }

    /// Appends `json` and its newline.
    pub(crate) fn push(&mut self, json: &[u8]) {
        self.buf.reserve(json.len() + 1);
        self.buf.extend_from_slice(json);
        self.buf.push(b'\n');
        self.lines += 1;
    }

    /// Removes the last pushed record, `json_len` bytes, which was not
    /// completely written; its head, if written, is forgotten too (the
    /// destination must drop it, see [`forget_written`](Self::forget_written)).
    pub(crate) fn unpush(&mut self, json_len: usize) {
        let start = self.buf.len().saturating_sub(json_len + 1);
        self.buf.truncate(start);
        self.written = self.written.min(start);
        self.lines = self.lines.saturating_sub(1);
    }

    /// Writes everything buffered to `out` (without flushing `out`).
    ///
    /// On failure the lines that were completely written are dropped from
    /// the buffer and the rest is kept: a later call resumes exactly where
    /// this one stopped, which suits a stream; a destination that instead
    /// drops the partial line (a file truncated to its last newline) calls
    /// [`forget_written`](Self::forget_written) first.
    pub(crate) fn write_to<W: Write + ?Sized>(&mut self, out: &mut W) -> io::Result<()> {
        while self.written < self.buf.len() {
            match out.write(&self.buf[self.written..]) {
                Ok(0) => {
                    self.keep_unwritten();
                    return Err(io::ErrorKind::WriteZero.into());
                }
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.keep_unwritten();
                    return Err(e);
                }
            }
        }
        self.buf.clear();
        self.written = 0;
        self.lines = 0;
        if self.buf.capacity() > 2 * self.capacity {
            // An oversized record went through: give the memory back.
            self.buf.shrink_to(self.capacity);
        }
        Ok(())
    }

    /// The destination dropped the head of a line that a failed write cut
    /// short: write that line again, whole.
    pub(crate) fn forget_written(&mut self) {
        self.written = 0;
    }

    /// Drops the lines already written completely.
    fn keep_unwritten(&mut self) {
        let done = self.buf[..self.written]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        self.lines -= self.buf[..done].iter().filter(|&&b| b == b'\n').count();
        self.buf.drain(..done);
        self.written -= done;
    }
}

/// Newline-delimited JSON to any writer: a record per line, buffered.
pub(crate) struct LineWriter<W> {
    pub(crate) out: W,
    pub(crate) buf: LineBuf,
}

impl<W: Write> LineWriter<W> {
    /// Buffers `json` and its newline, writing out what is buffered first
    /// if it would not fit.
    pub(crate) fn write(&mut self, json: &[u8]) -> io::Result<()> {
        if !self.buf.has_room(json.len()) {
            self.buf.write_to(&mut self.out)?;
        }
        self.buf.push(json);
        Ok(())
    }

    /// Writes out what is buffered and flushes the writer.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.buf.write_to(&mut self.out)?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(capacity: usize) -> LineWriter<Vec<u8>> {
        LineWriter {
            out: Vec::new(),
            buf: LineBuf::new(capacity),
        }
    }

    /// Accepts `budget` bytes, then fails once with `kind`, then accepts
    /// everything.
    struct Flaky {
        got: Vec<u8>,
        budget: usize,
        writes: usize,
        fail: Option<io::ErrorKind>,
    }

    impl Write for Flaky {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.writes += 1;
            if self.budget == 0 {
                if let Some(kind) = self.fail.take() {
                    return Err(kind.into());
                }
                self.budget = usize::MAX;
            }
            let n = data.len().min(self.budget);
            self.got.extend_from_slice(&data[..n]);
            self.budget -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn only_whole_lines_leave_the_buffer() {
        let mut w = lines(15);
        w.write(b"{\"a\":1}").unwrap(); // 8 bytes with its newline
        w.write(b"{\"b\":2}").unwrap(); // 16 in all: the first line goes out
        assert_eq!(w.out, b"{\"a\":1}\n");
        w.flush().unwrap();
        assert_eq!(w.out, b"{\"a\":1}\n{\"b\":2}\n");
    }

    #[test]
    fn a_record_larger_than_the_buffer_lands_whole() {
        let mut w = lines(16);
        let big = vec![b'x'; 40];
        w.write(b"{}").unwrap();
        w.write(&big).unwrap();
        assert_eq!(
            w.out, b"{}\n",
            "the small record went out before the big one"
        );
        w.write(b"[]").unwrap();
        let mut want = b"{}\n".to_vec();
        want.extend_from_slice(&big);
        want.push(b'\n');
        assert_eq!(w.out, want, "the big record went out whole, alone");
        w.flush().unwrap();
        want.extend_from_slice(b"[]\n");
        assert_eq!(w.out, want);
    }

    #[test]
    fn a_failed_write_resumes_where_it_stopped() {
        let mut buf = LineBuf::new(64);
        buf.push(b"first");
        buf.push(b"second");
        let mut out = Flaky {
            got: Vec::new(),
            budget: 9, // "first\nsec"
            writes: 0,
            fail: Some(io::ErrorKind::BrokenPipe),
        };
        let e = buf.write_to(&mut out).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(buf.pending(), 4, "\"ond\\n\" is left");
        buf.write_to(&mut out).unwrap();
        assert_eq!(out.got, b"first\nsecond\n", "nothing cut, nothing repeated");
        assert_eq!(buf.pending(), 0);
    }

    #[test]
    fn a_destination_that_dropped_a_torn_line_gets_it_again_whole() {
        let mut buf = LineBuf::new(64);
        buf.push(b"first");
        buf.push(b"second");
        let mut out = Flaky {
            got: Vec::new(),
            budget: 9,
            writes: 0,
            fail: Some(io::ErrorKind::StorageFull),
        };
        buf.write_to(&mut out).unwrap_err();
        // The destination (a reopened file) cut its torn last line.
        out.got.truncate(6);
        buf.forget_written();
        buf.write_to(&mut out).unwrap();
        assert_eq!(out.got, b"first\nsecond\n");
    }

    #[test]
    fn lines_are_counted_until_wholly_written() {
        let mut buf = LineBuf::new(64);
        buf.push(b"first");
        buf.push(b"second");
        buf.push(b"third");
        assert_eq!(buf.lines(), 3);
        let mut out = Flaky {
            got: Vec::new(),
            budget: 9, // "first\nsec"
            writes: 0,
            fail: Some(io::ErrorKind::StorageFull),
        };
        buf.write_to(&mut out).unwrap_err();
        assert_eq!(buf.lines(), 2, "\"second\" is not whole yet");
        assert_eq!(buf.torn(), 3, "\"sec\" reached the destination");
        buf.unpush(b"third".len());
        assert_eq!(buf.lines(), 1);
        assert_eq!(buf.discard(), 1);
        assert_eq!((buf.lines(), buf.pending(), buf.torn()), (0, 0, 0));
        buf.push(b"x");
        buf.write_to(&mut out).unwrap();
        assert_eq!(buf.lines(), 0);
    }

    #[test]
    fn an_unpushed_record_is_never_written() {
        let mut buf = LineBuf::new(64);
        buf.push(b"kept");
        buf.push(b"taken back");
        buf.unpush(b"taken back".len());
        let mut out = Vec::new();
        buf.write_to(&mut out).unwrap();
        assert_eq!(out, b"kept\n");
    }

    #[test]
    fn interrupted_writes_are_retried() {
        let mut buf = LineBuf::new(64);
        buf.push(b"x");
        let mut out = Flaky {
            got: Vec::new(),
            budget: 0,
            writes: 0,
            fail: Some(io::ErrorKind::Interrupted),
        };
        buf.write_to(&mut out).unwrap();
        assert_eq!(out.got, b"x\n");
        assert_eq!(out.writes, 2);
    }
}
