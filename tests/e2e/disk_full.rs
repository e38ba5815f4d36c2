//! The file sink on a full disk: a small tmpfs mounted for the test (needs
//! root, as CI runs). Only whole lines are ever left on disk, the sink's
//! `sent` is exactly the lines there and `dropped` the rest, and writing
//! resumes, whole, once there is room again.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{TempDir, paced_udp_flows, udp_flows};
use crate::sinks::{finish, spawn_replay};

/// The tmpfs's size.
const SIZE: u64 = 2 << 20;

/// A tmpfs of [`SIZE`] bytes mounted on a temporary directory, unmounted
/// (then the directory removed) when dropped.
struct Tmpfs {
    mnt: PathBuf,
    _dir: TempDir,
}

impl Tmpfs {
    fn new(name: &str) -> Self {
        let dir = TempDir::new(name);
        let mnt = dir.path("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={SIZE}"), "tmpfs"])
            .arg(&mnt)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "cannot mount a tmpfs (the test needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { mnt, _dir: dir }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.mnt.join(file)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.mnt)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
    }
}

/// A config with one file sink writing `path`.
fn file_sink_config(dir: &Path, path: &Path, extra: &str) -> PathBuf {
    let cfg = dir.join("agent.toml");
    std::fs::write(
        &cfg,
        format!("{extra}[[sink]]\ntype = \"file\"\npath = {path:?}\n"),
    )
    .unwrap();
    cfg
}

/// The file sink's final `sent` and `dropped`, from the replay's log.
fn final_counters(log: &str, path: &Path) -> (u64, u64) {
    let sink = format!("sink=\"file:{}\"", path.display());
    let line = log
        .lines()
        .find(|l| l.contains("sink stopped") && l.contains(&sink))
        .unwrap_or_else(|| panic!("no final counters for {sink}:\n{log}"));
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .map_or(0, |v| v.parse().unwrap())
    };
    (field("sent"), field("dropped"))
}

/// The records of a file sink: checks that every line is whole (parses
/// as JSON, the file ends with a newline); returns how many.
fn whole_lines(path: &Path) -> u64 {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{} ends with a torn line: {:?}",
        path.display(),
        &text[text.len().saturating_sub(200)..]
    );
    for (i, line) in text.lines().enumerate() {
        if let Err(e) = serde_json::from_str::<serde_json::Value>(line) {
            panic!(
                "line {} of {} is not JSON ({e}): {line:?}",
                i + 1,
                path.display()
            );
        }
    }
    text.lines().count() as u64
}

/// The records a replay of `pcap` with `extra` config gives a file sink
/// with room enough (in `name`, a directory of its own).
fn records_produced(name: &str, pcap: &Path, extra: &str) -> u64 {
    let dir = TempDir::new(name);
    let out = dir.path("flows.json");
    let cfg = file_sink_config(&dir.0, &out, extra);
    let (ok, log) = finish(spawn_replay(&cfg, &[pcap.to_owned()], &[]));
    assert!(ok, "{log}");
    let n = whole_lines(&out);
    assert_eq!(final_counters(&log, &out), (n, 0));
    n
}

#[test]
fn a_full_disk_leaves_whole_lines_and_counts_every_record() {
    let fs = Tmpfs::new("disk-full");
    let dir = TempDir::new("disk-full-input");
    let pcap = dir.path("flows.pcap");
    // Some 5,000 records, 4.5 MB of JSON: twice the room.
    udp_flows(&pcap, 2_500);
    let produced = records_produced("disk-full-reference", &pcap, "");

    let out = fs.path("flows.json");
    let cfg = file_sink_config(&dir.0, &out, "");
    let (ok, log) = finish(spawn_replay(&cfg, &[pcap], &[]));
    let (sent, dropped) = final_counters(&log, &out);
    let lines = whole_lines(&out);
    eprintln!(
        "{SIZE} B tmpfs: {produced} records produced, {lines} lines on disk \
         ({} B), sent {sent}, dropped {dropped}",
        std::fs::metadata(&out).unwrap().len()
    );
    assert!(lines > 1000, "{lines} lines: the disk filled too early");
    assert!(dropped > 0, "the disk never filled");
    assert_eq!(sent, lines, "sent is the lines on disk");
    assert_eq!(sent + dropped, produced, "every record is sent or dropped");
    assert!(!ok, "a replay that lost records fails:\n{log}");
    assert!(log.contains("no space left"), "{log}");
}

#[test]
fn writing_resumes_with_whole_lines_when_room_returns() {
    let fs = Tmpfs::new("disk-refilled");
    let dir = TempDir::new("disk-refilled-input");
    let pcap = dir.path("bursts.pcap");
    // 100 new flows a second for 7 s, at capture speed: some 2,000
    // records, 1.5 MB.
    paced_udp_flows(&pcap, 6, |_| 100);
    let extra = "[agent]\nupdate_interval_secs = 1\n";
    let produced = records_produced("disk-refilled-reference", &pcap, extra);

    // Room for 64 KiB of records, the rest taken by ballast.
    let ballast = fs.path("ballast");
    std::fs::write(&ballast, vec![b'x'; (SIZE - (64 << 10)) as usize]).unwrap();
    let out = fs.path("flows.json");
    let cfg = file_sink_config(&dir.0, &out, extra);
    let child = spawn_replay(&cfg, &[pcap], &["--realtime"]);

    // Once the file stops growing (the disk is full), free the room.
    let deadline = Instant::now() + Duration::from_secs(6);
    let (mut last, mut still) = (0, 0);
    while still < 5 {
        assert!(
            Instant::now() < deadline,
            "the file sink never filled the disk"
        );
        std::thread::sleep(Duration::from_millis(100));
        let len = std::fs::metadata(&out).map_or(0, |m| m.len());
        still = if len > 0 && len == last { still + 1 } else { 0 };
        last = len;
    }
    let lines_when_full = whole_lines(&out);
    std::fs::remove_file(&ballast).unwrap();

    let (ok, log) = finish(child);
    assert!(ok, "a replay waits for room rather than drop:\n{log}");
    assert!(log.contains("no space left"), "{log}");
    assert!(log.contains("room again"), "{log}");
    let (sent, dropped) = final_counters(&log, &out);
    let lines = whole_lines(&out);
    eprintln!(
        "{SIZE} B tmpfs, 64 KiB free: {produced} records produced, \
         {lines_when_full} lines on disk when full, {lines} at the end, \
         sent {sent}, dropped {dropped}"
    );
    assert!(lines > lines_when_full, "writing never resumed");
    assert_eq!((sent, dropped), (lines, 0));
    assert_eq!(lines, produced, "every record, once");
}
