//! Inter-Asterisk eXchange v2 (IAX, RFC 5456) over UDP (port 4569).
//!
//! A full frame: the F bit and a 15-bit source call number, the R bit
//! and destination call number, a 32-bit timestamp, the outbound and
//! inbound sequence numbers, the frame type (1..=10) and its subclass,
//! then (for IAX control frames, type 6) information elements, each a
//! type byte, a length byte and the data, to the end of the datagram.
//! Claimed on the first full frame of a call (outbound sequence 0,
//! inbound 0 or 1) of type IAX whose elements walk exactly to its end.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// IAX.
const IAX: Protocol = Protocol(95);
/// IAX's port.
const PORT: u16 = 4569;
/// The IAX control frame type.
const TYPE_IAX: u8 = 6;
/// Elements read from one frame.
const MAX_ELEMENTS: usize = 64;

/// See the module's documentation.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if pkt.tcp || (pkt.flow.server_port != PORT && pkt.flow.client_port != PORT) {
        return Verdict::No;
    }
    let Some((&[src0, _, _, _, _, _, _, _, oseq, iseq, kind, subclass], elements)) =
        pkt.payload.split_first_chunk::<12>()
    else {
        return Verdict::No;
    };
    // Subclasses of IAX frames run 1..=0x26 (NEW .. CALLTOKEN, RFC 5456
    // and its token extension).
    if src0 & 0x80 == 0
        || oseq != 0
        || iseq > 1
        || kind != TYPE_IAX
        || !(1..=0x26).contains(&subclass)
        || !walk(elements)
    {
        return Verdict::No;
    }
    Verdict::Done(IAX)
}

/// Whether `b` is whole information elements.
fn walk(mut b: &[u8]) -> bool {
    for _ in 0..MAX_ELEMENTS {
        match b {
            [] => return true,
            [_, len, rest @ ..] => match rest.get(usize::from(*len)..) {
                Some(next) => b = next,
                None => return false,
            },
            _ => return false,
        }
    }
    false
}

/// A NEW (subclass 1) from source call 2 with a version (0x0b: 2),
/// called number (0x01: "100") and format (0x09) elements, built from
/// RFC 5456.
const NEW: &str = "800200000000000a000006010b0200020103313030090400000004";

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "iax",
    protocols: &[IAX],
    tcp: false,
    udp: true,
    ports: &[PORT],
    ports_only: true,
    first: |_, b| b & 0x80 != 0,
    run: dissect,
    samples: &[Sample {
        origin: "built from RFC 5456 (a NEW)",
        tcp: false,
        server_port: PORT,
        packets: &[(true, NEW)],
        protocol: IAX,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    #[test]
    fn new_and_bare_frames() {
        let f = flow(false, 40000, PORT);
        let (v, _) = run(dissect, &f, &[(true, &hex(NEW))]);
        assert_eq!(v, [Verdict::Done(IAX)]);
        // A POKE (subclass 0x1e) without elements.
        let (v, _) = run(dissect, &f, &[(true, &hex("80030000000000050000061e"))]);
        assert_eq!(v, [Verdict::Done(IAX)]);
    }

    #[test]
    fn rejects_bad_frames() {
        let f = flow(false, 40000, PORT);
        let good = hex(NEW);
        // Mini frame, later sequence, other type, elements overrun.
        for (at, byte) in [(0, 0x00), (8, 0x05), (10, 0x02), (22, 0x09)] {
            let mut bad = good.clone();
            bad[at] = byte;
            let (v, _) = run(dissect, &f, &[(true, &bad)]);
            assert_eq!(v, [Verdict::No], "byte {at}");
        }
        let (v, _) = run(dissect, &flow(false, 40000, 4570), &[(true, &good)]);
        assert_eq!(v, [Verdict::No]);
        // Cut inside the header or an element.
        for n in (0..12).chain([13, 15, 17, 20, 22, 25]) {
            let (v, _) = run(dissect, &f, &[(true, &good[..n])]);
            assert_eq!(v, [Verdict::No], "{n}");
        }
    }
}
