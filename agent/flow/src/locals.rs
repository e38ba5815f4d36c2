use flowstat_core::AddrClass;
use ipnet::{IpNet, Ipv4Net};
use std::net::{IpAddr, Ipv4Addr};

/// Classifies addresses as local, private, multicast, broadcast or public
/// (SPEC section 2), given the configured `local_networks` and the capture
/// interfaces' own addresses.
#[derive(Clone, Debug, Default)]
pub struct LocalNetworks {
    nets: Vec<IpNet>,
}

impl LocalNetworks {
    /// Local networks from CIDRs (config `local_networks`, `--local-network`,
    /// and the capture interfaces' addresses as /32 or /128 or their subnets).
    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> Self {
        let mut nets: Vec<IpNet> = nets.into_iter().map(|n| n.trunc()).collect();
        nets.sort();
        nets.dedup();
        LocalNetworks { nets }
    }

    /// The configured networks.
    pub fn networks(&self) -> &[IpNet] {
        &self.nets
    }

    /// The class of `addr`.
    ///
    /// Broadcast and multicast are decided first, so the broadcast address
    /// of a local network is `Broadcast`, not `Local`.
    pub fn classify(&self, addr: IpAddr) -> AddrClass {
        let private = match addr {
            IpAddr::V4(a) if a.is_broadcast() || self.is_directed_broadcast(a) => {
                return AddrClass::Broadcast;
            }
            IpAddr::V4(a) if a.is_multicast() => return AddrClass::Multicast,
            IpAddr::V6(a) if a.is_multicast() => return AddrClass::Multicast,
            IpAddr::V4(a) => {
                a.is_private() || a.is_loopback() || a.is_link_local() || V4_SHARED.contains(&a)
            }
            IpAddr::V6(a) => {
                let first = a.segments()[0];
                a.is_loopback() || first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80
            }
        };
        if self.nets.iter().any(|n| n.contains(&addr)) {
            AddrClass::Local
        } else if private {
            AddrClass::Private
        } else {
            AddrClass::Public
        }
    }

    /// The broadcast address of a local IPv4 network (e.g. 192.168.1.255
    /// for 192.168.1.0/24); /31 and /32 have none.
    fn is_directed_broadcast(&self, a: Ipv4Addr) -> bool {
        self.nets.iter().any(|n| match n {
            IpNet::V4(n) => n.prefix_len() < 31 && n.broadcast() == a,
            IpNet::V6(_) => false,
        })
    }
}

/// 100.64.0.0/10, carrier-grade NAT (RFC 6598).
const V4_SHARED: Ipv4Net = match Ipv4Net::new(Ipv4Addr::new(100, 64, 0, 0), 10) {
    Ok(n) => n,
    Err(_) => panic!("constant network"),
};

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn spec_classes_without_local_networks() {
        let l = LocalNetworks::default();
        for (a, c) in [
            ("10.1.2.3", AddrClass::Private),
            ("172.31.0.1", AddrClass::Private),
            ("192.168.0.1", AddrClass::Private),
            ("100.64.0.1", AddrClass::Private),
            ("100.128.0.1", AddrClass::Public),
            ("127.0.0.1", AddrClass::Private),
            ("169.254.1.1", AddrClass::Private),
            ("224.0.0.251", AddrClass::Multicast),
            ("255.255.255.255", AddrClass::Broadcast),
            ("8.8.8.8", AddrClass::Public),
            ("fd00::1", AddrClass::Private),
            ("fe80::1", AddrClass::Private),
            ("::1", AddrClass::Private),
            ("ff02::fb", AddrClass::Multicast),
            ("2001:db8::1", AddrClass::Public),
        ] {
            assert_eq!(l.classify(ip(a)), c, "{a}");
        }
    }

    #[test]
    fn local_networks_win_and_give_directed_broadcast() {
        let l = LocalNetworks::new([
            "192.0.2.0/24".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ]);
        assert_eq!(l.classify(ip("192.0.2.7")), AddrClass::Local);
        assert_eq!(l.classify(ip("2001:db8::1")), AddrClass::Local);
        assert_eq!(l.classify(ip("192.0.2.255")), AddrClass::Broadcast);
        assert_eq!(l.classify(ip("10.255.255.255")), AddrClass::Private);
        let l = LocalNetworks::new([
            "10.0.0.0/8".parse().unwrap(),
            "198.51.100.8/31".parse().unwrap(),
        ]);
        assert_eq!(l.classify(ip("10.255.255.255")), AddrClass::Broadcast);
        assert_eq!(l.classify(ip("198.51.100.9")), AddrClass::Local);
    }
}
