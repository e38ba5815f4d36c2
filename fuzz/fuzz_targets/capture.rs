//! Fuzz target for the capture file readers: the input is a whole capture
//! file (classic pcap in either byte order and resolution, or pcapng),
//! opened and read to its end as replay reads it, in batches of 64 frames.
//! Every frame's bytes are touched.
#![no_main]

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::LazyLock;

use flowstat_capture::FileSource;
use flowstat_core::{Batch, CaptureSource};
use libfuzzer_sys::fuzz_target;

/// Where each input is written for `FileSource::open` (one file per
/// process, in memory).
static PATH: LazyLock<PathBuf> =
    LazyLock::new(|| PathBuf::from(format!("/dev/shm/flowstat-fuzz-{}.pcap", std::process::id())));

fuzz_target!(|data: &[u8]| {
    std::fs::write(&*PATH, data).expect("write the input to /dev/shm");
    let Ok(mut source) = FileSource::open(&PATH) else {
        return;
    };
    let mut sum = 0usize;
    loop {
        match source.poll_batch(64, &mut |frame| {
            sum += frame.data.iter().map(|&b| usize::from(b)).sum::<usize>();
            black_box((frame.ts, frame.wire_len, frame.link));
        }) {
            Ok(Batch::End) | Err(_) => break,
            Ok(_) => {}
        }
    }
    black_box((sum, source.stats(), source.progress()));
});
