//! DNP3 (IEEE 1815) over TCP and UDP: the data link layer header.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};
use crate::proto::crc::crc16_dnp;

/// DNP3.
const DNP3: Protocol = Protocol(244);
/// Payload packets a TCP flow may take to show a whole header.
const MAX_PACKETS: u32 = 6;

/// DNP3 (`Protocol(244)`): a link-layer frame at the start of the
/// payload (UDP) or of either stream (TCP): start bytes `05 64`, a length
/// of at least 5 (control, addresses and user data), and the header's
/// CRC (over the first 8 bytes) right. `Done` at once.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let bytes = if pkt.tcp { pkt.stream() } else { pkt.payload };
    match header(bytes) {
        Some(true) => Verdict::Done(DNP3),
        None if pkt.tcp && pkt.packets() < MAX_PACKETS => Verdict::Maybe,
        // UDP: a datagram holds whole frames.
        _ => Verdict::No,
    }
}

/// Whether `bytes` open with a DNP3 link header: `None` while cut short.
pub(crate) fn header(bytes: &[u8]) -> Option<bool> {
    let start_ok =
        bytes.first().is_none_or(|&b| b == 0x05) && bytes.get(1).is_none_or(|&b| b == 0x64);
    if !start_ok || bytes.get(2).is_some_and(|&len| len < 5) {
        return Some(false);
    }
    let head = bytes.first_chunk::<10>()?;
    let crc = u16::from_le_bytes([head[8], head[9]]);
    Some(crc == crc16_dnp(&head[..8]))
}

/// A link frame's first start byte.
fn start(_from_client: bool, byte: u8) -> bool {
    byte == 0x05
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "dnp3",
    protocols: &[Protocol(244)],
    tcp: true,
    udp: true,
    ports: &[20000],
    ports_only: false,
    first: start,
    run: dissect,
    samples: &[
        Sample {
            origin: "synthetic (IEEE 1815 link layer): request link status",
            tcp: true,
            server_port: 20000,
            packets: &[(true, "056405c904000300b620")],
            protocol: DNP3,
        },
        Sample {
            origin: "synthetic (IEEE 1815): unconfirmed user data, read class 0",
            tcp: false,
            server_port: 20000,
            packets: &[(true, "05640bc404000300e42bc0c1013c0106f973")],
            protocol: DNP3,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{DNS_QUERY, HTTP_REQUEST_HEAD, flow, hex, run};

    /// Synthetic (IEEE 1815 link layer; CRC computed by hand from the
    /// spec's polynomial): a master (address 3) asking outstation 4 for
    /// link status, and an unconfirmed user data frame with an
    /// application request (read class 0).
    const LINK_STATUS: &str = "056405c904000300b620";
    const READ_CLASS0: &str = "05640bc404000300e42b c0c1013c0106 f973";

    #[test]
    fn link_frames() {
        for tcp in [true, false] {
            let f = flow(tcp, 40000, 20000);
            let (v, meta) = run(dissect, &f, &[(true, &hex(LINK_STATUS))]);
            assert_eq!(v, [Verdict::Done(DNP3)]);
            assert_eq!(meta, Metadata::default());
            let (v, _) = run(dissect, &f, &[(false, &hex(READ_CLASS0))]);
            assert_eq!(v, [Verdict::Done(DNP3)]);
        }
    }

    #[test]
    fn bad_crc_or_other_protocols() {
        let f = flow(false, 40000, 20000);
        let mut bad = hex(LINK_STATUS);
        bad[9] ^= 1;
        for bytes in [bad, hex(DNS_QUERY), hex(HTTP_REQUEST_HEAD), hex("0564")] {
            let (v, _) = run(dissect, &f, &[(true, &bytes)]);
            assert_eq!(v, [Verdict::No]);
        }
    }

    #[test]
    fn prefixes_do_not_panic() {
        let r = hex(LINK_STATUS);
        for n in 0..r.len() {
            let (v, _) = run(dissect, &flow(true, 1, 20000), &[(true, &r[..n])]);
            assert_eq!(v, [Verdict::Maybe], "{n}");
        }
    }
}
