//! Test helpers: temporary files and builders for small captures.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use flowstat_core::{Batch, CaptureError, CaptureSource};

use crate::FileSource;

/// A file in a fresh directory under the system temp dir, removed on drop.
pub(crate) struct TempFile {
    dir: PathBuf,
    path: PathBuf,
}

impl TempFile {
    /// Writes `bytes` to a file called `name` in a directory of its own.
    pub(crate) fn new(name: &str, bytes: &[u8]) -> TempFile {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "flowstat-capture-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        TempFile { dir, path }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A frame copied out of the callback, for comparisons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OwnedFrame {
    pub ts: u64,
    pub wire_len: u32,
    pub link: u32,
    pub data: Vec<u8>,
}

/// Polls `source` with `budget` until it ends; returns the frames and the
/// error it ended with, if any (checking that `End` follows the error).
pub(crate) fn drain(
    source: &mut FileSource,
    budget: usize,
) -> (Vec<OwnedFrame>, Option<CaptureError>) {
    let mut frames = Vec::new();
    loop {
        let polled = source.poll_batch(budget, &mut |f| {
            frames.push(OwnedFrame {
                ts: f.ts.as_nanos(),
                wire_len: f.wire_len,
                link: f.link.0,
                data: f.data.to_vec(),
            });
        });
        match polled {
            Ok(Batch::Frames(n)) => assert!(n > 0 && n <= budget, "{n} frames for {budget}"),
            Ok(Batch::End) => return (frames, None),
            Ok(Batch::Idle) => panic!("a file is never idle"),
            Err(error) => {
                assert_eq!(source.poll_batch(budget, &mut |_| {}).unwrap(), Batch::End);
                assert_eq!(source.stats().received, frames.len() as u64);
                return (frames, Some(error));
            }
        }
    }
}

/// A classic pcap file: `records` are (seconds, sub-seconds, original
/// length, captured bytes).
pub(crate) fn pcap_file(
    little_endian: bool,
    nanos: bool,
    link: u32,
    snaplen: u32,
    records: &[(u32, u32, u32, &[u8])],
) -> Vec<u8> {
    let u32b = |v: u32| {
        if little_endian {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        }
    };
    let mut out = Vec::new();
    out.extend_from_slice(&u32b(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    let (major, minor) = if little_endian {
        (2u16.to_le_bytes(), 4u16.to_le_bytes())
    } else {
        (2u16.to_be_bytes(), 4u16.to_be_bytes())
    };
    out.extend_from_slice(&major);
    out.extend_from_slice(&minor);
    out.extend_from_slice(&[0; 8]); // thiszone, sigfigs
    out.extend_from_slice(&u32b(snaplen));
    out.extend_from_slice(&u32b(link));
    for &(sec, frac, origlen, data) in records {
        out.extend_from_slice(&u32b(sec));
        out.extend_from_slice(&u32b(frac));
        out.extend_from_slice(&u32b(data.len() as u32));
        out.extend_from_slice(&u32b(origlen));
        out.extend_from_slice(data);
    }
    out
}

/// A pcapng file under construction, block by block.
pub(crate) struct Ng {
    big_endian: bool,
    pub bytes: Vec<u8>,
}

impl Ng {
    /// A file that starts with a section header in the given byte order.
    pub(crate) fn new(big_endian: bool) -> Ng {
        let mut ng = Ng {
            big_endian,
            bytes: Vec::new(),
        };
        ng.section(big_endian);
        ng
    }

    /// `v` in the current section's byte order.
    pub(crate) fn word(&self, v: u32) -> [u8; 4] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    /// `v` in the current section's byte order.
    pub(crate) fn dword(&self, v: u64) -> [u8; 8] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn half(&self, v: u16) -> [u8; 2] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    /// Starts a new section (SHB, version 1.0, no options).
    pub(crate) fn section(&mut self, big_endian: bool) -> &mut Ng {
        self.big_endian = big_endian;
        let mut body = Vec::new();
        body.extend_from_slice(&self.word(0x1a2b_3c4d));
        body.extend_from_slice(&self.half(1));
        body.extend_from_slice(&self.half(0));
        body.extend_from_slice(&self.dword(u64::MAX)); // section length: unknown
        self.block(0x0a0d_0d0a, &body)
    }

    /// Appends a block: type, total length, `body` padded to 4 bytes,
    /// total length.
    pub(crate) fn block(&mut self, kind: u32, body: &[u8]) -> &mut Ng {
        let padded = body.len().div_ceil(4) * 4;
        let len = (12 + padded) as u32;
        let (kind, len) = (self.word(kind), self.word(len));
        self.bytes.extend_from_slice(&kind);
        self.bytes.extend_from_slice(&len);
        self.bytes.extend_from_slice(body);
        self.bytes.resize(self.bytes.len() + padded - body.len(), 0);
        self.bytes.extend_from_slice(&len);
        self
    }

    /// Options: (code, value), each padded, then opt_endofopt.
    fn options(&self, options: &[(u16, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        if options.is_empty() {
            return out;
        }
        for &(code, value) in options {
            out.extend_from_slice(&self.half(code));
            out.extend_from_slice(&self.half(value.len() as u16));
            out.extend_from_slice(value);
            out.resize(out.len().div_ceil(4) * 4, 0);
        }
        out.extend_from_slice(&[0; 4]);
        out
    }

    /// An Interface Description Block.
    pub(crate) fn idb(&mut self, link: u16, snaplen: u32, options: &[(u16, &[u8])]) -> &mut Ng {
        let mut body = Vec::new();
        body.extend_from_slice(&self.half(link));
        body.extend_from_slice(&[0; 2]);
        body.extend_from_slice(&self.word(snaplen));
        body.extend_from_slice(&self.options(options));
        self.block(1, &body)
    }

    fn packet_body(&self, ts: u64, origlen: u32, data: &[u8], options: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&self.word((ts >> 32) as u32));
        body.extend_from_slice(&self.word(ts as u32));
        body.extend_from_slice(&self.word(data.len() as u32));
        body.extend_from_slice(&self.word(origlen));
        body.extend_from_slice(data);
        body.resize(body.len().div_ceil(4) * 4, 0);
        body.extend_from_slice(&self.options(options));
        body
    }

    /// An Enhanced Packet Block.
    pub(crate) fn epb(
        &mut self,
        interface: u32,
        ts: u64,
        origlen: u32,
        data: &[u8],
        options: &[(u16, &[u8])],
    ) -> &mut Ng {
        let mut body = self.word(interface).to_vec();
        body.extend_from_slice(&self.packet_body(ts, origlen, data, options));
        self.block(6, &body)
    }

    /// An obsolete Packet Block (type 2).
    pub(crate) fn opb(
        &mut self,
        interface: u16,
        ts: u64,
        origlen: u32,
        data: &[u8],
        options: &[(u16, &[u8])],
    ) -> &mut Ng {
        let mut body = self.half(interface).to_vec();
        body.extend_from_slice(&self.half(0)); // drops count
        body.extend_from_slice(&self.packet_body(ts, origlen, data, options));
        self.block(2, &body)
    }

    /// A Simple Packet Block.
    pub(crate) fn spb(&mut self, origlen: u32, data: &[u8]) -> &mut Ng {
        let mut body = self.word(origlen).to_vec();
        body.extend_from_slice(data);
        self.block(3, &body)
    }
}
