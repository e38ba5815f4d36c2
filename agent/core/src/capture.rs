use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::Frame;

/// What one call of [`CaptureSource::poll_batch`] produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Batch {
    /// This many frames were lent to the callback (at least one).
    Frames(usize),
    /// No frame is ready now; a live source may have more later.
    Idle,
    /// The source is exhausted (end of file); later calls return `End` again.
    End,
}

/// Counters a capture source keeps about itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Frames delivered to flowstat.
    pub received: u64,
    /// Frames the capture layer (kernel ring, NIC) dropped before flowstat
    /// saw them; always 0 for files.
    pub dropped: u64,
    /// Frames removed by a capture filter (BPF), where the source can tell.
    pub filtered: u64,
}

/// A source of frames: a capture file, a libpcap handle, AF_XDP sockets.
///
/// The source *lends* frames: [`poll_batch`](Self::poll_batch) calls `f` once
/// per frame with a borrow that ends when `f` returns, so a source can hand
/// out frames straight from a memory map or a kernel ring without copying.
pub trait CaptureSource {
    /// The name records carry in `interface`: the interface name for live
    /// capture, the file's name for offline sources.
    fn name(&self) -> &str;

    /// Lends up to `budget` frames, in capture order, to `f`.
    ///
    /// Errors end the source: after an `Err`, the caller stops polling. A
    /// file that ends in the middle of a record reports
    /// [`CaptureError::Truncated`] after lending every complete frame.
    fn poll_batch(
        &mut self,
        budget: usize,
        f: &mut dyn FnMut(&Frame<'_>),
    ) -> Result<Batch, CaptureError>;

    /// Blocks until a frame may be ready or `timeout` has passed, whichever
    /// comes first. Called after [`Batch::Idle`]; a live source waits on its
    /// descriptor (poll), so the caller can check for shutdown at least
    /// every `timeout`. Files are never idle; the default returns at once.
    fn wait(&mut self, timeout: Duration) -> Result<(), CaptureError> {
        let _ = timeout;
        Ok(())
    }

    /// Counters so far.
    fn stats(&self) -> CaptureStats;

    /// `(done, total)` in bytes for sources with a known size (files), used
    /// for progress display. `None` for live sources.
    fn progress(&self) -> Option<(u64, u64)> {
        None
    }
}

/// Why a capture source could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be opened or mapped.
    #[error("cannot open {}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// A stream (pipe, FIFO, standard input) failed while being read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The stream.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// The file is empty.
    #[error("{} is empty (0 bytes): not a capture file", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The file does not start with a pcap or pcapng magic number.
    #[error("{} is not a pcap or pcapng capture (it starts with bytes {magic})", path.display())]
    NotCapture {
        /// The file.
        path: PathBuf,
        /// The first bytes of the file, in hex.
        magic: String,
    },
    /// The file header or a block is corrupt, so nothing after it can be read.
    #[error("{} is corrupt at byte {offset}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the bad header or block.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The file ends in the middle of a record (a capture cut short).
    #[error(
        "{} ends in the middle of a record at byte {offset} (truncated capture); \
         {packets} complete packets were read",
        path.display()
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Byte offset of the incomplete record.
        offset: u64,
        /// Complete packets read before it.
        packets: u64,
    },
    /// A mapped capture file shrank while it was read (another process
    /// truncated or rewrote it).
    #[error(
        "{} shrank while being read (it is now {size} bytes; a capture must not change \
         during replay); {packets} complete packets were read",
        path.display()
    )]
    Shrank {
        /// The file.
        path: PathBuf,
        /// Its size when the shrink was found.
        size: u64,
        /// Packets read before it.
        packets: u64,
    },
    /// A live interface could not be opened or read.
    #[error("interface {interface}: {reason}")]
    Interface {
        /// The interface name.
        interface: String,
        /// What failed and what to do.
        reason: String,
    },
}
