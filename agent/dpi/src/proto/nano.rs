//! Nano's node protocol over TCP.
//!
//! Every message opens with an 8-byte header: `R`, the network (`A`
//! test, `B` beta, `C` live, `X` dev), the maximum, used and minimum
//! protocol versions (min <= used <= max), the message type (keepalive
//! to asc_pull_ack) and two bytes of extensions. The first header of the
//! side that spoke first names the flow.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, by_opening};

/// Nano.
const NANO: Protocol = Protocol(420);
/// Network letters.
const NETWORKS: &[u8] = b"ABCX";
/// Protocol versions accepted.
const VERSIONS: std::ops::RangeInclusive<u8> = 0x0d..=0x30;
/// Message types: keepalive (2) to asc_pull_ack (0x0f).
const TYPES: std::ops::RangeInclusive<u8> = 0x02..=0x0f;
/// Payload packets a flow may take to show a whole header.
const MAX_PACKETS: u32 = 4;

/// `Done` on a valid first header (see the module doc).
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    by_opening(pkt, NANO, MAX_PACKETS, header)
}

/// Whether `s` opens with a valid header (`None`: too short to tell).
fn header(s: &[u8]) -> Option<bool> {
    if s.first().is_some_and(|&b| b != b'R') || s.get(1).is_some_and(|n| !NETWORKS.contains(n)) {
        return Some(false);
    }
    let &[_, _, max, using, min, kind, _, _] = s.first_chunk::<8>()?;
    Some(
        VERSIONS.contains(&max)
            && VERSIONS.contains(&min)
            && (min..=max).contains(&using)
            && TYPES.contains(&kind),
    )
}

/// Whether a flow may start with `byte`: `R`.
fn first(_from_client: bool, byte: u8) -> bool {
    byte == b'R'
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "nano",
    protocols: &[NANO],
    tcp: true,
    udp: false,
    ports: &[7075],
    ports_only: false,
    first,
    run: dissect,
    samples: &[Sample {
        origin: "nano.pcapng frames 4,6",
        tcp: true,
        server_port: 7075,
        packets: &[(true, HANDSHAKE), (false, REPLY)],
        protocol: NANO,
    }],
};

/// nano.pcapng frame 4: a node id handshake query (live network,
/// versions 0x12..=0x14).
const HANDSHAKE: &str = "52431414120a0500f0269f5e0110da0ffa6fb70e5c70c46ec3bd3de37cc66ac1\
             395fdde101f35544";
/// nano.pcapng frame 6: the node's handshake reply (first 40 bytes).
const REPLY: &str = "52431414120a0700d73fab5664f5ce71165f19708aaa74ce954cc05cb5bc0a47\
             bd71d33156b0c496";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    #[test]
    fn handshake_names_the_flow() {
        let f = flow(true, 59642, 7075);
        let (v, _) = run(dissect, &f, &[(true, &hex(HANDSHAKE))]);
        assert_eq!(v, [Verdict::Done(NANO)]);
        let (v, _) = run(dissect, &f, &[(false, &hex(REPLY))]);
        assert_eq!(v, [Verdict::Done(NANO)]);
    }

    #[test]
    fn rejects_bad_headers_and_other_protocols() {
        let f = flow(true, 59642, 7075);
        let mut p = hex(HANDSHAKE);
        p[4] = 0x15; // minimum above the used version
        let (v, _) = run(dissect, &f, &[(true, &p)]);
        assert_eq!(v, [Verdict::No]);
        let (v, _) = run(dissect, &f, &[(true, b"RTSP/1.0 200 OK\r\n")]);
        assert_eq!(v, [Verdict::No]);
        let (v, _) = run(dissect, &f, &[(true, b"R")]);
        assert_eq!(v, [Verdict::Maybe]);
    }

    #[test]
    fn truncated_input_does_not_panic() {
        let p = hex(HANDSHAKE);
        for n in 0..p.len() {
            let _ = run(dissect, &flow(true, 1, 2), &[(true, &p[..n])]);
        }
    }
}
