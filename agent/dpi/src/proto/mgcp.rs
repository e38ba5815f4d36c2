//! Media Gateway Control Protocol (MGCP, RFC 3435) over UDP (ports 2427
//! and 2727).
//!
//! A command is a text line `VERB transaction-id endpoint MGCP 1.0`
//! (verbs EPCF, CRCX, MDCX, DLCX, RQNT, NTFY, AUEP, AUCX, RSIP, and the
//! extensions' MESG), a response `code transaction-id [comment]` with a
//! three-digit code. Claimed on a command line, or on a response to a
//! command seen on the flow.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// MGCP.
const MGCP: Protocol = Protocol(94);
/// The command verbs.
const VERBS: [&[u8; 4]; 10] = [
    b"EPCF", b"CRCX", b"MDCX", b"DLCX", b"RQNT", b"NTFY", b"AUEP", b"AUCX", b"RSIP", b"MESG",
];

/// See the module's documentation.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if pkt.tcp {
        return Verdict::No;
    }
    if command(pkt.payload) {
        Verdict::Done(MGCP)
    } else {
        Verdict::No
    }
}

/// Whether `p` opens with an MGCP command line.
fn command(p: &[u8]) -> bool {
    let line = p.iter().position(|&b| b == b'\n').map_or(p, |i| &p[..i]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let (Some(verb), Some(id), Some(endpoint), Some(mgcp), Some(version), None) = (
        words.next(),
        words.next(),
        words.next(),
        words.next(),
        words.next(),
        words.next(),
    ) else {
        return false;
    };
    VERBS.iter().any(|v| verb == &v[..])
        && (1..=9).contains(&id.len())
        && id.iter().all(u8::is_ascii_digit)
        && endpoint.contains(&b'@')
        && mgcp == b"MGCP"
        && version.first().is_some_and(u8::is_ascii_digit)
        && version.iter().all(|&b| b.is_ascii_digit() || b == b'.')
}

/// An audit endpoint command (RFC 3435's example, section 2.3.10).
const AUEP: &str = "41554550203132303120616170732f31406767772e77686174657665722e6e6574204d47435020312e300d0a463a20412c200d0a";

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "mgcp",
    protocols: &[MGCP],
    tcp: false,
    udp: true,
    ports: &[2427, 2727],
    ports_only: false,
    first: |_, b| matches!(b, b'A' | b'C' | b'D' | b'E' | b'M' | b'N' | b'R'),
    run: dissect,
    samples: &[Sample {
        origin: "RFC 3435 section 2.3.10 example",
        tcp: false,
        server_port: 2427,
        packets: &[(true, AUEP)],
        protocol: MGCP,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    #[test]
    fn commands() {
        let f = flow(false, 2727, 2427);
        let (v, _) = run(dissect, &f, &[(true, &hex(AUEP))]);
        assert_eq!(v, [Verdict::Done(MGCP)]);
        let crcx = b"CRCX 1204 aaln/1@rgw-2567.whatever.net MGCP 1.0\nC: A3C47F21456789F0\n";
        let (v, _) = run(dissect, &f, &[(true, crcx)]);
        assert_eq!(v, [Verdict::Done(MGCP)]);
    }

    #[test]
    fn rejects_others() {
        let f = flow(false, 40000, 2427);
        for p in [
            &b"CRCX 1204 aaln/1@rgw MGCP\n"[..],
            b"NOTIFY * HTTP/1.1\r\n",
            b"AUEP x aaln/1@gw MGCP 1.0\n",
            b"RSIP 1 endpoint MGCP 1.0\n",
        ] {
            let (v, _) = run(dissect, &f, &[(true, p)]);
            assert_eq!(v, [Verdict::No], "{p:?}");
        }
    }
}
