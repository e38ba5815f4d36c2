use crate::Timestamp;

/// A link-layer header type, numbered as in the tcpdump.org LINKTYPE_ registry
/// (the numbers pcap and pcapng files carry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback: a 4-byte address family in host byte order.
    pub const NULL: LinkType = LinkType(0);
    /// Ethernet II / 802.3.
    pub const ETHERNET: LinkType = LinkType(1);
    /// PPP (RFC 1661), 2-byte protocol field, optionally preceded by HDLC
    /// address/control bytes 0xff 0x03.
    pub const PPP: LinkType = LinkType(9);
    /// PPP in HDLC-like framing (RFC 1662).
    pub const PPP_HDLC: LinkType = LinkType(50);
    /// Raw IP; the version nibble tells IPv4 from IPv6.
    pub const RAW: LinkType = LinkType(101);
    /// Cisco HDLC: address, control, then a 2-byte EtherType.
    pub const C_HDLC: LinkType = LinkType(104);
    /// OpenBSD loopback: a 4-byte address family in network byte order.
    pub const LOOP: LinkType = LinkType(108);
    /// Per-Packet Information: a header naming the link type of the frame
    /// after it.
    pub const PPI: LinkType = LinkType(192);
    /// Linux cooked capture v1 (SLL).
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// Raw IPv4.
    pub const IPV4: LinkType = LinkType(228);
    /// Raw IPv6.
    pub const IPV6: LinkType = LinkType(229);
    /// Linux cooked capture v2 (SLL2).
    pub const LINUX_SLL2: LinkType = LinkType(276);
}

/// One captured frame, lent by a [`CaptureSource`](crate::CaptureSource).
///
/// `data` is valid only for the duration of the callback it is lent to (for
/// AF_XDP it points into the UMEM ring); copy what you need to keep.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Capture time.
    pub ts: Timestamp,
    /// Length of the frame on the wire (the pcap record's `len`), which is
    /// what every byte counter counts, even when `data` was cut short by the
    /// snap length.
    pub wire_len: u32,
    /// Link-layer header type of `data`.
    pub link: LinkType,
    /// The captured bytes (`caplen` of them), starting at the link header.
    pub data: &'a [u8],
}
