//! OpenVPN control channel over UDP and TCP (TCP: each packet behind a
//! 2-byte length).
//!
//! A packet starts with its opcode (top 5 bits; key id 0 in the
//! handshake) and the sender's 8-byte session id. Each direction must
//! open with a hard reset and keep its session id. The flow is OpenVPN
//! when a server hard reset carries the client's session id (its
//! acknowledgement), or both directions sent two consistent control
//! packets, or one direction sent four and the other nothing (a capture
//! seeing one direction only).

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// OpenVPN.
const OPENVPN: Protocol = Protocol(159);
/// Hard reset opcodes: client v1, server v1, client v2, server v2,
/// client v3.
const RESETS: [u8; 5] = [1, 2, 7, 8, 10];
/// Other control channel opcodes: control, ack, control with wrapped
/// client key.
const CONTROL: [u8; 3] = [4, 5, 11];
/// Smallest packet: opcode, session id, and at least a packet id.
const MIN_LEN: usize = 14;
/// Hard resets are small (larger ones are other protocols, e.g. QUIC).
const MAX_RESET: usize = 1200;
/// Largest control packet read on TCP.
const MAX_CONTROL: usize = 2048;
/// Payload packets a flow may take to show enough.
const MAX_PACKETS: u32 = 12;
/// Packets read from one TCP segment.
const MAX_MESSAGES: usize = 16;

/// Per-flow state.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct State {
    /// Session id of each direction (client, server).
    session: [Option<[u8; 8]>; 2],
    /// Control packets read from each direction.
    count: [u8; 2],
    /// TCP: bytes of each direction's stream read so far.
    read: [usize; 2],
}

/// What one packet told.
enum Step {
    /// Not OpenVPN.
    Bad,
    /// Consistent, not enough yet.
    More,
    /// OpenVPN.
    Found,
}

/// Done once the handshake shows OpenVPN (see the module doc).
pub(crate) fn dissect(pkt: &Packet<'_>, scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    scratch.keep(|st: &mut State| step(pkt, st))
}

/// [`dissect`] on the flow's state.
fn step(pkt: &Packet<'_>, st: &mut State) -> Verdict {
    let dir = usize::from(!pkt.from_client);
    let step = if pkt.tcp {
        tcp(st, dir, pkt.stream())
    } else {
        control(st, dir, pkt.payload)
    };
    match step {
        Step::Found => Verdict::Done(OPENVPN),
        Step::More if pkt.packets() < MAX_PACKETS => Verdict::Maybe,
        _ => Verdict::No,
    }
}

/// Reads the complete packets of a TCP stream not read yet.
fn tcp(st: &mut State, dir: usize, stream: &[u8]) -> Step {
    for _ in 0..MAX_MESSAGES {
        let Some((&[l0, l1], rest)) = stream
            .get(st.read[dir]..)
            .and_then(<[u8]>::split_first_chunk::<2>)
        else {
            break;
        };
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        let opcode_ok = rest.first().is_none_or(|b| valid_opcode(b >> 3));
        if !(MIN_LEN..=MAX_CONTROL).contains(&len) || !opcode_ok {
            return Step::Bad;
        }
        let Some(msg) = rest.get(..len) else {
            break;
        };
        match control(st, dir, msg) {
            Step::More => st.read[dir] += 2 + len,
            found_or_bad => return found_or_bad,
        }
    }
    Step::More
}

/// True for the opcodes of the control channel.
fn valid_opcode(opcode: u8) -> bool {
    RESETS.contains(&opcode) || CONTROL.contains(&opcode)
}

/// Reads one control packet of direction `dir`.
fn control(st: &mut State, dir: usize, msg: &[u8]) -> Step {
    let Some((&[first], rest)) = msg.split_first_chunk::<1>() else {
        return Step::Bad;
    };
    let Some((&session, _)) = rest.split_first_chunk::<8>() else {
        return Step::Bad;
    };
    let (opcode, key_id) = (first >> 3, first & 7);
    if msg.len() < MIN_LEN || key_id != 0 || !valid_opcode(opcode) {
        return Step::Bad;
    }
    match st.session[dir] {
        None if RESETS.contains(&opcode) && msg.len() < MAX_RESET => {
            st.session[dir] = Some(session)
        }
        Some(known) if known == session => {}
        _ => return Step::Bad,
    }
    st.count[dir] = st.count[dir].saturating_add(1);
    let (mine, theirs) = (st.count[dir], st.count[1 - dir]);
    // A server hard reset acknowledging the other side's session id.
    let acked = matches!(opcode, 2 | 8)
        && st.session[1 - dir]
            .is_some_and(|id| rest.get(8..).is_some_and(|r| r.windows(8).any(|w| w == id)));
    if acked || (mine >= 2 && theirs >= 2) || (mine >= 4 && theirs == 0) {
        Step::Found
    } else {
        Step::More
    }
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "openvpn",
    protocols: &[Protocol(159)],
    tcp: true,
    udp: true,
    ports: &[1194],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "openvpn.pcap frames ,,,",
        tcp: false,
        server_port: 60201,
        packets: &[
            (true, "40d31c3a6964602fa00100000000334857703d96db3900000000"),
            (
                true,
                "20d31c3a6964602fa00100000001334857703d96db3900000001160303007a02\
             00007603033b6ffd540d84e771f4b3386a50ac79a8ce5246e72f6ae23f9e09da\
             497bde82c520565a8dad85b1511aa70d02fb5f08dfae2c586cf2e632338d3e5b\
             95d9ff5c752b130200002e002b0002030400330024001d0020e9e9e9f6f9ab96\
             bbe485a383df4833d13d218a83ce998b42c48a8bd91834894614030300010117\
             03030017b7571cf69bfb7fd96923413035d03c21abf49ed76248381703030042\
             089da0c937e4aecb8f7de5ee16f63d854adfb90e0c5ee0ea2b6afbd16f822303\
             322c5a7c3a967ef4968f692ad144b628ca252dec483e410d87ef18b41dec54cc\
             3823170303125d1b3df6917f6aa7e757bb111c7d5cdd60a2dc94a3197b41422f\
             db25de20082a99a89020a201a7a59074e24ccd0c5baa7cffa3ee5cbbfab49529\
             72b2420e8b42939a8397d051ade0dd401db66916ab0ba512d567f09e05dd785b\
             fa8eb8e6177bf405bbf45ddaf01d9e977c79d46ce033b4c6da84b9fefd56c88f\
             b99a3928ed7b324a7ebfd0ed6714bd485660f39d1f081ce8034374b951e9ff70\
             cb3b1aa4a88568b98165cac0df8fb21b20330f270ae8da623561c2658245c7d7\
             1afbf3ffbef2b36bd1cc7546edeaf6a800caa2c9e5f60321902491fc0b5b2833\
             28be5b42c236c8836ffe6b92e492477e1334a6c043dfbc637fd5423f676db03e",
            ),
            (
                true,
                "20d31c3a6964602fa000000000028c49cc6865ac2f2fd01d20a3db553b7b4723\
             21700bc3cdc01c766ecff5a12adc1a46d2c0bc3e6ac58c72d78fddd5d9be4a96\
             8691603c1920b2f18cdddca2082e1a82bb7cc09f7db326188a7010bf772d6ab0\
             86569b7e7aaa408e076c67826f3062f7a616cf74b4a48111787b6b26919bb2e4\
             ed48c4a31f7aeaa3dd4dd3c4b633bfc07ca4f2565ad339b2ce543f5b94a7c6bd\
             da63eafb3ce2f734f241b79a01537e3816abe1ce5f5811c9b9755de6672d9365\
             4e08b3df78dd2509a0123a1a4e789496e121372a22ada8d10e1eb8911f0341e2\
             86d9aeefb741d3bcdc24a49d14424b171e5cc0a80b9994e43a72d64075647a7c\
             ac7b5c0046c6da895f4d18947d5189822d841f0b40156f8b5883e81e44c207fd\
             928fa4456aa09deaff68f250ee8a74b305e2bd21212c6b0481a60a1006c39610\
             bcafa4c5a02de24cc0d87b3c16c2f1bc8407d33aa02bfad59696282da022a233\
             43460539e7830f3f3c92a85864526c0b3fff1864297463efdf00200cc1953e78\
             dbcd705d5ced4484778425b0e62926ae24e0ecbea8ec4d023530318125f3d659\
             26dd7ca295c17fc173fd588fcb5eded7b40787764b0653d66e2ab790b197b488\
             f53811ade32d3d0d12fef2044c2c867580c4dba7f5aee41ae357b4d698b03a27\
             b1de29ecba637f7395bc727de590caa703f352988ecf24a4378e0ed73b228f51",
            ),
            (
                true,
                "20d31c3a6964602fa00000000003ec96411547885cee9227cbd92643e615c78d\
             527f64af43ef122f24156d20363b4ceaa925f2086de63dc83ad121c8dd998032\
             1701f5cda7ac838c48e2d121d37ae1850742cfa06a8063fefe511bdceca0183a\
             bfd2ad4035fe36c36740b8ad702fde75f3363c24d3ddeaa888302c109ede7c31\
             09af1e28cb7472b3aedf882c9e7f8e727992d3ef5d5466ae885ddda0ed676cb4\
             8e0c7cf507274a30ff473ce44218ebcc0d1d2da5f06c6c09359623092edb07f9\
             d263eac6b97ed67ebbd57f0e52444e547a579e66a2d2cd10c52128669ebd06b6\
             296b0ce28772c5144ed21f522538e2063ef16b93015d7994ee831a2697d49c5b\
             f80c385430cd9af2c7d6c2761cc7985a16ea69a0ff99d8f0208fc6b81931bba0\
             280db3c26fe3f282cb92f3c027e8ad01727662911b29a91e2c09a0b407397c90\
             28c64214fec6df4fdb76af318264d79041d3c9975e0cee8a5bf4710425734f90\
             617aed3ad4bf41bf759c193ad3ab91f5f6c49570369dd472527f89324a39b422\
             f84006112d47ca09a3b4646af13c3d7f39171aa667e20a863b602bc92d220fa2\
             b59a58b5d16a2b6b52beb7370d0b1251484848087a5cc3effca4fcf3042d9aed\
             b6bbfb608ac1a148a52a552903818f9923f3c2023839f24aad79f81ac185ae89\
             9e5da20cf818f46d6b4155cb58cfa446e2de0c4a4f4eff45c7b3403edbbc97e5",
            ),
        ],
        protocol: Protocol(159),
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// openvpn.pcap frame 515: client hard reset v2 (no HMAC), session
    /// 39fded2daa10a437, from 3.111.166.78:51146.
    const CLIENT_RESET: &str = crate::dissect::testing::OPENVPN_RESET;
    /// openvpn.pcap frame 516: the server's hard reset v2, acknowledging
    /// packet 0 of session 39fded2daa10a437.
    const SERVER_RESET: &str = "409421917de7267729010000000039fded2daa10a43700000000";
    /// openvpn.pcap frame 25: client hard reset over TCP, behind its length.
    const TCP_CLIENT: &str = "000e38507a28a78275788d0000000000";
    /// openvpn.pcap frame 27: the server's hard reset over TCP.
    const TCP_SERVER: &str = "001a409ad747beb24d8a1b0100000000507a28a78275788d00000000";

    #[test]
    fn udp_server_reset_acknowledges_client_session() {
        let f = flow(false, 51146, 1194);
        let (v, meta) = run(
            dissect,
            &f,
            &[(true, &hex(CLIENT_RESET)), (false, &hex(SERVER_RESET))],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(OPENVPN)]);
        assert_eq!(meta, Metadata::default());
        // openvpn.pcap frames 312 and 313: the same with tls-auth (an HMAC
        // before the packet id).
        let client = hex(
            "38b02ccff1b5f0174fc091666e3b124bada39173317b939722d1fe63be0000000157a1c15f0000000000",
        );
        let server = hex(
            "40f77fc2efdbe23f57dec4c8d5654d0723bf8c0be54138563270cfae130000000157a1c15f0100000000b02ccff1b5f0174f00000000",
        );
        let f = flow(false, 41507, 13680);
        let (v, _) = run(dissect, &f, &[(true, &client), (false, &server)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(OPENVPN)]);
        // A server reset acknowledging another session is not enough.
        let mut other = hex(SERVER_RESET);
        other[20] ^= 1;
        let (v, _) = run(dissect, &f, &[(true, &hex(CLIENT_RESET)), (false, &other)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Maybe]);
    }

    #[test]
    fn tcp_reset_split_in_segments() {
        let f = flow(true, 39772, 1194);
        let (client, server) = (hex(TCP_CLIENT), hex(TCP_SERVER));
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &client[..5]), (true, &client[5..]), (false, &server)],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Maybe, Verdict::Done(OPENVPN)]);
    }

    #[test]
    fn session_ids_kept_in_both_directions() {
        // openvpn.pcap frames 618, 620, 622 and 626 (TCP, tls-crypt: the
        // server reset hides the client's session id): the packets without
        // their length, the last cut to 24 bytes, as UDP datagrams.
        let c1 = hex(
            "382a56d979d99eccf40000000163cf4ff5b89824b0aa4e93c089c1e24af5443766b5cab18c23c17d51081eb196a229085eec179d0d88",
        );
        let s1 = hex(
            "402f64c09039de36230000000163cf4ff53036751e70bae8a84698d78c132edcf685ea93abfb4eda16e29f47208abaeeb8b2c6d71c379474de67682231f35717fb54",
        );
        let c2 = hex(
            "282a56d979d99eccf40000000263cf4ff5d1887d1902d0c4a1eeb50a8561c47830a26e8f206ea2922ded85cf7f986ef6b7203484c1528c6b64788bfac638",
        );
        let s2 = hex("202f64c09039de36230000000263cf4ff52b2e488d3447c6");
        let f = flow(false, 36138, 443);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &c1), (false, &s1), (true, &c2), (false, &s2)],
        );
        assert_eq!(
            v,
            [
                Verdict::Maybe,
                Verdict::Maybe,
                Verdict::Maybe,
                Verdict::Done(OPENVPN)
            ]
        );
        // A session id change within a direction is not OpenVPN.
        let mut c2_other = c2.clone();
        c2_other[1] ^= 1;
        let (v, _) = run(dissect, &f, &[(true, &c1), (false, &s1), (true, &c2_other)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Maybe, Verdict::No]);
    }

    #[test]
    fn one_direction_only() {
        // openvpn.pcap frames 1, 3, 4 (cut to 24 bytes) and 10: a capture
        // of the client side only (hard reset, ack, control, ack).
        let packets = [
            hex("38334857703d96db390000000000"),
            hex("28334857703d96db390100000000d31c3a6964602fa0"),
            hex("20334857703d96db39000000000116030101100100010c"),
            hex("28334857703d96db390100000001d31c3a6964602fa0"),
        ];
        let f = flow(false, 60201, 443);
        let input: Vec<(bool, &[u8])> = packets.iter().map(|p| (true, p.as_slice())).collect();
        let (v, _) = run(dissect, &f, &input);
        assert_eq!(
            v,
            [
                Verdict::Maybe,
                Verdict::Maybe,
                Verdict::Maybe,
                Verdict::Done(OPENVPN)
            ]
        );
        // Opening with something else than a hard reset is not OpenVPN.
        let (v, _) = run(dissect, &f, &input[1..]);
        assert_eq!(v[0], Verdict::No);
    }

    #[test]
    fn rejects_other_protocols() {
        let dns = hex(crate::dissect::testing::DNS_QUERY);
        let stun = hex(crate::dissect::testing::STUN_REQUEST);
        let wg = hex(crate::dissect::testing::WIREGUARD_KEEPALIVE);
        for p in [&dns, &stun, &wg] {
            let (v, _) = run(dissect, &flow(false, 40000, 1194), &[(true, p)]);
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
            (false, SERVER_RESET),
            (true, TCP_SERVER),
            (true, TCP_CLIENT),
        ] {
            let p = hex(src);
            for n in 0..=p.len() {
                let f = flow(tcp, 40000, 1194);
                let (v, _) = run(
                    dissect,
                    &f,
                    &[(true, &p[..n]), (false, &p[..n]), (true, &p[..n])],
                );
                assert!(!v.contains(&Verdict::Done(OPENVPN)) || n == p.len(), "{n}");
            }
        }
    }
}
