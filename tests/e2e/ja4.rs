//! JA4 and JA4S against ja4plus (PyPI), an implementation of FoxIO's
//! specification independent of flowstat: every capture of the corpus
//! replayed, each flow's `ssl.client_ja4` and `ssl.server_ja4s` compared
//! with the first JA4 and JA4S ja4plus computes for that flow.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use crate::common::{TempDir, all_tunnels, corpus, fixture, oracle, rel, replay, tcp_session};
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
    /// As a line of the list, with `reason`.
    fn line(&self, reason: &str) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}\t{reason}",
            self.capture, self.key, self.kind, self.ja4plus, self.flowstat
        )
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

/// The accepted differences and their reasons.
fn accepted() -> BTreeMap<Fingerprint, String> {
    let text = std::fs::read_to_string(fixture(DIFFERENCES)).expect("the differences list");
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let [capture, key, kind, ja4plus, flowstat, reason] =
            line.split('\t').collect::<Vec<_>>()[..]
        else {
            panic!("{DIFFERENCES}:{}: 6 tab-separated columns expected", n + 1);
        };
        assert!(
            KINDS.iter().any(|(k, _)| *k == kind),
            "{DIFFERENCES}:{}: `ja4` or `ja4s`, not {kind:?}",
            n + 1
        );
        assert!(
            !reason.trim().is_empty(),
            "{DIFFERENCES}:{}: no reason",
            n + 1
        );
        let fp = Fingerprint {
            capture: capture.into(),
            key: key.into(),
            kind: kind.into(),
            ja4plus: ja4plus.into(),
            flowstat: flowstat.into(),
        };
        out.insert(fp, reason.to_owned());
    }
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
    let accepted = accepted();
    let unlisted: Vec<String> = found
        .iter()
        .filter(|f| !accepted.contains_key(**f))
        .map(|f| f.line("REASON"))
        .collect();
    let stale: Vec<String> = accepted
        .iter()
        .filter(|(f, _)| !found.contains(f))
        .map(|(f, reason)| f.line(reason))
        .collect();
    assert!(
        unlisted.is_empty() && stale.is_empty(),
        "{} differences not in {DIFFERENCES}:\n{}\n{} listed ones that no longer happen:\n{}",
        unlisted.len(),
        unlisted.join("\n"),
        stale.len(),
        stale.join("\n")
    );
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
    let all = fingerprints(&paths);
    let differ: Vec<String> = all
        .iter()
        .filter(|f| f.ja4plus != f.flowstat)
        .map(|f| f.line("differs"))
        .collect();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
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
