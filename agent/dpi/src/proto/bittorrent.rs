//! BitTorrent: the peer wire handshake (TCP, or inside uTP over UDP),
//! uTP (BEP 29), the DHT (BEP 5) and the UDP tracker protocol (BEP 15).
//!
//! The handshake is `\x13BitTorrent protocol`, 8 reserved bytes and the
//! 20-byte info hash (`meta.bt_info_hash`); on TCP it opens a stream, or
//! starts a segment after a message stream encryption exchange that chose
//! plain text. uTP needs a packet from each side with matching connection
//! ids; a DHT message is a whole bencoded dictionary of a known shape; a
//! tracker connect request carries a fixed protocol id.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// BitTorrent.
const BITTORRENT: Protocol = Protocol(37);
/// The start of the peer wire handshake.
const HANDSHAKE: &[u8; 20] = b"\x13BitTorrent protocol";
/// How DHT messages start: query arguments, response, error, response with
/// the requester's address first (BEP 42).
const DHT: [&[u8]; 4] = [b"d1:ad2:id20:", b"d1:rd2:id20:", b"d1:eli", b"d2:ip"];
/// The UDP tracker protocol id, opening a connect request.
const TRACKER_MAGIC: [u8; 8] = 0x0417_2710_1980_u64.to_be_bytes();
/// Sizes of the first message of a message stream encryption (MSE)
/// handshake: a 96-byte public key and up to 512 bytes of padding.
const MSE_FIRST: std::ops::RangeInclusive<usize> = 96..=608;
/// Payload packets a claimed flow is read for an info hash.
const MAX_PACKETS: u32 = 10;
/// Nesting allowed in a bencoded value.
const MAX_DEPTH: u8 = 8;

/// Per-flow state.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct State {
    /// First uTP packet of each direction (client, server): connection id.
    utp: [Option<u16>; 2],
    /// TCP: the client opened with what may be an MSE handshake.
    mse: bool,
    /// The flow is claimed; still looking for the info hash.
    found: bool,
}

/// Claims a flow on a handshake, a DHT message, a tracker connect request
/// or uTP from both sides; done once the info hash is known or after
/// [`MAX_PACKETS`] packets.
pub(crate) fn dissect(pkt: &Packet<'_>, scratch: &mut Scratch, meta: &mut Metadata) -> Verdict {
    scratch.keep(|st: &mut State| step(pkt, st, meta))
}

/// [`dissect`] on the flow's state.
fn step(pkt: &Packet<'_>, st: &mut State, meta: &mut Metadata) -> Verdict {
    let packets = pkt.packets();
    let mut maybe = false;
    let mut handshake_at = None;
    if pkt.tcp {
        let stream = pkt.stream();
        // Each side opens an MSE handshake with a key and padding.
        if pkt.seen_here() == 0 {
            let opened = if pkt.from_client {
                packets == 1
            } else {
                st.mse
            };
            st.mse = opened && MSE_FIRST.contains(&pkt.payload.len());
        }
        if stream.starts_with(HANDSHAKE) {
            handshake_at = Some(stream);
        } else if pkt.payload.starts_with(HANDSHAKE) {
            handshake_at = Some(pkt.payload);
        }
        maybe = st.mse || !stream.is_empty() && HANDSHAKE.starts_with(stream);
    } else if let Some(utp) = utp(pkt.payload) {
        if let Some(data) = utp.data.filter(|d| d.starts_with(HANDSHAKE)) {
            handshake_at = Some(data);
        }
        let dir = usize::from(!pkt.from_client);
        let near = |other: u16| matches!(utp.connection.wrapping_sub(other), 0 | 1 | 0xFFFF);
        if st.utp[1 - dir].is_some_and(near) {
            st.found = true;
        }
        maybe = st.utp[dir].is_none_or(near);
        st.utp[dir].get_or_insert(utp.connection);
    } else if dht(pkt.payload) || connect(pkt.payload) {
        st.found = true;
    } else if let Some(hash) = announce(pkt.payload).filter(|_| st.found && pkt.from_client) {
        meta.bt_info_hash = Some(hash);
        return Verdict::Done(BITTORRENT);
    }
    if let Some(b) = handshake_at {
        st.found = true;
        if let Some(hash) = b.get(28..48).and_then(|h| <[u8; 20]>::try_from(h).ok()) {
            meta.bt_info_hash = Some(hash);
            return Verdict::Done(BITTORRENT);
        }
    }
    if st.found {
        if packets >= MAX_PACKETS {
            Verdict::Done(BITTORRENT)
        } else {
            Verdict::Found(BITTORRENT)
        }
    } else if maybe && packets < MAX_PACKETS {
        Verdict::Maybe
    } else {
        Verdict::No
    }
}

/// A valid uTP packet.
struct Utp<'a> {
    /// Connection id.
    connection: u16,
    /// Payload of a data packet.
    data: Option<&'a [u8]>,
}

/// The uTP packet in `b`: version 1, a known type, a valid extension
/// chain, and payload exactly in data packets.
fn utp(b: &[u8]) -> Option<Utp<'_>> {
    let (&[type_version, mut extension, c0, c1], rest) = b.split_first_chunk::<4>()?;
    // Timestamps, window, sequence and acknowledgement numbers.
    let mut rest = rest.get(16..)?;
    let kind = type_version >> 4;
    if type_version & 0x0F != 1 || kind > 4 {
        return None;
    }
    // Extensions: selective ack (a multiple of 4 bytes), extension bits (8).
    for _ in 0..4 {
        if extension == 0 {
            break;
        }
        let (&[next, len], data) = rest.split_first_chunk::<2>()?;
        let len_ok = match extension {
            1 => len >= 4 && len % 4 == 0,
            2 => len == 8,
            _ => false,
        };
        rest = data.get(usize::from(len)..).filter(|_| len_ok)?;
        extension = next;
    }
    // Only data packets (type 0) carry payload.
    if extension != 0 || (kind == 0) == rest.is_empty() {
        return None;
    }
    Some(Utp {
        connection: u16::from_be_bytes([c0, c1]),
        data: (kind == 0).then_some(rest),
    })
}

/// True when `b` is a whole bencoded dictionary shaped like a DHT message.
fn dht(b: &[u8]) -> bool {
    DHT.iter().any(|start| b.starts_with(start)) && bencoded(b, MAX_DEPTH) == Some(b.len())
}

/// The length of the bencoded value at the start of `b`.
fn bencoded(b: &[u8], depth: u8) -> Option<usize> {
    match *b.first()? {
        b'i' => {
            let end = b.iter().position(|&c| c == b'e')?;
            let digits = b.get(1..end)?;
            let digits = digits.strip_prefix(b"-").unwrap_or(digits);
            (!digits.is_empty() && digits.iter().all(u8::is_ascii_digit)).then_some(end + 1)
        }
        open @ (b'l' | b'd') if depth > 0 => {
            let mut at = 1;
            for item in 0..b.len() {
                let rest = b.get(at..)?;
                if rest.first() == Some(&b'e') {
                    return Some(at + 1);
                }
                // Dictionary keys are strings.
                if open == b'd' && item % 2 == 0 && !rest.first()?.is_ascii_digit() {
                    return None;
                }
                at += bencoded(rest, depth - 1)?;
            }
            None
        }
        b'0'..=b'9' => {
            let colon = b.iter().take(8).position(|&c| c == b':')?;
            let len: usize = std::str::from_utf8(b.get(..colon)?).ok()?.parse().ok()?;
            let end = (colon + 1).checked_add(len)?;
            (end <= b.len()).then_some(end)
        }
        _ => None,
    }
}

/// True for a UDP tracker connect request: protocol id, action 0,
/// transaction id.
fn connect(b: &[u8]) -> bool {
    b.len() == 16 && b.starts_with(&TRACKER_MAGIC) && b.get(8..12) == Some(&[0; 4])
}

/// The info hash of a UDP tracker announce request (action 1).
fn announce(b: &[u8]) -> Option<[u8; 20]> {
    if b.len() < 98 || b.get(8..12)? != [0, 0, 0, 1] {
        return None;
    }
    b.get(16..36)?.try_into().ok()
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "bittorrent",
    protocols: &[Protocol(37)],
    tcp: true,
    udp: true,
    ports: &[6881],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "bittorrent_utp.pcap frames ,,,",
        tcp: false,
        server_port: 40959,
        packets: &[
            (
                true,
                "64313a6164323a696432303af7f6007cea13506e514de7ecbc94f2ae517115f8\
             393a696e666f5f6861736832303af7f601d8a6276f762c2c3df274af2827f8d1\
             f1de65313a71393a6765745f7065657273313a74323a0e61313a76343a4c5401\
             01313a79313a7165",
            ),
            (
                true,
                "64313a6164323a696432303af7f6007cea13506e514de7ecbc94f2ae517115f8\
             393a696e666f5f6861736832303af7f601b02e2b545dd1fd54469a41ff11d10f\
             96ca65313a71393a6765745f7065657273313a74323a19e1313a76343a4c5401\
             01313a79313a7165",
            ),
            (true, "4100530210eeb2f00000000000000000e7f50000"),
            (
                false,
                "2102530206ff3f5f7fffffff0000f00049c7e7f500080000000000000000",
            ),
        ],
        protocol: Protocol(37),
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// bittorrent_tcp_miss.pcapng frame 10 (first 68 bytes): the peer
    /// wire handshake, info hash 0f6b9cd2b7da4de9b6c846203920e3da49cdb795.
    const HANDSHAKE_10: &str = "13426974546f7272656e742070726f746f636f6c0000000000180005\
        0f6b9cd2b7da4de9b6c846203920e3da49cdb795 2d5557313330512d51537032763977564f343861";
    /// bittorrent_utp.pcap frame 1: a DHT get_peers query (104 bytes).
    const DHT_1: &str = "64313a6164323a696432303af7f6007cea13506e514de7ecbc94f2ae517115f8393a696e666f5f686173\
        6832303af7f601d8a6276f762c2c3df274af2827f8d1f1de65313a71393a6765745f7065657273313a74323a\
        0e61313a76343a4c540101313a79313a7165";
    /// bittorrent_utp.pcap frames 87 and 88: uTP SYN from 127.0.0.1:49861
    /// and the STATE answering it, connection id 0x4567.
    const SYN_87: &str = "41004567ed639296000000000010000023c60000";
    const STATE_88: &str = "21004567ed6393410000000000100000456723c6";

    fn hash(s: &str) -> Option<[u8; 20]> {
        hex(s).try_into().ok()
    }

    #[test]
    fn tcp_handshake_split() {
        let p = hex(HANDSHAKE_10);
        let f = flow(true, 48987, 6881);
        let (v, meta) = run(
            dissect,
            &f,
            &[(true, &p[..10]), (true, &p[10..40]), (true, &p[40..])],
        );
        let found = Verdict::Found(BITTORRENT);
        assert_eq!(v, [Verdict::Maybe, found, Verdict::Done(BITTORRENT)]);
        assert_eq!(
            meta.bt_info_hash,
            hash("0f6b9cd2b7da4de9b6c846203920e3da49cdb795")
        );
    }

    #[test]
    fn tcp_handshake_after_encryption_negotiation() {
        // bittorrent_tcp_miss.pcapng frames 4 and 5 (first 96 bytes of 198
        // and 424: each side's MSE public key), 7, 8 and 9 (first 16 bytes),
        // then frame 10: the server's handshake in plain text.
        let packets = [
            (
                true,
                hex(
                    "5a05be68a0a535134059a917fb0289a6015bfc74f7489c7e8117208c719eefec274d023bbfcb5570109da921211792d3a7240f453acf916a5b85af0877a53a6989520c3a10533641766934db319cb8a4abf07d7c92280c3d1f2d66e87097de21",
                ),
            ),
            (
                false,
                hex(
                    "fd1132aaeebef05db34a46c54a4ba19efb3256dce6d032068734cd05678010d6f63552bc0f2948ed8899e0e3b8825a0ad040581bf2e5452b4f85d2e1f1a763ac57bd74a58044d9b5f90f6e1f1444b32c7c3581605da97a69771d4f1d1572584d",
                ),
            ),
            (true, hex("d389a25231825edeef7a81c22f019135")),
            (false, hex("ae4fce225dd25fdbeaee87f05aac5099")),
            (true, hex("e5ebe0ad5c0daaa279e2fa9938c002e0")),
            (false, hex(HANDSHAKE_10)),
        ];
        let input: Vec<(bool, &[u8])> = packets.iter().map(|(c, p)| (*c, p.as_slice())).collect();
        let f = flow(true, 48987, 6881);
        let (v, meta) = run(dissect, &f, &input);
        assert_eq!(v[..5], [Verdict::Maybe; 5]);
        assert_eq!(v[5], Verdict::Done(BITTORRENT));
        assert_eq!(
            meta.bt_info_hash,
            hash("0f6b9cd2b7da4de9b6c846203920e3da49cdb795")
        );
        // Without a first message of MSE size, the flow is given up at once.
        let (v, _) = run(dissect, &f, &input[2..]);
        assert_eq!(v[0], Verdict::No);
    }

    #[test]
    fn dht_then_utp_handshake() {
        // bittorrent_utp.pcap frames 1 (DHT), 3 (uTP SYN), 4 (STATE with an
        // extension), 5 (DATA: the handshake, first 88 of 210 bytes).
        let packets = [
            (true, hex(DHT_1)),
            (true, hex("4100530210eeb2f00000000000000000e7f50000")),
            (
                false,
                hex("2102530206ff3f5f7fffffff0000f00049c7e7f500080000000000000000"),
            ),
            (
                true,
                hex(
                    "0100530310f0687609f1291700100000e7f649c613426974546f7272656e742070726f746f636f6c00000000001800050ca4c8e7fb26a354b1a7aa15baeaf26067c668112d4c54313130302d31466135333152744c757677",
                ),
            ),
        ];
        let input: Vec<(bool, &[u8])> = packets.iter().map(|(c, p)| (*c, p.as_slice())).collect();
        let f = flow(false, 64969, 40959);
        let (v, meta) = run(dissect, &f, &input);
        let found = Verdict::Found(BITTORRENT);
        assert_eq!(v, [found, found, found, Verdict::Done(BITTORRENT)]);
        assert_eq!(
            meta.bt_info_hash,
            hash("0ca4c8e7fb26a354b1a7aa15baeaf26067c66811")
        );
    }

    #[test]
    fn utp_needs_both_sides() {
        let (syn, state) = (hex(SYN_87), hex(STATE_88));
        // bittorrent_utp.pcap frame 89: DATA "blah\n" on connection 0x4568.
        let data = hex("01004568ed7a591d000000a70010000023c74566626c610a");
        let f = flow(false, 49861, 33333);
        let (v, meta) = run(dissect, &f, &[(true, &syn), (false, &state), (true, &data)]);
        let found = Verdict::Found(BITTORRENT);
        assert_eq!(v, [Verdict::Maybe, found, found]);
        assert_eq!(meta.bt_info_hash, None);
        // An answer on another connection is not uTP.
        let mut other = state.clone();
        other[3] ^= 0x10;
        let (v, _) = run(dissect, &f, &[(true, &syn), (false, &other)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Maybe]);
        // A SYN with payload, or a DATA without, is not uTP.
        assert!(utp(&data[..20]).is_none());
        let mut syn_data = data.clone();
        syn_data[0] = 0x41;
        assert!(utp(&syn_data).is_none());
    }

    #[test]
    fn tracker_connect_and_announce() {
        // Synthetic (no UDP tracker in the corpus): connect request
        // (protocol id, action 0, transaction id), then an announce
        // (connection id, action 1, transaction id, info hash, ...).
        let connect = hex("0000041727101980 00000000 12345678");
        let mut announce = hex("1122334455667788 00000001 12345679");
        announce.extend_from_slice(&hex("0f6b9cd2b7da4de9b6c846203920e3da49cdb795"));
        announce.resize(98, 0);
        let f = flow(false, 40000, 6969);
        let (v, meta) = run(dissect, &f, &[(true, &connect), (true, &announce)]);
        assert_eq!(v, [Verdict::Found(BITTORRENT), Verdict::Done(BITTORRENT)]);
        assert_eq!(
            meta.bt_info_hash,
            hash("0f6b9cd2b7da4de9b6c846203920e3da49cdb795")
        );
    }

    #[test]
    fn dht_must_be_whole_bencoding() {
        let p = hex(DHT_1);
        assert!(dht(&p));
        assert!(!dht(&p[..p.len() - 1]));
        let mut longer = p.clone();
        longer.push(b'e');
        assert!(!dht(&longer));
        assert_eq!(bencoded(b"d1:ai-12ee", MAX_DEPTH), Some(10));
        assert_eq!(bencoded(b"di1e1:ae", MAX_DEPTH), None);
        assert_eq!(bencoded(b"i1-2e", MAX_DEPTH), None);
        assert_eq!(bencoded(&[b'l'; 64], MAX_DEPTH), None);
        assert_eq!(bencoded(b"99999999999999999999:", MAX_DEPTH), None);
    }

    #[test]
    fn rejects_other_protocols() {
        let f = flow(false, 40000, 6881);
        let dns = hex(crate::dissect::testing::DNS_QUERY);
        let stun = hex(crate::dissect::testing::STUN_REQUEST);
        let wg = hex(crate::dissect::testing::WIREGUARD_KEEPALIVE);
        let ovpn = hex(crate::dissect::testing::OPENVPN_RESET);
        for p in [&dns, &stun, &wg, &ovpn] {
            let (v, _) = run(dissect, &f, &[(true, p)]);
            assert_eq!(v, [Verdict::No]);
        }
        let tls = hex(crate::dissect::testing::TLS_HELLO_HEAD);
        let http = hex(crate::dissect::testing::HTTP_REQUEST_HEAD);
        for p in [&tls, &http] {
            let (v, _) = run(dissect, &flow(true, 40000, 443), &[(true, p)]);
            assert_eq!(v, [Verdict::No]);
        }
    }

    #[test]
    fn truncated_input_does_not_panic() {
        for (tcp, src) in [
            (true, HANDSHAKE_10),
            (false, DHT_1),
            (false, SYN_87),
            (false, STATE_88),
        ] {
            let p = hex(src);
            for n in 0..=p.len() {
                let f = flow(tcp, 40000, 6881);
                run(
                    dissect,
                    &f,
                    &[(true, &p[..n]), (false, &p[..n]), (true, &p[..n])],
                );
            }
        }
    }
}
