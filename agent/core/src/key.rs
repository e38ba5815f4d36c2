use std::hash::{Hash, Hasher};

use crate::PacketMeta;

/// The direction-free identity of a flow within one capture interface
/// (SPEC section 2): IP version, protocol, outermost VLAN id, and the two
/// endpoints ordered so that `lower` is the numerically smaller address
/// (ties broken by port).
///
/// Keys are ordered field by field, in declaration order: the order in
/// which records of flows last seen at the same instant are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlowKey {
    /// 4 or 6.
    pub ip_version: u8,
    /// IP protocol number.
    pub protocol: u8,
    /// Outermost VLAN id, 0 when untagged.
    pub vlan_id: u16,
    /// Port of `lower`.
    pub lower_port: u16,
    /// Port of `upper`.
    pub upper_port: u16,
    /// The smaller address (IPv4 in the first 4 bytes).
    pub lower: [u8; 16],
    /// The larger address.
    pub upper: [u8; 16],
}

/// Which endpoint of a [`FlowKey`] a packet came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The endpoint with the smaller address.
    Lower = 0,
    /// The endpoint with the larger address.
    Upper = 1,
}

impl Side {
    /// The opposite endpoint.
    pub const fn other(self) -> Side {
        match self {
            Side::Lower => Side::Upper,
            Side::Upper => Side::Lower,
        }
    }

    /// 0 for `Lower`, 1 for `Upper`: an index into per-side arrays.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl FlowKey {
    /// The key of `pkt`'s flow and the side `pkt` was sent from.
    pub fn of(pkt: &PacketMeta<'_>) -> (FlowKey, Side) {
        let src = (pkt.src_ip, pkt.src_port);
        let dst = (pkt.dst_ip, pkt.dst_port);
        // Addresses compared as big-endian numbers: one wide compare
        // instead of a byte-wise one.
        let order = |(a, p): ([u8; 16], u16)| (u128::from_be_bytes(a), p);
        let (lower, upper, side) = if order(src) <= order(dst) {
            (src, dst, Side::Lower)
        } else {
            (dst, src, Side::Upper)
        };
        let key = FlowKey {
            ip_version: pkt.ip_version,
            protocol: pkt.protocol,
            vlan_id: pkt.vlan_id,
            lower_port: lower.1,
            upper_port: upper.1,
            lower: lower.0,
            upper: upper.0,
        };
        (key, side)
    }

    /// Address and port of one side.
    pub fn endpoint(&self, side: Side) -> (&[u8; 16], u16) {
        match side {
            Side::Lower => (&self.lower, self.lower_port),
            Side::Upper => (&self.upper, self.upper_port),
        }
    }

    /// The address bytes that go on the wire: 4 for IPv4, 16 for IPv6.
    pub fn addr_bytes(&self, addr: &[u8; 16]) -> usize {
        if self.ip_version == 4 { 4 } else { 16 }.min(addr.len())
    }
}

impl Hash for FlowKey {
    // Whole words instead of the derived per-field, per-byte hashing: the
    // key is hashed for every packet.
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(
            u64::from(self.ip_version)
                | u64::from(self.protocol) << 8
                | u64::from(self.vlan_id) << 16
                | u64::from(self.lower_port) << 32
                | u64::from(self.upper_port) << 48,
        );
        state.write_u128(u128::from_ne_bytes(self.lower));
        state.write_u128(u128::from_ne_bytes(self.upper));
    }
}
