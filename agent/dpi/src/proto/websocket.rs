//! WebSocket frames (RFC 6455; nDPI 251) over TCP, seen without the HTTP
//! Upgrade that opened them (the HTTP dissector names a flow whose
//! capture has the Upgrade request HTTP, as nDPI does).
//!
//! Each direction's stream is read as frames: a first byte of FIN and an
//! opcode nDPI accepts (text, binary, close, ping, pong; a continuation
//! only after a frame without FIN), reserved bits clear; a 7-bit length
//! or its 16- or 64-bit extension; a 4-byte mask key when the mask bit is
//! set. RFC 6455 has clients mask every frame and servers none: the flow
//! is WebSocket once each direction sent a whole frame, one direction
//! masked and the other not.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// nDPI's WebSocket.
const WEBSOCKET: Protocol = Protocol(251);
/// Frames read from one stream.
const MAX_FRAMES: usize = 16;
/// Largest frame read (longer ones are not what a handshake-less
/// WebSocket flow opens with here).
const MAX_FRAME: u64 = 1 << 20;

/// What a direction's stream holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Frames {
    /// Nothing, or the start of a frame.
    Partial,
    /// Whole frames (the first's mask bit), maybe then a partial one.
    Whole(bool),
    /// Not WebSocket frames, or masked and unmasked mixed.
    Bad,
}

/// Done once both directions sent whole, consistently masked frames.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return Verdict::No;
    }
    match (frames(pkt.client_stream), frames(pkt.server_stream)) {
        (Frames::Bad, _) | (_, Frames::Bad) => Verdict::No,
        (Frames::Whole(a), Frames::Whole(b)) if a != b => Verdict::Done(WEBSOCKET),
        (Frames::Whole(_), Frames::Whole(_)) => Verdict::No,
        _ => Verdict::Maybe,
    }
}

/// Reads the frames at the start of `stream`.
fn frames(stream: &[u8]) -> Frames {
    let (mut at, mut masked, mut fragmented) = (0usize, None, false);
    for _ in 0..MAX_FRAMES {
        let rest = stream.get(at..).unwrap_or_default();
        let Some((&b0, rest)) = rest.split_first() else {
            break;
        };
        let (fin, opcode) = (b0 & 0x80 != 0, b0 & 0x0f);
        let opcode_ok = match opcode {
            0 => fragmented,
            1 | 2 => !fragmented,
            8..=10 => fin,
            _ => false,
        };
        if b0 & 0x70 != 0 || !opcode_ok {
            return Frames::Bad;
        }
        let Some((&b1, rest)) = rest.split_first() else {
            break;
        };
        let mask = b1 & 0x80 != 0;
        if masked.is_some_and(|m| m != mask) {
            return Frames::Bad;
        }
        let (len, ext) = match b1 & 0x7f {
            126 => match rest.first_chunk::<2>() {
                Some(&b) => (u64::from(u16::from_be_bytes(b)), 2),
                None => break,
            },
            127 => match rest.first_chunk::<8>() {
                Some(&b) => (u64::from_be_bytes(b), 8),
                None => break,
            },
            n => (u64::from(n), 0),
        };
        // Extended lengths in their shortest form; control frames short.
        let minimal = match ext {
            2 => len >= 126,
            8 => len > 0xffff,
            _ => true,
        };
        if !minimal || len > MAX_FRAME || (opcode >= 8 && len > 125) {
            return Frames::Bad;
        }
        let total = 2 + ext + if mask { 4 } else { 0 } + len as usize;
        if stream.len() < at + total {
            break;
        }
        at += total;
        masked = Some(mask);
        if opcode < 8 {
            fragmented = !fin;
        }
    }
    match masked {
        Some(m) => Frames::Whole(m),
        None => Frames::Partial,
    }
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "websocket",
    protocols: &[WEBSOCKET],
    tcp: true,
    udp: false,
    ports: &[],
    ports_only: false,
    first: |_, byte| matches!(byte & 0x7f, 1 | 2) || matches!(byte, 0x88..=0x8a),
    run: dissect,
    samples: &[Sample {
        origin: "websocket.pcap frames 1, 2",
        tcp: true,
        server_port: 50999,
        packets: &[
            (true, "811757656c636f6d652c203139322e3136382e34332e312021"),
            (false, "818ce17e8eb9951bfdcdc113ebca921fe9dc"),
        ],
        protocol: WEBSOCKET,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{
        DNS_QUERY, HTTP_REQUEST_HEAD, OPENVPN_RESET, TLS_HELLO_HEAD, flow, hex, run,
    };

    /// websocket.pcap frame 1: the server's "Welcome, ..." text frame.
    const WELCOME: &str = "811757656c636f6d652c203139322e3136382e34332e312021";
    /// websocket.pcap frame 2: a masked text frame from the client.
    const MASKED: &str = "818ce17e8eb9951bfdcdc113ebca921fe9dc";

    #[test]
    fn frames_each_way() {
        let f = flow(true, 12345, 50999);
        let (v, meta) = run(dissect, &f, &[(true, &hex(WELCOME)), (false, &hex(MASKED))]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(WEBSOCKET)]);
        assert_eq!(meta, Metadata::default());
        // A frame split over segments, and two frames in one.
        let m = hex(MASKED);
        let two = [hex(WELCOME), hex(WELCOME)].concat();
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &two), (false, &m[..5]), (false, &m[5..])],
        );
        assert_eq!(
            v,
            [Verdict::Maybe, Verdict::Maybe, Verdict::Done(WEBSOCKET)]
        );
        // Both directions unmasked is not RFC 6455.
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &hex(WELCOME)), (false, &hex(WELCOME))],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
        // A 16-bit length (a 200-byte binary frame).
        let mut big = hex("827e00c8");
        big.resize(4 + 200, 0x41);
        let (v, _) = run(dissect, &f, &[(true, &big), (false, &m)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(WEBSOCKET)]);
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(true, 40000, 8080);
        for p in [TLS_HELLO_HEAD, HTTP_REQUEST_HEAD, DNS_QUERY, OPENVPN_RESET] {
            let (v, _) = run(dissect, &f, &[(true, &hex(p)), (false, &hex(WELCOME))]);
            assert_eq!(v[0], Verdict::No, "{p}");
        }
        // A frame length disagreeing with what follows.
        let mut bad = hex(WELCOME);
        bad.push(0x20);
        let (v, _) = run(dissect, &f, &[(true, &bad), (false, &hex(MASKED))]);
        assert_ne!(v[1], Verdict::Done(WEBSOCKET));
    }

    #[test]
    fn prefixes_do_not_panic() {
        let f = flow(true, 40000, 8080);
        let m = hex(MASKED);
        for n in 0..m.len() {
            let (v, _) = run(dissect, &f, &[(true, &hex(WELCOME)), (false, &m[..n])]);
            assert_eq!(v[1], Verdict::Maybe, "{n}");
        }
    }
}
