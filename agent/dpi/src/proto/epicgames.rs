//! Epic Games online services over UDP (EpicGames), and League of
//! Legends: Wild Rift's UDP handshake (LoLWildRift).
//!
//! - Epic: the client opens with a word whose bit 3 is clear and 24 zero
//!   bytes at offsets 10-33 (it may repeat it); the server's first
//!   packet sets bit 3 of that word. A flow still asked on the server's
//!   packet sent only such openings before.
//! - Wild Rift: the client's 69-byte `04 00 00 00` opening answered by
//!   the server's 359-byte `10 00 00 00`.
//!
//! Epic's header often reads as RTP (version 2, payload type 26, the
//! same SSRC in every packet of a flow; epicgames.pcapng's port 47446
//! flow), and a client repeating its opening with the sequence number
//! stepped would be RTP's on its second packet. The registry asks this
//! dissector before RTP so that on any packet both could claim, Epic's
//! answer wins; today they cannot claim on the same packet (Epic only
//! on the server's first, RTP only on a direction's second), and the
//! samples check that such a flow ends up Epic's.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// Epic Games.
const EPIC_GAMES: Protocol = Protocol(340);
/// League of Legends: Wild Rift.
const LOL_WILD_RIFT: Protocol = Protocol(407);
/// Client packets a flow may send before the server answers.
const MAX_OPENINGS: u32 = 4;

/// `Done` on the server's answer to the client's opening (see the
/// module doc).
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let p = pkt.payload;
    if pkt.tcp || pkt.server_first || pkt.seen[1] > 0 {
        return Verdict::No;
    }
    let word = p
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    if pkt.from_client {
        let epic = p.len() >= 34
            && word.is_some_and(|w| w & 0x08 == 0)
            && p.get(10..34).is_some_and(|z| z.iter().all(|&b| b == 0));
        let lol = p.len() == 69 && word == Some(0x0400_0000) && pkt.seen[0] == 0;
        return if (epic || lol) && pkt.seen[0] < MAX_OPENINGS {
            Verdict::Maybe
        } else {
            Verdict::No
        };
    }
    match word {
        Some(0x1000_0000) if p.len() == 359 => Verdict::Done(LOL_WILD_RIFT),
        Some(w) if w & 0x08 != 0 && p.len() > 4 && w >> 8 != 0x0010_0000 => {
            Verdict::Done(EPIC_GAMES)
        }
        _ => Verdict::No,
    }
}

/// Whether a flow may start with `byte`: the client speaks first.
fn first(from_client: bool, _byte: u8) -> bool {
    from_client
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "epicgames",
    protocols: &[EPIC_GAMES, LOL_WILD_RIFT],
    tcp: false,
    udp: true,
    ports: &[],
    ports_only: false,
    first,
    run: dissect,
    samples: &[
        Sample {
            origin: "epicgames.pcapng frames 1,3,5,10",
            tcp: false,
            server_port: 15011,
            packets: &[
                (true, EPIC_1),
                (true, EPIC_3),
                (true, EPIC_5),
                (false, EPIC_10),
            ],
            protocol: EPIC_GAMES,
        },
        Sample {
            origin: "epicgames.pcapng frames 2,4,6,7",
            tcp: false,
            server_port: 15011,
            packets: &[
                (true, EPIC_2),
                (true, EPIC_4),
                (true, EPIC_6),
                (false, EPIC_7),
            ],
            protocol: EPIC_GAMES,
        },
        Sample {
            origin: "lol_wild_rift_udp.pcap frames 1,2",
            tcp: false,
            server_port: 15004,
            packets: &[(true, LOL_HELLO), (false, LOL_ANSWER)],
            protocol: LOL_WILD_RIFT,
        },
    ],
};

/// epicgames.pcapng frame 1: the client's opening.
const EPIC_1: &str = "471a200008982265740400000000000000000000000000000000000000000000\
             0000000000000010a13b8878381ff67a1d17";

/// epicgames.pcapng frame 3: its repetition.
const EPIC_3: &str = "471a200010982265740400000000000000000000000000000000000000000000\
             0000000000000050afdf1a91a0a7f5f71d";

/// epicgames.pcapng frame 5: and another.
const EPIC_5: &str = "471a200018982265740400000000000000000000000000000000000000000000\
             00000000000000f082a8ebce243aacc1b410";

/// epicgames.pcapng frame 10: the server's answer.
const EPIC_10: &str = "471a20080898226574040000000034b8935301348b0f8ea6ddf2e3e3e080da20\
             316ed5d4128a5a7929cc322c87b9b9e45a4bf3bd4a1c1f";

/// epicgames.pcapng frame 2: another client's opening (RTP-like: version 2, payload type 26).
const EPIC_2: &str = "871a200008982265740400000000000000000000000000000000000000000000\
             00000000000000d0bb56d02e3a73c35918";

/// epicgames.pcapng frame 4: its repetition.
const EPIC_4: &str = "871a200010982265740400000000000000000000000000000000000000000000\
             0000000000000030870a98c4c5e9fb91907b11";

/// epicgames.pcapng frame 6: and another.
const EPIC_6: &str = "871a200018982265740400000000000000000000000000000000000000000000\
             00000000000000a06b8db3ce6c5c23be1e";

/// epicgames.pcapng frame 7: the server's answer.
const EPIC_7: &str = "871a20080898226574040000000034b893530124268e15b31f4e06de6c28d042\
             57cee2a54d647d1513f3a2756648aa1578091cfe10";

/// lol_wild_rift_udp.pcap frame 1: Wild Rift's 69-byte opening.
const LOL_HELLO: &str = "04000000a1f57415bf29e6de395315ecdf659ab27d9a17c99b130868cc2f28ec\
             f98ded0801147de15cbd3ff2296a92b1d8c6354bc006303d0836609c7de0ca47\
             73b29d2381";

/// lol_wild_rift_udp.pcap frame 2: the server's 359-byte answer.
const LOL_ANSWER: &str = "10000000d3287b425bcb515dc91555090ba53fda59f6e0d4b9b1ee572e95706f\
             e14d1d41065cc7ccd4feadb8889b575fbb0612ea4b6f1dc68c2ea67ee9d640f8\
             a208da8fa3af45cb22ed4ffb40f91671057ebac5bc1663906e833130b556f131\
             00870831595ae9a6a5a1cbd108fc743e8a5733f2b2d51db441ad262867a9e935\
             18f5e99631ba12dcb7aac53d5f89d771d4f7795cffe374aeaae346e9dfd700c0\
             333658bbb3243d739745567fddd93f48cba0c6a1e24eb6b6a0f0c5e1d47872ac\
             97bdd6d1843e0b6c408bc6f45bc19dbff5ad7acb184cdb0807a674c35e9ea9c3\
             3bfb9ef9c0f124bee0c95513a8c90d976d6da7223b7579a8a6be69aa7b5298e1\
             c89342356439ff7ed5d5c7f802feacfbc934fbf4db1564e441c2148416670a19\
             0cd799a452271689cd4264226f213c80b6e561e83759aa458efcac1a657b4f78\
             46330dcf623536abbb9c661c7245d730aba86a49470ae44b08ca2c44dc764d94\
             0b9a901c2758f0";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// epicgames.pcapng frame 58 (head; zeros to its 55 bytes).
    fn opening() -> Vec<u8> {
        let mut p = hex("c71a2000089822657404");
        p.resize(55, 0);
        p
    }
    /// epicgames.pcapng frame 59 (head).
    const ANSWER: &str = "c71a2008089822657404000800009994a9dd03d4746388e135b4780654ea";

    #[test]
    fn epic_opening_and_answer() {
        let f = flow(false, 37989, 15011);
        let (v, _) = run(dissect, &f, &[(true, &opening()), (false, &hex(ANSWER))]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(EPIC_GAMES)]);
        let (v, _) = run(
            dissect,
            &f,
            &[
                (true, &opening()),
                (true, &opening()),
                (false, &hex(ANSWER)),
            ],
        );
        assert_eq!(
            v,
            [Verdict::Maybe, Verdict::Maybe, Verdict::Done(EPIC_GAMES)]
        );
        let (v, _) = run(dissect, &f, &[(true, &opening()), (false, &opening())]);
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
    }

    #[test]
    fn wild_rift_handshake() {
        let mut hello = hex("04000000a1f57415bf29e6de");
        hello.resize(69, 7);
        let mut answer = hex("10000000d3287b425bcb515d");
        answer.resize(359, 9);
        let f = flow(false, 47462, 15004);
        let (v, _) = run(dissect, &f, &[(true, &hello), (false, &answer)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(LOL_WILD_RIFT)]);
    }

    #[test]
    fn rejects_other_protocols() {
        let f = flow(false, 40000, 15011);
        for s in [
            crate::dissect::testing::DNS_QUERY,
            crate::dissect::testing::STUN_REQUEST,
            crate::dissect::testing::WIREGUARD_KEEPALIVE,
            crate::dissect::testing::OPENVPN_RESET,
            crate::dissect::testing::RTP,
        ] {
            let (v, _) = run(dissect, &f, &[(true, &hex(s))]);
            assert_eq!(v, [Verdict::No], "{s}");
        }
    }

    #[test]
    fn truncated_input_does_not_panic() {
        let p = hex(ANSWER);
        for n in 0..p.len() {
            let _ = run(
                dissect,
                &flow(false, 1, 2),
                &[(true, &opening()), (false, &p[..n])],
            );
        }
    }
}
