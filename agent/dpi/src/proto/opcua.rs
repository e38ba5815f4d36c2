//! OPC UA binary (OPC 10000-6, UA TCP) over TCP.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// OPC-UA.
const OPC_UA: Protocol = Protocol(360);
/// Message types that open a stream: Hello, Acknowledge, ReverseHello,
/// Error, OpenSecureChannel (a client reconnecting); all final chunks.
const OPENING: [&[u8; 4]; 5] = [b"HELF", b"ACKF", b"RHEF", b"ERRF", b"OPNF"];
/// Largest first message accepted.
const MAX_LEN: u32 = 1 << 16;

/// OPC-UA (`Protocol(360)`): either stream opens with a UA TCP message
/// header of an opening type and a size of at least 16; Hello,
/// Acknowledge and ReverseHello carry protocol version 0. `Done` at once.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return Verdict::No;
    }
    let s = pkt.stream();
    let n = s.len().min(4);
    if !OPENING.iter().any(|t| t[..n] == s[..n]) {
        return Verdict::No;
    }
    let Some(head) = s.first_chunk::<12>() else {
        return Verdict::Maybe;
    };
    let size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    let version = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    let versioned = matches!(&head[..3], b"HEL" | b"ACK" | b"RHE");
    if (16..=MAX_LEN).contains(&size) && (!versioned || version == 0) {
        Verdict::Done(OPC_UA)
    } else {
        Verdict::No
    }
}

/// The first letter of an opening message type.
fn opening(_from_client: bool, byte: u8) -> bool {
    OPENING.iter().any(|t| t[0] == byte)
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "opcua",
    protocols: &[Protocol(360)],
    tcp: true,
    udp: false,
    ports: &[4840, 4843],
    ports_only: false,
    first: opening,
    run: dissect,
    samples: &[Sample {
        origin: "synthetic (OPC 10000-6 7.1.2.3): Hello",
        tcp: true,
        server_port: 4840,
        packets: &[(
            true,
            "48454c463c000000000000000000010000000100000000000000000012000000\
             6f70632e7463703a2f2f706c633a34383430",
        )],
        protocol: OPC_UA,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{HTTP_REQUEST_HEAD, TLS_HELLO_HEAD, flow, hex, run};

    /// Synthetic (OPC 10000-6 7.1.2.3): a Hello to
    /// opc.tcp://plc:4840 (buffer sizes 65536, no limits).
    const HELLO: &str = "48454c463c000000 00000000 00000100 00000100 00000000 00000000 12000000 6f70632e7463703a2f2f706c633a34383430";

    #[test]
    fn hello() {
        let f = flow(true, 40000, 4840);
        let (v, meta) = run(dissect, &f, &[(true, &hex(HELLO))]);
        assert_eq!(v, [Verdict::Done(OPC_UA)]);
        assert_eq!(meta, Metadata::default());
        let h = hex(HELLO);
        let (v, _) = run(dissect, &f, &[(true, &h[..6]), (true, &h[6..])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(OPC_UA)]);
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(true, 40000, 4840);
        for bytes in [
            hex(HTTP_REQUEST_HEAD),
            hex(TLS_HELLO_HEAD),
            hex("48454c463c00000001000000"),
            b"HELO mail.example.com\r\n".to_vec(),
        ] {
            let (v, _) = run(dissect, &f, &[(true, &bytes)]);
            assert_eq!(v, [Verdict::No], "{bytes:02x?}");
        }
    }
}
