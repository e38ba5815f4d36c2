//! flowstat's benches: criterion benches per room (`benches/`), and the
//! mixed capture the replay harness (`replay-harness.sh`) measures with.
#![forbid(unsafe_code)]

use std::path::Path;
use std::time::Duration;

use flowstat_capture::FileSource;
use flowstat_core::{Batch, CaptureSource, Frame, LinkType, Timestamp};
use flowstat_tests::corpus_files;

/// One frame, owned.
#[derive(Clone, Debug)]
pub struct OwnedFrame {
    /// Capture time.
    pub ts: Timestamp,
    /// Wire length.
    pub wire_len: u32,
    /// Link type.
    pub link: LinkType,
    /// Captured bytes.
    pub data: Vec<u8>,
}

impl OwnedFrame {
    /// The frame, lent.
    pub fn frame(&self) -> Frame<'_> {
        Frame {
            ts: self.ts,
            wire_len: self.wire_len,
            link: self.link,
            data: &self.data,
        }
    }
}

/// Every frame of `path`, owned (reading stops at the first error).
pub fn read_frames(path: &Path) -> Vec<OwnedFrame> {
    let mut frames = Vec::new();
    let Ok(mut source) = FileSource::open(path) else {
        return frames;
    };
    while let Ok(Batch::Frames(_)) = source.poll_batch(4096, &mut |f| {
        frames.push(OwnedFrame {
            ts: f.ts,
            wire_len: f.wire_len,
            link: f.link,
            data: f.data.to_vec(),
        })
    }) {}
    frames
}

/// The corpus's Ethernet frames as one mixed capture: file after file, each
/// file's packets keeping their order and spacing (gaps over a second are
/// cut to a second), a second between files. Times start at 0; returns the
/// frames and the round's length.
pub fn mixed_round() -> (Vec<OwnedFrame>, Duration) {
    let mut out = Vec::new();
    let mut cursor = 0u64;
    for path in corpus_files() {
        let frames = read_frames(&path);
        if frames.iter().any(|f| f.link != LinkType::ETHERNET) {
            continue;
        }
        let mut prev: Option<Timestamp> = None;
        for mut f in frames {
            let gap = prev.map_or(0, |p| {
                f.ts.as_nanos()
                    .saturating_sub(p.as_nanos())
                    .min(1_000_000_000)
            });
            prev = Some(f.ts);
            cursor += gap;
            f.ts = Timestamp::from_nanos(cursor);
            out.push(f);
        }
        cursor += 1_000_000_000;
    }
    (out, Duration::from_nanos(cursor))
}
