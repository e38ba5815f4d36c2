//! SIP over UDP and TCP. Also the start-line check RTSP shares.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};
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

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "sip",
    protocols: &[Protocol(100)],
    tcp: true,
    udp: true,
    ports: &[5060, 5061],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "sip.pcap frames ,,,",
        tcp: false,
        server_port: 5060,
        packets: &[
            (
                true,
                "5245474953544552207369703a7369702e6379626572636974792e646b205349\
             502f322e300d0a5669613a205349502f322e302f554450203139322e3136382e\
             312e323b6272616e63683d7a39684734624b6e703135313234383733372d3436\
             6561373135653139322e3136382e312e323b72706f72740d0a46726f6d3a203c\
             7369703a766f693138303633407369702e6379626572636974792e646b3e3b74\
             61673d393033646630610d0a546f3a203c7369703a766f693138303633407369\
             702e6379626572636974792e646b3e0d0a43616c6c2d49443a20353738323232\
             3732392d3436363564373735403537383232323733322d34363635643737320d\
             0a436f6e746163743a20203c7369703a766f693138303633403139322e313638\
             2e312e323a353036303b6c696e653d396337643264626438383232303133633e\
             3b657870697265733d313230303b713d302e3530300d0a457870697265733a20\
             313230300d0a435365713a2036382052454749535445520d0a436f6e74656e74\
             2d4c656e6774683a20300d0a4d61782d466f7277617264733a2037300d0a5573\
             65722d4167656e743a204e65726f2053495050532049502050686f6e65205665\
             7273696f6e20322e302e35312e31360d0a0d0a",
            ),
            (
                false,
                "5349502f322e302034303120556e617574686f72697a65640d0a43616c6c2d49\
             443a203537383232323732392d3436363564373735403537383232323733322d\
             34363635643737320d0a435365713a2036382052454749535445520d0a46726f\
             6d3a203c7369703a766f693138303633407369702e6379626572636974792e64\
             6b3e3b7461673d393033646630610d0a546f3a203c7369703a766f6931383036\
             33407369702e6379626572636974792e646b3e3b7461673d30302d3034303932\
             2d31373031616636322d3132306336373137320d0a5669613a205349502f322e\
             302f554450203139322e3136382e312e323b72656365697665643d38302e3233\
             302e3231392e37303b72706f72743d353036303b6272616e63683d7a39684734\
             624b6e703135313234383733372d34366561373135653139322e3136382e312e\
             320d0a5757572d41757468656e7469636174653a20446967657374207265616c\
             6d3d227369702e6379626572636974792e646b222c6e6f6e63653d2231373031\
             616635363662653138323037303038346336663734303730366262222c6f7061\
             7175653d22313730316131333531663730373935222c7374616c653d66616c73\
             652c616c676f726974686d3d4d44350d0a436f6e74656e742d4c656e6774683a\
             20300d0a0d0a",
            ),
            (
                true,
                "5245474953544552207369703a7369702e6379626572636974792e646b205349\
             502f322e300d0a5669613a205349502f322e302f554450203139322e3136382e\
             312e323b6272616e63683d7a39684734624b6e703134393530353137382d3433\
             3863353238623139322e3136382e312e323b72706f72740d0a46726f6d3a203c\
             7369703a766f693138303633407369702e6379626572636974792e646b3e3b74\
             61673d386539343862300d0a546f3a203c7369703a766f693138303633407369\
             702e6379626572636974792e646b3e0d0a43616c6c2d49443a20353738323232\
             3732392d3436363564373735403537383232323733322d34363635643737320d\
             0a436f6e746163743a20203c7369703a766f693138303633403139322e313638\
             2e312e323a353036303b6c696e653d396337643264626438383232303133633e\
             3b657870697265733d313230303b713d302e3530300d0a457870697265733a20\
             313230300d0a435365713a2036392052454749535445520d0a436f6e74656e74\
             2d4c656e6774683a20300d0a417574686f72697a6174696f6e3a204469676573\
             7420757365726e616d653d22766f693138303633222c7265616c6d3d22736970\
             2e6379626572636974792e646b222c7572693d227369703a3139322e3136382e\
             312e32222c6e6f6e63653d223137303161663536366265313832303730303834",
            ),
            (
                false,
                "5349502f322e302031303020547279696e670d0a43616c6c2d49443a20353738\
             3232323732392d3436363564373735403537383232323733322d343636356437\
             37320d0a435365713a2036392052454749535445520d0a46726f6d3a203c7369\
             703a766f693138303633407369702e6379626572636974792e646b3e3b746167\
             3d386539343862300d0a546f3a203c7369703a766f693138303633407369702e\
             6379626572636974792e646b3e0d0a5669613a205349502f322e302f55445020\
             3139322e3136382e312e323b72656365697665643d38302e3233302e3231392e\
             37303b72706f72743d353036303b6272616e63683d7a39684734624b6e703134\
             393530353137382d34333863353238623139322e3136382e312e320d0a436f6e\
             74656e742d4c656e6774683a20300d0a0d0a",
            ),
        ],
        protocol: Protocol(100),
    }],
};

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
