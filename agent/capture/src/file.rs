//! [`FileSource`]: a capture file, memory-mapped, or a stream (pipe, FIFO,
//! standard input) read into a buffer; sniffed by magic bytes.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use flowstat_core::{Batch, CaptureError, CaptureSource, CaptureStats, Frame, LinkType, hex};
use memmap2::Mmap;

use crate::pcap::PcapReader;
use crate::pcapng::PcapNgReader;
use crate::sigbus;

/// The smallest caplen limit: a record is corrupt when its captured length
/// exceeds both this and the file's (or interface's) snap length.
/// 256 KiB is Wireshark's and libpcap's largest standard snap length.
pub(crate) const MIN_CAPLEN_LIMIT: u32 = 256 * 1024;

/// The captured-length limit for a snap length (see [`MIN_CAPLEN_LIMIT`]).
pub(crate) fn caplen_limit(snaplen: u32) -> u32 {
    snaplen.max(MIN_CAPLEN_LIMIT)
}

/// Maps the link types some systems wrote for raw IP (DLT_RAW is 12 on most
/// BSDs and 14 on OpenBSD) to LINKTYPE_RAW.
pub(crate) fn normalize_link(n: u32) -> LinkType {
    match n {
        12 | 14 => LinkType::RAW,
        n => LinkType(n),
    }
}

/// Why a format reader returned before lending `budget` frames. Every
/// offset is the reader's position when it stopped: the start of the record
/// it could not read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The budget is spent; the next record is unread.
    Budget,
    /// The file ends exactly after the last record.
    End,
    /// The file ends inside the record at the position.
    Truncated,
    /// The record at the position is structurally wrong.
    Corrupt(String),
}

impl Stop {
    /// A [`Stop::Corrupt`]; cold, so that building the message stays out
    /// of the readers' hot loops.
    #[cold]
    #[inline(never)]
    pub(crate) fn corrupt(reason: std::fmt::Arguments<'_>) -> Stop {
        Stop::Corrupt(reason.to_string())
    }
}

/// How far past the record being read the map is prefetched, in bytes.
///
/// Records are found by chasing lengths, one dependent load after another,
/// and real traffic mixes record sizes, so the hardware prefetcher cannot
/// follow: without help every record header is a trip to DRAM (~110 ns per
/// frame, measured on mixed QUIC packets averaging 640 bytes). Prefetching
/// every cache line a little ahead turns that into a sequential stream
/// (~35 ns per such frame, bound by memory bandwidth) and leaves the frames
/// in cache for the decoder. 1-2 KiB measured best; further ahead only
/// crowds L1.
const PREFETCH_AHEAD: usize = 2048;

/// How far ahead of the reader a mapped file's pages are mapped, by one
/// madvise(MADV_POPULATE_READ) each time the reader is half-way there.
/// Left to page faults, the kernel maps 16 pages a fault, and the faults
/// took 9% of a replay's time, on the reading thread. (Populating the
/// whole map at once was as fast, and reads a file larger than memory
/// before the first packet.)
const POPULATE: usize = 8 << 20;

/// Lends up to `budget` frames to `f`, counting them in `lent`, and
/// prefetches the map ahead of the reader.
pub(crate) struct Lend<'f> {
    pub budget: usize,
    pub lent: usize,
    pub f: &'f mut dyn FnMut(&Frame<'_>),
    /// The map is prefetched up to here.
    pub prefetched: usize,
}

impl Lend<'_> {
    /// Whether the budget allows another frame.
    #[inline]
    pub fn wants_more(&self) -> bool {
        self.lent < self.budget
    }

    /// Lends one frame, unless the file shrank under the map (its bytes
    /// past the cut read as zeros): then nothing more is lent.
    #[inline]
    pub fn frame(&mut self, frame: &Frame<'_>) {
        if sigbus::shrank() {
            self.budget = 0;
            return;
        }
        (self.f)(frame);
        self.lent += 1;
    }

    /// Prefetches `data` up to [`PREFETCH_AHEAD`] bytes past `pos`, one
    /// cache line at a time, each line once.
    #[inline]
    pub fn prefetch(&mut self, data: &[u8], pos: usize) {
        const LINE: usize = 64;
        let until = pos.saturating_add(PREFETCH_AHEAD).min(data.len());
        let mut at = self.prefetched.max(pos);
        while at < until {
            prefetch_line(data, at);
            at += LINE;
        }
        self.prefetched = at;
    }
}

/// Hints the CPU to bring the cache line holding `data[at]` into L1.
#[inline(always)]
pub(crate) fn prefetch_line(data: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let p = data.as_ptr().wrapping_add(at).cast::<i8>();
        // SAFETY: a prefetch is only a hint: it never faults, whatever the
        // address, and changes nothing the program can observe (`at` is
        // inside `data` anyway). SSE, which it needs, is part of the
        // x86_64 baseline.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, at); // no stable prefetch elsewhere yet
}

/// Bytes asked of a stream in one read: a pipe hands out at most its
/// buffer (64 KiB) per read anyway.
const STREAM_CHUNK: usize = 256 * 1024;

/// The most bytes a stream's file header may take to be read (a pcapng
/// section header with large options).
const STREAM_HEADER_MAX: usize = 64 * 1024;

/// Where a [`FileSource`]'s bytes come from.
enum Input {
    /// A regular file, mapped whole.
    Map(Mmap),
    /// A pipe, FIFO, standard input or a file of no known size, read as it
    /// comes.
    Stream(Stream),
}

/// A stream's bytes not yet read past: `buf` starts at byte `base` of the
/// stream.
struct Stream {
    input: Box<dyn Read + Send>,
    buf: Vec<u8>,
    base: u64,
    /// The stream has ended.
    eof: bool,
}

impl Stream {
    /// Drops the first `consumed` bytes of the buffer and reads once more
    /// (or finds the end).
    fn refill(&mut self, consumed: usize) -> io::Result<()> {
        self.buf.drain(..consumed);
        self.base += consumed as u64;
        let kept = self.buf.len();
        self.buf.resize(kept + STREAM_CHUNK, 0);
        let read = loop {
            match self.input.read(&mut self.buf[kept..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        self.buf.truncate(kept + *read.as_ref().unwrap_or(&0));
        self.eof = read? == 0;
        Ok(())
    }
}

impl Input {
    fn bytes(&self) -> &[u8] {
        match self {
            Input::Map(map) => map,
            Input::Stream(stream) => &stream.buf,
        }
    }

    /// The stream, while it has more to read.
    fn open_stream(&mut self) -> Option<&mut Stream> {
        match self {
            Input::Stream(stream) if !stream.eof => Some(stream),
            _ => None,
        }
    }

    /// The stream offset of byte `pos` of [`Self::bytes`].
    fn offset(&self, pos: usize) -> u64 {
        match self {
            Input::Map(_) => pos as u64,
            Input::Stream(stream) => stream.base + pos as u64,
        }
    }
}

/// The format-specific part of a [`FileSource`].
enum Reader {
    Pcap(PcapReader),
    PcapNg(PcapNgReader),
}

/// Where a [`FileSource`] is in its life.
enum Phase {
    Reading,
    /// Stopped on an error that the next poll reports (the poll that found
    /// it had lent frames first).
    Failed(CaptureError),
    /// Exhausted or failed: every poll returns `End`.
    Done,
}

/// An offline capture source: a classic pcap or pcapng file, memory-mapped,
/// or a stream of one.
///
/// The format is sniffed from the magic bytes when the file is opened
/// ([`FileSource::open`]); frames are lent straight from the map (or the
/// stream's buffer) by [`CaptureSource::poll_batch`].
pub struct FileSource {
    path: PathBuf,
    name: String,
    input: Input,
    /// Offset in `input`'s bytes of the next unread record.
    pos: usize,
    reader: Reader,
    phase: Phase,
    received: u64,
    /// The map is prefetched up to here (see [`Lend::prefetch`]).
    prefetched: usize,
    /// The map's pages are mapped up to here (see [`POPULATE`]).
    populated: usize,
}

impl std::fmt::Debug for FileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSource")
            .field("path", &self.path)
            .field("len", &self.input.bytes().len())
            .field("pos", &self.pos)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

/// The pcap magic numbers as they appear on disk: microsecond and
/// nanosecond resolution, each in both byte orders.
const PCAP_MAGICS: [[u8; 4]; 4] = [
    [0xd4, 0xc3, 0xb2, 0xa1],
    [0xa1, 0xb2, 0xc3, 0xd4],
    [0x4d, 0x3c, 0xb2, 0xa1],
    [0xa1, 0xb2, 0x3c, 0x4d],
];

/// The pcapng Section Header Block type, the same in both byte orders.
pub(crate) const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

impl FileSource {
    /// Opens the capture at `path` and checks its file header.
    ///
    /// `-` is standard input. A regular file is memory-mapped; anything
    /// else (a pipe, a FIFO, a character device, a `/proc` file that claims
    /// 0 bytes) is read as a stream into a buffer as the records need it,
    /// so that `tcpdump -w - | flowstatd replay -` works. Opening a FIFO
    /// waits for its writer, with a warning if none comes within 200 ms.
    ///
    /// The format is told by the magic bytes only: classic pcap (microsecond
    /// or nanosecond, either byte order) or pcapng. Errors: `Open` when the
    /// file cannot be opened or mapped (or is a directory), `Empty` for a
    /// capture of 0 bytes, `NotCapture` when the first bytes are no capture
    /// magic, `Corrupt` when the file header (pcap global header, first
    /// pcapng section header) is cut short or invalid, `Read` when a stream
    /// fails.
    ///
    /// A mapped file that shrinks while it is read (another process
    /// truncating it) ends the source with `Shrank` and the packets before
    /// the cut, instead of a SIGBUS (see `sigbus`); a frame being lent at
    /// that moment may read zeros past the cut.
    pub fn open(path: &Path) -> Result<FileSource, CaptureError> {
        let stdin = path == Path::new("-");
        // What messages call it.
        let path = if stdin {
            Path::new("standard input")
        } else {
            path
        };
        let open_error = |source: io::Error| CaptureError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut input = if stdin {
            stream(Box::new(io::stdin()))
        } else {
            let meta = std::fs::metadata(path).map_err(open_error)?;
            if meta.is_dir() {
                return Err(open_error(io::ErrorKind::IsADirectory.into()));
            }
            let file = if meta.file_type().is_fifo() {
                open_fifo(path)
            } else {
                File::open(path)
            }
            .map_err(open_error)?;
            if meta.is_file() && meta.len() > 0 {
                Input::Map(map(&file, path).map_err(open_error)?)
            } else {
                stream(Box::new(file))
            }
        };
        let (reader, pos) = loop {
            let (header, shrank) = sigbus::guard(input.bytes(), || header(path, input.bytes()));
            if shrank {
                return Err(open_error(io::Error::other("it shrank while being read")));
            }
            let more = matches!(
                header,
                Err(CaptureError::Empty { .. } | CaptureError::Corrupt { .. })
            );
            match input.open_stream() {
                Some(stream) if more && stream.buf.len() < STREAM_HEADER_MAX => {
                    stream.refill(0).map_err(|source| CaptureError::Read {
                        path: path.to_path_buf(),
                        source,
                    })?;
                }
                _ => break header?,
            }
        };
        let format = match reader {
            Reader::Pcap(_) => "pcap",
            Reader::PcapNg(_) => "pcapng",
        };
        tracing::debug!(path = %path.display(), format, "capture opened");

        let name = if stdin {
            "stdin".to_owned()
        } else {
            path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        };
        Ok(FileSource {
            path: path.to_path_buf(),
            name,
            input,
            pos,
            reader,
            phase: Phase::Reading,
            received: 0,
            prefetched: 0,
            populated: 0,
        })
    }

    /// Maps the map's pages from the reader's position up to [`POPULATE`]
    /// bytes past it, in one call, ahead of the reads.
    fn populate(&mut self) {
        let Input::Map(map) = &self.input else {
            return;
        };
        if self.populated > self.pos.saturating_add(POPULATE / 2) || self.populated >= map.len() {
            return;
        }
        let from = self.populated.max(self.pos);
        let len = (from + POPULATE).min(map.len()) - from;
        // Only a hint (memmap2 aligns the range to pages): a page it could
        // not map is faulted in when read (and a file cut short meanwhile
        // is caught there).
        let _ = map.advise_range(memmap2::Advice::PopulateRead, from, len);
        self.populated = from + len;
    }

    /// Stops on `error`: returned now if no frame was lent by this poll,
    /// else by the next one.
    fn fail(&mut self, lent: usize, error: CaptureError) -> Result<Batch, CaptureError> {
        if lent > 0 {
            self.phase = Phase::Failed(error);
            Ok(Batch::Frames(lent))
        } else {
            self.phase = Phase::Done;
            Err(error)
        }
    }
}

/// A stream input, nothing read yet.
fn stream(input: Box<dyn Read + Send>) -> Input {
    Input::Stream(Stream {
        input,
        buf: Vec::new(),
        base: 0,
        eof: false,
    })
}

/// Opens a FIFO, which blocks until a writer opens it too: says so when
/// that takes a while.
fn open_fifo(path: &Path) -> io::Result<File> {
    let (tx, rx) = std::sync::mpsc::channel();
    let owned = path.to_path_buf();
    std::thread::spawn(move || tx.send(File::open(owned)));
    rx.recv_timeout(std::time::Duration::from_millis(200))
        .or_else(|_| {
            tracing::warn!(
                "{} is a FIFO with no writer yet: waiting for one",
                path.display()
            );
            rx.recv()
        })
        .map_err(io::Error::other)?
}

/// Maps `file` (read-only, read sequentially).
fn map(file: &File, path: &Path) -> io::Result<Mmap> {
    // SAFETY: the map is read-only and only ever read as bytes; the
    // slices lent from it never outlive a `poll_batch` callback and the
    // map lives as long as the source. The remaining hazard of any file
    // map, another process truncating the file meanwhile, is caught by
    // `sigbus::guard` around every read; one rewriting it in place changes
    // only what is read, as with read(2).
    let map = unsafe { Mmap::map(file) }?;
    if let Err(error) = map.advise(memmap2::Advice::Sequential) {
        // Only a read-ahead hint: reading works without it.
        tracing::debug!(path = %path.display(), %error, "madvise(sequential) failed");
    }
    Ok(map)
}

/// The format reader for the capture starting with `data`, and the offset
/// of its first record; the error says what `data` is instead.
fn header(path: &Path, data: &[u8]) -> Result<(Reader, usize), CaptureError> {
    let corrupt = |reason: String| CaptureError::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        reason,
    };
    match data.first_chunk::<4>() {
        Some(m) if PCAP_MAGICS.contains(m) => {
            let reader = PcapReader::open(data).map_err(corrupt)?;
            Ok((Reader::Pcap(reader), PcapReader::HEADER_LEN))
        }
        Some(m) if *m == PCAPNG_MAGIC => {
            let (reader, pos) = PcapNgReader::open(data).map_err(corrupt)?;
            Ok((Reader::PcapNg(reader), pos))
        }
        None if data.is_empty() => Err(CaptureError::Empty {
            path: path.to_path_buf(),
        }),
        // Fewer than 4 bytes that start like a capture: a header cut short.
        None if PCAP_MAGICS
            .iter()
            .chain([&PCAPNG_MAGIC])
            .any(|m| m.starts_with(data)) =>
        {
            Err(corrupt(format!(
                "file header truncated: the file has only {} bytes",
                data.len()
            )))
        }
        _ => Err(CaptureError::NotCapture {
            path: path.to_path_buf(),
            // Hex pairs separated by spaces: "7b 0a 20 20".
            magic: data[..data.len().min(8)]
                .iter()
                .map(|&b| hex(&[b]))
                .collect::<Vec<_>>()
                .join(" "),
        }),
    }
}

impl CaptureSource for FileSource {
    /// The file's name (the path's last component), e.g. `dns.pcap`.
    fn name(&self) -> &str {
        &self.name
    }

    /// Lends up to `budget` frames from the map, in file order.
    ///
    /// Returns `Frames(n)`, or `End` once the file is exhausted. When the
    /// file ends inside a record, or a record is corrupt, the frames before
    /// it are lent (and returned as `Frames(n)`) first; the next call
    /// returns the `Truncated` or `Corrupt` error, and every call after that
    /// returns `End`. A budget of 0 lends nothing and returns `Idle`.
    fn poll_batch(
        &mut self,
        budget: usize,
        f: &mut dyn FnMut(&Frame<'_>),
    ) -> Result<Batch, CaptureError> {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Reading => self.phase = Phase::Reading,
            Phase::Failed(error) => return Err(error),
            Phase::Done => return Ok(Batch::End),
        }
        if budget == 0 {
            return Ok(Batch::Idle);
        }
        let (lent, stop) = loop {
            self.populate();
            let mut lend = Lend {
                budget,
                lent: 0,
                f,
                prefetched: self.prefetched,
            };
            let data = self.input.bytes();
            let (stop, shrank) = sigbus::guard(data, || match &mut self.reader {
                Reader::Pcap(r) => r.read(data, &mut self.pos, &mut lend),
                Reader::PcapNg(r) => r.read(data, &mut self.pos, &mut lend),
            });
            let lent = lend.lent;
            self.prefetched = lend.prefetched;
            self.received += lent as u64;
            if shrank {
                let error = CaptureError::Shrank {
                    path: self.path.clone(),
                    size: std::fs::metadata(&self.path).map_or(0, |m| m.len()),
                    packets: self.received,
                };
                return self.fail(lent, error);
            }
            // A stream's buffer ran out: lend what it had, or read more.
            let more = matches!(stop, Stop::End | Stop::Truncated);
            match self.input.open_stream() {
                Some(stream) if more && lent == 0 => {
                    if let Err(source) = stream.refill(self.pos) {
                        self.phase = Phase::Done;
                        return Err(CaptureError::Read {
                            path: self.path.clone(),
                            source,
                        });
                    }
                    self.pos = 0;
                    self.prefetched = 0;
                }
                Some(_) if more => return Ok(Batch::Frames(lent)),
                _ => break (lent, stop),
            }
        };
        let offset = self.input.offset(self.pos);
        let error = match stop {
            Stop::Budget => return Ok(Batch::Frames(lent)),
            Stop::End => {
                self.phase = Phase::Done;
                return Ok(if lent > 0 {
                    Batch::Frames(lent)
                } else {
                    Batch::End
                });
            }
            Stop::Truncated => CaptureError::Truncated {
                path: self.path.clone(),
                offset,
                packets: self.received,
            },
            Stop::Corrupt(reason) => CaptureError::Corrupt {
                path: self.path.clone(),
                offset,
                reason,
            },
        };
        self.fail(lent, error)
    }

    /// `received` counts the frames lent so far; a file drops and filters
    /// nothing.
    fn stats(&self) -> CaptureStats {
        CaptureStats {
            received: self.received,
            dropped: 0,
            filtered: 0,
        }
    }

    /// `(bytes read, file size)`; `None` for a stream.
    fn progress(&self) -> Option<(u64, u64)> {
        match &self.input {
            Input::Map(map) => Some((self.pos as u64, map.len() as u64)),
            Input::Stream(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::process::Command;

    use super::*;
    use crate::testutil::{TempFile, drain, pcap_file};

    #[test]
    fn empty_file_is_reported_as_empty() {
        let file = TempFile::new("empty.pcap", b"");
        let error = FileSource::open(file.path()).unwrap_err();
        assert!(matches!(error, CaptureError::Empty { .. }), "{error:?}");
    }

    #[test]
    fn text_file_is_not_a_capture_and_names_its_first_bytes() {
        let file = TempFile::new("notes.pcap", b"{\"hello\": \"world\"}\n");
        match FileSource::open(file.path()).unwrap_err() {
            CaptureError::NotCapture { path, magic } => {
                assert_eq!(path, file.path());
                assert_eq!(magic, "7b 22 68 65 6c 6c 6f 22");
            }
            other => panic!("expected NotCapture, got {other:?}"),
        }
        let tiny = TempFile::new("tiny", b"ab");
        match FileSource::open(tiny.path()).unwrap_err() {
            CaptureError::NotCapture { magic, .. } => assert_eq!(magic, "61 62"),
            other => panic!("expected NotCapture, got {other:?}"),
        }
    }

    #[test]
    fn modified_pcap_magic_is_not_accepted() {
        // Kuznetsov's "modified" pcap has longer record headers; editcap
        // converts it, which is what the NotCapture message suggests.
        let mut bytes = pcap_file(true, false, 1, 65535, &[]);
        bytes[..4].copy_from_slice(&0xa1b2_cd34_u32.to_le_bytes());
        let file = TempFile::new("modified.pcap", &bytes);
        let error = FileSource::open(file.path()).unwrap_err();
        assert!(
            matches!(error, CaptureError::NotCapture { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn missing_file_is_an_open_error() {
        let path = std::env::temp_dir().join("flowstat-capture-no-such-file.pcap");
        let error = FileSource::open(&path).unwrap_err();
        assert!(matches!(error, CaptureError::Open { .. }), "{error:?}");
    }

    #[test]
    fn extension_does_not_matter_and_name_is_the_file_name() {
        let bytes = pcap_file(true, false, 1, 65535, &[(1, 2, 60, &[0u8; 60])]);
        let file = TempFile::new("capture.txt", &bytes);
        let mut source = FileSource::open(file.path()).unwrap();
        assert_eq!(source.name(), "capture.txt");
        assert_eq!(source.progress(), Some((24, bytes.len() as u64)));
        let (frames, error) = drain(&mut source, 8);
        assert!(error.is_none());
        assert_eq!(frames.len(), 1);
        assert_eq!(
            source.progress(),
            Some((bytes.len() as u64, bytes.len() as u64))
        );
        assert_eq!(
            source.stats(),
            CaptureStats {
                received: 1,
                dropped: 0,
                filtered: 0
            }
        );
    }

    #[test]
    fn budget_limits_each_batch_and_zero_budget_is_idle() {
        let records: Vec<(u32, u32, u32, &[u8])> =
            (0..5).map(|i| (i, 0, 4, &b"abcd"[..])).collect();
        let bytes = pcap_file(true, false, 1, 65535, &records);
        let file = TempFile::new("five.pcap", &bytes);
        let mut source = FileSource::open(file.path()).unwrap();
        let mut seen = 0;
        let mut count = |_: &Frame<'_>| seen += 1;
        assert_eq!(source.poll_batch(0, &mut count).unwrap(), Batch::Idle);
        assert_eq!(source.poll_batch(2, &mut count).unwrap(), Batch::Frames(2));
        assert_eq!(source.poll_batch(2, &mut count).unwrap(), Batch::Frames(2));
        assert_eq!(source.poll_batch(2, &mut count).unwrap(), Batch::Frames(1));
        assert_eq!(source.poll_batch(2, &mut count).unwrap(), Batch::End);
        assert_eq!(source.poll_batch(2, &mut count).unwrap(), Batch::End);
        assert_eq!(seen, 5);
    }

    /// Runs `program args`, failing the test with a clear message when the
    /// tool is missing or fails.
    fn run(program: &str, args: &[&str]) -> String {
        let out = Command::new(program).args(args).output().unwrap_or_else(|e| {
            panic!("cannot run `{program}` ({e}); install Wireshark's command-line tools (Debian: tshark)")
        });
        assert!(
            out.status.success(),
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `1112172654.366527000` -> nanoseconds, without going through floats.
    fn epoch_to_nanos(text: &str) -> u64 {
        let (secs, frac) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
        assert!(frac.len() <= 9, "more than 9 decimals: {text}");
        let frac_ns = format!("{frac:0<9}");
        secs.parse::<u64>().unwrap() * 1_000_000_000 + frac_ns.parse::<u64>().unwrap()
    }

    fn corpus_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                corpus_files(&path, out);
            } else if path
                .extension()
                .is_some_and(|e| e == "pcap" || e == "pcapng")
            {
                out.push(path);
            }
        }
    }

    /// What one corpus file gives: (frames, first timestamp), or the error.
    fn replay(path: &Path) -> Result<(u64, Option<u64>), String> {
        let mut source = FileSource::open(path).map_err(|e| e.to_string())?;
        let mut first = None;
        loop {
            match source.poll_batch(256, &mut |frame| {
                first.get_or_insert(frame.ts.as_nanos());
            }) {
                Ok(Batch::End) => break,
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok((source.stats().received, first))
    }

    /// Compares every capture of the corpus (`tests/fixtures`) with
    /// Wireshark's tools:
    /// the frame count with `capinfos`, the first frame's time with
    /// `tshark` (which catches timestamp resolution bugs).
    #[test]
    fn corpus_counts_and_first_timestamps_match_wireshark() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
        assert!(dir.is_dir(), "capture corpus {} not found", dir.display());
        let mut files = Vec::new();
        corpus_files(&dir, &mut files);
        files.sort();
        assert!(!files.is_empty(), "no captures under {}", dir.display());

        // One capinfos run for all files: "path<TAB>count" per line.
        let mut args = vec!["-T", "-c", "-r"];
        let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
        args.extend(names.iter().map(String::as_str));
        let counts: BTreeMap<String, u64> = run("capinfos", &args)
            .lines()
            .filter_map(|line| {
                let (path, count) = line.rsplit_once('\t')?;
                Some((path.to_string(), count.trim().parse().ok()?))
            })
            .collect();

        // tshark starts slowly; spread the files over a few threads.
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
        let failures: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = files
                .chunks(files.len().div_ceil(threads))
                .map(|chunk| {
                    let counts = &counts;
                    scope.spawn(move || {
                        let mut failures = Vec::new();
                        for path in chunk {
                            let name = path.display().to_string();
                            let Some(&expected) = counts.get(&name) else {
                                failures.push(format!("{name}: capinfos gave no count"));
                                continue;
                            };
                            let (frames, first) = match replay(path) {
                                Ok(r) => r,
                                Err(e) => {
                                    failures.push(format!("{name}: {e}"));
                                    continue;
                                }
                            };
                            if frames != expected {
                                failures.push(format!(
                                    "{name}: {frames} frames, capinfos says {expected}"
                                ));
                            }
                            let tshark = run(
                                "tshark",
                                &[
                                    "-r",
                                    &name,
                                    "-c",
                                    "1",
                                    "-T",
                                    "fields",
                                    "-e",
                                    "frame.time_epoch",
                                ],
                            );
                            let want = (!tshark.trim().is_empty()).then(|| epoch_to_nanos(&tshark));
                            if first != want {
                                failures.push(format!(
                                    "{name}: first frame at {first:?} ns, tshark says {want:?}"
                                ));
                            }
                        }
                        failures
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        assert!(
            failures.is_empty(),
            "{} of {} captures disagree with Wireshark:\n{}",
            failures.len(),
            files.len(),
            failures.join("\n")
        );
    }
}
