//! What the kernel knows about the capture interfaces: their addresses
//! (which make their networks local) and their counters.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use flowstat_core::KernelCounters;
use ipnet::IpNet;

/// Whether this host has a network interface `name`.
pub fn exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// The networks of `interfaces`' addresses (address and prefix, e.g.
/// 192.168.1.0/24 for 192.168.1.20/24).
pub fn networks(interfaces: &[String]) -> BTreeSet<IpNet> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return BTreeSet::new();
    };
    addrs
        .filter(|a| interfaces.contains(&a.interface_name))
        .filter_map(|a| {
            let (addr, mask) = (a.address?, a.netmask?);
            let net = if let (Some(ip), Some(m)) = (addr.as_sockaddr_in(), mask.as_sockaddr_in()) {
                IpNet::with_netmask(ip.ip().into(), m.ip().into()).ok()
            } else if let (Some(ip), Some(m)) = (addr.as_sockaddr_in6(), mask.as_sockaddr_in6()) {
                IpNet::with_netmask(ip.ip().into(), m.ip().into()).ok()
            } else {
                None
            };
            net.map(|n| n.trunc())
        })
        .collect()
}

/// Reads an interface's kernel counters, and turns successive readings into
/// rates.
#[derive(Debug)]
pub struct KernelStats {
    interface: String,
    prev: Option<(Instant, KernelCounters)>,
}

impl KernelStats {
    /// Counters of `interface`.
    pub fn new(interface: &str) -> Self {
        KernelStats {
            interface: interface.to_owned(),
            prev: None,
        }
    }

    /// The counters now, with rates since the previous reading (0 the first
    /// time); `None` if the interface's statistics cannot be read.
    pub fn read(&mut self) -> Option<KernelCounters> {
        let dir = Path::new("/sys/class/net")
            .join(&self.interface)
            .join("statistics");
        let get = |name: &str| -> Option<u64> {
            std::fs::read_to_string(dir.join(name))
                .ok()?
                .trim()
                .parse()
                .ok()
        };
        let mut k = KernelCounters {
            rx_bytes: get("rx_bytes")?,
            rx_packets: get("rx_packets")?,
            rx_errors: get("rx_errors")?,
            rx_drops: get("rx_dropped")?,
            tx_bytes: get("tx_bytes")?,
            tx_packets: get("tx_packets")?,
            tx_errors: get("tx_errors")?,
            tx_drops: get("tx_dropped")?,
            ..KernelCounters::default()
        };
        let now = Instant::now();
        if let Some((then, p)) = &self.prev {
            let secs = now.duration_since(*then).as_secs_f64();
            if secs > 0.0 {
                let rate = |a: u64, b: u64| (a.saturating_sub(b) as f64 / secs).round() as u64;
                k.rx_bytes_per_sec = rate(k.rx_bytes, p.rx_bytes);
                k.tx_bytes_per_sec = rate(k.tx_bytes, p.tx_bytes);
                k.rx_packets_per_sec = rate(k.rx_packets, p.rx_packets);
                k.tx_packets_per_sec = rate(k.tx_packets, p.tx_packets);
            }
        }
        self.prev = Some((now, k));
        Some(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_counters_and_a_network() {
        let mut k = KernelStats::new("lo");
        let first = k.read().expect("lo statistics");
        let second = k.read().expect("lo statistics");
        assert!(second.rx_packets >= first.rx_packets);
        let nets = networks(&["lo".to_owned()]);
        assert!(nets.contains(&"127.0.0.0/8".parse().unwrap()), "{nets:?}");
        assert!(KernelStats::new("no-such-if0").read().is_none());
    }
}
