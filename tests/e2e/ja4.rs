//! JA4 and JA4S against ja4plus (PyPI), an implementation of FoxIO's
//! specification independent of flowstat: every capture of the corpus
//! replayed, each flow's `ssl.client_ja4` and `ssl.server_ja4s` compared
//! with the first JA4 and JA4S ja4plus computes for that flow.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use crate::common::{
    TempDir, all_tunnels, assert_listed, corpus, fixture, oracle, rel, replay, tcp_session,
};
use crate::dpi::{detected, flow_key};

/// Runs ja4plus's JA4 and JA4S fingerprinters over each capture named on
/// the command line (scapy reads them), and prints one line per
/// fingerprint: `capture TAB kind TAB transport TAB source TAB
/// destination TAB fingerprint`. The endpoints are the innermost IP
/// header's and transport header's, as flowstat keys a decapsulated flow
/// (ja4plus's own results name the outer addresses of a tunnel).
const JA4PLUS: &str = r#"
import logging, sys
logging.disable(logging.CRITICAL)
import ja4plus  # registers scapy's tunnel dissectors
from ja4plus.fingerprinters.ja4 import JA4Fingerprinter
from ja4plus.fingerprinters.ja4s import JA4SFingerprinter
from ja4plus.utils.tunnels import innermost_layer
from scapy.all import IP, IPv6, TCP, UDP
from scapy.utils import PcapReader

def endpoint(ip, port):
    return f"[{ip}]:{port}" if ":" in str(ip) else f"{ip}:{port}"

for path in sys.argv[1:]:
    kinds = (("ja4", JA4Fingerprinter(thread_safe=False)),
             ("ja4s", JA4SFingerprinter(thread_safe=False)))
    with PcapReader(path) as reader:
        for packet in reader:
            for kind, fingerprinter in kinds:
                fp = fingerprinter.process_packet(packet)
                if not fp:
                    continue
                ip = innermost_layer(packet, (IP, IPv6))
                l4 = innermost_layer(packet, (TCP, UDP))
                transport = "TCP" if isinstance(l4, TCP) else "UDP"
                print(path, kind, transport, endpoint(ip.src, l4.sport),
                      endpoint(ip.dst, l4.dport), fp, sep="\t")
"#;

/// The two fingerprints compared.
const KINDS: [(&str, &str); 2] = [("ja4", "client_ja4"), ("ja4s", "server_ja4s")];

/// Accepted differences with ja4plus, each with its reason:
/// `fixtures/ja4-differences.tsv`.
const DIFFERENCES: &str = "ja4-differences.tsv";

/// One fingerprint of one flow: what ja4plus and flowstat compute (`-`
/// for nothing).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Fingerprint {
    capture: String,
    key: String,
    /// `ja4` or `ja4s`.
    kind: String,
    ja4plus: String,
    flowstat: String,
}

impl Fingerprint {
    /// Its columns in the list.
    fn columns(&self) -> Vec<String> {
        [
            &self.capture,
            &self.key,
            &self.kind,
            &self.ja4plus,
            &self.flowstat,
        ]
        .map(String::clone)
        .to_vec()
    }
}

/// ja4plus's first fingerprint of each kind for each flow of `captures`:
/// by (capture as `rel` names it, flow key, kind).
fn ja4plus(captures: &[PathBuf]) -> BTreeMap<(String, String, String), String> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(JA4PLUS)
        .args(captures)
        .output()
        .expect("python3 with ja4plus is needed as a test oracle; install it with .ci/deps");
    assert!(
        out.status.success(),
        "ja4plus failed (it is needed as a test oracle; install it with .ci/deps):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut first = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let [capture, kind, l4, src, dst, fp] = line.split('\t').collect::<Vec<_>>()[..] else {
            panic!("unexpected ja4plus line: {line}");
        };
        let key = (
            rel(&PathBuf::from(capture)),
            flow_key(l4, src, dst),
            kind.to_owned(),
        );
        first.entry(key).or_insert_with(|| fp.to_owned());
    }
    first
}

/// [`fingerprints`] of `captures`, each of which must be the same from
/// ja4plus and flowstat (no accepted difference).
fn equal_fingerprints(captures: &[PathBuf]) -> Vec<Fingerprint> {
    let all = fingerprints(captures);
    let differ: Vec<String> = all
        .iter()
        .filter(|f| f.ja4plus != f.flowstat)
        .map(|f| f.columns().join("\t"))
        .collect();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    all
}

/// Every fingerprint ja4plus or flowstat computes for the flows of
/// `captures` (each replayed alone, every tunnel decapsulated).
fn fingerprints(captures: &[PathBuf]) -> Vec<Fingerprint> {
    let mut theirs = ja4plus(captures);
    let mut out = Vec::new();
    for capture in captures {
        let name = rel(capture);
        let flows = detected(&replay(std::slice::from_ref(capture), &all_tunnels()));
        for (key, flow) in &flows {
            for (kind, field) in KINDS {
                let ours = flow["ssl"][field].as_str().unwrap_or_default();
                let theirs = theirs.remove(&(name.clone(), key.clone(), kind.to_owned()));
                if ours.is_empty() && theirs.is_none() {
                    continue;
                }
                out.push(Fingerprint {
                    capture: name.clone(),
                    key: key.clone(),
                    kind: kind.to_owned(),
                    ja4plus: theirs.unwrap_or_else(|| "-".into()),
                    flowstat: if ours.is_empty() { "-" } else { ours }.to_owned(),
                });
            }
        }
    }
    // Flows ja4plus fingerprints and flowstat has no record of.
    out.extend(
        theirs
            .into_iter()
            .map(|((capture, key, kind), fp)| Fingerprint {
                capture,
                key,
                kind,
                ja4plus: fp,
                flowstat: "-".into(),
            }),
    );
    out.sort();
    out
}

/// Every JA4 and JA4S of the corpus: flowstat's equals ja4plus's, or the
/// flow is in the list of accepted differences with its reason. A
/// difference missing from the list fails, and so does a listed one that
/// no longer happens (the list is kept exact).
#[test]
fn ja4_and_ja4s_equal_ja4plus_or_are_listed() {
    let all = fingerprints(&corpus());
    for (kind, _) in KINDS {
        let of_kind: Vec<&Fingerprint> = all.iter().filter(|f| f.kind == kind).collect();
        let theirs = of_kind.iter().filter(|f| f.ja4plus != "-").count();
        let exact = of_kind.iter().filter(|f| f.ja4plus == f.flowstat).count();
        let captures: std::collections::BTreeSet<&str> =
            of_kind.iter().map(|f| f.capture.as_str()).collect();
        println!(
            "{kind}: ja4plus fingerprints {theirs} flows, flowstat equals it on {exact} \
             ({:.2}%); {} flows in all, in {} captures",
            exact as f64 * 100.0 / theirs.max(1) as f64,
            of_kind.len(),
            captures.len()
        );
    }
    let found: Vec<&Fingerprint> = all.iter().filter(|f| f.ja4plus != f.flowstat).collect();
    assert_listed(DIFFERENCES, &found.iter().map(|f| f.columns()).collect());
    let hellos = all.iter().filter(|f| f.kind == "ja4").count();
    assert!(hellos >= 300, "only {hellos} ClientHellos compared");
}

/// A session built for a protocol's upgrade to TLS: its name, the
/// server's port, the protocol flowstat names, the exchange in clear text
/// (`(from client, text)`) before the TLS handshake.
type Session<'a> = (&'a str, u16, &'a str, &'a [(bool, &'a str)]);

/// TLS after each protocol's upgrade: the `ssl` object, its JA4 and JA4S
/// equal to ja4plus's, and the flow named as nDPI names it. SMTP and POP3
/// from the corpus; FTP, IMAP and XMPP (none in the corpus) built: each
/// protocol's clear-text exchange, then the TLS 1.2 handshake of
/// smtp-starttls.pcap's second session (its ClientHello, frame 46, and
/// the server's hello and certificate, frame 47).
#[test]
fn tls_after_starttls_has_ssl_equal_to_ja4plus() {
    let tls = oracle(
        "tshark",
        &[
            "-r",
            &fixture("ndpi/smtp-starttls.pcap").to_string_lossy(),
            "-Y",
            "frame.number == 46 || frame.number == 47",
            "-T",
            "fields",
            "-e",
            "tcp.payload",
        ],
    );
    let segments: Vec<Vec<u8>> = tls
        .lines()
        .map(|hex| {
            (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                .collect()
        })
        .collect();
    let [hello, server_hello] = &segments[..] else {
        panic!("two TLS segments expected: {tls}");
    };
    let stream_header = "<?xml version='1.0'?><stream:stream to='example.com' version='1.0' \
        xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";
    let features = "<?xml version='1.0'?><stream:stream from='example.com' id='1' \
        version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>\
        <stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>\
        </starttls></stream:features>";
    let built: [Session; 3] = [
        (
            "ftp",
            21,
            "FTP_CONTROL",
            &[
                (false, "220 FTP server ready.\r\n"),
                (true, "AUTH TLS\r\n"),
                (false, "234 Proceed with negotiation.\r\n"),
            ],
        ),
        (
            "imap",
            143,
            "IMAPS",
            &[
                (false, "* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n"),
                (true, "a1 STARTTLS\r\n"),
                (false, "a1 OK Begin TLS negotiation now\r\n"),
            ],
        ),
        (
            "xmpp",
            5222,
            "Jabber",
            &[
                (true, stream_header),
                (false, features),
                (true, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
                (false, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
            ],
        ),
    ];
    let tmp = TempDir::new("starttls");
    let mut captures = vec![
        (fixture("ndpi/smtp-starttls.pcap"), "SMTPS"),
        (fixture("ndpi/pop3_stls.pcap"), "POPS"),
    ];
    for (name, port, protocol, clear) in built {
        let path = tmp.path(&format!("{name}-starttls.pcap"));
        let mut segments: Vec<(bool, &[u8])> = clear
            .iter()
            .map(|&(c, text)| (c, text.as_bytes()))
            .collect();
        segments.extend([(true, &hello[..]), (false, &server_hello[..])]);
        tcp_session(&path, port, &segments);
        captures.push((path, protocol));
    }
    let paths: Vec<PathBuf> = captures.iter().map(|(p, _)| p.clone()).collect();
    let all = equal_fingerprints(&paths);
    for (path, protocol) in &captures {
        let flows = detected(&replay(std::slice::from_ref(path), &all_tunnels()));
        let name = rel(path);
        assert!(!flows.is_empty(), "{name}: no flow");
        for (key, flow) in &flows {
            assert_eq!(flow["detected_protocol_name"], *protocol, "{name} {key}");
            let ssl = &flow["ssl"];
            for field in ["client_ja4", "server_ja4s", "server_cn", "cipher_suite"] {
                assert!(
                    ssl[field].as_str().is_some_and(|v| !v.is_empty()),
                    "{name} {key}: no ssl.{field} in {flow}"
                );
            }
            for kind in ["ja4", "ja4s"] {
                assert!(
                    all.iter()
                        .any(|f| f.capture == name && f.key == *key && f.kind == kind),
                    "{name} {key}: ja4plus has no {kind}"
                );
            }
        }
        println!("{name}: {} flows, {protocol} with ssl", flows.len());
    }
}

/// A xorshift generator: the same hellos on every run.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn grease(&mut self) -> u16 {
        0x0a0a + 0x1010 * self.below(16) as u16
    }
}

/// `data` after its length on `width` bytes.
fn prefixed(width: usize, data: &[u8]) -> Vec<u8> {
    let len = data.len().to_be_bytes();
    [&len[len.len() - width..], data].concat()
}

/// A ClientHello record with what a client may offer, picked by `rng`.
fn random_hello(rng: &mut Random, n: usize) -> Vec<u8> {
    let u16s = |values: &[u16]| {
        values
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect::<Vec<_>>()
    };
    let ext = |typ: u16, data: &[u8]| [&typ.to_be_bytes()[..], &prefixed(2, data)].concat();
    let legacy: u16 = [0x0303, 0x0303, 0x0301, 0x0302, 0x0300][rng.below(5)];
    let mut ciphers: Vec<u16> = (0..rng.below(131)).map(|_| rng.next() as u16).collect();
    if rng.chance(50) {
        ciphers.insert(0, rng.grease());
    }
    let alpns: [&[u8]; 8] = [
        b"h2",
        b"http/1.1",
        b"h3",
        b"a",
        b"",
        b"spdy/3.1",
        b"h2c",
        b"acme-tls/1",
    ];
    let mut exts = Vec::new();
    for kind in 0..8 {
        // One ALPN extension at most: with two (which TLS forbids),
        // ja4plus reads the last, FoxIO's tools and flowstat the first.
        if !rng.chance(45) || (kind == 4 && exts.iter().any(|e: &Vec<u8>| e[..2] == [0, 16])) {
            continue;
        }
        let data = match kind {
            0 => match rng.below(3) {
                0 => Vec::new(),
                1 => prefixed(2, &[&[0][..], &prefixed(2, b"")].concat()),
                _ => prefixed(
                    2,
                    &[
                        &[0][..],
                        &prefixed(2, format!("h{n}.example.com").as_bytes()),
                    ]
                    .concat(),
                ),
            },
            1 => {
                let list: Vec<u8> = (0..1 + rng.below(3))
                    .flat_map(|_| prefixed(1, alpns[rng.below(alpns.len())]))
                    .collect();
                prefixed(2, &list)
            }
            2 => {
                let pool = [0x0304, 0x0303, 0x0302, 0x7f1c, 0xfb1a, rng.grease()];
                let versions: Vec<u16> =
                    (0..1 + rng.below(4)).map(|_| pool[rng.below(6)]).collect();
                prefixed(1, &u16s(&versions))
            }
            3 => {
                let pool = [
                    0x0403,
                    0x0804,
                    0x0401,
                    0x0503,
                    0x0805,
                    0x0601,
                    0x0201,
                    rng.grease(),
                ];
                let algs: Vec<u16> = (0..rng.below(11)).map(|_| pool[rng.below(8)]).collect();
                prefixed(2, &u16s(&algs))
            }
            // A list that says more than its extension holds.
            4 => vec![0, 16, 2, b'h', b'2'],
            _ => vec![0; rng.below(9)],
        };
        let typ = match kind {
            0 => 0,
            1 => 16,
            2 => 43,
            3 | 4 => [13, 16][kind - 3],
            5 => rng.grease(),
            _ => [
                5, 10, 11, 23, 35, 45, 51, 27, 17_513, 0xff01, 0xfe0d, 21, 41,
            ][rng.below(13)],
        };
        for _ in 0..1 + usize::from(kind >= 6) * rng.below(12) {
            exts.push(ext(typ, &data));
        }
    }
    let order: Vec<usize> = {
        let mut o: Vec<usize> = (0..exts.len()).collect();
        for i in (1..o.len()).rev() {
            o.swap(i, rng.below(i + 1));
        }
        o
    };
    let exts: Vec<u8> = order.iter().flat_map(|&i| exts[i].clone()).collect();
    let session = if rng.chance(50) {
        vec![7; 32]
    } else {
        Vec::new()
    };
    let mut body = [
        &legacy.to_be_bytes()[..],
        &[0x5a; 32],
        &prefixed(1, &session),
        &prefixed(2, &u16s(&ciphers)),
        &[1, 0],
    ]
    .concat();
    if !exts.is_empty() || rng.chance(50) {
        body.extend(prefixed(2, &exts));
    }
    let message = [&[1][..], &prefixed(3, &body)].concat();
    [&[0x16, 3, 1][..], &prefixed(2, &message)].concat()
}

/// Random ClientHellos (a fixed seed), each in a session of its own: every
/// JA4 equals ja4plus's. GREASE anywhere, 0 to 131 cipher suites,
/// extensions in any order and repeated, an SNI extension with a name,
/// an empty one or none, first ALPN values of one and more characters,
/// supported versions with drafts and GREASE, signature algorithms with
/// GREASE, a list longer than its extension, the hello in one TCP segment
/// or two. Left out where ja4plus departs from FoxIO's specification: an
/// ALPN value beginning or ending with a byte that is no ASCII letter or
/// digit (the specification prints hex digits, ja4plus the bytes), and a
/// hello over several records (ja4plus reads the first record alone).
#[test]
fn random_client_hellos_equal_ja4plus() {
    const HELLOS: usize = 150;
    let tmp = TempDir::new("ja4-random");
    let mut rng = Random(0x9e37_79b9_7f4a_7c15);
    let paths: Vec<PathBuf> = (0..HELLOS)
        .map(|n| {
            let hello = random_hello(&mut rng, n);
            let path = tmp.path(&format!("hello-{n}.pcap"));
            // ja4plus needs the first segment to hold the record header.
            let cut = 9 + rng.below(hello.len() - 9);
            if rng.chance(25) {
                tcp_session(&path, 443, &[(true, &hello[..cut]), (true, &hello[cut..])]);
            } else {
                tcp_session(&path, 443, &[(true, &hello)]);
            }
            path
        })
        .collect();
    let all = equal_fingerprints(&paths);
    let hellos = all.iter().filter(|f| f.kind == "ja4").count();
    assert_eq!(hellos, HELLOS, "a JA4 for every hello");
}
