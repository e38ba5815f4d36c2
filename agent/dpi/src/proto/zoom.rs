//! Zoom's UDP media transport, as nDPI reads it.
//!
//! On Zoom's media ports (8801 to 8810) datagrams start with an "SFU"
//! encapsulation (type, sequence number, 4 bytes, direction): types 1
//! and 2 open a flow (`01 00 02|03` from the client, `02 00 02|03` from
//! the server); type 5 wraps a media encapsulation (type, 8 bytes,
//! sequence number, timestamp) whose RTP or RTCP packet starts at a
//! fixed offset for each media type; types 3 and 4, too weak alone, are
//! taken after a few packets no other dissector claimed. Peer-to-peer
//! calls skip the SFU layer: a `1f 02 01` media packet with a 24-byte
//! header, then an address and an id each with a 32-bit length, then 4
//! zero bytes, filling the datagram exactly.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};
use crate::proto::rtp::{rtcp, rtp};

/// Zoom.
const ZOOM: Protocol = Protocol(189);
/// Zoom's media ports.
const PORTS: std::ops::RangeInclusive<u16> = 8801..=8810;
/// Size of the SFU encapsulation.
const SFU: usize = 8;
/// Size of the media encapsulation.
const MEDIA: usize = 15;
/// Packets after which SFU types 3 and 4 are taken for Zoom's.
const WEAK_AFTER: u32 = 3;

/// See the module's documentation.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let p = pkt.payload;
    let on_port = PORTS.contains(&pkt.flow.server_port) || PORTS.contains(&pkt.flow.client_port);
    if on_port && p.len() > SFU {
        match p {
            [1 | 2, 0, 2 | 3, ..] => return Verdict::Done(ZOOM),
            [3 | 4, ..] if pkt.seen[0] + pkt.seen[1] < WEAK_AFTER => return Verdict::Maybe,
            [3 | 4, ..] => return Verdict::Done(ZOOM),
            [5, ..] if p.len() > SFU + MEDIA && p.get(SFU..).is_some_and(media) => {
                return Verdict::Done(ZOOM);
            }
            _ => {}
        }
    }
    if peer_to_peer(p) {
        Verdict::Done(ZOOM)
    } else {
        Verdict::No
    }
}

/// Whether `m` is a media encapsulation with its RTP or RTCP packet.
fn media(m: &[u8]) -> bool {
    let at = |offset: usize| m.get(offset..).filter(|rest| !rest.is_empty());
    match m.first() {
        // Screen sharing: RTP does not always follow.
        Some(13) => m.len() > 27,
        Some(30) => at(20).is_some_and(|r| rtp(r).is_some()),
        Some(15) => at(19).is_some_and(|r| rtp(r).is_some()),
        Some(16) => at(24).is_some_and(|r| rtp(r).is_some()),
        Some(33..=35) => at(16).is_some_and(rtcp),
        _ => false,
    }
}

/// Whether `p` is a peer-to-peer media packet (see the module's
/// documentation).
fn peer_to_peer(p: &[u8]) -> bool {
    if p.len() <= 36 || !p.starts_with(&[0x1F, 0x02, 0x01]) || !p.ends_with(&[0; 4]) {
        return false;
    }
    let len_at = |at: usize| {
        p.get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(|b: [u8; 4]| u64::from(u32::from_be_bytes(b)))
    };
    let Some(ip_len) = len_at(24) else {
        return false;
    };
    let Some(uuid_at) = usize::try_from(28 + ip_len).ok() else {
        return false;
    };
    let Some(uuid_len) = len_at(uuid_at) else {
        return false;
    };
    u64::try_from(p.len()).is_ok_and(|n| n == 24 + 4 + ip_len + 4 + uuid_len + 4)
}

/// zoom.pcap frame 386: the client's SFU type 1 (first 40 bytes).
const SFU_OPEN: &str =
    "0100027d464d35fffda234495d0d6d3b51e8960000000000000002007a002a007a002a000000400e";

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "zoom",
    protocols: &[ZOOM],
    tcp: false,
    udp: true,
    ports: &[8801, 8802, 8803, 8804, 8805, 8806, 8807, 8808, 8809, 8810],
    ports_only: false,
    first: |_, b| matches!(b, 1..=5 | 0x1F),
    run: dissect,
    samples: &[Sample {
        origin: "zoom.pcap frame 386",
        tcp: false,
        server_port: 8801,
        packets: &[(true, SFU_OPEN)],
        protocol: ZOOM,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    #[test]
    fn sfu_open_and_media() {
        let f = flow(false, 58327, 8801);
        let (v, _) = run(dissect, &f, &[(true, &hex(SFU_OPEN))]);
        assert_eq!(v, [Verdict::Done(ZOOM)]);
        // Synthetic: SFU type 5 around audio (media type 15) around the RTP
        // of sip.pcap frame 95.
        let audio = hex(&format!(
            "0500010000000000 0f 0000000000000000 0001 00000000 00000000 {}",
            crate::dissect::testing::RTP
        ));
        let (v, _) = run(dissect, &f, &[(true, &audio)]);
        assert_eq!(v, [Verdict::Done(ZOOM)]);
        // Off Zoom's ports, the same is not Zoom.
        let (v, _) = run(dissect, &flow(false, 58327, 9000), &[(true, &audio)]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn weak_types_wait() {
        // zoom.pcap frame 396: SFU type 3.
        let p = hex("0300000001762a8d74005a0e3e");
        let f = flow(false, 58327, 8801);
        let (v, _) = run(
            dissect,
            &f,
            &[(false, &p), (true, &p), (false, &p), (true, &p)],
        );
        assert_eq!(
            v,
            [
                Verdict::Maybe,
                Verdict::Maybe,
                Verdict::Maybe,
                Verdict::Done(ZOOM)
            ]
        );
    }

    #[test]
    fn peer_to_peer_media() {
        // Synthetic: a 24-byte header, "10.0.0.1" and a 4-byte id.
        let p = hex("1f0201000000000000000000000000000000000000000000 \
             00000008 31302e302e302e31 00000004 deadbeef 00000000");
        let (v, _) = run(dissect, &flow(false, 40000, 40001), &[(true, &p)]);
        assert_eq!(v, [Verdict::Done(ZOOM)]);
        let (v, _) = run(
            dissect,
            &flow(false, 40000, 40001),
            &[(true, &p[..p.len() - 1])],
        );
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn rejects_other_protocols() {
        use crate::dissect::testing::*;
        let f = flow(false, 40000, 8801);
        for src in [DNS_QUERY, RTP, STUN_REQUEST, OPENVPN_RESET] {
            let (v, _) = run(dissect, &f, &[(true, &hex(src))]);
            assert_eq!(v, [Verdict::No], "{src}");
        }
        // A WireGuard packet (type 4) looks like SFU type 4: only waited
        // on (the WireGuard dissector, asked first, claims it).
        let (v, _) = run(dissect, &f, &[(true, &hex(WIREGUARD_KEEPALIVE))]);
        assert_eq!(v, [Verdict::Maybe]);
    }

    #[test]
    fn truncated_input_does_not_panic() {
        let p = hex("1f0201000000000000000000000000000000000000000000 \
             00000008 31302e302e302e31 00000004 deadbeef 00000000");
        for n in 0..p.len() {
            run(dissect, &flow(false, 40000, 8801), &[(true, &p[..n])]);
        }
        let mut huge = p.clone();
        huge[24..28].copy_from_slice(&[0xFF; 4]);
        run(dissect, &flow(false, 40000, 40001), &[(true, &huge)]);
    }
}
