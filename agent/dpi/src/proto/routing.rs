//! Routing and network control protocols: BGP (RFC 4271, nDPI 13), LDP
//! (RFC 5036, nDPI 409) and OpenFlow (nDPI 374).
//!
//! - BGP, TCP: a message starts with a marker of 16 `FF` bytes, its
//!   length (19..=4096) and type (1 OPEN .. 5 ROUTE-REFRESH); an OPEN
//!   carries version 4, a KEEPALIVE is exactly 19 bytes.
//! - LDP, UDP and TCP: a PDU is version 1, its length (what follows the
//!   first 4 bytes), a 6-byte LDP id, then messages (type, length, id).
//!   Over UDP the datagram is one Hello (type 0x0100) PDU; over TCP the
//!   first PDU, whole, holds a session message of a known type.
//! - OpenFlow, TCP: each side opens with a HELLO (version 1..=6, type 0,
//!   its length); on the OpenFlow ports, as nDPI does for version 6, any
//!   message of its version's types whose length is the packet's tells
//!   (a flow seen mid-session).

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// nDPI's BGP.
const BGP: Protocol = Protocol(13);
/// nDPI's LDP.
const LDP: Protocol = Protocol(409);
/// nDPI's OpenFlow.
const OPENFLOW: Protocol = Protocol(374);
/// OpenFlow's IANA port and the older one.
const OPENFLOW_PORTS: [u16; 2] = [6653, 6633];
/// LDP message types of a session (RFC 5036, 5561, 7275; 0x3E00..=0x3EFF
/// are vendor-private).
const LDP_TYPES: &[u16] = &[
    0x0001, 0x0200, 0x0201, 0x0202, 0x0300, 0x0301, 0x0400, 0x0401, 0x0402, 0x0403, 0x0404, 0x0500,
    0x0501, 0x0700, 0x0701, 0x0702, 0x0703,
];
/// LDP Hello.
const LDP_HELLO: u16 = 0x0100;
/// Largest LDP PDU (RFC 5036: 4096 unless negotiated).
const LDP_MAX: usize = 4096;

/// What one protocol makes of the flow so far.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Read {
    More,
    Bad,
    Ok,
}

/// Each protocol in turn; `No` when none can match.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let checks: [(Protocol, Read); 3] = if pkt.tcp {
        [
            (BGP, bgp(pkt.stream())),
            (LDP, ldp_tcp(pkt.stream())),
            (OPENFLOW, openflow(pkt)),
        ]
    } else {
        [
            (LDP, ldp_udp(pkt.payload)),
            (BGP, Read::Bad),
            (OPENFLOW, Read::Bad),
        ]
    };
    if let Some(&(p, _)) = checks.iter().find(|(_, r)| *r == Read::Ok) {
        return Verdict::Done(p);
    }
    if checks.iter().any(|(_, r)| *r == Read::More) {
        Verdict::Maybe
    } else {
        Verdict::No
    }
}

/// A BGP message at the start of `stream` (either direction: the capture
/// may have missed the OPEN).
fn bgp(stream: &[u8]) -> Read {
    let marker = &stream[..stream.len().min(16)];
    if marker.iter().any(|&b| b != 0xff) {
        return Read::Bad;
    }
    let Some(&[l0, l1, kind]) = stream.get(16..19).and_then(|s| s.first_chunk::<3>()) else {
        return Read::More;
    };
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    let ok = match kind {
        1 => (29..=4096).contains(&len) && stream.get(19).is_none_or(|&v| v == 4),
        2 => (23..=4096).contains(&len),
        3 => (21..=4096).contains(&len),
        4 => len == 19,
        5 => len == 23,
        _ => false,
    };
    if ok { Read::Ok } else { Read::Bad }
}

/// The LDP PDU header: the PDU's total length, or why not.
fn ldp_header(bytes: &[u8]) -> Result<usize, Read> {
    let Some(&[v0, v1, l0, l1]) = bytes.first_chunk::<4>() else {
        return Err(if bytes.iter().zip([0u8, 1]).all(|(a, b)| *a == b) {
            Read::More
        } else {
            Read::Bad
        });
    };
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    // LDP id (6) and one message header (8) at least.
    if [v0, v1] != [0, 1] || !(14..=LDP_MAX).contains(&len) {
        return Err(Read::Bad);
    }
    Ok(len + 4)
}

/// The first message of an LDP PDU of total length `total`: its type.
fn ldp_message(pdu: &[u8], total: usize) -> Option<u16> {
    let &[t0, t1, l0, l1] = pdu.get(10..14)?.first_chunk::<4>()?;
    let msg_len = usize::from(u16::from_be_bytes([l0, l1]));
    // The message id (4 bytes) at least, within the PDU.
    (msg_len >= 4 && 14 + msg_len <= total).then_some(u16::from_be_bytes([t0, t1]) & 0x7fff)
}

/// An LDP Hello datagram.
fn ldp_udp(payload: &[u8]) -> Read {
    match ldp_header(payload) {
        Ok(total) if total == payload.len() && ldp_message(payload, total) == Some(LDP_HELLO) => {
            Read::Ok
        }
        _ => Read::Bad,
    }
}

/// An LDP session's first PDU at the start of `stream`.
fn ldp_tcp(stream: &[u8]) -> Read {
    let total = match ldp_header(stream) {
        Ok(total) => total,
        Err(read) => return read,
    };
    if stream.len() < 14 {
        return Read::More;
    }
    match ldp_message(stream, total) {
        Some(t) if LDP_TYPES.contains(&t) || (0x3e00..=0x3eff).contains(&t) => {
            if stream.len() >= total {
                Read::Ok
            } else {
                Read::More
            }
        }
        _ => Read::Bad,
    }
}

/// An OpenFlow HELLO at the start of a stream: `Ok` once whole. Before
/// OpenFlow 1.3 (version 4) it has no body; from it, optional elements
/// (type 1, the version bitmap, padded to 8 bytes).
fn openflow_hello(stream: &[u8]) -> Read {
    let Some(&[version, kind, l0, l1]) = stream.first_chunk::<4>() else {
        return match stream {
            [] | [1..=6] | [1..=6, 0] | [1..=6, 0, 0] => Read::More,
            _ => Read::Bad,
        };
    };
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    if !(1..=6).contains(&version) || kind != 0 || len < 8 || (version < 4 && len != 8) {
        return Read::Bad;
    }
    if len > 8 {
        // One version bitmap element filling the body.
        let Some(&[0, 1, e0, e1]) = stream.get(8..12).and_then(|s| s.first_chunk::<4>()) else {
            return if stream.len() < 12 {
                Read::More
            } else {
                Read::Bad
            };
        };
        let elem = usize::from(u16::from_be_bytes([e0, e1]));
        if elem < 8 || 8 + elem.div_ceil(8) * 8 != len {
            return Read::Bad;
        }
    }
    if stream.len() < len {
        Read::More
    } else {
        Read::Ok
    }
}

/// OpenFlow: a HELLO each way, or nDPI's one-message rule on its ports.
fn openflow(pkt: &Packet<'_>) -> Read {
    let on_port = OPENFLOW_PORTS.contains(&pkt.flow.server_port)
        || OPENFLOW_PORTS.contains(&pkt.flow.client_port);
    if on_port
        && let [version @ 1..=6, kind, l0, l1, ..] = pkt.payload
        && *kind < [0, 22, 24, 25, 30, 34, 36][usize::from(*version)]
        && pkt.payload.len() >= 8
        && usize::from(u16::from_be_bytes([*l0, *l1])) == pkt.payload.len()
    {
        return Read::Ok;
    }
    match (
        openflow_hello(pkt.client_stream),
        openflow_hello(pkt.server_stream),
    ) {
        (Read::Bad, _) | (_, Read::Bad) => Read::Bad,
        (Read::Ok, Read::Ok) => {
            // Both sides speak the same or a close version: each sends the
            // highest it supports.
            Read::Ok
        }
        _ => Read::More,
    }
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "routing",
    protocols: &[BGP, LDP, OPENFLOW],
    tcp: true,
    udp: true,
    ports: &[179, 646, 6653, 6633],
    ports_only: false,
    first: |_, byte| byte == 0xff || byte <= 6,
    run: dissect,
    samples: &[
        Sample {
            origin: "BGP_Cisco_hdlc_slarp.pcap frame 4",
            tcp: true,
            server_port: 179,
            packets: &[(
                true,
                "ffffffffffffffffffffffffffffffff00390104000100b40b0b0b0b1c020601\
                 04000100010202800002020200020246000206410400000001",
            )],
            protocol: BGP,
        },
        Sample {
            origin: "ldp.pcap frame 1",
            tcp: false,
            server_port: 646,
            packets: &[(
                true,
                "0001001e0a0000060000010000140000000004000004000f0000040100040a000006",
            )],
            protocol: LDP,
        },
        Sample {
            origin: "ldp.pcap frame 4",
            tcp: true,
            server_port: 646,
            packets: &[(
                true,
                "000100200a000101000002000016000000020500000e000100b4000000000a0000060000",
            )],
            protocol: LDP,
        },
        Sample {
            origin: "openflow.pcap frames 4, 6",
            tcp: true,
            server_port: 6653,
            packets: &[
                (true, "06000010000000010001000800000040"),
                (false, "06000010ffffffff0001000800000072"),
            ],
            protocol: OPENFLOW,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{
        DNS_QUERY, HTTP_REQUEST_HEAD, STUN_REQUEST, TLS_HELLO_HEAD, flow, hex, run,
    };

    /// BGP_Cisco_hdlc_slarp.pcap frame 4: an OPEN (AS 1, hold 180).
    const BGP_OPEN: &str = "ffffffffffffffffffffffffffffffff00390104000100b40b0b0b0b1c02060104000100010202800002020200020246000206410400000001";
    /// BGP_Cisco_hdlc_slarp.pcap frame 7: a KEEPALIVE.
    const BGP_KEEPALIVE: &str = "ffffffffffffffffffffffffffffffff001304";
    /// ldp.pcap frame 1: a Hello to 224.0.0.2.
    const LDP_HELLO_PDU: &str =
        "0001001e0a0000060000010000140000000004000004000f0000040100040a000006";
    /// ldp.pcap frame 4: an Initialization message over TCP (first 36
    /// bytes of the 36-byte PDU).
    const LDP_INIT: &str =
        "000100200a000101000002000016000000020500000e000100b4000000000a0000060000";
    /// openflow.pcap frames 4 and 6: the HELLOs (OpenFlow 1.5).
    const OF_HELLO_C: &str = "06000010000000010001000800000040";
    const OF_HELLO_S: &str = "06000010ffffffff0001000800000072";

    #[test]
    fn bgp_open_and_keepalive() {
        let f = flow(true, 18324, 179);
        let (v, meta) = run(dissect, &f, &[(true, &hex(BGP_OPEN))]);
        assert_eq!(v, [Verdict::Done(BGP)]);
        assert_eq!(meta, Metadata::default());
        // The capture missed the OPEN: a KEEPALIVE, from either side, on
        // any port.
        let f = flow(true, 40000, 1179);
        let (v, _) = run(dissect, &f, &[(false, &hex(BGP_KEEPALIVE))]);
        assert_eq!(v, [Verdict::Done(BGP)]);
        // Split marker.
        let open = hex(BGP_OPEN);
        let (v, _) = run(dissect, &f, &[(true, &open[..10]), (true, &open[10..])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(BGP)]);
        // A marker with a bad type or OPEN version.
        let mut bad = open.clone();
        bad[18] = 9;
        assert_eq!(run(dissect, &f, &[(true, &bad)]).0, [Verdict::No]);
        let mut bad = open;
        bad[19] = 3;
        assert_eq!(run(dissect, &f, &[(true, &bad)]).0, [Verdict::No]);
    }

    #[test]
    fn ldp_hello_and_session() {
        let f = flow(false, 646, 646);
        let (v, _) = run(dissect, &f, &[(true, &hex(LDP_HELLO_PDU))]);
        assert_eq!(v, [Verdict::Done(LDP)]);
        let f = flow(true, 45334, 646);
        let init = hex(LDP_INIT);
        let (v, _) = run(dissect, &f, &[(true, &init)]);
        assert_eq!(v, [Verdict::Done(LDP)]);
        let (v, _) = run(dissect, &f, &[(true, &init[..20]), (true, &init[20..])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(LDP)]);
        // A Hello over TCP, a session message over UDP, a length off by
        // one are not LDP.
        let f = flow(true, 45334, 646);
        assert_eq!(
            run(dissect, &f, &[(true, &hex(LDP_HELLO_PDU))]).0,
            [Verdict::No]
        );
        let f = flow(false, 646, 646);
        let mut short = hex(LDP_HELLO_PDU);
        short.pop();
        assert_eq!(run(dissect, &f, &[(true, &short)]).0, [Verdict::No]);
    }

    #[test]
    fn openflow_hellos() {
        let f = flow(true, 49234, 6653);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &hex(OF_HELLO_C)), (false, &hex(OF_HELLO_S))],
        );
        // On its port nDPI's one-message rule answers at once.
        assert_eq!(v[0], Verdict::Done(OPENFLOW));
        // Elsewhere: both HELLOs, here OpenFlow 1.0 (synthetic).
        let f = flow(true, 49234, 16653);
        let (c, s) = (hex("0100000800000001"), hex("0100000800000002"));
        let (v, _) = run(dissect, &f, &[(true, &c), (false, &s)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(OPENFLOW)]);
        let (v, _) = run(dissect, &f, &[(true, &c), (false, b"SSH-2.0-x\r\n")]);
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
    }

    #[test]
    fn not_other_protocols() {
        for tcp in [true, false] {
            let f = flow(tcp, 40000, 6653);
            for p in [
                hex(TLS_HELLO_HEAD),
                hex(HTTP_REQUEST_HEAD),
                hex(DNS_QUERY),
                hex(STUN_REQUEST),
            ] {
                let (v, _) = run(dissect, &f, &[(true, &p), (false, &p)]);
                assert_eq!(v[0], Verdict::No, "{tcp} {p:02x?}");
            }
        }
    }

    #[test]
    fn prefixes_do_not_panic() {
        // BGP is told by its 19-byte header, the others by whole messages.
        for (tcp, msg, needs) in [
            (true, hex(BGP_OPEN), 19),
            (true, hex(LDP_INIT), 36),
            (false, hex(LDP_HELLO_PDU), 34),
            (true, hex(OF_HELLO_C), 16),
        ] {
            let f = flow(tcp, 40000, 50000);
            for n in 0..needs {
                let (v, _) = run(dissect, &f, &[(true, &msg[..n]), (false, &msg[..n])]);
                assert!(v.iter().all(|v| !matches!(v, Verdict::Done(_))), "{n}");
            }
        }
    }
}
