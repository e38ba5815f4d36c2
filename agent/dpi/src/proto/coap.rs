//! CoAP (RFC 7252) over UDP.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// COAP.
const COAP: Protocol = Protocol(27);
/// CoAP's port and the 6LoWPAN compressed range (61616 to 61631).
const PORTS: [u16; 17] = [
    5683, 61616, 61617, 61618, 61619, 61620, 61621, 61622, 61623, 61624, 61625, 61626, 61627,
    61628, 61629, 61630, 61631,
];
/// Options read before giving up on finding their end.
const MAX_OPTIONS: usize = 32;

/// COAP (`Protocol(27)`): on UDP port 5683 or 61616 to 61631 (6LoWPAN),
/// a message of version 1, token length at most 8, a code of a defined
/// class (request 0.01 to 0.07, response 2.xx, 4.xx, 5.xx, or empty
/// 0.00 with nothing after the header), then options that parse to the
/// end or to the payload marker. `Done` at once.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if pkt.tcp || !(PORTS.contains(&pkt.flow.server_port) || PORTS.contains(&pkt.flow.client_port))
    {
        return Verdict::No;
    }
    if message(pkt.payload) {
        Verdict::Done(COAP)
    } else {
        Verdict::No
    }
}

/// Whether `p` is a CoAP message.
fn message(p: &[u8]) -> bool {
    let Some((&[first, code, _, _], rest)) = p.split_first_chunk::<4>() else {
        return false;
    };
    let tkl = usize::from(first & 0x0f);
    if first >> 6 != 1 || tkl > 8 {
        return false;
    }
    let (class, detail) = (code >> 5, code & 0x1f);
    let code_ok = match class {
        0 => detail <= 7,
        2 => (1..=5).contains(&detail) || detail == 31,
        4 => detail <= 15,
        5 => detail <= 8,
        _ => false,
    };
    if !code_ok {
        return false;
    }
    if code == 0 {
        return tkl == 0 && rest.is_empty();
    }
    let Some(mut options) = rest.get(tkl..) else {
        return false;
    };
    for _ in 0..MAX_OPTIONS {
        let Some((&b, after)) = options.split_first() else {
            return true;
        };
        if b == 0xff {
            return !after.is_empty();
        }
        let (Some(delta_ext), Some(len_ext)) = (ext(b >> 4), ext(b & 0x0f)) else {
            return false;
        };
        let Some(len_bytes) = after.get(delta_ext..delta_ext + len_ext) else {
            return false;
        };
        let len = match (b & 0x0f, len_bytes) {
            (13, &[l]) => usize::from(l) + 13,
            (14, &[l0, l1]) => usize::from(u16::from_be_bytes([l0, l1])) + 269,
            (n, _) => usize::from(n),
        };
        match after.get(delta_ext + len_ext + len..) {
            Some(next) => options = next,
            None => return false,
        }
    }
    false
}

/// Extension bytes after an option's first byte for a delta or length
/// nibble; `None` for 15 (reserved).
fn ext(nibble: u8) -> Option<usize> {
    match nibble {
        13 => Some(1),
        14 => Some(2),
        15 => None,
        _ => Some(0),
    }
}

/// Version 1 in the first two bits.
fn version(_from_client: bool, byte: u8) -> bool {
    byte >> 6 == 1
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "coap",
    protocols: &[Protocol(27)],
    tcp: false,
    udp: true,
    ports: &PORTS,
    ports_only: true,
    first: version,
    run: dissect,
    samples: &[Sample {
        origin: "synthetic (RFC 7252): GET /temperature and its 2.05 Content",
        tcp: false,
        server_port: 5683,
        packets: &[
            (true, "42017d342090bb74656d7065726174757265"),
            (false, "62457d342090ff32322e332043"),
        ],
        protocol: COAP,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{DNS_QUERY, STUN_REQUEST, flow, hex, run};

    /// Synthetic (RFC 7252 appendix A, figure 16 layout): a confirmable
    /// GET /temperature with a 2-byte token, its piggy-backed 2.05
    /// Content response "22.3 C", and an empty ACK.
    const GET: &str = "42017d34 2090 bb74656d7065726174757265";
    const CONTENT: &str = "62457d34 2090 ff32322e332043";
    const EMPTY_ACK: &str = "60007d34";

    #[test]
    fn request_and_responses() {
        let f = flow(false, 40000, 5683);
        for m in [GET, CONTENT, EMPTY_ACK] {
            let (v, meta) = run(dissect, &f, &[(true, &hex(m))]);
            assert_eq!(v, [Verdict::Done(COAP)], "{m}");
            assert_eq!(meta, Metadata::default());
        }
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(false, 40000, 5683);
        for bytes in [
            hex(DNS_QUERY),
            hex(STUN_REQUEST),
            hex("60007d3400"),
            hex("42017d342090ff"),
            hex("4201"),
        ] {
            let (v, _) = run(dissect, &f, &[(true, &bytes)]);
            assert_eq!(v, [Verdict::No], "{bytes:02x?}");
        }
        let (v, _) = run(dissect, &flow(false, 40000, 5353), &[(true, &hex(GET))]);
        assert_eq!(v, [Verdict::No]);
    }
}
