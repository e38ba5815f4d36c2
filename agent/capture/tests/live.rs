//! Live capture in network namespaces: libpcap and AF_XDP on a veth pair.
//!
//! Each test makes its own namespace (`fscap-<pid>-<n>`) holding a veth
//! pair `a` - `b` (offloads off, IPv6 off so the kernel sends nothing of
//! its own), captures on `b` from a thread that entered the namespace (the
//! way `ip netns exec` does: setns, a private mount namespace and a fresh
//! sysfs), and injects frames on `a` with `tcpreplay`. Nothing leaves the
//! namespace, which is deleted (links, programs and all) even when a test
//! fails.
//!
//! They need root (CI runs them as root). An AF_XDP test that finds the
//! kernel refusing AF_XDP altogether prints why and passes.
#![cfg(all(feature = "libpcap", feature = "af_xdp"))]
#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use flowstat_capture::{
    PcapLiveConfig, PcapLiveSource, XdpConfig, XdpMode, XdpSource, ZeroCopy, frame_size_for,
    rx_queue_count,
};
use flowstat_core::{Batch, CaptureError, CaptureSource};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

/// Set in the environment of the crash helper (see
/// [`crash_helper_exits_holding_an_xdp_socket`]).
const CRASH_HELPER_ENV: &str = "FLOWSTAT_TEST_XDP_CRASH_INTERFACE";

// ---------------------------------------------------------------------------
// Namespaces

/// Runs a command and returns its output, failing the test if it fails.
fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{program}`: {e}"));
    assert!(
        out.status.success(),
        "`{program} {}` failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    out
}

/// A network namespace with a veth pair `a` - `b`, deleted on drop.
///
/// One exists at a time: the tests run one after another. A process a
/// test starts (`ip`, `tcpreplay`) holds a copy of every fd of the test
/// process from its fork to its exec, another test's AF_XDP link and
/// socket among them, and for so long that test's program stays attached
/// and its queue bound after the source is dropped: a source opened at
/// once after it (a mode switch) found the interface busy.
struct Netns {
    name: String,
    _alone: MutexGuard<'static, ()>,
}

impl Netns {
    /// A namespace whose veth pair has `mtu` and `queues` queues each way;
    /// waits until no other test holds one.
    fn new(mtu: u32, queues: u32) -> Netns {
        static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let alone = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
        let name = format!(
            "fscap-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        run("ip", &["netns", "add", &name]);
        // From here on, drop deletes the namespace whatever fails.
        let ns = Netns {
            name,
            _alone: alone,
        };
        // No IPv6 on the links: no router solicitations, no MLD reports,
        // nothing but the injected frames.
        ns.exec(&[
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ]);
        let q = queues.to_string();
        let mtu = mtu.to_string();
        ns.ip(&[
            "link",
            "add",
            "name",
            "a",
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
            "mtu",
            &mtu,
            "type",
            "veth",
            "peer",
            "name",
            "b",
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
            "mtu",
            &mtu,
        ]);
        for end in ["a", "b"] {
            ns.exec(&[
                "ethtool", "-K", end, "gro", "off", "gso", "off", "tso", "off",
            ]);
            ns.ip(&["link", "set", "dev", end, "up"]);
        }
        ns
    }

    /// `ip -n NS args`.
    fn ip(&self, args: &[&str]) -> Output {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// `ip netns exec NS args`.
    fn exec(&self, args: &[&str]) -> Output {
        let mut all = vec!["netns", "exec", &self.name];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Sets the MTU of both ends.
    fn set_mtu(&self, mtu: u32) {
        for end in ["a", "b"] {
            self.ip(&["link", "set", "dev", end, "mtu", &mtu.to_string()]);
        }
    }

    /// What `ip -n NS link show b` says.
    fn link_b(&self) -> String {
        String::from_utf8_lossy(&self.ip(&["link", "show", "dev", "b"]).stdout).into_owned()
    }

    /// Starts `tcpreplay` sending the frames of `pcap` out of `a`.
    fn replay(&self, pcap: &TempPcap) -> Child {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.name,
                "tcpreplay",
                "-q",
                "-t",
                "-i",
                "a",
            ])
            .arg(&pcap.path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Runs `f` on a thread inside the namespace, with the namespace's
    /// sysfs, and returns what it returns (a panic in `f` fails the test).
    fn run_inside<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    self.enter();
                    f()
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Moves the calling thread into the namespace, as `ip netns exec`
    /// moves a process: setns, then a private mount namespace with the
    /// namespace's sysfs on /sys.
    fn enter(&self) {
        let file = File::open(format!("/run/netns/{}", self.name)).unwrap();
        setns(&file, CloneFlags::CLONE_NEWNET).expect("setns (needs root)");
        unshare(CloneFlags::CLONE_NEWNS).expect("unshare(CLONE_NEWNS)");
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .expect("make / a slave mount");
        umount2("/sys", MntFlags::MNT_DETACH).expect("unmount /sys");
        mount(
            Some(self.name.as_str()),
            "/sys",
            Some("sysfs"),
            MsFlags::empty(),
            None::<&str>,
        )
        .expect("mount sysfs");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

// ---------------------------------------------------------------------------
// Frames

const DST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const SRC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

/// A frame of `len` bytes: IPv4/UDP (to TEST-NET-1) when `udp`, else the
/// local experimental EtherType 0x88b5. `seq` makes every frame unique.
fn frame(seq: usize, len: usize, udp: bool) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&DST);
    f.extend_from_slice(&SRC);
    if udp {
        f.extend_from_slice(&[0x08, 0x00]);
        let total = u16::try_from(len - 14).unwrap();
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[4..6].copy_from_slice(&(seq as u16).to_be_bytes());
        ip[6] = 0x40; // don't fragment
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&[192, 0, 2, 1]);
        ip[16..20].copy_from_slice(&[192, 0, 2, 2]);
        let sum: u32 = ip
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        let sum = (sum & 0xffff) + (sum >> 16);
        let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&40000u16.to_be_bytes());
        f.extend_from_slice(&9u16.to_be_bytes());
        f.extend_from_slice(&(total - 20).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
    } else {
        f.extend_from_slice(&[0x88, 0xb5]);
    }
    f.extend_from_slice(&(seq as u32).to_be_bytes());
    while f.len() < len {
        f.push((seq + f.len()) as u8);
    }
    f
}

/// `count` frames from 60 to `max_len` bytes (both ends included), every
/// third one UDP.
fn frames(count: usize, max_len: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let len = match i % 10 {
                0 => 60,
                1 => max_len,
                _ => 60 + (i * 7919) % (max_len - 59),
            };
            frame(i, len, i % 3 == 0)
        })
        .collect()
}

fn is_udp(frame: &[u8]) -> bool {
    frame[12..14] == [0x08, 0x00] && frame[23] == 17
}

/// A classic pcap file of Ethernet frames, removed on drop.
struct TempPcap {
    path: PathBuf,
}

impl TempPcap {
    fn new(frames: &[Vec<u8>]) -> TempPcap {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "fscap-{}-{}.pcap",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0xa1b2_c3d4_u32.to_le_bytes());
        bytes.extend_from_slice(&2u16.to_le_bytes());
        bytes.extend_from_slice(&4u16.to_le_bytes());
        for word in [0u32, 0, 65535, 1] {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        for (i, f) in frames.iter().enumerate() {
            let len = u32::try_from(f.len()).unwrap();
            for word in [1_700_000_000 + i as u32, 0, len, len] {
                bytes.extend_from_slice(&word.to_le_bytes());
            }
            bytes.extend_from_slice(f);
        }
        std::fs::write(&path, bytes).unwrap();
        TempPcap { path }
    }
}

impl Drop for TempPcap {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

// ---------------------------------------------------------------------------
// Capturing

/// A frame copied out of the callback.
#[derive(Debug)]
struct Got {
    ts: u64,
    wire_len: u32,
    link: u32,
    data: Vec<u8>,
}

fn wall_clock_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Sends `sent` out of `a` with tcpreplay while polling `source`, and
/// returns what `source` lent until the link had been quiet for 500 ms
/// after tcpreplay finished. Checks the timestamps on the way.
fn capture_replay(ns: &Netns, source: &mut dyn CaptureSource, sent: &[Vec<u8>]) -> Vec<Got> {
    let pcap = TempPcap::new(sent);
    let start = wall_clock_nanos();
    let mut child = ns.replay(&pcap);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    let mut finished = false;
    let mut quiet_since: Option<Instant> = None;
    while Instant::now() < deadline {
        let batch = source
            .poll_batch(64, &mut |f| {
                assert_eq!(f.wire_len as usize, f.data.len(), "a frame was cut short");
                got.push(Got {
                    ts: f.ts.as_nanos(),
                    wire_len: f.wire_len,
                    link: f.link.0,
                    data: f.data.to_vec(),
                });
            })
            .unwrap();
        finished = finished || child.try_wait().unwrap().is_some();
        match batch {
            Batch::Frames(n) => {
                assert!((1..=64).contains(&n));
                quiet_since = None;
            }
            Batch::Idle if finished => {
                if quiet_since.get_or_insert_with(Instant::now).elapsed()
                    > Duration::from_millis(500)
                {
                    break;
                }
                source.wait(Duration::from_millis(20)).unwrap();
            }
            Batch::Idle => source.wait(Duration::from_millis(20)).unwrap(),
            Batch::End => panic!("a live source ended"),
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "tcpreplay failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let end = wall_clock_nanos();
    for pair in got.windows(2) {
        assert!(pair[0].ts <= pair[1].ts, "timestamps go backwards");
    }
    for g in &got {
        assert!(
            (start..=end).contains(&g.ts),
            "timestamp {} outside the capture's run {start}..{end}",
            g.ts
        );
    }
    got
}

/// Fails unless `got` is exactly `want`, in order.
fn assert_frames(got: &[Got], want: &[&Vec<u8>]) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g.data == **w && g.wire_len as usize == w.len() && g.link == 1,
            "frame {i}: got {} bytes (wire {}, link {}) starting {:02x?}, want {} bytes \
             starting {:02x?}",
            g.data.len(),
            g.wire_len,
            g.link,
            &g.data[..g.data.len().min(24)],
            w.len(),
            &w[..w.len().min(24)]
        );
    }
    assert_eq!(got.len(), want.len(), "frame count");
}

/// The reason of an `Interface` error.
fn reason(error: CaptureError) -> String {
    match error {
        CaptureError::Interface { reason, .. } => {
            assert!(!reason.contains('\n'), "reason is not one line: {reason}");
            reason
        }
        other => panic!("expected an Interface error, got {other:?}"),
    }
}

/// Opens an AF_XDP source, or `None` (after printing why) when the kernel
/// refuses AF_XDP altogether; any other failure fails the test.
fn open_xdp(config: &XdpConfig) -> Option<XdpSource> {
    match XdpSource::open(config) {
        Ok(source) => Some(source),
        Err(e) => {
            let r = reason(e);
            if r.contains("needs root") || r.contains("kernel lacks") {
                eprintln!("skipping: the kernel refuses AF_XDP here: {r}");
                return None;
            }
            panic!("cannot open AF_XDP on {}: {r}", config.interface);
        }
    }
}

/// Drops the calling thread's capabilities (they are per thread), as if
/// it were an unprivileged process.
fn drop_capabilities() {
    keep_capabilities(&[]);
}

const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
const CAP_IPC_LOCK: u32 = 14;
const CAP_BPF: u32 = 39;

/// Keeps only the capabilities numbered `keep` in the calling thread's
/// effective and permitted sets.
fn keep_capabilities(keep: &[u32]) {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let header = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    for &cap in keep {
        let d = &mut data[cap as usize / 32];
        d.effective |= 1 << (cap % 32);
        d.permitted |= 1 << (cap % 32);
    }
    // SAFETY: capset reads a v3 header and two data words, which is what
    // these point to; pid 0 is the calling thread.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) };
    assert_eq!(rc, 0, "capset: {}", std::io::Error::last_os_error());
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn libpcap_receives_exactly_the_injected_frames_and_filters() {
    let ns = Netns::new(9000, 1);
    let sent = frames(300, 9014);
    ns.run_inside(|| {
        let mut source = PcapLiveSource::open(&PcapLiveConfig::new("b")).unwrap();
        assert_eq!(source.name(), "b");
        let got = capture_replay(&ns, &mut source, &sent);
        assert_frames(&got, &sent.iter().collect::<Vec<_>>());
        let stats = source.refresh_stats().unwrap();
        assert_eq!(stats.received, 300);
        assert_eq!(stats.dropped, 0);
        drop(source);

        let mut config = PcapLiveConfig::new("b");
        config.filter = Some("udp".to_string());
        let mut source = PcapLiveSource::open(&config).unwrap();
        let got = capture_replay(&ns, &mut source, &sent);
        let udp: Vec<_> = sent.iter().filter(|f| is_udp(f)).collect();
        assert_eq!(udp.len(), 100);
        assert_frames(&got, &udp);
        let stats = source.refresh_stats().unwrap();
        assert_eq!((stats.received, stats.dropped), (100, 0));

        let mut config = PcapLiveConfig::new("b");
        config.filter = Some("udp and (".to_string());
        let r = reason(PcapLiveSource::open(&config).unwrap_err());
        assert!(r.starts_with("bad BPF filter \"udp and (\": "), "{r}");
        assert!(r.len() > "bad BPF filter \"udp and (\": ".len(), "{r}");

        let r = reason(PcapLiveSource::open(&PcapLiveConfig::new("eth9")).unwrap_err());
        assert_eq!(r, "no such interface (see `ip link`)");
    });
}

#[test]
fn af_xdp_receives_exactly_the_injected_frames_in_generic_and_native_mode() {
    let ns = Netns::new(9000, 1);
    // 4096-byte UMEM frames hold 3840 bytes after XDP's 256 of headroom.
    let sent = frames(300, 3840);
    ns.run_inside(|| {
        let mut config = XdpConfig::new("b", 0);
        config.mode = XdpMode::Generic;
        let Some(mut source) = open_xdp(&config) else {
            return;
        };
        assert_eq!(source.mode(), XdpMode::Generic);
        assert!(!source.is_zero_copy());
        assert!(ns.link_b().contains("xdpgeneric"), "{}", ns.link_b());
        let got = capture_replay(&ns, &mut source, &sent);
        assert_frames(&got, &sent.iter().collect::<Vec<_>>());
        let stats = source.refresh_stats().unwrap();
        assert_eq!((stats.received, stats.dropped), (300, 0));

        // A frame too large for a UMEM frame is dropped, and counted.
        let big = frame(1000, 5000, false);
        let got = capture_replay(&ns, &mut source, &[big]);
        assert!(
            got.is_empty(),
            "a 5000-byte frame fit a 4096-byte UMEM frame"
        );
        let stats = source.refresh_stats().unwrap();
        assert_eq!((stats.received, stats.dropped), (300, 1));
        drop(source);
        assert!(!ns.link_b().contains("xdp"), "{}", ns.link_b());

        assert_eq!(frame_size_for("b").unwrap(), 4096);
        // veth runs native XDP only with frames that fit a page: at MTU
        // 9000, auto mode has to fall back to generic.
        let config = XdpConfig::new("b", 0);
        let source = open_xdp(&config).unwrap();
        assert_eq!(source.mode(), XdpMode::Generic);
        drop(source);

        // The largest frame 2048-byte UMEM frames hold: 1770 + 22 + 256.
        ns.set_mtu(1771);
        assert_eq!(frame_size_for("b").unwrap(), 4096);
        ns.set_mtu(1770);
        assert_eq!(frame_size_for("b").unwrap(), 2048);
        ns.set_mtu(1500);
        let sent = frames(300, 1514);
        let mut config = XdpConfig::new("b", 0);
        config.mode = XdpMode::Native;
        config.frame_size = frame_size_for("b").unwrap();
        let mut source = open_xdp(&config).unwrap();
        assert_eq!(source.mode(), XdpMode::Native);
        assert!(!source.is_zero_copy(), "veth has no zero-copy");
        let link = ns.link_b();
        assert!(
            link.contains("xdp") && !link.contains("xdpgeneric"),
            "{link}"
        );
        let got = capture_replay(&ns, &mut source, &sent);
        assert_frames(&got, &sent.iter().collect::<Vec<_>>());
        let stats = source.refresh_stats().unwrap();
        assert_eq!((stats.received, stats.dropped), (300, 0));
        drop(source);
        assert!(!ns.link_b().contains("xdp"), "{}", ns.link_b());

        // Busy polling, as the kernel then holds it, and frames still all
        // received.
        config.busy_poll_usecs = 50;
        let mut source = open_xdp(&config).unwrap();
        assert_eq!(source.busy_poll_usecs().unwrap(), 50);
        let got = capture_replay(&ns, &mut source, &sent);
        assert_frames(&got, &sent.iter().collect::<Vec<_>>());
        drop(source);
        config.busy_poll_usecs = 0;

        config.zero_copy = ZeroCopy::On;
        let r = reason(XdpSource::open(&config).unwrap_err());
        assert!(r.contains("zero-copy"), "{r}");
        assert!(!ns.link_b().contains("xdp"), "{}", ns.link_b());
    });
}

/// `name`'s value in /proc/meminfo.
fn meminfo(name: &str) -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = info.lines().find(|l| l.starts_with(name)).unwrap();
    line[name.len()..]
        .trim()
        .trim_end_matches(" kB")
        .parse()
        .unwrap()
}

/// With huge pages reserved the UMEM takes them (and every frame still
/// comes); without, it is on ordinary pages.
#[test]
fn af_xdp_frames_go_on_huge_pages_where_reserved() {
    const RESERVED: &str = "/proc/sys/vm/nr_hugepages";
    let ns = Netns::new(1500, 1);
    let sent = frames(300, 1514);
    let before = std::fs::read_to_string(RESERVED).unwrap();
    let pages: u64 = before.trim().parse().unwrap();
    ns.run_inside(|| {
        let mut config = XdpConfig::new("b", 0);
        config.mode = XdpMode::Generic;
        config.frame_size = 2048;
        // 16 MiB of frames: 8 huge pages; more reserved, for other tests'
        // sockets that may take some meanwhile.
        std::fs::write(RESERVED, (pages + 64).to_string()).unwrap();
        let opened = open_xdp(&config);
        std::fs::write(RESERVED, &before).unwrap();
        let Some(mut source) = opened else {
            return;
        };
        assert!(source.on_huge_pages());
        let got = capture_replay(&ns, &mut source, &sent);
        assert_frames(&got, &sent.iter().collect::<Vec<_>>());
        drop(source);
        if meminfo("HugePages_Free:") == 0 {
            let source = open_xdp(&config).unwrap();
            assert!(!source.on_huge_pages());
        }
    });
}

#[test]
fn wait_returns_promptly_on_an_idle_link() {
    let ns = Netns::new(1500, 1);
    ns.run_inside(|| {
        let mut pcap = PcapLiveSource::open(&PcapLiveConfig::new("b")).unwrap();
        let mut config = XdpConfig::new("b", 0);
        config.mode = XdpMode::Generic;
        let xdp = open_xdp(&config);
        let mut sources: Vec<&mut dyn CaptureSource> = vec![&mut pcap];
        let mut xdp = xdp;
        if let Some(x) = xdp.as_mut() {
            sources.push(x);
        }
        for source in sources {
            for _ in 0..3 {
                assert_eq!(source.poll_batch(64, &mut |_| {}).unwrap(), Batch::Idle);
                let start = Instant::now();
                source.wait(Duration::from_millis(100)).unwrap();
                let waited = start.elapsed();
                assert!(
                    waited >= Duration::from_millis(90) && waited < Duration::from_millis(600),
                    "wait(100 ms) took {waited:?}"
                );
            }
        }
    });
}

#[test]
fn af_xdp_opens_without_cap_sys_admin() {
    let ns = Netns::new(1500, 1);
    let sent = frames(100, 1514);
    ns.run_inside(|| {
        // Does the kernel do AF_XDP at all?
        if open_xdp(&XdpConfig::new("b", 0)).is_none() {
            return;
        }
        // And CAP_IPC_LOCK for the UMEM, which is locked memory: without
        // it, it counts against RLIMIT_MEMLOCK (8 MiB here), which is
        // per user, so sockets of tests running meanwhile count too.
        keep_capabilities(&[CAP_NET_ADMIN, CAP_NET_RAW, CAP_IPC_LOCK, CAP_BPF]);
        for mode in [XdpMode::Generic, XdpMode::Native] {
            let mut config = XdpConfig::new("b", 0);
            config.mode = mode;
            let mut source = XdpSource::open(&config).unwrap();
            assert_eq!(source.mode(), mode);
            let got = capture_replay(&ns, &mut source, &sent);
            assert_frames(&got, &sent.iter().collect::<Vec<_>>());
            drop(source);
            // Detached with these alone.
            assert!(!ns.link_b().contains("xdp"), "{}", ns.link_b());
        }
    });
}

/// Not a test on its own: when [`CRASH_HELPER_ENV`] names an interface,
/// this process opens an AF_XDP socket on it, prints the interface as `ip
/// link` shows it then, and exits without closing anything, as a crashed
/// run would.
#[test]
fn crash_helper_exits_holding_an_xdp_socket() {
    let Ok(interface) = std::env::var(CRASH_HELPER_ENV) else {
        return;
    };
    let mut config = XdpConfig::new(&interface, 0);
    config.mode = XdpMode::Generic;
    let source = XdpSource::open(&config).unwrap();
    let link = run("ip", &["link", "show", "dev", &interface]);
    println!(
        "attached in {:?} mode: {}",
        source.mode(),
        String::from_utf8_lossy(&link.stdout)
    );
    std::process::exit(0);
}

/// Runs [`crash_helper_exits_holding_an_xdp_socket`] in `ns` on `b`;
/// returns what it printed.
fn crash_on_b(ns: &Netns) -> String {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .arg(&exe)
        .args([
            "--exact",
            "crash_helper_exits_holding_an_xdp_socket",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_HELPER_ENV, "b")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.contains("attached"),
        "crash helper failed ({}): {stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn no_xdp_program_outlives_its_process_or_the_last_socket() {
    let ns = Netns::new(1500, 2);
    // Does the kernel do AF_XDP at all?
    let xdp_works = ns.run_inside(|| {
        let mut config = XdpConfig::new("b", 0);
        config.mode = XdpMode::Generic;
        open_xdp(&config).is_some()
    });
    if !xdp_works {
        return;
    }
    assert!(!ns.link_b().contains("xdp"), "{}", ns.link_b());

    // Attached while the process lived; gone with it, with no drop run.
    let printed = crash_on_b(&ns);
    assert!(printed.contains("xdpgeneric"), "{printed}");
    assert!(!ns.link_b().contains("xdp"), "{}", ns.link_b());

    ns.run_inside(|| {
        assert_eq!(rx_queue_count("b").unwrap(), 2);
        // Open queue 1 first: the order does not matter. Auto mode
        // attaches natively at MTU 1500.
        let q1 = open_xdp(&XdpConfig::new("b", 1)).unwrap();
        assert_eq!(q1.mode(), XdpMode::Native);
        let link = ns.link_b();
        assert!(
            link.contains("xdp") && !link.contains("xdpgeneric"),
            "{link}"
        );
        let q0 = open_xdp(&XdpConfig::new("b", 0)).unwrap();
        assert_eq!(q0.mode(), XdpMode::Native);
        let r = reason(XdpSource::open(&XdpConfig::new("b", 2)).unwrap_err());
        assert!(r.contains("no RX queue 2"), "{r}");

        drop(q1);
        assert!(ns.link_b().contains("xdp"), "{}", ns.link_b());
        drop(q0);
        assert!(!ns.link_b().contains("xdp"), "{}", ns.link_b());
    });
}

#[test]
fn missing_interface_and_missing_privileges_are_one_line_reasons() {
    let ns = Netns::new(1500, 1);
    ns.run_inside(|| {
        let r = reason(XdpSource::open(&XdpConfig::new("eth9", 0)).unwrap_err());
        assert_eq!(r, "no such interface (see `ip link`)");
        let r = reason(rx_queue_count("eth9").unwrap_err());
        assert_eq!(r, "no such interface (see `ip link`)");

        drop_capabilities();
        let r = reason(PcapLiveSource::open(&PcapLiveConfig::new("b")).unwrap_err());
        assert!(r.contains("needs root or CAP_NET_RAW"), "{r}");
        let r = reason(XdpSource::open(&XdpConfig::new("b", 0)).unwrap_err());
        assert!(r.contains("needs root or CAP_NET_ADMIN+CAP_BPF"), "{r}");
    });
}
