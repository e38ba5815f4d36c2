//! DPI agreement with nDPI: every capture of `fixtures/ndpi` replayed, each
//! flow's `flow` record compared with nDPI's expected result (`.out`).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;

use serde_json::Value;

use flowstatd::Config;

use crate::common::{all_tunnels, assert_listed, fixture, replay};

/// nDPI's names of the protocols flowstat detected from payload first
/// (issue 5's list), whose agreement the test prints apart.
const COMPARED: &[&str] = &[
    "TLS",
    "IMAPS",
    "POPS",
    "SMTPS",
    "QUIC",
    "HTTP",
    "HTTP2",
    "DNS",
    "MDNS",
    "LLMNR",
    "NetBIOS",
    "SSDP",
    "DHCP",
    "DHCPV6",
    "NTP",
    "SNMP",
    "Syslog",
    "SSH",
    "Telnet",
    "FTP_CONTROL",
    "SMTP",
    "POP3",
    "IMAP",
    "SIP",
    "RTSP",
    "RTP",
    "RTCP",
    "STUN",
    "WireGuard",
    "OpenVPN",
    "IPSec",
    "BitTorrent",
    "MQTT",
    "AMQP",
    "RESP",
    "MySQL",
    "PostgreSQL",
    "Kerberos",
    "LDAP",
    "SMBv1",
    "SMBv23",
    "RDP",
    "ICMP",
    "ICMPV6",
];

/// One flow of an nDPI `.out` file.
#[derive(Debug)]
struct Expected {
    /// Transport and the two endpoints, sorted: direction-free.
    key: String,
    /// The master protocol (before the dot of `proto: 91.126/TLS.Google`).
    protocol: String,
    /// After the dot: an application (`Google`) or, in `NetBIOS.SMBv1` and
    /// `STUN.RTP`, a protocol carried inside the master one; naming that
    /// one agrees too.
    inner: String,
    /// `Hostname/SNI`, when nDPI shows one.
    host: Option<String>,
    /// nDPI decided by port, not payload (`Confidence: Match by port`).
    by_port: bool,
}

/// Transport and the two endpoints (`ip:port`, IPv6 in brackets, in any
/// textual form), direction-free.
pub(crate) fn flow_key(l4: &str, a: &str, b: &str) -> String {
    let canonical = |e: &str| {
        e.parse::<SocketAddr>()
            .map_or(e.to_owned(), |s| s.to_string())
    };
    let (a, b) = (canonical(a), canonical(b));
    let (a, b) = if a <= b { (a, b) } else { (b, a) };
    format!("{l4} {a} {b}")
}

/// The text between `[name: ` and the next `]` of `line`.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!("[{name}: "))? + name.len() + 3;
    let len = line[start..].find(']')?;
    Some(&line[start..start + len])
}

fn parse_out(text: &str) -> Vec<Expected> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.next()?.parse::<u32>().ok()?;
            let l4 = words.next()?;
            let a = words.next()?;
            let arrow = words.next()?;
            if arrow != "<->" && arrow != "->" {
                return None;
            }
            let b = words.next()?;
            // `proto: 91.126/TLS.Google`, or `VXLAN:5.119/DNS.Facebook`.
            let proto = field(line, "proto")?;
            let name = proto.rsplit('/').next()?;
            let (master, app) = name.split_once('.').unwrap_or((name, ""));
            Some(Expected {
                key: flow_key(l4, a, b),
                protocol: master.to_owned(),
                inner: app.to_owned(),
                host: field(line, "Hostname/SNI").map(str::to_lowercase),
                by_port: field(line, "Confidence") == Some("Match by port"),
            })
        })
        .collect()
}

/// `ip:port` as nDPI prints it (IPv6 in brackets).
fn endpoint(ip: &Value, port: &Value) -> String {
    let ip = ip.as_str().unwrap_or_default();
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// flowstat's `flow` record of each flow, by direction-free key: the
/// first flow of that key (a later one came after flowstat's idle timeout,
/// where nDPI's flow goes on), or its updated record (detection finished
/// after an interval's end).
pub(crate) fn detected(records: &[Value]) -> HashMap<String, Value> {
    let mut flows: HashMap<String, Value> = HashMap::new();
    for r in records.iter().filter(|r| r["type"] == "flow") {
        let f = &r["flow"];
        let l4 = match f["ip_protocol"].as_u64() {
            Some(6) => "TCP",
            Some(17) => "UDP",
            Some(1) => "ICMP",
            Some(58) => "ICMPV6",
            Some(50) => "ESP",
            Some(2) => "IGMP",
            Some(89) => "OSPF",
            _ => continue,
        };
        let a = endpoint(&f["local_ip"], &f["local_port"]);
        let b = endpoint(&f["other_ip"], &f["other_port"]);
        let key = flow_key(l4, &a, &b);
        // The update's earlier digests hold the one the first record
        // carried (the identity's, or what it named while detection went
        // on).
        let update_of_first = flows.get(&key).is_some_and(|first| {
            let earlier = f["digest_prev"].as_array().map_or(&[][..], Vec::as_slice);
            f["detection_updated"] == true && earlier.contains(&first["digest"])
        });
        if update_of_first || !flows.contains_key(&key) {
            flows.insert(key, f.clone());
        }
    }
    flows
}

/// Accepted disagreements with nDPI, each with its reason:
/// `fixtures/ndpi-disagreements.tsv`.
const DISAGREEMENTS: &str = "ndpi-disagreements.tsv";

/// One flow where flowstat and nDPI disagree: on the protocol (or
/// application), or on the host name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Disagreement {
    capture: String,
    key: String,
    /// `protocol` or `host`.
    what: &'static str,
    ndpi: String,
    flowstat: String,
}

impl Disagreement {
    /// Its columns in the list.
    fn columns(&self) -> Vec<String> {
        let c = [
            &self.capture,
            &self.key,
            self.what,
            &self.ndpi,
            &self.flowstat,
        ];
        c.map(str::to_owned).to_vec()
    }
}

/// Flows compared and agreeing, for one group.
#[derive(Default)]
struct Tally {
    flows: u32,
    same: u32,
    hosts: u32,
    same_host: u32,
}

impl Tally {
    fn percent(part: u32, whole: u32) -> f64 {
        f64::from(part) * 100.0 / f64::from(whole.max(1))
    }
}

/// Every flow nDPI names in every capture of `fixtures/ndpi`: flowstat
/// names the same protocol or application (the master protocol, or what
/// nDPI names after the dot, as flowstat's protocol or application), and
/// the same host name, or the flow is in the list of accepted
/// disagreements with its reason. A disagreement missing from the list
/// fails, and so does a listed one that no longer happens (the list is
/// kept exact).
#[test]
fn protocols_and_host_names_agree_with_ndpi_or_are_listed() {
    let dir = fixture("ndpi");
    let mut captures: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures/ndpi")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_none_or(|e| e != "out"))
        .collect();
    captures.sort();
    let cfg = all_tunnels();
    let (mut all, mut old) = (Tally::default(), Tally::default());
    let mut by_protocol: BTreeMap<String, Tally> = BTreeMap::new();
    let mut found = Vec::new();
    for capture in &captures {
        let name = capture.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        let Ok(text) = std::fs::read(capture.with_file_name(format!("{name}.out"))) else {
            continue;
        };
        let ours = detected(&replay(std::slice::from_ref(capture), &cfg));
        for e in parse_out(&String::from_utf8_lossy(&text)) {
            if e.protocol == "Unknown" {
                continue;
            }
            let f = ours.get(&e.key);
            let text = |k: &str| f.and_then(|f| f[k].as_str()).unwrap_or_default();
            let (protocol, app) = (
                text("detected_protocol_name"),
                text("detected_application_name"),
            );
            let same = f.is_some()
                && (protocol == e.protocol
                    || app == e.protocol
                    || (!e.inner.is_empty() && (protocol == e.inner || app == e.inner)));
            let ndpi = if e.inner.is_empty() {
                e.protocol.clone()
            } else {
                format!("{}.{}", e.protocol, e.inner)
            };
            let groups = [
                Some(&mut all),
                COMPARED.contains(&e.protocol.as_str()).then_some(&mut old),
            ];
            let mut groups: Vec<&mut Tally> = groups.into_iter().flatten().collect();
            groups.push(by_protocol.entry(e.protocol.clone()).or_default());
            for t in groups.iter_mut() {
                t.flows += 1;
                t.same += u32::from(same);
            }
            if !same {
                found.push(Disagreement {
                    capture: name.into(),
                    key: e.key.clone(),
                    what: "protocol",
                    ndpi,
                    flowstat: match f {
                        Some(_) => format!("{protocol}/{app}"),
                        None => "no flow record".into(),
                    },
                });
            }
            let Some(host) = &e.host else { continue };
            // nDPI shows an SSH client's banner as its host name.
            let ours_host = match protocol {
                "SSH" => f.and_then(|f| f["ssh"]["client"].as_str()),
                _ => f.and_then(|f| f["host_server_name"].as_str()),
            }
            .unwrap_or_default();
            // nDPI prints each byte outside printable ASCII as `?`.
            let printed: String = ours_host
                .bytes()
                .map(|b| match b {
                    b' '..=b'~' => char::from(b),
                    _ => '?',
                })
                .collect();
            let same_host = printed.eq_ignore_ascii_case(host);
            for t in groups.iter_mut() {
                t.hosts += 1;
                t.same_host += u32::from(same_host);
            }
            if !same_host {
                found.push(Disagreement {
                    capture: name.into(),
                    key: e.key,
                    what: "host",
                    ndpi: host.clone(),
                    flowstat: ours_host.to_owned(),
                });
            }
        }
    }
    println!(
        "{:<22} {:>5} {:>5} {:>6} {:>9}",
        "nDPI protocol", "flows", "same", "hosts", "same host"
    );
    for (protocol, t) in by_protocol.iter().chain([
        (&"the 35 first protocols".to_owned(), &old),
        (&"all".to_owned(), &all),
    ]) {
        println!(
            "{protocol:<22} {:>5} {:>5} {:>6} {:>9}",
            t.flows, t.same, t.hosts, t.same_host
        );
    }
    println!(
        "agreement: {:.1}% of {} flows nDPI names ({:.1}% on the first 35 protocols), host names {:.1}% of {}",
        Tally::percent(all.same, all.flows),
        all.flows,
        Tally::percent(old.same, old.flows),
        Tally::percent(all.same_host, all.hosts),
        all.hosts
    );
    assert_listed(
        DISAGREEMENTS,
        &found.iter().map(Disagreement::columns).collect(),
    );
    assert!(all.flows >= 1000, "only {} flows compared", all.flows);
}

/// google_ssl.pcap: the server's first segment (the end of its
/// certificate message) arrives before the two it follows. The stream
/// starts where the handshake says, the segment is held until they come,
/// and the certificate is read whole.
#[test]
fn a_reordered_server_handshake_still_yields_the_certificate() {
    let records = replay(&[fixture("ndpi/google_ssl.pcap")], &Config::default());
    let flows = detected(&records);
    let [tls] = flows.values().collect::<Vec<_>>()[..] else {
        panic!("one flow expected: {flows:?}");
    };
    assert_eq!(tls["detected_protocol_name"], "TLS");
    let ssl = &tls["ssl"];
    assert_eq!(ssl["server_cn"], "www.google.com", "{ssl}");
    assert_eq!(
        ssl["issuer_dn"],
        "C=US, O=Google Inc, CN=Google Internet Authority G2"
    );
    assert_eq!(ssl["cipher_suite"], "0x0005");
}

/// `category.application` is the application's nDPI category id: the
/// same `cat: NAME/ID` nDPI prints for these flows (`TLS.Facebook
/// SocialNetwork/6`, `OpenVPN.NordVPN VPN/2`, `TLS.AmazonAWS Cloud/13`),
/// and 0 for a flow without an application. Flowstat has no protocol,
/// domain or overlay categories: those stay 0.
#[test]
fn flow_records_carry_the_application_category_id() {
    let captures = [
        "ndpi/google_ssl.pcap",
        "ndpi/http_ipv6.pcap",
        "ndpi/openvpn.pcap",
        "ndpi/tls_multiple_synack_different_seq.pcapng",
        "ndpi/dns.pcap",
    ]
    .map(fixture);
    // (application, nDPI category id): Web, SocialNetwork, Network, VPN,
    // Cloud, Chat.
    let expected: BTreeMap<&str, u64> = [
        ("Google", 5),
        ("Facebook", 6),
        ("ntop", 14),
        ("NordVPN", 2),
        ("AmazonAWS", 13),
        ("WhatsApp", 9),
    ]
    .into();
    let mut seen = BTreeMap::new();
    let mut unnamed = 0;
    let records = replay(&captures, &Config::default());
    for r in &records {
        if r["type"] != "flow" {
            continue;
        }
        let f = &r["flow"];
        let category = &f["category"];
        for other in ["domain", "overlay", "protocol"] {
            assert_eq!(category[other], 0, "{f}");
        }
        let app = f["detected_application_name"].as_str().unwrap_or_default();
        if f["detected_application"] == 0 {
            assert_eq!(category["application"], 0, "{f}");
            unnamed += 1;
            continue;
        }
        let Some(&id) = expected.get(app) else {
            panic!("{app}: no expected category for {f}");
        };
        assert_eq!(category["application"], id, "{app}: {f}");
        *seen.entry(app).or_insert(0) += 1;
    }
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "every application met: {seen:?}"
    );
    assert!(unnamed > 0, "no flow without an application");
}

#[test]
fn parses_ndpi_flow_lines() {
    let out = "\t1\tUDP 82.178.113.245:47255 <-> 82.178.158.181:53 [VLAN: 785][proto: 5.142/DNS.WhatsApp][IP: 0/Unknown][Confidence: DPI][Hostname/SNI: e7.whatsapp.net][x]\n\
               \t2\tTCP [2604:a880::1]:993 -> [2001:470::2]:35610 [proto: 51/IMAPS][Confidence: Match by port]\n\
               \t3\tUDP 10.0.0.1:1 <-> 10.0.0.2:2 [proto: VXLAN:91.119/TLS.Facebook]\n\
               Guessed flow protos:\t1\n";
    let e = parse_out(out);
    assert_eq!(e.len(), 3);
    assert_eq!(e[0].key, "UDP 82.178.113.245:47255 82.178.158.181:53");
    assert_eq!(
        (e[0].protocol.as_str(), e[0].host.as_deref(), e[0].by_port),
        ("DNS", Some("e7.whatsapp.net"), false)
    );
    assert_eq!(e[1].key, "TCP [2001:470::2]:35610 [2604:a880::1]:993");
    assert!(e[1].by_port);
    assert_eq!(e[2].protocol, "TLS");
    assert!(Path::new(&fixture("ndpi")).is_dir());
}
