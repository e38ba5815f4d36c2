//! WhatsApp's chat protocol over TCP (443, 5222, 80): its Noise
//! handshake's prologue.
//!
//! The client opens with an optional edge routing header (`ED`, version
//! `00 01`, a 24-bit big-endian length and that many bytes of routing
//! data), then `WA` and two version bytes (protocol, dictionary), then
//! frames each with a 24-bit big-endian length. Claimed once the client's
//! bytes walked through the prologue to a first frame header whose
//! length is plausible.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// WhatsApp.
const WHATSAPP: Protocol = Protocol(142);
/// Largest routing header data taken as real.
const MAX_ROUTING: usize = 64;
/// Largest first frame taken as real (a Noise ClientHello).
const MAX_FRAME: usize = 4096;
/// Client packets after which an unfinished prologue is not WhatsApp.
const MAX_PACKETS: u32 = 3;

/// What the client's bytes are so far.
#[derive(Debug, PartialEq, Eq)]
enum Prologue {
    Complete,
    Incomplete,
    Invalid,
}

/// See the module's documentation.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp || pkt.server_first {
        return Verdict::No;
    }
    if !pkt.from_client {
        return Verdict::Maybe;
    }
    match prologue(pkt.client_stream) {
        Prologue::Complete => Verdict::Done(WHATSAPP),
        Prologue::Incomplete if pkt.seen[0] + 1 < MAX_PACKETS => Verdict::Maybe,
        _ => Verdict::No,
    }
}

/// Walks the client's prologue.
fn prologue(s: &[u8]) -> Prologue {
    use Prologue::*;
    /// Whether `s` is a prefix of `want` or starts with it: `None` when
    /// it is neither.
    fn prefix(s: &[u8], want: &[u8]) -> Option<bool> {
        let n = s.len().min(want.len());
        (s[..n] == want[..n]).then_some(s.len() >= want.len())
    }
    let mut rest = s;
    if rest.first() == Some(&b'E') {
        match prefix(rest, b"ED\x00\x01") {
            None => return Invalid,
            Some(false) => return Incomplete,
            Some(true) => {}
        }
        let Some(&[l0, l1, l2]) = rest.get(4..7) else {
            return Incomplete;
        };
        let len = usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2);
        if len == 0 || len > MAX_ROUTING {
            return Invalid;
        }
        let Some(after) = rest.get(7 + len..) else {
            return Incomplete;
        };
        rest = after;
    }
    match prefix(rest, b"WA") {
        None => return Invalid,
        Some(false) => return Incomplete,
        Some(true) => {}
    }
    let Some(&[major, _dict, l0, l1, l2]) = rest.get(2..7) else {
        return if rest.get(2).is_some_and(|&m| !(1..=9).contains(&m)) {
            Invalid
        } else {
            Incomplete
        };
    };
    let frame = usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2);
    if !(1..=9).contains(&major) || frame == 0 || frame > MAX_FRAME {
        return Invalid;
    }
    Complete
}

/// wa_voice.pcap, the client's first segment to 5222 (first 24 bytes):
/// a routing header with 4 bytes of data, `WA 02 01`, a first frame of
/// 238 bytes.
const EDGE: &str = "4544000100000408050802574102010000ee12eb010a206c";
/// waze.pcap, the client's first segment to 443 (first 16 bytes): the
/// 2015 prologue `WA 01 05` without a routing header.
const OLD: &str = "57410105000018f80501a59189fc1041";

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "whatsapp",
    protocols: &[WHATSAPP],
    tcp: true,
    udp: false,
    ports: &[443, 5222, 80],
    ports_only: false,
    first: |from_client, b| from_client && (b == b'E' || b == b'W'),
    run: dissect,
    samples: &[
        Sample {
            origin: "wa_voice.pcap stream 1, first segment",
            tcp: true,
            server_port: 5222,
            packets: &[(true, EDGE)],
            protocol: WHATSAPP,
        },
        Sample {
            origin: "waze.pcap, flow to 108.168.176.228:443, first segment",
            tcp: true,
            server_port: 443,
            packets: &[(true, OLD)],
            protocol: WHATSAPP,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    #[test]
    fn prologues() {
        let f = flow(true, 49355, 5222);
        for src in [EDGE, OLD] {
            let (v, _) = run(dissect, &f, &[(true, &hex(src))]);
            assert_eq!(v, [Verdict::Done(WHATSAPP)], "{src}");
        }
        // Split in small segments.
        let p = hex(EDGE);
        let (a, b) = p.split_at(9);
        let (v, _) = run(dissect, &f, &[(true, a), (true, b)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(WHATSAPP)]);
    }

    #[test]
    fn rejects_others() {
        use crate::dissect::testing::{HTTP_REQUEST_HEAD, TLS_HELLO_HEAD};
        let f = flow(true, 40000, 443);
        for src in [HTTP_REQUEST_HEAD, TLS_HELLO_HEAD] {
            let (v, _) = run(dissect, &f, &[(true, &hex(src))]);
            assert_eq!(v, [Verdict::No], "{src}");
        }
        // Text that starts alike.
        for text in [
            &b"EDIT / HTTP/1.1\r\n"[..],
            b"WAIT 10\r\n",
            b"ED\x00\x02abcdefgh",
        ] {
            let (v, _) = run(dissect, &f, &[(true, text)]);
            assert_eq!(v, [Verdict::No], "{text:?}");
        }
    }

    #[test]
    fn truncated_input_does_not_panic() {
        let f = flow(true, 40000, 443);
        let p = hex(EDGE);
        for n in 1..p.len() {
            let (v, _) = run(dissect, &f, &[(true, &p[..n])]);
            assert_ne!(v, [Verdict::No], "{n}");
        }
    }
}
