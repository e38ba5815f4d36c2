//! A traffic source faster than the agent, for the live bench:
//! `blast IFACE CAPTURE [--rate PPS] [--loops N] [--seconds S] [--threads T]`.
//!
//! Sends the Ethernet frames of CAPTURE out of IFACE (a veth end, inside
//! the bench's namespace), LOOPS times (default 1) or for S seconds,
//! whichever ends first, at PPS frames a second in all (default: as fast
//! as it can), from T threads (default 1). Each
//! thread has its own AF_PACKET socket that bypasses the qdisc and sends
//! batches of frames with one sendmmsg(2); a flow's frames all go from one
//! thread (frames are dealt by a hash of their addresses), so they stay in
//! order. On a full device queue a batch is retried, never skipped.
//!
//! Prints one line: frames the sender handed to the kernel, the time, the
//! rate, and the interface's own tx_packets and tx_dropped over the run
//! (what really left it: a veth drops frames its peer has no room for):
//! `sent=N secs=S pps=R tx_packets=P tx_dropped=D`.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use flowstat_benches::read_frames;
use flowstat_core::LinkType;

/// Frames sent per sendmmsg(2).
const BATCH: usize = 64;

/// How close to a batch's due time the sender spins rather than sleeps.
const SPIN: Duration = Duration::from_micros(100);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = || -> ! {
        eprintln!(
            "usage: blast IFACE CAPTURE [--rate PPS] [--loops N] [--seconds S] [--threads T]"
        );
        std::process::exit(2);
    };
    let (Some(iface), Some(capture)) = (args.get(1), args.get(2)) else {
        usage()
    };
    let (mut rate, mut loops, mut threads) = (0u64, 1u64, 1usize);
    let mut limit = Duration::MAX;
    let mut rest = args.iter().skip(3);
    while let Some(arg) = rest.next() {
        let value = rest.next().and_then(|v| v.parse::<u64>().ok());
        match (arg.as_str(), value) {
            ("--rate", Some(v)) => rate = v,
            ("--loops", Some(v)) if v > 0 => loops = v,
            ("--seconds", Some(v)) if v > 0 => limit = Duration::from_secs(v),
            ("--threads", Some(v)) if v > 0 => threads = v as usize,
            _ => usage(),
        }
    }
    let frames: Vec<Vec<u8>> = read_frames(Path::new(capture))
        .into_iter()
        .filter(|f| f.link == LinkType::ETHERNET && f.data.len() == f.wire_len as usize)
        .map(|f| f.data)
        .collect();
    if frames.is_empty() {
        eprintln!("blast: {capture}: no whole Ethernet frames to send");
        std::process::exit(1);
    }
    let mut shards = vec![Vec::new(); threads];
    for frame in &frames {
        shards[flow_hash(frame) % threads].push(frame.as_slice());
    }
    let ifindex = match nix::net::if_::if_nametoindex(iface.as_str()) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("blast: no interface {iface:?}: {e}");
            std::process::exit(1);
        }
    };
    let before = tx_counters(iface);
    let start = Instant::now();
    let per_thread = rate / threads as u64;
    let sent: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = shards
            .iter()
            .filter(|shard| !shard.is_empty())
            .map(|shard| s.spawn(move || send(ifindex, shard, loops, per_thread, limit)))
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => {
                    eprintln!("blast: {iface}: {e}");
                    std::process::exit(1);
                }
                Err(_) => std::process::exit(1),
            })
            .sum()
    });
    let secs = start.elapsed().as_secs_f64();
    let after = tx_counters(iface);
    println!(
        "sent={sent} secs={secs:.3} pps={:.0} tx_packets={} tx_dropped={}",
        sent as f64 / secs,
        after.0 - before.0,
        after.1 - before.1
    );
}

/// A hash of a frame's IPv4 or IPv6 addresses, the same both ways (0 for
/// other frames), so that a flow's frames go from one thread.
fn flow_hash(frame: &[u8]) -> usize {
    let (mut at, mut ether_type) = (12, 0u16);
    while let Some(t) = frame.get(at..at + 2) {
        ether_type = u16::from_be_bytes([t[0], t[1]]);
        if ether_type != 0x8100 && ether_type != 0x88a8 {
            break;
        }
        at += 4;
    }
    let ip = at + 2;
    let (src, len) = match ether_type {
        0x0800 => (ip + 12, 4),
        0x86dd => (ip + 8, 16),
        _ => return 0,
    };
    let (Some(a), Some(b)) = (
        frame.get(src..src + len),
        frame.get(src + len..src + 2 * len),
    ) else {
        return 0;
    };
    let sum = |x: &[u8]| {
        x.iter().fold(0usize, |h, &b| {
            h.wrapping_mul(31).wrapping_add(usize::from(b))
        })
    };
    sum(a) ^ sum(b)
}

/// The interface's tx_packets and tx_dropped.
fn tx_counters(iface: &str) -> (u64, u64) {
    let read = |name: &str| {
        std::fs::read_to_string(format!("/sys/class/net/{iface}/statistics/{name}"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    (read("tx_packets"), read("tx_dropped"))
}

/// Sends `frames` `loops` times out of interface `ifindex`, or until
/// `limit` has passed, at `rate` frames a second (0: as fast as it can);
/// the frames sent.
fn send(ifindex: u32, frames: &[&[u8]], loops: u64, rate: u64, limit: Duration) -> io::Result<u64> {
    let socket = PacketSocket::open(ifindex)?;
    let start = Instant::now();
    let mut sent = 0u64;
    for _ in 0..loops {
        for batch in frames.chunks(BATCH) {
            let mut done = 0;
            while done < batch.len() {
                match socket.send_batch(&batch[done..]) {
                    Ok(n) => done += n,
                    // The device queue is full: wait for room, then retry.
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => std::thread::yield_now(),
                    Err(e) => return Err(e),
                }
            }
            sent += batch.len() as u64;
            if start.elapsed() >= limit {
                return Ok(sent);
            }
            if rate > 0 {
                // Ahead of the pace: sleep, and spin only the last stretch,
                // so that the sender leaves the cores to the capturer.
                let due = Duration::from_secs_f64(sent as f64 / rate as f64);
                let ahead = due.saturating_sub(start.elapsed());
                if ahead > SPIN {
                    std::thread::sleep(ahead - SPIN);
                }
                while start.elapsed() < due {
                    std::hint::spin_loop();
                }
            }
        }
    }
    Ok(sent)
}

/// An AF_PACKET socket that sends straight to the device.
struct PacketSocket {
    fd: std::os::fd::OwnedFd,
    to: libc::sockaddr_ll,
}

impl PacketSocket {
    fn open(ifindex: u32) -> io::Result<PacketSocket> {
        use std::os::fd::{AsRawFd, FromRawFd};
        // SAFETY: socket(2) with constant arguments; the result is checked.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new descriptor that nothing else owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
        let one: libc::c_int = 1;
        // SAFETY: an int option, passed with its size.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_QDISC_BYPASS,
                (&raw const one).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: sockaddr_ll is plain data; all zeros is a valid value.
        let mut to: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        to.sll_family = libc::AF_PACKET as u16;
        to.sll_ifindex = ifindex as i32;
        to.sll_halen = 6;
        Ok(PacketSocket { fd, to })
    }

    /// Sends up to [`BATCH`] of `frames` with one sendmmsg(2); how many
    /// went.
    fn send_batch(&self, frames: &[&[u8]]) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        let n = frames.len().min(BATCH);
        let mut iovs: Vec<libc::iovec> = frames[..n]
            .iter()
            .map(|f| libc::iovec {
                iov_base: f.as_ptr().cast_mut().cast(),
                iov_len: f.len(),
            })
            .collect();
        let mut msgs: Vec<libc::mmsghdr> = iovs
            .iter_mut()
            .map(|iov| {
                // SAFETY: msghdr is plain data; all zeros is a valid value.
                let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
                hdr.msg_name = (&raw const self.to).cast_mut().cast();
                hdr.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
                hdr.msg_iov = iov;
                hdr.msg_iovlen = 1;
                libc::mmsghdr {
                    msg_hdr: hdr,
                    msg_len: 0,
                }
            })
            .collect();
        // SAFETY: `msgs` holds `n` headers, each pointing at one iovec over
        // a live frame and at `self.to`, all alive for the call; the kernel
        // only reads them (and writes msg_len).
        let rc = unsafe { libc::sendmmsg(self.fd.as_raw_fd(), msgs.as_mut_ptr(), n as u32, 0) };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(rc as usize)
        }
    }
}
