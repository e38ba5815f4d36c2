use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::Timestamp;

/// The encapsulations a frame went through on its way to the IP header the
/// flow is keyed on. Used for the `interface_stats` counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Layers(u16);

impl Layers {
    /// An Ethernet II header (also inside VXLAN or GRE).
    pub const ETHERNET: Layers = Layers(1);
    /// At least one 802.1Q / 802.1ad tag.
    pub const VLAN: Layers = Layers(1 << 1);
    /// An MPLS label stack.
    pub const MPLS: Layers = Layers(1 << 2);
    /// A PPPoE session header.
    pub const PPPOE: Layers = Layers(1 << 3);
    /// A GTP-U header (the flow is the inner packet).
    pub const GTP: Layers = Layers(1 << 4);
    /// IP-in-IP (4in4, 6in4, 4in6, 6in6) decapsulated.
    pub const IP_IN_IP: Layers = Layers(1 << 5);
    /// GRE decapsulated.
    pub const GRE: Layers = Layers(1 << 6);
    /// VXLAN decapsulated.
    pub const VXLAN: Layers = Layers(1 << 7);

    /// No layer.
    pub const fn empty() -> Self {
        Layers(0)
    }

    /// Whether every layer of `other` is in `self`.
    pub const fn contains(self, other: Layers) -> bool {
        self.0 & other.0 == other.0
    }

    /// Adds the layers of `other`.
    pub fn insert(&mut self, other: Layers) {
        self.0 |= other.0;
    }
}

/// IP fragmentation fields of a packet that is one fragment of a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fragment {
    /// IPv4 identification (16 bits) or IPv6 fragment identification.
    pub id: u32,
    /// Fragment offset in 8-byte units; 0 for the first fragment, which is
    /// the only one carrying the transport header.
    pub offset: u16,
    /// More-fragments flag.
    pub more: bool,
}

/// TCP header fields the flow table uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpInfo {
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number (whether or not ACK is set).
    pub ack: u32,
    /// Flags byte (CWR ECE URG ACK PSH RST SYN FIN, FIN the lowest bit).
    pub flags: u8,
    /// Window field, as the header carries it (not scaled).
    pub window: u16,
}

impl TcpInfo {
    /// FIN flag.
    pub const FIN: u8 = 0x01;
    /// SYN flag.
    pub const SYN: u8 = 0x02;
    /// RST flag.
    pub const RST: u8 = 0x04;
    /// PSH flag.
    pub const PSH: u8 = 0x08;
    /// ACK flag.
    pub const ACK: u8 = 0x10;

    /// Whether every flag in `mask` is set.
    pub const fn has(&self, mask: u8) -> bool {
        self.flags & mask == mask
    }
}

/// A decoded packet: what the flow table and DPI need from one frame.
///
/// Addresses are 16 bytes in network order; an IPv4 address fills the first
/// 4 bytes and the rest are zero, so comparing the arrays compares addresses
/// numerically within one IP version.
#[derive(Clone, Copy, Debug)]
pub struct PacketMeta<'a> {
    /// Capture time.
    pub ts: Timestamp,
    /// Frame length on the wire (what flow byte counters add).
    pub wire_len: u32,
    /// Encapsulations seen before the IP header of the flow.
    pub layers: Layers,
    /// Outermost 802.1Q VLAN id, 0 when untagged.
    pub vlan_id: u16,
    /// Ethernet source address of the innermost Ethernet header, zero when
    /// the link has no MAC addresses.
    pub src_mac: [u8; 6],
    /// Ethernet destination address, as `src_mac`.
    pub dst_mac: [u8; 6],
    /// 4 or 6.
    pub ip_version: u8,
    /// Source address (see the type's note on layout).
    pub src_ip: [u8; 16],
    /// Destination address.
    pub dst_ip: [u8; 16],
    /// IP protocol number of the transport (after IPv6 extension headers).
    pub protocol: u8,
    /// DSCP (the upper six bits of the traffic class).
    pub dscp: u8,
    /// Transport source port, 0 for protocols without ports and for
    /// fragments after the first.
    pub src_port: u16,
    /// Transport destination port, as `src_port`.
    pub dst_port: u16,
    /// Set when this packet is an IP fragment.
    pub fragment: Option<Fragment>,
    /// TCP fields, when the fixed 20 bytes of the TCP header were captured
    /// (options may be cut).
    pub tcp: Option<TcpInfo>,
    /// Transport payload length as the headers state it (not cut by the
    /// snap length); for TCP this is the segment length without SYN/FIN.
    pub payload_len: u32,
    /// The captured part of the transport payload.
    pub payload: &'a [u8],
    /// A problem found after the flow key was known (e.g. a TCP header cut
    /// by the snap length): the packet is still counted in its flow.
    pub issue: Option<DecodeError>,
}

impl PacketMeta<'_> {
    /// The same packet with `payload` as its captured payload: to keep a
    /// packet past its frame, its payload copied elsewhere.
    pub fn with_payload<'b>(&self, payload: &'b [u8]) -> PacketMeta<'b> {
        // Every field named, so that a new one cannot be left behind.
        let PacketMeta {
            ts,
            wire_len,
            layers,
            vlan_id,
            src_mac,
            dst_mac,
            ip_version,
            src_ip,
            dst_ip,
            protocol,
            dscp,
            src_port,
            dst_port,
            fragment,
            tcp,
            payload_len,
            payload: _,
            issue,
        } = *self;
        PacketMeta {
            ts,
            wire_len,
            layers,
            vlan_id,
            src_mac,
            dst_mac,
            ip_version,
            src_ip,
            dst_ip,
            protocol,
            dscp,
            src_port,
            dst_port,
            fragment,
            tcp,
            payload_len,
            payload,
            issue,
        }
    }

    /// A packet with nothing decoded yet: what the decoder fills in.
    pub fn new(ts: Timestamp, wire_len: u32) -> Self {
        PacketMeta {
            ts,
            wire_len,
            layers: Layers::empty(),
            vlan_id: 0,
            src_mac: [0; 6],
            dst_mac: [0; 6],
            ip_version: 0,
            src_ip: [0; 16],
            dst_ip: [0; 16],
            protocol: 0,
            dscp: 0,
            src_port: 0,
            dst_port: 0,
            fragment: None,
            tcp: None,
            payload_len: 0,
            payload: &[],
            issue: None,
        }
    }
}

/// The `std` address of a 16-byte address field of `version` 4 or 6.
pub fn ip_addr(version: u8, bytes: &[u8; 16]) -> IpAddr {
    if version == 4 {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(*bytes))
    }
}

/// Why a frame could not be decoded (fully).
///
/// Counted per kind in `interface_stats.decode_issues`; never logged per
/// packet. Every kind except [`DecodeError::TruncatedTransport`] means the
/// frame was not attributed to a flow (it counts as `discarded`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum DecodeError {
    /// The link type is not one flowstat decodes.
    #[error("unsupported link type {0}")]
    UnsupportedLink(u32),
    /// Not an IP packet (ARP, LLDP, STP, ...): nothing to count as a flow.
    #[error("not an IP packet")]
    NotIp,
    /// The frame ends inside its link-layer header.
    #[error("frame ends inside the link-layer header")]
    TruncatedLink,
    /// The frame ends inside a VLAN, MPLS, PPPoE or tunnel header.
    #[error("frame ends inside an encapsulation header")]
    TruncatedEncap,
    /// The frame ends inside the IP header.
    #[error("frame ends inside the IP header")]
    TruncatedIp,
    /// The IP header is invalid (bad version or header length).
    #[error("malformed IP header")]
    MalformedIp,
    /// The frame ends inside the TCP or UDP header. The flow is still known
    /// from the ports, and when only TCP options were cut, sequence
    /// analysis still runs.
    #[error("frame ends inside the transport header")]
    TruncatedTransport,
    /// Encapsulations nest deeper than the decoder follows.
    #[error("too many nested encapsulations")]
    TooDeep,
}

impl DecodeError {
    /// Every kind, in the order `interface_stats` lists them.
    pub const ALL: [DecodeError; 8] = [
        DecodeError::UnsupportedLink(0),
        DecodeError::NotIp,
        DecodeError::TruncatedLink,
        DecodeError::TruncatedEncap,
        DecodeError::TruncatedIp,
        DecodeError::MalformedIp,
        DecodeError::TruncatedTransport,
        DecodeError::TooDeep,
    ];

    /// Stable snake_case name, used as the counter's key.
    pub const fn name(self) -> &'static str {
        match self {
            DecodeError::UnsupportedLink(_) => "unsupported_link",
            DecodeError::NotIp => "non_ip",
            DecodeError::TruncatedLink => "truncated_link",
            DecodeError::TruncatedEncap => "truncated_encap",
            DecodeError::TruncatedIp => "truncated_ip",
            DecodeError::MalformedIp => "malformed_ip",
            DecodeError::TruncatedTransport => "truncated_transport",
            DecodeError::TooDeep => "too_deep",
        }
    }

    /// Index into [`Self::ALL`].
    pub const fn index(self) -> usize {
        match self {
            DecodeError::UnsupportedLink(_) => 0,
            DecodeError::NotIp => 1,
            DecodeError::TruncatedLink => 2,
            DecodeError::TruncatedEncap => 3,
            DecodeError::TruncatedIp => 4,
            DecodeError::MalformedIp => 5,
            DecodeError::TruncatedTransport => 6,
            DecodeError::TooDeep => 7,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_error_index_matches_all() {
        for (i, e) in DecodeError::ALL.iter().enumerate() {
            assert_eq!(e.index(), i, "{}", e.name());
        }
    }

    #[test]
    fn ipv4_in_sixteen_bytes() {
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&[192, 0, 2, 1]);
        assert_eq!(ip_addr(4, &b).to_string(), "192.0.2.1");
        assert_eq!(ip_addr(6, &[0; 16]).to_string(), "::");
    }
}
