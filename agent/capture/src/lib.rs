//! flowstat-capture: where frames come from.
//!
//! This room implements [`flowstat_core::CaptureSource`] for capture files.
//! [`FileSource`] memory-maps a classic pcap or a pcapng file, recognises it
//! by its magic bytes (never by its extension), checks the file header when
//! it is opened, and then lends every frame straight from the map: no copy,
//! no allocation and no system call per frame. Frames come in file order,
//! stamped with the time the file records (nanoseconds since the epoch) and
//! the link type of the file or of the pcapng interface. A file that ends in
//! the middle of a record yields every complete frame, then
//! [`CaptureError::Truncated`](flowstat_core::CaptureError::Truncated); a
//! structurally broken one stops with `Corrupt` at the offset of the bad
//! record.
//!
//! It does not decode frames (that is flowstat-decode), filter them, sort
//! them by time, or keep anything a pcapng file says besides its packets
//! (name resolution, statistics and comments are skipped); compressed files
//! must be uncompressed first. Live capture (libpcap, AF_XDP) will come later
//! in this crate, behind features.
#![cfg_attr(test, allow(clippy::unwrap_used))]
#![warn(clippy::undocumented_unsafe_blocks)]

mod file;
mod pcap;
mod pcapng;
#[cfg(test)]
mod testutil;

pub use file::FileSource;

/// A 32-bit word in a file's (or pcapng section's) byte order.
#[inline]
fn read_u32(big_endian: bool, bytes: [u8; 4]) -> u32 {
    if big_endian {
        u32::from_be_bytes(bytes)
    } else {
        u32::from_le_bytes(bytes)
    }
}
