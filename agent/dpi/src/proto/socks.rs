//! SOCKS 4/4a (no RFC; the NEC/OpenSSH text) and SOCKS 5 (RFC 1928), over
//! TCP: nDPI 172 "SOCKS".
//!
//! The client speaks first. SOCKS 4: `04`, command 1 (connect) or 2
//! (bind), port, IPv4 address, a NUL-terminated user id (SOCKS 4a: then
//! a NUL-terminated host name, the address being `0.0.0.x`, x not 0);
//! the server answers 8 bytes: `00`, status 0x5a..=0x5d, port, address.
//! SOCKS 5: `05`, N, then N method bytes; the server answers `05` and one
//! of the offered methods, or `FF` (none acceptable). Both directions
//! must agree: the client's message alone is too short to tell.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};
use crate::proto::tls;

/// nDPI's SOCKS.
const SOCKS: Protocol = Protocol(172);
/// Longest SOCKS 4 user id (and 4a host name) read.
const MAX_FIELD: usize = 255;
/// Client packets to wait for the server's answer.
const MAX_WAIT: u32 = 4;
/// Packets with payload within which TLS through the tunnel starts, if
/// it does: SOCKS 5's greeting, choice, authentication, request and
/// their answers come first.
const TLS_WAIT: u32 = 10;

/// What a direction's bytes tell so far.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Read {
    /// Could still be SOCKS.
    More,
    /// Not SOCKS.
    Bad,
    /// A whole message.
    Ok,
}

/// Found when the client's greeting and the server's answer agree; then
/// TLS through the tunnel is read, if it comes.
pub(crate) fn dissect(pkt: &Packet<'_>, scratch: &mut Scratch, meta: &mut Metadata) -> Verdict {
    if !pkt.tcp || pkt.server_first {
        return Verdict::No;
    }
    let (client, server) = (pkt.client_stream, pkt.server_stream);
    let (request, reply) = match client.first() {
        Some(4) => (socks4_request(client), socks4_reply(server)),
        Some(5) => (socks5_greeting(client), socks5_reply(client, server)),
        Some(_) => return Verdict::No,
        None => return Verdict::Maybe,
    };
    match (request, reply) {
        (Read::Bad, _) | (_, Read::Bad) => Verdict::No,
        (Read::Ok, Read::Ok) => tls::inside(pkt, scratch, meta, SOCKS, TLS_WAIT),
        // The server answers before the request is whole: not SOCKS.
        (Read::More, Read::Ok) => Verdict::No,
        _ if pkt.seen[0] >= MAX_WAIT => Verdict::No,
        _ => Verdict::Maybe,
    }
}

/// A SOCKS 4/4a request at the start of the client stream.
fn socks4_request(stream: &[u8]) -> Read {
    let Some(&[_, cmd, _, _, a, b, c, d]) = stream.first_chunk::<8>() else {
        return if stream.get(1).is_none_or(|&cmd| cmd == 1 || cmd == 2) {
            Read::More
        } else {
            Read::Bad
        };
    };
    if cmd != 1 && cmd != 2 {
        return Read::Bad;
    }
    let socks4a = [a, b, c] == [0, 0, 0];
    if socks4a && d == 0 {
        return Read::Bad;
    }
    let rest = &stream[8..];
    let (user, rest) = match nul_terminated(rest) {
        Some(Ok(split)) => split,
        Some(Err(())) => return Read::Bad,
        None => return Read::More,
    };
    if !user.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        return Read::Bad;
    }
    if !socks4a {
        return if rest.is_empty() { Read::Ok } else { Read::Bad };
    }
    match nul_terminated(rest) {
        Some(Ok((host, after))) if !host.is_empty() && after.is_empty() => {
            if host
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(b))
            {
                Read::Ok
            } else {
                Read::Bad
            }
        }
        None => Read::More,
        _ => Read::Bad,
    }
}

/// A field and what follows it.
type Split<'a> = (&'a [u8], &'a [u8]);

/// Splits at the first NUL: `None` when there is none yet (and the field
/// is not too long), `Err` when it is too long.
fn nul_terminated(bytes: &[u8]) -> Option<Result<Split<'_>, ()>> {
    match bytes.iter().take(MAX_FIELD + 1).position(|&b| b == 0) {
        Some(end) => Some(Ok((&bytes[..end], &bytes[end + 1..]))),
        None if bytes.len() > MAX_FIELD => Some(Err(())),
        None => None,
    }
}

/// A SOCKS 4 reply at the start of the server stream.
fn socks4_reply(stream: &[u8]) -> Read {
    match stream {
        [] => Read::More,
        [0] => Read::More,
        [0, 0x5a..=0x5d, rest @ ..] if rest.len() < 6 => Read::More,
        [0, 0x5a..=0x5d, ..] => Read::Ok,
        _ => Read::Bad,
    }
}

/// A SOCKS 5 method selection message at the start of the client stream.
fn socks5_greeting(stream: &[u8]) -> Read {
    let Some(&n) = stream.get(1) else {
        return Read::More;
    };
    let n = usize::from(n);
    if n == 0 || n > 16 {
        return Read::Bad;
    }
    let Some(methods) = stream.get(2..2 + n) else {
        return Read::More;
    };
    // Methods: 0 no auth, 1 GSSAPI, 2 user/password, 3..=9 IANA, 0x80..=0xfe
    // private; 0xff is the server's "none".
    let known = |m: &u8| *m <= 9 || (0x80..=0xfe).contains(m);
    if !methods.iter().all(known) {
        return Read::Bad;
    }
    // After the greeting: the request of a pipelining client (`05`) or
    // a username/password sub-negotiation (`01`).
    match stream.get(2 + n) {
        None | Some(1 | 5) => Read::Ok,
        Some(_) => Read::Bad,
    }
}

/// The server's method selection, which must be one the client offered.
fn socks5_reply(client: &[u8], server: &[u8]) -> Read {
    let offered = client
        .get(1)
        .and_then(|&n| client.get(2..2 + usize::from(n)))
        .unwrap_or_default();
    match server {
        [] | [5] => Read::More,
        [5, 0xff, ..] => Read::Ok,
        [5, method, ..] if offered.contains(method) => Read::Ok,
        [5, _, ..] if offered.is_empty() => Read::More,
        _ => Read::Bad,
    }
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "socks",
    protocols: &[SOCKS],
    tcp: true,
    udp: false,
    ports: &[1080],
    ports_only: false,
    first: |from_client, byte| from_client && (byte == 4 || byte == 5),
    run: dissect,
    samples: &[
        Sample {
            origin: "synthetic (no capture): curl --socks5 to Dante",
            tcp: true,
            server_port: 1080,
            packets: &[(true, "05020001"), (false, "0500")],
            protocol: SOCKS,
        },
        Sample {
            origin: "synthetic (no capture): curl --socks4a to Dante",
            tcp: true,
            server_port: 1080,
            packets: &[
                (true, "040101bb00000001006578616d706c652e636f6d00"),
                (false, "005a000000000000"),
            ],
            protocol: SOCKS,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{DNS_QUERY, HTTP_REQUEST_HEAD, TLS_HELLO_HEAD, flow, hex, run};

    // Synthetic: the corpus has no SOCKS capture. Messages as curl sends
    // them (`--socks5`, `--socks4`, `--socks4a`) and Dante answers.
    const GREETING: &[u8] = &[5, 2, 0, 1];
    const CHOSEN: &[u8] = &[5, 0];
    /// CONNECT example.com:443 by name.
    const CONNECT: &[u8] = b"\x05\x01\x00\x03\x0bexample.com\x01\xbb";

    #[test]
    fn socks5_greeting_and_choice() {
        let f = flow(true, 40000, 1080);
        let (v, meta) = run(dissect, &f, &[(true, GREETING), (false, CHOSEN)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Found(SOCKS)]);
        assert_eq!(meta, Metadata::default());
        // One method, no authentication (what nDPI knows), and a server
        // refusing every method.
        let (v, _) = run(dissect, &f, &[(true, &[5, 1, 0]), (false, &[5, 0xff])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Found(SOCKS)]);
        // Greeting and request in one segment (Tor Browser does).
        let both = [GREETING, CONNECT].concat();
        let (v, _) = run(dissect, &f, &[(true, &both), (false, CHOSEN)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Found(SOCKS)]);
        // The greeting split over two segments.
        let (v, _) = run(
            dissect,
            &f,
            &[
                (true, &GREETING[..1]),
                (true, &GREETING[1..]),
                (false, CHOSEN),
            ],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Maybe, Verdict::Found(SOCKS)]);
    }

    #[test]
    fn tls_through_the_tunnel() {
        // Then the request, its answer and a ClientHello (tls_alert.pcap
        // frame 4); without TLS, detection ends after TLS_WAIT packets.
        let f = flow(true, 40000, 1080);
        let hello = hex(include_str!("tls/testdata/tls_alert-4.hex"));
        let reply = b"\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38";
        let (v, meta) = run(
            dissect,
            &f,
            &[
                (true, GREETING),
                (false, CHOSEN),
                (true, CONNECT),
                (false, reply),
                (true, &hello),
            ],
        );
        assert_eq!(v[1..], [Verdict::Found(SOCKS); 4]);
        assert_eq!(meta.host_server_name, "www.google-analytics.com");
        let mut packets = vec![
            (true, GREETING),
            (false, CHOSEN),
            (true, CONNECT),
            (false, reply),
        ];
        packets.resize(TLS_WAIT as usize, (true, b"GET / HTTP/1.1\r\n"));
        let (v, _) = run(dissect, &f, &packets);
        assert_eq!(v.last(), Some(&Verdict::Done(SOCKS)));
    }

    #[test]
    fn socks5_method_not_offered() {
        let f = flow(true, 40000, 1080);
        let (v, _) = run(dissect, &f, &[(true, &[5, 1, 0]), (false, &[5, 2])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
        let (v, _) = run(dissect, &f, &[(true, &[5, 0])]);
        assert_eq!(v, [Verdict::No]);
        let (v, _) = run(dissect, &f, &[(true, &[5, 1, 0x30])]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn socks4_and_4a() {
        let f = flow(true, 40000, 1080);
        let reply = [0, 0x5a, 0, 0, 0, 0, 0, 0];
        // CONNECT 93.184.216.34:80, user "curl".
        let req = b"\x04\x01\x00\x50\x5d\xb8\xd8\x22curl\x00";
        let (v, _) = run(dissect, &f, &[(true, req), (false, &reply)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Found(SOCKS)]);
        // SOCKS 4a: address 0.0.0.1, then the host name; empty user id.
        let req = b"\x04\x01\x01\xbb\x00\x00\x00\x01\x00example.com\x00";
        let (v, _) = run(dissect, &f, &[(true, req), (false, &reply)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Found(SOCKS)]);
        // Rejected (0x5b) is SOCKS too.
        let (v, _) = run(
            dissect,
            &f,
            &[(true, req), (false, &[0, 0x5b, 0, 0, 0, 0, 0, 0])],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Found(SOCKS)]);
        // A reply of another status is not.
        let (v, _) = run(dissect, &f, &[(true, req), (false, &[0, 0x20, 0, 0])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
        // Address 0.0.0.0 is not a SOCKS 4a marker.
        let (v, _) = run(
            dissect,
            &f,
            &[(true, b"\x04\x01\x00\x50\x00\x00\x00\x00x\x00")],
        );
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(true, 40000, 1080);
        for p in [hex(TLS_HELLO_HEAD), hex(HTTP_REQUEST_HEAD), hex(DNS_QUERY)] {
            let (v, _) = run(dissect, &f, &[(true, &p)]);
            assert_eq!(v, [Verdict::No]);
        }
        // A server speaking first (e.g. an SSH banner).
        let (v, _) = run(dissect, &f, &[(false, b"\x05\x00")]);
        assert_eq!(v, [Verdict::No]);
        // Binary junk starting with 4 or 5.
        let (v, _) = run(dissect, &f, &[(true, &[4, 7, 1, 2, 3, 4, 5, 6, 0])]);
        assert_eq!(v, [Verdict::No]);
        let (v, _) = run(dissect, &f, &[(true, &[5, 1, 0, 0x17, 3, 3])]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn prefixes_do_not_panic() {
        let f = flow(true, 40000, 1080);
        let req = b"\x04\x01\x01\xbb\x00\x00\x00\x01\x00example.com\x00";
        for msg in [&req[..], &[GREETING, CONNECT].concat()] {
            for n in 0..=msg.len() {
                let (v, _) = run(dissect, &f, &[(true, &msg[..n]), (false, &msg[..n])]);
                assert!(!v.contains(&Verdict::Found(SOCKS)) || n > 2, "{n}");
            }
        }
    }
}
