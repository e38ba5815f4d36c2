//! The replay harness's floor: `readcapture FILE` reads a capture as
//! `flowstatd replay` does (a mapped file, prefetched ahead of the reader,
//! in batches of 1024 frames) and only sums each frame's first byte, which
//! decoding reads first. Its time is what any replay of FILE spends on
//! bringing the capture's bytes in from memory.

use std::hint::black_box;
use std::path::Path;
use std::process::exit;

use flowstat_capture::FileSource;
use flowstat_core::{Batch, CaptureSource};

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: readcapture FILE");
        exit(2);
    };
    let mut source = FileSource::open(Path::new(&path)).unwrap_or_else(|e| {
        eprintln!("readcapture: {e}");
        exit(1);
    });
    let (mut frames, mut sum) = (0u64, 0u64);
    loop {
        let batch = source.poll_batch(1024, &mut |frame| {
            frames += 1;
            sum += u64::from(frame.data.first().copied().unwrap_or_default());
        });
        match batch {
            Ok(Batch::End) => break,
            Ok(Batch::Frames(_) | Batch::Idle) => {}
            Err(e) => {
                eprintln!("readcapture: {e}");
                exit(1);
            }
        }
    }
    black_box(sum);
    println!("{path}: {frames} frames");
}
