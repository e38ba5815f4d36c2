//! IMO (imo.im) voice and video over UDP.
//!
//! IMO's datagrams are framed: a length as a big-endian base-128 varint
//! (each byte's top bit says another follows), the relay servers putting
//! a zero byte before it, then exactly that many bytes, the first a
//! message type. nDPI knows three such messages by heart (a 10-byte
//! `09 02`, an 11-byte `00 09 03` and 1099-byte media `88 49 1a 00`):
//! any of them claims the flow, and so do two one-byte keepalives in a
//! row with the same byte (nDPI's rule too); otherwise three framed
//! datagrams, with both directions among them, within the first ten. Other datagrams
//! than one-byte keepalives are allowed only among the first two.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// IMO.
const IMO: Protocol = Protocol(216);
/// Framed datagrams that claim a flow.
const FRAMED: u8 = 3;
/// Packets after which a flow is not IMO.
const MAX_PACKETS: u32 = 10;
/// Packets among which a datagram (other than a one-byte keepalive) may
/// be unframed.
const UNFRAMED: u32 = 2;

/// Per-flow state.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct State {
    /// Framed datagrams seen from each direction (client, server).
    framed: [u8; 2],
    /// The byte of the previous datagram, when it was a one-byte one.
    one_byte: Option<u8>,
}

/// See the module's documentation.
pub(crate) fn dissect(pkt: &Packet<'_>, scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if pkt.tcp {
        return Verdict::No;
    }
    let p = pkt.payload;
    if known(p) {
        return Verdict::Done(IMO);
    }
    let seen = pkt.seen[0] + pkt.seen[1];
    let last = seen + 1 >= MAX_PACKETS;
    let framed = framed(p);
    // Other datagrams than frames and one-byte keepalives only among the
    // first two.
    if !framed && p.len() != 1 && seen >= UNFRAMED {
        return Verdict::No;
    }
    let dir = usize::from(!pkt.from_client);
    scratch.keep(|st: &mut State| {
        if let &[b] = p {
            // Two one-byte keepalives in a row, the same byte.
            if st.one_byte.replace(b) == Some(b) {
                return Verdict::Done(IMO);
            }
        } else {
            st.one_byte = None;
        }
        if framed {
            st.framed[dir] = st.framed[dir].saturating_add(1);
        }
        let [c, s] = st.framed;
        if c > 0 && s > 0 && c.saturating_add(s) >= FRAMED {
            Verdict::Done(IMO)
        } else if last {
            Verdict::No
        } else {
            Verdict::Maybe
        }
    })
}

/// Whether `p` is one IMO frame: an optional zero byte, a varint length
/// (at most two bytes, no leading zero group) and as many bytes, at
/// least a type.
fn framed(p: &[u8]) -> bool {
    let body = match p {
        [0, rest @ ..] => rest,
        _ => p,
    };
    let (len, rest) = match body {
        [b0 @ 0x81..=0xff, b1 @ 0..=0x7f, rest @ ..] => {
            (usize::from(b0 & 0x7f) << 7 | usize::from(*b1), rest)
        }
        [b0 @ 1..=0x7f, rest @ ..] => (usize::from(*b0), rest),
        _ => return false,
    };
    len == rest.len()
}

/// nDPI's three messages.
fn known(p: &[u8]) -> bool {
    matches!(
        (p.len(), p),
        (10, [0x09, 0x02, ..])
            | (11, [0x00, 0x09, 0x03, ..])
            | (1099, [0x88, 0x49, 0x1a, 0x00, ..])
    )
}

/// imo.pcap frames 3 and 28.
const RELAY: &str = "000903219a020000000000";
const PEER: &str = "0902dc9a020000000000";

/// `head` followed by zeros to `len` bytes (hex).
#[cfg(test)]
fn padded(head: &str, len: usize) -> Vec<u8> {
    let mut v = crate::dissect::testing::hex(head);
    v.resize(len, 0);
    v
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "imo",
    protocols: &[IMO],
    tcp: false,
    udp: true,
    ports: &[],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[
        Sample {
            origin: "imo.pcap frame 3",
            tcp: false,
            server_port: 36535,
            packets: &[(false, RELAY)],
            protocol: IMO,
        },
        Sample {
            origin: "imo.pcap frame 28",
            tcp: false,
            server_port: 57604,
            packets: &[(true, PEER)],
            protocol: IMO,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// imo.pcap frame 2 (first 16 bytes of a 327-byte frame, padded).
    const CLIENT_MEDIA_HEAD: &str = "82470d00005e7d6c4467a3f9d9e59613";
    /// imo.pcap frames 4 and 13 (a relay's 116- and 78-byte frames, heads).
    const RELAY_FRAME: &str = "00740d00002de1bd5fb75221210b1bba";
    const RELAY_SHORT: &str = "004e0d0001abb7c8a1b5f901f80bbf49";

    #[test]
    fn known_messages() {
        let f = flow(false, 49207, 36535);
        for (from_client, src) in [(false, RELAY), (true, PEER)] {
            let (v, _) = run(dissect, &f, &[(from_client, &hex(src))]);
            assert_eq!(v, [Verdict::Done(IMO)], "{src}");
        }
        let media = padded("88491a00", 1099);
        let (v, _) = run(dissect, &f, &[(true, &media)]);
        assert_eq!(v, [Verdict::Done(IMO)]);
    }

    #[test]
    fn framed_datagrams_both_ways() {
        let f = flow(false, 49207, 36535);
        let c = padded(CLIENT_MEDIA_HEAD, 329);
        let s1 = padded(RELAY_FRAME, 118);
        let s2 = padded(RELAY_SHORT, 80);
        let junk = hex("813c0e6848c33455f3c66c5a99f386a2");
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &junk), (true, &c), (false, &s1), (false, &s2)],
        );
        assert_eq!(
            v,
            [
                Verdict::Maybe,
                Verdict::Maybe,
                Verdict::Maybe,
                Verdict::Done(IMO)
            ]
        );
        // One direction alone is not enough.
        let (v, _) = run(dissect, &f, &[(true, &c[..]); 10]);
        assert_eq!(v.last(), Some(&Verdict::No));
        assert!(!v.contains(&Verdict::Done(IMO)));
    }

    #[test]
    fn repeated_keepalive() {
        let f = flow(false, 49207, 57604);
        let (v, _) = run(dissect, &f, &[(true, &[0x07]), (false, &[0x07])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(IMO)]);
        // imo.pcap frames 19 and 24: two different bytes.
        let (v, _) = run(dissect, &f, &[(true, &[0x07]), (false, &[0x76])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Maybe]);
        // Not in a row.
        let other = hex(RELAY_SHORT);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &[0x07]), (true, &other), (false, &[0x07])],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Maybe, Verdict::Maybe]);
    }

    #[test]
    fn rejects_unframed() {
        let f = flow(false, 40000, 36535);
        // A length one short, a leading zero varint group.
        for p in [hex("0902dc9a0200000000"), hex("8009aa"), hex("00")] {
            assert!(!framed(&p), "{p:?}");
        }
        use crate::dissect::testing::{DNS_QUERY, RTP, STUN_REQUEST, WIREGUARD_KEEPALIVE};
        for src in [DNS_QUERY, RTP, STUN_REQUEST, WIREGUARD_KEEPALIVE] {
            let p = hex(src);
            let (v, _) = run(dissect, &f, &[(true, &p[..]); 10]);
            assert!(!v.contains(&Verdict::Done(IMO)), "{src}");
        }
    }

    #[test]
    fn truncated_input_does_not_panic() {
        let f = flow(false, 40000, 36535);
        let p = hex(RELAY);
        for n in 0..p.len() {
            let (v, _) = run(dissect, &f, &[(false, &p[..n])]);
            assert_ne!(v, [Verdict::Done(IMO)], "{n}");
        }
    }
}
