//! Avast's own protocols: its update/reputation channel over TCP (nDPI
//! 307 "AVAST") and its secure DNS over UDP (nDPI 263 "AVASTSecureDNS").
//!
//! - AVAST: a message opens with `NOSA` and its 2-byte length, which is
//!   the segment's (nDPI's rule); either direction.
//! - AVASTSecureDNS: the first datagram carries 00 01 32 09 at byte 11
//!   and `securedns` at byte 15 (nDPI's rule). Registered before DNS.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// nDPI's AVAST.
const AVAST: Protocol = Protocol(307);
/// nDPI's AVASTSecureDNS.
const AVAST_SECURE_DNS: Protocol = Protocol(263);
/// What opens an AVAST message.
const NOSA: &[u8] = b"NOSA";

/// One segment or datagram tells.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let p = pkt.payload;
    if pkt.tcp {
        let head = &p[..p.len().min(NOSA.len())];
        if !NOSA.starts_with(head) {
            return Verdict::No;
        }
        return match p.get(4..6) {
            Some(&[l0, l1]) if usize::from(u16::from_be_bytes([l0, l1])) == p.len() => {
                Verdict::Done(AVAST)
            }
            None if pkt.seen_here() == 0 => Verdict::Maybe,
            _ => Verdict::No,
        };
    }
    let secure_dns = pkt.seen == [0, 0]
        && p.len() >= 34
        && p[11..15] == [0, 1, 0x32, 0x09]
        && p[15..24].eq_ignore_ascii_case(b"securedns");
    if secure_dns {
        Verdict::Done(AVAST_SECURE_DNS)
    } else {
        Verdict::No
    }
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "avast",
    protocols: &[AVAST, AVAST_SECURE_DNS],
    tcp: true,
    udp: true,
    ports: &[80],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "avast.pcap frame 6",
        tcp: true,
        server_port: 80,
        packets: &[(false, "4e4f53410010010200000000e8e67a0c")],
        protocol: AVAST,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{DNS_QUERY, HTTP_REQUEST_HEAD, flow, hex, run};

    #[test]
    fn nosa_messages() {
        let f = flow(true, 64357, 80);
        // avast.pcap frame 6: the server's 16-byte message.
        let msg = hex("4e4f53410010010200000000e8e67a0c");
        let (v, meta) = run(dissect, &f, &[(false, &msg)]);
        assert_eq!(v, [Verdict::Done(AVAST)]);
        assert_eq!(meta, Metadata::default());
        // avast.pcap frame 4 (first 32 bytes; its length is 0x60).
        let mut hello = hex("4e4f5341006001010000030108b25a294252451400000000f82eb3a6aec43143");
        hello.resize(0x60, 0);
        let (v, _) = run(dissect, &f, &[(true, &hello)]);
        assert_eq!(v, [Verdict::Done(AVAST)]);
        hello.push(0);
        let (v, _) = run(dissect, &f, &[(true, &hello)]);
        assert_eq!(v, [Verdict::No]);
        let (v, _) = run(dissect, &f, &[(true, &hex(HTTP_REQUEST_HEAD))]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn secure_dns() {
        // Built after nDPI's rule.
        let mut p = hex("0102030405060708090a0b 00013209");
        p.extend(b"SecureDNS");
        p.resize(40, 0);
        let f = flow(false, 40000, 53);
        assert_eq!(
            run(dissect, &f, &[(true, &p)]).0,
            [Verdict::Done(AVAST_SECURE_DNS)]
        );
        assert_eq!(
            run(dissect, &f, &[(true, &hex(DNS_QUERY))]).0,
            [Verdict::No]
        );
    }
}
