//! Game protocols that one packet's fixed header names, in a flow's
//! first few packets:
//!
//! - Nintendo (UDP): Switch peer-to-peer (PIA) packets open with `32 ab 98
//!   64 02`.
//! - GaijinEntertainment (UDP): War Thunder's 52-byte connect (`8f ff 00`
//!   then `82 ff 00 01`), or its telemetry (`app.start`, `app.stage`,
//!   `embeddedupdater.`).
//! - GenshinImpact (UDP): the KCP-style handshake of 20 bytes, `00 00 00
//!   ff`, zeros, a conversation id, `49 96 02 d2` (1234567890) and `ff ff
//!   ff ff`; the server's reply ends `14 51 45 45`.
//! - CoD_Mobile (UDP): a packet of more than 350 bytes opening `0xce`
//!   that names `LOC_PREFAB_LOADOUTNAME_1` (its port-bound ping is
//!   [`super::portgames`]').
//! - LoLWildRift (UDP): a 22-byte `01 02 c8 41` ... `41 30 42 31` packet.
//! - PathofExile (TCP): the client's login, `00 03 00`, a name, and `00 00
//!   00 00 40 00 00 01` at its end.
//! - TencentGames (TCP): the `33 66 00 0b 00 0b`, `43 66 aa 00`, `aa 00
//!   00 00` headers, or a length-prefixed zlib body.
//! - WorldOfWarcraft (TCP): `WORLD OF WARCRAFT CONNECTION` after a 2-byte
//!   length, or a login challenge naming `WoW` to port 3724.
//!
//! The weaker signatures that hold only on a game's ports are
//! [`super::portgames`]'.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// World of Warcraft.
const WOW: Protocol = Protocol(76);
/// Nintendo.
const NINTENDO: Protocol = Protocol(173);
/// Call of Duty: Mobile.
const COD_MOBILE: Protocol = Protocol(186);
/// Genshin Impact.
const GENSHIN: Protocol = Protocol(257);
/// Tencent games.
const TENCENT_GAMES: Protocol = Protocol(395);
/// Gaijin Entertainment.
const GAIJIN: Protocol = Protocol(396);
/// Path of Exile.
const PATH_OF_EXILE: Protocol = Protocol(403);
/// League of Legends: Wild Rift.
const LOL_WILD_RIFT: Protocol = Protocol(407);
/// Packets with payload read per flow.
const MAX_PACKETS: u32 = 4;

/// `Done` when a packet among the first few carries one of the headers
/// (see the module doc).
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let found = if pkt.tcp { tcp(pkt) } else { udp(pkt) };
    match found {
        Some(p) => Verdict::Done(p),
        None if pkt.packets() < MAX_PACKETS => Verdict::Maybe,
        None => Verdict::No,
    }
}

/// The big-endian `u32` at `at`.
fn be32(p: &[u8], at: usize) -> Option<u32> {
    p.get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The UDP headers.
fn udp(pkt: &Packet<'_>) -> Option<Protocol> {
    let p = pkt.payload;
    if p.len() > 48 && p.starts_with(&[0x32, 0xab, 0x98, 0x64, 0x02]) {
        return Some(NINTENDO);
    }
    if p.len() == 52 && p.starts_with(&[0x8f, 0xff, 0x00]) && be32(p, 4) == Some(0x82ff_0001) {
        return Some(GAIJIN);
    }
    if p.len() > 100
        && [&b"app.start"[..], b"app.stage", b"embeddedupdater."]
            .iter()
            .any(|m| p.starts_with(m))
    {
        return Some(GAIJIN);
    }
    if p.len() == 20
        && be32(p, 12) == Some(0x4996_02d2)
        && ((be32(p, 0) == Some(0xff) && be32(p, 4) == Some(0) && be32(p, 16) == Some(!0))
            || (be32(p, 0) == Some(0x145) && be32(p, 16) == Some(0x1451_4545)))
    {
        return Some(GENSHIN);
    }
    if p.len() > 350 && p[0] == 0xce && p.windows(24).any(|w| w == b"LOC_PREFAB_LOADOUTNAME_1") {
        return Some(COD_MOBILE);
    }
    if p.len() == 22 && be32(p, 0) == Some(0x0102_c841) && be32(p, 18) == Some(0x4130_4231) {
        return Some(LOL_WILD_RIFT);
    }
    None
}

/// The TCP headers, read from each direction's first segment.
fn tcp(pkt: &Packet<'_>) -> Option<Protocol> {
    let p = pkt.payload;
    if pkt.seen_here() == 0 {
        const WOW_HELLO: &[u8] = b"WORLD OF WARCRAFT CONNECTION";
        if p.len() == 50 && p.get(2..2 + WOW_HELLO.len()) == Some(WOW_HELLO) {
            return Some(WOW);
        }
        if pkt.from_client
            && pkt.flow.server_port == 3724
            && (41..70).contains(&p.len())
            && (p.get(4..7) == Some(b"WoW") || p.get(5..8) == Some(b"WoW"))
        {
            return Some(WOW);
        }
        let n = p.len();
        if pkt.from_client
            && (26..50).contains(&n)
            && p.get(..3) == Some(&[0, 3, 0])
            && p.get(6..9) == Some(&[0, 2, 0])
            && be32(p, n - 8) == Some(0)
            && be32(p, n - 4) == Some(0x4000_0001)
        {
            return Some(PATH_OF_EXILE);
        }
    }
    if p.len() > 50 {
        let tencent = (be32(p, 0) == Some(0x3366_000b) && p.get(4..6) == Some(&[0, 0x0b]))
            || (be32(p, 0) == Some(0x4366_aa00) && be32(p, 12) == Some(0x10e6_8601))
            || (be32(p, 0) == Some(0xaa00_0000) && be32(p, 10) == Some(0x10e6_8601))
            || (p.get(..2) == Some(&[0, 0])
                && p.get(2..4)
                    .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
                    == Some(p.len() - 4)
                && p.get(4..6) == Some(&[0x78, 0x01]));
        if tencent {
            return Some(TENCENT_GAMES);
        }
    }
    None
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "games",
    protocols: &[
        WOW,
        NINTENDO,
        COD_MOBILE,
        GENSHIN,
        TENCENT_GAMES,
        GAIJIN,
        PATH_OF_EXILE,
        LOL_WILD_RIFT,
    ],
    tcp: true,
    udp: true,
    ports: &[],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[
        Sample {
            origin: "nintendo.pcap frames 1",
            tcp: false,
            server_port: 49432,
            packets: &[(true, NINTENDO_PIA)],
            protocol: NINTENDO,
        },
        Sample {
            origin: "gaijin_warthunder.pcap frames 1",
            tcp: false,
            server_port: 20021,
            packets: &[(true, GAIJIN_CONNECT)],
            protocol: GAIJIN,
        },
        Sample {
            origin: "gaijin_warthunder.pcap frames 6",
            tcp: false,
            server_port: 20011,
            packets: &[(true, GAIJIN_TELEMETRY)],
            protocol: GAIJIN,
        },
        Sample {
            origin: "genshin-impact.pcap frames 1,2",
            tcp: false,
            server_port: 22101,
            packets: &[(true, GENSHIN_HELLO), (false, GENSHIN_REPLY)],
            protocol: GENSHIN,
        },
        Sample {
            origin: "codm.pcap frames 13",
            tcp: false,
            server_port: 7948,
            packets: &[(false, COD_LOADOUT)],
            protocol: COD_MOBILE,
        },
        Sample {
            origin: "lol_wild_rift_udp.pcap frames 7",
            tcp: false,
            server_port: 18001,
            packets: &[(true, LOL_HELLO)],
            protocol: LOL_WILD_RIFT,
        },
        Sample {
            origin: "path_of_exile.pcapng frames 4",
            tcp: true,
            server_port: 6112,
            packets: &[(true, POE_LOGIN)],
            protocol: PATH_OF_EXILE,
        },
        Sample {
            origin: "tencent_games.pcap frames 4",
            tcp: true,
            server_port: 65010,
            packets: &[(true, TENCENT_HELLO)],
            protocol: TENCENT_GAMES,
        },
        Sample {
            origin: "wow.pcap frames 54",
            tcp: true,
            server_port: 3724,
            packets: &[(false, WOW_HELLO)],
            protocol: WOW,
        },
    ],
};

/// nintendo.pcap frame 1: a Switch PIA packet.
const NINTENDO_PIA: &str = "32ab9864025603cb960133e0c648f83493fb68c9e9cdf041450509198b26bd1f\
             937ed8baffd356d26555b5d61f98094ed25399c7cfaaa44dd0f50aeb";

/// gaijin_warthunder.pcap frame 1: War Thunder's connect.
const GAIJIN_CONNECT: &str = "8fff000182ff00010000ffff000004b000010000000000ff0000000000000000\
             00001388000000000000000096990a4400260000";

/// gaijin_warthunder.pcap frame 6: `app.start` telemetry.
const GAIJIN_TELEMETRY: &str = "6170702e73746172742c656e763d70726f64756374696f6e2c63697263756974\
             3d70726f64756374696f6e2c6170706c69636174696f6e3d636c69656e742c70\
             726f6a6563743d7761727468756e6465722c706c6174666f726d3d6c696e7578\
             36342c686f73743d686f73745f636c69656e743a317c63";

/// genshin-impact.pcap frame 1: the handshake.
const GENSHIN_HELLO: &str = "000000ff0000000000000000499602d2ffffffff";

/// genshin-impact.pcap frame 2: the server's reply.
const GENSHIN_REPLY: &str = "00000145000318323a0da215499602d214514545";

/// codm.pcap frame 13: the loadout names, from the server.
const COD_LOADOUT: &str = "cea1c20d230500018c010098424344380c005943a00005a9e9e1cf0bd11a4509\
             005b00880a04130708c340e1ee8bba6d804cee82615b40504e3d9615cea1c206\
             5d060001ac0000282a46474849054001870240cac06403c46460e240cea18207\
             1e070001c40000282a4a4b4c4d06a0703e50f33d0bb501269bdad802289763ce\
             a1823747080001c4060074092a02f7003e11274c4f435f5052454641425f4c4f\
             41444f55544e414d455f31010349409a000115ab09d9018a68d1010f83d7015d\
             78361d2c380c002800a000280002012d0000032e020102e663022f010001126f\
             65023003127bfc02009a05fe02012290ff0202ef2b7c0601000069d5f0080001\
             320003b9bc9e000106aad4cc01495bce016afcd50134380c0026009800260035\
             3637381820c002092a22a2f06a12b9833057e15b412cd890bfd0c9a3c110cc40\
             f8f0059c1e07719c226cdb676274dca649b36862b6347540453ae183238dcd5d\
             720bcea1821f39090001c40300840402330003e93d9d4b3a380c009600580296\
             3b3c8ae463023d3e9879fa05033419bf9b00010a495bce018c68d1010c83d701\
             3f380c0008002000080040380c000c0030000c414243eb16b0406234b4c4c572\
             1f7d0d57c4e8c6a7a014bb240f4a4aa4c1c6e0de7de835cecdb5b68e91f47b22\
             32f03d3c5c";

/// lol_wild_rift_udp.pcap frame 7: the 22-byte opening.
const LOL_HELLO: &str = "0102c8410000000100010000001e0004000441304231";

/// path_of_exile.pcapng frame 4: the client's login.
const POE_LOGIN: &str = "000300377560000200096e4450495f54657374ec8fecf20000000040000001";

/// tencent_games.pcap frame 4: a `33 66 00 0b` message.
const TENCENT_HELLO: &str = "3366000b000b100100000000010000004c000000000203000027100000006500\
             0303000000143930383934393935363531343933323034333000000000000000\
             000000000300000000000000";

/// wow.pcap frame 54: the server's `WORLD OF WARCRAFT CONNECTION`.
const WOW_HELLO: &str = "3000574f524c44204f4620574152435241465420434f4e4e454354494f4e202d\
             2053455256455220544f20434c49454e5400";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    fn one(tcp: bool, ports: (u16, u16), payload: &[u8]) -> Verdict {
        run(dissect, &flow(tcp, ports.0, ports.1), &[(true, payload)]).0[0]
    }

    #[test]
    fn udp_games() {
        // nintendo.pcap frame 1 (head, padded to its 60 bytes).
        let mut nintendo = hex("32ab9864025603cb960133e0c648f83493fb68c9e9cdf041450509198b26");
        nintendo.resize(60, 0);
        assert_eq!(
            one(false, (52119, 49432), &nintendo),
            Verdict::Done(NINTENDO)
        );
        // gaijin_warthunder.pcap frame 1 (head, padded to 52 bytes).
        let mut gaijin = hex("8fff000182ff00010000ffff000004b000010000000000ff000000000000");
        gaijin.resize(52, 0);
        assert_eq!(one(false, (36929, 20021), &gaijin), Verdict::Done(GAIJIN));
        // genshin-impact.pcap frames 1 and 2.
        let hello = hex("000000ff0000000000000000499602d2ffffffff");
        assert_eq!(one(false, (58766, 22101), &hello), Verdict::Done(GENSHIN));
        let reply = hex("00000145000318323a0da215499602d214514545");
        assert_eq!(one(false, (58766, 22101), &reply), Verdict::Done(GENSHIN));
        // codm.pcap frame 13: the loadout names.
        assert_eq!(
            one(false, (38704, 7948), &hex(COD_LOADOUT)),
            Verdict::Done(COD_MOBILE)
        );
        // codm.pcap frame 8: the port-bound ping is not this module's.
        let ping = hex("bbb653ea96fdbb0370696e67");
        assert_eq!(one(false, (40282, 7500), &ping), Verdict::Maybe);
        // lol_wild_rift_udp.pcap frame 7.
        let lol = hex("0102c8410000000100010000001e0004000441304231");
        assert_eq!(
            one(false, (44513, 18001), &lol),
            Verdict::Done(LOL_WILD_RIFT)
        );
    }

    #[test]
    fn tcp_games() {
        // wow.pcap frame 54 (head, padded to 50 bytes).
        let mut wow = hex("3000574f524c44204f4620574152435241465420434f4e4e454354494f4e202d20");
        wow.resize(50, 0);
        let (v, _) = run(dissect, &flow(true, 39329, 3724), &[(false, &wow)]);
        assert_eq!(v, [Verdict::Done(WOW)]);
        // path_of_exile.pcapng frame 4.
        let poe = hex("000300377560000200096e4450495f54657374ec8fecf20000000040000001");
        assert_eq!(one(true, (36262, 6112), &poe), Verdict::Done(PATH_OF_EXILE));
        // tencent_games.pcap frame 4 (head, padded to its 76 bytes).
        let mut tencent = hex("3366000b000b100100000000010000004c000000000203000027100000006500");
        tencent.resize(76, 0);
        assert_eq!(
            one(true, (43300, 65010), &tencent),
            Verdict::Done(TENCENT_GAMES)
        );
    }

    #[test]
    fn gives_up_after_a_few_packets() {
        let junk = [0x5a; 64];
        let f = flow(false, 40000, 3724);
        let (v, _) = run(dissect, &f, &[(true, &junk[..]); 4]);
        assert_eq!(
            v,
            [Verdict::Maybe, Verdict::Maybe, Verdict::Maybe, Verdict::No]
        );
        let dns = hex(crate::dissect::testing::DNS_QUERY);
        let stun = hex(crate::dissect::testing::STUN_REQUEST);
        let rtp = hex(crate::dissect::testing::RTP);
        for p in [&dns, &stun, &rtp] {
            assert_eq!(one(false, (40000, 3724), p), Verdict::Maybe);
        }
    }

    #[test]
    fn truncated_input_does_not_panic() {
        let p = hex("000300377560000200096e4450495f54657374ec8fecf20000000040000001");
        for n in 0..p.len() {
            let _ = one(true, (1, 3724), &p[..n]);
            let _ = one(false, (1, 7500), &p[..n]);
        }
    }
}
