//! RTP and RTCP (RFC 3550) over UDP.
//!
//! RTP: version 2, a payload type outside the RTCP range, a header that
//! fits, and the same SSRC again in a later packet of the same direction
//! with a slightly higher sequence number. RTCP: a compound packet whose
//! parts (version 2, the first a sender or receiver report, source
//! description, bye or application packet) walk exactly to the end of the
//! datagram.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// RTP.
const RTP: Protocol = Protocol(87);
/// RTCP.
const RTCP: Protocol = Protocol(165);
/// Largest sequence number step between two packets of a stream taken as
/// in order.
const MAX_STEP: u16 = 64;
/// Packets of one direction after which a flow without a repeated SSRC is
/// not RTP.
const MAX_TRIES: u32 = 4;
/// Parts read from one RTCP compound packet.
const MAX_PARTS: usize = 16;

/// Per-flow state.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct State {
    /// Last RTP header of each direction (client, server): SSRC and
    /// sequence number.
    last: [Option<(u32, u16)>; 2],
}

/// RTCP on one valid compound packet; RTP once a direction repeats its
/// SSRC with a higher sequence number.
pub(crate) fn dissect(pkt: &Packet<'_>, scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if pkt.tcp {
        return Verdict::No;
    }
    if rtcp(pkt.payload) {
        return Verdict::Done(RTCP);
    }
    let Some((ssrc, seq)) = rtp(pkt.payload) else {
        return Verdict::No;
    };
    let dir = usize::from(!pkt.from_client);
    scratch.keep(|st: &mut State| match st.last[dir].replace((ssrc, seq)) {
        Some((s, q)) if s == ssrc && (1..=MAX_STEP).contains(&seq.wrapping_sub(q)) => {
            Verdict::Done(RTP)
        }
        _ if pkt.seen_here() + 1 >= MAX_TRIES => Verdict::No,
        _ => Verdict::Maybe,
    })
}

/// SSRC and sequence number of a valid RTP header at the start of `b`.
pub(crate) fn rtp(b: &[u8]) -> Option<(u32, u16)> {
    let (&[flags, marker_pt, s0, s1, _, _, _, _, i0, i1, i2, i3], rest) =
        b.split_first_chunk::<12>()?;
    if flags >> 6 != 2 || (72..=76).contains(&(marker_pt & 0x7F)) {
        return None;
    }
    // Contributing sources, then the header extension if flagged.
    let mut rest = rest.get(4 * usize::from(flags & 0x0F)..)?;
    if flags & 0x10 != 0 {
        let (&[_, _, l0, l1], ext) = rest.split_first_chunk::<4>()?;
        rest = ext.get(4 * usize::from(u16::from_be_bytes([l0, l1]))..)?;
    }
    // Padding: its length is the last byte, within the payload.
    if flags & 0x20 != 0
        && !rest
            .last()
            .is_some_and(|&n| n > 0 && usize::from(n) <= rest.len())
    {
        return None;
    }
    Some((
        u32::from_be_bytes([i0, i1, i2, i3]),
        u16::from_be_bytes([s0, s1]),
    ))
}

/// True for a valid RTCP compound packet filling `b` exactly.
pub(crate) fn rtcp(b: &[u8]) -> bool {
    let mut rest = b;
    for part in 0..MAX_PARTS {
        let Some((&[flags, kind, l0, l1], _)) = rest.split_first_chunk::<4>() else {
            return part > 0 && rest.is_empty();
        };
        let size = (usize::from(u16::from_be_bytes([l0, l1])) + 1) * 4;
        let count = usize::from(flags & 0x1F);
        // Smallest size of each packet type for its report/source count.
        let min = match kind {
            200 => 28 + 24 * count,
            201 => 8 + 24 * count,
            202 | 203 if part > 0 || count > 0 => 4 + 4 * count,
            204 => 12,
            // Feedback and extended reports, after the first part only.
            205..=207 if part > 0 => 8,
            _ => return false,
        };
        if flags >> 6 != 2 || size < min {
            return false;
        }
        let Some(next) = rest.get(size..) else {
            return false;
        };
        rest = next;
    }
    false
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "rtp",
    protocols: &[Protocol(87), Protocol(165)],
    tcp: false,
    udp: true,
    ports: &[],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[
        Sample {
            origin: "sip.pcap frames ",
            tcp: false,
            server_port: 40393,
            packets: &[(
                true,
                "80c800063796cb7142c907ca5efac603000024c3000000090000060c81ca000b\
             3796cb71011d31313839343239372d3434333261396638403139322e3136382e\
             312e3206055349505053000081cb00063796cb711073657373696f6e20736875\
             74646f776e000000",
            )],
            protocol: Protocol(165),
        },
        Sample {
            origin: "sip.pcap frames ,,,",
            tcp: false,
            server_port: 40392,
            packets: &[
                (
                    true,
                    "80086fae000004d83796cb71d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5\
             d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d511041c181812121e1014176a\
             131c18040405060101000705051913051b191013190504040703020303000002\
             0d0d0d0001030d0c0d0000010203010606010f0e0e0c03000706000303060701\
             0406061b1f1c11696062151110146a13156069617d74525b59d7475c56525544\
             4b42755973785a7c6e68146a",
                ),
                (
                    true,
                    "80086faf000005783796cb716e6815146a14141569606e6a6c6e646c6a16176c\
             6e6d60667e7f45c6c9f0fce7f3fae5f0cbf1f6cfcde4fac253745f425bf6f0f2\
             fce0ee97e8f2575a4f4d75677f7d6665747543784b47554367666d636c646664\
             78646f6f14146c1711131017101c1f1d10101610101f1c1f191e18101712146c\
             626d636a1515176e65777240d0f7737d7e6267626a156a17156543715a597e60\
             667a727249657a60785d4442",
                ),
                (
                    true,
                    "80086fb0000006183796cb71717e7076d6c5d04b74767f764f5041d158666765\
             7f676f786366666a14171614111010156f664f7a6565616268604f7f61666472\
             75786d6c1515156a676c69627f78666067636174cdf8d776636261786f787260\
             696e63505970656d646167656a6a11121010131e1f1f1d176a146f465d45dd5e\
             4449d6d0c45151dfd4df41747f67d2f5e5e6ece89796efe0ec949394eaea949f\
             909c9c9297f8e7ece7e1e0ea",
                ),
                (
                    true,
                    "80086fb1000006b83796cb719297e8e997eae5fae7e6ecfafac0787a61647060\
             6778cbefefeaec9591eee4e2ea92929d92909495919c9e9b8787818082838381\
             8186868181808183838180868485859e99858485858787868585848082808381\
             989c909d9f989f9096eaeeece9eee897e8e2eefadc5adcc9f3f2f3f6e8eaeeee\
             97919696919d989b9885878686859c9e999e9f999f9f93939f85878493949393\
             9794e9f8f74f584354cf4142",
                ),
            ],
            protocol: Protocol(87),
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// sip.pcap frames 95 and 96: PCMA (payload type 8) from
    /// 192.168.1.2:30000, SSRC 0x3796cb71, sequence 0x6fae then 0x6faf
    /// (first 36 bytes of each 172-byte payload).
    const RTP_95: &str = "80086fae000004d83796cb71d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5";
    const RTP_96: &str = "80086faf000005783796cb716e6815146a14141569606e6a6c6e646c6a16176c6e6d6066";
    /// sip.pcap frame 104: RTCP sender report, source description and bye
    /// (104 bytes) from 192.168.1.2:30001.
    const RTCP_104: &str = "80c800063796cb7142c907ca5efac603000024c3000000090000060c81ca000b3796cb71\
        011d31313839343239372d3434333261396638403139322e3136382e312e3206055349505053000081cb0006\
        3796cb711073657373696f6e2073687574646f776e000000";

    #[test]
    fn rtp_needs_a_repeated_ssrc() {
        let (a, b) = (hex(RTP_95), hex(RTP_96));
        let f = flow(false, 30000, 40392);
        let (v, _) = run(dissect, &f, &[(true, &a)]);
        assert_eq!(v, [Verdict::Maybe]);
        let (v, meta) = run(dissect, &f, &[(true, &a), (true, &b)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(RTP)]);
        assert_eq!(meta, Metadata::default());
        // The same packet twice, or out of order: not yet.
        let (v, _) = run(dissect, &f, &[(true, &b), (true, &a)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Maybe]);
        // A different SSRC is a different stream.
        let mut other = b.clone();
        other[11] ^= 1;
        let (v, _) = run(dissect, &f, &[(true, &a), (true, &other)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Maybe]);
    }

    #[test]
    fn rtp_after_stun() {
        // stun_classic.pcap frames 3 and 4: G.729 (payload type 18, marker
        // on the first) from 172.16.63.21:13958, after the STUN exchange
        // (first 16 bytes of each payload).
        let a = hex("8092ae1504e9f9983aa6d92292d88520");
        let b = hex("8012ae1604e9fa383aa6d922c4532097");
        let f = flow(false, 55050, 13958);
        let (v, _) = run(dissect, &f, &[(false, &a), (false, &b)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(RTP)]);
    }

    #[test]
    fn rtcp_compound() {
        let p = hex(RTCP_104);
        assert_eq!(p.len(), 104);
        let f = flow(false, 30001, 40393);
        let (v, _) = run(dissect, &f, &[(true, &p)]);
        assert_eq!(v, [Verdict::Done(RTCP)]);
        // One byte more or less breaks the length walk.
        let (v, _) = run(dissect, &f, &[(true, &p[..103])]);
        assert_ne!(v, [Verdict::Done(RTCP)]);
        let mut longer = p.clone();
        longer.push(0);
        let (v, _) = run(dissect, &f, &[(true, &longer)]);
        assert_ne!(v, [Verdict::Done(RTCP)]);
    }

    #[test]
    fn rejects_other_protocols() {
        let f = flow(false, 40000, 3478);
        let stun = hex(crate::dissect::testing::STUN_REQUEST);
        // wireguard.pcap frame 3: WireGuard transport data (first 48 bytes).
        let wg = hex(
            "0400000006f47dab0000000000000000a4ebc12ee3f990da18033a0789c04e2700f6f5c271d42ac4b4d6262e666549b4",
        );
        let ovpn = hex(crate::dissect::testing::OPENVPN_RESET);
        for p in [&stun, &wg, &ovpn] {
            let (v, _) = run(dissect, &f, &[(true, p), (true, p)]);
            assert_eq!(v, [Verdict::No, Verdict::No], "{p:02x?}");
        }
    }

    #[test]
    fn truncated_input_does_not_panic() {
        let f = flow(false, 30000, 40392);
        for src in [RTP_95, RTCP_104] {
            let p = hex(src);
            for n in 0..=p.len() {
                run(dissect, &f, &[(true, &p[..n]), (true, &p[..n])]);
            }
        }
        assert_eq!(rtp(&[0xB0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]), None);
        assert_eq!(rtp(&[0xA0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]), None);
    }
}
