//! IEEE C37.118 synchrophasor frames over TCP and UDP.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};
use crate::proto::crc::crc16_ccitt;

/// IEEE-C37118.
const C37118: Protocol = Protocol(367);
/// Smallest frame: SYNC, FRAMESIZE, IDCODE, SOC, FRACSEC, CHK.
const MIN_LEN: usize = 16;
/// Payload packets a TCP flow may take to show a whole frame.
const MAX_PACKETS: u32 = 6;

/// IEEE-C37118 (`Protocol(367)`): a frame at the start of the payload
/// (UDP) or of either stream (TCP): SYNC byte 0xAA, a frame type 0 to 5
/// and version 1 to 3, FRAMESIZE the frame's length, and its CRC-CCITT
/// right. `Done` at once.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let bytes = if pkt.tcp { pkt.stream() } else { pkt.payload };
    match frame(bytes, pkt.tcp) {
        Some(true) => Verdict::Done(C37118),
        None if pkt.tcp && pkt.packets() < MAX_PACKETS => Verdict::Maybe,
        _ => Verdict::No,
    }
}

/// Whether `bytes` open with a frame (fill them, when not `stream`):
/// `None` while cut short.
fn frame(bytes: &[u8], stream: bool) -> Option<bool> {
    let sync_ok = bytes.first().is_none_or(|&b| b == 0xaa)
        && bytes
            .get(1)
            .is_none_or(|&b| b >> 4 <= 5 && (1..=3).contains(&(b & 0x0f)));
    if !sync_ok {
        return Some(false);
    }
    let size = bytes.get(2..4)?;
    let size = usize::from(u16::from_be_bytes([size[0], size[1]]));
    if size < MIN_LEN || (!stream && size != bytes.len()) {
        return Some(false);
    }
    let frame = bytes.get(..size)?;
    let (body, chk) = frame.split_at(size - 2);
    Some(u16::from_be_bytes([chk[0], chk[1]]) == crc16_ccitt(body, 0xffff))
}

/// A frame's SYNC byte.
fn sync(_from_client: bool, byte: u8) -> bool {
    byte == 0xaa
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "c37118",
    protocols: &[Protocol(367)],
    tcp: true,
    udp: true,
    ports: &[4712, 4713],
    ports_only: false,
    first: sync,
    run: dissect,
    samples: &[
        Sample {
            origin: "ieee_c37118.pcap frame 4",
            tcp: true,
            server_port: 4712,
            packets: &[(true, "aa41001200f100000000000000000005d7d0")],
            protocol: C37118,
        },
        Sample {
            origin: "ieee_c37118.pcap frame 10",
            tcp: false,
            server_port: 4712,
            packets: &[(
                false,
                "aa01003600f14893344a001eb852080042f68f24c7c36623430188cbc7c36332\
             c7a956764742fe4b47a91cdd4743d1440000000047ef",
            )],
            protocol: C37118,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{DNS_QUERY, HTTP_REQUEST_HEAD, flow, hex, run};

    /// ieee_c37118.pcap frame 4: a command frame (send CFG-2).
    const COMMAND: &str = "aa41001200f100000000000000000005d7d0";
    /// ieee_c37118.pcap frame 10: a data frame.
    const DATA: &str = "aa01003600f14893344a001eb852080042f68f24c7c36623430188cbc7c36332c7a956764742fe4b47a91cdd4743d1440000000047ef";

    #[test]
    fn frames() {
        let (v, meta) = run(dissect, &flow(true, 36835, 4712), &[(true, &hex(COMMAND))]);
        assert_eq!(v, [Verdict::Done(C37118)]);
        assert_eq!(meta, Metadata::default());
        let (v, _) = run(dissect, &flow(false, 4713, 4712), &[(false, &hex(DATA))]);
        assert_eq!(v, [Verdict::Done(C37118)]);
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(false, 40000, 4712);
        let mut bad = hex(DATA);
        bad[20] ^= 1;
        for bytes in [bad, hex(DNS_QUERY), hex(HTTP_REQUEST_HEAD)] {
            let (v, _) = run(dissect, &f, &[(true, &bytes)]);
            assert_eq!(v, [Verdict::No]);
        }
    }

    #[test]
    fn prefixes_do_not_panic() {
        let r = hex(DATA);
        for n in 0..r.len() {
            let (v, _) = run(dissect, &flow(true, 1, 4712), &[(true, &r[..n])]);
            assert_eq!(v, [Verdict::Maybe], "{n}");
        }
    }
}
