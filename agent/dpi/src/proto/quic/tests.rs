//! Tests on real payloads from tests/fixtures/ndpi (files under
//! `testdata/` are named `<capture>-<frame>.hex`). nDPI's JA4 for these
//! flows differs only in the ALPN characters: it takes the first two
//! characters of the ALPN value, FoxIO's specification (followed here)
//! the first and last, and it writes `d` for a ClientHello without SNI.

use super::*;
use crate::dissect::Verdict::{Done, Found, No};
use crate::dissect::testing::{flow, hex, run};

/// A payload from `testdata/`.
macro_rules! capture {
    ($name:literal) => {
        hex(include_str!(concat!("testdata/", $name, ".hex")))
    };
}

/// The SNI and JA4 read from a flow of client datagrams, and the verdicts.
fn client(packets: &[&[u8]]) -> (Vec<Verdict>, String, String) {
    let f = flow(false, 50000, 443);
    let packets: Vec<(bool, &[u8])> = packets.iter().map(|p| (true, *p)).collect();
    let (verdicts, meta) = run(dissect, &f, &packets);
    let ja4 = meta.ssl.map(|s| s.client_ja4).unwrap_or_default();
    (verdicts, meta.host_server_name, ja4)
}

#[test]
fn v1_after_0rtt_packets() {
    // quic_0RTT.pcap frames 3 and 4 (0-RTT), then 5 (the Initial).
    let (a, b, c) = (
        capture!("quic_0RTT-3"),
        capture!("quic_0RTT-4"),
        capture!("quic_0RTT-5"),
    );
    let f = flow(false, 51972, 443);
    let (verdicts, meta) = run(dissect, &f, &[(true, &a), (true, &b), (true, &c)]);
    assert_eq!(verdicts, [Found(QUIC), Found(QUIC), Done(QUIC)]);
    assert_eq!(meta.host_server_name, "ssl.gstatic.com");
    let ssl = meta.ssl.unwrap();
    assert_eq!(ssl.client_sni, "ssl.gstatic.com");
    assert_eq!(ssl.alpn, ["h3"]);
    assert_eq!(ssl.version, 0x0304);
    assert_eq!(ssl.client_ja4, "q13d0312h3_55b375c5d22e_73e2d9e6cde6");
}

#[test]
fn v2_draft29_and_draft28() {
    // quic-v2.pcapng, quic-29.pcap and quic_0RTT.pcap: frame 1 of each.
    let v2 = client(&[&capture!("quic-v2-1")]);
    assert_eq!(
        v2,
        (
            vec![Done(QUIC)],
            "test".into(),
            "q13d0310h3_55b375c5d22e_0a3b52e28cea".into()
        )
    );
    let d29 = client(&[&capture!("quic-29-1")]);
    let ja4 = "q13d0512h9_d55e91d5c3b2_cd318bf3b157";
    assert_eq!(d29, (vec![Done(QUIC)], "localhost".into(), ja4.into()));
    let d28 = client(&[&capture!("quic_0RTT-1")]);
    let ja4 = "q00d0310h2_55b375c5d22e_060ec1c6a056";
    assert_eq!(d28, (vec![Done(QUIC)], "abcd".into(), ja4.into()));
}

#[test]
fn client_hello_over_two_initials_in_any_order() {
    // quic_frags_ch_in_multiple_packets.pcapng frames 1 and 2: no SNI.
    let (a, b) = (
        capture!("quic_frags_ch_in_multiple_packets-1"),
        capture!("quic_frags_ch_in_multiple_packets-2"),
    );
    let ja4 = "q00i0307h4_55b375c5d22e_af0a630e9e67";
    let expected = (
        vec![Found(QUIC), Done(QUIC)],
        String::new(),
        ja4.to_string(),
    );
    assert_eq!(client(&[&a, &b]), expected);
    assert_eq!(client(&[&b, &a]), expected);
    let f = flow(false, 58822, 4443);
    let (_, meta) = run(dissect, &f, &[(true, &a), (true, &b)]);
    let alpn = meta.ssl.unwrap().alpn;
    assert_eq!(
        (alpn.len(), alpn[0].as_str(), alpn[17].as_str()),
        (18, "h3-34", "hq-interop")
    );
}

#[test]
fn google_quic() {
    // gquic.pcap frame 1: Q050, encrypted; http_ipv6.pcap frame 5: Q025,
    // its CHLO in clear text.
    let q050 = client(&[&capture!("gquic-1")]);
    assert_eq!(
        q050,
        (vec![Done(QUIC)], "www.gstatic.com".into(), String::new())
    );
    let q025 = client(&[&capture!("http_ipv6-5")]);
    assert_eq!(
        q025,
        (vec![Done(QUIC)], "www.google.it".into(), String::new())
    );
}

#[test]
fn server_packet_first() {
    // quic-29.pcap frame 2: the server's Retry.
    let retry = hex(
        "f0ff00001d1143944eda18beb7e548b38d375bf3c2a3bc122e9a32ed45c9066ad4f9ac32c1d23c19e480b6907375db29
         9ac3b8c0116101cfa539946cdc0bd6f7aac1308a926fc779a44d62ce556742f27f3249c7fadc73d661f144e6516d421e
         cdb186e7df7fb5f0dc0280c49edf4ce0ef885332c4",
    );
    let f = flow(false, 36588, 443);
    let (verdicts, meta) = run(dissect, &f, &[(false, &retry)]);
    assert_eq!(verdicts, [Found(QUIC)]);
    assert_eq!(meta, Metadata::default());
}

#[test]
fn damaged_initial_is_quic_without_metadata() {
    // quic-v2.pcapng frame 1 with one ciphertext byte changed: the
    // header still names QUIC v2, the AEAD tag no longer matches.
    let mut p = capture!("quic-v2-1");
    p[300] ^= 1;
    assert_eq!(
        client(&[&p]),
        (vec![Found(QUIC)], String::new(), String::new())
    );
}

#[test]
fn other_protocols_are_not_quic() {
    let others = [
        hex(crate::dissect::testing::DNS_QUERY),
        hex(crate::dissect::testing::STUN_REQUEST),
        // wireguard.pcap frame 1: a handshake initiation (its start).
        hex(
            "01000000d837d0305fcec7c8e5c8e2e3f7989eef60c228d82329d602b6b1e2bb9d068f89cf9d4d4532780f6d27264f7b",
        ),
        // sip.pcap frame 1: a REGISTER request (its start).
        hex("5245474953544552207369703a7369702e6379626572636974792e646b205349502f322e300d0a"),
        // 443-curl.pcap frame 4: a TLS ClientHello.
        hex(include_str!("../tls/testdata/443-curl-4.hex")),
    ];
    for data in &others {
        let (verdicts, meta) = run(dissect, &flow(false, 50000, 443), &[(true, data)]);
        assert_eq!(verdicts, [No], "{data:02x?}");
        assert_eq!(meta, Metadata::default());
    }
    let tcp = flow(true, 50000, 443);
    assert_eq!(
        run(dissect, &tcp, &[(true, &capture!("quic-v2-1"))]).0,
        [No]
    );
}

#[test]
fn every_prefix_is_read_without_panic() {
    for p in [
        capture!("quic-v2-1"),
        capture!("quic_frags_ch_in_multiple_packets-1"),
        capture!("gquic-1"),
        capture!("http_ipv6-5"),
    ] {
        for n in 0..p.len() {
            let (verdicts, _, _) = client(&[&p[..n], &p[n..]]);
            assert!(n < 13 || verdicts[0] != No, "prefix {n}");
        }
    }
}

#[test]
fn crypto_reassembly_is_bounded() {
    let mut st = State::default();
    st.insert(CRYPTO_MAX - 2, b"abcd");
    st.insert(usize::MAX - 1, b"xy");
    for i in 0..2 * MAX_RANGES {
        st.insert(i * 10, b"z");
    }
    assert_eq!(st.crypto.len(), CRYPTO_MAX);
    assert!(st.ranges.len() <= MAX_RANGES);
    assert_eq!(st.client_hello(), None);
}
