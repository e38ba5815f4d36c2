//! flowstat-capture: where frames come from.
//!
//! This room implements [`flowstat_core::CaptureSource`] for capture files
//! and, behind features, for live interfaces. Every source lends frames
//! (`poll_batch` calls a closure with a borrow that ends when it returns),
//! so none of them copies a frame on the way to the decoder.
//!
//! - [`FileSource`] (always built) memory-maps a classic pcap or a pcapng
//!   file, recognises it by its magic bytes (never by its extension),
//!   checks the file header when it is opened, and then lends every frame
//!   straight from the map: no copy, no allocation and no system call per
//!   frame. Frames come in file order, stamped with the time the file
//!   records (nanoseconds since the epoch) and the link type of the file or
//!   of the pcapng interface. A file that ends in the middle of a record
//!   yields every complete frame, then
//!   [`CaptureError::Truncated`](flowstat_core::CaptureError::Truncated); a
//!   structurally broken one stops with `Corrupt` at the offset of the bad
//!   record.
//! - `PcapLiveSource` (feature `libpcap`, needs libpcap) captures on one
//!   interface through libpcap's TPACKET_V3 ring, non-blocking, with an
//!   optional BPF filter; frames carry the kernel's receive timestamp
//!   (nanosecond resolution) and the interface's link type; `wait` polls
//!   libpcap's descriptor.
//! - `XdpSource` (feature `af_xdp`, builds libxdp through xsk-rs) is one
//!   AF_XDP socket on one RX queue: a redirect program of its own sends
//!   the queue's frames into a UMEM, the source lends them from there and
//!   refills the fill ring once the closure has returned. Native or
//!   generic XDP, zero-copy or copy, each tried best first; frames are
//!   Ethernet and each batch is stamped with CLOCK_REALTIME (AF_XDP has no
//!   receive timestamp). `rx_queue_count` tells how many queues to open.
//!   The program is attached through a BPF link, so it is detached when
//!   the last source of an interface is dropped or the process ends, even
//!   by a crash.
//!
//! Live sources report drops the kernel counted (refreshed at most every
//! 100 ms, or on demand with `refresh_stats`), and fail to open with a
//! [`CaptureError::Interface`](flowstat_core::CaptureError::Interface)
//! whose reason is one line saying why, so that the agent can log it and
//! fall back (from AF_XDP to libpcap, say). They are `Send`, not `Sync`:
//! one thread polls each.
//!
//! This crate does not decode frames (that is flowstat-decode), sort them
//! by time, or keep anything a pcapng file says besides its packets (name
//! resolution, statistics and comments are skipped); compressed files must
//! be uncompressed first.
#![cfg_attr(test, allow(clippy::unwrap_used))]
#![warn(clippy::undocumented_unsafe_blocks)]

mod file;
#[cfg(any(feature = "libpcap", feature = "af_xdp"))]
mod live;
mod pcap;
#[cfg(feature = "libpcap")]
mod pcap_live;
mod pcapng;
mod sigbus;
#[cfg(test)]
mod testutil;
#[cfg(feature = "af_xdp")]
mod xdp;

pub use file::FileSource;
#[cfg(feature = "libpcap")]
pub use pcap_live::{PcapLiveConfig, PcapLiveSource, check_filter};
#[cfg(feature = "af_xdp")]
pub use xdp::{XdpConfig, XdpMode, XdpSource, ZeroCopy, frame_size_for, rx_queue_count};

/// A 32-bit word in a file's (or pcapng section's) byte order.
#[inline]
fn read_u32(big_endian: bool, bytes: [u8; 4]) -> u32 {
    if big_endian {
        u32::from_be_bytes(bytes)
    } else {
        u32::from_le_bytes(bytes)
    }
}
