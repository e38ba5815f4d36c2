//! RX, the RPC transport of AFS, over UDP.
//!
//! Every packet opens with a 28-byte header: connection epoch and id,
//! call number, sequence and serial numbers (4 bytes each), then the
//! packet type (1 to 13), flags, user status, security index (0 to 3), a
//! checksum and the service id (2 bytes each).

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// RX.
const RX: Protocol = Protocol(223);
/// Header length.
const HEADER: usize = 28;
/// Flag values seen on valid packets (client initiated, request ack,
/// last packet, more packets, slow start, jumbo, and their unions).
const FLAGS: [u8; 10] = [0, 1, 2, 3, 4, 5, 6, 9, 33, 34];

/// Per-flow state: the connection (epoch and id) the first packet named,
/// and which side sent it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct State {
    connection: Option<([u8; 8], bool)>,
}

/// RX when a packet from each side carries a valid header for the same
/// connection (epoch and id).
pub(crate) fn dissect(pkt: &Packet<'_>, scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if pkt.tcp {
        return Verdict::No;
    }
    scratch.keep(|st: &mut State| step(pkt, st))
}

/// [`dissect`] on the flow's state.
fn step(pkt: &Packet<'_>, st: &mut State) -> Verdict {
    let Some(connection) = header(pkt.payload) else {
        return Verdict::No;
    };
    match st.connection {
        None => {
            st.connection = Some((connection, pkt.from_client));
            Verdict::Maybe
        }
        Some((known, side)) if side == pkt.from_client => {
            if known == connection {
                Verdict::Maybe
            } else {
                Verdict::No
            }
        }
        Some((known, _)) if known == connection => Verdict::Done(RX),
        Some(_) => Verdict::No,
    }
}

/// The connection (epoch and id) of a valid header at the start of `p`.
fn header(p: &[u8]) -> Option<[u8; 8]> {
    let h = p.get(..HEADER)?;
    let (kind, flags, security) = (h[20], h[21], h[23]);
    let ok = (1..=13).contains(&kind) && FLAGS.contains(&flags) && security <= 3;
    ok.then(|| h[..8].try_into().ok()).flatten()
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "rx",
    protocols: &[RX],
    tcp: false,
    udp: true,
    ports: &[7000, 7001, 7002, 7003, 7004, 7005, 7007],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "rx.pcap frames 1,2 (first 40 bytes of frame 1)",
        tcp: false,
        server_port: 7002,
        packets: &[
            (
                true,
                "570fb5605c3fc9880000000100000001000000010105000000000049000001f80000000100000067",
            ),
            (
                false,
                "570fb5605c3fc98800000001000000010000000101040000000000490000000100002711",
            ),
        ],
        protocol: RX,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    #[test]
    fn both_sides_on_one_connection() {
        let s = &DISSECTOR.samples[0];
        let f = flow(false, 41559, 7002);
        let (v, meta) = run(
            dissect,
            &f,
            &[(true, &hex(s.packets[0].1)), (false, &hex(s.packets[1].1))],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(RX)]);
        assert_eq!(meta, Metadata::default());
        // The server answering another connection.
        let mut other = hex(s.packets[1].1);
        other[7] ^= 1;
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &hex(s.packets[0].1)), (false, &other)],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
    }

    #[test]
    fn not_rx() {
        let f = flow(false, 40000, 7000);
        for p in [
            crate::dissect::testing::DNS_QUERY,
            crate::dissect::testing::STUN_REQUEST,
            crate::dissect::testing::RTP,
            crate::dissect::testing::OPENVPN_RESET,
        ] {
            let (v, _) = run(dissect, &f, &[(true, &hex(p)), (false, &hex(p))]);
            assert_ne!(v.last(), Some(&Verdict::Done(RX)), "{p}");
        }
    }
}
