//! MPEG transport stream over UDP (nDPI "MPEG_TS"): datagrams of whole
//! 188-byte packets, each opening with the sync byte 0x47, its transport
//! error bit clear and an adaptation field control other than 0
//! (reserved).

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// nDPI's MPEG_TS.
const MPEG_TS: Protocol = Protocol(198);
const PACKET: usize = 188;
const SYNC: u8 = 0x47;

/// `Done` on a datagram of one to seven well-formed packets.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let p = pkt.payload;
    let whole = !pkt.tcp && !p.is_empty() && p.len() % PACKET == 0 && p.len() <= 7 * PACKET;
    let ok = whole
        && p.chunks(PACKET)
            .all(|c| c[0] == SYNC && c[1] & 0x80 == 0 && c[3] & 0x30 != 0);
    if ok {
        Verdict::Done(MPEG_TS)
    } else {
        Verdict::No
    }
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "mpegts",
    protocols: &[MPEG_TS],
    tcp: false,
    udp: true,
    ports: &[],
    ports_only: false,
    first: |_, b| b == SYNC,
    run: dissect,
    samples: &[Sample {
        origin: "built: a null packet (PID 0x1FFF, payload only, stuffing)",
        tcp: false,
        server_port: 5000,
        packets: &[(
            true,
            "471fff10ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        )],
        protocol: MPEG_TS,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, run};

    #[test]
    fn whole_packets_only() {
        let f = flow(false, 40000, 1234);
        let mut one = [0xffu8; PACKET];
        one[..4].copy_from_slice(&[SYNC, 0x1f, 0xff, 0x10]);
        let seven = one.repeat(7);
        assert_eq!(
            run(dissect, &f, &[(true, &seven)]).0,
            [Verdict::Done(MPEG_TS)]
        );
        assert_eq!(run(dissect, &f, &[(true, &seven[..500])]).0, [Verdict::No]);
        let mut bad = seven.clone();
        bad[PACKET * 3] = 0x48;
        assert_eq!(run(dissect, &f, &[(true, &bad)]).0, [Verdict::No]);
        assert_eq!(run(dissect, &f, &[(true, &one.repeat(8))]).0, [Verdict::No]);
    }
}
