//! DRDA (Distributed Relational Database Architecture: IBM DB2, Derby)
//! over TCP.
//!
//! Each DSS opens with a 6-byte header: `length` (2), magic `0xD0`, a
//! format byte (flags in the high nibble, DSS type in the low: 1 request,
//! 2 reply, 3 object, 4 encrypted object, 5 reply without a
//! correlation), a correlation id (2); then the DDM command: `length` (2,
//! the DSS length less 6) and its code point (2).

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// DRDA.
const DRDA: Protocol = Protocol(227);
/// DSS header magic.
const MAGIC: u8 = 0xd0;
/// Code points a connection opens with: EXCSAT, ACCSEC, SECCHK, ACCRDB.
const OPENING: [u16; 4] = [0x1041, 0x106d, 0x106e, 0x2001];

/// DRDA when the client's first DSS is a request whose two lengths agree
/// and whose command is one a connection opens with, and the server's
/// first, if any yet, a DSS too.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp || pkt.server_first {
        return Verdict::No;
    }
    let (client, server) = (pkt.client_stream, pkt.server_stream);
    let Some(&[l0, l1, magic, format, _, _, d0, d1, c0, c1]) = client.get(..10) else {
        let n = client.len().min(3);
        let ok = client.get(2).is_none_or(|&m| m == MAGIC) && n > 0;
        return if ok { Verdict::Maybe } else { Verdict::No };
    };
    let dss = u16::from_be_bytes([l0, l1]);
    let ddm = u16::from_be_bytes([d0, d1]);
    let request_ok = magic == MAGIC
        && format & 0x0f == 1
        && dss >= 10
        && ddm.checked_add(6) == Some(dss)
        && OPENING.contains(&u16::from_be_bytes([c0, c1]));
    if !request_ok {
        return Verdict::No;
    }
    match server.get(..4) {
        None => Verdict::Done(DRDA),
        Some(&[_, _, m, f]) if m == MAGIC && matches!(f & 0x0f, 2 | 3 | 5) => Verdict::Done(DRDA),
        Some(_) => Verdict::No,
    }
}

/// [`Dissector::first`]: the client opens with a DSS under 32 KiB.
fn drda_first(from_client: bool, byte: u8) -> bool {
    from_client && byte < 0x80
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "drda",
    protocols: &[DRDA],
    tcp: true,
    udp: false,
    ports: &[50000, 446, 1527],
    ports_only: false,
    first: drda_first,
    run: dissect,
    samples: &[Sample {
        origin: "drda_db2.pcap frame 4 (EXCSAT, first 24 bytes)",
        tcp: true,
        server_port: 50000,
        packets: &[(true, "0089d0410001008310410039115e8482f29183836d8197")],
        protocol: DRDA,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// drda_db2.pcap frame 4 (first 24 bytes): EXCSAT.
    const EXCSAT: &str = "0089d0410001008310410039115e8482f29183836d8197";
    /// Frame 6 (first 12 bytes): EXCSATRD.
    const EXCSATRD: &str = "005bd04300010055144300";

    #[test]
    fn excsat() {
        let f = flow(true, 4847, 50000);
        let (v, meta) = run(dissect, &f, &[(true, &hex(EXCSAT))]);
        assert_eq!(v, [Verdict::Done(DRDA)]);
        assert_eq!(meta, Metadata::default());
        let e = hex(EXCSAT);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &e[..5]), (false, &hex(EXCSATRD)), (true, &e[5..])],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Maybe, Verdict::Done(DRDA)]);
    }

    #[test]
    fn not_drda() {
        let f = flow(true, 40000, 50000);
        for p in [
            // Lengths disagree; a reply first; an unknown code point.
            "0089d0410001008410410039",
            "0089d0420001008310410039",
            "0089d0410001008312340039",
            crate::dissect::testing::TLS_HELLO_HEAD,
            crate::dissect::testing::HTTP_REQUEST_HEAD,
        ] {
            let (v, _) = run(dissect, &f, &[(true, &hex(p))]);
            assert_eq!(v, [Verdict::No], "{p}");
        }
    }
}
