//! Opening the configured capture interfaces: AF_XDP (one socket per RX
//! queue) with a fallback to libpcap, or libpcap alone.

use flowstat_core::{CaptureError, CaptureSource};

use crate::config::{CaptureSection, Method};

/// A capture source that can move to its capture thread.
pub type LiveSource = Box<dyn CaptureSource + Send>;

/// Opens `capture`: the sources to read (several for AF_XDP, one per
/// queue), and the method used and its mode, for the log.
pub fn open(capture: &CaptureSection) -> Result<(Vec<LiveSource>, String), CaptureError> {
    let xdp_wanted = match capture.method {
        Method::Libpcap => false,
        Method::AfXdp => true,
        // A BPF filter is a libpcap feature.
        Method::Auto => capture.filter.is_empty(),
    };
    if xdp_wanted {
        match open_xdp(capture) {
            Ok(opened) => return Ok(opened),
            Err(e) if capture.method == Method::Auto && capture.fallback => {
                tracing::warn!("{e}; falling back to libpcap");
            }
            Err(e) => return Err(e),
        }
    }
    Ok((vec![open_pcap(capture)?], "libpcap".to_owned()))
}

/// Whether the BPF `filter` of a capture ("" for none) compiles.
pub fn check_filter(filter: &str) -> Result<(), String> {
    if filter.is_empty() {
        return Ok(());
    }
    #[cfg(feature = "libpcap")]
    return flowstat_capture::check_filter(filter);
    #[cfg(not(feature = "libpcap"))]
    Err("a BPF filter needs libpcap, and this flowstatd was built without it".into())
}

#[cfg(feature = "libpcap")]
fn open_pcap(c: &CaptureSection) -> Result<LiveSource, CaptureError> {
    use flowstat_capture::{PcapLiveConfig, PcapLiveSource};
    let mut cfg = PcapLiveConfig::new(c.interface.clone());
    cfg.promiscuous = c.promiscuous;
    cfg.snaplen = c.snaplen;
    cfg.buffer_bytes = Some(c.buffer_bytes);
    cfg.filter = (!c.filter.is_empty()).then(|| c.filter.clone());
    Ok(Box::new(PcapLiveSource::open(&cfg)?))
}

#[cfg(not(feature = "libpcap"))]
fn open_pcap(c: &CaptureSection) -> Result<LiveSource, CaptureError> {
    Err(CaptureError::Interface {
        interface: c.interface.clone(),
        reason: "this flowstatd was built without libpcap (feature \"libpcap\")".into(),
    })
}

/// The AF_XDP sockets of `c`, and their mode: `AF_XDP generic`, `AF_XDP
/// native copy` or `AF_XDP native zero-copy`.
#[cfg(feature = "af_xdp")]
fn open_xdp(c: &CaptureSection) -> Result<(Vec<LiveSource>, String), CaptureError> {
    use crate::config::{Queues, XdpMode, ZeroCopy};
    use flowstat_capture::{XdpConfig, XdpSource, frame_size_for, rx_queue_count};
    let queues: Vec<u32> = match &c.queues {
        Queues::All => (0..rx_queue_count(&c.interface)?).collect(),
        Queues::List(l) => l.clone(),
    };
    let frame_size = frame_size_for(&c.interface)?;
    let mut method = String::new();
    let sources = queues
        .into_iter()
        .map(|queue| {
            let mut cfg = XdpConfig::new(c.interface.clone(), queue);
            cfg.mode = match c.xdp_mode {
                XdpMode::Auto => flowstat_capture::XdpMode::Auto,
                XdpMode::Native => flowstat_capture::XdpMode::Native,
                XdpMode::Generic => flowstat_capture::XdpMode::Generic,
            };
            cfg.zero_copy = match c.zero_copy {
                ZeroCopy::Auto => flowstat_capture::ZeroCopy::Auto,
                ZeroCopy::On => flowstat_capture::ZeroCopy::On,
                ZeroCopy::Off => flowstat_capture::ZeroCopy::Off,
            };
            cfg.fill_ring = c.fill_ring;
            cfg.rx_ring = c.rx_ring;
            cfg.frame_size = frame_size;
            cfg.batch = c.batch as usize;
            cfg.busy_poll_usecs = c.busy_poll_usecs;
            let source = XdpSource::open(&cfg)?;
            method = match (source.mode(), source.is_zero_copy()) {
                (flowstat_capture::XdpMode::Generic, _) => "AF_XDP generic",
                (_, true) => "AF_XDP native zero-copy",
                (_, false) => "AF_XDP native copy",
            }
            .to_owned();
            Ok(Box::new(source) as LiveSource)
        })
        .collect::<Result<_, CaptureError>>()?;
    Ok((sources, method))
}

#[cfg(not(feature = "af_xdp"))]
fn open_xdp(c: &CaptureSection) -> Result<(Vec<LiveSource>, String), CaptureError> {
    Err(CaptureError::Interface {
        interface: c.interface.clone(),
        reason: "this flowstatd was built without AF_XDP (feature \"af_xdp\")".into(),
    })
}
