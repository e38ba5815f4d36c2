//! Tests on real payloads from nDPI's captures (files under `testdata/`
//! are named `<capture>-<frame>.hex`), and on Initials built here for the
//! versions no capture has: a real ClientHello (or CHLO) from a capture,
//! or a synthetic one, protected with the version's salt as its client
//! would (the salts written out again here, from the RFCs and nDPI). nDPI's JA4 for these
//! flows differs only in the ALPN characters: it takes the first two
//! characters of the ALPN value, FoxIO's specification (followed here)
//! the first and last, and it writes `d` for a ClientHello without SNI.

use super::*;
use crate::dissect::Verdict::{Done, Found, Maybe, No};
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
    assert_eq!(verdicts, [Found(QUIC); 3], "the server's hello is next");
    assert_eq!(meta.host_server_name, "ssl.gstatic.com");
    let ssl = meta.ssl.unwrap();
    assert_eq!(ssl.client_sni, "ssl.gstatic.com");
    assert_eq!(ssl.alpn, ["h3"]);
    assert_eq!(ssl.version, 0x0304);
    assert_eq!(ssl.client_ja4, "q13d0312h3_55b375c5d22e_73e2d9e6cde6");
}

#[test]
fn server_initial_gives_ja4s() {
    // quic_0RTT.pcap frames 5 (the client's v1 Initial) and 6 (the
    // server's Initial, a Handshake packet after it): ja4plus's JA4S.
    let f = flow(false, 51972, 443);
    let (client, server) = (capture!("quic_0RTT-5"), capture!("quic_0RTT-6"));
    let (verdicts, meta) = run(dissect, &f, &[(true, &client), (false, &server)]);
    assert_eq!(verdicts, [Found(QUIC), Done(QUIC)]);
    let ssl = meta.ssl.unwrap();
    assert_eq!(ssl.server_ja4s, "q130300_1301_6bbbaf601ed8");
    assert_eq!((ssl.version, ssl.cipher_suite), (0x0304, 0x1301));
    // A server whose Initial does not come: done after SERVER_WAIT packets.
    let mut packets = vec![(true, &client[..])];
    packets.resize(usize::from(SERVER_WAIT) + 1, (false, &[0x40, 1, 2, 3][..]));
    let (verdicts, meta) = run(dissect, &f, &packets);
    assert_eq!(verdicts.last(), Some(&Done(QUIC)));
    assert_eq!(meta.ssl.unwrap().server_ja4s, "");
}

#[test]
fn v2_draft29_and_draft28() {
    // quic-v2.pcapng, quic-29.pcap and quic_0RTT.pcap: frame 1 of each.
    let v2 = client(&[&capture!("quic-v2-1")]);
    assert_eq!(
        v2,
        (
            vec![Found(QUIC)],
            "test".into(),
            "q13d0310h3_55b375c5d22e_0a3b52e28cea".into()
        )
    );
    let d29 = client(&[&capture!("quic-29-1")]);
    let ja4 = "q13d0512h9_d55e91d5c3b2_cd318bf3b157";
    assert_eq!(d29, (vec![Found(QUIC)], "localhost".into(), ja4.into()));
    let d28 = client(&[&capture!("quic_0RTT-1")]);
    let ja4 = "q00d0310h2_55b375c5d22e_060ec1c6a056";
    assert_eq!(d28, (vec![Found(QUIC)], "abcd".into(), ja4.into()));
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
        vec![Found(QUIC), Found(QUIC)],
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
    // Every prefix holding a whole header (under 96 bytes here, a token included) is QUIC.
    for p in [
        capture!("quic-v2-1"),
        capture!("quic_frags_ch_in_multiple_packets-1"),
        capture!("gquic-1"),
        capture!("http_ipv6-5"),
        capture!("quic_q46_b-1"),
        capture!("quic_0RTT-1"),
    ] {
        for n in 0..p.len() {
            let (verdicts, _, _) = client(&[&p[..n], &p[n..]]);
            assert!(n < 96 || verdicts[0] != No, "prefix {n}");
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
    assert_eq!(st.ranges().len(), MAX_RANGES);
    assert_eq!(st.head(), b"z");
    // Too many holes: the hello will never be whole, the flow is QUIC.
    let mut meta = Metadata::default();
    assert_eq!(st.hello(Hello::Tls, true, &mut meta), Done(QUIC));
}

#[test]
fn crypto_ranges_merge_in_any_order() {
    let mut st = State::default();
    st.insert(10, b"klmno");
    st.insert(0, b"abc");
    st.insert(20, b"uv");
    st.insert(3, b"defghij");
    assert_eq!(st.ranges(), [(0, 15), (20, 22)]);
    st.insert(12, b"mnopqrstu");
    assert_eq!(st.ranges(), [(0, 22)]);
    assert_eq!(st.head(), b"abcdefghijklmnopqrstuv");
}

// ---- Initials built for the versions no capture has ----

/// Bytes of a hex salt.
fn salt(s: &str) -> [u8; 20] {
    hex(s).try_into().unwrap()
}

/// QUIC v1's salt (RFC 9001 5.2), also drafts 33 and 34's.
const SALT_V1: &str = "38762cf7f55934b34d179ae6a4c80cadccbb7f0a";
/// QUIC v2's salt (RFC 9369 3.3.1).
const SALT_V2: &str = "0dede3def700a6db819381be6e269dcbf9bd2ed9";
/// Drafts 29 to 32 (draft-ietf-quic-tls-29 5.2).
const SALT_D29: &str = "afbfec289993d24c9e9786f19c6111e04390a899";
/// Drafts 23 to 28 (draft-ietf-quic-tls-23 5.2).
const SALT_D23: &str = "c3eef712c72ebb5a11a7d2432bb46365bef9f502";
/// Drafts 21 and 22 (draft-ietf-quic-tls-22 5.2).
const SALT_D22: &str = "7fbcdb0e7c66bbe9193a96cd21519ebd7a02644a";
/// Google's Q050, T050 and T051 (nDPI, Wireshark).
const SALT_Q050: &str = "504574efd066fe2f9d945cfcdbd3a7f0d3b56b45";
const SALT_T050: &str = "7ff579e5acd072915580304c43a2367c60488310";
const SALT_T051: &str = "7a4edef4e7ccee5fa4506c19124fc8ccda6e033d";

/// A 2-byte QUIC varint.
fn varint2(v: usize) -> [u8; 2] {
    (0x4000 | v as u16).to_be_bytes()
}

/// A CRYPTO frame (`typ` 0x06, or Google's 0x08) of `data` at `offset`.
fn crypto(typ: u8, offset: usize, data: &[u8]) -> Vec<u8> {
    let mut f = vec![typ];
    f.extend(varint2(offset));
    f.extend(varint2(data.len()));
    f.extend(data);
    f
}

/// A client Initial of `version` carrying `frames` (padded to fill a
/// 1200-byte datagram), protected with `salt` (RFC 9001 5).
fn seal(version: u32, salt: &[u8; 20], v2: bool, dcid: &[u8], frames: &[u8]) -> Vec<u8> {
    let pn = [0x00, 0x02];
    let mut header = vec![0xc1 | if v2 { 0x10 } else { 0 }];
    header.extend(version.to_be_bytes());
    header.push(dcid.len() as u8);
    header.extend(dcid);
    header.extend([4, 0xa1, 0xb2, 0xc3, 0xd4, 0]); // SCID, empty token
    let mut payload = frames.to_vec();
    let room = 1200usize.saturating_sub(header.len() + 2 + pn.len() + 16);
    payload.resize(payload.len().max(room), 0);
    header.extend(varint2(pn.len() + payload.len() + 16));
    let pn_offset = header.len();
    header.extend(pn);
    let initial = Initial::new(dcid, salt, v2).unwrap();
    let (key, iv, hp) = initial_keys(&initial, b"client in").unwrap();
    let mut nonce = iv;
    nonce[10] ^= pn[0];
    nonce[11] ^= pn[1];
    let tag = Aes128Gcm::new_from_slice(&key)
        .unwrap()
        .encrypt_inout_detached(&nonce.into(), &header, payload.as_mut_slice().into())
        .unwrap();
    let mut packet = [header, payload, tag.to_vec()].concat();
    let sample: [u8; 16] = packet[pn_offset + 4..pn_offset + 20].try_into().unwrap();
    let mut mask = aes_gcm::aes::Block::from(sample);
    Aes128::new_from_slice(&hp)
        .unwrap()
        .encrypt_block(&mut mask);
    packet[0] ^= mask[0] & 0x0f;
    packet[pn_offset] ^= mask[1];
    packet[pn_offset + 1] ^= mask[2];
    packet
}

/// The CRYPTO stream of a captured client Initial of `version`.
fn crypto_stream(packet: &[u8], version: u32) -> Vec<u8> {
    let keys = keys(version).unwrap();
    let long = Long::parse(packet, &version.to_be_bytes(), keys.v2).unwrap();
    let (plain, _) = decrypt(packet, &long, &keys).unwrap();
    let mut st = State::default();
    st.frames(&plain, keys.hello);
    st.head().to_vec()
}

/// A real ClientHello: quic_0RTT.pcap frame 5 (Chrome, QUIC v1, SNI
/// ssl.gstatic.com), from its CRYPTO stream.
fn chrome_hello() -> Vec<u8> {
    crypto_stream(&capture!("quic_0RTT-5"), 1)
}

/// A synthetic TLS 1.3 ClientHello (handshake header included) with an
/// SNI, an ALPN list and some padding.
fn synthetic_hello(sni: &str, alpn: &[&str], padding: usize) -> Vec<u8> {
    let ext = |typ: u16, data: &[u8]| {
        [
            &typ.to_be_bytes()[..],
            &(data.len() as u16).to_be_bytes(),
            data,
        ]
        .concat()
    };
    let name = [&[0][..], &(sni.len() as u16).to_be_bytes(), sni.as_bytes()].concat();
    let names = [&(name.len() as u16).to_be_bytes()[..], &name].concat();
    let protos: Vec<u8> = alpn
        .iter()
        .flat_map(|a| [&[a.len() as u8][..], a.as_bytes()].concat())
        .collect();
    let protos = [&(protos.len() as u16).to_be_bytes()[..], &protos].concat();
    let exts = [
        ext(0x0000, &names),
        ext(0x0010, &protos),
        ext(0x002b, &[2, 3, 4]),
        ext(0x0015, &vec![0; padding]),
    ]
    .concat();
    let mut body = vec![3, 3];
    body.extend([7; 32]);
    body.extend([0, 0, 2, 0x13, 0x01, 1, 0]);
    body.extend((exts.len() as u16).to_be_bytes());
    body.extend(exts);
    let len = (body.len() as u32).to_be_bytes();
    [&[1, len[1], len[2], len[3]][..], &body].concat()
}

/// The verdicts and metadata of a client flow of `packets`.
fn flow_of(packets: &[Vec<u8>]) -> (Vec<Verdict>, Metadata) {
    let f = flow(false, 50000, 443);
    let packets: Vec<(bool, &[u8])> = packets.iter().map(|p| (true, p.as_slice())).collect();
    run(dissect, &f, &packets)
}

const DCID: [u8; 8] = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];

#[test]
fn every_ietf_version_with_its_salt() {
    let hello = chrome_hello();
    let frames = crypto(0x06, 0, &hello);
    let versions: [(&str, u32, &str, bool); 14] = [
        ("v1", 0x0000_0001, SALT_V1, false),
        ("v2", 0x6b33_43cf, SALT_V2, true),
        ("draft 27", 0xff00_001b, SALT_D23, false),
        ("draft 28", 0xff00_001c, SALT_D23, false),
        ("draft 29", 0xff00_001d, SALT_D29, false),
        ("draft 30", 0xff00_001e, SALT_D29, false),
        ("draft 31", 0xff00_001f, SALT_D29, false),
        ("draft 32", 0xff00_0020, SALT_D29, false),
        ("draft 33", 0xff00_0021, SALT_V1, false),
        ("draft 34", 0xff00_0022, SALT_V1, false),
        // mvfst, with the salts nDPI gives them.
        ("mvfst 0xfaceb001", 0xface_b001, SALT_D22, false),
        ("mvfst 0xfaceb002", 0xface_b002, SALT_D23, false),
        ("mvfst 0xfaceb00e", 0xface_b00e, SALT_D23, false),
        // Later mvfst releases took the IETF salts.
        ("mvfst 0xfaceb00e, v1 salt", 0xface_b00e, SALT_V1, false),
    ];
    for (name, version, s, v2) in versions {
        let packet = seal(version, &salt(s), v2, &DCID, &frames);
        let (verdicts, meta) = flow_of(&[packet]);
        assert_eq!(verdicts, [Found(QUIC)], "{name}");
        assert_eq!(meta.host_server_name, "ssl.gstatic.com", "{name}");
        assert_eq!(meta.ssl.unwrap().alpn, ["h3"], "{name}");
    }
    // A version with another version's salt does not decrypt: QUIC still.
    let wrong = seal(0xff00_0022, &salt(SALT_D29), false, &DCID, &frames);
    let (verdicts, meta) = flow_of(&[wrong]);
    assert_eq!((verdicts, meta), (vec![Found(QUIC)], Metadata::default()));
}

#[test]
fn greased_version_initial_is_quic_when_full_sized() {
    let frames = crypto(0x06, 0, &chrome_hello());
    let packet = seal(0x1a2a_3a4a, &salt(SALT_D29), false, &DCID, &frames);
    let (verdicts, meta) = flow_of(std::slice::from_ref(&packet));
    assert_eq!(verdicts, [Found(QUIC)]);
    assert_eq!(meta.host_server_name, "ssl.gstatic.com");
    // Short of an Initial's 1200 bytes: a greased version alone is not
    // enough.
    let short = &packet[..INITIAL_MIN - 1];
    assert_eq!(flow_of(&[short.to_vec()]).0, [No]);
}

#[test]
fn google_t050_t051_carry_tls_in_their_crypto_frames() {
    let hello = chrome_hello();
    let frames = crypto(0x08, 0, &hello);
    for (version, s) in [(0x5430_3530, SALT_T050), (0x5430_3531, SALT_T051)] {
        let packet = seal(version, &salt(s), false, &DCID, &frames);
        let (verdicts, meta) = flow_of(&[packet]);
        assert_eq!(verdicts, [Done(QUIC)], "{version:x}");
        assert_eq!(meta.host_server_name, "ssl.gstatic.com");
        assert_eq!(meta.ssl.unwrap().alpn, ["h3"]);
    }
    // IETF frame numbering does not apply: a T051 Initial with a type
    // 0x06 frame yields nothing.
    let ietf = seal(
        0x5430_3531,
        &salt(SALT_T051),
        false,
        &DCID,
        &crypto(0x06, 0, &hello),
    );
    assert_eq!(flow_of(&[ietf]), (vec![Found(QUIC)], Metadata::default()));
}

#[test]
fn google_q050_chlo_over_two_initials() {
    // gquic.pcap frame 1's CHLO, sent again in two halves, second first.
    let chlo = crypto_stream(&capture!("gquic-1"), 0x5130_3530);
    assert!(chlo.starts_with(b"CHLO"));
    let q050 = salt(SALT_Q050);
    let (a, b) = chlo.split_at(chlo.len() / 2);
    let second = seal(0x5130_3530, &q050, false, &DCID, &crypto(0x08, a.len(), b));
    let first = seal(0x5130_3530, &q050, false, &DCID, &crypto(0x08, 0, a));
    let (verdicts, meta) = flow_of(&[second, first]);
    assert_eq!(verdicts, [Found(QUIC), Done(QUIC)]);
    assert_eq!(meta.host_server_name, "www.gstatic.com");
    let ua = "canary Chrome/85.0.4169.0 Windows NT 10.0; Win64; x64";
    assert_eq!(meta.http.unwrap().user_agent, ua);
}

#[test]
fn google_q046_chlo_in_clear() {
    // quic_q46_b.pcap frame 1 (YouTube's Android app).
    let (verdicts, meta) = flow_of(&[capture!("quic_q46_b-1")]);
    assert_eq!(verdicts, [Done(QUIC)]);
    assert_eq!(meta.host_server_name, "upload.youtube.com");
    let ua = "com.google.android.youtube Cronet/76.0.3809.0";
    assert_eq!(meta.http.unwrap().user_agent, ua);
    // Other connection ID lengths than Q046's: not Google QUIC.
    let mut other = capture!("quic_q46_b-1");
    other[5] = 0x55;
    assert_eq!(flow_of(&[other]).0, [No]);
}

/// A Google QUIC CHLO message of `tags` (sorted by tag).
fn chlo_message(tags: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
    let mut m = b"CHLO".to_vec();
    m.extend((tags.len() as u16).to_le_bytes());
    m.extend([0, 0]);
    let mut end = 0u32;
    for (tag, value) in tags {
        end += value.len() as u32;
        m.extend(*tag);
        m.extend(end.to_le_bytes());
    }
    for (_, value) in tags {
        m.extend(*value);
    }
    m
}

#[test]
fn google_q043_chlo_under_the_public_header() {
    let chlo = chlo_message(&[
        (b"PAD\0", &[b'-'; 40]),
        (b"SNI\0", b"www.example.org"),
        (b"UAID", b"Chrome/70.0.3538.77 Linux x86_64"),
        (b"VER\0", b"Q043"),
    ]);
    // Public flags (version, 8-byte connection ID), ID, version, packet
    // number, message hash, stream frame (stream 1, data length).
    let mut packet = vec![0x09];
    packet.extend([0x51, 0x7e, 0x0f, 0xb4, 0x31, 0x77, 0x4e, 0x6c]);
    packet.extend(b"Q043");
    packet.push(1);
    packet.extend([0x5a; 12]);
    packet.extend([0xa0, 0x01]);
    packet.extend((chlo.len() as u16).to_be_bytes());
    packet.extend(&chlo);
    packet.resize(1350, 0);
    let (verdicts, meta) = flow_of(std::slice::from_ref(&packet));
    assert_eq!(verdicts, [Done(QUIC)]);
    assert_eq!(meta.host_server_name, "www.example.org");
    let ua = "Chrome/70.0.3538.77 Linux x86_64";
    assert_eq!(meta.http.unwrap().user_agent, ua);
    // From the server (no version there), or with the reserved flag: not
    // Google QUIC.
    let f = flow(false, 50000, 443);
    assert_eq!(run(dissect, &f, &[(false, &packet)]).0, [No]);
    packet[0] |= 0x80;
    assert_eq!(flow_of(&[packet]).0, [No]);
}

#[test]
fn client_hello_over_three_initials_in_every_order() {
    let hello = synthetic_hello("video.example.net", &["h3"], 2500);
    let third = hello.len() / 3;
    let parts = [
        crypto(0x06, 0, &hello[..third]),
        crypto(0x06, third, &hello[third..2 * third]),
        crypto(0x06, 2 * third, &hello[2 * third..]),
    ];
    let key = salt(SALT_V1);
    let packets: Vec<Vec<u8>> = parts
        .iter()
        .map(|f| seal(1, &key, false, &DCID, f))
        .collect();
    for order in [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ] {
        let flow: Vec<Vec<u8>> = order.iter().map(|&i| packets[i].clone()).collect();
        let (verdicts, meta) = flow_of(&flow);
        assert_eq!(verdicts, [Found(QUIC); 3], "{order:?}");
        assert_eq!(meta.host_server_name, "video.example.net", "{order:?}");
    }
    // A ClientHello larger than the buffer: QUIC, without its SNI.
    let huge = synthetic_hello("big.example.net", &["h3"], CRYPTO_MAX);
    let chunks: Vec<Vec<u8>> = huge
        .chunks(1000)
        .enumerate()
        .map(|(i, c)| seal(1, &key, false, &DCID, &crypto(0x06, i * 1000, c)))
        .collect();
    let (verdicts, meta) = flow_of(&chunks);
    let done = verdicts.iter().position(|v| *v == Done(QUIC)).unwrap();
    assert_eq!(done, CRYPTO_MAX / 1000);
    assert_eq!(meta.host_server_name, "");
}

#[test]
fn initial_then_0rtt_in_one_datagram_and_after() {
    // quic_0RTT.pcap frame 1: a draft-28 Initial and a 0-RTT packet
    // coalesced; then frame 3 (v1 0-RTT) alone, as a later packet of
    // another flow would carry it.
    let (verdicts, meta) = flow_of(&[capture!("quic_0RTT-1"), capture!("quic_0RTT-3")]);
    assert_eq!(verdicts[0], Found(QUIC));
    assert_eq!(meta.host_server_name, "abcd");
    // A flow whose first packets are 0-RTT ones is QUIC.
    let (verdicts, meta) = flow_of(&[capture!("quic_0RTT-3"), capture!("quic_0RTT-4")]);
    assert_eq!(
        (verdicts, meta),
        (vec![Found(QUIC), Found(QUIC)], Metadata::default())
    );
}

#[test]
fn dns_over_quic_is_named_by_its_alpn() {
    let key = salt(SALT_V1);
    for (alpn, expected) in [
        (&["doq"][..], DOH_DOT),
        (&["doq-i02"], DOH_DOT),
        (&["h3", "doq"], QUIC),
        (&["dot"], QUIC),
    ] {
        let hello = synthetic_hello("dns.adguard-dns.com", alpn, 0);
        let packet = seal(1, &key, false, &DCID, &crypto(0x06, 0, &hello));
        let (verdicts, meta) = flow_of(&[packet]);
        assert_eq!(verdicts, [Found(expected)], "{alpn:?}");
        assert_eq!(meta.host_server_name, "dns.adguard-dns.com");
    }
}

#[test]
fn unknown_versions_and_short_packets_are_not_quic() {
    let frames = crypto(0x06, 0, &chrome_hello());
    // A version no one uses, built as an Initial.
    let other = seal(0x1234_5678, &salt(SALT_V1), false, &DCID, &frames);
    assert_eq!(flow_of(&[other]).0, [No]);
    // A v1 long header whose length could not hold a packet.
    let v1 = seal(1, &salt(SALT_V1), false, &DCID, &frames);
    let mut tiny = v1.clone();
    tiny[20..22].copy_from_slice(&varint2(5));
    assert_eq!(flow_of(&[tiny]).0, [No]);
    // Cut by the capture: QUIC, without its ClientHello.
    assert_eq!(flow_of(&[v1[..600].to_vec()]).0, [Found(QUIC)]);
    // A connection ID longer than QUIC allows.
    let mut long_cid = v1.clone();
    long_cid[5] = 21;
    assert_eq!(flow_of(&[long_cid]).0, [No]);
    assert_ne!(flow_of(&[v1]).0, [Maybe]);
    // A Google version with no known salt, well formed: QUIC, no more.
    let q051 = seal(0x5130_3531, &salt(SALT_Q050), false, &DCID, &frames);
    assert_eq!(
        flow_of(std::slice::from_ref(&q051)),
        (vec![Done(QUIC)], Metadata::default())
    );
    let mut bad = q051;
    bad[5] = 0xff;
    assert_eq!(flow_of(&[bad]).0, [No]);
}

#[test]
fn chrome_user_agent_from_the_transport_parameters() {
    // sites.pcapng frame 315: Chrome 97, QUIC v1, its user agent in the
    // google_user_agent transport parameter.
    let (verdicts, meta) = flow_of(&[capture!("sites-315")]);
    assert_eq!(verdicts, [Found(QUIC)]);
    assert_eq!(meta.host_server_name, "classroom.google.com");
    let ua = "Chrome/97.0.4692.99 Windows NT 10.0; Win64; x64";
    assert_eq!(meta.http.unwrap().user_agent, ua);
}
