//! Agora's Software Defined Real-time Network (SD-RTN) over UDP: the
//! server name in a client's request.
//!
//! Agora's requests carry a small header whose seventh byte is `0x21`,
//! then at offset 12 a tag `04 'S' 'N' 'I'`, a 16-bit big-endian length,
//! a zero byte and the server name, which must fit in the datagram and be
//! a host name. Claimed on one such datagram; the name becomes the flow's
//! server name.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// SD-RTN.
const SD_RTN: Protocol = Protocol(171);
/// Longest server name taken as real.
const MAX_NAME: usize = 253;

/// See the module's documentation.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, meta: &mut Metadata) -> Verdict {
    let p = pkt.payload;
    if pkt.tcp || p.get(6) != Some(&0x21) || p.get(12..16) != Some(b"\x04SNI") {
        return Verdict::No;
    }
    let Some(&[l0, l1, 0]) = p.get(16..19) else {
        return Verdict::No;
    };
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    let Some(name) = p.get(19..19 + len) else {
        return Verdict::No;
    };
    let host = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_');
    if name.is_empty() || len > MAX_NAME || !name.iter().all(host) {
        return Verdict::No;
    }
    if meta.host_server_name.is_empty() {
        meta.host_server_name = String::from_utf8_lossy(name).to_lowercase();
    }
    Verdict::Done(SD_RTN)
}

/// A request naming `ap1.agora.io`, laid out as nDPI's dissector reads
/// it (the bytes outside the tag and name are arbitrary).
const REQUEST: &str = "0050000000002100000000010453 4e49000c00 6170312e61676f72612e696f 0000";

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "sd_rtn",
    protocols: &[SD_RTN],
    tcp: false,
    udp: true,
    ports: &[],
    ports_only: false,
    first: crate::dissect::any_first,
    run: dissect,
    samples: &[Sample {
        origin: "built from nDPI's sd_rtn.c layout",
        tcp: false,
        server_port: 8000,
        packets: &[(true, REQUEST)],
        protocol: SD_RTN,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    #[test]
    fn request_with_name() {
        let f = flow(false, 40000, 8000);
        let (v, meta) = run(dissect, &f, &[(true, &hex(REQUEST))]);
        assert_eq!(v, [Verdict::Done(SD_RTN)]);
        assert_eq!(meta.host_server_name, "ap1.agora.io");
    }

    #[test]
    fn rejects_bad_requests() {
        let f = flow(false, 40000, 8000);
        let good = hex(REQUEST);
        // Other marker, other tag, nonzero byte, name past the end, not a name.
        for (at, byte) in [(6, 0x22), (13, b'X'), (18, 1), (17, 0x40), (20, b' ')] {
            let mut bad = good.clone();
            bad[at] = byte;
            let (v, _) = run(dissect, &f, &[(true, &bad)]);
            assert_eq!(v, [Verdict::No], "byte {at}");
        }
        for n in 0..31 {
            let (v, _) = run(dissect, &f, &[(true, &good[..n])]);
            assert_eq!(v, [Verdict::No], "{n}");
        }
    }
}
