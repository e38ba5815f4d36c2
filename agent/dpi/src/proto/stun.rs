//! STUN and TURN (RFC 8489/5389, RFC 8656) and classic STUN (RFC 3489),
//! over UDP and TCP (raw or RFC 4571 framed).
//!
//! A message is a 20-byte header (type with the two top bits clear,
//! length a multiple of 4, the magic cookie or, without it, a classic
//! message type) and attributes that walk exactly to its end. Address
//! attributes fill `meta.stun`.

use std::net::{IpAddr, SocketAddr};

use flowstat_core::{Metadata, Protocol, Stun};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// STUN.
const STUN: Protocol = Protocol(78);
/// The RFC 5389 magic cookie.
const COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
/// Classic message types: binding and shared secret request, response
/// and error response.
const CLASSIC: [u16; 6] = [0x0001, 0x0101, 0x0111, 0x0002, 0x0102, 0x0112];
/// Payload packets after which a claimed flow is done without a response.
const MAX_PACKETS: u32 = 8;
/// Payload packets a flow may take to show a first message.
const MAX_TRIES: u32 = 4;
/// Messages read from one TCP stream.
const MAX_MESSAGES: usize = 16;

/// Per-flow state.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct State {
    /// Transaction id of a classic request without attributes (too weak to
    /// claim alone), waiting for its response.
    pending: Option<[u8; 16]>,
    /// A message was seen: the flow is claimed.
    found: bool,
}

/// One STUN message.
struct Message<'a> {
    /// Message type.
    kind: u16,
    /// Magic cookie and transaction id (the whole id for classic STUN).
    id: [u8; 16],
    /// True with the magic cookie.
    cookie: bool,
    /// Attributes.
    attrs: &'a [u8],
}

impl Message<'_> {
    /// True for a success or error response.
    fn response(&self) -> bool {
        self.kind & 0x0100 != 0
    }

    /// True for a success response.
    fn success(&self) -> bool {
        self.kind & 0x0110 == 0x0100
    }
}

/// Claims a flow on its first STUN message; done after a success response
/// or [`MAX_PACKETS`] packets.
pub(crate) fn dissect(pkt: &Packet<'_>, scratch: &mut Scratch, meta: &mut Metadata) -> Verdict {
    scratch.keep(|st: &mut State| step(pkt, st, meta))
}

/// [`dissect`] on the flow's state.
fn step(pkt: &Packet<'_>, st: &mut State, meta: &mut Metadata) -> Verdict {
    let (mut valid, mut success, mut partial) = (false, false, false);
    if pkt.tcp {
        let mut rest = pkt.stream();
        for _ in 0..MAX_MESSAGES {
            let Some((msg, size)) = framed(rest) else {
                partial = incomplete(rest);
                break;
            };
            let ok = accept(st, &msg, pkt.from_client, meta);
            (valid, success) = (valid | ok, success | ok && msg.success());
            rest = rest.get(size..).unwrap_or_default();
        }
    } else if let Some((msg, size)) = message(pkt.payload)
        && size == pkt.payload.len()
    {
        valid = accept(st, &msg, pkt.from_client, meta);
        success = valid && msg.success();
    }
    let packets = pkt.packets();
    st.found |= valid;
    if st.found {
        if success || packets >= MAX_PACKETS {
            Verdict::Done(STUN)
        } else {
            Verdict::Found(STUN)
        }
    } else if (partial || st.pending.is_some()) && packets < MAX_TRIES {
        Verdict::Maybe
    } else {
        Verdict::No
    }
}

/// Whether `msg` claims the flow, filling the metadata when it does. A
/// classic request without attributes only waits for its response.
fn accept(st: &mut State, msg: &Message<'_>, from_client: bool, meta: &mut Metadata) -> bool {
    if !msg.cookie && msg.attrs.is_empty() {
        if !msg.response() && from_client {
            st.pending = Some(msg.id);
            return st.found;
        }
        if st.pending != Some(msg.id) {
            return st.found;
        }
    }
    addresses(msg, meta);
    true
}

/// The message at the start of a TCP stream (raw, else with an RFC 4571
/// length prefix) and the bytes it takes.
fn framed(b: &[u8]) -> Option<(Message<'_>, usize)> {
    if let Some(found) = message(b) {
        return Some(found);
    }
    let (&[l0, l1], rest) = b.split_first_chunk::<2>()?;
    let (msg, size) = message(rest)?;
    (usize::from(u16::from_be_bytes([l0, l1])) == size).then_some((msg, size + 2))
}

/// True when `b` may be a message whose end has not arrived yet: the start
/// of a header, or a valid header followed by too few bytes.
fn incomplete(b: &[u8]) -> bool {
    match b {
        [] => true,
        [t0, ..] if t0 & 0xC0 != 0 => false,
        _ if b.len() < 20 => true,
        [t0, t1, l0, l1, rest @ ..] => {
            let len = usize::from(u16::from_be_bytes([*l0, *l1]));
            len % 4 == 0
                && (rest.starts_with(&COOKIE) || CLASSIC.contains(&u16::from_be_bytes([*t0, *t1])))
                && b.len() < 20 + len
        }
        _ => false,
    }
}

/// The valid message at the start of `b` and its size.
fn message(b: &[u8]) -> Option<(Message<'_>, usize)> {
    let (header, rest) = b.split_at_checked(20)?;
    let (&[t0, t1, l0, l1], id) = header.split_first_chunk::<4>()?;
    let id: [u8; 16] = id.try_into().ok()?;
    let kind = u16::from_be_bytes([t0, t1]);
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    let cookie = id.starts_with(&COOKIE);
    if kind & 0xC000 != 0 || len % 4 != 0 || !(cookie || CLASSIC.contains(&kind)) {
        return None;
    }
    let attrs = rest.get(..len)?;
    let mut walk = attributes(attrs);
    let valid = walk.all(|(t, _)| cookie || t <= 0x000B || t >= 0x8000);
    (valid && walk.rest.is_empty()).then_some((
        Message {
            kind,
            id,
            cookie,
            attrs,
        },
        20 + len,
    ))
}

/// Walks attributes (type, value); `rest` is what it could not read.
struct Attributes<'a> {
    /// Bytes not read yet.
    rest: &'a [u8],
}

impl<'a> Iterator for Attributes<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (&[t0, t1, l0, l1], rest) = self.rest.split_first_chunk::<4>()?;
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        let value = rest.get(..len)?;
        self.rest = rest.get(len.next_multiple_of(4)..)?;
        Some((u16::from_be_bytes([t0, t1]), value))
    }
}

/// The attributes in `b`.
fn attributes(b: &[u8]) -> Attributes<'_> {
    Attributes { rest: b }
}

/// Copies the message's address attributes to `meta.stun`.
fn addresses(msg: &Message<'_>, meta: &mut Metadata) {
    for (kind, value) in attributes(msg.attrs) {
        let (xor, field): (bool, fn(&mut Stun) -> &mut String) = match kind {
            0x0001 => (false, |s| &mut s.mapped),
            0x0020 | 0x8020 => (true, |s| &mut s.mapped),
            0x0005 | 0x802C => (false, |s| &mut s.other),
            0x0012 => (true, |s| &mut s.peer),
            0x0016 => (true, |s| &mut s.relayed),
            0x0004 | 0x802B => (false, |s| &mut s.response),
            _ => continue,
        };
        // XORed addresses use the cookie and transaction id as key.
        let key = match (xor, msg.cookie) {
            (false, _) => [0; 16],
            (true, true) => msg.id,
            (true, false) => continue,
        };
        let Some(addr) = address(value, &key) else {
            continue;
        };
        let slot = field(meta.stun.get_or_insert_with(Box::default));
        // XOR-MAPPED-ADDRESS wins over MAPPED-ADDRESS.
        if xor || slot.is_empty() {
            *slot = addr;
        }
    }
}

/// An address attribute XORed with `key`, as `ip:port` (`[ip]:port` for
/// IPv6).
fn address(value: &[u8], key: &[u8; 16]) -> Option<String> {
    let (&[_, family, p0, p1], addr) = value.split_first_chunk::<4>()?;
    let mut bytes = [0u8; 16];
    for (b, (a, k)) in bytes.iter_mut().zip(addr.iter().zip(key)) {
        *b = a ^ k;
    }
    let ip = match (family, addr.len()) {
        (1, 4) => IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]]),
        (2, 16) => IpAddr::from(bytes),
        _ => return None,
    };
    let port = u16::from_be_bytes([p0 ^ key[0], p1 ^ key[1]]);
    Some(SocketAddr::new(ip, port).to_string())
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "stun",
    protocols: &[Protocol(78)],
    tcp: true,
    udp: true,
    ports: &[3478, 19302],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "stun_classic.pcap frames ,,,",
        tcp: false,
        server_port: 13958,
        packets: &[
            (
                true,
                "000100089429ef88294dd52632c72931cb8dbb4c0003000400000000",
            ),
            (
                false,
                "0101000c9429ef88294dd52632c72931cb8dbb4c000100080001d70aac103fe0",
            ),
            (
                false,
                "8092ae1504e9f9983aa6d92292d8852000fad4afbd2c19c8c2835fb215692dd6",
            ),
            (
                false,
                "8012ae1604e9fa383aa6d922c4532097ca1bd297ab78d2acb2c3ebe25cc55cda",
            ),
        ],
        protocol: Protocol(78),
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// stun_classic.pcap frame 1: classic binding request with
    /// CHANGE-REQUEST, from 172.16.63.224:55050.
    const REQUEST: &str = crate::dissect::testing::STUN_REQUEST;
    /// stun_classic.pcap frame 2: its response, MAPPED-ADDRESS
    /// 172.16.63.224:55050.
    const RESPONSE: &str = "0101000c9429ef88294dd52632c72931cb8dbb4c000100080001d70aac103fe0";
    /// RFC 5769 section 2.2 (the corpus has no RFC 5389 STUN): binding
    /// success response with SOFTWARE, XOR-MAPPED-ADDRESS 192.0.2.1:32853,
    /// MESSAGE-INTEGRITY and FINGERPRINT.
    const RFC5769_V4: &str = "0101003c2112a442b7e7a701bc34d686fa87dfae802200 0b7465737420766563746f7220\
        00200008 0001a147e112a643 000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7 80280004c07d4c96";
    /// RFC 5769 section 2.3: the same with an IPv6 XOR-MAPPED-ADDRESS,
    /// [2001:db8:1234:5678:11:2233:4455:6677]:32853.
    const RFC5769_V6: &str = "010100482112a442b7e7a701bc34d686fa87dfae802200 0b7465737420766563746f7220\
        00200014 0002a1470113a9faa5d3f179bc25f4b5bed2b9d9 00080014a382954e4be67bf11784c97c8292c275bfe3ed41\
        80280004c8fb0b4c";

    fn mapped(meta: &Metadata) -> &str {
        meta.stun.as_ref().map_or("", |s| s.mapped.as_str())
    }

    #[test]
    fn classic_request_and_response() {
        let (req, resp) = (hex(REQUEST), hex(RESPONSE));
        let f = flow(false, 55050, 13958);
        let (v, meta) = run(dissect, &f, &[(true, &req), (false, &resp)]);
        assert_eq!(v, [Verdict::Found(STUN), Verdict::Done(STUN)]);
        assert_eq!(mapped(&meta), "172.16.63.224:55050");
        // A datagram one byte longer than the message is not STUN.
        let mut longer = req.clone();
        longer.push(0);
        let (v, _) = run(dissect, &f, &[(true, &longer)]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn rfc5389_xor_mapped_address() {
        let f = flow(false, 40000, 3478);
        let (v, meta) = run(dissect, &f, &[(false, &hex(RFC5769_V4))]);
        assert_eq!(v, [Verdict::Done(STUN)]);
        assert_eq!(mapped(&meta), "192.0.2.1:32853");
        let (v, meta) = run(dissect, &f, &[(false, &hex(RFC5769_V6))]);
        assert_eq!(v, [Verdict::Done(STUN)]);
        assert_eq!(
            mapped(&meta),
            "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
        );
    }

    #[test]
    fn turn_addresses() {
        // Synthetic (no TURN in the corpus): a CreatePermission request with
        // XOR-PEER-ADDRESS 203.0.113.5:6000, then an Allocate success
        // response with XOR-RELAYED-ADDRESS 192.0.2.15:50000,
        // XOR-MAPPED-ADDRESS 192.0.2.1:32853, OTHER-ADDRESS
        // 198.51.100.1:3479 and RESPONSE-ORIGIN 198.51.100.2:3478.
        let permission = hex("0008000c2112a442b7e7a701bc34d686fa87dfae 001200080001 3662ea12d547");
        let allocate = hex(
            "010300302112a442b7e7a701bc34d686fa87dfaf 001600080001e242e112a64d \
             002000080001a147e112a643 802c000800010d97c6336401 802b000800010d96c6336402",
        );
        let f = flow(false, 40000, 3478);
        let (v, meta) = run(dissect, &f, &[(true, &permission), (false, &allocate)]);
        assert_eq!(v, [Verdict::Found(STUN), Verdict::Done(STUN)]);
        let expected = Stun {
            mapped: "192.0.2.1:32853".into(),
            other: "198.51.100.1:3479".into(),
            peer: "203.0.113.5:6000".into(),
            relayed: "192.0.2.15:50000".into(),
            response: "198.51.100.2:3478".into(),
        };
        assert_eq!(meta.stun.as_deref(), Some(&expected));
    }

    #[test]
    fn classic_request_without_attributes_waits_for_its_response() {
        // Synthetic: frame 1 without its attribute (length 0).
        let mut req = hex(REQUEST);
        req.truncate(20);
        req[3] = 0;
        let f = flow(false, 55050, 13958);
        let (v, _) = run(dissect, &f, &[(true, &req)]);
        assert_eq!(v, [Verdict::Maybe]);
        // An empty response with the same transaction id claims the flow.
        let mut resp = req.clone();
        resp[0] = 1;
        let (v, _) = run(dissect, &f, &[(true, &req), (false, &resp)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(STUN)]);
        // One with another id does not.
        resp[19] ^= 1;
        let (v, _) = run(dissect, &f, &[(true, &req), (false, &resp)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Maybe]);
    }

    #[test]
    fn tcp_stream_split_and_framed() {
        // Synthetic (no STUN over TCP in the corpus): the classic exchange
        // on TCP, the request split in two segments.
        let (req, resp) = (hex(REQUEST), hex(RESPONSE));
        let f = flow(true, 55050, 3478);
        let (v, meta) = run(
            dissect,
            &f,
            &[(true, &req[..10]), (true, &req[10..]), (false, &resp)],
        );
        assert_eq!(
            v,
            [Verdict::Maybe, Verdict::Found(STUN), Verdict::Done(STUN)]
        );
        assert_eq!(mapped(&meta), "172.16.63.224:55050");
        // RFC 4571 framing: a 2-byte length before each message.
        let mut framed = vec![0, 0x1c];
        framed.extend_from_slice(&req);
        let (v, _) = run(dissect, &f, &[(true, &framed)]);
        assert_eq!(v, [Verdict::Found(STUN)]);
    }

    #[test]
    fn rejects_other_protocols() {
        let dns = hex(crate::dissect::testing::DNS_QUERY);
        let rtp = hex(crate::dissect::testing::RTP);
        let ovpn = hex(crate::dissect::testing::OPENVPN_RESET);
        for p in [&dns, &rtp, &ovpn] {
            let (v, _) = run(dissect, &flow(false, 40000, 53), &[(true, p)]);
            assert_eq!(v, [Verdict::No]);
        }
        let tls = hex(crate::dissect::testing::TLS_HELLO_HEAD);
        let http = hex(crate::dissect::testing::HTTP_REQUEST_HEAD);
        for p in [&tls, &http] {
            let (v, _) = run(dissect, &flow(true, 40000, 443), &[(true, p)]);
            assert_eq!(v, [Verdict::No]);
        }
    }

    #[test]
    fn truncated_input_does_not_panic() {
        for src in [REQUEST, RESPONSE, RFC5769_V4, RFC5769_V6] {
            let p = hex(src);
            for n in 0..=p.len() {
                for tcp in [false, true] {
                    let (v, _) = run(
                        dissect,
                        &flow(tcp, 40000, 3478),
                        &[(true, &p[..n]), (false, &p[..n])],
                    );
                    if n < p.len() && !tcp {
                        assert!(!matches!(v[0], Verdict::Found(_) | Verdict::Done(_)), "{n}");
                    }
                }
            }
        }
    }
}
