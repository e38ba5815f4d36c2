//! TFTP (RFC 1350, options RFC 2347): over UDP, a read or write request
//! (opcode 1 or 2, a file name, a transfer mode `netascii`, `octet` or
//! `mail`, then option/value pairs, each string ending with a NUL) to
//! port 69. The transfer runs between two other ports: DATA block 1 (or
//! an option acknowledgment) answered by the ACK of block 1 (or 0).

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// nDPI's TFTP.
const TFTP: Protocol = Protocol(96);
const RRQ: u8 = 1;
const WRQ: u8 = 2;
const DATA: u8 = 3;
const ACK: u8 = 4;
const OACK: u8 = 6;
/// Largest DATA: the header and a block of at most 65464 bytes
/// (RFC 2348).
const DATA_MAX: usize = 4 + 65464;

/// A request: opcode, then NUL-terminated strings (file name, mode,
/// options and values in pairs) filling the datagram.
fn request(p: &[u8]) -> bool {
    let (Some(&[0, op]), Some(rest)) = (p.first_chunk::<2>(), p.get(2..)) else {
        return false;
    };
    if (op != RRQ && op != WRQ) || rest.last() != Some(&0) {
        return false;
    }
    let mut strings = rest[..rest.len() - 1].split(|&b| b == 0);
    let file = strings.next().unwrap_or(&[]);
    let mode = strings.next().unwrap_or(&[]);
    let printable = |s: &[u8]| s.iter().all(|&b| b >= 0x20 && b != 0x7f);
    let modes: [&[u8]; 3] = [b"netascii", b"octet", b"mail"];
    let options = strings.take(64).count();
    !file.is_empty()
        && file.len() <= 512
        && printable(file)
        && modes.iter().any(|m| mode.eq_ignore_ascii_case(m))
        && options % 2 == 0
        && rest.len() - file.len() - mode.len() < 512
}

/// An option acknowledgment: options and values, NUL-terminated.
fn oack(p: &[u8]) -> bool {
    let Some(rest) = p.strip_prefix(&[0, OACK]) else {
        return false;
    };
    let strings = rest.split(|&b| b == 0).take(64).count();
    // `split` yields an empty string after the last NUL.
    rest.last() == Some(&0)
        && strings >= 3
        && strings % 2 == 1
        && rest[..rest.len() - 1]
            .iter()
            .all(|&b| b == 0 || (0x20..0x7f).contains(&b))
}

/// `Done` on a request; on DATA block 1 or an OACK, `Maybe` until the
/// other side's ACK (block 1 or 0).
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let p = pkt.payload;
    let first_side = pkt.from_client != pkt.server_first;
    match pkt.seen {
        [0, 0] if request(p) => Verdict::Done(TFTP),
        [0, 0] if (p.starts_with(&[0, DATA, 0, 1]) && p.len() <= DATA_MAX) || oack(p) => {
            Verdict::Maybe
        }
        // The first side again: the same DATA sent again.
        [1, 0] | [0, 1] if first_side && p.starts_with(&[0, DATA, 0, 1]) => Verdict::Maybe,
        [c, s] if !first_side && c + s <= 3 && matches!(p, [0, ACK, 0, 0 | 1]) => {
            Verdict::Done(TFTP)
        }
        _ => Verdict::No,
    }
}

/// Built: a PXE client's read request with the block size and transfer
/// size options.
const READ_REQUEST: &str =
    "00017078656c696e75782e30006f6374657400626c6b73697a650031343536007473697a65003000";

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "tftp",
    protocols: &[TFTP],
    tcp: false,
    udp: true,
    ports: &[69],
    ports_only: false,
    first: |_, b| b == 0,
    run: dissect,
    samples: &[
        Sample {
            origin: "built: a read request with options",
            tcp: false,
            server_port: 69,
            packets: &[(true, READ_REQUEST)],
            protocol: TFTP,
        },
        Sample {
            origin: "built: a transfer's DATA block 1 and its ACK",
            tcp: false,
            server_port: 50123,
            packets: &[(true, "00030001746578740a"), (false, "00040001")],
            protocol: TFTP,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{DNS_QUERY, RTP, STUN_REQUEST, flow, hex, run};

    #[test]
    fn requests() {
        let f = flow(false, 50000, 69);
        let r = hex(READ_REQUEST);
        assert_eq!(run(dissect, &f, &[(true, &r)]).0, [Verdict::Done(TFTP)]);
        let w = b"\x00\x02config.txt\x00NETASCII\x00";
        assert_eq!(run(dissect, &f, &[(true, w)]).0, [Verdict::Done(TFTP)]);
        for bad in [
            &b"\x00\x01file\x00binary\x00"[..],
            b"\x00\x01file\x00octet",
            b"\x00\x01\x00octet\x00",
            b"\x00\x01file\x00octet\x00blksize\x00",
        ] {
            assert_eq!(run(dissect, &f, &[(true, bad)]).0, [Verdict::No], "{bad:?}");
        }
    }

    #[test]
    fn a_transfer_seen_alone() {
        let f = flow(false, 50000, 50123);
        let data = hex("00030001746578740a");
        let (v, _) = run(dissect, &f, &[(true, &data), (false, &[0, 4, 0, 1])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(TFTP)]);
        let (v, _) = run(dissect, &f, &[(true, &data), (false, &[0, 4, 0, 9])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
        let oack = b"\x00\x06blksize\x001456\x00";
        let (v, _) = run(dissect, &f, &[(false, oack), (true, &[0, 4, 0, 0])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(TFTP)]);
    }

    #[test]
    fn others_are_not_tftp() {
        let f = flow(false, 50000, 69);
        for p in [DNS_QUERY, RTP, STUN_REQUEST] {
            let p = hex(p);
            let (v, _) = run(dissect, &f, &[(true, &p), (false, &p)]);
            assert_eq!(v[0], Verdict::No);
        }
    }
}
