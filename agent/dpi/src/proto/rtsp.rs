//! RTSP over TCP.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};
use crate::proto::mail::starts_ci;
use crate::proto::sip::{start_line, start_verdict};

/// RTSP.
const RTSP: Protocol = Protocol(50);

/// Request methods (RFC 2326, RFC 7826).
const METHODS: &[&str] = &[
    "OPTIONS",
    "DESCRIBE",
    "SETUP",
    "PLAY",
    "PAUSE",
    "TEARDOWN",
    "GET_PARAMETER",
    "SET_PARAMETER",
    "ANNOUNCE",
    "RECORD",
    "REDIRECT",
    "PLAY_NOTIFY",
];

/// RTSP (`Protocol(50)`): a request line `METHOD rtsp://... RTSP/1.0`
/// (or `*`, `rtsps://`, `rtspu://`; version 1.0 or 2.0) or a status line
/// `RTSP/1.0 NNN` starting either stream. `Done` at once.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return Verdict::No;
    }
    let uri_ok = |uri: &[u8]| {
        uri == b"*"
            || [&b"rtsp://"[..], b"rtsps://", b"rtspu://"]
                .iter()
                .any(|s| starts_ci(uri, s))
    };
    start_verdict(pkt, RTSP, |line| {
        start_line(line, METHODS, uri_ok, &[b"RTSP/1.0", b"RTSP/2.0"])
    })
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "rtsp",
    protocols: &[Protocol(50)],
    tcp: true,
    udp: false,
    ports: &[554],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "built: an OPTIONS request and its reply",
        tcp: true,
        server_port: 554,
        packets: &[
            (
                true,
                "4f5054494f4e5320727473703a2f2f3139322e302e322e31303a3535342f7374\
             7265616d3120525453502f312e300d0a435365713a20310d0a0d0a",
            ),
            (
                false,
                "525453502f312e3020323030204f4b0d0a435365713a20310d0a5075626c6963\
             3a2044455343524942452c2053455455502c20504c41590d0a0d0a",
            ),
        ],
        protocol: Protocol(50),
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    // Synthetic messages (RFC 2326 examples): the corpus has no RTSP.
    const OPTIONS: &[u8] = b"OPTIONS rtsp://192.168.1.10:554/stream1 RTSP/1.0\r\nCSeq: 1\r\n\
        User-Agent: LibVLC/3.0.18 (LIVE555 Streaming Media v2016.11.28)\r\n\r\n";
    const REPLY: &[u8] = b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\
        Public: OPTIONS, DESCRIBE, SETUP, TEARDOWN, PLAY, PAUSE\r\n\r\n";

    #[test]
    fn request_or_response() {
        let f = flow(true, 40000, 554);
        let (v, meta) = run(dissect, &f, &[(true, OPTIONS)]);
        assert_eq!(v, [Verdict::Done(RTSP)]);
        assert_eq!(meta, Metadata::default());
        let (v, _) = run(dissect, &f, &[(false, REPLY)]);
        assert_eq!(v, [Verdict::Done(RTSP)]);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &OPTIONS[..20]), (true, &OPTIONS[20..])],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(RTSP)]);
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(true, 40000, 554);
        // HTTP (synthetic, `OPTIONS *` as RTSP could send it), SIP
        // (sip.pcap frame 1's first line), a TLS ClientHello (rdp.pcap frame 7).
        for req in [
            b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            b"REGISTER sip:sip.cybercity.dk SIP/2.0\r\n".to_vec(),
            hex("16030100a8010000a403035cef9e29f7"),
        ] {
            let (v, _) = run(
                dissect,
                &f,
                &[(true, &req), (false, b"HTTP/1.1 200 OK\r\n")],
            );
            assert_eq!(v[1], Verdict::No);
        }
        let (v, _) = run(dissect, &flow(false, 1, 554), &[(true, OPTIONS)]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn prefixes_do_not_panic() {
        for n in 0..=REPLY.len() {
            let (v, _) = run(dissect, &flow(true, 1, 554), &[(false, &REPLY[..n])]);
            assert_ne!(v, [Verdict::No]);
        }
    }
}
