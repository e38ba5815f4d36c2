//! Saia-Burgess Ether-S-Bus (PCD) telegrams over UDP.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};
use crate::proto::crc::crc16_ccitt;

/// Ether-S-Bus.
const ETHER_S_BUS: Protocol = Protocol(368);
/// Header (length, version, protocol type, sequence, attribute) and CRC.
const MIN_LEN: usize = 11;

/// Ether-S-Bus (`Protocol(368)`): a UDP telegram whose length field (4
/// bytes) is the datagram's, with version 0 or 1, protocol type 0 (PCD),
/// a telegram attribute 0 to 2 (request, response, acknowledge) and its
/// CRC-16 (XMODEM) right. `Done` at once.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let p = pkt.payload;
    let (Some(&[l0, l1, l2, l3, version, kind, _, _, attribute]), false) =
        (p.first_chunk::<9>(), pkt.tcp)
    else {
        return Verdict::No;
    };
    let len = u32::from_be_bytes([l0, l1, l2, l3]);
    if p.len() < MIN_LEN
        || usize::try_from(len).ok() != Some(p.len())
        || version > 1
        || kind != 0
        || attribute > 2
    {
        return Verdict::No;
    }
    let (body, crc) = p.split_at(p.len() - 2);
    if u16::from_be_bytes([crc[0], crc[1]]) == crc16_ccitt(body, 0) {
        Verdict::Done(ETHER_S_BUS)
    } else {
        Verdict::No
    }
}

/// A telegram's length (4 bytes) starts with 0.
fn length(_from_client: bool, byte: u8) -> bool {
    byte == 0
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "ethersbus",
    protocols: &[Protocol(368)],
    tcp: false,
    udp: true,
    ports: &[5050],
    ports_only: false,
    first: length,
    run: dissect,
    samples: &[Sample {
        origin: "ethersbus.pcap frames 1,2",
        tcp: false,
        server_port: 5050,
        packets: &[
            (true, "0000000d01000001000a205318"),
            (false, "00000014000000010144324d343830323000fac9"),
        ],
        protocol: ETHER_S_BUS,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{DNS_QUERY, STUN_REQUEST, flow, hex, run};

    /// ethersbus.pcap frames 1 and 2: a request and its response.
    const REQUEST: &str = "0000000d01000001000a205318";
    const RESPONSE: &str = "00000014000000010144324d343830323000fac9";

    #[test]
    fn request_and_response() {
        let f = flow(false, 2467, 5050);
        let (v, meta) = run(dissect, &f, &[(true, &hex(REQUEST))]);
        assert_eq!(v, [Verdict::Done(ETHER_S_BUS)]);
        assert_eq!(meta, Metadata::default());
        let (v, _) = run(dissect, &f, &[(false, &hex(RESPONSE))]);
        assert_eq!(v, [Verdict::Done(ETHER_S_BUS)]);
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(false, 40000, 5050);
        let mut bad = hex(REQUEST);
        bad[10] ^= 1;
        for bytes in [bad, hex(DNS_QUERY), hex(STUN_REQUEST), hex("0000000d01")] {
            let (v, _) = run(dissect, &f, &[(true, &bytes)]);
            assert_eq!(v, [Verdict::No]);
        }
    }
}
