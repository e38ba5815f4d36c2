//! [`PcapLiveSource`]: live capture on one interface through libpcap.

use std::ffi::{c_int, c_void};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use ::pcap::{Active, Capture, Precision};
use flowstat_core::{Batch, CaptureError, CaptureSource, CaptureStats, Frame, LinkType, Timestamp};

use crate::file::normalize_link;
use crate::live::{self, RefreshTimer, interface_error};

/// libpcap's read timeout, in milliseconds: how long the kernel keeps a
/// partly filled TPACKET_V3 block before handing it over. It bounds how
/// late a frame on a quiet link reaches flowstat; a busy link fills blocks
/// long before that. (The source itself never blocks in libpcap: it reads
/// in non-blocking mode and waits in [`CaptureSource::wait`].)
const READ_TIMEOUT_MS: i32 = 50;

/// `PCAP_TSTAMP_PRECISION_NANO`.
const PRECISION_NANO: c_int = 1;

unsafe extern "C" {
    /// libpcap (linked by the `pcap` crate): the precision of the
    /// timestamps a handle delivers, micro (0) or nano (1).
    fn pcap_get_tstamp_precision(p: *mut c_void) -> c_int;
}

/// A 64-bit total kept from a 32-bit kernel counter that may wrap.
#[derive(Clone, Copy, Debug, Default)]
struct Wide32 {
    last: u32,
    total: u64,
}

impl Wide32 {
    /// Takes a new reading of the counter.
    fn update(&mut self, now: u32) {
        self.total += u64::from(now.wrapping_sub(self.last));
        self.last = now;
    }

    /// The total so far.
    fn total(self) -> u64 {
        self.total
    }
}

/// How to open a [`PcapLiveSource`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcapLiveConfig {
    /// The interface to capture on, e.g. `eth0` (`any` for all of them,
    /// which libpcap delivers as Linux cooked capture and never in
    /// promiscuous mode).
    pub interface: String,
    /// Put the interface in promiscuous mode, to see frames addressed to
    /// other hosts (a mirror port's traffic). Default true.
    pub promiscuous: bool,
    /// Bytes kept of each frame; longer frames are cut (their `wire_len`
    /// still counts every byte). Default 65535.
    pub snaplen: u32,
    /// A BPF filter in tcpdump syntax (`"tcp port 443"`), applied in the
    /// kernel. Default none.
    pub filter: Option<String>,
    /// The kernel ring size in bytes; `None` keeps libpcap's default
    /// (2 MiB). A larger ring absorbs longer bursts.
    pub buffer_bytes: Option<u32>,
}

impl PcapLiveConfig {
    /// The defaults for `interface`: promiscuous, snaplen 65535, no filter,
    /// libpcap's ring size.
    pub fn new(interface: impl Into<String>) -> Self {
        PcapLiveConfig {
            interface: interface.into(),
            promiscuous: true,
            snaplen: 65535,
            filter: None,
            buffer_bytes: None,
        }
    }
}

/// Live capture on one interface through libpcap (TPACKET_V3 ring on
/// Linux), read in non-blocking mode.
///
/// Frames are lent straight from libpcap's ring, stamped by the kernel
/// (nanosecond resolution where libpcap offers it, else microsecond).
/// The source is `Send`: open it on one thread and move it to the thread
/// that polls it.
pub struct PcapLiveSource {
    interface: String,
    capture: Capture<Active>,
    fd: RawFd,
    link: LinkType,
    /// Nanoseconds per unit of `tv_usec`: 1 (nanosecond precision) or 1000.
    nanos_per_unit: u64,
    received: u64,
    kernel_dropped: Wide32,
    interface_dropped: Wide32,
    refresh: RefreshTimer,
}

impl std::fmt::Debug for PcapLiveSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapLiveSource")
            .field("interface", &self.interface)
            .field("link", &self.link)
            .field("nanosecond", &(self.nanos_per_unit == 1))
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

/// pcap's message without the crate's "libpcap error: " prefix.
/// Whether `filter` (tcpdump syntax) compiles for Ethernet frames, as
/// opening an interface with it would: the message names the filter and
/// what libpcap found wrong.
pub fn check_filter(filter: &str) -> Result<(), String> {
    Capture::dead(::pcap::Linktype::ETHERNET)
        .and_then(|dead| dead.compile(filter, true))
        .map(drop)
        .map_err(|e| format!("bad BPF filter \"{filter}\": {}", pcap_message(e)))
}

fn pcap_message(error: ::pcap::Error) -> String {
    match error {
        ::pcap::Error::PcapError(message) => message,
        other => other.to_string(),
    }
}

/// The one-line reason libpcap could not open `interface`.
fn open_reason(message: &str) -> String {
    let lower = message.to_ascii_lowercase();
    if lower.contains("permission") || lower.contains("not permitted") {
        format!("live capture needs root or CAP_NET_RAW (libpcap: {message})")
    } else if lower.contains("no such device") || lower.contains("doesn't exist") {
        live::NO_SUCH_INTERFACE.to_string()
    } else {
        format!("libpcap cannot capture there: {message}")
    }
}

impl PcapLiveSource {
    /// Opens `config.interface` for capture and applies the filter.
    ///
    /// Every error is a [`CaptureError::Interface`] with a one-line
    /// reason: the interface does not exist, the process lacks root or
    /// CAP_NET_RAW, the filter does not compile (`bad BPF filter "...":
    /// <libpcap's message>`), or what else libpcap said.
    pub fn open(config: &PcapLiveConfig) -> Result<PcapLiveSource, CaptureError> {
        let interface = config.interface.as_str();
        let error = |reason: String| interface_error(interface, reason);
        // libpcap's own message for a missing interface varies; ask first.
        if interface != "any" {
            live::if_index(interface)?;
        }
        let snaplen = i32::try_from(config.snaplen)
            .map_err(|_| error(format!("snaplen {} is too large", config.snaplen)))?;
        let inactive = Capture::from_device(interface)
            .map_err(|e| error(open_reason(&pcap_message(e))))?
            // "any" cannot be promiscuous; libpcap warns, which the pcap
            // crate reports as a failure.
            .promisc(config.promiscuous && interface != "any")
            .snaplen(snaplen)
            .timeout(READ_TIMEOUT_MS)
            .precision(Precision::Nano);
        let inactive = match config.buffer_bytes {
            Some(bytes) => {
                let bytes = i32::try_from(bytes)
                    .map_err(|_| error(format!("buffer_bytes {bytes} is too large")))?;
                inactive.buffer_size(bytes)
            }
            None => inactive,
        };
        let capture = inactive
            .open()
            .map_err(|e| error(open_reason(&pcap_message(e))))?;
        let mut capture = capture
            .setnonblock()
            .map_err(|e| error(format!("cannot read non-blocking: {}", pcap_message(e))))?;
        if let Some(filter) = &config.filter {
            capture
                .filter(filter, true)
                .map_err(|e| error(format!("bad BPF filter \"{filter}\": {}", pcap_message(e))))?;
        }
        // SAFETY: the handle is live (owned by `capture`) for the call, and
        // pcap_get_tstamp_precision only reads a field of it.
        let precision = unsafe { pcap_get_tstamp_precision(capture.as_ptr().cast::<c_void>()) };
        let nanos_per_unit = if precision == PRECISION_NANO { 1 } else { 1000 };
        let link = normalize_link(capture.get_datalink().0 as u32);
        let fd = capture.as_raw_fd();
        tracing::debug!(
            interface,
            link = link.0,
            nanosecond = nanos_per_unit == 1,
            filter = config.filter.as_deref().unwrap_or(""),
            "libpcap capture opened"
        );
        Ok(PcapLiveSource {
            interface: interface.to_string(),
            capture,
            fd,
            link,
            nanos_per_unit,
            received: 0,
            kernel_dropped: Wide32::default(),
            interface_dropped: Wide32::default(),
            refresh: RefreshTimer::new(),
        })
    }

    /// Re-reads the kernel's counters now (one system call) and returns
    /// the counters. The source also does this by itself, at most every
    /// 100 ms, while it is polled.
    pub fn refresh_stats(&mut self) -> Result<CaptureStats, CaptureError> {
        self.refresh.reset();
        self.read_kernel_stats()?;
        Ok(self.stats())
    }

    fn read_kernel_stats(&mut self) -> Result<(), CaptureError> {
        let stat = self.capture.stats().map_err(|e| {
            interface_error(
                &self.interface,
                format!("cannot read capture statistics: {}", pcap_message(e)),
            )
        })?;
        self.kernel_dropped.update(stat.dropped);
        self.interface_dropped.update(stat.if_dropped);
        Ok(())
    }

    /// Refreshes the counters when the timer says so; a failure only
    /// leaves them as they were.
    fn maybe_refresh(&mut self) {
        if self.refresh.due() {
            if let Err(error) = self.read_kernel_stats() {
                tracing::debug!(%error, "pcap_stats failed");
            }
        }
    }
}

impl CaptureSource for PcapLiveSource {
    /// The interface name.
    fn name(&self) -> &str {
        &self.interface
    }

    /// Lends the frames libpcap has ready, up to `budget`; `Idle` when
    /// there are none. A failed read (the interface went away) is an
    /// `Interface` error.
    fn poll_batch(
        &mut self,
        budget: usize,
        f: &mut dyn FnMut(&Frame<'_>),
    ) -> Result<Batch, CaptureError> {
        self.maybe_refresh();
        if budget == 0 {
            return Ok(Batch::Idle);
        }
        let link = self.link;
        let nanos_per_unit = self.nanos_per_unit;
        let count = budget.min(i32::MAX as usize);
        let lent = self
            .capture
            .dispatch(Some(count), |packet| {
                let h = packet.header;
                let secs = u64::try_from(h.ts.tv_sec).unwrap_or(0);
                let sub = u64::try_from(h.ts.tv_usec).unwrap_or(0);
                let ts = Timestamp::from_nanos(
                    secs.saturating_mul(1_000_000_000)
                        .saturating_add(sub * nanos_per_unit),
                );
                f(&Frame {
                    ts,
                    wire_len: h.len,
                    link,
                    data: packet.data,
                });
            })
            .map_err(|e| {
                interface_error(
                    &self.interface,
                    format!("capture failed: {}", pcap_message(e)),
                )
            })?;
        self.received += lent as u64;
        Ok(if lent == 0 {
            Batch::Idle
        } else {
            Batch::Frames(lent)
        })
    }

    /// Waits on libpcap's selectable descriptor (poll(2)) until a block of
    /// frames is ready or `timeout` has passed.
    fn wait(&mut self, timeout: Duration) -> Result<(), CaptureError> {
        live::poll_readable(self.fd, timeout)
            .map_err(|e| interface_error(&self.interface, format!("poll failed: {e}")))?;
        self.maybe_refresh();
        Ok(())
    }

    /// `received` counts the frames lent; `dropped` is what the kernel
    /// reported last (`ps_drop + ps_ifdrop`: ring full, and the
    /// interface's own drops since the capture opened), at most ~100 ms
    /// old while the source is polled (see
    /// [`refresh_stats`](PcapLiveSource::refresh_stats)); `filtered` is 0,
    /// because Linux does not count the frames its socket filter rejects.
    fn stats(&self) -> CaptureStats {
        CaptureStats {
            received: self.received,
            dropped: self.kernel_dropped.total() + self.interface_dropped.total(),
            filtered: 0,
        }
    }
}

/// The source moves to its polling thread: checked when compiling, not
/// a test to run.
const _: fn() = || {
    fn is_send<T: Send>() {}
    is_send::<PcapLiveSource>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_reasons_are_one_line_and_say_what_to_do() {
        let perm = open_reason(
            "You don't have permission to perform this capture on that device \
             (socket: Operation not permitted)",
        );
        assert!(
            perm.starts_with("live capture needs root or CAP_NET_RAW"),
            "{perm}"
        );
        assert_eq!(
            open_reason("No such device exists"),
            live::NO_SUCH_INTERFACE
        );
        let other = open_reason("something else");
        assert!(!other.contains('\n'));
    }

    #[test]
    fn wide32_survives_a_wrap() {
        let mut c = Wide32::default();
        c.update(10);
        c.update(u32::MAX - 5);
        c.update(4);
        assert_eq!(c.total(), u64::from(u32::MAX) + 5);
    }

    #[test]
    fn config_defaults() {
        let c = PcapLiveConfig::new("eth0");
        assert_eq!(c.interface, "eth0");
        assert!(c.promiscuous);
        assert_eq!(c.snaplen, 65535);
        assert_eq!(c.filter, None);
        assert_eq!(c.buffer_bytes, None);
    }
}
