//! Gnutella: the TCP handshake, and Gnutella2's UDP transport (GND).
//!
//! - TCP: the client opens with `GNUTELLA CONNECT/<version>\r\n`, or a
//!   servent's reply opens `GNUTELLA/<version> ` (a capture that missed
//!   the request): one such line names the flow.
//! - UDP: a GND header: `GND`, flags (deflate 1, acknowledge-me 2, no
//!   other bit), a message sequence number (2), the part number (from 1)
//!   and the part count: 0 in an acknowledgement (exactly the 8-byte
//!   header), else at least the part number, with data after the header.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// Gnutella.
const GNUTELLA: Protocol = Protocol(35);
/// The client's handshake line.
const CONNECT: &[u8] = b"GNUTELLA CONNECT/";
/// A servent's reply line.
const REPLY: &[u8] = b"GNUTELLA/";
/// The GND header's size.
const GND_HEADER: usize = 8;

/// `Done` on a handshake line or a GND header (see the module doc).
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return if gnd(pkt.payload) {
            Verdict::Done(GNUTELLA)
        } else {
            Verdict::No
        };
    }
    let stream = pkt.stream();
    let line = if pkt.from_client { CONNECT } else { REPLY };
    let n = stream.len().min(line.len());
    if stream.get(..n) != line.get(..n) {
        return Verdict::No;
    }
    // The version: digits and dots, then the end of the token.
    let Some(rest) = stream.get(line.len()..) else {
        return Verdict::Maybe;
    };
    let version = rest
        .iter()
        .take_while(|b| b.is_ascii_digit() || **b == b'.')
        .count();
    match rest.get(version) {
        None if version < 8 => Verdict::Maybe,
        Some(b'\r' | b' ') if version > 0 => Verdict::Done(GNUTELLA),
        _ => Verdict::No,
    }
}

/// Whether `p` is a GND datagram.
fn gnd(p: &[u8]) -> bool {
    let Some(&[g, n, d, flags, _, _, part, count]) = p.first_chunk::<GND_HEADER>() else {
        return false;
    };
    if [g, n, d] != *b"GND" || flags & !0x03 != 0 || part == 0 {
        return false;
    }
    if count == 0 {
        p.len() == GND_HEADER
    } else {
        part <= count && p.len() > GND_HEADER
    }
}

/// Whether a flow may start with `byte`: `G`.
fn first(_from_client: bool, byte: u8) -> bool {
    byte == b'G'
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "gnutella",
    protocols: &[GNUTELLA],
    tcp: true,
    udp: true,
    ports: &[6346, 6347],
    ports_only: false,
    first,
    run: dissect,
    samples: &[
        Sample {
            origin: "built: a Gnutella 0.6 handshake (GNUTELLA CONNECT/0.6, User-Agent, X-Ultrapeer)",
            tcp: true,
            server_port: 6346,
            packets: &[(true, CONNECT_06)],
            protocol: GNUTELLA,
        },
        Sample {
            origin: "built: a Gnutella2 GND datagram (a PI ping, acknowledge-me) and its acknowledgement",
            tcp: false,
            server_port: 6346,
            packets: &[(true, GND_PING), (false, GND_ACK)],
            protocol: GNUTELLA,
        },
    ],
};

/// `GNUTELLA CONNECT/0.6\r\nUser-Agent: Shareaza 2.7.10.2\r\nX-Ultrapeer: False\r\n\r\n`
const CONNECT_06: &str = "474e5554454c4c4120434f4e4e4543542f302e360d0a557365722d4167656e74\
             3a205368617265617a6120322e372e31302e320d0a582d556c74726170656572\
             3a2046616c73650d0a0d0a";
/// `GND`, flags 2 (acknowledge me), sequence 0x0017, part 1 of 1, then
/// a G2 `PI` packet (control byte 0x08: no length, a 2-byte name).
const GND_PING: &str = "474e440217000101085049";
/// `GND`, flags 0, sequence 0x0017, part 1, count 0: the acknowledgement.
const GND_ACK: &str = "474e440017000100";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    #[test]
    fn tcp_handshake() {
        let f = flow(true, 40000, 6346);
        let p = hex(CONNECT_06);
        let (v, _) = run(dissect, &f, &[(true, &p)]);
        assert_eq!(v, [Verdict::Done(GNUTELLA)]);
        let (v, _) = run(dissect, &f, &[(true, &p[..12]), (true, &p[12..])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(GNUTELLA)]);
        let (v, _) = run(dissect, &f, &[(false, b"GNUTELLA/0.6 200 OK\r\n")]);
        assert_eq!(v, [Verdict::Done(GNUTELLA)]);
        let (v, _) = run(dissect, &f, &[(true, b"GNUTELLA CONNECT/x\r\n")]);
        assert_eq!(v, [Verdict::No]);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &hex(crate::dissect::testing::HTTP_REQUEST_HEAD))],
        );
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn gnd_datagrams() {
        let f = flow(false, 40000, 6346);
        for s in [GND_PING, GND_ACK] {
            let (v, _) = run(dissect, &f, &[(true, &hex(s))]);
            assert_eq!(v, [Verdict::Done(GNUTELLA)], "{s}");
        }
        // An acknowledgement with data, a part beyond the count, a flag
        // not defined, part 0.
        for s in [
            "474e44001700010008",
            "474e44021700020108",
            "474e44101700010108",
            "474e44021700000108",
        ] {
            let (v, _) = run(dissect, &f, &[(true, &hex(s))]);
            assert_eq!(v, [Verdict::No], "{s}");
        }
    }

    #[test]
    fn truncated_input_does_not_panic() {
        for (tcp, s) in [(true, CONNECT_06), (false, GND_PING)] {
            let p = hex(s);
            for n in 0..p.len() {
                let _ = run(dissect, &flow(tcp, 1, 2), &[(true, &p[..n])]);
            }
        }
    }
}
