//! BACnet/IP: the BVLC header (ASHRAE 135 Annex J) over UDP.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// BACnet.
const BACNET: Protocol = Protocol(334);
/// BVLC type of BACnet/IP.
const BVLC_IP: u8 = 0x81;
/// BVLC functions carrying an NPDU: forwarded (after the original
/// sender's B/IP address), distribute broadcast, original unicast and
/// broadcast, secure BVLL excluded.
const FORWARDED: u8 = 0x04;
const WITH_NPDU: [u8; 3] = [0x09, 0x0a, 0x0b];

/// BACnet (`Protocol(334)`): a UDP datagram opening with a BVLC header
/// (type 0x81, a function 0x00 to 0x0c, the length the datagram's); a
/// function carrying an NPDU must carry one of version 1. `Done` at once.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let p = pkt.payload;
    let Some(&[BVLC_IP, function, l0, l1]) = p.first_chunk::<4>() else {
        return Verdict::No;
    };
    if pkt.tcp || function > 0x0c || usize::from(u16::from_be_bytes([l0, l1])) != p.len() {
        return Verdict::No;
    }
    let npdu = match function {
        FORWARDED => p.get(10..),
        f if WITH_NPDU.contains(&f) => p.get(4..),
        _ => Some(&[1u8][..]),
    };
    match npdu.and_then(<[u8]>::first) {
        Some(1) => Verdict::Done(BACNET),
        _ => Verdict::No,
    }
}

/// BVLC type of BACnet/IP.
fn bvlc(_from_client: bool, byte: u8) -> bool {
    byte == BVLC_IP
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "bacnet",
    protocols: &[Protocol(334)],
    tcp: false,
    udp: true,
    ports: &[47808],
    ports_only: false,
    first: bvlc,
    run: dissect,
    samples: &[Sample {
        origin: "synthetic (ASHRAE 135 J.2, 6.2): original broadcast who-is",
        tcp: false,
        server_port: 47808,
        packets: &[(true, "810b000c0120ffff00ff1008")],
        protocol: BACNET,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{DNS_QUERY, STUN_REQUEST, flow, hex, run};

    /// Synthetic (ASHRAE 135 J.2 and 6.2): an original broadcast who-is
    /// (NPDU version 1, control 0x20, global broadcast, hop count 255,
    /// unconfirmed who-is), and a BVLC result (function 0, code 0).
    const WHO_IS: &str = "810b000c 0120ffff00ff 1008";
    const RESULT: &str = "810000060000";

    #[test]
    fn who_is_and_result() {
        let f = flow(false, 47808, 47808);
        let (v, meta) = run(dissect, &f, &[(true, &hex(WHO_IS))]);
        assert_eq!(v, [Verdict::Done(BACNET)]);
        assert_eq!(meta, Metadata::default());
        let (v, _) = run(dissect, &f, &[(false, &hex(RESULT))]);
        assert_eq!(v, [Verdict::Done(BACNET)]);
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(false, 40000, 47808);
        for bytes in [
            hex("810b000d0120ffff00ff1008"),
            hex("810b000c0220ffff00ff1008"),
            hex("811f00040000"),
            hex(DNS_QUERY),
            hex(STUN_REQUEST),
        ] {
            let (v, _) = run(dissect, &f, &[(true, &bytes)]);
            assert_eq!(v, [Verdict::No], "{bytes:02x?}");
        }
    }
}
