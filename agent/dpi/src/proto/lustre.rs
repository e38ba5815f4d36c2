//! Lustre's LNet over TCP (the socklnd), IPv4 only.
//!
//! A connection opens with the LNet acceptor's request (magic
//! `0xACCE7100`, version, then the peer's NID) or socklnd's hello (magic
//! `0x45726963`, version, then the source and destination NIDs); a NID's
//! address is the IPv4 address, little-endian. Mid-stream, a socklnd
//! message of type `0xC1` carries an LNet header with the destination
//! NID at byte 24 and the payload length at byte 52.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// Lustre.
const LUSTRE: Protocol = Protocol(425);
/// Acceptor request and socklnd hello magic (little-endian).
const MAGICS: [u32; 2] = [0xacce_7100, 0x4572_6963];
/// socklnd LNet message type.
const LNET_MSG: u32 = 0xc1;
/// LNet message header length (socklnd and LNet headers).
const LNET_HEADER: usize = 96;

/// Lustre when a packet opens with one of [`MAGICS`] and names its
/// destination address (that of the flow's other side) as the NID at
/// byte 8, or is an LNet message to that address whose payload length is
/// that of the rest of the packet.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp || pkt.flow.ip_version != 4 || pkt.seen_here() > 0 {
        return Verdict::No;
    }
    let p = pkt.payload;
    let le = |at: usize| {
        p.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let to = if pkt.from_client {
        &pkt.flow.server_ip
    } else {
        &pkt.flow.client_ip
    };
    let dst = u32::from_be_bytes([to[0], to[1], to[2], to[3]]);
    let Some(magic) = le(0) else {
        return Verdict::No;
    };
    let found = if MAGICS.contains(&magic) {
        p.len() > 15 && le(8) == Some(dst)
    } else {
        magic == LNET_MSG
            && p.len() >= LNET_HEADER
            && le(24) == Some(dst)
            && le(52).map(|n| n as usize) == Some(p.len() - LNET_HEADER)
    };
    if found {
        Verdict::Done(LUSTRE)
    } else {
        Verdict::No
    }
}

/// [`Dissector::first`]: the first bytes of the magics (little-endian) and of an LNet message.
fn lustre_first(_from_client: bool, byte: u8) -> bool {
    matches!(byte, 0x00 | 0x63 | 0xc1)
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "lustre",
    protocols: &[LUSTRE],
    tcp: true,
    udp: false,
    ports: &[988],
    ports_only: false,
    first: lustre_first,
    run: dissect,
    samples: &[Sample {
        origin: "lustre.pcapng frame 4, its NID set to the sample flow server 192.0.2.1",
        tcp: true,
        server_port: 988,
        packets: &[(true, "0071ceac01000000010200c000000200")],
        protocol: LUSTRE,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// lustre.pcapng frame 4 (192.168.88.132 to .131): the acceptor
    /// request.
    const ACCEPTOR: &str = "0071ceac010000008358a8c000000200";

    fn lustre_flow() -> flowstat_core::FlowInfo {
        let mut f = flow(true, 1022, 988);
        f.client_ip[..4].copy_from_slice(&[192, 168, 88, 132]);
        f.server_ip[..4].copy_from_slice(&[192, 168, 88, 131]);
        f
    }

    #[test]
    fn acceptor_and_hello() {
        let f = lustre_flow();
        let (v, meta) = run(dissect, &f, &[(true, &hex(ACCEPTOR))]);
        assert_eq!(v, [Verdict::Done(LUSTRE)]);
        assert_eq!(meta, Metadata::default());
        // Frame 8: the server's hello to the client (.132).
        let hello = hex("63697245030000008458a8c0000002008358a8c000000200393000000000000022b18f96");
        let (v, _) = run(dissect, &f, &[(false, &hello)]);
        assert_eq!(v, [Verdict::Done(LUSTRE)]);
    }

    #[test]
    fn other_destinations_and_protocols_are_not_lustre() {
        // The request sent to another address.
        let (v, _) = run(dissect, &flow(true, 1022, 988), &[(true, &hex(ACCEPTOR))]);
        assert_eq!(v, [Verdict::No]);
        let tls = hex(crate::dissect::testing::TLS_HELLO_HEAD);
        let (v, _) = run(dissect, &lustre_flow(), &[(true, &tls)]);
        assert_eq!(v, [Verdict::No]);
    }
}
