//! eDonkey / eMule over TCP, and its UDP messages: the server protocol,
//! eMule's extensions and Kademlia (eMule's DHT, which nDPI names eDonkey
//! too).
//!
//! TCP: every message is a protocol byte (`0xe3` eDonkey, `0xc5` eMule
//! extensions, `0xd4` zlib-packed), a little-endian length of what
//! follows, and an opcode. The client's first message, then the
//! server's, each framed so (the length fitting a message, the opcode
//! known to start a session: hello, hello answer, login, server
//! message, ...), name the flow.
//!
//! UDP: every datagram is a protocol byte and an opcode: `0xe3` with a
//! server opcode (global search, sources, status, description), `0xc5`
//! with an eMule one (reask, queue full, callback, port test), `0xe4`
//! with a Kademlia one (v1 or v2: bootstrap, hello, request, search,
//! publish, firewall, buddy, ping), or `0xe5` (packed Kademlia) with a
//! Kademlia opcode and a zlib header. Each side must send such datagrams
//! only, and one from each side names the flow.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// eDonkey.
const EDONKEY: Protocol = Protocol(36);
/// Protocol bytes.
const PROTOCOLS: [u8; 3] = [0xe3, 0xc5, 0xd4];
/// UDP: eDonkey server opcodes (`0xe3`).
const SERVER_OPS: [u8; 10] = [0x92, 0x94, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0xa2, 0xa3];
/// UDP: eMule extension opcodes (`0xc5`).
const EMULE_OPS: [u8; 7] = [0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0xfe];
/// UDP: Kademlia opcodes, v1 and v2 (`0xe4`, `0xe5`).
const KAD_OPS: [u8; 36] = [
    0x00, 0x01, 0x08, 0x09, 0x10, 0x11, 0x18, 0x19, 0x20, 0x21, 0x22, 0x28, 0x29, 0x30, 0x33, 0x34,
    0x35, 0x38, 0x3b, 0x40, 0x43, 0x44, 0x45, 0x48, 0x4b, 0x4c, 0x50, 0x51, 0x52, 0x53, 0x58, 0x59,
    0x5a, 0x60, 0x61, 0x62,
];
/// UDP: datagrams a flow may take to hear from both sides.
const MAX_DATAGRAMS: u32 = 8;
/// Largest first message (a hello or login is small; a server list or
/// message can be a few kB).
const MAX_LEN: u32 = 256 * 1024;

/// What a direction's first bytes are.
enum Head {
    Bad,
    More,
    Ok,
}

/// `Done` once both sides opened with a framed message (TCP) or sent a
/// valid datagram (UDP).
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return udp(pkt);
    }
    if pkt.server_first {
        return Verdict::No;
    }
    match (head(pkt.client_stream), head(pkt.server_stream)) {
        (Head::Bad, _) | (_, Head::Bad) => Verdict::No,
        (Head::Ok, Head::Ok) => Verdict::Done(EDONKEY),
        _ if pkt.seen[0] + pkt.seen[1] < 8 => Verdict::Maybe,
        _ => Verdict::No,
    }
}

/// UDP: every datagram valid, and one from each side.
fn udp(pkt: &Packet<'_>) -> Verdict {
    if !datagram(pkt.payload) {
        return Verdict::No;
    }
    let other = pkt.seen[usize::from(pkt.from_client)];
    if other > 0 {
        Verdict::Done(EDONKEY)
    } else if pkt.packets() < MAX_DATAGRAMS {
        Verdict::Maybe
    } else {
        Verdict::No
    }
}

/// Whether `p` is an eDonkey, eMule or Kademlia datagram.
fn datagram(p: &[u8]) -> bool {
    match p {
        [0xe3, op, ..] => SERVER_OPS.contains(op),
        [0xc5, op, ..] => EMULE_OPS.contains(op),
        [0xe4, op, ..] => KAD_OPS.contains(op),
        // Packed: the opcode, then zlib's header (deflate, a 32K window).
        [0xe5, op, 0x78, flags, ..] => {
            KAD_OPS.contains(op) && u16::from_be_bytes([0x78, *flags]) % 31 == 0
        }
        _ => false,
    }
}

/// Reads a message header.
fn head(s: &[u8]) -> Head {
    match s {
        [] => Head::More,
        [proto, ..] if !PROTOCOLS.contains(proto) => Head::Bad,
        [_, l0, l1, l2, l3, op, ..] => {
            let len = u32::from_le_bytes([*l0, *l1, *l2, *l3]);
            if (1..=MAX_LEN).contains(&len) && *op != 0 {
                Head::Ok
            } else {
                Head::Bad
            }
        }
        _ => Head::More,
    }
}

/// Whether a flow may start with `byte`: the client's protocol byte
/// (TCP's, or UDP's `0xe4`/`0xe5` for Kademlia).
fn first(from_client: bool, byte: u8) -> bool {
    from_client && (PROTOCOLS.contains(&byte) || byte == 0xe4 || byte == 0xe5)
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "edonkey",
    protocols: &[EDONKEY],
    tcp: true,
    udp: true,
    ports: &[4661, 4662, 4665, 4672],
    ports_only: false,
    first,
    run: dissect,
    samples: &[
        Sample {
            origin: "edonkey.pcap frames 4,5",
            tcp: true,
            server_port: 7551,
            packets: &[(true, HELLO_4), (false, ANSWER_5)],
            protocol: EDONKEY,
        },
        Sample {
            origin: "built: a Kademlia 2 hello request and response (opcodes 0x11, 0x19)",
            tcp: false,
            server_port: 4672,
            packets: &[(true, KAD2_HELLO_REQ), (false, KAD2_HELLO_RES)],
            protocol: EDONKEY,
        },
    ],
};

/// Kademlia 2 hello request: `e4 11`, a 16-byte node id, TCP port 4662
/// (little-endian), version 8, no tags.
const KAD2_HELLO_REQ: &str = "e41100112233445566778899aabbccddeeff36120800";
/// Its response, from another node id.
const KAD2_HELLO_RES: &str = "e419ffeeddccbbaa9988776655443322110036120800";

/// edonkey.pcap frame 4: a hello.
const HELLO_4: &str = "e37700000001101b42cd5b940ed779c20ab755fe256f977d4967e38a4d080000\
             00020100010f005b43484e5d5b5665727943445d7866030100113c0000000201\
             00550a00786c206275696c643631030100ee0ce98914030100f9a24ba24b0301\
             00fa14421334030100fb00c00000030100fe940000005511ac22e110";

/// edonkey.pcap frame 5: the hello answer.
const ANSWER_5: &str = "e37f0000004c3a3544a8310e281d51ed5182f4cf6fd48c71f4cf7f1d08000000\
             0201000115005b43484e5d5b5665727943445d796f75726e616d65030100113c\
             000000030100f9891d891d030100fa1b421334030100feb4010000030100fb00\
             c00000020100550d0056657279434420303930333034030100ee0ce98914d43f\
             ce239210";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// edonkey.pcap frames 4 and 5 (heads): hello and hello answer.
    const HELLO: &str = "e37700000001101b42cd5b940ed779c20ab755fe256f977d";
    const ANSWER: &str = "e37f0000004c3a3544a8310e281d51ed5182f4cf6fd48c71";

    #[test]
    fn hello_and_answer() {
        let f = flow(true, 1754, 7551);
        let (v, _) = run(dissect, &f, &[(true, &hex(HELLO)), (false, &hex(ANSWER))]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(EDONKEY)]);
    }

    #[test]
    fn kademlia_over_udp_needs_both_sides() {
        let f = flow(false, 40000, 4672);
        let (req, res) = (hex(KAD2_HELLO_REQ), hex(KAD2_HELLO_RES));
        let (v, _) = run(dissect, &f, &[(true, &req), (false, &res)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(EDONKEY)]);
        let (v, _) = run(dissect, &f, &[(true, &req), (true, &req)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Maybe]);
        // Packed: a Kademlia opcode and a zlib header (78 da).
        let packed = hex("e52878da0102030405");
        let (v, _) = run(dissect, &f, &[(true, &req), (false, &packed)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(EDONKEY)]);
        // An unknown opcode, a bad zlib header.
        for s in ["e4ff00", "e52878db01", "e3010000"] {
            let (v, _) = run(dissect, &f, &[(true, &hex(s))]);
            assert_eq!(v, [Verdict::No], "{s}");
        }
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
    fn rejects_other_protocols() {
        let f = flow(true, 40000, 4662);
        for s in [
            crate::dissect::testing::TLS_HELLO_HEAD,
            crate::dissect::testing::HTTP_REQUEST_HEAD,
        ] {
            let (v, _) = run(dissect, &f, &[(true, &hex(s))]);
            assert_eq!(v, [Verdict::No], "{s}");
        }
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &hex(HELLO)), (false, b"HTTP/1.1 200")],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
    }

    #[test]
    fn truncated_input_does_not_panic() {
        let p = hex(HELLO);
        for n in 0..p.len() {
            let _ = run(
                dissect,
                &flow(true, 1, 2),
                &[(true, &p[..n]), (false, &p[..n])],
            );
        }
    }
}
