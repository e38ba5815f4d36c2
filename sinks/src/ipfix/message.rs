//! IPFIX (RFC 7011) and NetFlow v9 (RFC 3954) messages: the templates,
//! and data records packed into messages no larger than a datagram.
//!
//! Two templates, one per IP version (ids 256 and 257), with the same
//! fields in this order:
//!
//! | field | IPFIX element | NetFlow v9 field | bytes |
//! | --- | --- | --- | --- |
//! | client address | sourceIPv4Address (8) / sourceIPv6Address (27) | same | 4 / 16 |
//! | server address | destinationIPv4Address (12) / destinationIPv6Address (28) | same | 4 / 16 |
//! | client port | sourceTransportPort (7) | same | 2 |
//! | server port | destinationTransportPort (11) | same | 2 |
//! | IP protocol | protocolIdentifier (4) | same | 1 |
//! | TOS (DSCP << 2) | ipClassOfService (5) | same | 1 |
//! | server's TCP flags | reverse tcpControlBits (6, PEN 29305) | none | 1 |
//! | client's TCP flags | tcpControlBits (6) | TCP_FLAGS (6), both sides' | 1 |
//! | VLAN | vlanId (58) | same | 2 |
//! | first packet, ms | flowStartMilliseconds (152) | same | 8 |
//! | last packet, ms | flowEndMilliseconds (153) | same | 8 |
//! | client to server bytes | octetDeltaCount (1) | IN_BYTES (1) | 8 |
//! | client to server packets | packetDeltaCount (2) | IN_PKTS (2) | 8 |
//! | server to client bytes | reverse octetDeltaCount (1, PEN 29305, RFC 5103) | OUT_BYTES (23) | 8 |
//! | server to client packets | reverse packetDeltaCount (2, PEN 29305) | OUT_PKTS (24) | 8 |
//! | why exported | flowEndReason (136) | same | 1 |
//! | source is the initiator | biflowDirection (239), always 1 | same | 1 |
//! | `PROTOCOL.Application` | ntop's L7_PROTO_NAME (119, PEN 35632) | nProbe's 57591 | variable / 32 |
//! | host name | ntop's FLOW_SERVER_NAME (122, PEN 35632) | nProbe's 57594 | variable / 64 |
//!
//! TCP flags are those sent over the record's span, OR-ed (0 for other
//! protocols), in one byte (RFC 7011's reduced-size encoding of the
//! 16-bit element, as nProbe and softflowd send it). The reverse element
//! comes first: nfdump reads both into its one flags field, the later
//! one winning, and so shows the client's.
//!
//! NetFlow v9 has neither enterprise numbers nor variable-length fields:
//! one TCP_FLAGS holds both directions' flags, and its names are nProbe's v9 fields, NUL-padded or cut (at a character
//! boundary) to their fixed length. IPFIX names are cut at 255 bytes.
//!
//! Sequence numbers: IPFIX counts the data records sent before the
//! message, v9 the messages; both per observation domain (v9's source
//! id), modulo 2^32.

use std::net::IpAddr;

use super::IpfixVersion;
use super::flows::Export;

/// RFC 5103's enterprise number for reverse-direction elements.
const REVERSE_PEN: u32 = 29305;
/// ntop's enterprise number (nProbe's elements).
const NTOP_PEN: u32 = 35632;
/// The length of a variable-length field in an IPFIX template.
const VARIABLE: u16 = 65535;
/// Longest name sent in IPFIX.
const IPFIX_NAME_BYTES: usize = 255;
/// Lengths of the names in NetFlow v9: application, host.
const V9_NAME_BYTES: [usize; 2] = [32, 64];

/// Template ids: IPv4 flows, IPv6 flows.
const TEMPLATE_V4: u16 = 256;
const TEMPLATE_V6: u16 = 257;

/// One field of a template.
#[derive(Clone, Copy)]
struct Field {
    id: u16,
    len: u16,
    /// Enterprise number, 0 for IANA's.
    pen: u32,
}

const fn iana(id: u16, len: u16) -> Field {
    Field { id, len, pen: 0 }
}

/// The fields after the addresses, for `version` (see the module docs).
fn fields(version: IpfixVersion) -> Vec<Field> {
    let (reverse_bytes, reverse_packets, app, host) = match version {
        IpfixVersion::Ipfix => (
            Field {
                id: 1,
                len: 8,
                pen: REVERSE_PEN,
            },
            Field {
                id: 2,
                len: 8,
                pen: REVERSE_PEN,
            },
            Field {
                id: 119,
                len: VARIABLE,
                pen: NTOP_PEN,
            },
            Field {
                id: 122,
                len: VARIABLE,
                pen: NTOP_PEN,
            },
        ),
        IpfixVersion::NetflowV9 => (
            iana(23, 8),
            iana(24, 8),
            iana(57591, V9_NAME_BYTES[0] as u16),
            iana(57594, V9_NAME_BYTES[1] as u16),
        ),
    };
    let reverse_flags = (version == IpfixVersion::Ipfix).then_some(Field {
        id: 6,
        len: 1,
        pen: REVERSE_PEN,
    });
    [iana(7, 2), iana(11, 2), iana(4, 1), iana(5, 1)]
        .into_iter()
        .chain(reverse_flags)
        .chain([
            iana(6, 1),
            iana(58, 2),
            iana(152, 8),
            iana(153, 8),
            iana(1, 8),
            iana(2, 8),
            reverse_bytes,
            reverse_packets,
            iana(136, 1),
            iana(239, 1),
            app,
            host,
        ])
        .collect()
}

/// The template set (v9: template flowset) announcing both templates.
pub(crate) fn templates(version: IpfixVersion) -> Vec<u8> {
    let mut out = Vec::new();
    let set_id: u16 = match version {
        IpfixVersion::Ipfix => 2,
        IpfixVersion::NetflowV9 => 0,
    };
    out.extend_from_slice(&set_id.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    for (id, addr_ids, addr_len) in [(TEMPLATE_V4, [8, 12], 4), (TEMPLATE_V6, [27, 28], 16)] {
        let all: Vec<Field> = addr_ids
            .iter()
            .map(|&a| iana(a, addr_len))
            .chain(fields(version))
            .collect();
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&(all.len() as u16).to_be_bytes());
        for f in all {
            let enterprise = if f.pen == 0 { 0 } else { 0x8000 };
            out.extend_from_slice(&(f.id | enterprise).to_be_bytes());
            out.extend_from_slice(&f.len.to_be_bytes());
            if f.pen != 0 {
                out.extend_from_slice(&f.pen.to_be_bytes());
            }
        }
    }
    let len = out.len() as u16;
    out[2..4].copy_from_slice(&len.to_be_bytes());
    out
}

/// Records in the template set (v9 counts them in its header).
const TEMPLATE_RECORDS: u16 = 2;

/// The header's length.
fn header_len(version: IpfixVersion) -> usize {
    match version {
        IpfixVersion::Ipfix => 16,
        IpfixVersion::NetflowV9 => 20,
    }
}

/// What a message's header says besides its content.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header {
    /// IPFIX: data records sent before this message; v9: messages.
    pub(crate) sequence: u32,
    /// Export time, Unix seconds.
    pub(crate) export_secs: u32,
    /// v9 only: milliseconds since the exporter started.
    pub(crate) uptime_ms: u32,
    /// Observation domain (v9: source id).
    pub(crate) domain: u32,
}

/// A message being filled: a header, perhaps the templates, then data
/// sets of records, never more than `max_bytes` in all.
pub(crate) struct Message {
    version: IpfixVersion,
    max_bytes: usize,
    buf: Vec<u8>,
    /// Data records in the message.
    records: u32,
    /// The templates are in it.
    templates: bool,
    /// The open data set: where it starts, and its template.
    set: Option<(usize, u16)>,
}

impl Message {
    /// An empty message of `version`, at most `max_bytes` long.
    pub(crate) fn new(version: IpfixVersion, max_bytes: usize) -> Self {
        let mut m = Message {
            version,
            max_bytes,
            buf: Vec::with_capacity(max_bytes),
            records: 0,
            templates: false,
            set: None,
        };
        m.clear();
        m
    }

    /// Empties the message, down to its header.
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.buf.resize(header_len(self.version), 0);
        self.records = 0;
        self.templates = false;
        self.set = None;
    }

    /// Data records in the message.
    pub(crate) fn records(&self) -> u32 {
        self.records
    }

    /// Whether the message holds the templates.
    pub(crate) fn has_templates(&self) -> bool {
        self.templates
    }

    /// Puts `templates` (from [`templates`]) first in an empty message.
    pub(crate) fn add_templates(&mut self, templates: &[u8]) {
        debug_assert!(self.records == 0 && !self.templates);
        self.buf.extend_from_slice(templates);
        self.templates = true;
    }

    /// Appends `export` as a data record if the message has room for it;
    /// says whether it did. A message that has none takes any record.
    pub(crate) fn push(&mut self, export: &Export<'_>) -> bool {
        let template = if export.src.is_ipv4() {
            TEMPLATE_V4
        } else {
            TEMPLATE_V6
        };
        let before = (self.buf.len(), self.set);
        if self.set.is_some_and(|(_, t)| t != template) {
            self.close_set();
        }
        if self.set.is_none() {
            self.set = Some((self.buf.len(), template));
            self.buf.extend_from_slice(&template.to_be_bytes());
            self.buf.extend_from_slice(&[0, 0]);
        }
        self.encode(export);
        if self.len_closed() > self.max_bytes && self.records > 0 {
            self.buf.truncate(before.0);
            self.set = before.1;
            return false;
        }
        self.records += 1;
        true
    }

    /// The message's length once its open set is closed (v9 pads it).
    fn len_closed(&self) -> usize {
        match (self.version, self.set) {
            (IpfixVersion::NetflowV9, Some((start, _))) => {
                self.buf.len() + (4 - (self.buf.len() - start) % 4) % 4
            }
            _ => self.buf.len(),
        }
    }

    /// Closes the open data set: pads it (v9) and writes its length.
    fn close_set(&mut self) {
        let Some((start, _)) = self.set.take() else {
            return;
        };
        if self.version == IpfixVersion::NetflowV9 {
            let padded = self.buf.len() + (4 - (self.buf.len() - start) % 4) % 4;
            self.buf.resize(padded, 0);
        }
        let len = (self.buf.len() - start) as u16;
        self.buf[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
    }

    /// Closes the message with `header`: its bytes, ready to send.
    pub(crate) fn finish(&mut self, header: Header) -> &[u8] {
        self.close_set();
        let len = self.buf.len();
        let h = &mut self.buf[..header_len(self.version)];
        match self.version {
            IpfixVersion::Ipfix => {
                h[0..2].copy_from_slice(&10u16.to_be_bytes());
                h[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                h[4..8].copy_from_slice(&header.export_secs.to_be_bytes());
                h[8..12].copy_from_slice(&header.sequence.to_be_bytes());
                h[12..16].copy_from_slice(&header.domain.to_be_bytes());
            }
            IpfixVersion::NetflowV9 => {
                let templates = if self.templates { TEMPLATE_RECORDS } else { 0 };
                let count = templates + self.records as u16;
                h[0..2].copy_from_slice(&9u16.to_be_bytes());
                h[2..4].copy_from_slice(&count.to_be_bytes());
                h[4..8].copy_from_slice(&header.uptime_ms.to_be_bytes());
                h[8..12].copy_from_slice(&header.export_secs.to_be_bytes());
                h[12..16].copy_from_slice(&header.sequence.to_be_bytes());
                h[16..20].copy_from_slice(&header.domain.to_be_bytes());
            }
        }
        &self.buf
    }

    /// Appends the data record of `e`, fields as in [`fields`].
    fn encode(&mut self, e: &Export<'_>) {
        let b = &mut self.buf;
        for addr in [e.src, e.dst] {
            match addr {
                IpAddr::V4(a) => b.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => b.extend_from_slice(&a.octets()),
            }
        }
        b.extend_from_slice(&e.src_port.to_be_bytes());
        b.extend_from_slice(&e.dst_port.to_be_bytes());
        b.push(e.protocol);
        b.push(e.tos);
        let [forward_flags, reverse_flags] = e.tcp_flags;
        match self.version {
            IpfixVersion::Ipfix => b.extend_from_slice(&[reverse_flags, forward_flags]),
            IpfixVersion::NetflowV9 => b.push(forward_flags | reverse_flags),
        }
        b.extend_from_slice(&e.vlan.to_be_bytes());
        b.extend_from_slice(&e.start_ms.to_be_bytes());
        b.extend_from_slice(&e.end_ms.to_be_bytes());
        for n in [
            e.forward.bytes,
            e.forward.packets,
            e.reverse.bytes,
            e.reverse.packets,
        ] {
            b.extend_from_slice(&n.to_be_bytes());
        }
        b.push(e.end_reason as u8);
        // biflowDirection: the source is the initiator.
        b.push(1);
        for (name, fixed) in [
            (e.application, V9_NAME_BYTES[0]),
            (e.host, V9_NAME_BYTES[1]),
        ] {
            match self.version {
                IpfixVersion::Ipfix => {
                    let name = cut(name, IPFIX_NAME_BYTES);
                    if name.len() < 255 {
                        b.push(name.len() as u8);
                    } else {
                        b.push(255);
                        b.extend_from_slice(&(name.len() as u16).to_be_bytes());
                    }
                    b.extend_from_slice(name.as_bytes());
                }
                IpfixVersion::NetflowV9 => {
                    let name = cut(name, fixed);
                    b.extend_from_slice(name.as_bytes());
                    b.resize(b.len() + fixed - name.len(), 0);
                }
            }
        }
    }
}

/// `s` cut to at most `max` bytes, at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
