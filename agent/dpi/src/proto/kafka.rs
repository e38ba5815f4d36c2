//! Apache Kafka wire protocol over TCP.
//!
//! Each message is behind a 4-byte big-endian size. A request header is
//! `api_key` (i16), `api_version` (i16), `correlation_id` (i32) and
//! `client_id` (a nullable i16-length string); a response starts with the
//! request's `correlation_id`.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// Kafka.
const KAFKA: Protocol = Protocol(377);
/// Highest API key taken (Kafka 4 defines keys up to 74).
const MAX_API_KEY: u16 = 90;
/// Highest API version taken.
const MAX_API_VERSION: u16 = 20;
/// Largest message (Kafka's default `socket.request.max.bytes` is 100 MiB).
const MAX_SIZE: u32 = 100 << 20;

/// A segment this long is full: the request may go on in the next one.
const FULL_SEGMENT: usize = 1200;

/// Kafka when the client's first message is a request header (size that
/// holds it and is that of the message, or of more than a full segment, known API key and version, a printable client id) and the
/// server's first message, if any yet, carries its correlation id.
/// Without a client id (null or empty) the response must confirm it.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp || pkt.server_first {
        return Verdict::No;
    }
    let (client, server) = (pkt.client_stream, pkt.server_stream);
    let (correlation, named) = match request(client) {
        Read::Ok(v) => v,
        Read::More => return Verdict::Maybe,
        Read::Bad => return Verdict::No,
    };
    // The whole request, or a full segment of it.
    let size = client
        .get(..4)
        .map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]));
    if client.len() < (size as usize + 4).min(FULL_SEGMENT) {
        return if pkt.seen[0] < 4 {
            Verdict::Maybe
        } else {
            Verdict::No
        };
    }
    let response = server
        .get(..8)
        .map(|r| (u32::from_be_bytes([r[0], r[1], r[2], r[3]]), &r[4..8]));
    match response {
        Some((size, id)) if (4..=MAX_SIZE).contains(&size) && id == correlation => {
            Verdict::Done(KAFKA)
        }
        Some(_) => Verdict::No,
        None if named => Verdict::Done(KAFKA),
        None if server.is_empty() && pkt.seen[0] < 4 => Verdict::Maybe,
        None if !server.is_empty() => Verdict::Maybe,
        None => Verdict::No,
    }
}

/// A read of the request header.
enum Read<T> {
    Bad,
    More,
    Ok(T),
}

/// Reads a request header: its correlation id, and whether it names a
/// client.
fn request(stream: &[u8]) -> Read<([u8; 4], bool)> {
    let Some(h) = stream.get(..14) else {
        return Read::More;
    };
    let size = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let api_key = u16::from_be_bytes([h[4], h[5]]);
    let api_version = u16::from_be_bytes([h[6], h[7]]);
    let id_len = i16::from_be_bytes([h[12], h[13]]);
    let header_ok = (10..=MAX_SIZE).contains(&size)
        && api_key <= MAX_API_KEY
        && api_version <= MAX_API_VERSION
        && id_len >= -1
        && i64::from(id_len) + 10 <= i64::from(size);
    if !header_ok {
        return Read::Bad;
    }
    let correlation = [h[8], h[9], h[10], h[11]];
    if id_len <= 0 {
        return Read::Ok((correlation, false));
    }
    let id_len = id_len as usize;
    let Some(client_id) = stream.get(14..14 + id_len) else {
        let seen = stream.get(14..).unwrap_or_default();
        return if seen.iter().all(u8::is_ascii_graphic) {
            Read::More
        } else {
            Read::Bad
        };
    };
    if client_id.iter().all(|&b| b.is_ascii_graphic() || b == b' ') {
        Read::Ok((correlation, true))
    } else {
        Read::Bad
    }
}

/// [`Dissector::first`]: the client speaks first; a size under 100 MiB.
fn kafka_first(from_client: bool, byte: u8) -> bool {
    from_client && byte <= 0x06
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "kafka",
    protocols: &[KAFKA],
    tcp: true,
    udp: false,
    ports: &[9092],
    ports_only: false,
    first: kafka_first,
    run: dissect,
    samples: &[Sample {
        origin: "synthetic: librdkafka ApiVersions v3 request (the corpus has no Kafka capture)",
        tcp: true,
        server_port: 9092,
        packets: &[(
            true,
            "000000230012000300000001000772646b61666b61000d6c6962726466616b610006322e332e300000",
        )],
        protocol: KAFKA,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// An ApiVersions v3 request from librdkafka (synthetic, after the
    /// protocol guide): api key 18, version 3, correlation 1, client id
    /// `rdkafka`, then the tagged body.
    const API_VERSIONS: &str = "00000023 0012 0003 00000001 0007 72646b61666b61 00 0d6c6962726466616b6100 06322e332e3000 00";
    /// Its response start: size, correlation 1, error 0.
    const RESPONSE: &str = "000001b0 00000001 0000 3c";

    #[test]
    fn request_with_client_id() {
        let f = flow(true, 40000, 9092);
        let (v, meta) = run(dissect, &f, &[(true, &hex(API_VERSIONS))]);
        assert_eq!(v, [Verdict::Done(KAFKA)]);
        assert_eq!(meta, Metadata::default());
        let r = hex(API_VERSIONS);
        let (v, _) = run(dissect, &f, &[(true, &r[..16]), (true, &r[16..])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(KAFKA)]);
        let (v, _) = run(dissect, &f, &[(true, &r), (false, &hex(RESPONSE))]);
        assert_eq!(v, [Verdict::Done(KAFKA), Verdict::Done(KAFKA)]);
    }

    #[test]
    fn null_client_id_needs_the_response() {
        // Metadata v0 request with a null client id, no topics.
        let req = hex("0000000e 0003 0000 0000002a ffff 00000000");
        let f = flow(true, 40000, 9092);
        let (v, _) = run(
            dissect,
            &f,
            &[
                (true, &req),
                (false, &hex("0000000c 0000002a 00000000 00000000")),
            ],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(KAFKA)]);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &req), (false, &hex("0000000c 0000002b 00000000"))],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
    }

    #[test]
    fn not_kafka() {
        let f = flow(true, 40000, 9092);
        for p in [
            crate::dissect::testing::TLS_HELLO_HEAD,
            crate::dissect::testing::HTTP_REQUEST_HEAD,
            // MongoDB OP_QUERY (mongodb.pcap frame 12).
            "3b0000000000000000000000d4070000000000006162746573742e24636d6400",
            // Client id with a control byte.
            "00000023 0012 0003 00000001 0007 72646b01666b61 00",
        ] {
            let (v, _) = run(dissect, &f, &[(true, &hex(p))]);
            assert_eq!(v, [Verdict::No], "{p}");
        }
    }

    #[test]
    fn prefixes_do_not_panic() {
        let r = hex(API_VERSIONS);
        for n in 1..22 {
            let (v, _) = run(dissect, &flow(true, 1, 9092), &[(true, &r[..n])]);
            assert_eq!(v, [Verdict::Maybe], "{n}");
        }
    }
}
