//! Apache Cassandra: the CQL native protocol (v1 to v5) and the
//! internode messaging handshake, over TCP.
//!
//! A CQL frame header is `version` (bit 7: response), `flags`, `stream`
//! (1 byte in v1 and v2, 2 bytes from v3), `opcode` and a 4-byte body
//! `length`. Internode connections open with the magic `0xCA552DFA`.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// Cassandra.
const CASSANDRA: Protocol = Protocol(264);
/// Internode messaging magic.
const INTERNODE: [u8; 4] = [0xca, 0x55, 0x2d, 0xfa];
/// Largest body (the protocol's limit: 256 MB).
const MAX_BODY: u32 = 256 << 20;
/// Request opcodes: STARTUP, OPTIONS, QUERY, PREPARE, EXECUTE, REGISTER,
/// BATCH, AUTH_RESPONSE.
const REQUESTS: [u8; 8] = [0x01, 0x05, 0x07, 0x09, 0x0a, 0x0b, 0x0d, 0x0f];
/// Response opcodes: ERROR, READY, AUTHENTICATE, SUPPORTED, RESULT,
/// EVENT, AUTH_CHALLENGE, AUTH_SUCCESS.
const RESPONSES: [u8; 8] = [0x00, 0x02, 0x03, 0x06, 0x08, 0x0c, 0x0e, 0x10];

/// A frame header.
#[derive(Clone, Copy, Debug)]
struct Frame {
    version: u8,
    stream: u16,
    opcode: u8,
    /// Header length.
    header: usize,
    length: u32,
}

/// Cassandra when the client opens with the internode magic, or with a
/// CQL request whose server response (version with bit 7, same stream,
/// a response opcode) follows; a STARTUP naming `CQL_VERSION` needs no
/// response.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp || pkt.server_first {
        return Verdict::No;
    }
    let (client, server) = (pkt.client_stream, pkt.server_stream);
    let n = client.len().min(4);
    if client[..n] == INTERNODE[..n] && n > 0 {
        return if n == 4 {
            Verdict::Done(CASSANDRA)
        } else {
            Verdict::Maybe
        };
    }
    let request = match frame(client) {
        Some(Some(f)) if f.version & 0x80 == 0 && REQUESTS.contains(&f.opcode) => f,
        Some(_) => return Verdict::No,
        None => return Verdict::Maybe,
    };
    let body = client
        .get(request.header..)
        .map_or(&[][..], |b| &b[..b.len().min(request.length as usize)]);
    let named = request.opcode == 0x01 && body.windows(11).any(|w| w == b"CQL_VERSION");
    match frame(server) {
        Some(Some(r))
            if r.version & 0x80 != 0
                && (1..=5).contains(&(r.version & 0x7f))
                && RESPONSES.contains(&r.opcode)
                && (r.stream == request.stream || r.opcode == 0) =>
        {
            Verdict::Done(CASSANDRA)
        }
        Some(_) => Verdict::No,
        None if named => Verdict::Done(CASSANDRA),
        None => Verdict::Maybe,
    }
}

/// The frame header at the start of `stream`: `None` until it is in,
/// `Some(None)` if it is not one.
fn frame(stream: &[u8]) -> Option<Option<Frame>> {
    let &version = stream.first()?;
    if !(1..=5).contains(&(version & 0x7f)) {
        return Some(None);
    }
    let short = version & 0x7f <= 2;
    let header = if short { 8 } else { 9 };
    let h = stream.get(..header)?;
    let (stream_id, rest) = if short {
        (u16::from(h[2]), &h[3..])
    } else {
        (u16::from_be_bytes([h[2], h[3]]), &h[4..])
    };
    let length = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]);
    let ok = h[1] <= 0x1f && length <= MAX_BODY;
    Some(ok.then_some(Frame {
        version,
        stream: stream_id,
        opcode: rest[0],
        header,
        length,
    }))
}

/// [`Dissector::first`]: the client opens with a request version or the internode magic.
fn cassandra_first(from_client: bool, byte: u8) -> bool {
    from_client && ((1..=5).contains(&byte) || byte == INTERNODE[0])
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "cassandra",
    protocols: &[CASSANDRA],
    tcp: true,
    udp: false,
    ports: &[9042, 7000],
    ports_only: false,
    first: cassandra_first,
    run: dissect,
    samples: &[
        Sample {
            origin: "cassandra.pcap frames 4,6 (OPTIONS, SUPPORTED)",
            tcp: true,
            server_port: 9042,
            packets: &[
                (true, "040000000500000000"),
                (
                    false,
                    "8400000006000000340002000b434f4d5052455353494f4e00020006736e6170707900036c7a34000b43514c5f56455253494f4e00010005332e332e31",
                ),
            ],
            protocol: CASSANDRA,
        },
        Sample {
            origin: "cassandra.pcap frame 20 (internode)",
            tcp: true,
            server_port: 7000,
            packets: &[(true, "ca552dfa0c0a0c1106c61200021b58f3cb19b3")],
            protocol: CASSANDRA,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// cassandra.pcap frame 4: OPTIONS (v4).
    const OPTIONS: &str = "040000000500000000";
    /// cassandra.pcap frame 6: SUPPORTED (first 24 bytes).
    const SUPPORTED: &str = "8400000006000000340002000b434f4d5052455353494f4e";
    /// cassandra.pcap frame 16: STARTUP (v5), first 36 bytes.
    const STARTUP: &str = "0500000101000000530003000b4452495645525f4e414d450016446174615374617820";
    /// cassandra.pcap frame 8: STARTUP (v4) with CQL_VERSION.
    const STARTUP_V4: &str = "0400000101000000160001000b43514c5f56455253494f4e0005332e332e31";

    #[test]
    fn request_and_response() {
        let f = flow(true, 46536, 9042);
        let (v, meta) = run(
            dissect,
            &f,
            &[(true, &hex(OPTIONS)), (false, &hex(SUPPORTED))],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(CASSANDRA)]);
        assert_eq!(meta, Metadata::default());
        let (v, _) = run(dissect, &f, &[(true, &hex(STARTUP_V4))]);
        assert_eq!(v, [Verdict::Done(CASSANDRA)]);
        // A STARTUP whose CQL_VERSION is further on waits for the reply.
        let (v, _) = run(dissect, &f, &[(true, &hex(STARTUP))]);
        assert_eq!(v, [Verdict::Maybe]);
    }

    #[test]
    fn internode_magic() {
        // cassandra.pcap frame 20 (port 7000).
        let p = hex("ca552dfa0c0a0c1106c61200021b58f3cb19b3");
        let (v, _) = run(dissect, &flow(true, 37184, 7000), &[(true, &p)]);
        assert_eq!(v, [Verdict::Done(CASSANDRA)]);
    }

    #[test]
    fn not_cassandra() {
        let f = flow(true, 40000, 9042);
        // A response opcode as request; a reply that is not one.
        let (v, _) = run(dissect, &f, &[(true, &hex("040000000600000000"))]);
        assert_eq!(v, [Verdict::No]);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &hex(OPTIONS)), (false, b"HTTP/1.1 400 Bad\r\n")],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
        for p in [
            crate::dissect::testing::TLS_HELLO_HEAD,
            crate::dissect::testing::HTTP_REQUEST_HEAD,
        ] {
            let (v, _) = run(dissect, &f, &[(true, &hex(p))]);
            assert_eq!(v, [Verdict::No]);
        }
    }
}
