//! SNMP over UDP (v1, v2c, v3), and the BER reader shared with the
//! Kerberos and LDAP dissectors.

use flowstat_core::{Metadata, Protocol};

use super::ber::{int, tlv};
use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// SNMP (`Protocol(14)`, "SNMP"): a message SEQUENCE filling the datagram,
/// INTEGER version 0, 1 or 3, then a community and a PDU (v1, v2c) or the
/// v3 header and security parameters.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if message(pkt.payload).is_some() {
        Verdict::Done(Protocol(14)) // SNMP
    } else {
        Verdict::No
    }
}

/// Checks one SNMP message; `None` when it is not one.
fn message(payload: &[u8]) -> Option<()> {
    let (0x30, msg, []) = tlv(payload)? else {
        return None;
    };
    let (version, msg) = int(msg)?;
    match version {
        0 | 1 => {
            let (0x04, _community, pdu) = tlv(msg)? else {
                return None;
            };
            let (tag, _, []) = tlv(pdu)? else {
                return None;
            };
            (0xa0..=0xa8).contains(&tag).then_some(())
        }
        3 => {
            let (0x30, global, msg) = tlv(msg)? else {
                return None;
            };
            let (_id, global) = int(global)?;
            let (_max_size, global) = int(global)?;
            let (0x04, [_flags], global) = tlv(global)? else {
                return None;
            };
            let (_model, []) = int(global)? else {
                return None;
            };
            let (0x04, _security, scoped) = tlv(msg)? else {
                return None;
            };
            // Scoped PDU: plain SEQUENCE, or encrypted OCTET STRING.
            let (0x30 | 0x04, _, []) = tlv(scoped)? else {
                return None;
            };
            Some(())
        }
        _ => None,
    }
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "snmp",
    protocols: &[Protocol(14)],
    tcp: false,
    udp: true,
    ports: &[161, 162],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "snmp.pcap frames ,,,",
        tcp: false,
        server_port: 161,
        packets: &[
            (
                true,
                "302902010004067075626c6963a11c02044b781a6e020100020100300e300c06\
             082b060102010105000500",
            ),
            (
                false,
                "303702010004067075626c6963a22a02044b781a6e020100020100301c301a06\
             082b06010201010600040e476c6f626f6d616e746963734851",
            ),
            (
                true,
                "302902010004067075626c6963a01c02044b781a6f020100020100300e300c06\
             082b060102010105000500",
            ),
            (
                false,
                "303502010004067075626c6963a22802044b781a6f020100020100301a301806\
             082b06010201010500040c52312e6c61622e6c6f63616c",
            ),
        ],
        protocol: Protocol(14),
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    // snmp.pcap frame 1: v1 get-request, community "public".
    const V1_GET: &str =
        "302902010004067075626c6963a11c02044b781a6e020100020100300e300c06082b060102010105000500";
    // snmp.pcap frame 17: v3 get-request (noAuthNoPriv discovery).
    const V3_GET: &str = "303e020103301102046c9af56e020300ffe30401040201030410300e0400020100020100040004000400301404000400a00e0204750558880201000201003000";
    // snmp.pcap frame 55: v1 trap to port 162.
    const V1_TRAP: &str = "30818f02010004067075626c6963a4818106082b0601060301010540040a011e01020102020100430303a68c3064300f060a2b0601020102020101020201023019060a2b060102010202010202040b45746865726e6574302f31300f060a2b0601020102020103020201063025060c2b0601040109020201011402041561646d696e6973747261746976656c7920646f776e";

    #[test]
    fn versions() {
        let f = flow(false, 43015, 161);
        for msg in [V1_GET, V3_GET, V1_TRAP] {
            let (v, _) = run(dissect, &f, &[(true, &hex(msg))]);
            assert_eq!(v, [Verdict::Done(Protocol(14))], "{msg}");
        }
        // snmp.pcap frame 18: v3 report from the agent.
        let report = hex(
            "3067020103301002046c9af56e020205dc040100020103041d301b040c800000090300aabbcc00010002010c020202cd0400040004003031040c800000090300aabbcc0001000400a81f0204750558880201000201003011300f060a2b060106030f01010400410101",
        );
        let (v, _) = run(dissect, &f, &[(false, &report)]);
        assert_eq!(v, [Verdict::Done(Protocol(14))]);
    }

    #[test]
    fn other_protocols_and_truncation() {
        let f = flow(false, 40000, 161);
        let dns = hex("784301000001000000000000026537087768617473617070036e65740000010001");
        let ntp = hex(
            "230207eb00000450000003ab83bc03dfd94f51c33165b860d944575530336fd0d944575531b4e978d94f51f42d26e2f4",
        );
        for other in [dns, ntp] {
            assert_eq!(run(dissect, &f, &[(true, &other)]).0, [Verdict::No]);
        }
        for msg in [V1_GET, V3_GET, V1_TRAP] {
            let msg = hex(msg);
            for n in 0..msg.len() {
                assert_eq!(run(dissect, &f, &[(true, &msg[..n])]).0, [Verdict::No]);
            }
        }
    }
}
