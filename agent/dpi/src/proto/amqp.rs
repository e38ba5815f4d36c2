//! AMQP over TCP.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// AMQP.
const AMQP: Protocol = Protocol(192);

/// The protocol headers: `AMQP` and the version bytes.
const HEADERS: &[[u8; 4]] = &[
    [0, 0, 9, 1],  // 0-9-1
    [1, 1, 0, 9],  // 0-9
    [1, 1, 0, 10], // 0-10
    [1, 1, 8, 0],  // 0-8 (as RabbitMQ and Qpid send it)
    [1, 1, 9, 1],  // 0-9-1 (older clients)
    [0, 1, 0, 0],  // 1.0
    [2, 1, 0, 0],  // 1.0 over TLS
    [3, 1, 0, 0],  // 1.0 SASL
];

/// AMQP (`Protocol(192)`): the 8-byte protocol header `AMQP` + a known
/// version starting either stream (the client sends it; a 1.0 server
/// echoes it, a 0-9-1 server answers a wrong one with its own). `Done`
/// at once.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return Verdict::No;
    }
    match [pkt.client_stream, pkt.server_stream].map(header) {
        [Some(true), _] | [_, Some(true)] => Verdict::Done(AMQP),
        [Some(false), Some(false)] => Verdict::No,
        _ => Verdict::Maybe,
    }
}

/// Whether `stream` starts with a protocol header: `None` while it is a
/// shorter part of one.
fn header(stream: &[u8]) -> Option<bool> {
    let Some((magic, version)) = stream.split_first_chunk::<4>() else {
        return (!b"AMQP".starts_with(stream)).then_some(false);
    };
    if magic != b"AMQP" {
        return Some(false);
    }
    match version.first_chunk::<4>() {
        Some(v) => Some(HEADERS.contains(v)),
        None if HEADERS.iter().any(|h| h.starts_with(version)) => None,
        None => Some(false),
    }
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "amqp",
    protocols: &[Protocol(192)],
    tcp: true,
    udp: false,
    ports: &[5672],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "built: an AMQP 0-9-1 protocol header and the server's Connection.Start frame head",
        tcp: true,
        server_port: 5672,
        packets: &[
            (true, "414d515000000901"),
            (false, "010000000001c7000a000a0009"),
        ],
        protocol: Protocol(192),
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    // Synthetic headers (AMQP 0-9-1 section 4.2.2, AMQP 1.0 section
    // 2.2): the corpus has no AMQP.
    const V091: &[u8] = b"AMQP\x00\x00\x09\x01";
    const V10_SASL: &[u8] = b"AMQP\x03\x01\x00\x00";

    #[test]
    fn protocol_header() {
        let f = flow(true, 40000, 5672);
        let (v, meta) = run(dissect, &f, &[(true, V091)]);
        assert_eq!(v, [Verdict::Done(AMQP)]);
        assert_eq!(meta, Metadata::default());
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &V10_SASL[..5]), (true, &V10_SASL[5..])],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(AMQP)]);
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(true, 40000, 5672);
        // HTTP (synthetic), a TLS ClientHello (rdp.pcap frame 7), an
        // unknown AMQP version.
        for bytes in [
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            hex("16030100a8010000a403035cef9e29f7"),
            b"AMQP\x00\x00\x09\x09".to_vec(),
        ] {
            let (v, _) = run(dissect, &f, &[(true, &bytes), (false, &bytes)]);
            assert_eq!(v[1], Verdict::No);
        }
    }

    #[test]
    fn prefixes_do_not_panic() {
        for n in 0..V091.len() {
            let (v, _) = run(dissect, &flow(true, 1, 5672), &[(true, &V091[..n])]);
            assert_eq!(v, [Verdict::Maybe]);
        }
    }
}
