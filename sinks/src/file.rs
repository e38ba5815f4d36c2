//! The file sink: newline-delimited JSON to a file, rotated by size or
//! age, logrotate style.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use flowstat_core::{Delivery, Record, Settled, Sink, SinkError};
use nix::errno::Errno;

use crate::lines::{BUFFER_BYTES, LineBuf};

mod config;

pub use config::FileConfig;

/// When the file sink asks the kernel to put its data on disk (`fsync`);
/// the config's `fsync` names it in snake case (`"rotate"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// Never: the kernel writes the data back when it likes.
    Never,
    /// Before a file is rotated, and at close.
    #[default]
    Rotate,
    /// As [`Rotate`](FsyncPolicy::Rotate), and at every flush (whenever
    /// the sink's queue runs empty).
    Flush,
    /// After every record: slow, but a crash loses nothing written.
    Always,
}

/// Where and how the file sink writes.
#[derive(Clone, Debug)]
pub struct FileOptions {
    /// The live file. Rotated files are `PATH.1` (newest) to `PATH.N`
    /// (oldest), with `.gz` appended when [`gzip`](Self::gzip) is on.
    pub path: PathBuf,
    /// Continue an existing file (true, the default: an agent restart
    /// appends); false truncates it when the sink first opens it (a
    /// reopen after an error then appends).
    pub append: bool,
    /// Rotate before a record would take the live file past this many
    /// bytes. A record is never split across files, and one larger than
    /// this gets a file to itself. `None` (the default): no limit.
    pub rotate_bytes: Option<u64>,
    /// Rotate once the live file has been open this many seconds (real
    /// time, not packet time), checked at every write and poll so an idle
    /// agent still rotates. An empty file is not rotated: its period
    /// starts again. `None` (the default): no limit.
    pub rotate_secs: Option<u64>,
    /// Rotated files kept (default 5); older ones are deleted. With 0 the
    /// live file is deleted at rotation.
    pub keep: u32,
    /// Compress rotated files with gzip, as `PATH.1.gz` (default false).
    pub gzip: bool,
    /// When to fsync (default [`FsyncPolicy::Rotate`]).
    pub fsync: FsyncPolicy,
    /// The user and group (uid, gid) given the file's directory when the
    /// sink makes it (default `None`: the process's own).
    pub owner: Option<(u32, u32)>,
}

impl FileOptions {
    /// Rotated files kept by default.
    pub const KEEP: u32 = 5;

    /// Appends to `path`, never rotated, fsynced at close.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileOptions {
            path: path.into(),
            append: true,
            rotate_bytes: None,
            rotate_secs: None,
            keep: Self::KEEP,
            gzip: false,
            fsync: FsyncPolicy::default(),
            owner: None,
        }
    }
}

/// Newline-delimited JSON to a file, one record per line, rotated by size
/// or age.
///
/// Only whole lines stay in the file: records are buffered (256 KiB) with
/// their newline, and the buffer is written out before a record that
/// would not fit. A write that fails part-way (the disk full) is cut back
/// at once to the end of the last line it wrote whole (`ftruncate`), and a
/// line torn by a crash is cut off when the file is next opened, so the
/// file always ends with a whole line.
///
/// A record is [`Delivery::Pending`] while buffered and counts as sent
/// (in [`settled`](Sink::settled)) once its line is wholly in the file.
/// Out of space (`ENOSPC`, `EDQUOT`) the sink stays open and its lines
/// wait in the buffer, whole: [`poll`](Sink::poll) says "not ready" and
/// tries them again each time, a record that finds the buffer full is
/// [`Delivery::Retry`] (it waits in the runtime's queue, which drops the
/// oldest when full), and writing resumes as soon as there is room again.
/// What is still buffered at [`close`](Sink::close) on a full disk is
/// counted dropped. Other write failures close the file and return an
/// error, after the same cut: the runtime reopens the sink, and the
/// buffered lines are written then.
///
/// Rotation is logrotate's: `PATH.k` becomes `PATH.k+1`, what would pass
/// [`keep`](FileOptions::keep) is deleted, `PATH` becomes `PATH.1` (then
/// `PATH.1.gz`, written under a temporary name and renamed), and a new
/// `PATH` is started. Reading `PATH.N` … `PATH.1`, then `PATH`, gives the
/// records in the order they were written. A rotation goes ahead on a full
/// disk (it may free room: the oldest file is deleted): the rotated file
/// holds whole lines, and the lines still buffered start the new file.
/// With gzip, the unit that is whole or absent is the compressed file: it
/// is one gzip member written under a temporary name and renamed into
/// place only once complete; when that fails (no room for it) the
/// temporary file is removed and the rotated file stays uncompressed.
///
/// A [`write`](Sink::write) that fails leaves no trace of its record,
/// except when an fsync failed ([`FsyncPolicy::Always`]): the record may
/// then be in the file.
pub struct FileSink {
    name: String,
    options: FileOptions,
    /// The live file, while open; `None` after a failure, until reopened.
    file: Option<File>,
    /// Bytes in the live file, written out of `buf`.
    file_bytes: u64,
    /// The live file is a regular file: a device or a FIFO is neither
    /// repaired nor rotated.
    regular: bool,
    buf: LineBuf,
    /// When the live file was started, for `rotate_secs`.
    started: Option<Instant>,
    /// Whether `open` ran successfully once (`append: false` truncates
    /// only then).
    opened_once: bool,
    /// The last write-out ran out of space: lines wait in `buf`.
    full: bool,
    /// Records taken as [`Delivery::Pending`] and since wholly written,
    /// not yet reported by `settled`.
    sent: u64,
    /// Records taken as [`Delivery::Pending`] and given up (at close, out
    /// of space), not yet reported by `settled`.
    dropped: u64,
    clock: Box<dyn Fn() -> Instant + Send>,
    /// Tests: bytes the "disk" still takes before writes fail with
    /// `ENOSPC` (`None`: no limit but the real one).
    #[cfg(test)]
    room: Option<u64>,
}

impl FileSink {
    /// A sink writing as `options` say; nothing is opened before
    /// [`open`](Sink::open).
    pub fn new(options: FileOptions) -> Self {
        FileSink::with_clock(options, Box::new(Instant::now))
    }

    /// A sink that reads the time from `clock`.
    fn with_clock(options: FileOptions, clock: Box<dyn Fn() -> Instant + Send>) -> Self {
        FileSink {
            name: format!("file:{}", options.path.display()),
            options,
            file: None,
            file_bytes: 0,
            regular: false,
            buf: LineBuf::new(BUFFER_BYTES),
            started: None,
            opened_once: false,
            full: false,
            sent: 0,
            dropped: 0,
            clock,
            #[cfg(test)]
            room: None,
        }
    }

    fn path(&self) -> &Path {
        &self.options.path
    }

    /// The k-th rotated file, compressed or not.
    fn rotated(&self, k: u32, gz: bool) -> PathBuf {
        with_suffix(self.path(), &format!(".{k}{}", if gz { ".gz" } else { "" }))
    }

    fn error(&self, context: String, e: io::Error) -> SinkError {
        SinkError::io(&self.name, context, e)
    }

    fn not_open(&self) -> SinkError {
        self.error(
            format!("{} is not open", self.path().display()),
            io::Error::new(io::ErrorKind::NotConnected, "not open since a failure"),
        )
    }

    /// Opens the live file, cuts off a torn last line, and repairs what a
    /// crash during a rotation left.
    fn open_live(&mut self) -> Result<(), SinkError> {
        let path = self.path().to_owned();
        let truncate = !self.options.append && !self.opened_once;
        if let Err(e) = crate::dirs::make_parent(&path, self.options.owner) {
            return Err(self.error(
                format!("cannot make the directory of {}", path.display()),
                e,
            ));
        }
        let opened = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path);
        let mut file = match opened {
            Ok(file) => file,
            Err(e) => return Err(self.error(format!("cannot open {}", path.display()), e)),
        };
        let meta = file
            .metadata()
            .map_err(|e| self.error(format!("cannot stat {}", path.display()), e))?;
        self.regular = meta.is_file();
        self.file_bytes = 0;
        if self.regular {
            let len = if truncate { 0 } else { meta.len() };
            if truncate {
                file.set_len(0)
                    .map_err(|e| self.error(format!("cannot truncate {}", path.display()), e))?;
            }
            let (kept, removed) = cut_torn_line(&mut file, len).map_err(|e| {
                self.error(
                    format!("cannot cut the torn last line of {}", path.display()),
                    e,
                )
            })?;
            if removed > 0 {
                tracing::warn!(
                    file = %path.display(),
                    bytes_removed = removed,
                    "cut off a torn last line (left by a crash or a failed write)"
                );
            }
            self.file_bytes = kept;
            // Whatever head of a line a failed write left is gone now.
            self.buf.forget_written();
            self.clean_up_compression();
        }
        self.file = Some(file);
        self.opened_once = true;
        if self.started.is_none() {
            self.started = Some((self.clock)());
        }
        Ok(())
    }

    /// A crash between writing `PATH.1.gz` and removing `PATH.1` left
    /// both: the `.gz` is complete (it was renamed into place), so `PATH.1`
    /// goes. A leftover temporary file goes too.
    fn clean_up_compression(&self) {
        let (plain, gz) = (self.rotated(1, false), self.rotated(1, true));
        let _ = fs::remove_file(with_suffix(&gz, ".tmp"));
        if self.options.gzip
            && gz.is_file()
            && plain.is_file()
            && let Err(e) = fs::remove_file(&plain)
        {
            tracing::warn!(file = %plain.display(), "cannot remove, already compressed: {e}");
        }
    }

    /// Writes the buffer out to the live file; `Ok(false)` when out of
    /// space.
    ///
    /// Only whole lines stay in the file: when a write fails part-way, the
    /// head of a line it left is cut off again at once (the file truncated
    /// back to the end of the last whole line), and that line and the
    /// ones after it stay buffered, whole. Out of space the file stays
    /// open and `full` is set; on any other failure it is closed (the
    /// runtime reopens the sink). The lines written whole count as sent.
    fn write_out(&mut self) -> Result<bool, SinkError> {
        let Some(file) = self.file.as_mut() else {
            return Err(self.not_open());
        };
        let (bytes, lines) = (self.buf.pending() as u64, self.buf.lines());
        let mut out = Out {
            file,
            #[cfg(test)]
            room: &mut self.room,
        };
        let result = self.buf.write_to(&mut out);
        self.sent += (lines - self.buf.lines()) as u64;
        let e = match result {
            Ok(()) => {
                self.file_bytes += bytes;
                if self.full {
                    self.full = false;
                    tracing::info!(file = %self.path().display(), "room again: writing");
                }
                return Ok(true);
            }
            Err(e) => e,
        };
        let torn = self.buf.torn() as u64;
        self.file_bytes += bytes - self.buf.pending() as u64 - torn;
        if self.regular && torn > 0 {
            if let Err(cut) = self.file.as_mut().map_or(Ok(()), |f| cut_back(f, torn)) {
                // The reopen cuts it.
                self.file = None;
                tracing::warn!(
                    file = %self.path().display(),
                    "cannot cut off the line a failed write tore: {cut}"
                );
            }
            // That line is written again, whole.
            self.buf.forget_written();
        }
        if self.file.is_some() && out_of_space(&e) {
            if !self.full {
                self.full = true;
                tracing::warn!(
                    file = %self.path().display(),
                    records = self.buf.lines(),
                    "no space left: records wait, whole, until there is room \
                     (in the sink's queue, which drops the oldest when full)"
                );
            }
            return Ok(false);
        }
        self.file = None;
        Err(self.error(format!("cannot write {}", self.path().display()), e))
    }

    /// Puts the live file's data on disk (a device or a FIFO has no disk
    /// to sync: nothing to do).
    fn sync(&mut self) -> Result<(), SinkError> {
        let Some(file) = self.file.as_ref() else {
            return Err(self.not_open());
        };
        if !self.regular {
            return Ok(());
        }
        if let Err(e) = file.sync_data() {
            self.file = None;
            return Err(self.error(format!("cannot fsync {}", self.path().display()), e));
        }
        Ok(())
    }

    /// Bytes the live file will hold once the buffer is written out.
    fn size(&self) -> u64 {
        self.file_bytes + self.buf.pending() as u64
    }

    /// Whether the live file has been open for `rotate_secs`; restarts
    /// the period of an empty file.
    fn due_by_age(&mut self) -> bool {
        let (Some(secs), Some(started)) = (self.options.rotate_secs, self.started) else {
            return false;
        };
        let now = (self.clock)();
        if now.saturating_duration_since(started) < Duration::from_secs(secs) {
            return false;
        }
        if self.size() == 0 {
            self.started = Some(now);
            return false;
        }
        true
    }

    /// Closes the live file, shifts the rotated ones and starts a new
    /// live file.
    fn rotate(&mut self) -> Result<(), SinkError> {
        if !self.regular {
            return Ok(());
        }
        // Out of space, the rotation goes ahead: the live file holds whole
        // lines, what is left in the buffer starts the new one, and the
        // rotation may free room (the oldest file goes).
        self.write_out()?;
        if self.options.fsync != FsyncPolicy::Never {
            self.sync()?;
        }
        self.file = None;
        self.shift()?;
        self.started = None;
        self.file_bytes = 0;
        self.open_live()?;
        if self.options.fsync != FsyncPolicy::Never {
            // Make the renames durable; best effort (not every file system
            // can fsync a directory).
            let dir = self
                .path()
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if let Ok(dir) = File::open(dir) {
                let _ = dir.sync_all();
            }
        }
        Ok(())
    }

    /// Renames `PATH.k` to `PATH.k+1`, deletes what passes `keep`, and
    /// renames `PATH` to `PATH.1` (compressing it if asked).
    fn shift(&mut self) -> Result<(), SinkError> {
        let keep = self.options.keep;
        // Files numbered `keep` or more would be shifted past it; also
        // sweep those an earlier, larger `keep` left.
        let mut k = keep.max(1);
        loop {
            let mut found = false;
            for gz in [false, true] {
                let old = self.rotated(k, gz);
                match fs::remove_file(&old) {
                    Ok(()) => found = true,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(self.error(format!("cannot remove {}", old.display()), e));
                    }
                }
            }
            if !found && k > keep {
                break;
            }
            k += 1;
        }
        for k in (1..keep).rev() {
            for gz in [false, true] {
                self.rename(&self.rotated(k, gz), &self.rotated(k + 1, gz))?;
            }
        }
        let live = self.path().to_owned();
        if keep == 0 {
            return fs::remove_file(&live)
                .map_err(|e| self.error(format!("cannot remove {}", live.display()), e));
        }
        let first = self.rotated(1, false);
        self.rename(&live, &first)?;
        if self.options.gzip {
            let gz = self.rotated(1, true);
            if let Err(e) = compress(&first, &gz, self.options.fsync != FsyncPolicy::Never) {
                // Not fatal: the rotated file stays, uncompressed.
                tracing::warn!(
                    file = %first.display(),
                    "cannot compress into {}, leaving it uncompressed: {e}",
                    gz.display()
                );
            }
        }
        Ok(())
    }

    /// Renames `from` to `to` if `from` exists.
    fn rename(&self, from: &Path, to: &Path) -> Result<(), SinkError> {
        match fs::rename(from, to) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(self.error(
                format!("cannot rename {} to {}", from.display(), to.display()),
                e,
            )),
            _ => Ok(()),
        }
    }
}

impl Sink for FileSink {
    fn name(&self) -> &str {
        &self.name
    }

    /// Opens (or reopens after a failure) the live file for appending,
    /// cutting off a torn last line. A missing directory is an error, not
    /// created.
    fn open(&mut self) -> Result<(), SinkError> {
        self.file = None;
        self.full = false;
        self.open_live()
    }

    /// Rotates the live file if it is old enough; out of space, tries the
    /// buffered lines again. Says whether records can be written: the file
    /// is open and not full.
    fn poll(&mut self) -> Result<bool, SinkError> {
        if self.file.is_none() {
            return Ok(false);
        }
        if self.due_by_age() {
            self.rotate()?;
        }
        if self.full {
            if !self.write_out()? {
                return Ok(false);
            }
            if matches!(self.options.fsync, FsyncPolicy::Flush | FsyncPolicy::Always) {
                self.sync()?;
            }
        }
        Ok(true)
    }

    fn write(&mut self, record: &Record) -> Result<Delivery, SinkError> {
        if self.file.is_none() {
            return Err(self.not_open());
        }
        let line = record.json.len() as u64 + 1;
        let too_big = self
            .options
            .rotate_bytes
            .is_some_and(|max| self.size() > 0 && self.size() + line > max);
        if too_big || self.due_by_age() {
            self.rotate()?;
        }
        if !self.buf.has_room(record.json.len()) {
            self.write_out()?;
            if !self.buf.has_room(record.json.len()) {
                // Out of space: it waits in the queue.
                return Ok(Delivery::Retry);
            }
        }
        self.buf.push(&record.json);
        if self.options.fsync == FsyncPolicy::Always {
            // Written and synced here, so sent here; out of space, it waits
            // in the buffer as the others do.
            match self.write_out() {
                Ok(true) => self.sent -= 1,
                Ok(false) => return Ok(Delivery::Pending),
                Err(e) => {
                    // Taken back: the runtime counts it dropped.
                    self.buf.unpush(record.json.len());
                    return Err(e);
                }
            }
            self.sync()?;
            return Ok(Delivery::Sent);
        }
        Ok(Delivery::Pending)
    }

    /// Writes the buffer out (out of space, its lines wait: `poll` tries
    /// them again).
    fn flush(&mut self) -> Result<(), SinkError> {
        if self.write_out()?
            && matches!(self.options.fsync, FsyncPolicy::Flush | FsyncPolicy::Always)
        {
            self.sync()?;
        }
        Ok(())
    }

    /// Writes the buffer out and closes the file; what cannot be written
    /// (out of space, or a failure) is counted dropped.
    fn close(&mut self) -> Result<(), SinkError> {
        let result = self.close_file();
        let lost = self.buf.discard() as u64;
        if lost > 0 {
            self.dropped += lost;
            tracing::warn!(
                file = %self.path().display(),
                records = lost,
                "closed with records it could not write (no space left, or a failure): dropped"
            );
        }
        result
    }

    fn settled(&mut self) -> Settled {
        Settled {
            sent: std::mem::take(&mut self.sent),
            dropped: std::mem::take(&mut self.dropped),
        }
    }
}

impl FileSink {
    /// `close`, but what could not be written stays in the buffer.
    fn close_file(&mut self) -> Result<(), SinkError> {
        if self.file.is_none() && self.buf.pending() > 0 {
            // A last chance for what a failure left buffered.
            self.open_live()?;
        }
        if self.file.is_none() {
            return Ok(());
        }
        self.write_out()?;
        if self.options.fsync != FsyncPolicy::Never {
            self.sync()?;
        }
        self.file = None;
        Ok(())
    }
}

impl Drop for FileSink {
    /// Writes out what is buffered if the sink was not closed (best
    /// effort).
    fn drop(&mut self) {
        if self.file.is_some() && self.buf.pending() > 0 {
            let _ = self.write_out();
        }
    }
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    name.into()
}

/// Where the buffer is written out: the live file (in tests, one that
/// runs out of space after `room` bytes).
struct Out<'a> {
    file: &'a mut File,
    #[cfg(test)]
    room: &'a mut Option<u64>,
}

impl Write for Out<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        #[cfg(test)]
        if let Some(room) = self.room.as_mut() {
            if *room == 0 {
                return Err(io::Error::from_raw_os_error(Errno::ENOSPC as i32));
            }
            let n = self.file.write(&data[..data.len().min(*room as usize)])?;
            *room -= n as u64;
            return Ok(n);
        }
        self.file.write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Whether `e` says the file system is full (or the quota reached).
fn out_of_space(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull
        || e.raw_os_error()
            .is_some_and(|c| c == Errno::ENOSPC as i32 || c == Errno::EDQUOT as i32)
}

/// Cuts off the last `torn` bytes of `file`: the head of a line a failed
/// write left at its end. Truncating the file back to the end of its last
/// whole line (rather than to an offset counted beforehand) is right even
/// if something else truncated the file meanwhile; it frees the room the
/// head took.
fn cut_back(file: &File, torn: u64) -> io::Result<()> {
    let len = file.metadata()?.len();
    file.set_len(len.saturating_sub(torn))
}

/// Truncates `file`, `len` bytes long, after its last newline if it does
/// not end with one; returns the bytes kept and removed.
fn cut_torn_line(file: &mut File, len: u64) -> io::Result<(u64, u64)> {
    if len == 0 {
        return Ok((0, 0));
    }
    let mut last = [0u8];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut last)?;
    if last[0] == b'\n' {
        return Ok((len, 0));
    }
    let mut chunk = vec![0u8; 64 * 1024];
    let (mut end, mut keep) = (len, 0);
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let part = &mut chunk[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(part)?;
        if let Some(i) = part.iter().rposition(|&b| b == b'\n') {
            keep = start + i as u64 + 1;
            break;
        }
        end = start;
    }
    file.set_len(keep)?;
    Ok((keep, len - keep))
}

/// Compresses `src` into `dst` (through a temporary file renamed into
/// place, so `dst` is never a truncated archive), then removes `src`.
fn compress(src: &Path, dst: &Path, fsync: bool) -> io::Result<()> {
    let tmp = with_suffix(dst, ".tmp");
    let result = (|| {
        let mut input = File::open(src)?;
        let out = BufWriter::with_capacity(BUFFER_BYTES, File::create(&tmp)?);
        let mut gz = GzEncoder::new(out, Compression::default());
        io::copy(&mut input, &mut gz)?;
        let out = gz.finish()?.into_inner().map_err(|e| e.into_error())?;
        if fsync {
            out.sync_all()?;
        }
        fs::rename(&tmp, dst)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    fs::remove_file(src)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use flate2::read::GzDecoder;
    use flowstat_core::RecordKind;

    use super::*;

    /// A directory of its own under the system's temporary directory,
    /// removed at the end.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(test: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("flowstat-file-sink-{}-{test}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn join(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn record(i: usize) -> Record {
        Record {
            kind: RecordKind::FlowStats,
            json: format!(r#"{{"type":"flow_stats","n":{i}}}"#).into_bytes(),
        }
    }

    fn line(i: usize) -> String {
        format!("{{\"type\":\"flow_stats\",\"n\":{i}}}\n")
    }

    fn read(path: &Path) -> String {
        let mut text = String::new();
        if path.extension().is_some_and(|e| e == "gz") {
            GzDecoder::new(File::open(path).unwrap())
                .read_to_string(&mut text)
                .unwrap();
        } else {
            File::open(path).unwrap().read_to_string(&mut text).unwrap();
        }
        text
    }

    /// The rotated files oldest first, then the live file, each read
    /// (decompressed) whole.
    fn files_in_order(sink: &FileSink, max: u32) -> Vec<String> {
        let mut texts = Vec::new();
        for k in (1..=max).rev() {
            for gz in [false, true] {
                let p = sink.rotated(k, gz);
                if p.exists() {
                    texts.push(read(&p));
                }
            }
        }
        texts.push(read(sink.path()));
        texts
    }

    /// A clock the test moves by hand.
    fn manual_clock() -> (Arc<Mutex<Instant>>, Box<dyn Fn() -> Instant + Send>) {
        let now = Arc::new(Mutex::new(Instant::now()));
        let reader = Arc::clone(&now);
        (now, Box::new(move || *reader.lock().unwrap()))
    }

    #[test]
    fn rotation_by_size_keeps_n_whole_files_in_order() {
        let dir = TempDir::new("size");
        let mut options = FileOptions::new(dir.join("out.json"));
        options.rotate_bytes = Some(100);
        options.keep = 3;
        let mut sink = FileSink::new(options);
        sink.open().unwrap();
        // Lines are 29 or 30 bytes: 3 to a file.
        for i in 0..40 {
            assert_eq!(sink.write(&record(i)).unwrap(), Delivery::Pending);
        }
        sink.close().unwrap();
        let all = Settled {
            sent: 40,
            dropped: 0,
        };
        assert_eq!(sink.settled(), all, "written, if deleted since");
        assert!(sink.rotated(3, false).exists());
        assert!(
            !sink.rotated(4, false).exists(),
            "only 3 rotated files are kept"
        );
        let texts = files_in_order(&sink, 10);
        assert_eq!(texts.len(), 4);
        for text in &texts {
            assert!(text.len() <= 100, "a file passed rotate_bytes: {text:?}");
            assert!(text.ends_with('\n'), "a torn line: {text:?}");
        }
        // 40 records, 3 a file: the live file has 1, the kept ones 9.
        let want: String = (30..40).map(line).collect();
        assert_eq!(texts.concat(), want);
    }

    #[test]
    fn a_record_larger_than_rotate_bytes_gets_a_file_of_its_own() {
        let dir = TempDir::new("huge");
        let mut options = FileOptions::new(dir.join("out.json"));
        options.rotate_bytes = Some(10);
        let mut sink = FileSink::new(options);
        sink.open().unwrap();
        for i in 0..3 {
            sink.write(&record(i)).unwrap();
        }
        sink.close().unwrap();
        assert_eq!(files_in_order(&sink, 5), vec![line(0), line(1), line(2)]);
    }

    #[test]
    fn gzip_rotation_round_trips() {
        let dir = TempDir::new("gzip");
        let mut options = FileOptions::new(dir.join("out.json"));
        options.rotate_bytes = Some(64);
        options.gzip = true;
        options.keep = 10;
        let mut sink = FileSink::new(options);
        sink.open().unwrap();
        for i in 0..12 {
            sink.write(&record(i)).unwrap();
        }
        sink.close().unwrap();
        assert!(sink.rotated(1, true).exists());
        assert!(
            !sink.rotated(1, false).exists(),
            "the plain file was removed"
        );
        assert!(!with_suffix(&sink.rotated(1, true), ".tmp").exists());
        let texts = files_in_order(&sink, 10);
        assert_eq!(texts.len(), 6, "2 records a file");
        assert_eq!(texts.concat(), (0..12).map(line).collect::<String>());
    }

    #[test]
    fn rotation_by_age_happens_in_poll_and_skips_empty_files() {
        let dir = TempDir::new("age");
        let mut options = FileOptions::new(dir.join("out.json"));
        options.rotate_secs = Some(60);
        let (now, clock) = manual_clock();
        let mut sink = FileSink::with_clock(options, clock);
        sink.open().unwrap();
        sink.write(&record(0)).unwrap();
        assert!(sink.poll().unwrap());
        assert!(!sink.rotated(1, false).exists(), "not yet");
        *now.lock().unwrap() += Duration::from_secs(61);
        assert!(sink.poll().unwrap());
        assert_eq!(read(&sink.rotated(1, false)), line(0));
        assert_eq!(read(sink.path()), "");

        // Idle past the period: an empty file is not rotated...
        *now.lock().unwrap() += Duration::from_secs(61);
        sink.poll().unwrap();
        assert!(!sink.rotated(2, false).exists());
        // ...and its period starts again.
        *now.lock().unwrap() += Duration::from_secs(30);
        sink.write(&record(1)).unwrap();
        sink.flush().unwrap();
        sink.poll().unwrap();
        assert!(!sink.rotated(2, false).exists());
        *now.lock().unwrap() += Duration::from_secs(31);
        // Checked in write too: record 2 starts the next file.
        sink.write(&record(2)).unwrap();
        sink.close().unwrap();
        assert_eq!(files_in_order(&sink, 5), vec![line(0), line(1), line(2)]);
    }

    #[test]
    fn a_torn_last_line_is_cut_at_reopen() {
        let dir = TempDir::new("torn");
        let path = dir.join("out.json");
        fs::write(&path, format!("{}{}{{\"type\":\"fl", line(0), line(1))).unwrap();
        let mut sink = FileSink::new(FileOptions::new(&path));
        sink.open().unwrap();
        sink.write(&record(2)).unwrap();
        sink.close().unwrap();
        assert_eq!(read(&path), [line(0), line(1), line(2)].concat());

        // No newline at all: nothing is whole.
        fs::write(&path, "{\"type\"").unwrap();
        sink.open().unwrap();
        sink.write(&record(3)).unwrap();
        sink.close().unwrap();
        assert_eq!(read(&path), line(3));

        // A torn line longer than the read chunk.
        let mut torn = line(4).into_bytes();
        torn.extend(std::iter::repeat_n(b'x', 200_000));
        fs::write(&path, &torn).unwrap();
        sink.open().unwrap();
        sink.close().unwrap();
        assert_eq!(read(&path), line(4));
    }

    #[test]
    fn append_continues_and_truncate_starts_afresh_once() {
        let dir = TempDir::new("append");
        let path = dir.join("out.json");
        fs::write(&path, line(0)).unwrap();

        let mut sink = FileSink::new(FileOptions::new(&path));
        sink.open().unwrap();
        sink.write(&record(1)).unwrap();
        sink.close().unwrap();
        assert_eq!(read(&path), [line(0), line(1)].concat());

        let mut options = FileOptions::new(&path);
        options.append = false;
        let mut sink = FileSink::new(options);
        sink.open().unwrap();
        sink.write(&record(2)).unwrap();
        sink.flush().unwrap();
        // A reopen (after a failure) does not truncate again.
        sink.open().unwrap();
        sink.write(&record(3)).unwrap();
        sink.close().unwrap();
        assert_eq!(read(&path), [line(2), line(3)].concat());
    }

    #[test]
    fn records_stay_buffered_until_flushed() {
        let dir = TempDir::new("buffered");
        let path = dir.join("out.json");
        let mut sink = FileSink::new(FileOptions::new(&path));
        sink.open().unwrap();
        sink.write(&record(0)).unwrap();
        assert_eq!(read(&path), "");
        sink.flush().unwrap();
        assert_eq!(read(&path), line(0));

        let mut options = FileOptions::new(&path);
        options.fsync = FsyncPolicy::Always;
        let mut sink = FileSink::new(options);
        sink.open().unwrap();
        sink.write(&record(1)).unwrap();
        assert_eq!(
            read(&path),
            [line(0), line(1)].concat(),
            "always: written at once"
        );
    }

    #[test]
    fn a_device_is_written_without_fsync() {
        // fsync on /dev/null fails with EINVAL: a device is not synced.
        let mut options = FileOptions::new(Path::new("/dev/null"));
        options.fsync = FsyncPolicy::Always;
        let mut sink = FileSink::new(options);
        sink.open().unwrap();
        sink.write(&record(0)).unwrap();
        sink.flush().unwrap();
        sink.close().unwrap();
    }

    #[test]
    fn a_missing_directory_is_made_and_one_that_cannot_be_is_named() {
        let dir = TempDir::new("missing");
        let path = dir.join("state").join("flows").join("out.json");
        let mut sink = FileSink::new(FileOptions::new(&path));
        assert_eq!(sink.name(), format!("file:{}", path.display()));
        sink.open().unwrap();
        sink.write(&record(0)).unwrap();
        sink.close().unwrap();
        assert_eq!(read(&path), line(0));
        // A file where the directory would go.
        std::fs::write(dir.join("file"), b"").unwrap();
        let blocked = dir.join("file").join("out.json");
        let e = FileSink::new(FileOptions::new(&blocked))
            .open()
            .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("cannot make the directory"), "{text}");
        assert!(text.contains(&blocked.display().to_string()), "{text}");
    }

    #[test]
    fn a_crash_during_compression_is_repaired_at_open() {
        let dir = TempDir::new("crash-gz");
        let mut options = FileOptions::new(dir.join("out.json"));
        options.gzip = true;
        options.rotate_bytes = Some(10);
        let mut sink = FileSink::new(options);
        // The crash came after the rename into place, before the removal.
        fs::write(sink.rotated(1, false), line(0)).unwrap();
        let mut gz = GzEncoder::new(
            File::create(sink.rotated(1, true)).unwrap(),
            Compression::fast(),
        );
        gz.write_all(line(0).as_bytes()).unwrap();
        gz.finish().unwrap();
        fs::write(with_suffix(&sink.rotated(1, true), ".tmp"), "half").unwrap();
        sink.open().unwrap();
        assert!(!sink.rotated(1, false).exists());
        assert!(!with_suffix(&sink.rotated(1, true), ".tmp").exists());
        sink.write(&record(1)).unwrap();
        sink.write(&record(2)).unwrap();
        sink.close().unwrap();
        assert_eq!(files_in_order(&sink, 5), vec![line(0), line(1), line(2)]);
    }

    #[test]
    fn a_device_that_is_full_keeps_its_records_waiting() {
        // /dev/full takes opens and refuses every write with ENOSPC.
        if !Path::new("/dev/full").exists() {
            eprintln!("skipped: no /dev/full");
            return;
        }
        let mut options = FileOptions::new("/dev/full");
        options.fsync = FsyncPolicy::Never;
        let mut sink = FileSink::new(options);
        sink.open().unwrap();
        assert_eq!(sink.write(&record(0)).unwrap(), Delivery::Pending);
        sink.flush().unwrap();
        assert!(!sink.poll().unwrap(), "not ready while full");
        assert_eq!(sink.buf.pending(), line(0).len(), "record 0 waits, whole");
        sink.close().unwrap();
        let lost = Settled {
            sent: 0,
            dropped: 1,
        };
        assert_eq!(sink.settled(), lost);

        // Always: the record waits as well, and is not written twice.
        let mut options = FileOptions::new("/dev/full");
        options.fsync = FsyncPolicy::Always;
        let mut sink = FileSink::new(options);
        sink.open().unwrap();
        assert_eq!(sink.write(&record(0)).unwrap(), Delivery::Pending);
        assert_eq!(sink.buf.lines(), 1);
        assert!(!sink.poll().unwrap());
        assert_eq!(sink.buf.lines(), 1);
    }

    /// A sink on `path` whose buffer holds `buffer` bytes, with `room`
    /// bytes left on its "disk".
    fn full_sink(options: FileOptions, buffer: usize, room: u64) -> FileSink {
        let mut sink = FileSink::new(options);
        sink.buf = LineBuf::new(buffer);
        sink.room = Some(room);
        sink.open().unwrap();
        sink
    }

    /// The file's lines, each checked whole, and that it ends with one.
    fn whole_lines(path: &Path) -> Vec<String> {
        let text = read(path);
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "a torn line: {text:?}"
        );
        text.lines().map(|l| format!("{l}\n")).collect()
    }

    #[test]
    fn a_write_that_runs_out_of_space_is_cut_back_to_whole_lines_at_once() {
        let dir = TempDir::new("enospc");
        let path = dir.join("out.json");
        // Room for 2 lines and a half (lines 0 to 9 are 28 bytes).
        let mut sink = full_sink(FileOptions::new(&path), BUFFER_BYTES, 28 * 2 + 14);
        for i in 0..10 {
            assert_eq!(sink.write(&record(i)).unwrap(), Delivery::Pending);
        }
        sink.flush().unwrap();
        assert!(sink.full);
        assert_eq!(
            whole_lines(&path),
            vec![line(0), line(1)],
            "the half line was cut off"
        );
        assert_eq!(sink.settled().sent, 2, "only the lines on disk are sent");
        assert_eq!(sink.buf.lines(), 8, "the rest wait, whole");
        assert_eq!(sink.file_bytes, 56);

        // Still full: polls say "not ready", and nothing changes.
        assert!(!sink.poll().unwrap());
        assert!(!sink.poll().unwrap());
        assert_eq!(whole_lines(&path), vec![line(0), line(1)]);
        assert_eq!(sink.settled(), Settled::default());

        // Room for 3 more and a bit: the next poll writes what fits.
        sink.room = Some(28 * 3 + 5);
        assert!(!sink.poll().unwrap());
        assert_eq!(whole_lines(&path), (0..5).map(line).collect::<Vec<_>>());
        assert_eq!(sink.settled().sent, 3);

        // Room again: the next poll writes the rest, and the sink is ready.
        sink.room = None;
        assert!(sink.poll().unwrap());
        assert!(!sink.full);
        assert_eq!(sink.settled().sent, 5);
        sink.write(&record(10)).unwrap();
        sink.close().unwrap();
        assert_eq!(sink.settled().sent, 1);
        assert_eq!(whole_lines(&path), (0..11).map(line).collect::<Vec<_>>());
    }

    #[test]
    fn a_full_buffer_on_a_full_disk_says_retry_and_close_drops_what_waits() {
        let dir = TempDir::new("retry");
        let path = dir.join("out.json");
        // A buffer of 3 lines (28 bytes each), room for 4 and a bit.
        let mut sink = full_sink(FileOptions::new(&path), 90, 28 * 4 + 10);
        let mut taken = 0;
        while sink.write(&record(taken)).unwrap() == Delivery::Pending {
            taken += 1;
            assert!(taken < 100, "never full");
        }
        // 0 to 2 went out; of 3 to 5, 3 did before the disk was full,
        // which made room in the buffer for 6; 7 finds it full.
        assert_eq!(taken, 7);
        assert_eq!(whole_lines(&path), (0..4).map(line).collect::<Vec<_>>());
        assert_eq!(sink.buf.lines(), 3);
        assert_eq!(sink.write(&record(7)).unwrap(), Delivery::Retry);

        // Closed while still full: what waits is dropped, counted.
        sink.close().unwrap();
        assert_eq!(
            sink.settled(),
            Settled {
                sent: 4,
                dropped: 3
            }
        );
        assert_eq!(whole_lines(&path), (0..4).map(line).collect::<Vec<_>>());

        // Reopened with room: it appends after the last whole line.
        sink.room = None;
        sink.open().unwrap();
        sink.write(&record(8)).unwrap();
        sink.close().unwrap();
        let mut want: Vec<_> = (0..4).map(line).collect();
        want.push(line(8));
        assert_eq!(whole_lines(&path), want);
    }

    #[test]
    fn a_rotation_on_a_full_disk_keeps_whole_lines_in_order() {
        let dir = TempDir::new("rotate-full");
        let mut options = FileOptions::new(dir.join("out.json"));
        options.rotate_bytes = Some(100);
        options.keep = 10;
        // Room for 2 lines and a half; lines are 28 bytes, 3 a file.
        let mut sink = full_sink(options, BUFFER_BYTES, 28 * 2 + 14);
        for i in 0..4 {
            assert_eq!(sink.write(&record(i)).unwrap(), Delivery::Pending);
        }
        // Record 3 rotated: the live file holds what fitted of 0 to 2,
        // whole, and record 2 starts the new file, with record 3.
        assert!(sink.full);
        assert_eq!(whole_lines(&sink.rotated(1, false)), vec![line(0), line(1)]);
        assert_eq!(whole_lines(sink.path()), Vec::<String>::new());
        sink.room = None;
        assert!(sink.poll().unwrap());
        for i in 4..8 {
            sink.write(&record(i)).unwrap();
        }
        sink.close().unwrap();
        let texts = files_in_order(&sink, 10);
        for text in &texts {
            assert!(text.ends_with('\n'), "a torn line: {text:?}");
        }
        assert_eq!(texts.concat(), (0..8).map(line).collect::<String>());
    }

    #[test]
    fn always_on_a_full_disk_writes_each_record_once_when_there_is_room() {
        let dir = TempDir::new("always-full");
        let path = dir.join("out.json");
        let mut options = FileOptions::new(&path);
        options.fsync = FsyncPolicy::Always;
        let mut sink = full_sink(options, BUFFER_BYTES, 28 + 10);
        assert_eq!(sink.write(&record(0)).unwrap(), Delivery::Sent);
        assert_eq!(sink.write(&record(1)).unwrap(), Delivery::Pending);
        assert_eq!(whole_lines(&path), vec![line(0)]);
        assert!(!sink.poll().unwrap());
        sink.room = None;
        assert!(sink.poll().unwrap());
        assert_eq!(sink.settled().sent, 1, "record 1, written by the poll");
        assert_eq!(sink.write(&record(2)).unwrap(), Delivery::Sent);
        assert_eq!(whole_lines(&path), (0..3).map(line).collect::<Vec<_>>());
        assert_eq!(sink.settled(), Settled::default());
    }

    #[test]
    fn cut_back_removes_the_torn_tail_only() {
        let dir = TempDir::new("cut-back");
        let path = dir.join("out.json");
        fs::write(&path, format!("{}{{\"type\":\"fl", line(0))).unwrap();
        let file = OpenOptions::new().append(true).open(&path).unwrap();
        cut_back(&file, 11).unwrap();
        assert_eq!(read(&path), line(0));
        // A file something else truncated meanwhile is not extended.
        file.set_len(3).unwrap();
        cut_back(&file, 10).unwrap();
        assert_eq!(read(&path), "");
    }

    #[test]
    fn fsync_policies_are_read_by_their_names() {
        for (name, policy) in [
            ("never", FsyncPolicy::Never),
            ("rotate", FsyncPolicy::Rotate),
            ("flush", FsyncPolicy::Flush),
            ("always", FsyncPolicy::Always),
        ] {
            let read = toml::Value::from(name).try_into::<FsyncPolicy>();
            assert_eq!(read.unwrap(), policy);
        }
        assert!(
            toml::Value::from("sometimes")
                .try_into::<FsyncPolicy>()
                .is_err()
        );
        assert_eq!(FsyncPolicy::default(), FsyncPolicy::Rotate);
    }
}
