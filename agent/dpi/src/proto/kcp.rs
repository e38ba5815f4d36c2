//! KCP, the ARQ protocol of skywind3000/kcp, usually over UDP.
//!
//! A datagram is one or more segments, each a 24-byte header
//! (conversation, command, fragment, window, timestamp, sequence and
//! unacknowledged numbers, data length; little-endian) and its data. The
//! command is push (81), ack (82), window probe (83) or window size (84);
//! the segments' lengths walk exactly to the end of the datagram, all
//! with the same conversation.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// KCP.
const KCP: Protocol = Protocol(385);
/// Size of a segment header.
const HEADER: usize = 24;
/// Segments read from one datagram.
const MAX_SEGMENTS: usize = 64;

/// `Done` on a datagram (TCP: a first segment) of valid KCP segments.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if segments(pkt.payload) {
        Verdict::Done(KCP)
    } else {
        Verdict::No
    }
}

/// Whether `p` is a sequence of KCP segments of one conversation filling
/// it exactly.
fn segments(p: &[u8]) -> bool {
    let Some(conv) = p.first_chunk::<4>() else {
        return false;
    };
    let mut rest = p;
    for _ in 0..MAX_SEGMENTS {
        let Some((header, data)) = rest.split_first_chunk::<HEADER>() else {
            return false;
        };
        let [c0, c1, c2, c3, cmd, ..] = *header;
        let [l0, l1, l2, l3] = [header[20], header[21], header[22], header[23]];
        if [c0, c1, c2, c3] != *conv || !(81..=84).contains(&cmd) {
            return false;
        }
        let len = u32::from_le_bytes([l0, l1, l2, l3]);
        let Some(next) = usize::try_from(len).ok().and_then(|n| data.get(n..)) else {
            return false;
        };
        if next.is_empty() {
            return true;
        }
        rest = next;
    }
    false
}

/// kcp.pcap frame 2: an ack.
const ACK: &str = "0a00000052007f0014000000000000000100000000000000";
/// kcp.pcap frame 5: two acks in one datagram.
const TWO_ACKS: &str = "0a000000520080002800000001000000030000000000000\
    00a0000005200800028000000020000000300000000000000";

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "kcp",
    protocols: &[KCP],
    tcp: true,
    udp: true,
    ports: &[],
    ports_only: false,
    first: crate::dissect::any_first,
    run: dissect,
    samples: &[
        Sample {
            origin: "kcp.pcap frame 2",
            tcp: false,
            server_port: 8000,
            packets: &[(false, ACK)],
            protocol: KCP,
        },
        Sample {
            origin: "kcp.pcap frame 5",
            tcp: false,
            server_port: 8000,
            packets: &[(false, TWO_ACKS)],
            protocol: KCP,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    #[test]
    fn one_and_several_segments() {
        let f = flow(false, 47356, 8000);
        for src in [ACK, TWO_ACKS] {
            let (v, _) = run(dissect, &f, &[(false, &hex(src))]);
            assert_eq!(v, [Verdict::Done(KCP)], "{src}");
        }
        // A push with its data (synthetic, 4 bytes).
        let push = hex("0a0000005100800014000000000000000000000004000000deadbeef");
        let (v, _) = run(dissect, &f, &[(true, &push)]);
        assert_eq!(v, [Verdict::Done(KCP)]);
        // Data one byte short or long: not KCP.
        let (v, _) = run(dissect, &f, &[(true, &push[..push.len() - 1])]);
        assert_eq!(v, [Verdict::No]);
        let mut long = push.clone();
        long.push(0);
        let (v, _) = run(dissect, &f, &[(true, &long)]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn rejects_other_protocols() {
        use crate::dissect::testing::*;
        let f = flow(false, 40000, 8000);
        for src in [
            DNS_QUERY,
            RTP,
            STUN_REQUEST,
            WIREGUARD_KEEPALIVE,
            OPENVPN_RESET,
        ] {
            let (v, _) = run(dissect, &f, &[(true, &hex(src))]);
            assert_eq!(v, [Verdict::No], "{src}");
        }
    }

    #[test]
    fn truncated_input_does_not_panic() {
        let p = hex(TWO_ACKS);
        for n in 0..p.len() {
            let (v, _) = run(dissect, &flow(false, 40000, 8000), &[(true, &p[..n])]);
            assert_eq!(v[0] == Verdict::Done(KCP), n == 24, "{n}");
        }
    }
}
