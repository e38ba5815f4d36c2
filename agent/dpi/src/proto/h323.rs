//! H.323 (ITU-T H.323): H.225.0 call signalling (Q.931 in TPKT) and
//! H.245 control over TCP, H.225.0 RAS over UDP.
//!
//! TCP: the first message of a direction is a TPKT (RFC 1006: version 3,
//! reserved 0, a 16-bit length) holding either a Q.931 message (protocol
//! discriminator 8, a call reference of at most 3 bytes, a known message
//! type) or an H.245 PDU carrying H.245's protocol identifier (OID
//! 0.0.8.245). UDP: a RAS message carrying H.225.0's protocol identifier
//! (OID 0.0.8.2250) after its choice and sequence number.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// H.323.
const H323: Protocol = Protocol(158);
/// H.245's protocol identifier, BER length then OID 0.0.8.245.
const H245_OID: [u8; 5] = [0x06, 0x00, 0x08, 0x81, 0x75];
/// H.225.0's protocol identifier (0.0.8.2250), as in a RAS message.
const H225_OID: [u8; 5] = [0x06, 0x00, 0x08, 0x91, 0x4A];
/// Q.931 message types H.225.0 uses.
const Q931_TYPES: [u8; 16] = [
    0x01, 0x02, 0x03, 0x05, 0x07, 0x0D, 0x0F, 0x20, 0x45, 0x4D, 0x5A, 0x62, 0x6E, 0x75, 0x7B, 0x7D,
];
/// Bytes of an H.245 PDU searched for its protocol identifier.
const H245_SEARCH: usize = 16;

/// TCP: `Done` once the first TPKT of the direction that spoke says
/// Q.931 or H.245. UDP: `Done` on a RAS message.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        let p = pkt.payload;
        return if p.len() > 20 && p.get(4..9) == Some(&H225_OID[..]) {
            Verdict::Done(H323)
        } else {
            Verdict::No
        };
    }
    match tpkt(pkt.stream()) {
        Read::Yes => Verdict::Done(H323),
        Read::More if pkt.seen_here() < 3 => Verdict::Maybe,
        _ => Verdict::No,
    }
}

/// What the start of a stream says.
enum Read {
    Yes,
    More,
    No,
}

/// Whether `s` starts with a TPKT holding Q.931 or H.245.
fn tpkt(s: &[u8]) -> Read {
    let Some((&[3, 0, l0, l1], body)) = s.split_first_chunk::<4>() else {
        return match s {
            [] | [3] | [3, 0] | [3, 0, _] => Read::More,
            _ => Read::No,
        };
    };
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    if len < 7 {
        return Read::No;
    }
    let body = body.get(..len - 4).unwrap_or(body);
    let complete = body.len() == len - 4;
    // Q.931: discriminator, call reference length and value, type.
    if let [0x08, crl, rest @ ..] = body
        && *crl <= 3
    {
        return match rest.get(usize::from(*crl)) {
            Some(t) if Q931_TYPES.contains(t) => Read::Yes,
            None if !complete => Read::More,
            _ => Read::No,
        };
    }
    let head = body.get(..H245_SEARCH).unwrap_or(body);
    if head.windows(H245_OID.len()).any(|w| w == H245_OID) {
        Read::Yes
    } else if !complete && head.len() < H245_SEARCH {
        Read::More
    } else {
        Read::No
    }
}

/// h323.pcap frame 47: a Q.931 Setup (first 40 bytes).
const SETUP: &str = "0300007e0802000105040388c0a56c04018031377e00670520a8060008914a0003";
/// h323.pcap frame 25: an H.245 terminal capability set from the server.
const H245: &str = "0300001c0230010600088175000500801bc520401d00800000001bc5";
/// h323.pcap frame 59: a RAS gatekeeper request.
const RAS: &str = "02200000060008914a0004001102007c07f22200ae01003d0001030085c89a51208003014000";

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "h323",
    protocols: &[H323],
    tcp: true,
    udp: true,
    ports: &[1719, 1720],
    ports_only: false,
    first: crate::dissect::any_first,
    run: dissect,
    samples: &[
        Sample {
            origin: "h323.pcap frame 47",
            tcp: true,
            server_port: 1720,
            packets: &[(true, SETUP)],
            protocol: H323,
        },
        Sample {
            origin: "h323.pcap frame 25",
            tcp: true,
            server_port: 1232,
            packets: &[(false, H245)],
            protocol: H323,
        },
        Sample {
            origin: "h323.pcap frame 59",
            tcp: false,
            server_port: 1719,
            packets: &[(true, RAS)],
            protocol: H323,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    #[test]
    fn q931_setup_and_split_alerting() {
        let f = flow(true, 56837, 1720);
        let (v, _) = run(dissect, &f, &[(true, &hex(SETUP))]);
        assert_eq!(v, [Verdict::Done(H323)]);
        // h323.pcap frames 48 and 50: the server's TPKT header alone, then
        // its Q.931 Alerting.
        let head = hex("0300002b");
        let alerting =
            hex("08028001017e001f050380060008914a0002020120110000000000000000000000000000000000");
        let (v, _) = run(dissect, &f, &[(false, &head), (false, &alerting)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(H323)]);
    }

    #[test]
    fn h245_and_ras() {
        let (v, _) = run(dissect, &flow(true, 32804, 1232), &[(false, &hex(H245))]);
        assert_eq!(v, [Verdict::Done(H323)]);
        let (v, _) = run(dissect, &flow(false, 2034, 1719), &[(true, &hex(RAS))]);
        assert_eq!(v, [Verdict::Done(H323)]);
    }

    #[test]
    fn rejects_other_protocols() {
        use crate::dissect::testing::{HTTP_REQUEST_HEAD, TLS_HELLO_HEAD};
        let f = flow(true, 40000, 1720);
        // rdp.pcap-like X.224 connection request in TPKT (synthetic).
        let rdp = hex("030000130ee000000000000100080003000000");
        for p in [hex(TLS_HELLO_HEAD), hex(HTTP_REQUEST_HEAD), rdp] {
            let (v, _) = run(dissect, &f, &[(true, &p)]);
            assert_eq!(v, [Verdict::No]);
        }
        let f = flow(false, 40000, 1719);
        for src in [
            crate::dissect::testing::DNS_QUERY,
            crate::dissect::testing::STUN_REQUEST,
        ] {
            let (v, _) = run(dissect, &f, &[(true, &hex(src))]);
            assert_eq!(v, [Verdict::No]);
        }
    }

    #[test]
    fn truncated_input_does_not_panic() {
        for (tcp, src) in [(true, SETUP), (true, H245), (false, RAS)] {
            let p = hex(src);
            for n in 0..p.len() {
                run(dissect, &flow(tcp, 40000, 1720), &[(true, &p[..n])]);
            }
        }
    }
}
