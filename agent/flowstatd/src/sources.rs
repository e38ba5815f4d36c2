//! Opening the configured capture interfaces: AF_XDP (one socket per RX
//! queue) with a fallback to libpcap, or libpcap alone.

use flowstat_core::{CaptureError, CaptureSource};

use crate::config::{CaptureSection, Method};

/// A capture source that can move to its capture thread.
pub type LiveSource = Box<dyn CaptureSource + Send>;

/// Opens `capture`: the sources to read (several for AF_XDP, one per
/// queue), and the method used, for the log.
pub fn open(capture: &CaptureSection) -> Result<(Vec<LiveSource>, &'static str), CaptureError> {
    let xdp_wanted = match capture.method {
        Method::Libpcap => false,
        Method::AfXdp => true,
        // A BPF filter is a libpcap feature.
        Method::Auto => capture.filter.is_empty(),
    };
    if xdp_wanted {
        match open_xdp(capture) {
            Ok(sources) => return Ok((sources, "AF_XDP")),
            Err(e) if capture.method == Method::Auto && capture.fallback => {
                tracing::warn!("{e}; falling back to libpcap");
            }
            Err(e) => return Err(e),
        }
    }
    Ok((vec![open_pcap(capture)?], "libpcap"))
}

#[cfg(feature = "libpcap")]
fn open_pcap(c: &CaptureSection) -> Result<LiveSource, CaptureError> {
    use flowstat_capture::{PcapLiveConfig, PcapLiveSource};
    let mut cfg = PcapLiveConfig::new(c.interface.clone());
    cfg.promiscuous = c.promiscuous;
    cfg.snaplen = c.snaplen;
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

#[cfg(feature = "af_xdp")]
fn open_xdp(c: &CaptureSection) -> Result<Vec<LiveSource>, CaptureError> {
    use crate::config::{Queues, XdpMode, ZeroCopy};
    use flowstat_capture::{XdpConfig, XdpSource, rx_queue_count};
    let queues: Vec<u32> = match &c.queues {
        Queues::All => (0..rx_queue_count(&c.interface)?).collect(),
        Queues::List(l) => l.clone(),
    };
    queues
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
            cfg.batch = c.batch as usize;
            Ok(Box::new(XdpSource::open(&cfg)?) as LiveSource)
        })
        .collect()
}

#[cfg(not(feature = "af_xdp"))]
fn open_xdp(c: &CaptureSection) -> Result<Vec<LiveSource>, CaptureError> {
    Err(CaptureError::Interface {
        interface: c.interface.clone(),
        reason: "this flowstatd was built without AF_XDP (feature \"af_xdp\")".into(),
    })
}
