//! Game protocols whose UDP signatures are too weak to hold off their
//! ports, as nDPI checks them: the dissector is asked only for flows on
//! one of the games' ports, and each signature only on its own.
//!
//! - Heroes_of_the_Storm (Battle.net ports 1119, 1120, 3724, 6113): a
//!   packet of 20 to 122 bytes with `40 00` at bytes 14-15, after a zero
//!   header or one opening `xx xx 03 00` / `xx xx 34 00`.
//! - CoD_Mobile (port 7500): a 12-byte packet ending `ping`.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// Call of Duty: Mobile.
const COD_MOBILE: Protocol = Protocol(186);
/// Heroes of the Storm.
const HOTS: Protocol = Protocol(336);
/// Battle.net's game ports.
const HOTS_PORTS: [u16; 4] = [1119, 1120, 3724, 6113];
/// Call of Duty: Mobile's ping port.
const COD_PORT: u16 = 7500;
/// Packets with payload read per flow.
const MAX_PACKETS: u32 = 4;

/// `Done` when a packet among the first few carries its port's signature.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if pkt.tcp {
        return Verdict::No;
    }
    let p = pkt.payload;
    let on = |ports: &[u16]| {
        ports.contains(&pkt.flow.client_port) || ports.contains(&pkt.flow.server_port)
    };
    if on(&HOTS_PORTS) && hots(p) {
        return Verdict::Done(HOTS);
    }
    if on(&[COD_PORT]) && p.len() == 12 && p.get(8..) == Some(b"ping") {
        return Verdict::Done(COD_MOBILE);
    }
    if pkt.packets() < MAX_PACKETS {
        Verdict::Maybe
    } else {
        Verdict::No
    }
}

/// Whether `p` has Heroes of the Storm's header.
fn hots(p: &[u8]) -> bool {
    (20..=122).contains(&p.len())
        && p.get(14..16) == Some(&[0x40, 0x00])
        && (p.get(2..4) == Some(&[0x03, 0x00])
            || p.get(2..4) == Some(&[0x34, 0x00])
            || p.iter().take(14).all(|&b| b == 0))
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "portgames",
    protocols: &[COD_MOBILE, HOTS],
    tcp: false,
    udp: true,
    ports: &[1119, 1120, 3724, 6113, COD_PORT],
    ports_only: true,
    first: any_first,
    run: dissect,
    samples: &[
        Sample {
            origin: "hots.pcapng frames 36",
            tcp: false,
            server_port: 1119,
            packets: &[(false, HOTS_36)],
            protocol: HOTS,
        },
        Sample {
            origin: "codm.pcap frames 8",
            tcp: false,
            server_port: COD_PORT,
            packets: &[(true, COD_PING)],
            protocol: COD_MOBILE,
        },
    ],
};

/// hots.pcapng frame 36: from the server, port 1119.
const HOTS_36: &str = "0000000000000000000000000000400009ef65de";
/// codm.pcap frame 8: a ping to port 7500.
const COD_PING: &str = "bbb653ea96fdbb0370696e67";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    fn one(ports: (u16, u16), payload: &[u8]) -> Verdict {
        run(dissect, &flow(false, ports.0, ports.1), &[(true, payload)]).0[0]
    }

    #[test]
    fn signatures_on_their_ports() {
        assert_eq!(one((50609, 1119), &hex(HOTS_36)), Verdict::Done(HOTS));
        assert_eq!(one((3724, 54598), &hex(HOTS_36)), Verdict::Done(HOTS));
        assert_eq!(
            one((40282, 7500), &hex(COD_PING)),
            Verdict::Done(COD_MOBILE)
        );
    }

    #[test]
    fn signatures_off_their_ports() {
        // Each signature only on its own game's ports.
        assert_eq!(one((40282, 7500), &hex(HOTS_36)), Verdict::Maybe);
        assert_eq!(one((40282, 1119), &hex(COD_PING)), Verdict::Maybe);
        assert_eq!(one((40282, 7501), &hex(COD_PING)), Verdict::Maybe);
    }

    #[test]
    fn gives_up_after_a_few_packets() {
        let junk = [0x5a; 64];
        let f = flow(false, 40000, 3724);
        let (v, _) = run(dissect, &f, &[(true, &junk[..]); 4]);
        assert_eq!(
            v,
            [Verdict::Maybe, Verdict::Maybe, Verdict::Maybe, Verdict::No]
        );
        for s in [
            crate::dissect::testing::DNS_QUERY,
            crate::dissect::testing::STUN_REQUEST,
            crate::dissect::testing::RTP,
        ] {
            assert_eq!(one((40000, 1119), &hex(s)), Verdict::Maybe, "{s}");
        }
    }

    #[test]
    fn truncated_input_does_not_panic() {
        let p = hex(HOTS_36);
        for n in 0..p.len() {
            let _ = one((1, 1119), &p[..n]);
            let _ = one((1, 7500), &p[..n]);
        }
    }
}
