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

use crate::dissect::{Packet, Scratch, Verdict};

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
    scratch.keep(|kept| &mut kept.openvpn, |st| step(pkt, st))
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
        Step::More if pkt.seen[0] + pkt.seen[1] + 1 < MAX_PACKETS => Verdict::Maybe,
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
