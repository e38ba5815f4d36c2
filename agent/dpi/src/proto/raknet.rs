//! RakNet over UDP (Minecraft Bedrock, Roblox and many other games).
//!
//! Offline messages (pings, pongs, the open connection handshake) carry
//! a fixed 16-byte magic at an offset set by their type: one such
//! packet names the flow. Roblox's variant pads its first, full-MTU
//! packets and moves the magic (offsets 1, 9, 17 or 32). Connected
//! traffic is frame sets (`0x80..=0x8d`: a 3-byte sequence number, then
//! frames whose header and bit length must add up to the packet) and
//! ACK/NACK records; two such packets name the flow. Every packet must
//! parse: a flow still asked has matched on each packet so far.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// RakNet.
const RAKNET: Protocol = Protocol(286);
/// The offline message magic.
const MAGIC: [u8; 16] = [
    0x00, 0xff, 0xff, 0x00, 0xfe, 0xfe, 0xfe, 0xfe, 0xfd, 0xfd, 0xfd, 0xfd, 0x12, 0x34, 0x56, 0x78,
];
/// Payloads at least this long are padded to the MTU (the custom variant).
const FULL_MTU: usize = 1200;
/// Largest MTU a handshake may announce.
const MAX_MTU: u16 = 1500;
/// Packets a flow may take to show enough.
const MAX_PACKETS: u32 = 8;
/// Frames or records read from one packet.
const MAX_ITEMS: usize = 64;

/// What one packet is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Not RakNet.
    Bad,
    /// An offline message with its magic: RakNet.
    Offline,
    /// A frame set or ACK/NACK that parses to its end.
    Connected,
    /// A small connected control message (ping, pong, request,
    /// disconnect): consistent, weak alone.
    Control,
}

/// `Done` on an offline message or a second connected packet (see the
/// module doc).
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if pkt.tcp {
        return Verdict::No;
    }
    let earlier = pkt.seen[0] + pkt.seen[1];
    match kind(pkt.payload) {
        Kind::Offline => Verdict::Done(RAKNET),
        Kind::Connected if earlier >= 1 => Verdict::Done(RAKNET),
        Kind::Control if earlier >= 3 => Verdict::Done(RAKNET),
        Kind::Connected | Kind::Control if earlier + 1 < MAX_PACKETS => Verdict::Maybe,
        _ => Verdict::No,
    }
}

/// Classifies one datagram.
fn kind(p: &[u8]) -> Kind {
    let magic_at = |off: usize| p.get(off..off + MAGIC.len()) == Some(&MAGIC[..]);
    if p.len() >= FULL_MTU && [1, 9, 17, 32].into_iter().any(magic_at) {
        return Kind::Offline;
    }
    let Some(&id) = p.first() else {
        return Kind::Bad;
    };
    let offline = match id {
        // Unconnected ping (time, magic, guid).
        0x01 | 0x02 => p.len() >= 25 && magic_at(9),
        // Open connection request 1: magic, protocol version, padding.
        0x05 => magic_at(1) && p.get(17).is_some_and(|&v| v <= 20),
        // Open connection reply 1: magic, guid, security, MTU.
        0x06 => magic_at(1) && p.len() >= 28 && mtu_ok(p, p.len() - 2),
        // Open connection request 2 / reply 2: magic, then an address.
        0x07 | 0x08 => magic_at(1) && p.len() >= 34,
        // Incompatible protocol version: version, magic, guid.
        0x19 => magic_at(2) && p.len() == 26,
        // Unconnected pong: time, guid, magic, a string.
        0x1c => {
            magic_at(17)
                && p.get(33..35)
                    .is_some_and(|l| usize::from(u16::from_be_bytes([l[0], l[1]])) + 35 == p.len())
        }
        _ => false,
    };
    if offline {
        return Kind::Offline;
    }
    match id {
        0x80..=0x8d if frame_set(p) => Kind::Connected,
        0xa0 | 0xc0 if acks(p) => Kind::Connected,
        0x00 if p.len() == 8 => Kind::Control,
        0x03 if p.len() == 16 => Kind::Control,
        0x09 if p.len() == 16 => Kind::Control,
        _ => Kind::Bad,
    }
}

/// Whether the big-endian MTU at `at` is plausible.
fn mtu_ok(p: &[u8], at: usize) -> bool {
    p.get(at..at + 2)
        .is_some_and(|m| (400..=MAX_MTU).contains(&u16::from_be_bytes([m[0], m[1]])))
}

/// Whether `p` is a frame set whose frames end exactly at its end.
fn frame_set(p: &[u8]) -> bool {
    let mut at = 4;
    for _ in 0..MAX_ITEMS {
        let Some(&[flags, b0, b1]) = p.get(at..at + 3) else {
            return false;
        };
        let bits = usize::from(u16::from_be_bytes([b0, b1]));
        if flags & 0x0f != 0 || bits == 0 {
            return false;
        }
        let reliability = flags >> 5;
        at += 3;
        if (2..=4).contains(&reliability) || reliability == 6 || reliability == 7 {
            at += 3; // reliable message index
        }
        if reliability == 1 || reliability == 4 {
            at += 3; // sequence index
        }
        if matches!(reliability, 1 | 3 | 4 | 7) {
            at += 4; // order index and channel
        }
        if flags & 0x10 != 0 {
            at += 10; // fragment count, id, index
        }
        at += bits.div_ceil(8);
        if at == p.len() {
            return true;
        }
        if at + 3 > p.len() {
            return false;
        }
    }
    false
}

/// Whether `p` is an ACK or NACK whose records end exactly at its end.
fn acks(p: &[u8]) -> bool {
    let Some(&[c0, c1]) = p.get(1..3) else {
        return false;
    };
    let count = usize::from(u16::from_be_bytes([c0, c1]));
    if count == 0 || count > MAX_ITEMS {
        return false;
    }
    let mut at = 3;
    for _ in 0..count {
        at += match p.get(at) {
            Some(0) => 7,
            Some(1) => 4,
            _ => return false,
        };
    }
    at == p.len()
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "raknet",
    protocols: &[RAKNET],
    tcp: false,
    udp: true,
    ports: &[19132, 19133],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[
        Sample {
            origin: "raknet.pcap frames 2",
            tcp: false,
            server_port: 60030,
            packets: &[(false, REPLY1_2)],
            protocol: RAKNET,
        },
        Sample {
            origin: "raknet.pcap frames 5,6",
            tcp: false,
            server_port: 60030,
            packets: &[(true, FRAME_SET_5), (false, ACK_6)],
            protocol: RAKNET,
        },
        Sample {
            origin: "roblox.pcapng frames 1",
            tcp: false,
            server_port: 63862,
            packets: &[(true, ROBLOX_1)],
            protocol: RAKNET,
        },
    ],
};

/// raknet.pcap frame 2: open connection reply 1, from the server.
const REPLY1_2: &str = "0600ffff00fefefefefdfdfdfd12345678000591a5360522200005d4";

/// raknet.pcap frame 5: a frame set.
const FRAME_SET_5: &str = "840000004000900000000900000000490f027c0000000000002ef800";

/// raknet.pcap frame 6: its ACK.
const ACK_6: &str = "c0000101000000";

/// roblox.pcapng frame 1: Roblox's full-MTU opening, magic at offset 1 after a custom id.
const ROBLOX_1: &str = "7b00ffff00fefefefefdfdfdfd12345678050000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             000000000000000000000000";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// raknet.pcap frame 2: open connection reply 1.
    const REPLY1: &str = "0600ffff00fefefefefdfdfdfd12345678000591a5360522200005d4";
    /// raknet.pcap frame 3: open connection request 2.
    const REQUEST2: &str = "0700ffff00fefefefefdfdfdfd12345678046b66dc32ea7e024000000000490f027c";
    /// raknet.pcap frame 5: a frame set with one reliable frame.
    const FRAME_SET: &str = "840000004000900000000900000000490f027c0000000000002ef800";
    /// raknet.pcap frame 6: an ACK.
    const ACK: &str = "c0000101000000";
    /// raknet.pcap frame 46: an unreliable frame set.
    const FRAME_SET2: &str = "8402000000008803000000000015e95e000000130c201546";

    #[test]
    fn offline_messages_name_the_flow() {
        let f = flow(false, 44501, 60030);
        for m in [REPLY1, REQUEST2] {
            let (v, _) = run(dissect, &f, &[(true, &hex(m))]);
            assert_eq!(v, [Verdict::Done(RAKNET)]);
        }
        // Roblox (roblox.pcapng frame 1): a full-MTU packet, custom id.
        let mut roblox = hex("7b00ffff00fefefefefdfdfdfd1234567805");
        roblox.resize(1356, 0);
        let (v, _) = run(dissect, &f, &[(true, &roblox)]);
        assert_eq!(v, [Verdict::Done(RAKNET)]);
        // Unconnected ping (synthetic: id, time, magic, guid).
        let mut ping = hex("01 0000000000001234");
        ping.extend_from_slice(&MAGIC);
        ping.extend_from_slice(&[7; 8]);
        let (v, _) = run(dissect, &f, &[(true, &ping)]);
        assert_eq!(v, [Verdict::Done(RAKNET)]);
    }

    #[test]
    fn connected_traffic_takes_two_packets() {
        let f = flow(false, 44501, 60030);
        let (v, _) = run(dissect, &f, &[(true, &hex(FRAME_SET)), (false, &hex(ACK))]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(RAKNET)]);
        let p = hex(FRAME_SET2);
        let (v, _) = run(dissect, &f, &[(false, &p), (false, &p)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(RAKNET)]);
    }

    #[test]
    fn rejects_other_protocols() {
        let f = flow(false, 40000, 19132);
        for s in [
            crate::dissect::testing::DNS_QUERY,
            crate::dissect::testing::STUN_REQUEST,
            crate::dissect::testing::WIREGUARD_KEEPALIVE,
            crate::dissect::testing::OPENVPN_RESET,
            crate::dissect::testing::RTP,
            "c0000101000000ff",
            "8400000040",
        ] {
            let (v, _) = run(dissect, &f, &[(true, &hex(s))]);
            assert_eq!(v, [Verdict::No], "{s}");
        }
    }

    #[test]
    fn truncated_input_does_not_panic() {
        let f = flow(false, 1, 2);
        for s in [REPLY1, REQUEST2, FRAME_SET, ACK] {
            let p = hex(s);
            for n in 0..p.len() {
                let _ = run(dissect, &f, &[(true, &p[..n]), (false, &p[..n])]);
            }
        }
    }
}
