//! LINE calls (LineCall) over UDP: the packet numbers before the media.
//!
//! Before and between its RTP, a LINE call's datagrams (their first byte
//! in 0xb0..=0xdf, as in all of nDPI's LINE patterns) carry a packet
//! number whose low byte is the fourth byte: each direction counts up by
//! one from a base of its own. Claimed once both directions showed four
//! such datagrams in a row from different bases; RTP and RTCP packets
//! (in the first ten) are passed over. This is nDPI's
//! payload-only rule (its other rules need LINE's addresses).

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};
use crate::proto::rtp::{rtcp, rtp};

/// LineCall.
const LINE_CALL: Protocol = Protocol(316);
/// Numbered datagrams each direction must show.
const NUMBERED: u8 = 4;
/// Packets within which RTP may come between the numbered ones.
const MAX_PACKETS: u32 = 10;
/// Smaller datagrams are not LINE's.
const MIN_LEN: usize = 11;

/// Per-flow state.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct State {
    /// Each direction's (client, server) first packet number.
    base: [u8; 2],
    /// Numbered datagrams seen from each direction.
    count: [u8; 2],
}

/// See the module's documentation.
pub(crate) fn dissect(pkt: &Packet<'_>, scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let p = pkt.payload;
    let Some(&number) = p.get(3) else {
        return Verdict::No;
    };
    if pkt.tcp || p.len() < MIN_LEN {
        return Verdict::No;
    }
    let dir = usize::from(!pkt.from_client);
    let early = pkt.packets() < MAX_PACKETS;
    // LINE's own datagrams open with a byte in 0xb0..=0xdf (RTP and
    // RTCP are passed over first).
    let own = (0xb0..=0xdf).contains(&p[0]);
    scratch.keep(|st: &mut State| {
        if rtp(p).is_some() || rtcp(p) {
            return if early { Verdict::Maybe } else { Verdict::No };
        }
        if !own {
            return Verdict::No;
        }
        if st.count[dir] == 0 {
            st.base[dir] = number;
            st.count[dir] = 1;
            return Verdict::Maybe;
        }
        if st.base[dir].wrapping_add(st.count[dir]) != number {
            return Verdict::No;
        }
        st.count[dir] = st.count[dir].saturating_add(1);
        match st.count {
            [c, s] if c >= NUMBERED && s >= NUMBERED => {
                if st.base[0] != st.base[1] {
                    Verdict::Done(LINE_CALL)
                } else {
                    Verdict::No
                }
            }
            _ => Verdict::Maybe,
        }
    })
}

/// line.pcap frames 1-4, 6, 7, 8, 9 (first 16 bytes of each).
const CALL: &[(bool, &str)] = &[
    (true, "db6400b906021b61432b5beff5fba01a"),
    (true, "db6400ba06021b61432b5beff5fba01a"),
    (false, "d8ee0066060257f4494eae4ff1e5cd60"),
    (false, "dae00067060257f4494eae4ff1e5cd60"),
    (true, "d15c00bb394a3402e1cbefeb41674c34"),
    (true, "d08300bc1871e786c395005d9f776422"),
    (false, "d08300681871401a2bb602370109a636"),
    (false, "d12b0069391923bd0181258a095dc0a8"),
];

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "line",
    protocols: &[LINE_CALL],
    tcp: false,
    udp: true,
    ports: &[],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "line.pcap frames 1-4,6-9",
        tcp: false,
        server_port: 20610,
        packets: CALL,
        protocol: LINE_CALL,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// line.pcap frame 5: RTP between them (first 16 bytes).
    const RTP_BETWEEN: &str = "80e5000100003ab209bda678d717f7bd";

    fn packets(src: &[(bool, &str)]) -> Vec<(bool, Vec<u8>)> {
        src.iter().map(|&(c, h)| (c, hex(h))).collect()
    }

    fn verdicts(src: &[(bool, Vec<u8>)]) -> Vec<Verdict> {
        let pk: Vec<(bool, &[u8])> = src.iter().map(|(c, p)| (*c, &p[..])).collect();
        run(dissect, &flow(false, 50835, 20610), &pk).0
    }

    #[test]
    fn numbered_both_ways_with_rtp_between() {
        let mut call = packets(CALL);
        let v = verdicts(&call);
        assert_eq!(v.last(), Some(&Verdict::Done(LINE_CALL)));
        assert!(v[..v.len() - 1].iter().all(|&x| x == Verdict::Maybe));
        call.insert(4, (true, hex(RTP_BETWEEN)));
        assert_eq!(verdicts(&call).last(), Some(&Verdict::Done(LINE_CALL)));
    }

    #[test]
    fn rejects_gaps_same_bases_and_short() {
        // A number skipped.
        let mut call = packets(CALL);
        call[1].1[3] = 0xbb;
        assert_eq!(verdicts(&call)[1], Verdict::No);
        // Both directions from the same base.
        let mut call = packets(CALL);
        for (i, n) in [(2, 0xb9), (3, 0xba), (6, 0xbb), (7, 0xbc)] {
            call[i].1[3] = n;
        }
        assert_eq!(verdicts(&call).last(), Some(&Verdict::No));
        // Short datagrams.
        let (v, _) = run(dissect, &flow(false, 1, 2), &[(true, &hex("db6400b90602"))]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn rtp_alone_is_not_line() {
        use crate::dissect::testing::RTP;
        let mut p = hex(RTP);
        let mut pk = Vec::new();
        for i in 0..12u8 {
            p[3] = p[3].wrapping_add(i);
            pk.push((i % 2 == 0, p.clone()));
        }
        assert!(!verdicts(&pk).contains(&Verdict::Done(LINE_CALL)));
    }
}
