//! Siemens S7comm and S7CommPlus, in COTP data TPDUs over TPKT.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};
use crate::proto::tpkt::{self, Read};

/// S7Comm.
const S7COMM: Protocol = Protocol(249);
/// S7CommPlus.
const S7COMM_PLUS: Protocol = Protocol(361);
/// S7comm and S7CommPlus protocol ids (first byte of their PDU).
const S7_ID: u8 = 0x32;
const S7_PLUS_ID: u8 = 0x72;
/// Payload packets a flow may take to show its first data.
const MAX_PACKETS: u32 = 10;

/// S7Comm (`Protocol(249)`) or S7CommPlus (`Protocol(361)`): either
/// stream holds TPKTs with COTP connection TPDUs and then a class 0 DT
/// whose data is an S7comm PDU (id 0x32, a known ROSCTR, reserved 0,
/// header, parameter and data lengths adding up to the TPDU) or an
/// S7CommPlus frame (id 0x72, version 1 to 3, its data length, and the
/// trailer repeating id and version). `Done` at the first data.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return Verdict::No;
    }
    let mut more = false;
    for stream in [pkt.client_stream, pkt.server_stream] {
        match tpkt::first_data(stream) {
            Read::Ok(tpdu, _) => {
                let eot = tpdu.header.first().is_some_and(|&b| b & 0x80 != 0);
                return match kind(tpdu.data, eot) {
                    Some(p) => Verdict::Done(p),
                    None => Verdict::No,
                };
            }
            Read::Bad => return Verdict::No,
            Read::More => more = true,
        }
    }
    if more && pkt.packets() < MAX_PACKETS {
        Verdict::Maybe
    } else {
        Verdict::No
    }
}

/// Which of S7comm and S7CommPlus the data of a DT TPDU (its last when
/// `eot`) starts, if either.
fn kind(data: &[u8], eot: bool) -> Option<Protocol> {
    match *data {
        [S7_ID, rosctr, 0, 0, _, _, p0, p1, d0, d1, ..] => {
            let header = match rosctr {
                1 | 7 => 10,
                2 | 3 => 12,
                _ => return None,
            };
            let params = usize::from(u16::from_be_bytes([p0, p1]));
            let total = header + params + usize::from(u16::from_be_bytes([d0, d1]));
            let fits = if eot {
                total == data.len()
            } else {
                total > data.len() && data.len() >= header
            };
            fits.then_some(S7COMM)
        }
        [S7_PLUS_ID, version @ 1..=3, l0, l1, ..] => {
            let len = usize::from(u16::from_be_bytes([l0, l1]));
            let trailer = data.get(4 + len..)?;
            (eot && trailer.len() == 4 && trailer[..2] == [S7_PLUS_ID, version])
                .then_some(S7COMM_PLUS)
        }
        _ => None,
    }
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "s7comm",
    protocols: &[S7COMM, S7COMM_PLUS],
    tcp: true,
    udp: false,
    ports: &[102],
    ports_only: false,
    first: tpkt::starts,
    run: dissect,
    samples: &[
        Sample {
            origin: "s7comm.pcap frames 1-4",
            tcp: true,
            server_port: 102,
            packets: &[
                (true, "0300001611e00000000700c1020100c2020102c0010a"),
                (false, "0300001611d00007000300c0010ac1020100c2020102"),
                (true, "0300001902f08032010000020000080000f0000001000101e0"),
                (
                    false,
                    "0300001b02f080320300000200000800000000f0000001000100f0",
                ),
            ],
            protocol: S7COMM,
        },
        Sample {
            origin: "s7comm-plus.pcap frames 6,8,12",
            tcp: true,
            server_port: 102,
            packets: &[
                (
                    true,
                    "030000241fe00000011200c1020620c21053494d415449432d524f4f542d484d\
             49c0010a",
                ),
                (
                    false,
                    "030000241fd00112000900c0010ac1020620c21053494d415449432d524f4f54\
             2d484d49",
                ),
                (
                    false,
                    "0300008902f0807201007a32000004ca00000001361102873e8723a100000120\
             821f0000a38169001500a3823200170000013a823b00048200823c0004814082\
             3d00048480c040823e00048480c040823f00151b313b36455337203231312d31\
             424533312d30584230203b56332e308240001505323b32383882410003000300\
             a20000000072010000",
                ),
            ],
            protocol: S7COMM_PLUS,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{HTTP_REQUEST_HEAD, TLS_HELLO_HEAD, flow, hex, run};

    /// s7comm.pcap frames 1 to 4: COTP connection request and confirm,
    /// setup communication job and its ack-data.
    const CR: &str = "0300001611e00000000700c1020100c2020102c0010a";
    const CC: &str = "0300001611d00007000300c0010ac1020100c2020102";
    const SETUP: &str = "0300001902f08032010000020000080000f0000001000101e0";
    const SETUP_ACK: &str = "0300001b02f080320300000200000800000000f0000001000100f0";
    /// s7comm-plus.pcap frame 8 (connection confirm to SIMATIC-ROOT-HMI)
    /// and frame 12 (the CreateObject response, 137 bytes).
    const PLUS_CC: &str =
        "030000241fd00112000900c0010ac1020620c21053494d415449432d524f4f542d484d49";
    const PLUS_RESPONSE: &str = "0300008902f0807201007a32000004ca00000001361102873e8723a100000120821f0000a38169001500a3823200170000013a823b00048200823c00048140823d00048480c040823e00048480c040823f00151b313b36455337203231312d31424533312d30584230203b56332e308240001505323b32383882410003000300a20000000072010000";

    #[test]
    fn s7comm_setup() {
        let f = flow(true, 4185, 102);
        let (v, meta) = run(
            dissect,
            &f,
            &[
                (true, &hex(CR)),
                (false, &hex(CC)),
                (true, &hex(SETUP)),
                (false, &hex(SETUP_ACK)),
            ],
        );
        assert_eq!(
            v,
            [
                Verdict::Maybe,
                Verdict::Maybe,
                Verdict::Done(S7COMM),
                Verdict::Done(S7COMM)
            ]
        );
        assert_eq!(meta, Metadata::default());
        let (v, _) = run(dissect, &f, &[(false, &hex(SETUP_ACK))]);
        assert_eq!(v, [Verdict::Done(S7COMM)]);
    }

    #[test]
    fn s7comm_plus_response() {
        let f = flow(true, 53162, 102);
        let (v, _) = run(
            dissect,
            &f,
            &[(false, &hex(PLUS_CC)), (false, &hex(PLUS_RESPONSE))],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(S7COMM_PLUS)]);
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(true, 40000, 102);
        // HTTP, TLS, an RDP connection request (rdp.pcap frame 4) then a
        // TLS record, an MMS connect (iso9506-1-mms.pcap frame 7, cut).
        let mut rdp = hex("030000130ee00000000000010008000b000000");
        rdp.extend_from_slice(&hex(TLS_HELLO_HEAD));
        for bytes in [
            hex(HTTP_REQUEST_HEAD),
            hex(TLS_HELLO_HEAD),
            rdp,
            hex("0300001702f0800d9e0506130100160102140200023302"),
            hex("0300001102f08032090000020000000000"),
        ] {
            let (v, _) = run(dissect, &f, &[(true, &bytes)]);
            assert_eq!(v, [Verdict::No], "{bytes:02x?}");
        }
    }

    #[test]
    fn prefixes_do_not_panic() {
        let r = hex(SETUP);
        for n in 0..r.len() {
            let (v, _) = run(dissect, &flow(true, 1, 102), &[(true, &r[..n])]);
            assert_eq!(v, [Verdict::Maybe], "{n}");
        }
    }
}
