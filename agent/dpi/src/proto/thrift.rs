//! Apache Thrift RPC messages: the strict binary protocol (on TCP maybe
//! behind the framed transport's 4-byte size) and the compact protocol,
//! over TCP and UDP.
//!
//! Binary: `0x80 0x01`, `0x00`, message type (1 call, 2 reply, 3
//! exception, 4 oneway), a 4-byte method name length, the name, a
//! sequence id. Compact: `0x82`, type (top 3 bits) and version 1 (low 5
//! bits), the sequence id and the name length as varints, the name.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// Thrift.
const THRIFT: Protocol = Protocol(345);
/// Longest method name taken.
const MAX_NAME: usize = 128;
/// Largest frame of the framed transport (Thrift's default limit 16 MB).
const MAX_FRAME: u32 = 16 << 20;

/// A read of a message header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Read {
    Bad,
    More,
    Ok,
}

/// Thrift when the first message (of whichever side spoke first; UDP:
/// the first datagram) is a message header with a method name made of
/// identifier characters.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let first = if !pkt.tcp {
        if pkt.seen != [0, 0] {
            return Verdict::No;
        }
        pkt.payload
    } else {
        pkt.first_stream()
    };
    // The framed transport: a size, then the message.
    let framed = match first.get(..5) {
        Some(&[s0, s1, s2, s3, 0x80 | 0x82]) if pkt.tcp => {
            let size = u32::from_be_bytes([s0, s1, s2, s3]);
            (8..=MAX_FRAME).contains(&size).then(|| &first[4..])
        }
        _ => None,
    };
    let read = message(framed.unwrap_or(first));
    match read {
        Read::Ok => Verdict::Done(THRIFT),
        Read::More if pkt.tcp => Verdict::Maybe,
        _ => Verdict::No,
    }
}

/// Reads a message header at the start of `msg`.
fn message(msg: &[u8]) -> Read {
    match msg.first() {
        None => Read::More,
        Some(0x80) => binary(msg),
        Some(0x82) => compact(msg),
        // A frame size whose message starts further on.
        Some(0) if msg.len() < 5 => Read::More,
        _ => Read::Bad,
    }
}

/// Strict binary: version, type, name length, name.
fn binary(msg: &[u8]) -> Read {
    let Some(&[_, version, zero, kind, l0, l1, l2, l3]) = msg.get(..8) else {
        let ok = match msg {
            [_, v, rest @ ..] => *v == 1 && rest.first().is_none_or(|&z| z == 0),
            _ => true,
        };
        return if ok { Read::More } else { Read::Bad };
    };
    let len = u32::from_be_bytes([l0, l1, l2, l3]) as usize;
    if version != 1 || zero != 0 || !(1..=4).contains(&kind) || !(1..=MAX_NAME).contains(&len) {
        return Read::Bad;
    }
    name(&msg[8..], len)
}

/// Compact: type and version, sequence id, name length, name.
fn compact(msg: &[u8]) -> Read {
    let Some(&byte) = msg.get(1) else {
        return Read::More;
    };
    if byte & 0x1f != 1 || !(1..=4).contains(&(byte >> 5)) {
        return Read::Bad;
    }
    let rest = &msg[2..];
    let (_, rest) = match varint(rest) {
        Read::Ok => {
            let n = rest.iter().position(|b| b & 0x80 == 0).unwrap_or(0) + 1;
            ((), &rest[n..])
        }
        other => return other,
    };
    match varint(rest) {
        Read::Ok => {}
        other => return other,
    }
    let n = rest.iter().position(|b| b & 0x80 == 0).unwrap_or(0) + 1;
    let len = rest[..n]
        .iter()
        .rev()
        .fold(0usize, |v, b| (v << 7) | usize::from(b & 0x7f));
    if !(1..=MAX_NAME).contains(&len) {
        return Read::Bad;
    }
    name(&rest[n..], len)
}

/// Checks a varint of at most 5 bytes at the start of `bytes`.
fn varint(bytes: &[u8]) -> Read {
    match bytes.iter().take(5).position(|b| b & 0x80 == 0) {
        Some(_) => Read::Ok,
        None if bytes.len() < 5 => Read::More,
        None => Read::Bad,
    }
}

/// Checks a method name of `len` bytes at the start of `bytes`.
fn name(bytes: &[u8], len: usize) -> Read {
    let seen = &bytes[..bytes.len().min(len)];
    let ident = |b: &u8| b.is_ascii_alphanumeric() || b"_.:-$".contains(b);
    if !seen.iter().all(ident) || seen.first().is_some_and(u8::is_ascii_digit) {
        Read::Bad
    } else if seen.len() < len {
        Read::More
    } else {
        Read::Ok
    }
}

/// [`Dissector::first`]: a binary or compact header, or a frame size.
fn thrift_first(_from_client: bool, byte: u8) -> bool {
    matches!(byte, 0x00 | 0x80 | 0x82)
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "thrift",
    protocols: &[THRIFT],
    tcp: true,
    udp: true,
    ports: &[9090, 6831, 6832],
    ports_only: false,
    first: thrift_first,
    run: dissect,
    samples: &[
        Sample {
            origin: "thrift.pcap frame 4 (binary call)",
            tcp: true,
            server_port: 11010,
            packets: &[(
                true,
                "8001000100000014616e6f6e796d6f75735f636f6d6d616e645f6f6e000000000800010000000000",
            )],
            protocol: THRIFT,
        },
        Sample {
            origin: "thrift.pcap frame 171 (compact oneway, first 23 bytes)",
            tcp: false,
            server_port: 6831,
            packets: &[(true, "8281b2810109656d697442617463681c1c18186d617472")],
            protocol: THRIFT,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// thrift.pcap frame 4: a binary call `anonymous_command_on`.
    const CALL: &str =
        "8001000100000014616e6f6e796d6f75735f636f6d6d616e645f6f6e000000000800010000000000";
    /// thrift.pcap frame 171 (UDP, Jaeger): a compact oneway
    /// `emitBatch`, first 24 bytes.
    const ONEWAY: &str = "8281b2810109656d697442617463681c1c18186d617472";

    #[test]
    fn binary_compact_and_framed() {
        let (v, meta) = run(dissect, &flow(true, 53387, 11010), &[(true, &hex(CALL))]);
        assert_eq!(v, [Verdict::Done(THRIFT)]);
        assert_eq!(meta, Metadata::default());
        let (v, _) = run(dissect, &flow(false, 49164, 6831), &[(true, &hex(ONEWAY))]);
        assert_eq!(v, [Verdict::Done(THRIFT)]);
        let mut framed = hex("00000028");
        framed.extend_from_slice(&hex(CALL));
        let f = flow(true, 40000, 9090);
        let (v, _) = run(dissect, &f, &[(true, &framed[..6]), (true, &framed[6..])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(THRIFT)]);
    }

    #[test]
    fn not_thrift() {
        let f = flow(true, 40000, 9090);
        for p in [
            // Version 2, type 5, a name with a control byte.
            "8002000100000003616263",
            "8001000500000003616263",
            "8001000100000003610163",
            crate::dissect::testing::TLS_HELLO_HEAD,
            crate::dissect::testing::HTTP_REQUEST_HEAD,
        ] {
            let (v, _) = run(dissect, &f, &[(true, &hex(p))]);
            assert_eq!(v, [Verdict::No], "{p}");
        }
        let (v, _) = run(
            dissect,
            &flow(false, 1, 2),
            &[(true, &hex(crate::dissect::testing::DNS_QUERY))],
        );
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn prefixes_do_not_panic() {
        for src in [CALL, ONEWAY] {
            let p = hex(src);
            for n in 1..15 {
                let (v, _) = run(dissect, &flow(true, 1, 2), &[(true, &p[..n])]);
                assert_eq!(v, [Verdict::Maybe], "{src} {n}");
            }
        }
    }
}
