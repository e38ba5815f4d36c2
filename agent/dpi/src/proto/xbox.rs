//! Xbox Live over UDP (the console's system traffic; Xbox over HTTP is
//! named by host name).
//!
//! - A header of four zero bytes, a message kind and size pair at bytes
//!   4 and 6 (`0c`/`76`, `02`/`18`, `0b`/`80`, `03`/`40`, `06`/`4e`),
//!   `58` at byte 5 and three zero bytes: one such packet of more than
//!   12 bytes names the flow, on any port.
//! - On port 3074 (Xbox Live's game port), two packets of the shapes
//!   nDPI knows there (by length and first bytes) do.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// Xbox.
const XBOX: Protocol = Protocol(47);
/// Xbox Live's game port.
const PORT: u16 = 3074;
/// Kind and size pairs (bytes 4 and 6) of the system header.
const KINDS: [(u8, u8); 5] = [
    (0x0c, 0x76),
    (0x02, 0x18),
    (0x0b, 0x80),
    (0x03, 0x40),
    (0x06, 0x4e),
];
/// Packets a flow on port 3074 may take to show two of its shapes.
const MAX_PACKETS: u32 = 6;

/// `Done` per the module doc.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if pkt.tcp {
        return Verdict::No;
    }
    let p = pkt.payload;
    if system(p) {
        return Verdict::Done(XBOX);
    }
    let on_port = pkt.flow.client_port == PORT || pkt.flow.server_port == PORT;
    if !on_port || !game(p) {
        return Verdict::No;
    }
    // Every packet so far had one of the shapes (else the dissector said
    // no): this one is at least the second.
    if pkt.seen[0] + pkt.seen[1] >= 1 {
        Verdict::Done(XBOX)
    } else if pkt.packets() < MAX_PACKETS {
        Verdict::Maybe
    } else {
        Verdict::No
    }
}

/// Whether `p` has the system header.
fn system(p: &[u8]) -> bool {
    let Some(&[0, 0, 0, 0, kind, 0x58, size, 0, 0, 0]) = p.first_chunk::<10>() else {
        return false;
    };
    p.len() > 12 && KINDS.contains(&(kind, size))
}

/// Whether `p` has one of the port-3074 shapes.
fn game(p: &[u8]) -> bool {
    let word = p
        .first_chunk::<4>()
        .map(|&w| u32::from_be_bytes(w))
        .unwrap_or(0);
    match p.len() {
        24 => p.first() == Some(&0x00),
        42 => p.first() == Some(&0x4f) && p.get(2) == Some(&0x0a),
        80 => word >> 8 == 0x0050_bc45,
        40 => word == 0xcf5f_3202,
        38 => word == 0xc145_7f03,
        28 => word == 0x015f_2c00,
        _ => false,
    }
}

/// Whether a flow may start with `byte`: the system header's 0, or a
/// port-3074 shape's first byte.
fn first(_from_client: bool, byte: u8) -> bool {
    matches!(byte, 0x00 | 0x4f | 0x50 | 0xcf | 0xc1 | 0x01)
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "xbox",
    protocols: &[XBOX],
    tcp: false,
    udp: true,
    ports: &[PORT],
    ports_only: false,
    first,
    run: dissect,
    samples: &[
        Sample {
            origin: "built: the system header (kind 0c, size 76) as nDPI's xbox.c matches it",
            tcp: false,
            server_port: 3075,
            packets: &[(true, SYSTEM)],
            protocol: XBOX,
        },
        Sample {
            origin: "built: two 24-byte packets on port 3074 as nDPI's xbox.c matches them",
            tcp: false,
            server_port: PORT,
            packets: &[(true, GAME_24), (false, GAME_24)],
            protocol: XBOX,
        },
    ],
};

/// A system header (kind 0x0c, size 0x76) and 8 bytes of body.
const SYSTEM: &str = "000000000c58760000000102030405060708";
/// A 24-byte packet opening with 0.
const GAME_24: &str = "000102030405060708090a0b0c0d0e0f1011121314151617";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    #[test]
    fn system_header_on_any_port() {
        let f = flow(false, 40000, 3075);
        let (v, _) = run(dissect, &f, &[(true, &hex(SYSTEM))]);
        assert_eq!(v, [Verdict::Done(XBOX)]);
        let mut p = hex(SYSTEM);
        p[6] = 0x18; // kind 0c with another size
        let (v, _) = run(dissect, &f, &[(true, &p)]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn port_3074_shapes_take_two_packets() {
        let p = hex(GAME_24);
        let (v, _) = run(
            dissect,
            &flow(false, 40000, PORT),
            &[(true, &p), (false, &p)],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(XBOX)]);
        let (v, _) = run(dissect, &flow(false, 40000, 3075), &[(true, &p)]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn rejects_other_protocols() {
        let f = flow(false, 40000, PORT);
        for s in [
            crate::dissect::testing::DNS_QUERY,
            crate::dissect::testing::STUN_REQUEST,
            crate::dissect::testing::WIREGUARD_KEEPALIVE,
            crate::dissect::testing::RTP,
        ] {
            let (v, _) = run(dissect, &f, &[(true, &hex(s))]);
            assert_eq!(v, [Verdict::No], "{s}");
        }
    }

    #[test]
    fn truncated_input_does_not_panic() {
        for s in [SYSTEM, GAME_24] {
            let p = hex(s);
            for n in 0..p.len() {
                let _ = run(
                    dissect,
                    &flow(false, 1, PORT),
                    &[(true, &p[..n]), (true, &p[..n])],
                );
            }
        }
    }
}
