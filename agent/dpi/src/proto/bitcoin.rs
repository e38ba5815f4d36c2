//! Bitcoin's peer-to-peer protocol over TCP.
//!
//! Every message opens with a 24-byte header: the network magic (main,
//! testnet, testnet3, testnet4, signet, namecoin), a NUL-padded ASCII
//! command, a little-endian payload length and a checksum. The first
//! header of the side that spoke first names the flow when its magic is
//! known, its command lowercase letters then only NULs, and its length
//! fits a message.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, by_opening};

/// Bitcoin.
const BITCOIN: Protocol = Protocol(343);
/// Network magics (as sent, read big-endian).
const MAGIC: [u32; 6] = [
    0xf9be_b4d9, // main
    0xfabf_b5da, // testnet / regtest
    0x0b11_0907, // testnet3
    0x1c16_3f28, // testnet4
    0x0a03_cf40, // signet
    0xf9be_b4fe, // namecoin
];
/// Largest message payload (32 MB).
const MAX_PAYLOAD: u32 = 32 << 20;
/// Payload packets a flow may take to show a whole header.
const MAX_PACKETS: u32 = 4;

/// `Done` on a valid first header (see the module doc).
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    by_opening(pkt, BITCOIN, MAX_PACKETS, header)
}

/// Whether `s` opens with a valid header (`None`: too short to tell).
fn header(s: &[u8]) -> Option<bool> {
    let Some(&[m0, m1, m2, m3]) = s.get(..4) else {
        let start = MAGIC.iter().any(|m| m.to_be_bytes().starts_with(s));
        return if start { None } else { Some(false) };
    };
    if !MAGIC.contains(&u32::from_be_bytes([m0, m1, m2, m3])) {
        return Some(false);
    }
    let command = s.get(4..16)?;
    let name_len = command.iter().take_while(|&&b| b != 0).count();
    let (name, pad) = command.split_at(name_len);
    if name.is_empty() || !name.iter().all(u8::is_ascii_lowercase) || pad.iter().any(|&b| b != 0) {
        return Some(false);
    }
    let &[l0, l1, l2, l3] = s.get(16..20)?.first_chunk::<4>()?;
    Some(u32::from_le_bytes([l0, l1, l2, l3]) <= MAX_PAYLOAD)
}

/// Whether a flow may start with `byte`: a magic's first.
fn first(_from_client: bool, byte: u8) -> bool {
    MAGIC.iter().any(|m| m.to_be_bytes()[0] == byte)
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "bitcoin",
    protocols: &[BITCOIN],
    tcp: true,
    udp: false,
    ports: &[8333, 18333, 38333, 48333, 18444],
    ports_only: false,
    first,
    run: dissect,
    samples: &[Sample {
        origin: "built: a mainnet version message (protocol 70016, /Satoshi:27.0.0/)",
        tcp: true,
        server_port: 8333,
        packets: &[(true, VERSION)],
        protocol: BITCOIN,
    }],
};

/// A mainnet `version` message, built from the protocol documentation
/// (126 bytes, checksum included).
const VERSION: &str = "f9beb4d976657273696f6e000000000066000000c63485fd8011010009040000\
             000000008085746700000000000000000000000000000000000000000000ffff\
             c0000201208d090400000000000000000000000000000000ffff000000000000\
             8877665544332211102f5361746f7368693a32372e302e302f70460d0001";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    #[test]
    fn version_header_names_the_flow() {
        let m = hex(VERSION);
        let f = flow(true, 40000, 8333);
        let (v, _) = run(dissect, &f, &[(true, &m)]);
        assert_eq!(v, [Verdict::Done(BITCOIN)]);
        let (v, _) = run(dissect, &f, &[(true, &m[..10]), (true, &m[10..])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(BITCOIN)]);
        // A peer that speaks first from the server side (testnet3).
        let mut t = m.clone();
        t[..4].copy_from_slice(&[0x0b, 0x11, 0x09, 0x07]);
        let (v, _) = run(dissect, &f, &[(false, &t)]);
        assert_eq!(v, [Verdict::Done(BITCOIN)]);
    }

    #[test]
    fn rejects_bad_headers_and_other_protocols() {
        let f = flow(true, 40000, 8333);
        let mut m = hex(VERSION);
        m[6] = b'X';
        let (v, _) = run(dissect, &f, &[(true, &m)]);
        assert_eq!(v, [Verdict::No]);
        let mut m = hex(VERSION);
        m[12] = b'a'; // a letter after the NUL padding began
        let (v, _) = run(dissect, &f, &[(true, &m)]);
        assert_eq!(v, [Verdict::No]);
        for s in [
            crate::dissect::testing::TLS_HELLO_HEAD,
            crate::dissect::testing::HTTP_REQUEST_HEAD,
        ] {
            let (v, _) = run(dissect, &f, &[(true, &hex(s))]);
            assert_eq!(v, [Verdict::No], "{s}");
        }
        assert!(first(true, 0xf9) && first(false, 0x0b) && !first(true, 0x16));
    }

    #[test]
    fn truncated_input_does_not_panic() {
        let p = hex(VERSION);
        for n in 0..p.len() {
            let _ = run(dissect, &flow(true, 1, 2), &[(true, &p[..n])]);
        }
    }
}
