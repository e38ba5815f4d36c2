//! flowstat-decode: one captured frame in, one [`PacketMeta`] out.
//!
//! **Room.** Between capture and the flow table. [`decode`] reads a
//! [`Frame`]'s bytes according to its [`LinkType`] (Ethernet, Linux cooked
//! SLL and SLL2, raw IP, BSD loopback NULL/LOOP, PPP), follows VLAN/QinQ tags,
//! MPLS label stacks, PPPoE sessions and GTP-U, and, when [`DecodeConfig`]
//! turns them on, IP-in-IP, GRE and VXLAN, down to the innermost IP header.
//! That header and its transport header give the flow key fields, TCP
//! sequence fields, fragment fields and the payload DPI looks at.
//!
//! **Contract.** No allocation, no I/O, no panics on any input: IP and TCP
//! headers are read through etherparse's checked slices, every other header
//! (MPLS, PPPoE, GTP-U, GRE, VXLAN, NULL, PPP, SLL, SLL2) through
//! length-checked splits into fixed-size arrays. A frame that cannot be
//! attributed to a flow is a [`DecodeError`]; a frame whose flow is known but
//! whose transport header is cut short is `Ok` with
//! [`PacketMeta::issue`] set.
//!
//! **Choices where the specification is silent.**
//! - VLAN id: the first 802.1Q/802.1ad tag met while parsing (the outermost),
//!   whichever encapsulation it sits in; a later tag never replaces it. A
//!   tagged frame inside an untagged VXLAN or GRE packet therefore gives the
//!   inner tag.
//! - Nesting depth: each VLAN tag, MPLS label stack, PPPoE header, pseudowire
//!   Ethernet frame and tunnel (GTP-U, IP-in-IP, GRE, VXLAN) is one level;
//!   a frame needing more than [`MAX_DEPTH`] levels is [`DecodeError::TooDeep`].
//! - Tunnels fall back to the outer packet: when anything inside a tunnel
//!   fails (a truncated or unsupported tunnel header, a non-IP inner frame, a
//!   truncated or malformed inner IP header), the outer packet is the flow,
//!   exactly as if the tunnel were not decapsulated. Only `TooDeep` is
//!   passed up. GTP messages other than G-PDU stay the outer UDP flow.
//! - IP fragments (the first one included) are never decapsulated: the
//!   inner packet is incomplete, and all fragments of a datagram must land in
//!   the same flow.
//! - Linux cooked captures carry only the sender's link address: it becomes
//!   `src_mac` when it is a 6-byte Ethernet address, `dst_mac` stays zero.
//! - Protocols without ports (ICMP, ESP, GRE when not decapsulated, ...): the
//!   whole IP payload is the `payload`.
//! - A frame captured whole (`data.len() >= wire_len`) whose IP header states
//!   more bytes than are there is inconsistent: the captured length is used.
//! - A frame cut inside IPv6 extension headers is [`DecodeError::TruncatedIp`]
//!   (the transport protocol, part of the flow key, is unknown).
//! - A TCP or UDP header cut short (or a TCP data offset below 5): `tcp` is
//!   `None`, the ports are kept when their 4 bytes are there, `payload` is
//!   empty and `payload_len` is the stated IP payload minus the header length
//!   when that length is known (8 for UDP, the data offset for TCP), else 0.
//! - Only TCP and UDP have ports; SCTP, DCCP, UDP-Lite and the rest are keyed
//!   with ports 0, as ICMP is.
//! - A later IPv6 fragment reports the protocol of its fragment header's next
//!   header; when extension headers sit in the fragmentable part (rare),
//!   that differs from the first fragment's transport protocol.
//!
//! **Not here.** Fragment reassembly (fragments are reported, the flow table
//! attributes them), checksum verification, TCP state, DPI.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

use etherparse::err::{ip_auth, ipv4, ipv6};
use etherparse::{
    IpAuthHeaderSlice, Ipv4HeaderSlice, Ipv6FragmentHeaderSlice, Ipv6HeaderSlice,
    Ipv6RawExtHeaderSlice, TcpHeaderSlice,
};
use flowstat_core::{DecodeError, Fragment, Frame, Layers, LinkType, PacketMeta, TcpInfo};

/// Most encapsulation levels (VLAN tags, MPLS stacks, PPPoE, pseudowires,
/// tunnels) followed in one frame; one more is [`DecodeError::TooDeep`].
pub const MAX_DEPTH: u8 = 8;

/// The link types [`decode`] reads (frames of any other are
/// [`DecodeError::UnsupportedLink`]).
pub const LINK_TYPES: [LinkType; 12] = [
    LinkType::ETHERNET,
    LinkType::RAW,
    LinkType::IPV4,
    LinkType::IPV6,
    LinkType::LINUX_SLL,
    LinkType::LINUX_SLL2,
    LinkType::NULL,
    LinkType::LOOP,
    LinkType::PPP,
    LinkType::PPP_HDLC,
    LinkType::C_HDLC,
    LinkType::PPI,
];

/// Which optional decapsulations run, and the UDP ports of the UDP tunnels.
///
/// 802.1Q/QinQ, MPLS, PPPoE and GTP-U are always decapsulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DecodeConfig {
    /// Decapsulate IP-in-IP: IP protocol 4 (IPv4) or 41 (IPv6) inside IPv4
    /// or IPv6 (4in4, 6in4, 4in6, 6in6).
    pub ip_in_ip: bool,
    /// Decapsulate GRE (IP protocol 47): version 0 carrying IPv4, IPv6, MPLS
    /// or Ethernet (0x6558), and version 1 (PPTP) carrying PPP.
    pub gre: bool,
    /// Decapsulate VXLAN: UDP to [`Self::vxlan_port`] with the I flag set.
    pub vxlan: bool,
    /// UDP destination port of VXLAN (IANA: 4789).
    pub vxlan_port: u16,
    /// UDP port of GTP-U, matched on either side (3GPP: 2152).
    pub gtp_u_port: u16,
}

impl Default for DecodeConfig {
    /// Optional tunnels off; VXLAN port 4789, GTP-U port 2152.
    fn default() -> Self {
        DecodeConfig {
            ip_in_ip: false,
            gre: false,
            vxlan: false,
            vxlan_port: 4789,
            gtp_u_port: 2152,
        }
    }
}

// Ethertypes (also GRE protocol types and Linux cooked protocol fields).
const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const ETH_VLAN: u16 = 0x8100;
const ETH_QINQ: u16 = 0x88a8;
const ETH_VLAN_9100: u16 = 0x9100;
const ETH_MPLS: u16 = 0x8847;
const ETH_MPLS_MC: u16 = 0x8848;
const ETH_PPPOE_SESSION: u16 = 0x8864;
const ETH_FABRICPATH: u16 = 0x8903;
const GRE_TEB: u16 = 0x6558;
const GRE_PPP: u16 = 0x880b;

// PPP protocol numbers.
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;

// IP protocol numbers.
const IPPROTO_HOPOPTS: u8 = 0;
const IPPROTO_IPIP: u8 = 4;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_IPV6: u8 = 41;
const IPPROTO_ROUTING: u8 = 43;
const IPPROTO_FRAGMENT: u8 = 44;
const IPPROTO_GRE: u8 = 47;
const IPPROTO_AH: u8 = 51;
const IPPROTO_DSTOPTS: u8 = 60;

/// Linux ARPHRD_ETHER: the cooked header's address is an Ethernet MAC.
const ARPHRD_ETHER: u16 = 1;

/// Decodes one frame into the packet its flow is keyed on.
///
/// `Ok` means the packet belongs to an IP flow (with [`PacketMeta::issue`]
/// set when its transport header was cut short); `Err` means it does not
/// (not IP, truncated or malformed before the flow key, unsupported link).
///
/// `m` must be fresh from [`PacketMeta::new`] (with the frame's time and
/// wire length): the decoder fills it in place, because copying the
/// finished struct out of a return value stalls on its narrow stores.
pub fn decode<'a>(
    frame: &Frame<'a>,
    cfg: &DecodeConfig,
    m: &mut PacketMeta<'a>,
) -> Result<(), DecodeError> {
    let cx = Cx {
        cfg: *cfg,
        whole: frame.data.len() as u64 >= u64::from(frame.wire_len),
    };
    let data = frame.data;
    // Ethernet first: most frames, and cheaper than a search of the match.
    if frame.link == LinkType::ETHERNET {
        let (h, rest) = data
            .split_first_chunk::<14>()
            .ok_or(DecodeError::TruncatedLink)?;
        let ethertype = ethernet_header(h, m);
        // A whole-word store: `insert` compiles to a byte OR, which the next
        // (word) read of `layers` cannot forward from (a stall).
        m.layers = Layers::ETHERNET;
        return cx.ethertype(ethertype, rest, m, 0);
    }
    match frame.link {
        LinkType::RAW => cx.ip(data, m, 0),
        LinkType::IPV4 => cx.ipv4(data, m, 0),
        LinkType::IPV6 => cx.ipv6(data, m, 0),
        LinkType::LINUX_SLL => cx.sll(data, m),
        LinkType::LINUX_SLL2 => cx.sll2(data, m),
        LinkType::NULL => cx.loopback(data, m, true),
        LinkType::LOOP => cx.loopback(data, m, false),
        // Cisco HDLC frames turn up in PPP captures too (as tshark reads
        // them): their address byte is one PPP never has.
        LinkType::C_HDLC => cx.c_hdlc(data, m),
        LinkType::PPP | LinkType::PPP_HDLC if matches!(data, [0x0f | 0x8f, 0x00, ..]) => {
            cx.c_hdlc(data, m)
        }
        LinkType::PPP | LinkType::PPP_HDLC => cx.ppp(data, m, 0, DecodeError::TruncatedLink),
        LinkType::PPI => {
            // Version, flags, header length and the inner link type (both
            // little-endian); the frame follows the header.
            let h = data.get(..8).ok_or(DecodeError::TruncatedLink)?;
            let len = usize::from(u16::from_le_bytes([h[2], h[3]]));
            let inner = LinkType(u32::from_le_bytes([h[4], h[5], h[6], h[7]]));
            let rest = data.get(len.max(8)..).ok_or(DecodeError::TruncatedLink)?;
            if inner == LinkType::PPI {
                return Err(DecodeError::UnsupportedLink(inner.0));
            }
            let frame = Frame {
                link: inner,
                data: rest,
                wire_len: frame.wire_len.saturating_sub(len32(len)),
                ..*frame
            };
            decode(&frame, cfg, m)
        }
        // (Ethernet is handled above.)
        LinkType(n) => Err(DecodeError::UnsupportedLink(n)),
    }
}

/// One more encapsulation level, or `TooDeep`.
#[inline]
fn deeper(depth: u8) -> Result<u8, DecodeError> {
    if depth < MAX_DEPTH {
        Ok(depth + 1)
    } else {
        Err(DecodeError::TooDeep)
    }
}

/// An IPv4 address in the 16-byte address layout of [`PacketMeta`].
#[inline]
fn v4_addr([a, b, c, d]: [u8; 4]) -> [u8; 16] {
    [a, b, c, d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
}

/// A length as the `u32` of [`PacketMeta::payload_len`] (saturating; IP
/// lengths always fit).
#[inline]
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The IP version a loopback address family stands for: AF_INET is 2
/// everywhere, AF_INET6 is 10 (Linux), 24 (NetBSD, OpenBSD), 28 (FreeBSD)
/// or 30 (macOS).
#[inline]
fn loopback_af(af: u32) -> Option<u8> {
    match af {
        2 => Some(4),
        10 | 24 | 28 | 30 => Some(6),
        _ => None,
    }
}

/// The decoding context of one frame.
#[derive(Clone, Copy)]
struct Cx {
    cfg: DecodeConfig,
    /// The whole frame was captured (not cut by the snap length): an IP
    /// length beyond the captured bytes is then a lie, not a truncation.
    whole: bool,
}

impl Cx {
    /// The payload length a header states (`stated_total` minus `headers`),
    /// or the `captured` length when the statement is 0 (TSO, jumbogram),
    /// smaller than the headers, or larger than a wholly captured frame.
    #[inline]
    fn stated_len(self, stated_total: usize, headers: usize, captured: usize) -> usize {
        match stated_total.checked_sub(headers) {
            Some(n) if stated_total != 0 && (n <= captured || !self.whole) => n,
            _ => captured,
        }
    }

    /// An inner Ethernet II header (VXLAN, GRE), then whatever its
    /// ethertype says.
    fn ethernet<'a>(
        self,
        data: &'a [u8],
        m: &mut PacketMeta<'a>,
        depth: u8,
        short: DecodeError,
    ) -> Result<(), DecodeError> {
        let (h, rest) = data.split_first_chunk::<14>().ok_or(short)?;
        let ethertype = ethernet_header(h, m);
        m.layers.insert(Layers::ETHERNET);
        self.ethertype(ethertype, rest, m, depth)
    }

    /// Follows `ethertype` (the type of `rest`) through VLAN tags, MPLS
    /// label stacks (and Ethernet pseudowires), Cisco FabricPath and PPPoE
    /// to an IP header.
    ///
    /// Plain IPv4, most frames, goes straight to [`Self::ipv4`] from the
    /// caller; the rest takes a call to [`Self::ethertype_loop`].
    #[inline(always)]
    fn ethertype<'a>(
        self,
        ethertype: u16,
        rest: &'a [u8],
        m: &mut PacketMeta<'a>,
        depth: u8,
    ) -> Result<(), DecodeError> {
        if ethertype == ETH_IPV4 {
            self.ipv4(rest, m, depth)
        } else {
            self.ethertype_loop(ethertype, rest, m, depth)
        }
    }

    /// [`Self::ethertype`] for everything but plain IPv4.
    fn ethertype_loop<'a>(
        self,
        mut ethertype: u16,
        mut rest: &'a [u8],
        m: &mut PacketMeta<'a>,
        mut depth: u8,
    ) -> Result<(), DecodeError> {
        loop {
            match ethertype {
                ETH_IPV4 => return self.ipv4(rest, m, depth),
                ETH_IPV6 => return self.ipv6(rest, m, depth),
                ETH_VLAN | ETH_QINQ | ETH_VLAN_9100 => {
                    depth = deeper(depth)?;
                    let (tag, r) = rest
                        .split_first_chunk::<4>()
                        .ok_or(DecodeError::TruncatedEncap)?;
                    if !m.layers.contains(Layers::VLAN) {
                        m.layers.insert(Layers::VLAN);
                        m.vlan_id = u16::from_be_bytes([tag[0], tag[1]]) & 0x0fff;
                    }
                    ethertype = u16::from_be_bytes([tag[2], tag[3]]);
                    rest = r;
                }
                ETH_MPLS | ETH_MPLS_MC => {
                    depth = deeper(depth)?;
                    m.layers.insert(Layers::MPLS);
                    loop {
                        let (label, r) = rest
                            .split_first_chunk::<4>()
                            .ok_or(DecodeError::TruncatedEncap)?;
                        rest = r;
                        if label[2] & 0x01 != 0 {
                            break; // bottom of stack
                        }
                    }
                    match rest.first().map(|b| b >> 4) {
                        Some(4) => return self.ipv4(rest, m, depth),
                        Some(6) => return self.ipv6(rest, m, depth),
                        Some(0) => {
                            // Pseudowire control word, then an Ethernet frame.
                            depth = deeper(depth)?;
                            let (h, r) = rest
                                .get(4..)
                                .and_then(|pw| pw.split_first_chunk::<14>())
                                .ok_or(DecodeError::TruncatedEncap)?;
                            ethertype = ethernet_header(h, m);
                            m.layers.insert(Layers::ETHERNET);
                            rest = r;
                        }
                        Some(_) => return Err(DecodeError::NotIp),
                        None => return Err(DecodeError::TruncatedEncap),
                    }
                }
                ETH_FABRICPATH => {
                    // Cisco FabricPath: FTag and TTL, then the host's
                    // Ethernet frame (its addresses are the flow's).
                    depth = deeper(depth)?;
                    let (h, r) = rest
                        .get(2..)
                        .and_then(|inner| inner.split_first_chunk::<14>())
                        .ok_or(DecodeError::TruncatedEncap)?;
                    ethertype = ethernet_header(h, m);
                    rest = r;
                }
                ETH_PPPOE_SESSION => {
                    depth = deeper(depth)?;
                    let (_, ppp) = rest
                        .split_first_chunk::<6>()
                        .ok_or(DecodeError::TruncatedEncap)?;
                    m.layers.insert(Layers::PPPOE);
                    return self.ppp(ppp, m, depth, DecodeError::TruncatedEncap);
                }
                // ARP, LLDP, PPPoE discovery, 802.3 length fields (<= 1500), ...
                _ => return Err(DecodeError::NotIp),
            }
        }
    }

    /// PPP: optional HDLC address/control (0xff 0x03), then a 1-byte
    /// (odd first byte) or 2-byte protocol field.
    fn ppp<'a>(
        self,
        data: &'a [u8],
        m: &mut PacketMeta<'a>,
        depth: u8,
        short: DecodeError,
    ) -> Result<(), DecodeError> {
        let data = match data {
            [0xff, 0x03, rest @ ..] => rest,
            _ => data,
        };
        let (protocol, rest) = match data {
            [p, rest @ ..] if p & 1 == 1 => (u16::from(*p), rest),
            [hi, lo, rest @ ..] => (u16::from_be_bytes([*hi, *lo]), rest),
            _ => return Err(short),
        };
        match protocol {
            PPP_IPV4 => self.ipv4(rest, m, depth),
            PPP_IPV6 => self.ipv6(rest, m, depth),
            _ => Err(DecodeError::NotIp),
        }
    }

    /// Cisco HDLC: address (0x0f unicast, 0x8f broadcast), control, and
    /// an EtherType.
    fn c_hdlc<'a>(self, data: &'a [u8], m: &mut PacketMeta<'a>) -> Result<(), DecodeError> {
        let (h, rest) = data
            .split_first_chunk::<4>()
            .ok_or(DecodeError::TruncatedLink)?;
        self.ethertype(u16::from_be_bytes([h[2], h[3]]), rest, m, 0)
    }

    /// BSD loopback: a 4-byte address family, in host order (NULL, either
    /// byte order accepted) or network order (LOOP).
    fn loopback<'a>(
        self,
        data: &'a [u8],
        m: &mut PacketMeta<'a>,
        host_order: bool,
    ) -> Result<(), DecodeError> {
        let (af, rest) = data
            .split_first_chunk::<4>()
            .ok_or(DecodeError::TruncatedLink)?;
        let version = match loopback_af(u32::from_be_bytes(*af)) {
            Some(v) => Some(v),
            None if host_order => loopback_af(u32::from_le_bytes(*af)),
            None => None,
        };
        match version {
            Some(4) => self.ipv4(rest, m, 0),
            Some(_) => self.ipv6(rest, m, 0),
            None => Err(DecodeError::NotIp),
        }
    }

    /// Linux cooked capture v1: packet type, ARPHRD type, address length,
    /// 8 address bytes, protocol (16 bytes).
    fn sll<'a>(self, data: &'a [u8], m: &mut PacketMeta<'a>) -> Result<(), DecodeError> {
        let (h, rest) = data
            .split_first_chunk::<16>()
            .ok_or(DecodeError::TruncatedLink)?;
        let hatype = u16::from_be_bytes([h[2], h[3]]);
        let halen = u16::from_be_bytes([h[4], h[5]]);
        if hatype == ARPHRD_ETHER && halen == 6 {
            m.src_mac = [h[6], h[7], h[8], h[9], h[10], h[11]];
        }
        self.ethertype(u16::from_be_bytes([h[14], h[15]]), rest, m, 0)
    }

    /// Linux cooked capture v2: protocol, reserved, interface index, ARPHRD
    /// type, packet type, address length, 8 address bytes (20 bytes).
    fn sll2<'a>(self, data: &'a [u8], m: &mut PacketMeta<'a>) -> Result<(), DecodeError> {
        let (h, rest) = data
            .split_first_chunk::<20>()
            .ok_or(DecodeError::TruncatedLink)?;
        let hatype = u16::from_be_bytes([h[8], h[9]]);
        if hatype == ARPHRD_ETHER && h[11] == 6 {
            m.src_mac = [h[12], h[13], h[14], h[15], h[16], h[17]];
        }
        self.ethertype(u16::from_be_bytes([h[0], h[1]]), rest, m, 0)
    }

    /// An IP header whose version nibble picks IPv4 or IPv6.
    fn ip<'a>(self, data: &'a [u8], m: &mut PacketMeta<'a>, depth: u8) -> Result<(), DecodeError> {
        match data.first().map(|b| b >> 4) {
            Some(4) => self.ipv4(data, m, depth),
            Some(6) => self.ipv6(data, m, depth),
            Some(_) => Err(DecodeError::MalformedIp),
            None => Err(DecodeError::TruncatedIp),
        }
    }

    /// An IPv4 header (and AH), then the transport.
    ///
    /// The payload is cut the way etherparse's `LaxIpv4Slice` cuts it, from
    /// its checked `Ipv4HeaderSlice` (and `IpAuthHeaderSlice`): at
    /// `total_len` when the frame holds that much (Ethernet padding
    /// dropped), else (snap length, `total_len` 0 from TSO, or smaller than
    /// the header) at the end of the captured bytes. Done here rather than
    /// with `LaxIpv4Slice` itself because that took about 55 instructions a
    /// packet (a quarter of the whole decode) for the same result, and
    /// because it reads an AH out of a later fragment's data.
    #[inline]
    fn ipv4<'a>(
        self,
        data: &'a [u8],
        m: &mut PacketMeta<'a>,
        depth: u8,
    ) -> Result<(), DecodeError> {
        let h = Ipv4HeaderSlice::from_slice(data).map_err(|e| match e {
            ipv4::HeaderSliceError::Len(_) => DecodeError::TruncatedIp,
            ipv4::HeaderSliceError::Content(_) => DecodeError::MalformedIp,
        })?;
        m.ip_version = 4;
        m.src_ip = v4_addr(h.source());
        m.dst_ip = v4_addr(h.destination());
        m.dscp = h.dcp().value();
        let header_len = h.slice().len();
        let total_len = usize::from(h.total_len());
        let after = data.get(header_len..).unwrap_or_default();
        let body = match total_len.checked_sub(header_len) {
            Some(n) => after.get(..n).unwrap_or(after),
            None => after,
        };
        let protocol = h.protocol().0;
        let more = h.more_fragments();
        let offset = h.fragments_offset().value();
        if more || offset != 0 {
            m.fragment = Some(Fragment {
                id: u32::from(h.identification()),
                offset,
                more,
            });
            if offset != 0 {
                // A later fragment: its bytes are datagram data, no header.
                m.protocol = protocol;
                m.payload_len = len32(self.stated_len(total_len, header_len, body.len()));
                return Ok(());
            }
        }
        if protocol == IPPROTO_AH {
            let a = IpAuthHeaderSlice::from_slice(body).map_err(|e| match e {
                ip_auth::HeaderSliceError::Len(_) => DecodeError::TruncatedIp,
                ip_auth::HeaderSliceError::Content(_) => DecodeError::MalformedIp,
            })?;
            let auth_len = a.slice().len();
            let payload = body.get(auth_len..).unwrap_or_default();
            let stated = self.stated_len(total_len, header_len + auth_len, payload.len());
            return self.transport(a.next_header().0, payload, stated, m, depth);
        }
        let stated = self.stated_len(total_len, header_len, body.len());
        self.transport(protocol, body, stated, m, depth)
    }

    /// An IPv6 header and its extension headers, then the transport.
    ///
    /// The payload is cut like etherparse's `LaxIpv6Slice` does; the
    /// extension walk is done here (with etherparse's checked extension
    /// slices) because it has to stop at the fragment header of a later
    /// fragment, whose next bytes are fragment data, not headers.
    #[inline]
    fn ipv6<'a>(
        self,
        data: &'a [u8],
        m: &mut PacketMeta<'a>,
        depth: u8,
    ) -> Result<(), DecodeError> {
        let h = Ipv6HeaderSlice::from_slice(data).map_err(|e| match e {
            ipv6::HeaderSliceError::Len(_) => DecodeError::TruncatedIp,
            ipv6::HeaderSliceError::Content(_) => DecodeError::MalformedIp,
        })?;
        m.ip_version = 6;
        m.src_ip = h.source();
        m.dst_ip = h.destination();
        m.dscp = h.traffic_class() >> 2;
        let after = data.get(h.slice().len()..).unwrap_or_default();
        let payload_length = usize::from(h.payload_length());
        let body = if payload_length == 0 {
            after
        } else {
            after.get(..payload_length).unwrap_or(after)
        };
        let mut next = h.next_header().0;
        let mut rest = body;
        let mut fragment = None;
        loop {
            match next {
                IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                    let e = Ipv6RawExtHeaderSlice::from_slice(rest)
                        .map_err(|_| DecodeError::TruncatedIp)?;
                    next = e.next_header().0;
                    rest = rest.get(e.slice().len()..).unwrap_or_default();
                }
                IPPROTO_FRAGMENT => {
                    let f = Ipv6FragmentHeaderSlice::from_slice(rest)
                        .map_err(|_| DecodeError::TruncatedIp)?;
                    next = f.next_header().0;
                    rest = rest.get(f.slice().len()..).unwrap_or_default();
                    let offset = f.fragment_offset().value();
                    if fragment.is_none() {
                        fragment = Some(Fragment {
                            id: f.identification(),
                            offset,
                            more: f.more_fragments(),
                        });
                    }
                    if offset != 0 {
                        m.fragment = fragment;
                        m.protocol = next;
                        let headers = body.len().saturating_sub(rest.len());
                        m.payload_len = len32(self.stated_len(payload_length, headers, rest.len()));
                        return Ok(());
                    }
                }
                IPPROTO_AH => {
                    let a = IpAuthHeaderSlice::from_slice(rest).map_err(|e| match e {
                        ip_auth::HeaderSliceError::Len(_) => DecodeError::TruncatedIp,
                        ip_auth::HeaderSliceError::Content(_) => DecodeError::MalformedIp,
                    })?;
                    next = a.next_header().0;
                    rest = rest.get(a.slice().len()..).unwrap_or_default();
                }
                _ => break,
            }
        }
        m.fragment = fragment;
        let headers = body.len().saturating_sub(rest.len());
        let stated = self.stated_len(payload_length, headers, rest.len());
        self.transport(next, rest, stated, m, depth)
    }

    /// The transport header (`data` is the IP payload, `stated` its length
    /// as the IP header says), and the tunnels an IP protocol can start.
    #[inline(always)]
    fn transport<'a>(
        self,
        protocol: u8,
        data: &'a [u8],
        stated: usize,
        m: &mut PacketMeta<'a>,
        depth: u8,
    ) -> Result<(), DecodeError> {
        m.protocol = protocol;
        match protocol {
            IPPROTO_TCP => {
                self.tcp(data, stated, m);
                Ok(())
            }
            IPPROTO_UDP => self.udp(data, stated, m, depth),
            _ => {
                m.payload = data;
                m.payload_len = len32(stated);
                match protocol {
                    IPPROTO_IPIP | IPPROTO_IPV6 if self.cfg.ip_in_ip && m.fragment.is_none() => {
                        self.tunnel(m, Layers::IP_IN_IP, |m| {
                            let depth = deeper(depth)?;
                            if protocol == IPPROTO_IPIP {
                                self.ipv4(data, m, depth)
                            } else {
                                self.ipv6(data, m, depth)
                            }
                        })
                    }
                    IPPROTO_GRE if self.cfg.gre && m.fragment.is_none() => {
                        self.tunnel(m, Layers::GRE, |m| self.gre(data, m, depth))
                    }
                    _ => Ok(()),
                }
            }
        }
    }

    /// TCP: ports, sequence fields, payload after the data offset.
    #[inline]
    fn tcp<'a>(self, data: &'a [u8], stated: usize, m: &mut PacketMeta<'a>) {
        let Ok(t) = TcpHeaderSlice::from_slice(data) else {
            // Cut inside the header, or a data offset below 5.
            let header_len = data
                .get(12)
                .map(|b| usize::from(b >> 4) * 4)
                .filter(|&len| len >= 20);
            truncated_transport(data, header_len, stated, m);
            // Cut inside the options only (a short snap length): the fixed
            // 20 bytes still give sequence analysis what it needs.
            if let (Some(_), Some(h)) = (header_len, data.first_chunk::<20>()) {
                m.tcp = Some(TcpInfo {
                    seq: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
                    ack: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
                    flags: h[13],
                    window: u16::from_be_bytes([h[14], h[15]]),
                });
            }
            return;
        };
        let header = t.slice();
        m.src_port = t.source_port();
        m.dst_port = t.destination_port();
        m.tcp = Some(TcpInfo {
            seq: t.sequence_number(),
            ack: t.acknowledgment_number(),
            flags: header.get(13).copied().unwrap_or(0),
            window: t.window_size(),
        });
        let payload = data.get(header.len()..).unwrap_or_default();
        m.payload = payload;
        m.payload_len = len32(stated.checked_sub(header.len()).unwrap_or(payload.len()));
    }

    /// UDP: ports, payload after 8 bytes, then GTP-U and VXLAN.
    #[inline]
    fn udp<'a>(
        self,
        data: &'a [u8],
        stated: usize,
        m: &mut PacketMeta<'a>,
        depth: u8,
    ) -> Result<(), DecodeError> {
        let Some((h, payload)) = data.split_first_chunk::<8>() else {
            truncated_transport(data, Some(8), stated, m);
            return Ok(());
        };
        let src_port = u16::from_be_bytes([h[0], h[1]]);
        let dst_port = u16::from_be_bytes([h[2], h[3]]);
        m.src_port = src_port;
        m.dst_port = dst_port;
        m.payload = payload;
        m.payload_len = len32(stated.checked_sub(8).unwrap_or(payload.len()));
        if m.fragment.is_some() {
            return Ok(());
        }
        if src_port == self.cfg.gtp_u_port || dst_port == self.cfg.gtp_u_port {
            return self.tunnel(m, Layers::GTP, |m| self.gtp_u(payload, m, depth));
        }
        if self.cfg.vxlan && dst_port == self.cfg.vxlan_port {
            return self.tunnel(m, Layers::VXLAN, |m| self.vxlan(payload, m, depth));
        }
        Ok(())
    }

    /// Decodes a tunnel's inner packet with `inner` over `m`, which holds
    /// the complete outer packet; any failure but `TooDeep` puts the outer
    /// packet back.
    #[inline(never)]
    fn tunnel<'a>(
        self,
        m: &mut PacketMeta<'a>,
        layer: Layers,
        inner: impl FnOnce(&mut PacketMeta<'a>) -> Result<(), DecodeError>,
    ) -> Result<(), DecodeError> {
        let outer = *m;
        m.layers.insert(layer);
        m.src_port = 0;
        m.dst_port = 0;
        m.fragment = None;
        m.tcp = None;
        m.payload_len = 0;
        m.payload = &[];
        m.issue = None;
        match inner(m) {
            Ok(()) => Ok(()),
            Err(DecodeError::TooDeep) => Err(DecodeError::TooDeep),
            Err(_) => {
                *m = outer;
                Ok(())
            }
        }
    }

    /// GTP-U (v1): 8 bytes, 4 more when E, S or PN is set, then the
    /// extension headers chained by next-extension-type (length in 4-byte
    /// units, the next type in the last byte). Only a G-PDU (type 0xff)
    /// carries a user packet.
    fn gtp_u<'a>(
        self,
        data: &'a [u8],
        m: &mut PacketMeta<'a>,
        depth: u8,
    ) -> Result<(), DecodeError> {
        let (h, mut rest) = data
            .split_first_chunk::<8>()
            .ok_or(DecodeError::TruncatedEncap)?;
        let flags = h[0];
        // Version 1, protocol type 1 (GTP, not GTP'); G-PDU.
        if flags & 0xf0 != 0x30 || h[1] != 0xff {
            return Err(DecodeError::NotIp);
        }
        if flags & 0x07 != 0 {
            let (opt, r) = rest
                .split_first_chunk::<4>()
                .ok_or(DecodeError::TruncatedEncap)?;
            rest = r;
            let mut next = if flags & 0x04 != 0 { opt[3] } else { 0 };
            while next != 0 {
                let len = usize::from(*rest.first().ok_or(DecodeError::TruncatedEncap)?) * 4;
                if len == 0 {
                    return Err(DecodeError::TruncatedEncap);
                }
                let ext = rest.get(..len).ok_or(DecodeError::TruncatedEncap)?;
                next = ext.last().copied().unwrap_or(0);
                rest = rest.get(len..).unwrap_or_default();
            }
        }
        let depth = deeper(depth)?;
        self.ip(rest, m, depth)
    }

    /// VXLAN: 8 bytes with the I flag, then an Ethernet frame.
    fn vxlan<'a>(
        self,
        data: &'a [u8],
        m: &mut PacketMeta<'a>,
        depth: u8,
    ) -> Result<(), DecodeError> {
        let (h, rest) = data
            .split_first_chunk::<8>()
            .ok_or(DecodeError::TruncatedEncap)?;
        if h[0] & 0x08 == 0 {
            return Err(DecodeError::NotIp);
        }
        let depth = deeper(depth)?;
        self.ethernet(rest, m, depth, DecodeError::TruncatedEncap)
    }

    /// GRE version 0 (RFC 2784/2890: checksum, key and sequence optional),
    /// carrying an ethertype (IPv4, IPv6, MPLS, ...) or Ethernet (0x6558);
    /// or version 1 (PPTP, RFC 2637) carrying PPP.
    fn gre<'a>(self, data: &'a [u8], m: &mut PacketMeta<'a>, depth: u8) -> Result<(), DecodeError> {
        let (h, rest) = data
            .split_first_chunk::<4>()
            .ok_or(DecodeError::TruncatedEncap)?;
        let flags = h[0];
        let version = h[1] & 0x07;
        let protocol = u16::from_be_bytes([h[2], h[3]]);
        let checksum = usize::from(flags & 0x80 != 0);
        let key = usize::from(flags & 0x20 != 0);
        let sequence = usize::from(flags & 0x10 != 0);
        match version {
            0 => {
                if flags & 0x40 != 0 {
                    // RFC 1701 source routing: not followed.
                    return Err(DecodeError::NotIp);
                }
                let inner = rest
                    .get(4 * (checksum + key + sequence)..)
                    .ok_or(DecodeError::TruncatedEncap)?;
                let depth = deeper(depth)?;
                if protocol == GRE_TEB {
                    self.ethernet(inner, m, depth, DecodeError::TruncatedEncap)
                } else {
                    self.ethertype(protocol, inner, m, depth)
                }
            }
            1 if protocol == GRE_PPP && key == 1 => {
                // Key field = payload length + call id; then optional
                // sequence and acknowledgement numbers.
                let ack = usize::from(h[1] & 0x80 != 0);
                let inner = rest
                    .get(4 * (key + sequence + ack)..)
                    .ok_or(DecodeError::TruncatedEncap)?;
                let depth = deeper(depth)?;
                self.ppp(inner, m, depth, DecodeError::TruncatedEncap)
            }
            _ => Err(DecodeError::NotIp),
        }
    }
}

/// Reads the MAC addresses of an Ethernet II header into `m` and returns
/// its ethertype (the caller records [`Layers::ETHERNET`]).
#[inline]
fn ethernet_header(h: &[u8; 14], m: &mut PacketMeta<'_>) -> u16 {
    m.dst_mac = [h[0], h[1], h[2], h[3], h[4], h[5]];
    m.src_mac = [h[6], h[7], h[8], h[9], h[10], h[11]];
    u16::from_be_bytes([h[12], h[13]])
}

/// A TCP or UDP header cut short (or invalid): the ports when the first 4
/// bytes are there, the issue set, no payload; `payload_len` is the stated
/// length minus the header length when that length is known.
#[cold]
fn truncated_transport(
    data: &[u8],
    header_len: Option<usize>,
    stated: usize,
    m: &mut PacketMeta<'_>,
) {
    if let Some(p) = data.first_chunk::<4>() {
        m.src_port = u16::from_be_bytes([p[0], p[1]]);
        m.dst_port = u16::from_be_bytes([p[2], p[3]]);
    }
    m.issue = Some(DecodeError::TruncatedTransport);
    m.payload = &[];
    m.payload_len = header_len
        .and_then(|len| stated.checked_sub(len))
        .map_or(0, len32);
}

#[cfg(test)]
mod tests {
    /// [`decode`] into a fresh packet.
    fn decoded<'a>(frame: &Frame<'a>, cfg: &DecodeConfig) -> Result<PacketMeta<'a>, DecodeError> {
        let mut m = PacketMeta::new(frame.ts, frame.wire_len);
        decode(frame, cfg, &mut m).map(|()| m)
    }

    use super::*;
    use etherparse::{
        IpFragOffset, IpHeaders, IpNumber, Ipv4Header, Ipv6Header, PacketBuilder, TcpHeader,
        UdpHeader, VlanId,
    };
    use flowstat_core::Timestamp;
    use std::path::{Path, PathBuf};

    const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
    const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
    const MAC_C: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0c];
    const MAC_D: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0d];
    const IP_A: [u8; 4] = [192, 0, 2, 1];
    const IP_B: [u8; 4] = [198, 51, 100, 2];
    const INNER_A: [u8; 4] = [10, 0, 0, 1];
    const INNER_B: [u8; 4] = [10, 0, 0, 2];
    const IP6_A: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const IP6_B: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    const INNER6_A: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const INNER6_B: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

    fn frame(link: LinkType, data: &[u8]) -> Frame<'_> {
        Frame {
            ts: Timestamp::from_secs(7),
            wire_len: data.len() as u32,
            link,
            data,
        }
    }

    fn dec(link: LinkType, data: &[u8]) -> Result<PacketMeta<'_>, DecodeError> {
        decoded(&frame(link, data), &DecodeConfig::default())
    }

    fn dec_with(
        link: LinkType,
        data: &[u8],
        cfg: DecodeConfig,
    ) -> Result<PacketMeta<'_>, DecodeError> {
        decoded(&frame(link, data), &cfg)
    }

    fn tunnels_on() -> DecodeConfig {
        DecodeConfig {
            ip_in_ip: true,
            gre: true,
            vxlan: true,
            ..DecodeConfig::default()
        }
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    /// An Ethernet II header from MAC_A to MAC_B.
    fn eth(ethertype: u16) -> Vec<u8> {
        cat(&[&MAC_B, &MAC_A, &ethertype.to_be_bytes()])
    }

    /// An IPv4 packet IP_A -> IP_B with an arbitrary protocol and payload.
    fn ipv4_raw(src: [u8; 4], dst: [u8; 4], protocol: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv4(src, dst, 64)
            .write(&mut v, IpNumber(protocol), payload)
            .unwrap();
        v
    }

    fn ipv6_raw(src: [u8; 16], dst: [u8; 16], protocol: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv6(src, dst, 64)
            .write(&mut v, IpNumber(protocol), payload)
            .unwrap();
        v
    }

    fn ipv4_udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv4(src, dst, 64)
            .udp(sport, dport)
            .write(&mut v, payload)
            .unwrap();
        v
    }

    fn ipv4_tcp(src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv4(src, dst, 64)
            .tcp(40000, 443, 1000, 512)
            .ack(77)
            .psh()
            .write(&mut v, payload)
            .unwrap();
        v
    }

    fn ipv6_udp(src: [u8; 16], dst: [u8; 16], payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv6(src, dst, 64)
            .udp(5353, 53)
            .write(&mut v, payload)
            .unwrap();
        v
    }

    fn ipv6_tcp(src: [u8; 16], dst: [u8; 16], payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv6(src, dst, 64)
            .tcp(40001, 80, 5, 512)
            .syn()
            .write(&mut v, payload)
            .unwrap();
        v
    }

    fn eth_ipv4_tcp(payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4(IP_A, IP_B, 64)
            .tcp(40000, 443, 1000, 512)
            .ack(77)
            .psh()
            .write(&mut v, payload)
            .unwrap();
        v
    }

    fn assert_v4_flow(m: &PacketMeta<'_>, src: [u8; 4], dst: [u8; 4], protocol: u8) {
        assert_eq!(m.ip_version, 4);
        assert_eq!(m.src_ip, v4_addr(src));
        assert_eq!(m.dst_ip, v4_addr(dst));
        assert_eq!(m.protocol, protocol);
    }

    fn assert_v6_flow(m: &PacketMeta<'_>, src: [u8; 16], dst: [u8; 16], protocol: u8) {
        assert_eq!(m.ip_version, 6);
        assert_eq!(m.src_ip, src);
        assert_eq!(m.dst_ip, dst);
        assert_eq!(m.protocol, protocol);
    }

    fn layers(list: &[Layers]) -> Layers {
        let mut l = Layers::empty();
        for x in list {
            l.insert(*x);
        }
        l
    }

    // ---- Ethernet, IP, transport -------------------------------------

    #[test]
    fn ethernet_ipv4_tcp_gives_key_tcp_fields_and_payload() {
        let data = eth_ipv4_tcp(b"hello");
        let m = dec(LinkType::ETHERNET, &data).unwrap();
        assert_eq!(m.ts, Timestamp::from_secs(7));
        assert_eq!(m.wire_len, data.len() as u32);
        assert_eq!(m.layers, Layers::ETHERNET);
        assert_eq!(m.vlan_id, 0);
        assert_eq!(m.src_mac, MAC_A);
        assert_eq!(m.dst_mac, MAC_B);
        assert_v4_flow(&m, IP_A, IP_B, 6);
        assert_eq!((m.src_port, m.dst_port), (40000, 443));
        assert_eq!(
            m.tcp,
            Some(TcpInfo {
                seq: 1000,
                ack: 77,
                flags: TcpInfo::ACK | TcpInfo::PSH,
                window: 512,
            })
        );
        assert_eq!(m.payload, b"hello");
        assert_eq!(m.payload_len, 5);
        assert_eq!(m.fragment, None);
        assert_eq!(m.issue, None);
    }

    #[test]
    fn tcp_flags_byte_keeps_every_bit() {
        let mut v = Vec::new();
        PacketBuilder::ipv4(IP_A, IP_B, 64)
            .tcp(1, 2, 3, 4)
            .syn()
            .fin()
            .rst()
            .urg(0)
            .ece()
            .cwr()
            .write(&mut v, &[])
            .unwrap();
        let m = dec(LinkType::IPV4, &v).unwrap();
        assert_eq!(
            m.tcp.unwrap().flags,
            0x01 | 0x02 | 0x04 | 0x20 | 0x40 | 0x80
        );
    }

    #[test]
    fn ethernet_ipv6_udp_with_dscp_from_traffic_class() {
        let ip = Ipv6Header {
            traffic_class: 0xb8, // DSCP 46 (EF), ECN 0
            source: IP6_A,
            destination: IP6_B,
            hop_limit: 64,
            ..Default::default()
        };
        let mut v = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ip(IpHeaders::Ipv6(ip, Default::default()))
            .udp(5353, 53)
            .write(&mut v, b"query")
            .unwrap();
        let m = dec(LinkType::ETHERNET, &v).unwrap();
        assert_v6_flow(&m, IP6_A, IP6_B, 17);
        assert_eq!(m.dscp, 46);
        assert_eq!((m.src_port, m.dst_port), (5353, 53));
        assert_eq!(m.tcp, None);
        assert_eq!(m.payload, b"query");
        assert_eq!(m.payload_len, 5);
    }

    #[test]
    fn ipv4_dscp_is_the_upper_six_bits_of_the_tos_byte() {
        let mut v = ipv4_udp(IP_A, IP_B, 1, 2, b"x");
        v[1] = (10 << 2) | 0x01; // DSCP 10, ECN 1
        assert_eq!(dec(LinkType::IPV4, &v).unwrap().dscp, 10);
    }

    #[test]
    fn icmp_has_no_ports_and_the_whole_ip_payload() {
        let mut v = Vec::new();
        PacketBuilder::ipv4(IP_A, IP_B, 64)
            .icmpv4_echo_request(1, 2)
            .write(&mut v, b"ping")
            .unwrap();
        let m = dec(LinkType::RAW, &v).unwrap();
        assert_v4_flow(&m, IP_A, IP_B, 1);
        assert_eq!((m.src_port, m.dst_port), (0, 0));
        assert_eq!(m.tcp, None);
        assert_eq!(m.payload.len(), 8 + 4);
        assert_eq!(m.payload_len, 12);

        let mut v = Vec::new();
        PacketBuilder::ipv6(IP6_A, IP6_B, 64)
            .icmpv6_echo_request(1, 2)
            .write(&mut v, b"ping")
            .unwrap();
        let m = dec(LinkType::RAW, &v).unwrap();
        assert_v6_flow(&m, IP6_A, IP6_B, 58);
        assert_eq!((m.src_port, m.dst_port), (0, 0));
    }

    #[test]
    fn ipv6_extension_headers_are_skipped_to_the_transport() {
        let tcp = TcpHeader::new(40002, 22, 9, 100).to_bytes();
        let hop_by_hop = [60, 0, 1, 4, 0, 0, 0, 0]; // -> destination options
        let dest_opts = [51, 0, 1, 4, 0, 0, 0, 0]; // -> AH
        let ah = [6, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9]; // -> TCP, 12 bytes
        let body = cat(&[&hop_by_hop, &dest_opts, &ah, &tcp, b"data"]);
        let ip = Ipv6Header {
            payload_length: body.len() as u16,
            next_header: IpNumber(0),
            hop_limit: 64,
            source: IP6_A,
            destination: IP6_B,
            ..Default::default()
        };
        let v = cat(&[&ip.to_bytes(), &body]);
        let m = dec(LinkType::IPV6, &v).unwrap();
        assert_v6_flow(&m, IP6_A, IP6_B, 6);
        assert_eq!((m.src_port, m.dst_port), (40002, 22));
        assert_eq!(m.payload, b"data");
        assert_eq!(m.payload_len, 4);
        assert_eq!(m.fragment, None);

        // Cut inside the destination options header: the protocol is unknown.
        assert_eq!(
            dec(LinkType::IPV6, &v[..40 + 8 + 4]).unwrap_err(),
            DecodeError::TruncatedIp
        );
    }

    #[test]
    fn ipv4_authentication_header_is_skipped_to_the_transport() {
        let ah = [17, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9]; // -> UDP, 12 bytes
        let udp = UdpHeader {
            source_port: 500,
            destination_port: 4500,
            length: 8 + 3,
            checksum: 0,
        }
        .to_bytes();
        let f = ipv4_raw(IP_A, IP_B, 51, &cat(&[&ah, &udp, b"ike"]));
        let m = dec(LinkType::RAW, &f).unwrap();
        assert_v4_flow(&m, IP_A, IP_B, 17);
        assert_eq!((m.src_port, m.dst_port), (500, 4500));
        assert_eq!(m.payload, b"ike");
        assert_eq!(m.payload_len, 3);
        assert_eq!(
            dec(LinkType::RAW, &f[..20 + 6]).unwrap_err(),
            DecodeError::TruncatedIp
        );
    }

    // ---- link types ---------------------------------------------------

    #[test]
    fn raw_ip_links_pick_the_version() {
        let v4 = ipv4_tcp(IP_A, IP_B, b"");
        let v6 = ipv6_udp(IP6_A, IP6_B, b"");
        let m = dec(LinkType::RAW, &v4).unwrap();
        assert_v4_flow(&m, IP_A, IP_B, 6);
        assert_eq!(m.layers, Layers::empty());
        assert_eq!(m.src_mac, [0; 6]);
        assert_v6_flow(&dec(LinkType::RAW, &v6).unwrap(), IP6_A, IP6_B, 17);
        assert_v4_flow(&dec(LinkType::IPV4, &v4).unwrap(), IP_A, IP_B, 6);
        assert_v6_flow(&dec(LinkType::IPV6, &v6).unwrap(), IP6_A, IP6_B, 17);
        assert_eq!(
            dec(LinkType::IPV4, &v6).unwrap_err(),
            DecodeError::MalformedIp
        );
        assert_eq!(
            dec(LinkType::RAW, &[]).unwrap_err(),
            DecodeError::TruncatedIp
        );
        assert_eq!(
            dec(LinkType::RAW, &[0x55; 40]).unwrap_err(),
            DecodeError::MalformedIp
        );
    }

    #[test]
    fn null_link_reads_the_family_in_either_byte_order() {
        let v4 = ipv4_tcp(IP_A, IP_B, b"");
        let v6 = ipv6_udp(IP6_A, IP6_B, b"");
        let le = cat(&[&2u32.to_le_bytes(), &v4]);
        let be = cat(&[&2u32.to_be_bytes(), &v4]);
        assert_v4_flow(&dec(LinkType::NULL, &le).unwrap(), IP_A, IP_B, 6);
        assert_v4_flow(&dec(LinkType::NULL, &be).unwrap(), IP_A, IP_B, 6);
        for af in [10u32, 24, 28, 30] {
            for bytes in [af.to_le_bytes(), af.to_be_bytes()] {
                let f = cat(&[&bytes, &v6]);
                assert_v6_flow(&dec(LinkType::NULL, &f).unwrap(), IP6_A, IP6_B, 17);
            }
        }
        let other = cat(&[&7u32.to_le_bytes(), &v4]);
        assert_eq!(dec(LinkType::NULL, &other).unwrap_err(), DecodeError::NotIp);
        assert_eq!(
            dec(LinkType::NULL, &[2, 0]).unwrap_err(),
            DecodeError::TruncatedLink
        );
    }

    #[test]
    fn loop_link_reads_the_family_in_network_order() {
        let v4 = cat(&[&2u32.to_be_bytes(), &ipv4_tcp(IP_A, IP_B, b"")]);
        let v6 = cat(&[&24u32.to_be_bytes(), &ipv6_udp(IP6_A, IP6_B, b"")]);
        assert_v4_flow(&dec(LinkType::LOOP, &v4).unwrap(), IP_A, IP_B, 6);
        assert_v6_flow(&dec(LinkType::LOOP, &v6).unwrap(), IP6_A, IP6_B, 17);
        let swapped = cat(&[&2u32.to_le_bytes(), &ipv4_tcp(IP_A, IP_B, b"")]);
        assert_eq!(
            dec(LinkType::LOOP, &swapped).unwrap_err(),
            DecodeError::NotIp
        );
    }

    #[test]
    fn ppp_links_take_optional_address_control_and_short_protocols() {
        let v4 = ipv4_tcp(IP_A, IP_B, b"");
        let v6 = ipv6_udp(IP6_A, IP6_B, b"");
        for link in [LinkType::PPP, LinkType::PPP_HDLC] {
            for prefix in [&[0xff, 0x03, 0x00, 0x21][..], &[0x00, 0x21], &[0x21]] {
                let f = cat(&[prefix, &v4]);
                assert_v4_flow(&dec(link, &f).unwrap(), IP_A, IP_B, 6);
            }
            for prefix in [&[0xff, 0x03, 0x00, 0x57][..], &[0x00, 0x57], &[0x57]] {
                let f = cat(&[prefix, &v6]);
                assert_v6_flow(&dec(link, &f).unwrap(), IP6_A, IP6_B, 17);
            }
            let lcp = cat(&[&[0xff, 0x03, 0xc0, 0x21], &[1, 1, 0, 4]]);
            assert_eq!(dec(link, &lcp).unwrap_err(), DecodeError::NotIp);
            assert_eq!(
                dec(link, &[0xff, 0x03]).unwrap_err(),
                DecodeError::TruncatedLink
            );
        }
    }

    #[test]
    fn linux_sll_link_gives_the_sender_mac() {
        let mut h = vec![0x00, 0x00, 0x00, 0x01, 0x00, 0x06];
        h.extend_from_slice(&MAC_A);
        h.extend_from_slice(&[0, 0, 0x08, 0x00]);
        let f = cat(&[&h, &ipv4_tcp(IP_A, IP_B, b"x")]);
        let m = dec(LinkType::LINUX_SLL, &f).unwrap();
        assert_v4_flow(&m, IP_A, IP_B, 6);
        assert_eq!(m.src_mac, MAC_A);
        assert_eq!(m.dst_mac, [0; 6]);
        assert_eq!(m.payload, b"x");
        assert_eq!(
            dec(LinkType::LINUX_SLL, &h[..10]).unwrap_err(),
            DecodeError::TruncatedLink
        );
        let mut arp = h.clone();
        arp[15] = 0x06; // 0x0806
        assert_eq!(
            dec(LinkType::LINUX_SLL, &arp).unwrap_err(),
            DecodeError::NotIp
        );
    }

    #[test]
    fn linux_sll2_link_gives_the_sender_mac() {
        let mut h = vec![0x86, 0xdd, 0, 0, 0, 0, 0, 3, 0x00, 0x01, 4, 6];
        h.extend_from_slice(&MAC_A);
        h.extend_from_slice(&[0, 0]);
        assert_eq!(h.len(), 20);
        let f = cat(&[&h, &ipv6_udp(IP6_A, IP6_B, b"")]);
        let m = dec(LinkType::LINUX_SLL2, &f).unwrap();
        assert_v6_flow(&m, IP6_A, IP6_B, 17);
        assert_eq!(m.src_mac, MAC_A);
        assert_eq!(
            dec(LinkType::LINUX_SLL2, &h[..19]).unwrap_err(),
            DecodeError::TruncatedLink
        );
    }

    #[test]
    fn link_types_lists_what_decode_reads() {
        for link in (0..300).map(LinkType) {
            let frame = Frame {
                ts: Timestamp::ZERO,
                wire_len: 0,
                link,
                data: &[],
            };
            let mut m = PacketMeta::new(Timestamp::ZERO, 0);
            let unsupported = matches!(
                decode(&frame, &DecodeConfig::default(), &mut m),
                Err(DecodeError::UnsupportedLink(_))
            );
            assert_eq!(unsupported, !LINK_TYPES.contains(&link), "{link:?}");
        }
    }

    #[test]
    fn cisco_fabricpath_carries_the_hosts_ethernet_frame() {
        // ajp.pcap frame 3: switch addresses, 0x8903, FTag/TTL, then the
        // hosts' frame.
        let outer = [
            0x02, 0x0a, 0xbd, 0, 0, 0, 0x02, 0x0a, 0xbc, 0, 0, 0, 0x89, 0x03, 0x40, 0x20,
        ];
        let f = cat(&[&outer, &eth_ipv4_tcp(b"hello")]);
        let m = dec(LinkType::ETHERNET, &f).unwrap();
        assert_v4_flow(&m, IP_A, IP_B, 6);
        assert_eq!(
            (m.src_mac, m.dst_mac, m.payload),
            (MAC_A, MAC_B, &b"hello"[..])
        );
        assert_eq!(
            dec(LinkType::ETHERNET, &f[..16 + 10]).unwrap_err(),
            DecodeError::TruncatedEncap
        );
    }

    #[test]
    fn cisco_hdlc_carries_an_ethertype() {
        let f = cat(&[&[0x0f, 0x00, 0x08, 0x00], &ipv4_tcp(IP_A, IP_B, b"x")]);
        let m = dec(LinkType::C_HDLC, &f).unwrap();
        assert_v4_flow(&m, IP_A, IP_B, 6);
        assert_eq!(m.payload, b"x");
        // SLARP, Cisco's keepalive: not IP.
        let slarp = [0x8f, 0x00, 0x80, 0x35, 0, 0, 0, 2];
        assert_eq!(
            dec(LinkType::C_HDLC, &slarp).unwrap_err(),
            DecodeError::NotIp
        );
        assert_eq!(
            dec(LinkType::C_HDLC, &f[..3]).unwrap_err(),
            DecodeError::TruncatedLink
        );
        // In a PPP capture (BGP_Cisco_hdlc_slarp.pcap is one).
        assert_v4_flow(&dec(LinkType::PPP, &f).unwrap(), IP_A, IP_B, 6);
    }

    #[test]
    fn ppi_names_the_link_type_of_the_frame_after_its_header() {
        // Version 0, flags 0, a 12-byte header (one 4-byte field), Ethernet.
        let ppi = [0, 0, 12, 0, 1, 0, 0, 0, 2, 0, 0, 0];
        let f = cat(&[&ppi, &eth_ipv4_tcp(b"hello")]);
        let m = dec(LinkType::PPI, &f).unwrap();
        assert_v4_flow(&m, IP_A, IP_B, 6);
        assert_eq!((m.src_mac, m.payload), (MAC_A, &b"hello"[..]));
        assert_eq!(m.wire_len, f.len() as u32);
        let mut raw = cat(&[&ppi, &ipv4_tcp(IP_A, IP_B, b"x")]);
        raw[4] = 101; // raw IP
        assert_v4_flow(&dec(LinkType::PPI, &raw).unwrap(), IP_A, IP_B, 6);
        let mut nested = f.clone();
        nested[4] = 192;
        assert_eq!(
            dec(LinkType::PPI, &nested).unwrap_err(),
            DecodeError::UnsupportedLink(192)
        );
        assert_eq!(
            dec(LinkType::PPI, &f[..10]).unwrap_err(),
            DecodeError::TruncatedLink
        );
    }

    #[test]
    fn unknown_link_type_is_unsupported() {
        let v4 = ipv4_tcp(IP_A, IP_B, b"");
        assert_eq!(
            dec(LinkType(147), &v4).unwrap_err(),
            DecodeError::UnsupportedLink(147)
        );
    }

    // ---- VLAN, MPLS, PPPoE ----------------------------------------------

    #[test]
    fn qinq_vlan_id_is_the_outermost_tag() {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .double_vlan(VlanId::try_new(100).unwrap(), VlanId::try_new(200).unwrap())
            .ipv4(IP_A, IP_B, 64)
            .udp(1000, 53)
            .write(&mut v, b"q")
            .unwrap();
        let m = dec(LinkType::ETHERNET, &v).unwrap();
        assert_eq!(m.vlan_id, 100);
        assert_eq!(m.layers, layers(&[Layers::ETHERNET, Layers::VLAN]));
        assert_v4_flow(&m, IP_A, IP_B, 17);
        assert_eq!(m.payload, b"q");
    }

    #[test]
    fn vlan_id_drops_priority_and_dei_bits() {
        let f = cat(&[
            &eth(0x8100),
            &[0xf0, 0x64, 0x08, 0x00],
            &ipv4_tcp(IP_A, IP_B, b""),
        ]);
        assert_eq!(dec(LinkType::ETHERNET, &f).unwrap().vlan_id, 100);
        let short = cat(&[&eth(0x8100), &[0xf0, 0x64]]);
        assert_eq!(
            dec(LinkType::ETHERNET, &short).unwrap_err(),
            DecodeError::TruncatedEncap
        );
    }

    #[test]
    fn mpls_two_labels_then_ipv4() {
        let labels = [0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40];
        let f = cat(&[&eth(0x8847), &labels, &ipv4_tcp(IP_A, IP_B, b"ab")]);
        let m = dec(LinkType::ETHERNET, &f).unwrap();
        assert_eq!(m.layers, layers(&[Layers::ETHERNET, Layers::MPLS]));
        assert_v4_flow(&m, IP_A, IP_B, 6);
        assert_eq!(m.payload, b"ab");

        let f6 = cat(&[&eth(0x8848), &labels, &ipv6_udp(IP6_A, IP6_B, b"")]);
        assert_v6_flow(&dec(LinkType::ETHERNET, &f6).unwrap(), IP6_A, IP6_B, 17);

        let unknown = cat(&[&eth(0x8847), &labels, &[0x1f; 30]]);
        assert_eq!(
            dec(LinkType::ETHERNET, &unknown).unwrap_err(),
            DecodeError::NotIp
        );
        let cut = cat(&[&eth(0x8847), &labels[..6]]);
        assert_eq!(
            dec(LinkType::ETHERNET, &cut).unwrap_err(),
            DecodeError::TruncatedEncap
        );
    }

    #[test]
    fn mpls_pseudowire_control_word_then_ethernet() {
        let label = [0x00, 0x01, 0x01, 0x40];
        let control_word = [0, 0, 0, 0];
        let inner = cat(&[
            &MAC_D,
            &MAC_C,
            &[0x08, 0x00],
            &ipv4_tcp(INNER_A, INNER_B, b""),
        ]);
        let f = cat(&[&eth(0x8847), &label, &control_word, &inner]);
        let m = dec(LinkType::ETHERNET, &f).unwrap();
        assert_v4_flow(&m, INNER_A, INNER_B, 6);
        assert_eq!(m.src_mac, MAC_C);
        assert_eq!(m.dst_mac, MAC_D);
        assert!(m.layers.contains(Layers::MPLS));
    }

    #[test]
    fn pppoe_session_carries_ipv4_and_ipv6() {
        let session = [0x11, 0x00, 0x12, 0x34, 0x00, 0x00];
        let f = cat(&[
            &eth(0x8864),
            &session,
            &[0x00, 0x21],
            &ipv4_tcp(IP_A, IP_B, b""),
        ]);
        let m = dec(LinkType::ETHERNET, &f).unwrap();
        assert_eq!(m.layers, layers(&[Layers::ETHERNET, Layers::PPPOE]));
        assert_v4_flow(&m, IP_A, IP_B, 6);
        let f6 = cat(&[
            &eth(0x8864),
            &session,
            &[0x00, 0x57],
            &ipv6_udp(IP6_A, IP6_B, b""),
        ]);
        assert_v6_flow(&dec(LinkType::ETHERNET, &f6).unwrap(), IP6_A, IP6_B, 17);
        let lcp = cat(&[&eth(0x8864), &session, &[0xc0, 0x21, 1, 1, 0, 4]]);
        assert_eq!(
            dec(LinkType::ETHERNET, &lcp).unwrap_err(),
            DecodeError::NotIp
        );
        let cut = cat(&[&eth(0x8864), &session[..4]]);
        assert_eq!(
            dec(LinkType::ETHERNET, &cut).unwrap_err(),
            DecodeError::TruncatedEncap
        );
    }

    #[test]
    fn arp_lldp_pppoe_discovery_and_8023_frames_are_not_ip() {
        for ethertype in [0x0806, 0x88cc, 0x8863, 0x0026, 0x05dc] {
            let f = cat(&[&eth(ethertype), &[0u8; 46]]);
            assert_eq!(
                dec(LinkType::ETHERNET, &f).unwrap_err(),
                DecodeError::NotIp,
                "{ethertype:#06x}"
            );
        }
    }

    // ---- GTP-U ---------------------------------------------------------

    fn gtp_frame(gtp_header: &[u8], inner: &[u8], sport: u16, dport: u16) -> Vec<u8> {
        let mut gtp = gtp_header.to_vec();
        let len = (gtp.len() - 8 + inner.len()) as u16;
        gtp[2..4].copy_from_slice(&len.to_be_bytes());
        gtp.extend_from_slice(inner);
        cat(&[&eth(0x0800), &ipv4_udp(IP_A, IP_B, sport, dport, &gtp)])
    }

    #[test]
    fn gtp_u_with_extension_header_gives_the_inner_flow() {
        let header = [
            0x34, 0xff, 0, 0, 0, 0, 0, 1, // E flag, G-PDU, TEID 1
            0, 0, 0, 0x85, // sequence, N-PDU, next: PDU session container
            0x01, 0x00, 0x09, 0x00, // 4-byte extension, no next
        ];
        let inner = ipv6_tcp(INNER6_A, INNER6_B, b"in");
        let f = gtp_frame(&header, &inner, 2152, 2152);
        let m = dec(LinkType::ETHERNET, &f).unwrap();
        assert_eq!(m.layers, layers(&[Layers::ETHERNET, Layers::GTP]));
        assert_v6_flow(&m, INNER6_A, INNER6_B, 6);
        assert_eq!((m.src_port, m.dst_port), (40001, 80));
        assert_eq!(m.tcp.unwrap().flags, TcpInfo::SYN);
        assert_eq!(m.payload, b"in");

        // Matched on the source port too, plain header.
        let plain = [0x30, 0xff, 0, 0, 0, 0, 0, 1];
        let f = gtp_frame(&plain, &ipv4_tcp(INNER_A, INNER_B, b""), 2152, 40000);
        assert_v4_flow(&dec(LinkType::ETHERNET, &f).unwrap(), INNER_A, INNER_B, 6);
    }

    #[test]
    fn gtp_u_other_messages_and_cut_headers_stay_the_outer_udp_flow() {
        let echo = [0x32, 0x01, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0];
        let f = gtp_frame(&echo, &[], 2152, 2152);
        let m = dec(LinkType::ETHERNET, &f).unwrap();
        assert_v4_flow(&m, IP_A, IP_B, 17);
        assert_eq!((m.src_port, m.dst_port), (2152, 2152));
        assert!(!m.layers.contains(Layers::GTP));

        // The extension header claims 8 bytes; 4 are there.
        let cut = [
            0x34, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x85, 0x02, 0x00, 0x09, 0x00,
        ];
        let f = gtp_frame(&cut, &[], 2152, 2152);
        let m = dec(LinkType::ETHERNET, &f).unwrap();
        assert_v4_flow(&m, IP_A, IP_B, 17);
        assert_eq!(m.payload.len(), cut.len());
        assert!(!m.layers.contains(Layers::GTP));
    }

    // ---- optional tunnels -------------------------------------------------

    #[test]
    fn ip_in_ip_4in6_and_6in4_follow_the_switch() {
        let ip_in_ip = DecodeConfig {
            ip_in_ip: true,
            ..DecodeConfig::default()
        };
        let four_in_six = ipv6_raw(IP6_A, IP6_B, 4, &ipv4_tcp(INNER_A, INNER_B, b"x"));
        let m = dec(LinkType::RAW, &four_in_six).unwrap();
        assert_v6_flow(&m, IP6_A, IP6_B, 4);
        assert_eq!((m.src_port, m.dst_port, m.layers), (0, 0, Layers::empty()));
        let m = dec_with(LinkType::RAW, &four_in_six, ip_in_ip).unwrap();
        assert_v4_flow(&m, INNER_A, INNER_B, 6);
        assert_eq!(m.layers, Layers::IP_IN_IP);
        assert_eq!(m.payload, b"x");

        let six_in_four = ipv4_raw(IP_A, IP_B, 41, &ipv6_udp(INNER6_A, INNER6_B, b"y"));
        let m = dec(LinkType::RAW, &six_in_four).unwrap();
        assert_v4_flow(&m, IP_A, IP_B, 41);
        let m = dec_with(LinkType::RAW, &six_in_four, ip_in_ip).unwrap();
        assert_v6_flow(&m, INNER6_A, INNER6_B, 17);
        assert_eq!((m.src_port, m.dst_port), (5353, 53));

        let four_in_four = ipv4_raw(IP_A, IP_B, 4, &ipv4_udp(INNER_A, INNER_B, 1, 2, b""));
        assert_v4_flow(
            &dec_with(LinkType::RAW, &four_in_four, ip_in_ip).unwrap(),
            INNER_A,
            INNER_B,
            17,
        );
        let six_in_six = ipv6_raw(IP6_A, IP6_B, 41, &ipv6_udp(INNER6_A, INNER6_B, b""));
        assert_v6_flow(
            &dec_with(LinkType::RAW, &six_in_six, ip_in_ip).unwrap(),
            INNER6_A,
            INNER6_B,
            17,
        );

        // A cut inner header keeps the outer packet.
        let cut = ipv4_raw(IP_A, IP_B, 4, &[0x45, 0, 0]);
        let m = dec_with(LinkType::RAW, &cut, ip_in_ip).unwrap();
        assert_v4_flow(&m, IP_A, IP_B, 4);
        assert_eq!(m.layers, Layers::empty());
    }

    #[test]
    fn gre_with_key_gives_the_inner_packet_when_on() {
        let gre = [0x20, 0x00, 0x08, 0x00, 0, 0, 0x30, 0x39];
        let inner = ipv4_udp(INNER_A, INNER_B, 1111, 2222, b"g");
        let f = cat(&[
            &eth(0x0800),
            &ipv4_raw(IP_A, IP_B, 47, &cat(&[&gre, &inner])),
        ]);
        let m = dec(LinkType::ETHERNET, &f).unwrap();
        assert_v4_flow(&m, IP_A, IP_B, 47);
        assert_eq!((m.src_port, m.dst_port), (0, 0));
        let m = dec_with(LinkType::ETHERNET, &f, tunnels_on()).unwrap();
        assert_v4_flow(&m, INNER_A, INNER_B, 17);
        assert_eq!((m.src_port, m.dst_port), (1111, 2222));
        assert_eq!(m.layers, layers(&[Layers::ETHERNET, Layers::GRE]));
        assert_eq!(m.src_mac, MAC_A);

        // Checksum + key + sequence, IPv6 inside.
        let gre6 = [0xb0, 0x00, 0x86, 0xdd, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2];
        let inner6 = ipv6_udp(INNER6_A, INNER6_B, b"");
        let f = ipv4_raw(IP_A, IP_B, 47, &cat(&[&gre6, &inner6]));
        let m = dec_with(LinkType::RAW, &f, tunnels_on()).unwrap();
        assert_v6_flow(&m, INNER6_A, INNER6_B, 17);
    }

    #[test]
    fn gre_transparent_ethernet_replaces_the_macs() {
        let gre = [0x00, 0x00, 0x65, 0x58];
        let inner = cat(&[
            &MAC_D,
            &MAC_C,
            &[0x08, 0x00],
            &ipv4_tcp(INNER_A, INNER_B, b""),
        ]);
        let f = cat(&[
            &eth(0x0800),
            &ipv4_raw(IP_A, IP_B, 47, &cat(&[&gre, &inner])),
        ]);
        let m = dec_with(LinkType::ETHERNET, &f, tunnels_on()).unwrap();
        assert_v4_flow(&m, INNER_A, INNER_B, 6);
        assert_eq!(m.src_mac, MAC_C);
        assert_eq!(m.dst_mac, MAC_D);
        assert_eq!(m.layers, layers(&[Layers::ETHERNET, Layers::GRE]));
    }

    #[test]
    fn gre_v1_pptp_carries_ppp() {
        // K, S; A, version 1; PPP; payload length, call id, seq, ack.
        let gre = [0x30, 0x81, 0x88, 0x0b, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 1];
        let ppp = [0xff, 0x03, 0x00, 0x21];
        let inner = ipv4_tcp(INNER_A, INNER_B, b"");
        let f = ipv4_raw(IP_A, IP_B, 47, &cat(&[&gre, &ppp, &inner]));
        let m = dec_with(LinkType::RAW, &f, tunnels_on()).unwrap();
        assert_v4_flow(&m, INNER_A, INNER_B, 6);
        assert_eq!(m.layers, Layers::GRE);
        // An acknowledgement-only packet has no PPP: the outer flow.
        let ack_only = ipv4_raw(
            IP_A,
            IP_B,
            47,
            &[0x20, 0x81, 0x88, 0x0b, 0, 0, 0, 7, 0, 0, 0, 1],
        );
        assert_v4_flow(
            &dec_with(LinkType::RAW, &ack_only, tunnels_on()).unwrap(),
            IP_A,
            IP_B,
            47,
        );
    }

    #[test]
    fn cut_tunnel_header_keeps_the_outer_packet() {
        // GRE announcing checksum, key and sequence, cut after 6 bytes.
        let f = ipv4_raw(IP_A, IP_B, 47, &[0xb0, 0x00, 0x08, 0x00, 0, 0]);
        let m = dec_with(LinkType::RAW, &f, tunnels_on()).unwrap();
        assert_v4_flow(&m, IP_A, IP_B, 47);
        assert_eq!(m.layers, Layers::empty());
        assert_eq!(m.payload.len(), 6);
        assert_eq!(m.issue, None);
        // VXLAN cut inside its header.
        let f = ipv4_udp(IP_A, IP_B, 50000, 4789, &[0x08, 0, 0]);
        let m = dec_with(LinkType::RAW, &f, tunnels_on()).unwrap();
        assert_v4_flow(&m, IP_A, IP_B, 17);
        assert_eq!((m.src_port, m.dst_port), (50000, 4789));
        assert_eq!(m.payload, &[0x08, 0, 0]);
    }

    fn vxlan_frame(dport: u16) -> Vec<u8> {
        let mut inner = Vec::new();
        PacketBuilder::ethernet2(MAC_C, MAC_D)
            .single_vlan(VlanId::try_new(20).unwrap())
            .ipv4(INNER_A, INNER_B, 64)
            .tcp(40000, 443, 1, 2)
            .write(&mut inner, b"v")
            .unwrap();
        let vxlan = cat(&[&[0x08, 0, 0, 0, 0, 0x12, 0x34, 0], &inner]);
        let mut v = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .single_vlan(VlanId::try_new(10).unwrap())
            .ipv4(IP_A, IP_B, 64)
            .udp(50000, dport)
            .write(&mut v, &vxlan)
            .unwrap();
        v
    }

    #[test]
    fn vxlan_follows_the_switch_and_keeps_the_outer_vlan() {
        let f = vxlan_frame(4789);
        let m = dec(LinkType::ETHERNET, &f).unwrap();
        assert_v4_flow(&m, IP_A, IP_B, 17);
        assert_eq!((m.src_port, m.dst_port, m.vlan_id), (50000, 4789, 10));

        let m = dec_with(LinkType::ETHERNET, &f, tunnels_on()).unwrap();
        assert_v4_flow(&m, INNER_A, INNER_B, 6);
        assert_eq!((m.src_port, m.dst_port), (40000, 443));
        assert_eq!(m.vlan_id, 10);
        assert_eq!(m.src_mac, MAC_C);
        assert_eq!(
            m.layers,
            layers(&[Layers::ETHERNET, Layers::VLAN, Layers::VXLAN])
        );
        assert_eq!(m.payload, b"v");

        // Another port only when configured.
        let f = vxlan_frame(8472);
        assert_v4_flow(
            &dec_with(LinkType::ETHERNET, &f, tunnels_on()).unwrap(),
            IP_A,
            IP_B,
            17,
        );
        let linux = DecodeConfig {
            vxlan_port: 8472,
            ..tunnels_on()
        };
        assert_v4_flow(
            &dec_with(LinkType::ETHERNET, &f, linux).unwrap(),
            INNER_A,
            INNER_B,
            6,
        );
    }

    #[test]
    fn nesting_deeper_than_max_depth_is_too_deep() {
        let tags = |n: usize| {
            let mut f = eth(0x8100);
            for i in 0..n {
                let next: u16 = if i + 1 == n { 0x0800 } else { 0x8100 };
                f.extend_from_slice(&[0, 5]);
                f.extend_from_slice(&next.to_be_bytes());
            }
            f.extend_from_slice(&ipv4_tcp(IP_A, IP_B, b""));
            f
        };
        assert_eq!(dec(LinkType::ETHERNET, &tags(8)).unwrap().vlan_id, 5);
        assert_eq!(
            dec(LinkType::ETHERNET, &tags(9)).unwrap_err(),
            DecodeError::TooDeep
        );

        let nest = |n: usize| {
            let mut p = ipv4_udp(INNER_A, INNER_B, 1, 2, b"");
            for _ in 0..n {
                p = ipv4_raw(IP_A, IP_B, 4, &p);
            }
            p
        };
        let eight = nest(8);
        let m = dec_with(LinkType::RAW, &eight, tunnels_on()).unwrap();
        assert_v4_flow(&m, INNER_A, INNER_B, 17);
        assert_eq!(
            dec_with(LinkType::RAW, &nest(9), tunnels_on()).unwrap_err(),
            DecodeError::TooDeep
        );
    }

    // ---- fragments -------------------------------------------------------

    #[test]
    fn ipv4_first_fragment_has_ports_later_fragment_does_not() {
        let udp = UdpHeader {
            source_port: 5000,
            destination_port: 53,
            length: 8 + 32,
            checksum: 0,
        }
        .to_bytes();
        let mut first = Ipv4Header::new(8 + 16, 64, IpNumber::UDP, IP_A, IP_B).unwrap();
        first.identification = 0x1234;
        first.more_fragments = true;
        let f = cat(&[&first.to_bytes(), &udp, &[1; 16]]);
        let m = dec(LinkType::RAW, &f).unwrap();
        assert_eq!(
            m.fragment,
            Some(Fragment {
                id: 0x1234,
                offset: 0,
                more: true
            })
        );
        assert_eq!((m.src_port, m.dst_port), (5000, 53));
        assert_eq!(m.payload_len, 16);

        let mut later = Ipv4Header::new(16, 64, IpNumber::UDP, IP_A, IP_B).unwrap();
        later.identification = 0x1234;
        later.fragment_offset = IpFragOffset::try_new(3).unwrap();
        let f = cat(&[&later.to_bytes(), &[2; 16]]);
        let m = dec(LinkType::RAW, &f).unwrap();
        assert_v4_flow(&m, IP_A, IP_B, 17);
        assert_eq!(
            m.fragment,
            Some(Fragment {
                id: 0x1234,
                offset: 3,
                more: false
            })
        );
        assert_eq!((m.src_port, m.dst_port, m.tcp), (0, 0, None));
        assert!(m.payload.is_empty());
        assert_eq!(m.payload_len, 16);
        assert_eq!(m.issue, None);
    }

    #[test]
    fn fragments_are_not_decapsulated() {
        let mut first = Ipv4Header::new(0, 64, IpNumber(47), IP_A, IP_B).unwrap();
        let gre = [0x00, 0x00, 0x08, 0x00];
        let inner = ipv4_udp(INNER_A, INNER_B, 1, 2, b"");
        first.more_fragments = true;
        first.set_payload_len(gre.len() + inner.len()).unwrap();
        let f = cat(&[&first.to_bytes(), &gre, &inner]);
        let m = dec_with(LinkType::RAW, &f, tunnels_on()).unwrap();
        assert_v4_flow(&m, IP_A, IP_B, 47);
        assert!(m.fragment.is_some());
    }

    #[test]
    fn ipv6_fragment_header_gives_the_fragment() {
        let udp = UdpHeader {
            source_port: 5000,
            destination_port: 53,
            length: 8 + 24,
            checksum: 0,
        }
        .to_bytes();
        let v6 = |frag: [u8; 8], body: &[u8]| {
            let ip = Ipv6Header {
                payload_length: (8 + body.len()) as u16,
                next_header: IpNumber(44),
                hop_limit: 64,
                source: IP6_A,
                destination: IP6_B,
                ..Default::default()
            };
            cat(&[&ip.to_bytes(), &frag, body])
        };
        // First: next header UDP, offset 0, M set, id 0xdeadbeef.
        let first = v6(
            [17, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef],
            &cat(&[&udp, &[0; 8]]),
        );
        let m = dec(LinkType::RAW, &first).unwrap();
        assert_v6_flow(&m, IP6_A, IP6_B, 17);
        assert_eq!(
            m.fragment,
            Some(Fragment {
                id: 0xdead_beef,
                offset: 0,
                more: true
            })
        );
        assert_eq!((m.src_port, m.dst_port), (5000, 53));
        assert_eq!(m.payload_len, 8);

        // Later: offset 2 (16 bytes); the data must not be read as headers.
        let later = v6([17, 0, 0x00, 0x10, 0xde, 0xad, 0xbe, 0xef], &[60; 16]);
        let m = dec(LinkType::RAW, &later).unwrap();
        assert_v6_flow(&m, IP6_A, IP6_B, 17);
        assert_eq!(
            m.fragment,
            Some(Fragment {
                id: 0xdead_beef,
                offset: 2,
                more: false
            })
        );
        assert_eq!((m.src_port, m.dst_port, m.tcp), (0, 0, None));
        assert!(m.payload.is_empty());
        assert_eq!(m.payload_len, 16);
    }

    // ---- truncation and lengths ---------------------------------------

    #[test]
    fn cut_tcp_header_keeps_the_ports_and_sets_the_issue() {
        let full = eth_ipv4_tcp(&[9; 100]);
        let mut f = frame(LinkType::ETHERNET, &full[..14 + 20 + 13]);
        f.wire_len = full.len() as u32;
        let m = decoded(&f, &DecodeConfig::default()).unwrap();
        assert_v4_flow(&m, IP_A, IP_B, 6);
        assert_eq!((m.src_port, m.dst_port), (40000, 443));
        assert_eq!(m.tcp, None);
        assert_eq!(m.issue, Some(DecodeError::TruncatedTransport));
        assert!(m.payload.is_empty());
        assert_eq!(m.payload_len, 100);

        let mut f = frame(LinkType::ETHERNET, &full[..14 + 20 + 3]);
        f.wire_len = full.len() as u32;
        let m = decoded(&f, &DecodeConfig::default()).unwrap();
        assert_eq!((m.src_port, m.dst_port), (0, 0));
        assert_eq!(m.issue, Some(DecodeError::TruncatedTransport));

        let udp = ipv4_udp(IP_A, IP_B, 7, 8, b"abc");
        let m = dec(LinkType::RAW, &udp[..20 + 6]).unwrap();
        assert_eq!((m.src_port, m.dst_port), (7, 8));
        assert_eq!(m.issue, Some(DecodeError::TruncatedTransport));
    }

    #[test]
    fn tcp_cut_inside_its_options_keeps_the_sequence_fields() {
        // A 32-byte header (data offset 8) cut 24 bytes in.
        let mut full = eth_ipv4_tcp(&[9; 100]);
        full[14 + 20 + 12] = 0x80;
        let mut f = frame(LinkType::ETHERNET, &full[..14 + 20 + 24]);
        f.wire_len = full.len() as u32;
        let m = decoded(&f, &DecodeConfig::default()).unwrap();
        assert_eq!((m.src_port, m.dst_port), (40000, 443));
        let tcp = m.tcp.expect("the fixed header is whole");
        assert_eq!(
            tcp.seq,
            u32::from_be_bytes(full[38..42].try_into().unwrap())
        );
        assert_eq!(tcp.flags, full[14 + 20 + 13]);
        assert_eq!(m.issue, Some(DecodeError::TruncatedTransport));
        assert_eq!(
            m.payload_len,
            100 - 12,
            "stated length minus the 32-byte header"
        );
    }

    #[test]
    fn tcp_data_offset_below_five_is_a_transport_issue() {
        let mut f = eth_ipv4_tcp(b"abcd");
        f[14 + 20 + 12] = 0x40;
        let m = dec(LinkType::ETHERNET, &f).unwrap();
        assert_eq!((m.src_port, m.dst_port), (40000, 443));
        assert_eq!(m.tcp, None);
        assert_eq!(m.issue, Some(DecodeError::TruncatedTransport));
    }

    #[test]
    fn snaplen_cut_payload_len_comes_from_the_ip_header() {
        let full = eth_ipv4_tcp(&[7; 1000]);
        let mut f = frame(LinkType::ETHERNET, &full[..100]);
        f.wire_len = full.len() as u32;
        let m = decoded(&f, &DecodeConfig::default()).unwrap();
        assert!(m.tcp.is_some());
        assert_eq!(m.payload_len, 1000);
        assert_eq!(m.payload.len(), 100 - 54);
        assert_eq!(m.issue, None);

        let full6 = cat(&[&eth(0x86dd), &ipv6_tcp(IP6_A, IP6_B, &[7; 500])]);
        let mut f = frame(LinkType::ETHERNET, &full6[..120]);
        f.wire_len = full6.len() as u32;
        let m = decoded(&f, &DecodeConfig::default()).unwrap();
        assert_eq!(m.payload_len, 500);
        assert_eq!(m.payload.len(), 120 - 14 - 40 - 20);
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let mut f = cat(&[&eth(0x0800), &ipv4_udp(IP_A, IP_B, 1, 2, b"hi")]);
        assert_eq!(f.len(), 44);
        f.resize(60, 0);
        let m = dec(LinkType::ETHERNET, &f).unwrap();
        assert_eq!(m.payload, b"hi");
        assert_eq!(m.payload_len, 2);
    }

    #[test]
    fn zero_total_length_tso_segment_uses_the_captured_length() {
        let mut f = eth_ipv4_tcp(&[1; 3000]);
        f[14 + 2] = 0;
        f[14 + 3] = 0;
        let m = dec(LinkType::ETHERNET, &f).unwrap();
        assert_eq!(m.payload_len, 3000);
        assert_eq!(m.payload.len(), 3000);

        let mut f6 = ipv6_tcp(IP6_A, IP6_B, &[1; 2000]);
        f6[4] = 0;
        f6[5] = 0;
        let m = dec(LinkType::IPV6, &f6).unwrap();
        assert_eq!(m.payload_len, 2000);
    }

    #[test]
    fn a_length_beyond_a_wholly_captured_frame_uses_the_captured_length() {
        let mut f = eth_ipv4_tcp(&[1; 10]);
        f[14 + 2..14 + 4].copy_from_slice(&1500u16.to_be_bytes());
        let m = dec(LinkType::ETHERNET, &f).unwrap();
        assert_eq!(m.payload_len, 10);
    }

    #[test]
    fn cut_or_nonsense_headers_are_errors() {
        let e = |link, data: &[u8]| dec(link, data).unwrap_err();
        let good = eth_ipv4_tcp(b"");
        assert_eq!(
            e(LinkType::ETHERNET, &good[..10]),
            DecodeError::TruncatedLink
        );
        assert_eq!(
            e(LinkType::ETHERNET, &good[..14 + 10]),
            DecodeError::TruncatedIp
        );
        let mut ihl = good.clone();
        ihl[14] = 0x43;
        assert_eq!(e(LinkType::ETHERNET, &ihl), DecodeError::MalformedIp);
        let mut long_ihl = good.clone();
        long_ihl[14] = 0x4f; // 60-byte header, 40 bytes left in the frame
        assert_eq!(e(LinkType::ETHERNET, &long_ihl), DecodeError::TruncatedIp);
        let v6 = ipv6_udp(IP6_A, IP6_B, b"");
        assert_eq!(e(LinkType::IPV6, &v6[..30]), DecodeError::TruncatedIp);
    }

    // ---- robustness --------------------------------------------------------

    const ALL_LINKS: [LinkType; 11] = [
        LinkType::NULL,
        LinkType::ETHERNET,
        LinkType::PPP,
        LinkType::PPP_HDLC,
        LinkType::RAW,
        LinkType::LOOP,
        LinkType::LINUX_SLL,
        LinkType::IPV4,
        LinkType::IPV6,
        LinkType::LINUX_SLL2,
        LinkType(147),
    ];

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
    }

    #[test]
    fn random_bytes_never_panic_on_any_link_type() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut buf = [0u8; 200];
        for _ in 0..10_000 {
            let len = (rng.next() % 200) as usize;
            for b in buf.iter_mut().take(len) {
                *b = rng.next() as u8;
            }
            for link in ALL_LINKS {
                for cfg in [DecodeConfig::default(), tunnels_on()] {
                    let _ = decoded(&frame(link, &buf[..len]), &cfg);
                }
            }
        }
    }

    #[test]
    fn mutated_real_frames_never_panic() {
        let mut seeds: Vec<(LinkType, Vec<u8>)> = vec![
            (LinkType::ETHERNET, eth_ipv4_tcp(b"seed")),
            (LinkType::ETHERNET, vxlan_frame(4789)),
            (
                LinkType::ETHERNET,
                gtp_frame(
                    &[0x34, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x85, 0x01, 0, 9, 0],
                    &ipv6_tcp(INNER6_A, INNER6_B, b""),
                    2152,
                    2152,
                ),
            ),
            (
                LinkType::RAW,
                ipv4_raw(
                    IP_A,
                    IP_B,
                    47,
                    &cat(&[
                        &[
                            0x30, 0x81, 0x88, 0x0b, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 1, 0xff, 3, 0,
                            0x21,
                        ],
                        &ipv4_tcp(INNER_A, INNER_B, b""),
                    ]),
                ),
            ),
            (
                LinkType::ETHERNET,
                cat(&[
                    &eth(0x8847),
                    &[0, 1, 1, 0x40, 0, 0, 0, 0],
                    &eth(0x86dd),
                    &ipv6_tcp(IP6_A, IP6_B, b""),
                ]),
            ),
            (
                LinkType::ETHERNET,
                cat(&[
                    &eth(0x8864),
                    &[0x11, 0, 0, 1, 0, 0, 0, 0x57],
                    &Ipv6Header {
                        payload_length: 36,
                        next_header: IpNumber(0),
                        ..Default::default()
                    }
                    .to_bytes(),
                    &[44, 0, 1, 4, 0, 0, 0, 0, 6, 0, 0, 1, 0, 0, 0, 1],
                    &TcpHeader::new(1, 2, 3, 4).to_bytes(),
                ]),
            ),
            (
                LinkType::RAW,
                ipv6_raw(
                    IP6_A,
                    IP6_B,
                    41,
                    &ipv4_raw(IP_A, IP_B, 4, &ipv4_tcp(INNER_A, INNER_B, b"")),
                ),
            ),
        ];
        seeds.push((
            LinkType::NULL,
            cat(&[&[2, 0, 0, 0], &ipv4_tcp(IP_A, IP_B, b"")]),
        ));
        let mut rng = XorShift(0x0123_4567_89ab_cdef);
        for _ in 0..10_000 {
            let (link, seed) = &seeds[(rng.next() % seeds.len() as u64) as usize];
            let mut f = seed.clone();
            for _ in 0..1 + rng.next() % 4 {
                let i = (rng.next() % f.len() as u64) as usize;
                f[i] = rng.next() as u8;
            }
            f.truncate((rng.next() % (f.len() as u64 + 1)) as usize);
            for cfg in [DecodeConfig::default(), tunnels_on()] {
                let _ = decoded(&frame(*link, &f), &cfg);
            }
        }
    }

    // ---- the capture corpus ------------------------------------------------

    /// The project's real captures, `tests/fixtures`.
    fn corpus_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
    }

    fn capture_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                capture_files(&path, out);
            } else if path
                .extension()
                .is_some_and(|e| e == "pcap" || e == "pcapng")
            {
                out.push(path);
            }
        }
    }

    struct Captured {
        link: LinkType,
        wire_len: u32,
        data: Vec<u8>,
    }

    /// Every frame of a pcap or pcapng file (format sniffed, not guessed
    /// from the extension), with its interface's link type.
    fn read_capture(path: &Path) -> Vec<Captured> {
        use pcap_parser::traits::PcapNGPacketBlock;
        use pcap_parser::{Block, PcapBlockOwned, PcapError, create_reader};

        let file = std::fs::File::open(path).unwrap();
        let mut reader = create_reader(1 << 20, file).unwrap();
        let mut legacy_link = LinkType(u32::MAX);
        let mut interfaces: Vec<LinkType> = Vec::new();
        let mut out = Vec::new();
        loop {
            let step = match reader.next() {
                Ok((offset, block)) => {
                    match block {
                        PcapBlockOwned::LegacyHeader(h) => {
                            legacy_link = LinkType(h.network.0 as u32)
                        }
                        PcapBlockOwned::Legacy(b) => out.push(Captured {
                            link: legacy_link,
                            wire_len: b.origlen,
                            data: b.data.to_vec(),
                        }),
                        PcapBlockOwned::NG(Block::SectionHeader(_)) => interfaces.clear(),
                        PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                            interfaces.push(LinkType(idb.linktype.0 as u32))
                        }
                        PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => out.push(Captured {
                            link: interfaces[epb.if_id as usize],
                            wire_len: epb.origlen,
                            data: epb.packet_data().to_vec(),
                        }),
                        PcapBlockOwned::NG(Block::SimplePacket(spb)) => out.push(Captured {
                            link: interfaces[0],
                            wire_len: spb.origlen,
                            data: spb.packet_data().to_vec(),
                        }),
                        PcapBlockOwned::NG(_) => {}
                    }
                    Some(offset)
                }
                Err(PcapError::Eof) => break,
                Err(PcapError::Incomplete(_)) => None,
                Err(e) => panic!("{}: {e:?}", path.display()),
            };
            match step {
                Some(offset) => reader.consume(offset),
                None if reader.reader_exhausted() => break,
                None => reader.refill().unwrap(),
            }
        }
        out
    }

    fn decode_file(name: &str, cfg: DecodeConfig) -> Vec<Result<PacketMeta<'static>, DecodeError>> {
        let frames = read_capture(&corpus_dir().join(name));
        assert!(!frames.is_empty(), "{name}: no frames");
        frames
            .into_iter()
            .map(|c| {
                let data: &'static [u8] = Box::leak(c.data.into_boxed_slice());
                let f = Frame {
                    ts: Timestamp::ZERO,
                    wire_len: c.wire_len,
                    link: c.link,
                    data,
                };
                decoded(&f, &cfg)
            })
            .collect()
    }

    #[test]
    fn every_corpus_frame_decodes_without_panic() {
        let mut files = Vec::new();
        capture_files(&corpus_dir(), &mut files);
        files.sort();
        assert!(files.len() >= 60, "corpus at {}", corpus_dir().display());
        let (mut ok, mut err) = (0usize, 0usize);
        for path in &files {
            let mut kinds = [0usize; DecodeError::ALL.len()];
            let mut issues = 0usize;
            for c in read_capture(path) {
                for cfg in [DecodeConfig::default(), tunnels_on()] {
                    let f = Frame {
                        ts: Timestamp::ZERO,
                        wire_len: c.wire_len,
                        link: c.link,
                        data: &c.data,
                    };
                    match decoded(&f, &cfg) {
                        Ok(m) => {
                            ok += 1;
                            issues += usize::from(m.issue.is_some());
                        }
                        Err(e) => {
                            err += 1;
                            kinds[e.index()] += 1;
                        }
                    }
                }
            }
            if issues > 0 || kinds.iter().any(|&n| n > 0) {
                let errors: Vec<String> = DecodeError::ALL
                    .iter()
                    .zip(kinds)
                    .filter(|(_, n)| *n > 0)
                    .map(|(e, n)| format!("{}={n}", e.name()))
                    .collect();
                println!("{}: issues={issues} {}", path.display(), errors.join(" "));
            }
        }
        println!("{} files, {ok} decoded, {err} not IP flows", files.len());
        assert!(ok > 10 * err);
    }

    #[test]
    fn corpus_443_curl_is_one_tcp_conversation() {
        let a = v4_addr([192, 168, 1, 13]);
        let b = v4_addr([178, 62, 197, 130]);
        for (i, r) in decode_file("ndpi/443-curl.pcap", DecodeConfig::default())
            .into_iter()
            .enumerate()
        {
            let m = r.unwrap_or_else(|e| panic!("frame {i}: {e}"));
            assert_eq!(m.protocol, 6, "frame {i}");
            assert!(m.tcp.is_some(), "frame {i}");
            let ends = [(m.src_ip, m.src_port), (m.dst_ip, m.dst_port)];
            assert!(
                ends == [(a, 55523), (b, 443)] || ends == [(b, 443), (a, 55523)],
                "frame {i}: {ends:?}"
            );
        }
    }

    #[test]
    fn corpus_link_types_decode() {
        for (name, version) in [
            ("ndpi/dlt_ppp.pcap", 4),
            ("ndpi/rdp.pcap", 4),
            ("ndpi/iqiyi.pcap", 4),
            ("ndpi/http2.pcapng", 4),
            ("ndpi/quic-v2.pcapng", 6),
            ("zeek/tcp/payload-synack.pcap", 4),
        ] {
            for (i, r) in decode_file(name, DecodeConfig::default())
                .into_iter()
                .enumerate()
            {
                let m = r.unwrap_or_else(|e| panic!("{name} frame {i}: {e}"));
                assert_eq!(m.ip_version, version, "{name} frame {i}");
            }
        }
    }

    #[test]
    fn corpus_encapsulations_are_followed() {
        let off = DecodeConfig::default();
        let on = tunnels_on();
        for (name, cfg, layer) in [
            ("ndpi/ipv6_in_gtp.pcap", off, Layers::GTP),
            ("zeek/http-qinq-0.pcap", off, Layers::VLAN),
            ("zeek/mpls-in-vlan.pcap", off, Layers::MPLS),
            ("zeek/pppoe.pcap", off, Layers::PPPOE),
            ("zeek/tunnels/4in4.pcap", on, Layers::IP_IN_IP),
            ("zeek/tunnels/6in4.pcap", on, Layers::IP_IN_IP),
            ("ndpi/4in6tunnel.pcap", on, Layers::IP_IN_IP),
            ("ndpi/6in4tunnel.pcap", on, Layers::IP_IN_IP),
            ("zeek/tunnels/gre-sample.pcap", on, Layers::GRE),
            ("ndpi/vxlan.pcap", on, Layers::VXLAN),
        ] {
            let decoded = decode_file(name, cfg);
            let with_layer = decoded
                .iter()
                .filter(|r| r.as_ref().is_ok_and(|m| m.layers.contains(layer)))
                .count();
            println!(
                "{name}: {with_layer}/{} frames through {layer:?}",
                decoded.len()
            );
            assert!(with_layer > 0, "{name}: no frame through {layer:?}");
        }
        // The GTP capture's inner packets are IPv6.
        for r in decode_file("ndpi/ipv6_in_gtp.pcap", off) {
            let m = r.unwrap();
            assert!(m.layers.contains(Layers::GTP));
            assert_eq!(m.ip_version, 6);
        }
    }
}
