//! PTP version 2 (IEEE 1588-2008/2019) over UDP.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// PTPv2.
const PTPV2: Protocol = Protocol(358);
/// Event and general message ports.
const PORTS: [u16; 2] = [319, 320];
/// The common header's length.
const HEADER: usize = 34;

/// PTPv2 (`Protocol(358)`): on UDP port 319 or 320, a message with
/// version 2 (minor 0 or 1), a defined message type (Sync, Delay_Req,
/// Pdelay_Req and _Resp, Follow_Up, Delay_Resp, Pdelay_Resp_Follow_Up,
/// Announce, Signaling, Management) and a message length of at least the
/// header and at most the datagram. `Done` at once.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let on_port = PORTS.contains(&pkt.flow.server_port) || PORTS.contains(&pkt.flow.client_port);
    let Some(&[kind, version, l0, l1]) = pkt.payload.first_chunk::<4>() else {
        return Verdict::No;
    };
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    if pkt.tcp
        || !on_port
        || !matches!(kind & 0x0f, 0..=3 | 8..=0x0d)
        || version & 0x0f != 2
        || version >> 4 > 1
        || !(HEADER..=pkt.payload.len()).contains(&len)
    {
        return Verdict::No;
    }
    Verdict::Done(PTPV2)
}

/// A defined message type in the low nibble.
fn message_type(_from_client: bool, byte: u8) -> bool {
    matches!(byte & 0x0f, 0..=3 | 8..=0x0d)
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "ptp",
    protocols: &[Protocol(358)],
    tcp: false,
    udp: true,
    ports: &PORTS,
    ports_only: true,
    first: message_type,
    run: dissect,
    samples: &[Sample {
        origin: "ptpv2.pcap frame 1",
        tcp: false,
        server_port: 320,
        packets: &[(
            true,
            "0c02003600000400000000000000000000000000002094fffe00000d00010001\
             05ffffffffffffffffffffff00040006b0000000012c0000",
        )],
        protocol: PTPV2,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{DNS_QUERY, STUN_REQUEST, flow, hex, run};

    /// ptpv2.pcap frame 1: a signaling message.
    const SIGNALING: &str = "0c02003600000400000000000000000000000000002094fffe00000d0001000105ffffffffffffffffffffff00040006b0000000012c0000";
    /// Synthetic (IEEE 1588-2008 13.3 and 13.6): a two-step Sync.
    const SYNC: &str = "0002002c000002000000000000000000000000000011223344556677000100010000000000000000000000000000";

    #[test]
    fn messages() {
        let f = flow(false, 320, 320);
        let (v, meta) = run(dissect, &f, &[(true, &hex(SIGNALING))]);
        assert_eq!(v, [Verdict::Done(PTPV2)]);
        assert_eq!(meta, Metadata::default());
        let (v, _) = run(dissect, &flow(false, 319, 319), &[(true, &hex(SYNC))]);
        assert_eq!(v, [Verdict::Done(PTPV2)]);
    }

    #[test]
    fn not_other_protocols() {
        let (v, _) = run(dissect, &flow(false, 40000, 123), &[(true, &hex(SYNC))]);
        assert_eq!(v, [Verdict::No]);
        let f = flow(false, 320, 320);
        let mut v1 = hex(SYNC);
        v1[1] = 1;
        for bytes in [v1, hex(DNS_QUERY), hex(STUN_REQUEST)] {
            let (v, _) = run(dissect, &f, &[(true, &bytes)]);
            assert_eq!(v, [Verdict::No]);
        }
    }
}
