//! Tests on real payloads from tests/fixtures/ndpi (files under
//! `testdata/` are named `<capture>-<frame>.hex`).

use super::*;
use crate::dissect::Verdict::{Done, Found, Maybe, No};
use crate::dissect::testing::{flow, hex, run};

/// A payload from `testdata/`.
macro_rules! capture {
    ($name:literal) => {
        hex(include_str!(concat!("testdata/", $name, ".hex")))
    };
}

/// 6in4tunnel.pcap frame 85: wget's request.
const WGET: &str = "474554202f20485454502f312e310d0a557365722d4167656e743a20576765742f312e31362e3320286c696e75782d67
    6e75290d0a4163636570743a202a2f2a0d0a4163636570742d456e636f64696e673a206964656e746974790d0a486f73
    743a206d61696c2e746f6d6173752e6e65740d0a436f6e6e656374696f6e3a204b6565702d416c6976650d0a0d0a";

/// 6in4tunnel.pcap frame 88: the start of the server's response.
const RESPONSE: &str = "485454502f312e3120333031204d6f766564205065726d616e656e746c790d0a446174653a205765642c203037204f63
    7420323031352031363a3535";

fn http(meta: &Metadata) -> &Http {
    meta.http.as_deref().unwrap()
}

#[test]
fn request_in_one_segment() {
    let f = flow(true, 41538, 80);
    let (verdicts, meta) = run(dissect, &f, &[(true, &hex(WGET))]);
    assert_eq!(verdicts, [Done(HTTP)]);
    assert_eq!(meta.host_server_name, "mail.tomasu.net");
    assert_eq!(http(&meta).url, "/");
    assert_eq!(http(&meta).user_agent, "Wget/1.16.3 (linux-gnu)");
}

#[test]
fn user_agent_split_across_segments() {
    // http_ua_splitted_in_two_pkts.pcapng frames 3 and 4: the User-Agent
    // line ends in the second segment (nDPI reports only "Mozil").
    let (a, b) = (
        capture!("http_ua_splitted_in_two_pkts-3"),
        capture!("http_ua_splitted_in_two_pkts-4"),
    );
    let f = flow(true, 21359, 80);
    let (verdicts, meta) = run(dissect, &f, &[(true, &a), (true, &b)]);
    assert_eq!(verdicts, [Found(HTTP), Done(HTTP)]);
    assert_eq!(meta.host_server_name, "va.origin.startappservice.com");
    let http = http(&meta);
    assert!(
        http.url
            .starts_with("/tracking/adImpression?d=IAAAAAAgAAA6X1tPSEVE")
    );
    assert_eq!(http.url.len(), MAX_TEXT);
    assert_eq!(
        http.user_agent,
        "Mozilla/5.0 (Linux; Android 6.0.1; SM-T805 Build/MMB29K; wv) AppleWebKit/537.36 \
         (KHTML, like Gecko) Version/4.0 Chrome/61.0.3163.98 Safari/537.36"
    );
}

#[test]
fn http2_prior_knowledge() {
    // http2.pcapng frame 1: the connection preface and a SETTINGS frame.
    let data = hex(
        "505249202a20485454502f322e300d0a0d0a534d0d0a0d0a000012040000000000000200000000000400400000000600
         a0000000000408000000000040000000",
    );
    let f = flow(true, 37824, 29518);
    assert_eq!(run(dissect, &f, &[(true, &data)]).0, [Done(HTTP2)]);
    assert_eq!(run(dissect, &f, &[(true, &data[..10])]).0, [Maybe]);
}

#[test]
fn response_seen_first() {
    let f = flow(true, 41538, 80);
    let response = hex(RESPONSE);
    let (verdicts, meta) = run(dissect, &f, &[(false, &response)]);
    assert_eq!(verdicts, [Found(HTTP)]);
    assert_eq!(meta, Metadata::default());
    // Then the client's next request.
    let (verdicts, meta) = run(dissect, &f, &[(false, &response), (true, &hex(WGET))]);
    assert_eq!(verdicts, [Found(HTTP), Done(HTTP)]);
    assert_eq!(meta.host_server_name, "mail.tomasu.net");
    // Or nothing from the client for a while.
    let mut packets = vec![(false, &response[..])];
    packets.extend([(false, &b"more"[..]); RESPONSE_WAIT as usize]);
    let (verdicts, _) = run(dissect, &f, &packets);
    assert_eq!(verdicts.last(), Some(&Done(HTTP)));
    // Or something else: the claim stands, nothing more to read.
    let (verdicts, _) = run(dissect, &f, &[(false, &response), (true, b"\x16\x03\x01")]);
    assert_eq!(verdicts, [Found(HTTP), No]);
}

#[test]
fn other_protocols_are_not_http() {
    let f = flow(true, 40000, 80);
    let others: [(bool, Vec<u8>); 6] = [
        // 443-curl.pcap frame 4: a TLS ClientHello.
        (true, hex(include_str!("../tls/testdata/443-curl-4.hex"))),
        // ssh.pcap frame 6: the client's SSH banner.
        (true, hex("5353482d322e302d4f70656e5353485f352e360d0a")),
        // smtp.pcap frame 4: an SMTP banner.
        (
            false,
            hex("32323020706967656f6e2e65797269652e61662e6d696c2045534d54502053656e646d61696c"),
        ),
        // sip.pcap frame 1 (over UDP there): a SIP REGISTER.
        (
            true,
            hex("5245474953544552207369703a7369702e6379626572636974792e646b205349502f322e300d0a"),
        ),
        // Synthetic (no RTSP capture): an RTSP request.
        (
            true,
            b"OPTIONS rtsp://10.0.0.2/x RTSP/1.0\r\nCSeq: 1\r\n\r\n".to_vec(),
        ),
        // Synthetic: an RTSP response.
        (false, b"RTSP/1.0 200 OK\r\n".to_vec()),
    ];
    for (from_client, data) in &others {
        let (verdicts, meta) = run(dissect, &f, &[(*from_client, data)]);
        assert_eq!(verdicts, [No], "{:?}", String::from_utf8_lossy(data));
        assert_eq!(meta.host_server_name, "");
    }
    assert_eq!(
        run(dissect, &flow(false, 40000, 80), &[(true, &hex(WGET))]).0,
        [No]
    );
}

#[test]
fn every_prefix_is_read_without_panic() {
    let wget = hex(WGET);
    let f = flow(true, 41538, 80);
    for n in 0..wget.len() {
        let (verdicts, _) = run(dissect, &f, &[(true, &wget[..n])]);
        assert!(matches!(verdicts[0], Maybe | Found(HTTP)), "prefix {n}");
    }
    let response = hex(RESPONSE);
    for n in 0..response.len() {
        let (verdicts, _) = run(dissect, &f, &[(false, &response[..n])]);
        assert!(matches!(verdicts[0], Maybe | Found(HTTP)), "prefix {n}");
    }
    // Garbage: a TLS ClientHello from each offset on.
    let tls = hex(include_str!("../tls/testdata/443-curl-4.hex"));
    for n in 0..tls.len() {
        run(dissect, &f, &[(true, &tls[n..]), (false, &tls[..n])]);
    }
}

#[test]
fn host_without_port() {
    assert_eq!(strip_port(b"example.com:8080"), b"example.com");
    assert_eq!(strip_port(b"example.com"), b"example.com");
    assert_eq!(strip_port(b"[2001:db8::1]:80"), b"[2001:db8::1]");
    assert_eq!(strip_port(b"[2001:db8::1"), b"[2001:db8::1");
    assert_eq!(strip_port(b"a:b"), b"a:b");
}

/// http_connect.pcap frame 4: Firefox asks a proxy for a tunnel.
const CONNECT: &str =
    "434f4e4e454354206170616368652e6f72673a34343320485454502f312e310d0a557365722d41
    67656e743a204d6f7a696c6c612f352e30202857696e646f7773204e542031302e303b2057696e36343b207836343b20
    72763a39322e3029204765636b6f2f32303130303130312046697265666f782f39322e300d0a50726f78792d436f6e6e
    656374696f6e3a206b6565702d616c6976650d0a436f6e6e656374696f6e3a206b6565702d616c6976650d0a486f7374
    3a206170616368652e6f72673a3434330d0a0d0a";

#[test]
fn proxy_requests() {
    let f = flow(true, 1714, 8080);
    let (verdicts, meta) = run(dissect, &f, &[(true, &hex(CONNECT))]);
    assert_eq!(verdicts, [Found(HTTP_CONNECT)]);
    assert_eq!(meta.host_server_name, "apache.org");
    // Then TLS through the tunnel (a ClientHello: tls_alert.pcap frame
    // 4), or nothing that is TLS within TUNNEL_WAIT packets.
    let hello = hex(include_str!("../tls/testdata/tls_alert-4.hex"));
    let established = b"HTTP/1.0 200 Connection Established\r\n\r\n";
    let (verdicts, meta) = run(
        dissect,
        &f,
        &[(true, &hex(CONNECT)), (false, established), (true, &hello)],
    );
    assert_eq!(verdicts, [Found(HTTP_CONNECT); 3]);
    let ssl = meta.ssl.unwrap();
    assert_eq!(ssl.client_ja4, "t10d0909h2_61c4dbd01224_cc731f12afbb");
    let c = hex(CONNECT);
    let mut packets = vec![(true, &c[..]), (false, &established[..])];
    packets.resize(TUNNEL_WAIT as usize, (true, b"junk"));
    let (verdicts, _) = run(dissect, &f, &packets);
    assert_eq!(verdicts.last(), Some(&Done(HTTP_CONNECT)));
    // The proxy's answer does not make it plain HTTP again.
    let c = hex(CONNECT);
    let (verdicts, _) = run(
        dissect,
        &f,
        &[
            (true, &c[..60]),
            (false, b"HTTP/1.0 200 Connection Established\r\n\r\n"),
        ],
    );
    assert_eq!(verdicts, [Found(HTTP_CONNECT), Found(HTTP_CONNECT)]);
    // An absolute target (built, as quickplay.pcap frame 24 starts).
    let get = b"POST http://hkextshort.weixin.qq.com/cgi-bin/micromsg-bin/mmsnssync HTTP/1.1\r\n\
        Host: hkextshort.weixin.qq.com\r\n\r\n";
    let (verdicts, meta) = run(dissect, &f, &[(true, get)]);
    assert_eq!(verdicts, [Done(HTTP_PROXY)]);
    assert_eq!(meta.host_server_name, "hkextshort.weixin.qq.com");
}

#[test]
fn ocsp_request() {
    // Built: an OCSP request by POST (RFC 6960 A.1).
    let post = b"POST / HTTP/1.1\r\nHost: ocsp.example.com\r\n\
        Content-Type: application/ocsp-request\r\nContent-Length: 83\r\n\r\n";
    let (verdicts, _) = run(dissect, &flow(true, 40000, 80), &[(true, post)]);
    assert_eq!(verdicts, [Done(OCSP)]);
    // Another body type is HTTP.
    let post = b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\n\r\n";
    let (verdicts, _) = run(dissect, &flow(true, 40000, 80), &[(true, post)]);
    assert_eq!(verdicts, [Done(HTTP)]);
}
