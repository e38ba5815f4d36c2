//! ISO 9506-1 MMS: the association that opens it, an ISO 8327 session
//! CONNECT or ACCEPT in a COTP data TPDU over TPKT.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};
use crate::proto::tpkt::{self, Read};

/// ISO9506-1-MMS.
const MMS: Protocol = Protocol(366);
/// Session SPDU types: CONNECT and ACCEPT.
const CONNECT: u8 = 0x0d;
const ACCEPT: u8 = 0x0e;
/// An object identifier under the MMS arc 1.0.9506.2 (BER: tag, length
/// 5, then `28 ca 22 02`): MMS's abstract syntax and ACSE context names.
const MMS_OID: [u8; 6] = [0x06, 0x05, 0x28, 0xca, 0x22, 0x02];
/// Payload packets a flow may take to show its first data.
const MAX_PACKETS: u32 = 10;

/// ISO9506-1-MMS (`Protocol(366)`): either stream holds TPKTs with COTP
/// connection TPDUs and then a class 0 DT whose data is a session
/// CONNECT or ACCEPT SPDU (its length fitting the data) naming an MMS
/// object identifier (1.0.9506.2.x) in its presentation and ACSE user
/// data. `Done` at the first data.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return Verdict::No;
    }
    let mut more = false;
    for stream in [pkt.client_stream, pkt.server_stream] {
        match tpkt::first_data(stream) {
            Read::Ok(tpdu, _) if association(tpdu.data) => return Verdict::Done(MMS),
            Read::Ok(..) | Read::Bad => return Verdict::No,
            Read::More => more = true,
        }
    }
    if more && pkt.packets() < MAX_PACKETS {
        Verdict::Maybe
    } else {
        Verdict::No
    }
}

/// Whether `data` is a session CONNECT or ACCEPT carrying MMS.
fn association(data: &[u8]) -> bool {
    let (len, body) = match *data {
        [CONNECT | ACCEPT, 0xff, l0, l1, ref body @ ..] => {
            (usize::from(u16::from_be_bytes([l0, l1])), body)
        }
        [CONNECT | ACCEPT, len, ref body @ ..] => (usize::from(len), body),
        _ => return false,
    };
    len == body.len() && body.windows(MMS_OID.len()).any(|w| w == MMS_OID)
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "mms",
    protocols: &[Protocol(366)],
    tcp: true,
    udp: false,
    ports: &[102],
    ports_only: false,
    first: tpkt::starts,
    run: dissect,
    samples: &[Sample {
        origin: "iso9506-1-mms.pcap frames 4,6,7",
        tcp: true,
        server_port: 102,
        packets: &[
            (true, "0300001611e00000077800c1020001c2020001c0010d"),
            (false, "0300001611d00778340000c1020001c2020001c0010a"),
            (
                true,
                "030000a702f0800d9e0506130100160102140200023302000134020001c18831\
             8185a003800101a27e810400000001820400000001a423300f02010106045201\
             00013004060251013010020103060528ca220201300406025101880206006147\
             3045020101a040603e80020780a107060528ca220203be2f282d020103a028a8\
             26800300fa0081010a82010a830105a416800101810305e100820c03a0000000\
             0000000000e110",
            ),
        ],
        protocol: MMS,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{HTTP_REQUEST_HEAD, TLS_HELLO_HEAD, flow, hex, run};

    /// iso9506-1-mms.pcap frames 4 and 6: COTP connection request and
    /// confirm.
    const CR: &str = "0300001611e00000077800c1020001c2020001c0010d";
    const CC: &str = "0300001611d00778340000c1020001c2020001c0010a";
    /// iso9506-1-mms.pcap frame 7: session CONNECT with the MMS
    /// initiate request.
    const CONNECT_REQ: &str = "030000a702f0800d9e0506130100160102140200023302000134020001c188318185a003800101a27e810400000001820400000001a423300f0201010604520100013004060251013010020103060528ca2202013004060251018802060061473045020101a040603e80020780a107060528ca220203be2f282d020103a028a826800300fa0081010a82010a830105a416800101810305e100820c03a00000000000000000e110";
    /// iso9506-1-mms.pcap frame 10: a later confirmed request (no
    /// session connect).
    const LATER: &str = "0300004202f0800100010061353033020103a02ea02c020304a273a625a023a1211a0e41413145315130314650324c44301a0f4c4c4e30244252247263625f423032";

    #[test]
    fn association_request() {
        let f = flow(true, 1345, 102);
        let (v, meta) = run(
            dissect,
            &f,
            &[
                (true, &hex(CR)),
                (false, &hex(CC)),
                (true, &hex(CONNECT_REQ)),
            ],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Maybe, Verdict::Done(MMS)]);
        assert_eq!(meta, Metadata::default());
        // Split across two segments.
        let c = hex(CONNECT_REQ);
        let (v, _) = run(dissect, &f, &[(true, &c[..60]), (true, &c[60..])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(MMS)]);
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(true, 40000, 102);
        // S7comm setup (s7comm.pcap frame 3), data with no connect
        // (frame 10 here), HTTP, TLS.
        for bytes in [
            hex("0300001902f08032010000020000080000f0000001000101e0"),
            hex(LATER),
            hex(HTTP_REQUEST_HEAD),
            hex(TLS_HELLO_HEAD),
        ] {
            let (v, _) = run(dissect, &f, &[(true, &bytes)]);
            assert_eq!(v, [Verdict::No], "{bytes:02x?}");
        }
        // A CONNECT with no MMS in it.
        let mut other = hex(CONNECT_REQ);
        for b in other.iter_mut().filter(|b| **b == 0xca) {
            *b = 0xcb;
        }
        let (v, _) = run(dissect, &f, &[(true, &other)]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn prefixes_do_not_panic() {
        let r = hex(CONNECT_REQ);
        for n in 0..r.len() {
            let (v, _) = run(dissect, &flow(true, 1, 102), &[(true, &r[..n])]);
            assert_eq!(v, [Verdict::Maybe], "{n}");
        }
    }
}
