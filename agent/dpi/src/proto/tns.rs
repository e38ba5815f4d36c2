//! Oracle's TNS (Transparent Network Substrate, nDPI "Oracle"): packets
//! with an 8-byte header (length, packet checksum, type, flags, header
//! checksum; the checksums 0 in practice). The client opens with a
//! CONNECT (type 1): protocol versions, then the length and offset of
//! its connect data, an `(DESCRIPTION=...)` or `(CONNECT_DATA=...)`
//! string, in the packet or, when long, in the DATA packet that follows.
//! The server answers ACCEPT, REFUSE, REDIRECT or RESEND.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// nDPI's Oracle.
const ORACLE: Protocol = Protocol(167);
const HEADER: usize = 8;
const CONNECT: u8 = 1;
const DATA: u8 = 6;
/// Answers to a CONNECT: ACCEPT, REFUSE, REDIRECT, RESEND.
const ANSWERS: [u8; 4] = [2, 4, 5, 11];
/// The TNS listener's port.
const PORT: u16 = 1521;

/// A header at the start of `p`, its type, length at least `p`'s, with
/// zero checksums: the type.
fn header(p: &[u8]) -> Option<u8> {
    let &[l0, l1, 0, 0, kind, _, 0, 0] = p.first_chunk::<HEADER>()? else {
        return None;
    };
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    (len >= HEADER && len >= p.len() && (1..=19).contains(&kind)).then_some(kind)
}

/// Whether `s` opens a connect descriptor.
fn descriptor(s: &[u8]) -> bool {
    s.starts_with(b"(DESCRIPTION=")
        || s.starts_with(b"(CONNECT_DATA=")
        || s.starts_with(b"(description=")
        || s.starts_with(b"(ADDRESS=")
}

/// A CONNECT: `Some(true)` when its connect data is in it, `Some(false)`
/// when it is to follow.
fn connect(p: &[u8]) -> Option<bool> {
    if header(p)? != CONNECT || usize::from(u16::from_be_bytes([p[0], p[1]])) != p.len() {
        return None;
    }
    let be = |at: usize| -> Option<usize> {
        Some(usize::from(u16::from_be_bytes(
            p.get(at..at + 2)?.try_into().ok()?,
        )))
    };
    let (version, compatible) = (be(8)?, be(10)?);
    let (data_len, data_at) = (be(24)?, be(26)?);
    // Versions 300 (Net8) to 319 (21c and later ones are near), the
    // oldest it still speaks at or below its own.
    if !(300..=400).contains(&version) || compatible > version || data_at < 34 || data_len == 0 {
        return None;
    }
    if data_at + data_len <= p.len() {
        return descriptor(p.get(data_at..)?).then_some(true);
    }
    (data_at == p.len()).then_some(false)
}

/// `Done` on a CONNECT carrying its descriptor, or followed by it in a
/// DATA packet or answered by the server; `Maybe` in between.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let p = pkt.payload;
    match (pkt.from_client, pkt.seen) {
        (true, [0, 0]) => match connect(p) {
            Some(true) => Verdict::Done(ORACLE),
            Some(false) => Verdict::Maybe,
            None => Verdict::No,
        },
        (true, [1, 0])
            if header(p) == Some(DATA) && descriptor(p.get(HEADER + 2..).unwrap_or(&[])) =>
        {
            Verdict::Done(ORACLE)
        }
        (false, [1, 0]) if header(p).is_some_and(|t| ANSWERS.contains(&t)) => Verdict::Done(ORACLE),
        // The listener's answer, the CONNECT missed.
        (false, [0, 0])
            if pkt.flow.server_port == PORT && header(p).is_some_and(|t| ANSWERS.contains(&t)) =>
        {
            Verdict::Done(ORACLE)
        }
        _ => Verdict::No,
    }
}

/// Built: an SQL*Plus CONNECT with its descriptor (version 316).
const CONNECT_SAMPLE: &str = "00c8000001000000013c012c00002000ffff7f0800000001008e003a0000000041410000\
     00000000000000000000000000000000000000000000284445534352495054494f4e3d28434f4e4e4543545f444154\
     413d28534552564943455f4e414d453d4f52434c29284349443d2850524f4752414d3d73716c706c75732928484f53\
     543d64622928555345523d73636f747429292928414444524553533d2850524f544f434f4c3d5443502928484f5354\
     3d31302e302e302e322928504f52543d31353231292929";
/// Built: the listener's ACCEPT.
const ACCEPT: &str = "001e000002000000013c00002000ffff0000000041410000000000000000";

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "tns",
    protocols: &[ORACLE],
    tcp: true,
    udp: false,
    ports: &[PORT],
    ports_only: false,
    first: |from_client, b| !from_client || b <= 0x20,
    run: dissect,
    samples: &[Sample {
        origin: "built: an SQL*Plus CONNECT and the listener's ACCEPT",
        tcp: true,
        server_port: 1522,
        packets: &[(true, CONNECT_SAMPLE), (false, ACCEPT)],
        protocol: ORACLE,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{HTTP_REQUEST_HEAD, TLS_HELLO_HEAD, flow, hex, run};

    #[test]
    fn a_connect_with_its_descriptor() {
        let f = flow(true, 50000, 1522);
        let c = hex(CONNECT_SAMPLE);
        assert_eq!(run(dissect, &f, &[(true, &c)]).0, [Verdict::Done(ORACLE)]);
    }

    #[test]
    fn a_connect_whose_descriptor_follows() {
        let c = hex(CONNECT_SAMPLE);
        let (head, desc) = c.split_at(58);
        let mut short = head.to_vec();
        short[1] = 58;
        let mut data = vec![0, 0, 0, 0, DATA, 0, 0, 0, 0, 0];
        data.extend_from_slice(desc);
        let n = u16::try_from(data.len()).unwrap_or(0).to_be_bytes();
        data[..2].copy_from_slice(&n);
        let f = flow(true, 50000, 1522);
        let (v, _) = run(dissect, &f, &[(true, &short), (true, &data)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(ORACLE)]);
        let (v, _) = run(dissect, &f, &[(true, &short), (false, &hex(ACCEPT))]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(ORACLE)]);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &short), (false, b"220 ftp ready\r\n")],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
    }

    #[test]
    fn others_are_not_tns() {
        let f = flow(true, 50000, PORT);
        for p in [TLS_HELLO_HEAD, HTTP_REQUEST_HEAD] {
            assert_eq!(run(dissect, &f, &[(true, &hex(p))]).0, [Verdict::No]);
        }
        let mut c = hex(CONNECT_SAMPLE);
        c[8] = 0x05;
        assert_eq!(run(dissect, &f, &[(true, &c)]).0, [Verdict::No]);
    }
}
