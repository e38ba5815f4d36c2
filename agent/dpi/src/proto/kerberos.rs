//! Kerberos v5 over UDP and TCP (RFC 4120; TCP adds a 4-byte length).

use flowstat_core::{Metadata, Protocol};

use super::ber::{header, int, tlv};
use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// Per-flow state.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct State {
    sides: Sides,
}

/// Kerberos (`Protocol(111)`, "Kerberos"): a message with an application
/// tag (AS-REQ 10 ... AP-REP 15, KRB-SAFE/PRIV/CRED 20..=22, KRB-ERROR 30)
/// holding a SEQUENCE that starts with pvno 5 and the same msg-type.
/// Either direction may show it (captures often start mid-flow).
pub(crate) fn dissect(pkt: &Packet<'_>, scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let verdict = if pkt.tcp {
        let stream = pkt.stream();
        match stream.split_first_chunk::<4>() {
            // The record mark's top bit is reserved; records are small.
            Some((len, msg)) if len[0] == 0 => {
                let len = u32::from_be_bytes(*len) as usize;
                if msg.len() < len.min(32) {
                    Verdict::Maybe
                } else {
                    check(msg, len)
                }
            }
            None if stream.first().is_none_or(|&b| b == 0) => Verdict::Maybe,
            _ => Verdict::No,
        }
    } else {
        check(pkt.payload, pkt.payload.len())
    };
    scratch.kerberos.sides.verdict(pkt, verdict)
}

/// `Done` when `msg` starts a Kerberos message of `len` bytes.
fn check(msg: &[u8], len: usize) -> Verdict {
    if message(msg, len).is_some() {
        Verdict::Done(Protocol(111)) // Kerberos
    } else {
        Verdict::No
    }
}

/// Checks the application tag, the length, pvno and msg-type.
fn message(msg: &[u8], len: usize) -> Option<()> {
    let (tag, head, body) = header(msg)?;
    if !matches!(tag, 0x6a..=0x6f | 0x74..=0x76 | 0x7e) || head + body != len {
        return None;
    }
    let (0x30, seq_head, _) = header(msg.get(head..)?)? else {
        return None;
    };
    // KDC-REQ numbers its fields from 1, every other message from 0.
    let msg_type = tag & 0x1f;
    let first = if matches!(msg_type, 10 | 12) {
        0xa1
    } else {
        0xa0
    };
    let (pvno, rest) = field(msg.get(head + seq_head..)?, first)?;
    let (kind, _) = field(rest, first + 1)?;
    (pvno == 5 && kind == u32::from(msg_type)).then_some(())
}

/// The INTEGER inside the context-tagged field `[tag]` at the start of
/// `data`, and the bytes after the field.
fn field(data: &[u8], tag: u8) -> Option<(u32, &[u8])> {
    let (t, value, rest) = tlv(data)?;
    let (n, []) = int(value)? else {
        return None;
    };
    (t == tag).then_some((n, rest))
}

/// Which directions' first bytes have been found not to be the protocol,
/// for dissectors that accept a flow from either side (a capture may start
/// in the middle of one direction's data).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sides(u8);

impl Sides {
    /// `verdict` for this packet's direction, turned into the flow's: `No`
    /// only once both directions said no; a direction that said no is
    /// not looked at again.
    pub(crate) fn verdict(&mut self, pkt: &Packet<'_>, verdict: Verdict) -> Verdict {
        let bit = 1u8 << u8::from(!pkt.from_client);
        let verdict = if self.0 & bit != 0 {
            Verdict::No
        } else {
            verdict
        };
        if verdict != Verdict::No {
            return verdict;
        }
        self.0 |= bit;
        if self.0 == 3 {
            Verdict::No
        } else {
            Verdict::Maybe
        }
    }
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "kerberos",
    protocols: &[Protocol(111)],
    tcp: true,
    udp: true,
    ports: &[88],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "kerberos.pcap frames 1,2",
        tcp: true,
        server_port: 88,
        packets: &[
            (
                true,
                "000000eb6a81e83081e5a103020105a20302010aa31530133011a10402020080\
             a20904073005a0030101ffa481c13081bea00703050040810010a1183016a003\
             020101a10f300d1b0b6a6f686e736f6e2d706324a2101b0e6861707079637261\
             66742e6f7267a3233021a003020102a11a30181b066b72627467741b0e686170\
             707963726166742e6f7267a511180f32303337303931333032343830355aa611\
             180f32303337303931333032343830355aa70602044ec01617a8153013020112\
             0201110201170201180202ff79020103a91d301b3019a003020114a11204104a\
             4f484e534f4e2d5043202020202020",
            ),
            (
                false,
                "000001127e82010e3082010aa003020105a10302011ea411180f323031393032\
             30353033333834385aa5050203063520a603020119a9101b0e68617070796372\
             6166742e6f7267aa233021a003020102a11a30181b066b72627467741b0e6861\
             70707963726166742e6f7267ac81a70481a43081a1307ea103020113a2770475\
             30733034a003020112a12d1b2b484150505943524146542e4f5247686f73746a\
             6f686e736f6e2d70632e686170707963726166742e6f72673005a00302011730\
             34a003020103a12d1b2b484150505943524146542e4f5247686f73746a6f686e\
             736f6e2d70632e686170707963726166742e6f72673009a103020102a2020400\
             3009a103020110a20204003009a10302010fa2020400",
            ),
        ],
        protocol: Protocol(111),
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    // kerberos.pcap frame 1 (TCP 49157 -> 88): AS-REQ, whole.
    const AS_REQ: &str = "000000eb6a81e83081e5a103020105a20302010aa31530133011a10402020080a20904073005a0030101ffa481c13081bea00703050040810010a1183016a003020101a10f300d1b0b6a6f686e736f6e2d706324a2101b0e686170707963726166742e6f7267a3233021a003020102a11a30181b066b72627467741b0e686170707963726166742e6f7267a511180f32303337303931333032343830355aa611180f32303337303931333032343830355aa70602044ec01617a81530130201120201110201170201180202ff79020103a91d301b3019a003020114a11204104a4f484e534f4e2d5043202020202020";
    // kerberos.pcap frame 2 (TCP 88 -> 49157): KRB-ERROR, first 48 of 278 bytes.
    const KRB_ERROR: &str = "000001127e82010e3082010aa003020105a10302011ea411180f32303139303230353033333834385aa5050203063520";

    fn tcp(packets: &[(bool, &[u8])]) -> Vec<Verdict> {
        run(dissect, &flow(true, 49157, 88), packets).0
    }

    #[test]
    fn tcp_request_and_error() {
        let req = hex(AS_REQ);
        assert_eq!(tcp(&[(true, &req)]), [Verdict::Done(Protocol(111))]);
        let err = hex(KRB_ERROR);
        assert_eq!(tcp(&[(false, &err)]), [Verdict::Done(Protocol(111))]);
    }

    #[test]
    fn tcp_mid_stream_client_then_server() {
        // kerberos.pcap frames 30 and 32 (TCP 49173): the capture starts
        // inside the client's AS-REQ; the server's KRB-ERROR is whole.
        // First 56 bytes of each.
        let client = hex(
            "0e484150505943524146542e4f5247a2273025a00302010aa11e301c1b1a6a6f686e736f6e2d70632440484150505943524146542e4f5247",
        );
        let server = hex(
            "000000847e8181307fa003020105a10302011ea411180f32303139303230353033333834395aa50502030c9c32a60302010da9101b0e4841",
        );
        assert_eq!(
            tcp(&[(true, &client), (true, &client), (false, &server)]),
            [Verdict::Maybe, Verdict::Maybe, Verdict::Done(Protocol(111))]
        );
        assert_eq!(
            tcp(&[(true, &client), (false, &client)]),
            [Verdict::Maybe, Verdict::No]
        );
    }

    #[test]
    fn split_record_waits_for_more() {
        let req = hex(AS_REQ);
        let (a, b) = req.split_at(10);
        assert_eq!(
            tcp(&[(true, a), (true, b)]),
            [Verdict::Maybe, Verdict::Done(Protocol(111))]
        );
    }

    #[test]
    fn udp_message() {
        // The TCP AS-REQ of kerberos.pcap frame 1 without its record mark:
        // a UDP AS-REQ is the same message (the corpus has no UDP sample).
        let mut msg = hex(AS_REQ)[4..].to_vec();
        let f = flow(false, 50000, 88);
        assert_eq!(
            run(dissect, &f, &[(true, &msg)]).0,
            [Verdict::Done(Protocol(111))]
        );
        msg.push(0);
        assert_eq!(run(dissect, &f, &[(true, &msg)]).0, [Verdict::Maybe]);
    }

    #[test]
    fn other_protocols_and_truncation() {
        // kerberos.pcap frame 14 (TCP 389 -> 49161): LDAP bindResponse, first 56 bytes.
        let ldap = hex(
            "3084000000cc0201036184000000c30a010004000400878200b8a181b53081b2a0030a0100a10b06092a864882f712010202a2819d04819a",
        );
        // kerberos.pcap frame 10 (TCP 445 -> 49156): SMB2 over NetBIOS, first 56 bytes.
        let smb = hex(
            "00000100fe534d42400001000000000001001f0009000000000000000200000000000000fffe0000000000005900000000040000cf4a5f5c",
        );
        for other in [ldap, smb] {
            assert_eq!(
                tcp(&[(true, &other), (false, &other)]),
                [Verdict::Maybe, Verdict::No]
            );
        }
        for msg in [hex(AS_REQ), hex(KRB_ERROR)] {
            for n in 0..msg.len() {
                let v = tcp(&[(true, &msg[..n])]);
                assert!(!matches!(v[0], Verdict::Found(_)), "{n}");
                let udp = run(dissect, &flow(false, 5, 88), &[(true, &msg[4.min(n)..n])]).0;
                assert_ne!(udp, [Verdict::Done(Protocol(111))]);
            }
        }
    }
}
