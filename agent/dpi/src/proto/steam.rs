//! Valve's Steam over UDP: LAN discovery and In-Home Streaming, the
//! game server query protocol, and Steam Datagram Relay pings.
//!
//! - Discovery (UDP 27036, often broadcast) opens with `ff ff ff ff 21 4c
//!   5f a0`: one packet names the flow.
//! - Steam Datagram Relay: a router ping request (`0x01`, a byte, then
//!   `sdping`) names the flow `SteamDatagramRelay`.
//! - `VS01` opens Steam voice/streaming packets.
//! - Server queries (A2S) and their replies start with `ff ff ff ff`; a
//!   query then a reply from the other side (each with a printable type
//!   byte) name the flow, as do the `39 18 00 00` / `3a 18 00 00`
//!   request and reply.
//!
//! Steam over HTTP and TLS is named by host name; the HTTP user agent
//! `Valve/Steam HTTP Client` is the HTTP dissector's.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// Steam.
const STEAM: Protocol = Protocol(74);
/// Steam Datagram Relay.
const SDR: Protocol = Protocol(235);
/// Discovery / In-Home Streaming header.
const DISCOVERY: [u8; 8] = [0xff, 0xff, 0xff, 0xff, 0x21, 0x4c, 0x5f, 0xa0];
/// Out-of-band header of the query protocol.
const OOB: [u8; 4] = [0xff; 4];
/// Packets a flow may take to show a reply.
const MAX_PACKETS: u32 = 6;

/// What one datagram is.
#[derive(PartialEq, Eq)]
enum Kind {
    Bad,
    /// Names the flow on its own.
    Sure(Protocol),
    /// A query: needs a reply of the same kind from the other side.
    Query,
    /// The `39 18` request.
    Ping,
    /// Its reply.
    Pong,
}

/// `Done` per the module doc.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if pkt.tcp {
        return Verdict::No;
    }
    let other_side_spoke = pkt.seen[usize::from(pkt.from_client)] > 0;
    match kind(pkt.payload) {
        Kind::Sure(p) => Verdict::Done(p),
        // A query answered by the other side (each packet so far was
        // one: else the dissector would have said no).
        Kind::Query if other_side_spoke => Verdict::Done(STEAM),
        Kind::Pong if other_side_spoke => Verdict::Done(STEAM),
        Kind::Query | Kind::Ping if pkt.packets() < MAX_PACKETS => Verdict::Maybe,
        _ => Verdict::No,
    }
}

/// Classifies one datagram.
fn kind(p: &[u8]) -> Kind {
    if p.starts_with(&DISCOVERY) && p.len() >= 16 {
        return Kind::Sure(STEAM);
    }
    if p.len() > 8 && p[0] == 0x01 && p.get(2..8) == Some(b"sdping") {
        return Kind::Sure(SDR);
    }
    if p.starts_with(b"VS01") && p.len() >= 8 {
        return Kind::Sure(STEAM);
    }
    if p.starts_with(&OOB) {
        // The type byte: A2S and master server messages are printable.
        return match p.get(4) {
            Some(t) if t.is_ascii_graphic() => Kind::Query,
            _ => Kind::Bad,
        };
    }
    match p {
        [0x39, 0x18, 0, 0] => Kind::Ping,
        [0x3a, 0x18, 0, 0, _, _, _, _] => Kind::Pong,
        _ => Kind::Bad,
    }
}

/// Whether a flow may start with `byte`: the first byte of a discovery
/// or query header (`ff`), a relay ping (`01`), `VS01`, or the `39 18` /
/// `3a 18` request and reply.
fn first(_from_client: bool, byte: u8) -> bool {
    matches!(byte, 0xff | 0x01 | b'V' | 0x39 | 0x3a)
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "steam",
    protocols: &[STEAM, SDR],
    tcp: false,
    udp: true,
    ports: &[27036, 27015],
    ports_only: false,
    first,
    run: dissect,
    samples: &[
        Sample {
            origin: "steam.pcapng frames 1",
            tcp: false,
            server_port: 27036,
            packets: &[(true, DISCOVERY_1)],
            protocol: STEAM,
        },
        Sample {
            origin: "steam.pcapng frames 27",
            tcp: false,
            server_port: 27045,
            packets: &[(true, SDPING_27)],
            protocol: SDR,
        },
    ],
};

/// steam.pcapng frame 1: a LAN discovery broadcast.
const DISCOVERY_1: &str = "ffffffff214c5fa01600000008fcd3f1e3b7bcbfcf76100118afca9baaa080d9\
             e4029200000008081006189cd30122096c6f63616c686f7374300238c8feffff\
             ffffffffff0140014a0e09362910060100100110dd9ff030580160d2f99bad06\
             70007a1146303a32463a37343a41443a34333a4635a2010e3137322e31372e32\
             32392e313834a2010e3139322e3136382e38382e323331aa010e3139352e3139\
             312e3135382e3934b80102c00100c801ccc587ad06d00102";

/// steam.pcapng frame 27: an SDR router ping.
const SDPING_27: &str = "0181736470696e677ebe627ec7288817000000000659566591d40d8c62410b00\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             00000000";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// steam.pcapng frame 2: a discovery broadcast.
    const DISCOVERY_PKT: &str =
        "ffffffff214c5fa01600000008fcd3f1e3b7bcbfcf76100018afca9baaa080d9e402020000000801";
    /// steam.pcapng frame 27: an SDR router ping (first 40 bytes).
    const SDPING: &str =
        "0181736470696e677ebe627ec7288817000000000659566591d40d8c62410b0000000000000000";

    #[test]
    fn discovery_and_relay_ping() {
        let f = flow(false, 27036, 27036);
        let (v, _) = run(dissect, &f, &[(true, &hex(DISCOVERY_PKT))]);
        assert_eq!(v, [Verdict::Done(STEAM)]);
        let f = flow(false, 46604, 27045);
        let (v, _) = run(dissect, &f, &[(true, &hex(SDPING))]);
        assert_eq!(v, [Verdict::Done(SDR)]);
    }

    #[test]
    fn server_query_needs_a_reply() {
        // Synthetic A2S_INFO query and its reply.
        let f = flow(false, 40000, 27015);
        let query = b"\xff\xff\xff\xffTSource Engine Query\0";
        let reply = b"\xff\xff\xff\xffI\x11My server\0";
        let (v, _) = run(dissect, &f, &[(true, query), (false, reply)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(STEAM)]);
        let (v, _) = run(dissect, &f, &[(true, query), (true, query)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Maybe]);
        let (v, _) = run(dissect, &f, &[(true, query), (false, b"\x00\x01")]);
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
    }

    #[test]
    fn rejects_other_protocols() {
        let f = flow(false, 40000, 27015);
        for s in [
            crate::dissect::testing::DNS_QUERY,
            crate::dissect::testing::STUN_REQUEST,
            crate::dissect::testing::WIREGUARD_KEEPALIVE,
            crate::dissect::testing::OPENVPN_RESET,
            crate::dissect::testing::RTP,
            "ffffffff00",
        ] {
            let (v, _) = run(dissect, &f, &[(true, &hex(s))]);
            assert_eq!(v, [Verdict::No], "{s}");
        }
    }

    #[test]
    fn truncated_input_does_not_panic() {
        let f = flow(false, 1, 2);
        for s in [DISCOVERY_PKT, SDPING] {
            let p = hex(s);
            for n in 0..p.len() {
                let _ = run(dissect, &f, &[(true, &p[..n]), (false, &p[..n])]);
            }
        }
    }
}
