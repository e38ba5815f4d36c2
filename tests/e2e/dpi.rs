//! DPI agreement with nDPI: every capture of `fixtures/ndpi` replayed, each
//! flow's `flow` record compared with nDPI's expected result (`.out`).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;

use serde_json::Value;

use flowstatd::Config;

use crate::common::{all_tunnels, fixture, replay};

/// nDPI's names of the protocols flowstat detects from payload (issue 5's
/// list); flows nDPI gives any other protocol are not compared.
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
fn flow_key(l4: &str, a: &str, b: &str) -> String {
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
fn detected(records: &[Value]) -> HashMap<String, Value> {
    let mut flows: HashMap<String, Value> = HashMap::new();
    for r in records.iter().filter(|r| r["type"] == "flow") {
        let f = &r["flow"];
        let l4 = match f["ip_protocol"].as_u64() {
            Some(6) => "TCP",
            Some(17) => "UDP",
            Some(1) => "ICMP",
            Some(58) => "ICMPV6",
            Some(50) => "ESP",
            _ => continue,
        };
        let a = endpoint(&f["local_ip"], &f["local_port"]);
        let b = endpoint(&f["other_ip"], &f["other_port"]);
        let key = flow_key(l4, &a, &b);
        let update_of_first = flows.get(&key).is_some_and(|first| {
            f["detection_updated"] == true && f["digest_prev"][0] == first["digest"]
        });
        if update_of_first || !flows.contains_key(&key) {
            flows.insert(key, f.clone());
        }
    }
    flows
}

#[derive(Default)]
struct Tally {
    flows: u32,
    same: u32,
    from_payload: u32,
    hosts: u32,
    same_host: u32,
}

#[test]
fn protocols_and_host_names_agree_with_ndpi() {
    let dir = fixture("ndpi");
    let mut captures: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures/ndpi")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_none_or(|e| e != "out"))
        .collect();
    captures.sort();
    let cfg = all_tunnels();
    let mut table: BTreeMap<String, Tally> = BTreeMap::new();
    let mut misses = Vec::new();
    let mut guessed = Vec::new();
    // Flows nDPI named from payload, and how many of them flowstat named
    // the same from payload too.
    let (mut ndpi_payload, mut both_payload) = (0u32, 0u32);
    for capture in &captures {
        let out = capture.with_file_name(format!(
            "{}.out",
            capture
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
        ));
        let Ok(text) = std::fs::read(&out) else {
            continue;
        };
        let expected = parse_out(&String::from_utf8_lossy(&text));
        let ours = detected(&replay(std::slice::from_ref(capture), &cfg));
        let name = capture.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        for e in expected
            .iter()
            .filter(|e| COMPARED.contains(&e.protocol.as_str()))
        {
            let t = table.entry(e.protocol.clone()).or_default();
            t.flows += 1;
            let Some(f) = ours.get(&e.key) else {
                misses.push(format!("{name}: {} {}: no flow record", e.key, e.protocol));
                continue;
            };
            let protocol = f["detected_protocol_name"].as_str().unwrap_or_default();
            ndpi_payload += u32::from(!e.by_port);
            if protocol == e.protocol || protocol == e.inner {
                t.same += 1;
                if f["detection_guessed"] == false {
                    t.from_payload += 1;
                    both_payload += u32::from(!e.by_port);
                } else if !e.by_port {
                    guessed.push(format!("{name}: {}: {protocol} by port only", e.key));
                }
            } else {
                misses.push(format!(
                    "{name}: {}: nDPI {}{}, flowstat {protocol}",
                    e.key,
                    e.protocol,
                    if e.by_port { " (by port)" } else { "" }
                ));
            }
            if let Some(host) = &e.host {
                t.hosts += 1;
                // nDPI shows an SSH client's banner as its host name.
                let ours = match protocol {
                    "SSH" => f["ssh"]["client"].as_str(),
                    _ => f["host_server_name"].as_str(),
                }
                .unwrap_or_default();
                if ours.eq_ignore_ascii_case(host) {
                    t.same_host += 1;
                } else {
                    misses.push(format!(
                        "{name}: {}: nDPI host {host:?}, flowstat {ours:?}",
                        e.key
                    ));
                }
            }
        }
    }
    let mut total = Tally::default();
    println!(
        "{:<14} {:>5} {:>5} {:>8} {:>6} {:>9}",
        "protocol", "flows", "same", "payload", "hosts", "same host"
    );
    for (protocol, t) in &table {
        println!(
            "{protocol:<14} {:>5} {:>5} {:>8} {:>6} {:>9}",
            t.flows, t.same, t.from_payload, t.hosts, t.same_host
        );
        total.flows += t.flows;
        total.same += t.same;
        total.from_payload += t.from_payload;
        total.hosts += t.hosts;
        total.same_host += t.same_host;
    }
    println!(
        "{:<14} {:>5} {:>5} {:>8} {:>6} {:>9}",
        "all", total.flows, total.same, total.from_payload, total.hosts, total.same_host
    );
    println!(
        "nDPI named {ndpi_payload} of them from payload; flowstat named {both_payload} of those the same, from payload"
    );
    for m in misses.iter().chain(&guessed) {
        println!("  {m}");
    }
    assert!(total.flows >= 200, "only {} flows compared", total.flows);
    assert!(
        total.same * 100 >= total.flows * 95,
        "protocol agreement {}/{} is under 95%",
        total.same,
        total.flows
    );
    assert!(
        both_payload * 100 >= ndpi_payload * 95,
        "payload agreement {both_payload}/{ndpi_payload} is under 95%"
    );
    assert!(
        total.same_host * 100 >= total.hosts * 95,
        "host name agreement {}/{} is under 95%",
        total.same_host,
        total.hosts
    );
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
