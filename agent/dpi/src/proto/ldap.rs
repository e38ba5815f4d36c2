//! LDAP over TCP, and CLDAP over UDP (RFC 4511); TLS after its StartTLS
//! operation (RFC 4511 4.14).

use flowstat_core::{Metadata, Protocol};
use memchr::memmem;

use super::ber::{header, int};
use super::kerberos::Sides;
use super::tls;
use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// StartTLS's requestName, an extendedRequest's `[0]` LDAPOID.
const STARTTLS: &[u8] = b"\x80\x161.3.6.1.4.1.1466.20037";
/// Packets with payload within which TLS starts after StartTLS.
const TLS_WAIT: u32 = 8;

/// Per-flow state.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct State {
    sides: Sides,
}

/// LDAP (`Protocol(112)`, "LDAP"): an LDAPMessage SEQUENCE, its messageID
/// INTEGER, then a protocolOp with an application tag whose first field
/// fits the operation (bind version, result code, DN string, ...). Either
/// direction may show it (captures often start mid-flow). After the
/// client's StartTLS request, the TLS handshake that follows.
pub(crate) fn dissect(pkt: &Packet<'_>, scratch: &mut Scratch, meta: &mut Metadata) -> Verdict {
    let verdict = if pkt.tcp {
        let stream = pkt.stream();
        match header(stream) {
            Some((0x30, head, len)) if stream.len() < (head + len).min(16) => Verdict::Maybe,
            Some((0x30, head, len)) => check(stream, head, len),
            None if stream.len() < 6 && stream.first().is_none_or(|&b| b == 0x30) => Verdict::Maybe,
            _ => Verdict::No,
        }
    } else {
        match header(pkt.payload) {
            Some((0x30, head, len)) if head + len == pkt.payload.len() => {
                check(pkt.payload, head, len)
            }
            _ => Verdict::No,
        }
    };
    match scratch.ldap.sides.verdict(pkt, verdict) {
        Verdict::Done(ldap) if memmem::find(pkt.client_stream, STARTTLS).is_some() => {
            tls::inside(pkt, scratch, meta, ldap, TLS_WAIT)
        }
        verdict => verdict,
    }
}

/// `Done` when the message SEQUENCE `msg` (header `head` bytes, value
/// `len` bytes, maybe not all in `msg`) starts as an LDAPMessage.
fn check(msg: &[u8], head: usize, len: usize) -> Verdict {
    let Some((_id, op)) = msg.get(head..).and_then(int) else {
        return Verdict::No;
    };
    let Some((tag, op_head, op_len)) = header(op) else {
        return Verdict::No;
    };
    let id_len = msg.len() - head - op.len();
    let first = op.get(op_head).copied();
    let ok = id_len + op_head + op_len <= len
        && match tag {
            // bindRequest: version 1..=3.
            0x60 => op
                .get(op_head..)
                .and_then(int)
                .is_some_and(|(v, _)| (1..=3).contains(&v)),
            // Responses: LDAPResult, starting with an ENUMERATED code.
            0x61 | 0x65 | 0x67 | 0x69 | 0x6b | 0x6d | 0x6f | 0x78 => first == Some(0x0a),
            // search, entry, modify, add, modDN, compare, reference: a string.
            0x63 | 0x64 | 0x66 | 0x68 | 0x6c | 0x6e | 0x73 => first == Some(0x04),
            0x77 => first == Some(0x80), // extendedRequest: requestName
            0x79 => true,                // intermediateResponse
            0x42 => op_len == 0,         // unbindRequest: NULL
            0x4a | 0x50 => op_len > 0,   // delRequest, abandonRequest
            _ => false,
        };
    if ok {
        Verdict::Done(Protocol(112)) // LDAP
    } else {
        Verdict::No
    }
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "ldap",
    protocols: &[Protocol(112)],
    tcp: true,
    udp: true,
    ports: &[389],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "kerberos.pcap frames 13,14",
        tcp: true,
        server_port: 389,
        packets: &[
            (
                true,
                "f1365cd0b0cca75dcfd9b847530137c02df39e1c8f03abbce0a95e8a480c7e09\
             9cde36a51d32310f05cc9e3cbf5b817bff6599a14731d9739ec3dac659ac8b78\
             f979059233eec84de4f15760973ff4f032bf6f530bb3365cb88c29ec61c9e625\
             444f6ebd4b4af4302747fb6d5840bdcdd0b9e9c40e3751fcabddfab5f47e4a5c\
             fb44a9b6bb00120c723c7d215c110431b60a9a028e0106c8f7aa5a8b074957a3\
             143c78639c115cb6ff7f2f3254a3f9cff7b5d03173e4f627e0a1a9528ae938ba\
             a7d3498607dd6fa9fa164af59c9fc4d0f1e8ec06f7b4192a912a4dcd5f686880\
             dcfc09c42985c7740b1d9bf20010a78d0d9df18f7767078d680b209972f8bdaf\
             61eabeb4bd6cc1c5644b",
            ),
            (
                false,
                "3084000000cc0201036184000000c30a010004000400878200b8a181b53081b2\
             a0030a0100a10b06092a864882f712010202a2819d04819a60819706092a8648\
             86f71201020202006f8187308184a003020105a10302010fa2783076a0030201\
             12a26f046d5f3e51bb6ca59dae1d870fa729cfe3228c199f843703487460c68b\
             0c9f071b0a2d59467ad588606d302da742fea65540d225aa57fe6660b5ce25f4\
             02dbfbf8e8931b2448222dd0665f05794187a48ea7b83d9dcff6593e261b97be\
             7dcb6db4d5b82a2c6c0564cbb24e14d13b03",
            ),
        ],
        protocol: Protocol(112),
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    // kerberos.pcap frame 14 (TCP 389 -> 49161): bindResponse with SASL
    // credentials, first 56 of 210 bytes.
    const BIND_RESPONSE: &str = "3084000000cc0201036184000000c30a010004000400878200b8a181b53081b2a0030a0100a10b06092a864882f712010202a2819d04819a";

    #[test]
    fn server_side_after_mid_stream_client() {
        // kerberos.pcap frame 13 (TCP 49161 -> 389): the capture starts
        // inside the client's SASL-wrapped data (first 32 bytes).
        let client = hex("f1365cd0b0cca75dcfd9b847530137c02df39e1c8f03abbce0a95e8a480c7e09");
        let server = hex(BIND_RESPONSE);
        let f = flow(true, 49161, 389);
        let (v, _) = run(dissect, &f, &[(true, &client), (false, &server)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(Protocol(112))]);
        let (v, _) = run(dissect, &f, &[(true, &client), (false, &client)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
    }

    #[test]
    fn requests() {
        // Synthetic (the corpus has no clear-text LDAP request): a simple
        // bindRequest (id 1, v3, "cn=admin", password "x"), an unbind, and
        // a CLDAP searchRequest (base "", present filter "objectclass").
        let bind = hex("301502010160100201030408636e3d61646d696e800178");
        let unbind = hex("30050201024200");
        let f = flow(true, 50000, 389);
        for msg in [&bind, &unbind] {
            assert_eq!(
                run(dissect, &f, &[(true, msg)]).0,
                [Verdict::Done(Protocol(112))]
            );
        }
        let search = hex(
            "302502010163200400 0a0100 0a0100 020100 020100 010100 870b6f626a656374636c617373 3000",
        );
        let udp = flow(false, 50000, 389);
        assert_eq!(
            run(dissect, &udp, &[(true, &search)]).0,
            [Verdict::Done(Protocol(112))]
        );
    }

    #[test]
    fn tls_after_starttls() {
        // Synthetic (RFC 4511 4.14): StartTLS (id 1), its success, then a
        // ClientHello (tls_alert.pcap frame 4).
        let request = [&hex("301d02010177188016")[..], b"1.3.6.1.4.1.1466.20037"].concat();
        let response = hex("300c02010178070a010004000400");
        let hello = hex(include_str!("tls/testdata/tls_alert-4.hex"));
        let f = flow(true, 50000, 389);
        let (v, meta) = run(
            dissect,
            &f,
            &[(true, &request), (false, &response), (true, &hello)],
        );
        assert_eq!(v, [Verdict::Found(Protocol(112)); 3]);
        assert_eq!(meta.host_server_name, "www.google-analytics.com");
    }

    #[test]
    fn other_protocols_and_truncation() {
        let f = flow(true, 50000, 389);
        // snmp.pcap frame 1: SNMP get-request (also a SEQUENCE and INTEGER).
        let snmp = hex(
            "302902010004067075626c6963a11c02044b781a6e020100020100300e300c06082b060102010105000500",
        );
        // kerberos.pcap frame 1 (TCP 49157 -> 88): AS-REQ, first 32 bytes.
        let krb = hex("000000eb6a81e83081e5a103020105a20302010aa31530133011a10402020080");
        for other in [snmp, krb] {
            let (v, _) = run(dissect, &f, &[(true, &other), (false, &other)]);
            assert_eq!(v, [Verdict::Maybe, Verdict::No]);
        }
        let msg = hex(BIND_RESPONSE);
        for n in 0..msg.len() {
            let (v, _) = run(dissect, &f, &[(false, &msg[..n])]);
            assert!(!matches!(v[0], Verdict::Found(_)), "{n}");
            let (v, _) = run(dissect, &flow(false, 5, 389), &[(false, &msg[..n])]);
            assert_ne!(v, [Verdict::Done(Protocol(112))]);
        }
    }
}
