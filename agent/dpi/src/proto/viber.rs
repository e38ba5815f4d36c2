//! Viber: its TCP messaging transport and its UDP call relay protocol.
//!
//! TCP (ports 4244, 5242, 5243, 9785): the client's first message starts
//! with its length (16 bits, little-endian, the whole message), a
//! 32-bit message id, then `0xfffc` and a 16-bit command whose top bit
//! is set.
//! UDP: each datagram starts with a 16-bit session id and a one-byte
//! message type followed by 0 (nDPI's types and sizes: 3; 9 in 20 bytes;
//! 1 followed by 5 0; 0x19 or 0x1b in 34 bytes). On Viber's relay ports
//! (7985 to 7987) one such datagram is enough; elsewhere the other side
//! must answer with the same session id.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// Viber.
const VIBER: Protocol = Protocol(144);
/// Viber's UDP relay ports.
const RELAY_PORTS: std::ops::RangeInclusive<u16> = 7985..=7987;
/// Message types a relay may answer with.
const ANSWER_TYPES: [u8; 8] = [0x01, 0x03, 0x09, 0x0B, 0x0C, 0x19, 0x1A, 0x1B];
/// Packets a flow may take to show what it is.
const MAX_PACKETS: u32 = 4;

/// Per-flow state (UDP): the session id of a first datagram off the
/// relay ports, and which side sent it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct State {
    session: Option<([u8; 2], bool)>,
}

/// TCP: `Done` on the client's first message header. UDP: see the
/// module's documentation.
pub(crate) fn dissect(pkt: &Packet<'_>, scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let packets = pkt.packets();
    if pkt.tcp {
        if pkt.server_first {
            return Verdict::No;
        }
        let s = pkt.client_stream;
        return match s.get(..10) {
            Some(&[l0, l1, _, _, _, _, 0xFC, 0xFF, _, cmd])
                if cmd & 0x80 != 0 && usize::from(u16::from_le_bytes([l0, l1])) >= 10 =>
            {
                Verdict::Done(VIBER)
            }
            None if pkt.from_client && packets < MAX_PACKETS => Verdict::Maybe,
            _ => Verdict::No,
        };
    }
    let p = pkt.payload;
    let relay =
        RELAY_PORTS.contains(&pkt.flow.server_port) || RELAY_PORTS.contains(&pkt.flow.client_port);
    scratch.keep(|st: &mut State| {
        if let Some((id, from_client)) = st.session {
            if from_client != pkt.from_client
                && let [a, b, t, 0, ..] = p
                && [*a, *b] == id
                && ANSWER_TYPES.contains(t)
            {
                return Verdict::Done(VIBER);
            }
            return if packets < MAX_PACKETS {
                Verdict::Maybe
            } else {
                Verdict::No
            };
        }
        match (first(p), relay) {
            (true, true) => Verdict::Done(VIBER),
            (true, false) => {
                st.session = p.first_chunk::<2>().map(|id| (*id, pkt.from_client));
                Verdict::Maybe
            }
            (false, _) => Verdict::No,
        }
    })
}

/// Whether `p` is one of the datagrams nDPI takes for Viber's.
fn first(p: &[u8]) -> bool {
    match p {
        [_, _, 0x03, 0x00, _, _, ..] => true,
        [_, _, 0x01, 0x00, 0x05, 0x00, ..] => true,
        [_, _, 0x09, 0x00, ..] => p.len() == 20,
        [_, _, 0x19 | 0x1B, 0x00, ..] => p.len() == 34,
        _ => false,
    }
}

/// viber.pcap frame 443: the client's first message on TCP port 5242.
const TCP_HELLO: &str = "180000000000fcff05800900000000000000000033000000";
/// viber.pcap frames 262 and 265: a call relay request and its answer
/// (port 7987).
const RELAY_REQUEST: &str = "edf61900ac19358c8f64e44725df4d4ee1cd371b5c9abc26d9d30b4b01bb39b30000";
const RELAY_ANSWER: &str = "edf61a00ac19358c8f64e44732437c5e43b800c8";

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "viber",
    protocols: &[VIBER],
    tcp: true,
    udp: true,
    ports: &[4244, 5242, 5243, 9785, 7985, 7986, 7987],
    ports_only: false,
    first: crate::dissect::any_first,
    run: dissect,
    samples: &[
        Sample {
            origin: "viber.pcap frame 443",
            tcp: true,
            server_port: 5242,
            packets: &[(true, TCP_HELLO)],
            protocol: VIBER,
        },
        Sample {
            origin: "viber.pcap frames 262,265",
            tcp: false,
            server_port: 7987,
            packets: &[(true, RELAY_REQUEST), (false, RELAY_ANSWER)],
            protocol: VIBER,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    #[test]
    fn tcp_first_message() {
        let f = flow(true, 41184, 5242);
        let p = hex(TCP_HELLO);
        let (v, _) = run(dissect, &f, &[(true, &p)]);
        assert_eq!(v, [Verdict::Done(VIBER)]);
        let (v, _) = run(dissect, &f, &[(true, &p[..5]), (true, &p[5..])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(VIBER)]);
        // viber.pcap frame 451: port 4244.
        let p = hex("60002e0eea14fcff038059001b000000000000002e0eea14c82598f848afdef3");
        let (v, _) = run(dissect, &flow(true, 42900, 4244), &[(true, &p)]);
        assert_eq!(v, [Verdict::Done(VIBER)]);
    }

    #[test]
    fn udp_relay_port_and_answer() {
        let (req, ans) = (hex(RELAY_REQUEST), hex(RELAY_ANSWER));
        let (v, _) = run(dissect, &flow(false, 47171, 7987), &[(true, &req)]);
        assert_eq!(v, [Verdict::Done(VIBER)]);
        // Elsewhere the answer with the same session id confirms it.
        let f = flow(false, 47171, 40000);
        let (v, _) = run(dissect, &f, &[(true, &req), (false, &ans)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(VIBER)]);
        let mut other = ans.clone();
        other[0] ^= 1;
        let (v, _) = run(dissect, &f, &[(true, &req), (false, &other)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Maybe]);
    }

    #[test]
    fn rejects_other_protocols() {
        use crate::dissect::testing::*;
        let f = flow(false, 40000, 7000);
        for src in [
            DNS_QUERY,
            RTP,
            STUN_REQUEST,
            WIREGUARD_KEEPALIVE,
            OPENVPN_RESET,
        ] {
            let (v, _) = run(dissect, &f, &[(true, &hex(src)), (false, &hex(src))]);
            assert_eq!(v[1], Verdict::No, "{src}");
        }
        let f = flow(true, 40000, 4244);
        for src in [TLS_HELLO_HEAD, HTTP_REQUEST_HEAD] {
            let (v, _) = run(dissect, &f, &[(true, &hex(src))]);
            assert_eq!(v, [Verdict::No]);
        }
    }

    #[test]
    fn truncated_input_does_not_panic() {
        for (tcp, src) in [
            (true, TCP_HELLO),
            (false, RELAY_REQUEST),
            (false, RELAY_ANSWER),
        ] {
            let p = hex(src);
            for n in 0..p.len() {
                run(
                    dissect,
                    &flow(tcp, 40000, 7985),
                    &[(true, &p[..n]), (false, &p[..n])],
                );
            }
        }
    }
}
