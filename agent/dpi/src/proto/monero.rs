//! Monero's peer-to-peer protocol over TCP: Levin.
//!
//! Every Levin message opens with a 33-byte header: the signature `01 21
//! 01 01 01 01 01 01`, the body length (8 bytes, little-endian), the
//! "expects a return" flag, the command (4), the return code (4), flags
//! (4) and the protocol version (4) = 1. The first header of the side
//! that spoke first names the flow when it is consistent so.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, by_opening};

/// Monero.
const MONERO: Protocol = Protocol(369);
/// The Levin signature.
const SIGNATURE: [u8; 8] = [0x01, 0x21, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01];
/// Largest body a peer accepts (100 MB, Monero's default limit).
const MAX_BODY: u64 = 100 << 20;
/// Payload packets a flow may take to show a whole header.
const MAX_PACKETS: u32 = 4;

/// `Done` on a valid first header (see the module doc).
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    by_opening(pkt, MONERO, MAX_PACKETS, header)
}

/// Whether `s` opens with a valid Levin header (`None`: too short to
/// tell).
fn header(s: &[u8]) -> Option<bool> {
    let n = s.len().min(SIGNATURE.len());
    if s.get(..n) != SIGNATURE.get(..n) {
        return Some(false);
    }
    let h = s.get(..33)?;
    let body = u64::from_le_bytes(h[8..16].try_into().ok()?);
    let return_flag = h[16];
    Some(body <= MAX_BODY && return_flag <= 1 && h[29..33] == [1, 0, 0, 0])
}

/// Whether a flow may start with `byte`: the signature's first.
fn first(_from_client: bool, byte: u8) -> bool {
    byte == SIGNATURE[0]
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "monero",
    protocols: &[MONERO],
    tcp: true,
    udp: false,
    ports: &[18080, 28080, 38080],
    ports_only: false,
    first,
    run: dissect,
    samples: &[Sample {
        origin: "monero.pcap frames 4",
        tcp: true,
        server_port: 18080,
        packets: &[(true, HANDSHAKE)],
        protocol: MONERO,
    }],
};

/// monero.pcap frame 4: a handshake request (command 1001, 295 bytes).
const HANDSHAKE: &str = "0121010101010101060100000000000001e90300000000000001000000010000\
             0001110101010102010108096e6f64655f646174610c10076d795f706f727406\
             a04600000a6e6574776f726b5f69640a401230f171610441611731008216a1a1\
             1007706565725f696405119661483bc2acac0d737570706f72745f666c616773\
             06010000000c7061796c6f61645f646174610c141563756d756c61746976655f\
             646966666963756c74790501000000000000001b63756d756c61746976655f64\
             6966666963756c74795f746f7036340500000000000000000e63757272656e74\
             5f68656967687405010000000000000006746f705f69640a80418015bb9ae982\
             a1975da7d79277c2705727a56894ba0fb246adaabb1f4632e30b746f705f7665\
             7273696f6e0801";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    #[test]
    fn handshake_names_the_flow() {
        let p = hex(HANDSHAKE);
        let f = flow(true, 48882, 18080);
        let (v, _) = run(dissect, &f, &[(true, &p)]);
        assert_eq!(v, [Verdict::Done(MONERO)]);
        let (v, _) = run(dissect, &f, &[(true, &p[..20]), (true, &p[20..])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(MONERO)]);
    }

    #[test]
    fn rejects_bad_headers_and_other_protocols() {
        let f = flow(true, 48882, 18080);
        let mut p = hex(HANDSHAKE);
        p[29] = 2; // protocol version
        let (v, _) = run(dissect, &f, &[(true, &p)]);
        assert_eq!(v, [Verdict::No]);
        for s in [
            crate::dissect::testing::TLS_HELLO_HEAD,
            crate::dissect::testing::HTTP_REQUEST_HEAD,
        ] {
            let (v, _) = run(dissect, &f, &[(true, &hex(s))]);
            assert_eq!(v, [Verdict::No], "{s}");
        }
        let (v, _) = run(dissect, &flow(false, 1, 2), &[(true, &hex(HANDSHAKE))]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn truncated_input_does_not_panic() {
        let p = hex(HANDSHAKE);
        for n in 0..p.len() {
            let _ = run(dissect, &flow(true, 1, 2), &[(true, &p[..n])]);
        }
    }
}
