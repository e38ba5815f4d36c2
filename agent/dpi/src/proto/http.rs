//! HTTP/1.x (nDPI 7 "HTTP"; a proxy's `CONNECT` 130 "HTTP_Connect", a
//! request with an absolute target 131 "HTTP_Proxy", an OCSP request 63
//! "OCSP") and HTTP/2 with prior knowledge (349 "HTTP2").
//!
//! HTTP/1.x: the client stream's request line (a known method, the
//! target, `HTTP/1.x`) and headers until the blank line: `Host` (without
//! its port), the target and `User-Agent`. A response status line
//! (`HTTP/1.x NNN`) first in the server stream, when the capture missed
//! the request, is HTTP too. HTTP/2: the client connection preface. Its
//! `:authority` is not read: clients send it Huffman-coded in HPACK
//! (http2.pcapng does), and a Huffman decoder is more than it is worth.
//! After a `CONNECT`, TLS through the tunnel fills the `ssl` object (the
//! flow stays HTTP_Connect).

use flowstat_core::{Http, Metadata, Protocol, wire_text};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};
use crate::proto::tls;
use crate::stream::STREAM_MAX;

/// nDPI's HTTP.
const HTTP: Protocol = Protocol(7);
/// nDPI's HTTP_Connect: a `CONNECT` request to a proxy.
const HTTP_CONNECT: Protocol = Protocol(130);
/// nDPI's HTTP_Proxy: a request with an absolute target, to a proxy.
const HTTP_PROXY: Protocol = Protocol(131);
/// nDPI's OCSP (over HTTP).
const OCSP: Protocol = Protocol(63);
/// nDPI's HTTP2.
const HTTP2: Protocol = Protocol(349);
/// The HTTP/2 client connection preface (RFC 9113 3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Request methods: RFC 9110's and WebDAV's.
const METHODS: &[&[u8]] = &[
    b"GET",
    b"POST",
    b"HEAD",
    b"PUT",
    b"DELETE",
    b"OPTIONS",
    b"CONNECT",
    b"TRACE",
    b"PATCH",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
    b"REPORT",
    b"SEARCH",
];
/// Longest text kept from a header or the target.
const MAX_TEXT: usize = 256;
/// Server packets, after a response seen first, to wait for a request.
const RESPONSE_WAIT: u32 = 4;

/// Packets with payload within which TLS through a `CONNECT` tunnel
/// starts, if it does: the request and the proxy's answer come first.
const TUNNEL_WAIT: u32 = 6;

/// Per-flow state.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct State {
    /// The flow was claimed.
    found: bool,
    /// A response came first: HTTP, whatever the client sends next.
    response_first: bool,
    /// A whole `CONNECT` request: what follows goes through the tunnel.
    tunnel: bool,
}

/// How far a message has been read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Read {
    /// Well-formed so far; more bytes are needed.
    Partial,
    /// The request line was read; its headers are not all there.
    Line,
    /// The request line and headers were read.
    Complete,
    /// Not HTTP.
    Invalid,
}

/// Reads the first request (or a response seen first); after a
/// `CONNECT`, TLS through the tunnel, if it comes.
pub(crate) fn dissect(pkt: &Packet<'_>, scratch: &mut Scratch, meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return Verdict::No;
    }
    if scratch.http.tunnel {
        return tls::inside(pkt, scratch, meta, HTTP_CONNECT, TUNNEL_WAIT);
    }
    let st = &mut scratch.http;
    if !pkt.from_client {
        return match status_line(pkt.server_stream) {
            _ if st.response_first && pkt.seen_here() >= RESPONSE_WAIT => Verdict::Done(HTTP),
            _ if st.found => Verdict::Found(flavour(pkt.client_stream)),
            // The request is (being) read from the client stream.
            _ if !pkt.client_stream.is_empty() => Verdict::Maybe,
            Read::Complete => {
                (st.found, st.response_first) = (true, true);
                Verdict::Found(HTTP)
            }
            Read::Partial => Verdict::Maybe,
            _ => Verdict::No,
        };
    }
    let stream = pkt.client_stream;
    if PREFACE.starts_with(&stream[..stream.len().min(PREFACE.len())]) {
        return if stream.len() >= PREFACE.len() {
            Verdict::Done(HTTP2)
        } else {
            Verdict::Maybe
        };
    }
    match request(stream, meta) {
        Read::Complete if flavour(stream) == HTTP_CONNECT => {
            st.tunnel = true;
            tls::inside(pkt, scratch, meta, HTTP_CONNECT, TUNNEL_WAIT)
        }
        Read::Complete => Verdict::Done(flavour(stream)),
        // The stream is full: these are all the headers we will see.
        Read::Line if stream.len() >= STREAM_MAX => Verdict::Done(flavour(stream)),
        Read::Line => {
            st.found = true;
            Verdict::Found(flavour(stream))
        }
        Read::Partial if st.found => Verdict::Found(flavour(stream)),
        Read::Partial => Verdict::Maybe,
        // After a response seen first: the claim stands.
        Read::Invalid => Verdict::No,
    }
}

/// What a request (at the start of `stream`) makes of HTTP, as nDPI
/// names it: `CONNECT` asks a proxy for a tunnel (HTTP_Connect), an
/// absolute target asks a proxy for a resource (HTTP_Proxy), and a body
/// of type `application/ocsp-request` is OCSP.
fn flavour(stream: &[u8]) -> Protocol {
    if stream.starts_with(b"CONNECT ") {
        return HTTP_CONNECT;
    }
    let mut lines = stream.split(|&b| b == b'\n').map(trim_cr);
    let target = lines
        .next()
        .and_then(|line| line.split(|&b| b == b' ').nth(1))
        .unwrap_or_default();
    if target.len() > 7 && target[..7].eq_ignore_ascii_case(b"http://") {
        return HTTP_PROXY;
    }
    let ocsp = lines.take_while(|line| !line.is_empty()).any(|line| {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return false;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        name.eq_ignore_ascii_case(b"content-type")
            && value.len() >= 17
            && value[..17].eq_ignore_ascii_case(b"application/ocsp-")
    });
    if ocsp { OCSP } else { HTTP }
}

/// Reads the request at the start of `stream`: its line and the headers
/// whose lines are whole.
fn request(stream: &[u8], meta: &mut Metadata) -> Read {
    let Some(end) = stream.iter().position(|&b| b == b'\n') else {
        return if request_prefix(stream) {
            Read::Partial
        } else {
            Read::Invalid
        };
    };
    let line = trim_cr(&stream[..end]);
    let mut parts = line.splitn(3, |&b| b == b' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Read::Invalid;
    };
    if !METHODS.contains(&method) || !version_ok(version) || !token_ok(target) {
        return Read::Invalid;
    }
    let http = meta.http.get_or_insert_with(Box::default);
    http.url = wire_text(target, MAX_TEXT);
    let mut rest = &stream[end + 1..];
    while let Some(end) = rest.iter().position(|&b| b == b'\n') {
        let line = trim_cr(&rest[..end]);
        if line.is_empty() {
            return Read::Complete;
        }
        header(line, http, &mut meta.host_server_name);
        rest = &rest[end + 1..];
    }
    Read::Line
}

/// Reads one header line into `http` and `host`.
fn header(line: &[u8], http: &mut Http, host: &mut String) {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return;
    };
    let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
    if name.eq_ignore_ascii_case(b"host") {
        *host = wire_text(strip_port(value), MAX_TEXT);
    } else if name.eq_ignore_ascii_case(b"user-agent") {
        http.user_agent = wire_text(value, MAX_TEXT);
    }
}

/// `host[:port]` without the port (an IPv6 literal keeps its brackets).
fn strip_port(host: &[u8]) -> &[u8] {
    if host.first() == Some(&b'[') {
        return match host.iter().position(|&b| b == b']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.iter().rposition(|&b| b == b':') {
        Some(colon) if host[colon + 1..].iter().all(u8::is_ascii_digit) => &host[..colon],
        _ => host,
    }
}

/// True when `partial` (no line end yet) can still become a request line.
fn request_prefix(partial: &[u8]) -> bool {
    let mut parts = partial.splitn(3, |&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    let Some(target) = parts.next() else {
        return METHODS.iter().any(|m| m.starts_with(method));
    };
    let version_prefix = match parts.next() {
        None => target.is_empty() || token_ok(target),
        Some(v) => token_ok(target) && (b"HTTP/1.".starts_with(v) || version_ok(trim_cr(v))),
    };
    METHODS.contains(&method) && version_prefix
}

/// Reads a status line `HTTP/1.x NNN ...` at the start of `stream`.
fn status_line(stream: &[u8]) -> Read {
    let head = &stream[..stream.len().min(12)];
    let template = b"HTTP/1.x NNN";
    let fits = head.iter().zip(template).all(|(&b, &t)| match t {
        b'x' => b == b'0' || b == b'1',
        b'N' => b.is_ascii_digit(),
        _ => b == t,
    });
    match (fits, head.len() == template.len()) {
        (true, true) => Read::Complete,
        (true, false) => Read::Partial,
        (false, _) => Read::Invalid,
    }
}

/// True for `HTTP/1.0` and `HTTP/1.1`.
fn version_ok(version: &[u8]) -> bool {
    version == b"HTTP/1.1" || version == b"HTTP/1.0"
}

/// True for a non-empty request target without spaces or control bytes.
fn token_ok(target: &[u8]) -> bool {
    !target.is_empty() && target.iter().all(|&b| b > b' ' && b != 0x7f)
}

/// `line` without a trailing CR.
fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "http",
    protocols: &[HTTP, HTTP2, HTTP_CONNECT, HTTP_PROXY, OCSP],
    tcp: true,
    udp: false,
    ports: &[80, 3128, 8080],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[
        Sample {
            origin: "built: a GET and its reply",
            tcp: true,
            server_port: 8081,
            packets: &[
                (
                    true,
                    "474554202f696e6465782e68746d6c20485454502f312e310d0a486f73743a20\
             7777772e6578616d706c652e636f6d0d0a557365722d4167656e743a20637572\
             6c2f382e352e300d0a4163636570743a202a2f2a0d0a0d0a",
                ),
                (
                    false,
                    "485454502f312e3120323030204f4b0d0a436f6e74656e742d547970653a2074\
             6578742f68746d6c0d0a436f6e74656e742d4c656e6774683a20350d0a0d0a68\
             656c6c6f",
                ),
            ],
            protocol: Protocol(7),
        },
        Sample {
            origin: "http2.pcapng frames 1,2,3,4",
            tcp: true,
            server_port: 29518,
            packets: &[
                (
                    true,
                    "505249202a20485454502f322e300d0a0d0a534d0d0a0d0a0000120400000000\
             00000200000000000400400000000600a0000000000408000000000040000000",
                ),
                (
                    true,
                    "00005d010400000003418b089d5c0b8170dc13ed85ef83459362a1d32ac43d34\
             b1dc2c22d8d04b0d5a4c7a91865f8b1d75d0620d263d4c7441ea538b1d75d062\
             0d263d4c7441ea7a93d5596a875e45b116a2d8349ec602b81703131f5c033133\
             3550839bd9ab",
                ),
                (
                    true,
                    "0000870001000000037b22616d66537461747573557269223a22687474703a2f\
             2f3132372e302e302e313a32393530372f6e7063662d63616c6c6261636b2f76\
             312f616d66737461747573222c226775616d694c697374223a5b7b22706c6d6e\
             4964223a7b226d6363223a22323038222c226d6e63223a223933227d2c22616d\
             664964223a22636166653030227d5d7d",
                ),
                (
                    false,
                    "0000180400000000000005001000000003000000fa0006001001400004001000\
             00",
                ),
            ],
            protocol: Protocol(349),
        },
    ],
};

#[cfg(test)]
#[path = "http/tests.rs"]
mod tests;
