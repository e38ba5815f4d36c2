//! Tests on real payloads from tests/fixtures/ndpi (files under
//! `testdata/` are named `<capture>-<frame>.hex`), with the values nDPI
//! reports for them in the captures' `.out` files.

use super::*;
use crate::dissect::Verdict::{Done, Found, Maybe, No};
use crate::dissect::testing::{flow, hex, run};

/// A payload from `testdata/`.
macro_rules! capture {
    ($name:literal) => {
        hex(include_str!(concat!("testdata/", $name, ".hex")))
    };
}

const TLS: Protocol = Protocol(91);

fn ssl(meta: &Metadata) -> &Ssl {
    meta.ssl.as_deref().unwrap()
}

#[test]
fn tls12_client_hello_server_hello_and_certificate() {
    // 443-curl.pcap: ClientHello (frame 4), ServerHello and Certificate
    // (frames 6 and 7).
    let (ch, sh1, sh2) = (
        capture!("443-curl-4"),
        capture!("443-curl-6"),
        capture!("443-curl-7"),
    );
    let f = flow(true, 55523, 443);
    let (verdicts, meta) = run(dissect, &f, &[(true, &ch), (false, &sh1), (false, &sh2)]);
    assert_eq!(verdicts, [Found(TLS), Found(TLS), Done(TLS)]);
    assert_eq!(meta.host_server_name, "www.ntop.org");
    let ssl = ssl(&meta);
    assert_eq!(ssl.client_sni, "www.ntop.org");
    assert_eq!(ssl.alpn, ["h2", "http/1.1"]);
    assert_eq!(ssl.alpn_server, ["h2"]);
    assert_eq!((ssl.version, ssl.cipher_suite), (0x0303, 0xc02f));
    assert_eq!(ssl.client_ja4, "t12d6707h2_2955a3196ffa_c83f907a73d3");
    // ja4plus's JA4S of frame 6 (extensions ff01,0000,000b,0010).
    assert_eq!(ssl.server_ja4s, "t1204h2_c02f_7cc3d1d7f9b5");
    assert_eq!(ssl.server_cn, "www.ntop.org");
    assert_eq!(ssl.subject_dn, "CN=www.ntop.org");
    assert_eq!(
        ssl.issuer_dn,
        "C=US, O=Let's Encrypt, CN=Let's Encrypt Authority X3"
    );
    assert_eq!(ssl.fingerprint, "dba7e43e6dbb21ab684735e80b8f15dfdbc7c96f");
}

#[test]
fn certificate_with_many_common_names() {
    // tls-rdn-extract.pcap: TLS 1.0, the certificate over frames 2 to 4.
    let ch = capture!("tls-rdn-extract-1");
    let s: Vec<Vec<u8>> = vec![
        capture!("tls-rdn-extract-2"),
        capture!("tls-rdn-extract-3"),
        capture!("tls-rdn-extract-4"),
    ];
    let f = flow(true, 31337, 443);
    let (verdicts, meta) = run(
        dissect,
        &f,
        &[(true, &ch), (false, &s[0]), (false, &s[1]), (false, &s[2])],
    );
    assert_eq!(verdicts, [Found(TLS), Found(TLS), Found(TLS), Done(TLS)]);
    let ssl = ssl(&meta);
    assert_eq!(meta.host_server_name, "ads1.msads.net");
    assert_eq!((ssl.version, ssl.cipher_suite), (0x0301, 0x002f));
    assert_eq!(ssl.client_ja4, "t10d120500_d94e65cdb899_c35b4a14be45");
    // No extensions: zeros for their hash.
    assert_eq!(ssl.server_ja4s, "t100000_002f_000000000000");
    assert_eq!(ssl.server_cn, "*.officeapps.live.com");
    assert!(ssl.subject_dn.starts_with(
        "C=US, L=Redmond, O=Microsoft, OU=GFS, CN=*.officeapps.live.com, CN=*.msads.net, "
    ));
    assert!(ssl.subject_dn.len() <= MAX_TEXT);
    assert_eq!(
        ssl.issuer_dn,
        "DC=com, DC=microsoft, DC=corp, DC=redmond, CN=Microsoft Secure Server Authority"
    );
    assert_eq!(ssl.fingerprint, "ffbf9a698fc844ff89f26149a7d19a98de32843b");
}

#[test]
fn tls13_with_grease_and_ech() {
    // tls_ech.pcapng: Chrome's ClientHello (frame 4, GREASE and ECH) and
    // the first record of the ServerHello packet (frame 6).
    let (ch, sh) = (capture!("tls_ech-4"), capture!("tls_ech-6"));
    let f = flow(true, 47460, 443);
    let (verdicts, meta) = run(dissect, &f, &[(true, &ch), (false, &sh)]);
    assert_eq!(verdicts, [Found(TLS), Done(TLS)]);
    let ssl = ssl(&meta);
    assert_eq!(meta.host_server_name, "performance.radar.cloudflare.com");
    assert_eq!(ssl.alpn, ["h2", "http/1.1"]);
    assert_eq!((ssl.version, ssl.cipher_suite), (0x0304, 0x1301));
    assert_eq!(ssl.client_ja4, "t13d1516h2_8daaf6152771_02713d6af862");
    // The version from supported_versions.
    assert_eq!(ssl.server_ja4s, "t130200_1301_234ea6891581");
    assert_eq!(ssl.server_cn, "");
}

#[test]
fn tls13_facebook_fizz_versions() {
    // tls_2_reasms.pcapng: Fizz offers its own version numbers (JA4 "00").
    let (ch, sh) = (capture!("tls_2_reasms-2"), capture!("tls_2_reasms-4"));
    let f = flow(true, 38134, 443);
    let (verdicts, meta) = run(dissect, &f, &[(true, &ch), (false, &sh)]);
    assert_eq!(verdicts, [Found(TLS), Done(TLS)]);
    let ssl = ssl(&meta);
    assert_eq!(meta.host_server_name, "i.instagram.com");
    assert_eq!(ssl.alpn, ["h2", "h2-fb", "http/1.1"]);
    assert_eq!(ssl.client_ja4, "t00d0309h2_55b375c5d22e_566d5108064c");
    assert_eq!(ssl.server_ja4s, "t000300_1301_0ee26285a86f");
    assert_eq!((ssl.version, ssl.cipher_suite), (0xfb1a, 0x1301));
}

#[test]
fn fatal_alert_ends_the_handshake() {
    // tls_alert.pcap: ClientHello (frame 4), then the server's fatal
    // alert (frame 6).
    let ch = capture!("tls_alert-4");
    let alert = hex("15030100020246");
    let f = flow(true, 63158, 443);
    let (verdicts, meta) = run(dissect, &f, &[(true, &ch), (false, &alert)]);
    assert_eq!(verdicts, [Found(TLS), Done(TLS)]);
    assert_eq!(meta.host_server_name, "www.google-analytics.com");
    assert_eq!(
        ssl(&meta).client_ja4,
        "t10d0909h2_61c4dbd01224_cc731f12afbb"
    );
    assert_eq!(ssl(&meta).alpn.len(), 7);
}

#[test]
fn warning_alert_before_server_hello() {
    // http_ipv6.pcap (flow to www.ntop.org, port 37486) starts its
    // server stream with this warning alert (unrecognized_name);
    // synthetic: put before 443-curl.pcap's ServerHello (frame 6, 7).
    let mut sh = hex("150303000201 70");
    sh.extend(capture!("443-curl-6"));
    let f = flow(true, 55523, 443);
    let sh2 = capture!("443-curl-7");
    let (verdicts, meta) = run(dissect, &f, &[(false, &sh), (false, &sh2)]);
    assert_eq!(verdicts, [Found(TLS), Done(TLS)]);
    assert_eq!(ssl(&meta).server_cn, "www.ntop.org");
}

#[test]
fn sslv2_client_hello() {
    // google_ssl.pcap frame 4: an SSL 2.0 record offering TLS 1.0.
    let ch = hex(
        "807c01030100630000001000003900003800003500001600001300000a0700c000003300003200002f03008000006600
         000500000401008008008000006300006200006100001500001200000906004000006500006400006000001400001100
         0008000006040080000003020080447674058ab9c9a5abbb06702cc6cf1f",
    );
    let f = flow(true, 42835, 443);
    let (verdicts, meta) = run(dissect, &f, &[(true, &ch)]);
    assert_eq!(verdicts, [Found(TLS)]);
    assert_eq!(ssl(&meta).version, 0x0301);
    assert_eq!(meta.host_server_name, "");
    let (verdicts, _) = run(dissect, &f, &[(true, &ch[..60])]);
    assert_eq!(verdicts, [Maybe]);
}

#[test]
fn mid_stream_records_on_mail_ports() {
    // 6in4tunnel.pcap frame 62: the server's application data record,
    // the first packet nDPI saw of this IMAPS flow.
    let data = hex(
        "1703030029406ef3e9acf78a9b93e37e0e2da68d1639a81309660299dbf4c644e20e7b7da6ea91e72d89e68f9c02",
    );
    let imaps = run(dissect, &flow(true, 56381, 993), &[(false, &data)]);
    assert_eq!(imaps.0, [Done(Protocol(51))]);
    assert_eq!(imaps.1, Metadata::default());
    let tls = run(dissect, &flow(true, 56381, 443), &[(true, &data)]);
    assert_eq!(tls.0, [Done(TLS)]);
    assert_eq!(protocol(995), Protocol(23));
    assert_eq!(protocol(465), Protocol(29));
    // A record cut by the packet's end is not enough.
    let cut = run(dissect, &flow(true, 56381, 443), &[(true, &data[..40])]);
    assert_eq!(cut.0, [No]);
}

#[test]
fn client_hello_across_segments_and_records() {
    // 443-curl.pcap frame 4, split in two TCP segments.
    let ch = capture!("443-curl-4");
    let f = flow(true, 55523, 443);
    let (verdicts, meta) = run(dissect, &f, &[(true, &ch[..100]), (true, &ch[100..])]);
    assert_eq!(verdicts, [Maybe, Found(TLS)]);
    let ja4 = "t12d6707h2_2955a3196ffa_c83f907a73d3";
    assert_eq!(ssl(&meta).client_ja4, ja4);
    // Synthetic: the same handshake message in two records.
    let (a, b) = ch[5..].split_at(200);
    let mut two = hex("1603010000");
    two[3..5].copy_from_slice(&(a.len() as u16).to_be_bytes());
    two.extend_from_slice(a);
    two.extend_from_slice(&[0x16, 0x03, 0x01]);
    two.extend_from_slice(&(b.len() as u16).to_be_bytes());
    two.extend_from_slice(b);
    let (verdicts, meta) = run(dissect, &f, &[(true, &two)]);
    assert_eq!(verdicts, [Found(TLS)]);
    assert_eq!(ssl(&meta).client_ja4, ja4);
    assert_eq!(meta.host_server_name, "www.ntop.org");
}

#[test]
fn other_protocols_are_not_tls() {
    let f = flow(true, 40000, 443);
    // 6in4tunnel.pcap frame 85: an HTTP request.
    let http = hex(
        "474554202f20485454502f312e310d0a557365722d4167656e743a20576765742f312e31362e3320286c696e75782d67",
    );
    // ssh.pcap frame 6: an SSH banner; smtp.pcap frame 4: an SMTP banner.
    let ssh = hex("5353482d322e302d4f70656e5353485f352e360d0a");
    let smtp = hex("32323020706967656f6e2e65797269652e61662e6d696c2045534d54502053656e646d61696c");
    let dns = hex(crate::dissect::testing::DNS_QUERY);
    // quic-v2.pcapng frame 1: a QUIC Initial.
    let quic = hex(include_str!("../quic/testdata/quic-v2-1.hex"));
    for (from_client, data) in [
        (true, &http),
        (true, &ssh),
        (false, &smtp),
        (true, &dns),
        (true, &quic),
    ] {
        let (verdicts, meta) = run(dissect, &f, &[(from_client, data)]);
        assert_eq!(verdicts, [No], "{data:02x?}");
        assert_eq!(meta, Metadata::default());
    }
    let udp = flow(false, 40000, 443);
    assert_eq!(
        run(dissect, &udp, &[(true, &capture!("443-curl-4"))]).0,
        [No]
    );
}

#[test]
fn every_prefix_is_read_without_panic() {
    let ch = capture!("443-curl-4");
    let mut server = capture!("443-curl-6");
    server.extend(capture!("443-curl-7"));
    let f = flow(true, 55523, 443);
    for n in 0..ch.len() {
        let (verdicts, _) = run(dissect, &f, &[(true, &ch[..n])]);
        assert_eq!(verdicts, [Maybe], "prefix {n}");
    }
    for n in 0..server.len() {
        let (verdicts, meta) = run(dissect, &f, &[(true, &ch), (false, &server[..n])]);
        assert_ne!(verdicts[1], No, "prefix {n}");
        assert_eq!(meta.host_server_name, "www.ntop.org");
    }
    // Garbage: a QUIC packet's bytes, from each offset on.
    let quic = hex(include_str!("../quic/testdata/quic-v2-1.hex"));
    for n in 0..quic.len() {
        run(dissect, &f, &[(true, &quic[n..]), (false, &quic[..n])]);
    }
}

#[test]
fn ja4_alpn_and_empty_lists() {
    let ja4 = |alpn: &[u8]| {
        let mut hello = Hello {
            alpn: vec![alpn],
            ..Hello::default()
        };
        hello.ja4(false, 0x0303)
    };
    assert_eq!(ja4(b"h2"), "t12i0000h2_000000000000_000000000000");
    assert_eq!(&ja4(b"http/1.1")[8..10], "h1");
    assert_eq!(&ja4(b"h")[8..10], "hh");
    assert_eq!(&ja4(b"")[8..10], "00");
    assert_eq!(&ja4(&[0xab, 0xcd])[8..10], "ad");
    assert_eq!(&ja4(&[0x30, 0xab])[8..10], "3b");
    assert_eq!(&ja4(&[0x30, 0xab, 0xcd, 0x31])[8..10], "01");
    assert!(grease(0x0a0a) && grease(0xfafa) && !grease(0x0a1a) && !grease(0x0303));
}

#[test]
fn hellos_are_found_after_other_bytes() {
    let hello = capture!("tls_alert-4");
    // A lone 22, a record header of another type, then the hello.
    let mut stream = b"\x16 NXSH-8.10.1\n\x17\x03\x03\x00\x05".to_vec();
    let at = stream.len();
    stream.extend_from_slice(&hello);
    assert_eq!(hello_at(&stream, 1), Some(at));
    assert_eq!(hello_at(&stream, 2), None);
    assert_eq!(
        hello_at(&stream[..at + 9], 1),
        None,
        "cut before its version"
    );
}

/// A malformed ClientHello: its ALPN list says 16 bytes and has 3, its
/// last extension says 10 and has 3. What is there is fingerprinted, as
/// ja4plus does (the value is ja4plus's for the same bytes).
#[test]
fn ja4_of_lists_longer_than_their_extension() {
    let body = hex(
        "0303 0000000000000000000000000000000000000000000000000000000000000000 00
         0002 1301 0100 0010 0010 0005 0010026832 002b 000a 020304",
    );
    let mut meta = Metadata::default();
    assert!(client_hello(&body, false, &mut meta));
    assert_eq!(
        ssl(&meta).client_ja4,
        "t13i0102h2_0f2cb44170f4_b9a491fefe05"
    );
}

/// A ClientHello offering more cipher suites than JA4 counts (99): the
/// count stops there, the hash covers every one.
#[test]
fn ja4_hashes_every_cipher_suite() {
    let ciphers: Vec<u16> = (1..=150).collect();
    let mut body = vec![3, 3];
    body.extend([0; 32]); // random
    body.push(0); // no session id
    body.extend(((ciphers.len() * 2) as u16).to_be_bytes());
    body.extend(ciphers.iter().flat_map(|c| c.to_be_bytes()));
    body.extend([1, 0]); // null compression
    let mut meta = Metadata::default();
    assert!(client_hello(&body, false, &mut meta));
    let want = format!("t12i990000_{}_000000000000", hash12(&hex_list(&ciphers)));
    assert_eq!(ssl(&meta).client_ja4, want);
}

#[test]
fn certificate_names_are_remembered_for_the_same_bytes_only() {
    let names = |cn: &str| CertNames {
        cn: cn.into(),
        subject: format!("CN={cn}"),
        issuer: "CN=CA".into(),
    };
    let mut cache = CertCache::default();
    let parsed = std::cell::Cell::new(0);
    let parse = |der: &[u8]| {
        parsed.set(parsed.get() + 1);
        (der != b"junk").then(|| names(std::str::from_utf8(der).unwrap()))
    };
    let fp = |der: &[u8]| -> [u8; 20] { Sha1::digest(der).into() };
    let a = cache.names(fp(b"a"), b"a", parse).unwrap();
    assert_eq!(a.cn, "a");
    assert_eq!(cache.names(fp(b"a"), b"a", parse).unwrap().subject, "CN=a");
    // The same fingerprint over other bytes (a collision) is parsed anew.
    assert_eq!(cache.names(fp(b"a"), b"b", parse).unwrap().cn, "b");
    assert!(cache.names(fp(b"junk"), b"junk", parse).is_none());
    assert_eq!(parsed.get(), 3);
    // Bounded: when full, it starts afresh.
    for i in 0..CertCache::MAX + 1 {
        let der = i.to_string();
        cache.names(fp(der.as_bytes()), der.as_bytes(), parse);
    }
    assert!(cache.0.len() <= CertCache::MAX);
}
