//! Golden tests: one small synthetic capture per rule of SPEC sections 2-3,
//! built here with etherparse, replayed, and compared with the expected
//! output in `tests/golden/<name>.jsonl`. Each test also asserts the values
//! that prove its rule, so a golden file cannot bless a wrong number.
//!
//! Regenerate the golden files with `FLOWSTAT_BLESS=1 cargo test -p
//! flowstat-tests golden`: that run writes them and fails, so that they
//! are reviewed (`git diff tests/golden`) and checked by a second run.
//!
//! Every host has a MAC of its own, derived from its address, so a frame's
//! two directions carry different MACs and swapped `local_mac` and
//! `other_mac` show.

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

use etherparse::{EtherType, Ethernet2Header, IpNumber, Ipv4Header, PacketBuilder};
use flowstatd::Config;
use serde_json::Value;

use crate::common::{PcapWriter, TempDir, golden_dir, replay_lines};

/// 2025-01-01T00:00:00Z, a multiple of 15 s: intervals end at T0 + 15 k s.
const T0_SECS: u64 = 1_735_689_600;

/// TCP flags for [`Capture::tcp`].
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const FIN: u8 = 0x01;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;

/// A synthetic capture under construction.
struct Capture {
    pcap: PcapWriter,
}

fn ip(s: &str) -> [u8; 4] {
    s.parse::<Ipv4Addr>().unwrap().octets()
}

/// The MAC of the host at `addr`: 02:00 then the address's four bytes.
fn mac(addr: &str) -> [u8; 6] {
    let [a, b, c, d] = ip(addr);
    [0x02, 0, a, b, c, d]
}

fn at(ms: u64) -> Duration {
    Duration::from_secs(T0_SECS) + Duration::from_millis(ms)
}

impl Capture {
    fn new() -> Self {
        Capture {
            pcap: PcapWriter::new(1),
        }
    }

    /// A UDP datagram with `payload` zero bytes, sent `ms` after T0.
    fn udp(&mut self, ms: u64, src: (&str, u16), dst: (&str, u16), payload: usize) -> &mut Self {
        let b = PacketBuilder::ethernet2(mac(src.0), mac(dst.0))
            .ipv4(ip(src.0), ip(dst.0), 64)
            .udp(src.1, dst.1);
        let mut frame = Vec::new();
        b.write(&mut frame, &vec![0; payload]).unwrap();
        self.pcap.frame(at(ms), &frame, frame.len());
        self
    }

    /// A TCP segment with `flags`, sequence number `seq` and `payload`
    /// zero bytes.
    fn tcp(
        &mut self,
        ms: u64,
        src: (&str, u16),
        dst: (&str, u16),
        seq: u32,
        flags: u8,
        payload: usize,
    ) -> &mut Self {
        self.tcp_data(ms, src, dst, seq, flags, &vec![0; payload])
    }

    /// A TCP segment with `flags`, sequence number `seq` and `payload`.
    fn tcp_data(
        &mut self,
        ms: u64,
        src: (&str, u16),
        dst: (&str, u16),
        seq: u32,
        flags: u8,
        payload: &[u8],
    ) -> &mut Self {
        let mut b = PacketBuilder::ethernet2(mac(src.0), mac(dst.0))
            .ipv4(ip(src.0), ip(dst.0), 64)
            .tcp(src.1, dst.1, seq, 65_535);
        if flags & SYN != 0 {
            b = b.syn();
        }
        if flags & ACK != 0 {
            b = b.ack(1);
        }
        if flags & FIN != 0 {
            b = b.fin();
        }
        if flags & RST != 0 {
            b = b.rst();
        }
        if flags & PSH != 0 {
            b = b.psh();
        }
        let mut frame = Vec::new();
        b.write(&mut frame, payload).unwrap();
        self.pcap.frame(at(ms), &frame, frame.len());
        self
    }

    /// A UDP datagram of 10 zero bytes over IPv6, `ms` after T0.
    fn udp6(&mut self, ms: u64, src: (&str, u16), dst: (&str, u16)) -> &mut Self {
        let ip6 = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 6], [2, 0, 0, 0, 0, 7])
            .ipv6(ip6(src.0), ip6(dst.0), 64)
            .udp(src.1, dst.1);
        let mut frame = Vec::new();
        b.write(&mut frame, &[0; 10]).unwrap();
        self.pcap.frame(at(ms), &frame, frame.len());
        self
    }

    /// A UDP datagram of 10 zero bytes in VLAN `vlan`, `ms` after T0.
    fn udp_vlan(&mut self, ms: u64, vlan: u16, src: (&str, u16), dst: (&str, u16)) -> &mut Self {
        let b = PacketBuilder::ethernet2(mac(src.0), mac(dst.0))
            .single_vlan(vlan.try_into().unwrap())
            .ipv4(ip(src.0), ip(dst.0), 64)
            .udp(src.1, dst.1);
        let mut frame = Vec::new();
        b.write(&mut frame, &[0; 10]).unwrap();
        self.pcap.frame(at(ms), &frame, frame.len());
        self
    }

    /// One IPv4 fragment `(id, offset, more)` of a UDP datagram: `data` is
    /// the fragment's part of the IP payload, at `offset` 8-byte units.
    fn fragment(
        &mut self,
        ms: u64,
        src: &str,
        dst: &str,
        (id, offset, more): (u16, u16, bool),
        data: &[u8],
    ) -> &mut Self {
        let mut iph =
            Ipv4Header::new(data.len() as u16, 64, IpNumber::UDP, ip(src), ip(dst)).unwrap();
        iph.identification = id;
        iph.more_fragments = more;
        iph.fragment_offset = offset.try_into().unwrap();
        iph.header_checksum = iph.calc_header_checksum();
        let mut frame = Vec::new();
        Ethernet2Header {
            source: mac(src),
            destination: mac(dst),
            ether_type: EtherType::IPV4,
        }
        .write(&mut frame)
        .unwrap();
        iph.write(&mut frame).unwrap();
        frame.extend_from_slice(data);
        self.pcap.frame(at(ms), &frame, frame.len());
        self
    }

    /// Writes the capture as `<name>.pcap`, replays it with `cfg`, and
    /// compares the output with `tests/golden/<name>.jsonl`.
    fn check(&self, name: &str, cfg: &Config) -> Vec<Value> {
        let tmp = TempDir::new(&format!("golden-{name}"));
        let path = tmp.path(&format!("{name}.pcap"));
        self.pcap.write(&path);
        let lines = replay_lines(&[path], cfg);
        let text = lines.join("\n") + "\n";
        let golden = golden_dir().join(format!("{name}.jsonl"));
        if std::env::var_os("FLOWSTAT_BLESS").is_some_and(|v| v == "1") {
            std::fs::create_dir_all(golden_dir()).unwrap();
            std::fs::write(&golden, &text).unwrap();
            panic!(
                "blessed {}: review it (git diff tests/golden), then run again without \
                 FLOWSTAT_BLESS",
                golden.display()
            );
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_else(|_| {
            panic!(
                "{} missing: run with FLOWSTAT_BLESS=1 and review it",
                golden.display()
            )
        });
        assert!(
            text == want,
            "output differs from {}; if the change is intended, rerun with FLOWSTAT_BLESS=1\n--- got\n{text}",
            golden.display()
        );
        lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn of_type<'a>(records: &'a [Value], t: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["type"] == t).collect()
}

fn config(toml: &str) -> Config {
    Config::parse(toml, std::path::Path::new("golden.toml")).unwrap()
}

#[test]
fn orientation_lower_upper_and_client() {
    // The client has the higher address and port; the server speaks first
    // after the handshake. Both are private: the client is the local side.
    let (c, s) = (("10.1.1.200", 51000), ("10.1.1.10", 22));
    let mut cap = Capture::new();
    cap.tcp(0, c, s, 100, SYN, 0)
        .tcp(1, s, c, 900, SYN | ACK, 0)
        .tcp(2, c, s, 101, ACK, 0)
        .tcp(3, s, c, 901, ACK | PSH, 21)
        .tcp(4, c, s, 101, ACK | PSH, 30)
        .tcp(5, c, s, 131, FIN | ACK, 0)
        .tcp(6, s, c, 922, FIN | ACK, 0)
        .tcp(7, c, s, 132, ACK, 0);
    let out = cap.check("orientation", &Config::default());
    let purge = of_type(&out, "flow_purge");
    assert_eq!(purge.len(), 1);
    let f = &purge[0]["flow"];
    assert_eq!(
        (f["local_ip"].as_str(), f["local_port"].as_u64()),
        (Some("10.1.1.200"), Some(51000))
    );
    assert_eq!(f["local_origin"], true);
    assert_eq!(purge[0]["reason"], "closed");
    assert_eq!(
        (
            f["total_local_packets"].as_u64(),
            f["total_other_packets"].as_u64()
        ),
        (Some(5), Some(3))
    );
    let flow = &of_type(&out, "flow")[0]["flow"];
    assert_eq!(flow["other_type"], "local");
    assert_eq!(flow["detected_protocol_name"], "SSH");
    // The client's frames come from its MAC, the server's from its own.
    assert_eq!(
        (&flow["local_mac"], &flow["other_mac"]),
        (&"02:00:0a:01:01:c8".into(), &"02:00:0a:01:01:0a".into())
    );
}

#[test]
fn local_and_other_classification() {
    let mut cap = Capture::new();
    cap.udp(0, ("192.168.1.5", 40000), ("8.8.8.8", 53), 30) // private -> public
        .udp(1, ("8.8.4.4", 53), ("192.168.1.5", 40001), 60) // public speaks first
        .udp(2, ("192.168.1.5", 5353), ("224.0.0.251", 5353), 40) // multicast
        .udp(3, ("0.0.0.0", 68), ("255.255.255.255", 67), 300) // broadcast
        .udp(4, ("203.0.113.9", 40002), ("198.51.100.1", 9999), 10) // local network -> public
        .udp(5, ("192.168.1.5", 40003), ("10.9.9.9", 9999), 10) // both private
        .udp(6, ("198.51.100.7", 40004), ("192.168.1.5", 53), 10); // a public client
    let out = cap.check(
        "local_other",
        &config("[agent]\nlocal_networks = [\"203.0.113.0/24\"]\n"),
    );
    let flows: Vec<(String, String, String, bool)> = of_type(&out, "flow")
        .iter()
        .map(|r| {
            let f = &r["flow"];
            (
                f["local_ip"].as_str().unwrap().to_owned(),
                f["other_ip"].as_str().unwrap().to_owned(),
                f["other_type"].as_str().unwrap().to_owned(),
                f["local_origin"].as_bool().unwrap(),
            )
        })
        .collect();
    let want = [
        ("192.168.1.5", "8.8.8.8", "remote", true),
        ("192.168.1.5", "8.8.4.4", "remote", true),
        ("192.168.1.5", "224.0.0.251", "multicast", true),
        ("0.0.0.0", "255.255.255.255", "broadcast", true),
        ("203.0.113.9", "198.51.100.1", "remote", true),
        ("192.168.1.5", "10.9.9.9", "local", true),
        // The client is the public side: the local side did not originate.
        ("192.168.1.5", "198.51.100.7", "remote", false),
    ];
    for w in want {
        let w = (w.0.to_owned(), w.1.to_owned(), w.2.to_owned(), w.3);
        assert!(flows.contains(&w), "{w:?} not in {flows:?}");
    }
}

/// SHA-1 of `bytes` by the system's sha1sum: an oracle independent of the
/// crate flowstat uses.
fn sha1sum(bytes: &[u8]) -> String {
    let tmp = TempDir::new("sha1");
    let path = tmp.path("bytes");
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new("sha1sum")
        .arg(&path)
        .output()
        .expect("sha1sum (coreutils)");
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn digest_covers_the_spec_bytes() {
    let mut cap = Capture::new();
    cap.udp(0, ("10.0.0.2", 5353), ("10.0.0.1", 40000), 20);
    let out = cap.check("digest", &Config::default());
    // interface, ip_version, ip_protocol, vlan (BE), lower addr, upper
    // addr, lower port (BE), upper port (BE).
    let mut bytes = b"digest.pcap".to_vec();
    bytes.extend_from_slice(&[4, 17, 0, 0]);
    bytes.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
    bytes.extend_from_slice(&40000u16.to_be_bytes());
    bytes.extend_from_slice(&5353u16.to_be_bytes());
    let first = sha1sum(&bytes);
    // Detection added MDNS (id 8), no application, no host name.
    bytes.extend_from_slice(&8u16.to_be_bytes());
    bytes.extend_from_slice(&0u32.to_be_bytes());
    let detected = sha1sum(&bytes);
    for r in of_type(&out, "flow")
        .iter()
        .chain(&of_type(&out, "flow_purge"))
    {
        assert_eq!(r["flow"]["digest_prev"], serde_json::json!([first]));
        assert_eq!(r["flow"]["digest"], detected);
    }
}

/// The SPEC's digest bytes of a flow on `iface`: ip version, protocol,
/// VLAN, the lower address and the upper one, then their ports; with
/// `detected` (protocol id, application id, host name) after them.
fn digest_bytes(
    iface: &str,
    (version, protocol, vlan): (u8, u8, u16),
    (lower, lower_port): (&[u8], u16),
    (upper, upper_port): (&[u8], u16),
    detected: Option<(u16, u32, &str)>,
) -> String {
    let mut bytes = iface.as_bytes().to_vec();
    bytes.extend_from_slice(&[version, protocol]);
    bytes.extend_from_slice(&vlan.to_be_bytes());
    bytes.extend_from_slice(lower);
    bytes.extend_from_slice(upper);
    bytes.extend_from_slice(&lower_port.to_be_bytes());
    bytes.extend_from_slice(&upper_port.to_be_bytes());
    if let Some((protocol, application, host)) = detected {
        bytes.extend_from_slice(&protocol.to_be_bytes());
        bytes.extend_from_slice(&application.to_be_bytes());
        bytes.extend_from_slice(host.as_bytes());
    }
    sha1sum(&bytes)
}

#[test]
fn digests_of_ipv6_vlan_host_application_and_twice_changed_flows() {
    const HTTP: u16 = 7;
    const GOOGLE: u32 = 126;
    let get = b"GET / HTTP/1.1\r\nHost: www.google.com\r\nUser-Agent: test\r\n\r\n";
    let (c, s) = (("10.0.0.2", 40001), ("10.0.0.1", 80));
    let (c2, s2) = (("10.0.0.2", 40002), ("10.0.0.1", 80));
    let mut cap = Capture::new();
    cap.udp6(0, ("2001:db8::2", 40000), ("2001:db8::1", 9999))
        .udp_vlan(1, 42, ("10.0.0.2", 40000), ("10.0.0.1", 9999))
        // Detected in its first interval: host and application.
        .tcp(2, c, s, 100, SYN, 0)
        .tcp(3, s, c, 900, SYN | ACK, 0)
        .tcp(4, c, s, 101, ACK, 0)
        .tcp_data(5, c, s, 101, ACK | PSH, get)
        // Reported at 15 s, still being detected (HTTP by its port), then
        // detected at 16 s: its digest changes twice.
        .tcp(6, c2, s2, 100, SYN, 0)
        .tcp(7, s2, c2, 900, SYN | ACK, 0)
        .tcp(8, c2, s2, 101, ACK, 0)
        .tcp_data(16_000, c2, s2, 101, ACK | PSH, get);
    let out = cap.check("digests", &Config::default());
    let iface = "digests.pcap";
    let v6 = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
    let (low6, up6) = (v6("2001:db8::1"), v6("2001:db8::2"));
    let (low, up) = (ip("10.0.0.1"), ip("10.0.0.2"));
    let base = |port: u16| digest_bytes(iface, (4, 6, 0), (&low, 80), (&up, port), None);
    let host = |port: u16| {
        let detected = Some((HTTP, GOOGLE, "www.google.com"));
        digest_bytes(iface, (4, 6, 0), (&low, 80), (&up, port), detected)
    };
    let by_port = |port: u16| {
        digest_bytes(
            iface,
            (4, 6, 0),
            (&low, 80),
            (&up, port),
            Some((HTTP, 0, "")),
        )
    };
    // (local port, digest, digest_prev) of every flow_purge.
    let want = [
        (
            40000,
            digest_bytes(iface, (6, 17, 0), (&low6, 9999), (&up6, 40000), None),
            vec![],
        ),
        (
            40000,
            digest_bytes(iface, (4, 17, 42), (&low, 9999), (&up, 40000), None),
            vec![],
        ),
        (40001, host(40001), vec![base(40001)]),
        (40002, host(40002), vec![base(40002), by_port(40002)]),
    ];
    let purges: Vec<(u64, String, Vec<String>)> = of_type(&out, "flow_purge")
        .iter()
        .map(|r| {
            let f = &r["flow"];
            let prev = f["digest_prev"].as_array().unwrap();
            (
                f["local_port"].as_u64().unwrap(),
                f["digest"].as_str().unwrap().to_owned(),
                prev.iter()
                    .map(|d| d.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect();
    for w in &want {
        assert!(purges.contains(w), "{w:?} not in {purges:?}");
    }
    // Each flow record carries the digest of what it says: the twice
    // changed flow's first one names HTTP by its port, the second adds
    // the host and the application.
    let flows: Vec<(&Value, &Value, &Value)> = of_type(&out, "flow")
        .iter()
        .filter(|r| r["flow"]["local_port"] == 40002)
        .map(|r| {
            let f = &r["flow"];
            (
                &f["digest"],
                &f["detected_application"],
                &f["host_server_name"],
            )
        })
        .collect();
    assert_eq!(
        flows,
        [
            (&by_port(40002).into(), &0.into(), &"".into()),
            (
                &host(40002).into(),
                &GOOGLE.into(),
                &"www.google.com".into()
            )
        ]
    );
}

#[test]
fn intervals_report_deltas_and_totals_accumulate() {
    // Packets at 1 s, 2 s, 16 s and 50 s; intervals end at 15, 30, 45 s.
    let (a, b) = (("10.0.0.2", 40000), ("10.0.0.1", 9999));
    let mut cap = Capture::new();
    cap.udp(1_000, a, b, 100)
        .udp(2_000, b, a, 200)
        .udp(16_000, a, b, 300)
        .udp(50_000, a, b, 400);
    let out = cap.check("intervals", &Config::default());
    let stats = of_type(&out, "flow_stats");
    assert_eq!(stats.len(), 2, "one per interval with packets");
    let local = |r: &Value| r["flow"]["local_packets"].as_u64().unwrap();
    assert_eq!((local(stats[0]), local(stats[1])), (1, 1));
    assert_eq!(stats[0]["flow"]["other_packets"], 1);
    assert_eq!(stats[1]["flow"]["total_packets"], 3);
    // Silence from 16 s to 50 s (34 s > ttl_idle_flow 30 s) does not expire
    // the flow before the 45 s tick, which is at most 29 s after 16 s.
    let purge = of_type(&out, "flow_purge");
    assert_eq!(purge.len(), 1);
    let sum: u64 = stats
        .iter()
        .chain(&purge)
        .map(|r| r["flow"]["local_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, purge[0]["flow"]["total_local_bytes"].as_u64().unwrap());
    assert_eq!(
        of_type(&out, "agent_status").len(),
        4,
        "ends at 15, 30, 45 s and the end of the file"
    );
    assert_eq!(of_type(&out, "agent_status")[2]["timestamp"], T0_SECS + 45);
}

#[test]
fn rates_average_over_seconds_with_traffic() {
    let (a, b) = (("10.0.0.2", 40000), ("10.0.0.1", 9999));
    let mut cap = Capture::new();
    // Local side: 2 frames in second 1, 1 frame in second 3 (60-byte UDP
    // payload: 102-byte frames): 306 bytes over 2 slots.
    cap.udp(1_000, a, b, 60)
        .udp(1_900, a, b, 60)
        .udp(3_000, a, b, 60)
        .udp(3_500, b, a, 10);
    let out = cap.check("rates", &Config::default());
    let f = &of_type(&out, "flow_purge")[0]["flow"];
    assert_eq!(f["local_bytes"], 306);
    assert_eq!(f["local_rate"], 153);
    assert_eq!(f["other_rate"], 52);
}

#[test]
fn tcp_counter_cases() {
    let (c, s) = (("10.0.0.2", 40000), ("10.0.0.1", 80));
    let mut cap = Capture::new();
    cap.tcp(0, c, s, 1000, SYN, 0)
        .tcp(500, c, s, 1000, SYN, 0) // the SYN again: retransmission
        .tcp(501, s, c, 5000, SYN | ACK, 0)
        .tcp(502, c, s, 1001, ACK, 100) // in order, next 1101; round trip 2 ms
        .tcp(1_000, c, s, 1001, ACK, 100) // sent again: retransmission
        .tcp(1_001, c, s, 1201, ACK, 100) // gap: seq error, next 1301
        .tcp(1_002, c, s, 1101, ACK, 100) // fills it within 2 ms: out of order, seq error
        .tcp(2_000, c, s, 1251, ACK, 100) // partial overlap: retransmission, next 1351
        .tcp(2_001, c, s, 1350, ACK, 0) // keep-alive at next - 1: nothing
        .tcp(2_002, c, s, 1200, ACK, 0) // empty and behind: nothing
        .tcp(16_000, c, s, 1351, ACK | PSH, 10) // next interval: clean
        .tcp(16_001, s, c, 5001, RST, 0); // reset
    let out = cap.check("tcp_counters", &Config::default());
    let stats = of_type(&out, "flow_stats");
    assert_eq!(
        stats[0]["flow"]["tcp"],
        serde_json::json!({"local_flags": SYN | ACK, "other_flags": SYN | ACK,
            "resets": 0, "retrans": 3, "seq_errors": 2}),
        "the client (local) sent SYN and ACKs, the server SYN+ACK"
    );
    let purge = of_type(&out, "flow_purge");
    assert_eq!(
        purge[0]["flow"]["tcp"],
        serde_json::json!({"local_flags": ACK | PSH, "other_flags": RST,
            "resets": 1, "retrans": 0, "seq_errors": 0}),
        "flags are per interval: this one's ACK+PSH and the RST"
    );
    assert_eq!(
        purge[0]["flow"]["tcp_total"],
        serde_json::json!({"resets": 1, "retrans": 3, "seq_errors": 2}),
        "the purge's totals hold both intervals"
    );
    assert_eq!(purge[0]["reason"], "closed");
    let iface = of_type(&out, "interface_stats");
    assert_eq!(iface[0]["tcp_counters.pcap"]["tcp_seq_errors"], 2);
    assert_eq!(iface[1]["tcp_counters.pcap"]["tcp_resets"], 1);
}

#[test]
fn idle_and_closed_timeouts() {
    let (c, s) = (("10.0.0.2", 40000), ("10.0.0.1", 80));
    let udp = (("10.0.0.2", 40001), ("10.0.0.1", 9999));
    let closed = (("10.0.0.2", 40002), ("10.0.0.1", 443));
    let mut cap = Capture::new();
    cap.udp(1_000, udp.0, udp.1, 10)
        .tcp(1_000, c, s, 1, ACK, 10)
        .tcp(1_000, closed.0, closed.1, 1, FIN | ACK, 0)
        .tcp(1_001, closed.1, closed.0, 1, FIN | ACK, 0)
        // A packet of another flow keeps time moving to 400 s.
        .udp(400_000, ("10.0.0.3", 1), ("10.0.0.4", 2), 10);
    let out = cap.check("timeouts", &Config::default());
    let purged: Vec<(u64, &str, u64)> = of_type(&out, "flow_purge")
        .iter()
        .map(|r| {
            let f = &r["flow"];
            (
                f["local_port"].as_u64().unwrap(),
                r["reason"].as_str().unwrap(),
                f["last_seen_at"].as_u64().unwrap(),
            )
        })
        .collect();
    // Closed TCP: the first tick after 10 s of quiet (15 s). The silent gap
    // up to 400 s ends the intervals at 15 s and 390 s only, so UDP (30 s
    // idle) and open TCP (300 s idle) both go at 390 s, last seen at the
    // same instant: in key order, TCP (protocol 6) first. The last flow is
    // purged at the end of the file.
    let order: Vec<(u64, &str)> = purged.iter().map(|p| (p.0, p.1)).collect();
    assert_eq!(
        order,
        [
            (40002, "closed"),
            (40000, "expired"),
            (40001, "expired"),
            (1, "expired")
        ]
    );
    let status = of_type(&out, "agent_status");
    let times: Vec<u64> = status
        .iter()
        .map(|r| r["timestamp"].as_u64().unwrap() - T0_SECS)
        .collect();
    assert_eq!(times, [15, 390, 400]);
    let closed_at = |i: usize| status[i]["flows_purged"].as_u64().unwrap();
    assert_eq!((closed_at(0), closed_at(1), closed_at(2)), (1, 2, 1));
}

#[test]
fn eviction_pushes_out_the_least_recently_seen_flow() {
    let mut cap = Capture::new();
    let server = ("10.0.0.1", 9999);
    cap.udp(0, ("10.0.0.2", 2000), server, 10)
        .udp(1, ("10.0.0.3", 2000), server, 10)
        .udp(2, ("10.0.0.2", 2000), server, 10) // refreshes the first flow
        .udp(3, ("10.0.0.4", 2000), server, 10); // evicts 10.0.0.3
    let out = cap.check("eviction", &config("[flows]\nmax_flows = 2\n"));
    let purge = of_type(&out, "flow_purge");
    assert_eq!(purge[0]["evicted"], true);
    assert_eq!(purge[0]["reason"], "expired");
    assert_eq!(purge[0]["flow"]["local_ip"], "10.0.0.3");
    assert!(purge[1..].iter().all(|r| r["evicted"] == false));
    assert_eq!(of_type(&out, "agent_status")[0]["flows_evicted"], 1);
}

#[test]
fn fragments_join_their_datagram_in_any_order() {
    // One 1000-byte UDP datagram (8-byte header + 992 bytes) in three
    // fragments, the last sent first; then a fragment whose first fragment
    // never comes.
    let mut dgram = Vec::new();
    etherparse::UdpHeader {
        source_port: 40000,
        destination_port: 53,
        length: 1000,
        checksum: 0,
    }
    .write(&mut dgram)
    .unwrap();
    dgram.resize(1000, 7);
    let (src, dst) = ("10.0.0.2", "10.0.0.1");
    let mut cap = Capture::new();
    cap.fragment(0, src, dst, (77, 100, false), &dgram[800..])
        .fragment(1, src, dst, (77, 0, true), &dgram[..400])
        .fragment(2, src, dst, (77, 50, true), &dgram[400..800])
        .fragment(3, src, dst, (78, 50, false), &dgram[400..800]);
    let out = cap.check("fragments", &Config::default());
    let f = &of_type(&out, "flow_purge")[0]["flow"];
    assert_eq!(f["local_port"], 40000);
    assert_eq!(f["total_local_packets"], 3);
    assert_eq!(f["total_local_bytes"], (14 + 20) * 3 + 1000);
    // The flow began with the last fragment, sent first.
    assert_eq!(f["first_seen_at"], T0_SECS * 1000);
    let iface = &of_type(&out, "interface_stats")[0]["fragments.pcap"];
    assert_eq!(iface["fragmented"], 4);
    assert_eq!(iface["udp"], 1, "only the first fragment carries UDP");
    assert_eq!(iface["discarded"], 1);
    assert_eq!(iface["discarded_bytes"], 14 + 20 + 400);
}
