//! Cisco Skinny Client Control Protocol (SCCP) over TCP (port 2000).
//!
//! Every message opens with a 12-byte header, all little-endian 32-bit
//! words: the length of what follows the length's own word and the
//! header version (so at least 4: version and message id), the header
//! version (0 for the basic header, 0x0a..=0x16 for the later protocol
//! versions' extended ones) and the message id (station to call manager
//! below 0x100, call manager to station 0x81..=0x1ff, the newer
//! 0x8000..=0x81ff). A direction's stream must walk from message to
//! message to the end of the packet, every header valid, all of one
//! header version.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// CiscoSkinny.
const SKINNY: Protocol = Protocol(164);
/// The call manager's SCCP port.
const PORT: u16 = 2000;
/// Largest message length taken as real (the biggest SCCP messages,
/// display prompts and XML pushes, stay well below).
const MAX_LEN: usize = 8192;
/// Messages read from one stream.
const MAX_MESSAGES: usize = 64;

/// What a direction's stream holds so far.
#[derive(Debug, PartialEq, Eq)]
enum Walk {
    /// Whole valid messages, ending with the stream.
    Whole,
    /// Valid messages, the last one still incomplete.
    Partial,
    /// Not SCCP.
    Invalid,
}

/// Claims a flow on port 2000 once a direction's bytes are whole valid
/// messages; waits while the last one is still cut.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp || (pkt.flow.server_port != PORT && pkt.flow.client_port != PORT) {
        return Verdict::No;
    }
    match walk(pkt.stream()) {
        Walk::Whole => Verdict::Done(SKINNY),
        Walk::Partial if pkt.seen_here() < 4 => Verdict::Maybe,
        _ => Verdict::No,
    }
}

/// Walks the messages at the start of `stream`.
fn walk(stream: &[u8]) -> Walk {
    let mut rest = stream;
    let mut version = None;
    for _ in 0..MAX_MESSAGES {
        if rest.is_empty() {
            return Walk::Whole;
        }
        let Some((&[l0, l1, l2, l3, v0, v1, v2, v3, m0, m1, m2, m3], _)) =
            rest.split_first_chunk::<12>()
        else {
            // A header cut by the segment: at least its length must hold.
            return match rest {
                [l0, l1, l2, l3, ..] if plausible_len(u32::from_le_bytes([*l0, *l1, *l2, *l3])) => {
                    Walk::Partial
                }
                _ if rest.len() < 4 => Walk::Partial,
                _ => Walk::Invalid,
            };
        };
        let len = u32::from_le_bytes([l0, l1, l2, l3]);
        let v = u32::from_le_bytes([v0, v1, v2, v3]);
        let id = u32::from_le_bytes([m0, m1, m2, m3]);
        if !plausible_len(len)
            || !(v == 0 || (0x0a..=0x16).contains(&v))
            || *version.get_or_insert(v) != v
            || !known_id(id)
        {
            return Walk::Invalid;
        }
        // The length counts the version and id words and the data.
        let Some(next) = rest.get(8 + len as usize..) else {
            return Walk::Partial;
        };
        rest = next;
    }
    Walk::Whole
}

/// Whether a message length is one SCCP allows.
fn plausible_len(len: u32) -> bool {
    (4..=MAX_LEN as u32).contains(&len)
}

/// Whether a message id is in one of the ranges SCCP defines.
fn known_id(id: u32) -> bool {
    matches!(id, 0x0000..=0x01ff | 0x8000..=0x81ff)
}

/// skinny.pcap frame 1: KeypadButton (0x0026), from the phone.
const KEYPAD: &str = "100000001400000026000000010000000000000000000000";
/// skinny.pcap frame 5: the call manager's SetLamp-style state message
/// (0x0111, CallState) to the phone.
const CALL_STATE: &str = "1c000000140000001101000004000000010000004b362e01000000000400000000000000";
/// skinny.pcap frame 18: a KeepAlive-style 0x0049 from the phone.
const FROM_PHONE: &str = "0c00000014000000490000000300000001000000";

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "skinny",
    protocols: &[SKINNY],
    tcp: true,
    udp: false,
    ports: &[PORT],
    ports_only: true,
    first: any_first,
    run: dissect,
    samples: &[
        Sample {
            origin: "skinny.pcap frame 1",
            tcp: true,
            server_port: PORT,
            packets: &[(true, KEYPAD)],
            protocol: SKINNY,
        },
        Sample {
            origin: "skinny.pcap frames 5,18",
            tcp: true,
            server_port: PORT,
            packets: &[(false, CALL_STATE), (true, FROM_PHONE)],
            protocol: SKINNY,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    #[test]
    fn single_messages_from_either_side() {
        let f = flow(true, 49399, PORT);
        for (from_client, src) in [(true, KEYPAD), (false, CALL_STATE), (true, FROM_PHONE)] {
            let (v, _) = run(dissect, &f, &[(from_client, &hex(src))]);
            assert_eq!(v, [Verdict::Done(SKINNY)], "{src}");
        }
        // The call manager's side opened the capture: its port is the
        // client's.
        let f = flow(true, PORT, 51532);
        let (v, _) = run(dissect, &f, &[(true, &hex(CALL_STATE))]);
        assert_eq!(v, [Verdict::Done(SKINNY)]);
    }

    #[test]
    fn several_messages_and_segments() {
        let f = flow(true, 49399, PORT);
        let two = [hex(CALL_STATE), hex(FROM_PHONE)].concat();
        let (v, _) = run(dissect, &f, &[(false, &two)]);
        assert_eq!(v, [Verdict::Done(SKINNY)]);
        // A message cut in two segments.
        let (a, b) = two.split_at(20);
        let (v, _) = run(dissect, &f, &[(false, a), (false, b)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(SKINNY)]);
        // A header cut after its length.
        let (a, b) = two.split_at(6);
        let (v, _) = run(dissect, &f, &[(false, a), (false, b)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(SKINNY)]);
    }

    #[test]
    fn rejects_bad_headers() {
        let f = flow(true, 49399, PORT);
        let good = hex(KEYPAD);
        // Unknown header version, message id, length too small.
        for (at, byte) in [(4, 0x09), (9, 0x03), (0, 0x02)] {
            let mut bad = good.clone();
            bad[at] = byte;
            let (v, _) = run(dissect, &f, &[(true, &bad)]);
            assert_eq!(v, [Verdict::No], "byte {at}");
        }
        // Two messages of different header versions.
        let mut second = hex(FROM_PHONE);
        second[4] = 0x11;
        let (v, _) = run(dissect, &f, &[(true, &[good, second].concat())]);
        assert_eq!(v, [Verdict::No]);
        // Not on port 2000.
        let (v, _) = run(dissect, &flow(true, 40000, 2001), &[(true, &hex(KEYPAD))]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn rejects_other_protocols() {
        use crate::dissect::testing::{HTTP_REQUEST_HEAD, TLS_HELLO_HEAD};
        let f = flow(true, 40000, PORT);
        for src in [HTTP_REQUEST_HEAD, TLS_HELLO_HEAD] {
            let (v, _) = run(dissect, &f, &[(true, &hex(src))]);
            assert_eq!(v, [Verdict::No], "{src}");
        }
    }

    #[test]
    fn truncated_input_does_not_panic() {
        let f = flow(true, 40000, PORT);
        let p = hex(CALL_STATE);
        for n in 1..p.len() {
            let (v, _) = run(dissect, &f, &[(false, &p[..n])]);
            assert_eq!(v, [Verdict::Maybe], "{n}");
        }
    }
}
