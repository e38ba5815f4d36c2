//! Ethereum peer to peer: the RLPx handshake over TCP and node discovery
//! v4 over UDP.
//!
//! - RLPx (EIP-8): each side opens with a 2-byte big-endian size, then
//!   that many bytes of ECIES ciphertext, which starts with an
//!   uncompressed public key (`0x04`). The client's auth and the
//!   server's ack both framed so name the flow; the auth alone does on
//!   the usual ports (30300-30305), as nDPI does. The pre-EIP-8 auth
//!   (307 bytes) and ack (210 bytes) are bare ECIES messages.
//! - Discovery v4: a 32-byte hash, a 65-byte signature whose last byte
//!   (the recovery id) is 0 or 1, a packet type (1-6: ping, pong,
//!   findnode, neighbours, ENR request, ENR response) and an RLP list
//!   that fits the datagram.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// Ethereum.
const ETHEREUM: Protocol = Protocol(354);
/// Smallest EIP-8 message: key, IV, MAC and some ciphertext.
const MIN_EIP8: usize = 65 + 16 + 32 + 64;
/// Largest EIP-8 handshake message read.
const MAX_EIP8: usize = 2048;
/// Pre-EIP-8 auth and ack sizes.
const LEGACY: [usize; 2] = [307, 210];
/// The usual devp2p ports.
const PORTS: std::ops::RangeInclusive<u16> = 30300..=30305;
/// Discovery v4 datagrams are at most this long.
const MAX_DISCOVERY: usize = 1280;

/// What a TCP direction's first bytes are.
enum Head {
    Bad,
    More,
    Ok,
}

/// `Done` per the module doc.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return if discovery(pkt.payload) {
            Verdict::Done(ETHEREUM)
        } else {
            Verdict::No
        };
    }
    if pkt.server_first {
        return Verdict::No;
    }
    match (head(pkt.client_stream), head(pkt.server_stream)) {
        (Head::Bad, _) | (_, Head::Bad) => Verdict::No,
        (Head::Ok, Head::Ok) => Verdict::Done(ETHEREUM),
        (Head::Ok, Head::More) if PORTS.contains(&pkt.flow.server_port) => Verdict::Done(ETHEREUM),
        _ if pkt.seen[0] + pkt.seen[1] < 6 => Verdict::Maybe,
        _ => Verdict::No,
    }
}

/// Reads the start of a handshake message.
fn head(stream: &[u8]) -> Head {
    match stream {
        [] | [_] | [_, _] => Head::More,
        [s0, s1, key, ..] => {
            let size = usize::from(u16::from_be_bytes([*s0, *s1]));
            if *key == 0x04 && (MIN_EIP8..=MAX_EIP8).contains(&size) {
                return Head::Ok;
            }
            if *s0 == 0x04 && LEGACY.contains(&stream.len()) {
                return Head::Ok;
            }
            if *s0 == 0x04 && stream.len() < LEGACY[0] {
                return Head::More;
            }
            Head::Bad
        }
    }
}

/// Whether `p` is a discovery v4 packet.
fn discovery(p: &[u8]) -> bool {
    if p.len() > MAX_DISCOVERY {
        return false;
    }
    let (Some(&recovery), Some(&kind), Some(&list)) = (p.get(96), p.get(97), p.get(98)) else {
        return false;
    };
    if recovery > 1 || !(1..=6).contains(&kind) || list < 0xc0 {
        return false;
    }
    let end = if list <= 0xf7 {
        Some(99 + usize::from(list - 0xc0))
    } else {
        let n = usize::from(list - 0xf7);
        p.get(99..99 + n)
            .filter(|_| n <= 2)
            .map(|len| 99 + n + len.iter().fold(0usize, |acc, &b| acc << 8 | usize::from(b)))
    };
    end.is_some_and(|end| end <= p.len() && end > 99)
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "ethereum",
    protocols: &[ETHEREUM],
    tcp: true,
    udp: true,
    ports: &[30303],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[
        Sample {
            origin: "ethereum.pcap frames 5",
            tcp: false,
            server_port: 30303,
            packets: &[(true, FINDNODE_5)],
            protocol: ETHEREUM,
        },
        Sample {
            origin: "ethereum.pcap frames 34,44",
            tcp: true,
            server_port: 30303,
            packets: &[(true, AUTH_34), (false, ACK_44)],
            protocol: ETHEREUM,
        },
    ],
};

/// ethereum.pcap frame 5: a discovery v4 findnode.
const FINDNODE_5: &str = "014ab767b8ce7fa520d9fae190eade7662866b01fde9d3703f00ac570c3002e1\
             cd44b69c8491ba1e3f29779fbf8942a3df1cc56a5907cbfe33a3b7b5dff9da90\
             481cca839c9ed3252123a695de06b4034d1285921d6d0862b51b2221bbaaf1d2\
             0103f847b8401b0724c55dfc6a8110dd1df3ea2d6c6f1833b4c6896e177c9a52\
             ba6a784643a1f4fb0e893944bf1481f86fe797fa070a4575e092b7dc7faf41c0\
             ad40f928aafb845e162060";

/// ethereum.pcap frame 34: an EIP-8 RLPx auth.
const AUTH_34: &str = "01ed043456d131b0e847cabbfe5055a522ddbd0d2cb3f2b2b180d3ddc81eb81b\
             117a99e14de9a910bc530c3cf203edad9d24b7febb81da6a446d612e49e76522\
             88fc43efc6fb5d974716a560c2402c617f12bd41b9f511939035610f5dd85b9d\
             0bf880cbfd3f49080a483cdacd633177b9b52f3c1bb759e4c3c6634cce853c1d\
             8c7325f0487ed68dcd675108604a7e4b59338356a450f97e0fbb0be489f251f5\
             7b01921dd5220c8475a1c55fc62bdcacde2ce7a42c4c12234c8a8c7e192dda63\
             0cce4a2a7061839e3c6d8e83df46b2fc169a3327f9f22a324a10a62cd48c4ac1\
             58c9041f555633bedbeb65b97a2c1b00682a75433b430820c8e4d97633e6e330\
             2b2ab7aee485177221f66bfb8e7c986d3ca8a4f28cef283268d84d99cb4a6b52\
             fd5371fd0209e402f5c5472407e472dd6e26f857d43425e687133c8c9ed0e1e1\
             08437a340b7c013a6e2ae4e321cbbef31cb57553c9fed4fde5cce973d6ac1570\
             1499ddcea37262a39fbc00504e7a090de6f16ea7d0814a3dddc2ea5a8c029ea4\
             e3d782c6310c6cf0aadc66ee2ce8672cbd37dbba8ecbd4ad753b3093329a3a0e\
             dadd61c366bae216f112c1b382de5a1d11c2ff27c54e0c8cd3624ee23213f7a9\
             a6c4fa39148baff552b92490b1ea050edc7d9e1aa07e48aabdf94a3af6601ec7\
             3ba5a8d8b071abdee5039b886a2d2b";

/// ethereum.pcap frame 44: its ack.
const ACK_44: &str = "01be04317cd977fb94bcbce65bd640579673395140ee977c6d4933defb3da4e9\
             a34a81280a3f58802f132e1b39564b276fe148dcf55e12f90651ab71cfe58db7\
             399f201c2771189a855b6e4fb99f77b20e46439d946901f0d02b43198ecf27ab\
             15514f0bf6c7a170b3ef18adf291caf31069d8962a9aee162bb9a48e99ebb300\
             22b2962bb709f28f7a6ac5559b048fb6725b9eb73ea075d6a9b6124d0d777bda\
             05c997976356aa7258c0983d8171d9bd354c51b857bf8ff84034b4049e8b3af5\
             728d94475a6d570fc329f9bcca4249a1c620fb66e31e8c6e172758b7ed274e33\
             008a5d4e6ba7f7af0dce51669e35bb1ed534a233bc248983618fda36018b0ba6\
             dfc8bc709c4fe2d5b6e37d77ffacc497810282f44b7c734e39ab5fb854f21701\
             c6b5ecd853bb3000f6cfa42a6d7a6a5db597ef5febadba03338d5a5aeba97911\
             217de8bbab1b0fbe44b0475b476cac0e6a0fda37e4f53dde254c7672e3047f3a\
             38df61a0cbadbd133b62be79cc27953919d61e21bd46f56cc20311077b5c1c4e\
             cf51bb0815cdc78a7f1d8c38ff5449f905bc0c5fe630489ca21a77a05641b209\
             3dc86c52fcd1a393b23331c264b02beac86509f07e11343ab5d71246b6d2f321";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// A discovery v4 ping (synthetic: zero hash and signature with
    /// recovery id 1, type 1, a 2-byte list).
    fn ping() -> Vec<u8> {
        let mut p = vec![0; 96];
        p.extend_from_slice(&[1, 1, 0xc2, 0x04, 0x05]);
        p
    }

    #[test]
    fn discovery_v4() {
        let f = flow(false, 30303, 30303);
        let (v, _) = run(dissect, &f, &[(true, &ping())]);
        assert_eq!(v, [Verdict::Done(ETHEREUM)]);
        // ethereum.pcap frame 5's header bytes (96-98: recovery id 1,
        // findnode, a list of 0x47 bytes), body zeroed.
        let mut p = vec![0; 96];
        p.extend_from_slice(&hex("0103f847"));
        p.resize(171, 0);
        let (v, _) = run(dissect, &f, &[(true, &p)]);
        assert_eq!(v, [Verdict::Done(ETHEREUM)]);
        let mut bad = ping();
        bad[96] = 2;
        let (v, _) = run(dissect, &f, &[(true, &bad)]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn rlpx_handshake() {
        // ethereum.pcap frame 34: an EIP-8 auth of 0x1ed bytes (head).
        let mut auth = hex("01ed04");
        auth.resize(495, 0x5a);
        let mut ack = hex("01a104");
        ack.resize(419, 0x33);
        let f = flow(true, 56615, 40000);
        let (v, _) = run(dissect, &f, &[(true, &auth), (false, &ack)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(ETHEREUM)]);
        let f = flow(true, 56615, 30303);
        let (v, _) = run(dissect, &f, &[(true, &auth)]);
        assert_eq!(v, [Verdict::Done(ETHEREUM)]);
    }

    #[test]
    fn rejects_other_protocols() {
        let f = flow(true, 40000, 30303);
        for s in [
            crate::dissect::testing::TLS_HELLO_HEAD,
            crate::dissect::testing::HTTP_REQUEST_HEAD,
        ] {
            let (v, _) = run(dissect, &f, &[(true, &hex(s))]);
            assert_eq!(v, [Verdict::No], "{s}");
        }
        let f = flow(false, 40000, 30303);
        for s in [
            crate::dissect::testing::DNS_QUERY,
            crate::dissect::testing::STUN_REQUEST,
            crate::dissect::testing::RTP,
        ] {
            let (v, _) = run(dissect, &f, &[(true, &hex(s))]);
            assert_eq!(v, [Verdict::No], "{s}");
        }
    }

    #[test]
    fn truncated_input_does_not_panic() {
        let p = ping();
        for n in 0..p.len() {
            let (v, _) = run(dissect, &flow(false, 1, 2), &[(true, &p[..n])]);
            assert_eq!(v, [Verdict::No]);
            let _ = run(dissect, &flow(true, 1, 2), &[(true, &p[..n])]);
        }
    }
}
