//! TRDP (IEC 61375-2-3, train real-time data): process data over UDP,
//! message data over UDP and TCP.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};
use crate::proto::crc::crc32;

/// TRDP.
const TRDP: Protocol = Protocol(424);
/// Header lengths, the last 4 bytes its FCS: process and message data.
const PD_HEADER: usize = 40;
const MD_HEADER: usize = 116;
/// Payload packets a TCP flow may take to show a whole header.
const MAX_PACKETS: u32 = 6;

/// TRDP (`Protocol(424)`): a PD (UDP) or MD (UDP, or the start of either
/// TCP stream) header: protocol version 1.x, a message type starting `P`
/// or `M`, the dataset length fitting the packet, and the header's
/// CRC-32 (sent little-endian) right. `Done` at once.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let bytes = if pkt.tcp { pkt.stream() } else { pkt.payload };
    match header(bytes, pkt.tcp) {
        Some(true) => Verdict::Done(TRDP),
        None if pkt.tcp && pkt.packets() < MAX_PACKETS => Verdict::Maybe,
        _ => Verdict::No,
    }
}

/// Whether `bytes` open with a TRDP header: `None` while cut short.
fn header(bytes: &[u8], tcp: bool) -> Option<bool> {
    // Sequence counter (4), protocol version (major 1), message type.
    let kind = match (bytes.get(4), bytes.get(6)) {
        (Some(&v), _) if v != 1 => return Some(false),
        (_, Some(b'P')) if !tcp => PD_HEADER,
        (_, Some(b'M')) => MD_HEADER,
        (_, Some(_)) => return Some(false),
        (_, None) => return None,
    };
    let head = bytes.get(..kind)?;
    let dataset = usize::try_from(u32::from_be_bytes([head[20], head[21], head[22], head[23]]));
    let dataset = dataset.unwrap_or(usize::MAX);
    let rest = bytes.len() - kind;
    let fits = match kind {
        // PD: reserved 0, the dataset fills the datagram.
        PD_HEADER => head[24..28] == [0; 4] && dataset == rest,
        // MD: the dataset, padded to 4 bytes, fills the datagram; on TCP
        // it may be still to come.
        _ => {
            let padded = dataset.saturating_add(3) & !3;
            if tcp {
                dataset <= 1 << 20
            } else {
                padded == rest || dataset == rest
            }
        }
    };
    let fcs = u32::from_le_bytes([
        head[kind - 4],
        head[kind - 3],
        head[kind - 2],
        head[kind - 1],
    ]);
    Some(fits && fcs == crc32(&head[..kind - 4]))
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "trdp",
    protocols: &[Protocol(424)],
    tcp: true,
    udp: true,
    ports: &[17224, 17225],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[
        Sample {
            origin: "trdp.pcapng frame 13",
            tcp: false,
            server_port: 17224,
            packets: &[(
                true,
                "0000000001005064000000000000000000000000000000180000000000000000\
             00000000ce487aea48656c6c6f20576f726c6400000000000000000000000000",
            )],
            protocol: TRDP,
        },
        Sample {
            origin: "trdp.pcapng frame 4",
            tcp: true,
            server_port: 17225,
            packets: &[(
                true,
                "0000000001004d72000003e900000000000000000000000d0000000069322ac4\
             5bc911ef98daf02f74ad43f5001e848000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             000000000000000000000000000000005ec79b1e486f772061726520796f753f\
             00000000",
            )],
            protocol: TRDP,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{DNS_QUERY, HTTP_REQUEST_HEAD, flow, hex, run};

    /// trdp.pcapng frame 13: process data "Hello World".
    const PD: &str = "000000000100506400000000000000000000000000000018000000000000000000000000ce487aea48656c6c6f20576f726c6400000000000000000000000000";
    /// trdp.pcapng frame 11: a message data request "How are you?".
    const MD: &str = "0000000001004d72000003e900000000000000000000000d0000000051d8f2e65bc811ef98daf02f74ad43f5001e8480000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000002c7f7f66486f772061726520796f753f00000000";

    #[test]
    fn process_and_message_data() {
        let (v, meta) = run(dissect, &flow(false, 47228, 17224), &[(true, &hex(PD))]);
        assert_eq!(v, [Verdict::Done(TRDP)]);
        assert_eq!(meta, Metadata::default());
        let (v, _) = run(dissect, &flow(false, 45318, 17225), &[(true, &hex(MD))]);
        assert_eq!(v, [Verdict::Done(TRDP)]);
        let md = hex(MD);
        let (v, _) = run(
            dissect,
            &flow(true, 45482, 17225),
            &[(true, &md[..50]), (true, &md[50..])],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(TRDP)]);
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(false, 40000, 17224);
        let mut bad = hex(PD);
        bad[30] ^= 1;
        for bytes in [bad, hex(DNS_QUERY), hex(HTTP_REQUEST_HEAD)] {
            let (v, _) = run(dissect, &f, &[(true, &bytes)]);
            assert_eq!(v, [Verdict::No]);
        }
    }

    #[test]
    fn prefixes_do_not_panic() {
        let r = hex(MD);
        // Done once the header is whole (its CRC checked).
        for n in 0..MD_HEADER {
            let (v, _) = run(dissect, &flow(true, 1, 17225), &[(true, &r[..n])]);
            assert_eq!(v, [Verdict::Maybe], "{n}");
        }
    }
}
