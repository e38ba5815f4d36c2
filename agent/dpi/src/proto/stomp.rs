//! STOMP (1.0 to 1.2) over TCP: the client opens with a `CONNECT` or
//! `STOMP` frame (a command line, header lines `name:value`, an empty
//! line, a NUL), the server answers `CONNECTED` (or `ERROR`).

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};
use crate::proto::mail::{Line, first_line};

/// STOMP.
const STOMP: Protocol = Protocol(390);
/// Headers a CONNECT frame carries.
const CONNECT_HEADERS: [&[u8]; 5] = [
    b"accept-version:",
    b"host:",
    b"login:",
    b"passcode:",
    b"heart-beat:",
];

/// STOMP when the client's first line is `CONNECT` or `STOMP` and either
/// the server's first line is `CONNECTED` or `ERROR`, or the next line is
/// a CONNECT header.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp || pkt.server_first {
        return Verdict::No;
    }
    let client = pkt.client_stream;
    match first_line(client) {
        Line::Full(b"CONNECT" | b"STOMP") => {}
        Line::More
            if client.len() < 8
                && (b"CONNECT".starts_with(client) || b"STOMP".starts_with(client)) =>
        {
            return Verdict::Maybe;
        }
        _ => return Verdict::No,
    }
    match first_line(pkt.server_stream) {
        Line::Full(b"CONNECTED" | b"ERROR") => return Verdict::Done(STOMP),
        Line::Full(_) | Line::Bad => return Verdict::No,
        Line::More => {}
    }
    let end = client
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(client.len());
    let next = client.get(end + 1..).unwrap_or_default();
    match first_line(next) {
        Line::Full(h) if CONNECT_HEADERS.iter().any(|p| h.starts_with(p)) => Verdict::Done(STOMP),
        Line::More => Verdict::Maybe,
        _ => Verdict::No,
    }
}

/// [`Dissector::first`]: the client opens with `CONNECT` or `STOMP`.
fn stomp_first(from_client: bool, byte: u8) -> bool {
    from_client && (byte == b'C' || byte == b'S')
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "stomp",
    protocols: &[STOMP],
    tcp: true,
    udp: false,
    ports: &[61613],
    ports_only: false,
    first: stomp_first,
    run: dissect,
    samples: &[Sample {
        origin: "stomp.pcapng frame 4 (STOMP frame)",
        tcp: true,
        server_port: 61613,
        packets: &[(
            true,
            "53544f4d500a6163636570742d76657273696f6e3a312e310a0a00",
        )],
        protocol: STOMP,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    #[test]
    fn connect_frame() {
        // stomp.pcapng frame 4.
        let f = flow(true, 34732, 61613);
        let connect = hex("53544f4d500a6163636570742d76657273696f6e3a312e310a0a00");
        let (v, meta) = run(dissect, &f, &[(true, &connect)]);
        assert_eq!(v, [Verdict::Done(STOMP)]);
        assert_eq!(meta, Metadata::default());
        let (v, _) = run(
            dissect,
            &f,
            &[
                (true, b"CONNECT\n"),
                (false, b"CONNECTED\nversion:1.0\n\n\0"),
            ],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(STOMP)]);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, b"CONN"), (true, b"ECT\r\nlogin:a\r\n")],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(STOMP)]);
    }

    #[test]
    fn not_stomp() {
        let f = flow(true, 40000, 61613);
        for p in [
            &b"CONNECT example.com:443 HTTP/1.1\r\n"[..],
            b"SEND\n",
            b"CONNECT\nfoo:bar\n",
        ] {
            let (v, _) = run(dissect, &f, &[(true, p)]);
            assert_eq!(v, [Verdict::No], "{p:?}");
        }
    }
}
