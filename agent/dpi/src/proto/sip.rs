//! SIP over UDP and TCP. Also the start-line check RTSP shares.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Packet, Scratch, Verdict};
use crate::proto::mail::{first_line, starts_ci};

/// SIP.
const SIP: Protocol = Protocol(100);

/// Request methods (RFC 3261 and extensions).
const METHODS: &[&str] = &[
    "INVITE",
    "REGISTER",
    "OPTIONS",
    "ACK",
    "BYE",
    "CANCEL",
    "SUBSCRIBE",
    "NOTIFY",
    "MESSAGE",
    "INFO",
    "PRACK",
    "UPDATE",
    "REFER",
    "PUBLISH",
];

/// SIP (`Protocol(100)`): a request line `METHOD sip:... SIP/2.0` (also
/// `sips:` and `tel:` URIs) or a status line `SIP/2.0 NNN`, starting a
/// UDP payload or a TCP stream. `Done` at once (nothing else is read).
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let uri_ok = |uri: &[u8]| {
        [&b"sip:"[..], b"sips:", b"tel:"]
            .iter()
            .any(|s| starts_ci(uri, s))
    };
    start_verdict(pkt, SIP, |line| {
        start_line(line, METHODS, uri_ok, &[b"SIP/2.0"])
    })
}

/// The verdict of a text protocol whose messages start with a line that
/// `check` accepts: at the start of a UDP payload (CR LF keep-alives are
/// waited over), or of either TCP stream.
pub(crate) fn start_verdict(
    pkt: &Packet<'_>,
    protocol: Protocol,
    check: impl Fn(&[u8]) -> bool,
) -> Verdict {
    if !pkt.tcp {
        if pkt.payload.iter().all(|&b| b == b'\r' || b == b'\n') {
            return Verdict::Maybe;
        }
        return match first_line(pkt.payload).check(&check) {
            Some(true) => Verdict::Done(protocol),
            _ => Verdict::No,
        };
    }
    match [pkt.client_stream, pkt.server_stream].map(|s| first_line(s).check(&check)) {
        [Some(true), _] | [_, Some(true)] => Verdict::Done(protocol),
        [Some(false), Some(false)] => Verdict::No,
        _ => Verdict::Maybe,
    }
}

/// True when `line` is a request line `METHOD uri VERSION` with one of
/// `methods` and a URI `uri_ok` accepts, or a status line `VERSION NNN
/// [reason]`, `VERSION` one of `versions`.
pub(crate) fn start_line(
    line: &[u8],
    methods: &[&str],
    uri_ok: impl Fn(&[u8]) -> bool,
    versions: &[&[u8]],
) -> bool {
    let mut parts = line.splitn(3, |&b| b == b' ');
    let (Some(first), Some(second)) = (parts.next(), parts.next()) else {
        return false;
    };
    if versions.contains(&first) {
        return matches!(second, [b'1'..=b'6', b'0'..=b'9', b'0'..=b'9']);
    }
    methods.iter().any(|m| first == m.as_bytes())
        && uri_ok(second)
        && parts.next().is_some_and(|v| versions.contains(&v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// sip.pcap frame 1 (headers cut after the first lines).
    const REGISTER: &[u8] = b"REGISTER sip:sip.cybercity.dk SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.168.1.2;branch=z9hG4bKnp151248737-46ea715e192.168.1.2;rport\r\n\
        From: <sip:voi18063@sip.cybercity.dk>;tag=903df0a\r\n";
    /// sip.pcap frame 2 (first lines).
    const UNAUTHORIZED: &[u8] = b"SIP/2.0 401 Unauthorized\r\n\
        Call-ID: 578222729-4665d775@578222732-4665d772\r\nCSeq: 68 REGISTER\r\n";

    #[test]
    fn request_and_response_over_udp() {
        let f = flow(false, 5060, 5060);
        let (v, meta) = run(dissect, &f, &[(true, REGISTER)]);
        assert_eq!(v, [Verdict::Done(SIP)]);
        assert_eq!(meta, Metadata::default());
        let (v, _) = run(dissect, &f, &[(false, UNAUTHORIZED)]);
        assert_eq!(v, [Verdict::Done(SIP)]);
        let (v, _) = run(dissect, &f, &[(true, b"\r\n\r\n"), (true, REGISTER)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(SIP)]);
    }

    #[test]
    fn request_split_over_tcp() {
        // sip.pcap frame 1's bytes sent over TCP in two segments (synthetic:
        // the corpus has no SIP over TCP).
        let f = flow(true, 40000, 5060);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &REGISTER[..10]), (true, &REGISTER[10..])],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(SIP)]);
    }

    #[test]
    fn not_other_protocols() {
        let udp = flow(false, 40000, 5060);
        // A DNS query (dns.pcap frame 2), an RTP packet's start (sip.pcap
        // frame 95).
        let query = hex(crate::dissect::testing::DNS_QUERY);
        let (v, _) = run(dissect, &udp, &[(true, &query)]);
        assert_eq!(v, [Verdict::No]);
        let rtp = hex("80086fae000004d83796cb71d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d");
        let (v, _) = run(dissect, &udp, &[(true, &rtp)]);
        assert_eq!(v, [Verdict::No]);
        // HTTP and RTSP requests (synthetic) over TCP.
        let tcp = flow(true, 40000, 80);
        for req in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            b"OPTIONS rtsp://a/ RTSP/1.0\r\n",
        ] {
            let (v, _) = run(
                dissect,
                &tcp,
                &[(true, req), (false, b"HTTP/1.1 200 OK\r\n")],
            );
            assert_eq!(v[1], Verdict::No);
        }
        assert!(!start_line(
            b"SIP/2.0 999x",
            METHODS,
            |_| true,
            &[b"SIP/2.0"]
        ));
    }

    #[test]
    fn prefixes_do_not_panic() {
        for n in 0..=REGISTER.len() {
            let _ = run(dissect, &flow(false, 5060, 5060), &[(true, &REGISTER[..n])]);
            let (v, _) = run(dissect, &flow(true, 1, 5060), &[(true, &REGISTER[..n])]);
            assert_ne!(v, [Verdict::No]);
        }
    }
}
