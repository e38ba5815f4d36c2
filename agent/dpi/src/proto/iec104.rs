//! IEC 60870-5-104: telecontrol APDUs over TCP.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// IEC60870 (5-104).
const IEC104: Protocol = Protocol(245);
/// The registered port.
const PORT: u16 = 2404;
/// APDUs read from the start of one stream.
const MAX_APDUS: usize = 4;
/// Payload packets a flow may take to show enough.
const MAX_PACKETS: u32 = 8;
/// U-format control octets: STARTDT, STOPDT and TESTFR, act and con.
const U_FORMATS: [u8; 6] = [0x07, 0x0b, 0x13, 0x23, 0x43, 0x83];

/// A read of one APDU.
enum Read<'a> {
    More,
    Bad,
    Ok(&'a [u8]),
}

/// IEC60870 (`Protocol(245)`): each stream opens with APDUs (start byte
/// 0x68, a length of 4 to 253, a control field of a valid I, S or U
/// format, an I format carrying an ASDU of a defined type). One whole
/// APDU is enough on port 2404, two are needed elsewhere. `Done` then.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return Verdict::No;
    }
    let mut apdus = 0;
    for stream in [pkt.client_stream, pkt.server_stream] {
        let mut rest = stream;
        for i in 0..MAX_APDUS {
            match apdu(rest) {
                Read::Ok(after) => (apdus, rest) = (apdus + 1, after),
                Read::Bad if i == 0 && !rest.is_empty() => return Verdict::No,
                _ => break,
            }
        }
    }
    let on_port = pkt.flow.server_port == PORT || pkt.flow.client_port == PORT;
    if apdus >= 2 || (apdus == 1 && on_port) {
        Verdict::Done(IEC104)
    } else if pkt.packets() < MAX_PACKETS {
        Verdict::Maybe
    } else {
        Verdict::No
    }
}

/// Reads the APDU at the start of `bytes`.
fn apdu(bytes: &[u8]) -> Read<'_> {
    match bytes {
        [] => return Read::More,
        [0x68] => return Read::More,
        [0x68, len, ..] if (4..=253).contains(len) => {}
        _ => return Read::Bad,
    }
    let Some(&[_, len, c1, c2, c3, c4]) = bytes.first_chunk::<6>() else {
        return Read::More;
    };
    let len = usize::from(len);
    let ok = if c1 & 1 == 0 {
        // I format: send and receive sequence numbers, then an ASDU of at
        // least type, qualifier, cause (2) and common address (2).
        c3 & 1 == 0 && len >= 4 + 6 && bytes.get(6).is_none_or(|&t| asdu_type(t))
    } else if c1 & 3 == 1 {
        c1 == 1 && c2 == 0 && c3 & 1 == 0 && len == 4
    } else {
        U_FORMATS.contains(&c1) && [c2, c3, c4] == [0, 0, 0] && len == 4
    };
    if !ok {
        return Read::Bad;
    }
    match bytes.get(2 + len..) {
        Some(after) => Read::Ok(after),
        None => Read::More,
    }
}

/// Whether `t` is an ASDU type IEC 60870-5-101/104 defines.
fn asdu_type(t: u8) -> bool {
    matches!(t, 1..=40 | 45..=51 | 58..=64 | 70 | 100..=107 | 110..=113 | 120..=127)
}

/// An APDU's start byte.
fn start(_from_client: bool, byte: u8) -> bool {
    byte == 0x68
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "iec104",
    protocols: &[Protocol(245)],
    tcp: true,
    udp: false,
    ports: &[2404],
    ports_only: false,
    first: start,
    run: dissect,
    samples: &[Sample {
        origin: "iec60780-5-104.pcap frames 4,5",
        tcp: true,
        server_port: 2404,
        packets: &[(true, "680407000000"), (false, "68040b000000")],
        protocol: IEC104,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{HTTP_REQUEST_HEAD, TLS_HELLO_HEAD, flow, hex, run};

    /// iec60780-5-104.pcap frames 4 and 5: STARTDT act and con.
    const STARTDT_ACT: &str = "680407000000";
    const STARTDT_CON: &str = "68040b000000";
    /// Synthetic (IEC 60870-5-104, 5.1): an I format carrying a general
    /// interrogation (type 100, cause activation, address 1, QOI 20), and
    /// an S format acknowledging it.
    const INTERROGATION: &str = "680e00000000 6401060001000000 0014";
    const S_FORMAT: &str = "680401000200";

    #[test]
    fn startdt_on_port_2404() {
        let f = flow(true, 1568, 2404);
        let (v, meta) = run(dissect, &f, &[(true, &hex(STARTDT_ACT))]);
        assert_eq!(v, [Verdict::Done(IEC104)]);
        assert_eq!(meta, Metadata::default());
        // Junk after a first whole APDU does not undo it (the capture has
        // some).
        let mut junk = hex(STARTDT_ACT);
        junk.extend_from_slice(&hex("0168"));
        let (v, _) = run(dissect, &f, &[(true, &junk)]);
        assert_eq!(v, [Verdict::Done(IEC104)]);
    }

    #[test]
    fn two_apdus_elsewhere() {
        let f = flow(true, 40000, 12404);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &hex(STARTDT_ACT)), (false, &hex(STARTDT_CON))],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(IEC104)]);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &hex(INTERROGATION)), (false, &hex(S_FORMAT))],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(IEC104)]);
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(true, 40000, 2404);
        for bytes in [
            hex(HTTP_REQUEST_HEAD),
            hex(TLS_HELLO_HEAD),
            hex("680400000000"),
            hex("680407000001"),
            hex("6804ff000000"),
            hex("680a00000000 00010600 0100"),
        ] {
            let (v, _) = run(dissect, &f, &[(true, &bytes)]);
            assert_eq!(v, [Verdict::No], "{bytes:02x?}");
        }
    }

    #[test]
    fn prefixes_do_not_panic() {
        let r = hex(INTERROGATION);
        for n in 0..r.len() {
            let (v, _) = run(dissect, &flow(true, 1, 2404), &[(true, &r[..n])]);
            assert_eq!(v, [Verdict::Maybe], "{n}");
        }
    }
}
