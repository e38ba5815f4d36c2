//! RDP: the X.224 connection request and confirm in TPKT.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};
use crate::proto::tls;
use crate::proto::tpkt::{self, Read};

/// RDP.
const RDP: Protocol = Protocol(88);

/// Packets with payload within which the server confirms the connection
/// and, when it selected TLS, the TLS handshake starts.
const TLS_WAIT: u32 = 6;

/// RDP_NEG_REQ, RDP_NEG_RSP and RDP_NEG_FAILURE types.
const NEG_REQ: u8 = 1;
const NEG_RSP: u8 = 2;
const NEG_FAILURE: u8 = 3;

/// RDP (`Protocol(88)`): a TPKT (version 3, length) holding an X.224
/// Connection Request with a `Cookie:` (`mstshash=` or a routing token)
/// or an RDP_NEG_REQ, or a Connection Confirm with an RDP_NEG_RSP or
/// RDP_NEG_FAILURE, at the start of either stream. Then, when the
/// confirm selects a security protocol that runs over TLS (any but
/// standard RDP security), the TLS handshake that follows.
pub(crate) fn dissect(pkt: &Packet<'_>, scratch: &mut Scratch, meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return Verdict::No;
    }
    match [pkt.client_stream, pkt.server_stream].map(connection) {
        [Some(true), _] | [_, Some(true)] => match tls_selected(pkt.server_stream) {
            Some(true) => tls::inside(pkt, scratch, meta, RDP, TLS_WAIT),
            Some(false) => Verdict::Done(RDP),
            None if pkt.packets() >= TLS_WAIT => Verdict::Done(RDP),
            None => Verdict::Found(RDP),
        },
        [Some(false), Some(false)] => Verdict::No,
        _ => Verdict::Maybe,
    }
}

/// Whether the server's Connection Confirm selects a security protocol
/// that runs over TLS (RDP_NEG_RSP's `selectedProtocol` other than 0):
/// `None` while it has not come whole.
fn tls_selected(server: &[u8]) -> Option<bool> {
    let tpdu = match tpkt::read(server) {
        Read::More => return None,
        Read::Bad => return Some(false),
        Read::Ok(tpdu, _) => tpdu,
    };
    let neg = tpdu
        .header
        .len()
        .checked_sub(8)
        .and_then(|at| tpdu.header.get(at..));
    Some(match neg {
        Some(&[NEG_RSP, _, 8, 0, p0, p1, p2, p3]) => {
            tpdu.code == tpkt::CC && u32::from_le_bytes([p0, p1, p2, p3]) != 0
        }
        _ => false,
    })
}

/// Whether `stream` starts with an RDP connection request or confirm:
/// `None` while cut short.
fn connection(stream: &[u8]) -> Option<bool> {
    // TPKT length (header included): RDP's connection TPDUs are small.
    if let (Some(&l0), Some(&l1)) = (stream.get(2), stream.get(3))
        && !(11..=512).contains(&u16::from_be_bytes([l0, l1]))
    {
        return Some(false);
    }
    let tpdu = match tpkt::read(stream) {
        Read::More => return None,
        Read::Bad => return Some(false),
        Read::Ok(tpdu, _) => tpdu,
    };
    // X.224 fixed part after the code: DST-REF, SRC-REF, class 0; the
    // header fills the TPDU (no user data).
    let [_, _, _, _, class, data @ ..] = tpdu.header else {
        return Some(false);
    };
    if !tpdu.data.is_empty() || class & 0xf0 != 0 {
        return Some(false);
    }
    // The negotiation structure ends the TPDU: type, flags, length 8.
    let neg = data
        .len()
        .checked_sub(8)
        .and_then(|at| data.get(at..))
        .filter(|n| n.get(2..4) == Some(&[8, 0]))
        .and_then(|n| n.first());
    Some(match tpdu.code {
        tpkt::CR => data.starts_with(b"Cookie: ") || neg == Some(&NEG_REQ),
        tpkt::CC => matches!(neg, Some(&(NEG_RSP | NEG_FAILURE))),
        _ => false,
    })
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "rdp",
    protocols: &[Protocol(88)],
    tcp: true,
    udp: false,
    ports: &[3389],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "rdp.pcap frames 4,5,7,8",
        tcp: true,
        server_port: 3389,
        packets: &[
            (true, "030000130ee00000000000010008000b000000"),
            (false, "030000130ed00000123400021f080008000000"),
            (
                true,
                "16030100a8010000a403035cef9e29f7050d16a1a2391d64625681e3425a70bd\
             d5045db0a23d3db250dbe700002c00ffc02cc02bc024c023c00ac009c008c030\
             c02fc028c027c014c013c012009d009c003d003c0035002f000a0100004f0000\
             0012001000000d3139322e3136382e322e313432000a00080006001700180019\
             000b00020100000d001200100401020105010601040302030503060300050005\
             01000000000012000000170000",
            ),
            (
                false,
                "16030304960200005103035cef9e29fc014194909b53af86699d233ed91ac0ae\
             93eb33ba83c67dc3251284205546000051f0a1cf87fe3fc0e31472677019381d\
             caffb9355b5e746e41b2f498c03000000900170000ff010001000b0002ec0002\
             e90002e6308202e2308201caa00302010202103dde271223f54fa148cca5d217\
             d88b33300d06092a864886f70d01010b0500301a311830160603550403130f4f\
             46464943452d57494e31302d564d301e170d3139303331393130343731315a17\
             0d3139303931383130343731315a301a311830160603550403130f4f46464943\
             452d57494e31302d564d30820122300d06092a864886f70d0101010500038201\
             0f003082010a0282010100a69e107c5bd42aad64d84286068d8c20b72d31de34\
             d2413f3901956d0dc577cf91910894d0f55f7b8d7478ebf9421c314fc96742dd\
             55a2318c7412ffcad753c211ff0bc7ffa53f7ba0f1333ac59ec9279aba6f7d71\
             57229b0bcf2ba08b5cc79d9727885c096a57c594a86dc43041f738e482ed61d4\
             d97c1dd9cbed2ec0ddab4a0df89ade2adc9beed83fd4e188bf5592b1ca43511b\
             c9b232d18340353e207b4fbe04748df098d802e7a83d2e06c13408f7d367c74b\
             a25368a53c41f12e4e702514213478790536ea1c7c6278ea013bcfe9f990e376\
             b6133cb0c444f0c087cfd43455d7ba12e093bf2f2f02cbdc16cc0ae3c30397e5",
            ),
        ],
        protocol: Protocol(88),
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// rdp.pcap frame 4: Connection Request with RDP_NEG_REQ.
    const REQUEST: &str = "030000130ee00000000000010008000b000000";
    /// rdp.pcap frame 5: Connection Confirm with RDP_NEG_RSP.
    const CONFIRM: &str = "030000130ed00000123400021f080008000000";

    #[test]
    fn request_and_confirm() {
        let f = flow(true, 52494, 3389);
        let (v, meta) = run(dissect, &f, &[(true, &hex(REQUEST))]);
        assert_eq!(v, [Verdict::Found(RDP)]);
        assert_eq!(meta, Metadata::default());
        let (v, _) = run(dissect, &f, &[(false, &hex(CONFIRM))]);
        assert_eq!(v, [Verdict::Found(RDP)]);
        // The confirm selects standard RDP security: no TLS follows.
        let mut standard = hex(CONFIRM);
        standard[15] = 0;
        let (v, _) = run(dissect, &f, &[(true, &hex(REQUEST)), (false, &standard)]);
        assert_eq!(v, [Verdict::Found(RDP), Verdict::Done(RDP)]);
    }

    #[test]
    fn tls_after_the_confirm() {
        // rdp.pcap frames 4, 5 and 7: the confirm selects HYBRID_EX.
        let hello = hex(DISSECTOR.samples[0].packets[2].1);
        let f = flow(true, 52494, 3389);
        let (v, meta) = run(
            dissect,
            &f,
            &[
                (true, &hex(REQUEST)),
                (false, &hex(CONFIRM)),
                (true, &hello),
            ],
        );
        assert_eq!(v, [Verdict::Found(RDP); 3]);
        // ja4plus's JA4 of frame 7.
        let ssl = meta.ssl.unwrap();
        assert_eq!(ssl.client_ja4, "t12d220700_0d4ca5d4ec72_3304d8368043");
    }

    #[test]
    fn cookie() {
        // Synthetic (MS-RDPBCGR 4.1.1 layout): a request with a cookie only.
        let mut req =
            b"\x03\x00\x00\x00\x00\xe0\x00\x00\x00\x00\x00Cookie: mstshash=eltons\r\n".to_vec();
        let len = req.len();
        req[3] = len as u8;
        req[4] = (len - 5) as u8;
        let (v, _) = run(dissect, &flow(true, 40000, 3389), &[(true, &req)]);
        assert_eq!(v, [Verdict::Found(RDP)]);
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(true, 40000, 3389);
        // HTTP (synthetic), a TLS ClientHello (rdp.pcap frame 7), an S7comm
        // COTP connection request (synthetic: TPKT and X.224 CR, but TSAP
        // parameters, no RDP cookie or negotiation).
        for bytes in [
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            hex("16030100a8010000a403035cef9e29f7"),
            hex("0300001611e00000000100c1020100c2020102c0010a"),
        ] {
            let (v, _) = run(dissect, &f, &[(true, &bytes), (false, &bytes)]);
            assert_eq!(v[1], Verdict::No);
        }
    }

    #[test]
    fn prefixes_do_not_panic() {
        let r = hex(REQUEST);
        for n in 0..r.len() {
            let (v, _) = run(dissect, &flow(true, 1, 3389), &[(true, &r[..n])]);
            assert_eq!(v, [Verdict::Maybe]);
        }
    }
}
