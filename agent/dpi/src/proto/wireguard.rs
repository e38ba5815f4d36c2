//! WireGuard over UDP.
//!
//! Every message starts with its type (1 to 4) and three zero bytes, and
//! has a fixed size: handshake initiation 148 bytes, response 92, cookie
//! reply 64, transport data at least 32 and a multiple of 16. Transport
//! data alone needs a second packet of the same direction with the same
//! receiver index and a higher counter.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// WireGuard.
const WIREGUARD: Protocol = Protocol(206);
/// Largest counter step between two transport messages taken as in order.
const MAX_STEP: u64 = 1024;
/// Packets of one direction after which transport data without a matching
/// second message is not WireGuard.
const MAX_TRIES: u32 = 4;

/// Per-flow state.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct State {
    /// Last transport message of each direction (client, server): receiver
    /// index and counter.
    last: [Option<(u32, u64)>; 2],
}

/// Done on a handshake message; on transport data once a direction repeats
/// its receiver index with a higher counter.
pub(crate) fn dissect(pkt: &Packet<'_>, scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let p = pkt.payload;
    let Some((&[kind, 0, 0, 0], _)) = p.split_first_chunk::<4>().filter(|_| !pkt.tcp) else {
        return Verdict::No;
    };
    match (kind, p.len()) {
        (1, 148) | (2, 92) | (3, 64) => Verdict::Done(WIREGUARD),
        (4, len) if len >= 32 && len % 16 == 0 => {
            // Type, reserved, receiver index, counter (little endian).
            let Some((&[_, _, _, _, r0, r1, r2, r3, ref counter @ ..], _)) =
                p.split_first_chunk::<16>()
            else {
                return Verdict::No;
            };
            let (receiver, counter) = (
                u32::from_le_bytes([r0, r1, r2, r3]),
                u64::from_le_bytes(*counter),
            );
            let dir = usize::from(!pkt.from_client);
            scratch.keep(
                |st: &mut State| match st.last[dir].replace((receiver, counter)) {
                    Some((r, c)) if r == receiver && counter > c && counter - c <= MAX_STEP => {
                        Verdict::Done(WIREGUARD)
                    }
                    _ if pkt.seen_here() + 1 >= MAX_TRIES => Verdict::No,
                    _ => Verdict::Maybe,
                },
            )
        }
        _ => Verdict::No,
    }
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "wireguard",
    protocols: &[Protocol(206)],
    tcp: false,
    udp: true,
    ports: &[51820],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "wireguard.pcap frames ,,,",
        tcp: false,
        server_port: 51820,
        packets: &[
            (
                true,
                "01000000d837d0305fcec7c8e5c8e2e3f7989eef60c228d82329d602b6b1e2bb\
             9d068f89cf9d4d4532780f6d27264f7b98701fdc27a4ec00aeb6becdbef2332f\
             1b4084cadb93823935c012ae255e7b25eff13940c321fa6bd66a2a87b061db14\
             30173e937f569349de2856dc5f2616763eeeafc0533b01dd965e7ec76976e28f\
             683d671200000000000000000000000000000000",
            ),
            (
                false,
                "0200000006f47dabd837d030b18d5550bd4042a37a46823ac08db1ec66839bc0\
             ca2d64bc15cd80232b66232faec24af8918de1060ff5c98e865d5f35f272214c\
             5260110dc4c61e32cdd8542100000000000000000000000000000000",
            ),
            (
                true,
                "0400000006f47dab0000000000000000a4ebc12ee3f990da18033a0789c04e27\
             00f6f5c271d42ac4b4d6262e666549b445a7436e829bffb6ac65f05648bc0c39\
             1fe7c5884874376127164940188f03dba67af8388eaab76c593628bf9dc7be03\
             346d912e916dad862545454701364f2d2486d7ced4c8642ce547ddb26ef6a46b",
            ),
            (
                false,
                "04000000d837d03000000000000000006f4f080e9f52691bbe948535f79c13ed\
             68f09145d523eedb087265f968082f70735729263eda627c7683cdc0b80a3356\
             d9536c9f0e2872797b5c81720ba0b8ea7233c6debf9f0fbee8f10ec18985b824\
             bf350f8b8180d08a64e6be9810089ac3d1363ed5e129ca1e0425cf7e94965659",
            ),
        ],
        protocol: Protocol(206),
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// wireguard.pcap frame 1: handshake initiation (148 bytes) from
    /// 10.9.0.1:43462.
    const INITIATION: &str = "01000000d837d0305fcec7c8e5c8e2e3f7989eef60c228d82329d602b6b1e2bb9d068f89\
        cf9d4d4532780f6d27264f7b98701fdc27a4ec00aeb6becdbef2332f1b4084cadb93823935c012ae255e7b25\
        eff13940c321fa6bd66a2a87b061db1430173e937f569349de2856dc5f2616763eeeafc0533b01dd965e7ec7\
        6976e28f683d671200000000000000000000000000000000";
    /// wireguard.pcap frame 9: transport data (keepalive, 32 bytes) from
    /// 10.9.0.1:43462, receiver 0xab7df406, counter 3.
    const DATA_9: &str = "0400000006f47dab03000000000000001956e2b6651dd4f59cb23092a0d09671";

    #[test]
    fn handshake() {
        let f = flow(false, 43462, 51820);
        let init = hex(INITIATION);
        let (v, _) = run(dissect, &f, &[(true, &init)]);
        assert_eq!(v, [Verdict::Done(WIREGUARD)]);
        // wireguard.pcap frame 2: handshake response (92 bytes).
        let response = hex(
            "0200000006f47dabd837d030b18d5550bd4042a37a46823ac08db1ec66839bc0ca2d64bc15cd8023\
             2b66232faec24af8918de1060ff5c98e865d5f35f272214c5260110dc4c61e32cdd854210000000000\
             0000000000000000000000",
        );
        assert_eq!(response.len(), 92);
        let (v, _) = run(dissect, &f, &[(false, &response)]);
        assert_eq!(v, [Verdict::Done(WIREGUARD)]);
        // A byte more or less is not a handshake.
        let (v, _) = run(dissect, &f, &[(true, &init[..147])]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn transport_data_needs_two_packets() {
        // wireguard.pcap frames 23 and 24: transport data from
        // 139.162.192.157:51820 (the second flow has no handshake),
        // receiver 0x8d6940be, counters 0x6b and 0x6c (first 48 bytes of
        // 800 and 144).
        let a = hex(
            "04000000be40698d6b00000000000000d509d95ad7408d354597c9afc3c4c2064484d35cbbac74dd559267aedd8401c7",
        );
        let b = hex(
            "04000000be40698d6c000000000000000a5a02caed5e91f584911630868ca27d89a74ec360ab459e8b3d289d9dc4d5ec",
        );
        let f = flow(false, 51820, 36116);
        let (v, _) = run(dissect, &f, &[(true, &a), (true, &b)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(WIREGUARD)]);
        // Replayed or reordered counters do not match.
        let (v, _) = run(dissect, &f, &[(true, &b), (true, &a), (true, &a)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Maybe, Verdict::Maybe]);
        // Two different receivers in one direction, then give up.
        let c = hex(DATA_9);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &a), (true, &c), (true, &a), (true, &c)],
        );
        assert_eq!(
            v,
            [Verdict::Maybe, Verdict::Maybe, Verdict::Maybe, Verdict::No]
        );
        // Not a multiple of 16.
        let (v, _) = run(dissect, &f, &[(true, &a[..40])]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn rejects_other_protocols() {
        let f = flow(false, 40000, 51820);
        let stun = hex(crate::dissect::testing::STUN_REQUEST);
        let ovpn = hex(crate::dissect::testing::OPENVPN_RESET);
        let rtp = hex(crate::dissect::testing::RTP);
        for p in [&stun, &ovpn, &rtp] {
            let (v, _) = run(dissect, &f, &[(true, p)]);
            assert_eq!(v, [Verdict::No]);
        }
        let (v, _) = run(
            dissect,
            &flow(true, 40000, 51820),
            &[(true, &hex(INITIATION))],
        );
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn truncated_input_does_not_panic() {
        let f = flow(false, 43462, 51820);
        for src in [INITIATION, DATA_9] {
            let p = hex(src);
            for n in 0..=p.len() {
                run(dissect, &f, &[(true, &p[..n]), (true, &p[..n])]);
            }
        }
    }
}
