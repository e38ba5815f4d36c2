//! The IPFIX sink against real collectors, on loopback: nfcapd (Debian's
//! nfdump) must store every flow with the per-direction totals of the
//! replay's `flow_purge` records and the TCP flags of its records, and tshark must decode every message,
//! IPFIX and NetFlow v9, without a malformed field or an expert notice.

use std::collections::BTreeMap;
use std::net::{IpAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use flowstatd::Config;
use serde_json::Value;

use crate::common::{PcapWriter, TempDir, fixture, flowstatd, oracle, replay_lines};

/// Captures with flows both ways, IPv4 and IPv6, VLAN-tagged ones, and
/// flows alive for minutes (SIP, SSH, syslog).
const CAPTURES: [&str; 7] = [
    "ndpi/sip.pcap",
    "ndpi/ssh.pcap",
    "ndpi/syslog.pcap",
    "ndpi/http_ipv6.pcap",
    "ndpi/kerberos.pcap",
    "ndpi/openvpn.pcap",
    "ndpi/snmp.pcap",
];

/// The active timeout the tests export with: short enough that the long
/// flows of [`CAPTURES`] are cut into several records.
const ACTIVE_TIMEOUT_SECS: u64 = 30;

fn captures() -> Vec<PathBuf> {
    CAPTURES.iter().map(|c| fixture(c)).collect()
}

/// A flow as collectors key it: client address, server address, client
/// port, server port, IP protocol, VLAN.
type Key = (IpAddr, IpAddr, u64, u64, u64, u64);

/// Per flow: packets and bytes from the client, packets and bytes from
/// the server, and the TCP flags nfdump shows.
type Totals = BTreeMap<Key, [u64; 5]>;

/// The TCP flags nfdump shows for a flow that sent `client` and `server`:
/// IPFIX's tcpControlBits, the client's (nfdump reads the server's reverse
/// element into the same field, and the client's comes after it),
/// NetFlow v9's TCP_FLAGS both sides'.
fn shown_flags(version: u16, client: u64, server: u64) -> u64 {
    if version == 9 {
        client | server
    } else {
        client
    }
}

/// The totals of the `flow_purge` records of replaying `files`, oriented
/// as the sink exports them (the client is the source), with the TCP
/// flags of all the flow's records as `version` carries them.
fn purge_totals(files: &[PathBuf], version: u16) -> Totals {
    let records: Vec<Value> = replay_lines(files, &Config::default())
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    // A flow's records share their first digest.
    let first_digest = |f: &Value| f["digest_prev"].get(0).unwrap_or(&f["digest"]).clone();
    let mut flags: BTreeMap<String, [u64; 2]> = BTreeMap::new();
    for r in &records {
        let tcp = &r["flow"]["tcp"];
        if tcp.is_object() && r["type"] != "flow" {
            let e = flags
                .entry(first_digest(&r["flow"]).to_string())
                .or_default();
            e[0] |= tcp["local_flags"].as_u64().unwrap();
            e[1] |= tcp["other_flags"].as_u64().unwrap();
        }
    }
    let mut out = Totals::new();
    for r in &records {
        if r["type"] != "flow_purge" {
            continue;
        }
        let f = &r["flow"];
        let [local_flags, other_flags] = flags
            .get(&first_digest(f).to_string())
            .copied()
            .unwrap_or_default();
        let side = |s: &str| {
            let ip: IpAddr = f[format!("{s}_ip")].as_str().unwrap().parse().unwrap();
            let port = f[format!("{s}_port")].as_u64().unwrap();
            let packets = f[format!("total_{s}_packets")].as_u64().unwrap();
            let bytes = f[format!("total_{s}_bytes")].as_u64().unwrap();
            (ip, port, packets, bytes)
        };
        let (local, other) = (side("local"), side("other"));
        let (client_flags, server_flags) = if f["local_origin"] == true {
            (local_flags, other_flags)
        } else {
            (other_flags, local_flags)
        };
        let (c, s) = if f["local_origin"] == true {
            (local, other)
        } else {
            (other, local)
        };
        let key = (
            c.0,
            s.0,
            c.1,
            s.1,
            f["ip_protocol"].as_u64().unwrap(),
            f["vlan_id"].as_u64().unwrap(),
        );
        let t = out.entry(key).or_default();
        for (sum, n) in t.iter_mut().zip([c.2, c.3, s.2, s.3]) {
            *sum += n;
        }
        t[4] |= shown_flags(version, client_flags, server_flags);
    }
    out
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
fn free_udp_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    s.local_addr().unwrap().port()
}

/// What the kernel says of the UDP socket bound to 127.0.0.1:`port`:
/// bytes waiting to be read, and datagrams dropped for want of room.
fn udp_queue(port: u16) -> Option<(u64, u64)> {
    let table = std::fs::read_to_string("/proc/net/udp").unwrap();
    let local = format!("0100007F:{port:04X}");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) != Some(&local.as_str()) {
            return None;
        }
        let rx = fields[4].split(':').nth(1)?;
        let drops = fields.last()?.parse().ok()?;
        Some((u64::from_str_radix(rx, 16).ok()?, drops))
    })
}

/// Waits (at most 10 s) until the socket on `port` has been read empty;
/// fails if it dropped datagrams.
fn wait_read(port: u16, who: &str) {
    let start = Instant::now();
    loop {
        let (queued, drops) = udp_queue(port).unwrap_or_else(|| panic!("{who}: no socket"));
        assert_eq!(drops, 0, "{who}'s socket dropped {drops} datagrams");
        if queued == 0 {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{who} left {queued} bytes unread"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `flowstatd replay -c CONFIG CAPTURES` with one IPFIX sink of `version`
/// sending to 127.0.0.1:`port`.
fn replay_to(dir: &TempDir, port: u16, version: u16) {
    let cfg = dir.path("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[sink]]\ntype = \"ipfix\"\ncollector = \"127.0.0.1:{port}\"\nversion = {version}\n\
             active_timeout_secs = {ACTIVE_TIMEOUT_SECS}\n"
        ),
    )
    .unwrap();
    let out = Command::new(flowstatd())
        .args(["replay", "-c"])
        .arg(&cfg)
        .args(captures())
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// nfcapd listening on 127.0.0.1, writing into a directory; killed if the
/// test ends without [`Nfcapd::stop`].
struct Nfcapd {
    child: Option<Child>,
    port: u16,
}

impl Nfcapd {
    fn start(dir: &Path) -> Self {
        let port = free_udp_port();
        let child = Command::new("nfcapd")
            .args(["-b", "127.0.0.1", "-p", &port.to_string(), "-w"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("nfcapd (Debian's nfdump) is the test's collector ({e}): run .ci/deps test")
            });
        let mut n = Nfcapd {
            child: Some(child),
            port,
        };
        // Bound once the kernel lists its socket.
        let start = Instant::now();
        while udp_queue(port).is_none() {
            let exited = n.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            assert!(exited.is_none(), "nfcapd exited: {exited:?}");
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nfcapd did not bind"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        n
    }

    /// Once nfcapd has read every datagram, stops it (it then writes its
    /// file); its log.
    fn stop(mut self) -> String {
        wait_read(self.port, "nfcapd");
        let child = self.child.take().unwrap();
        let pid = child.id().to_string();
        oracle("kill", &["-TERM", &pid]);
        let out = child.wait_with_output().unwrap();
        let mut log = String::from_utf8_lossy(&out.stdout).into_owned();
        log.push_str(&String::from_utf8_lossy(&out.stderr));
        log
    }
}

impl Drop for Nfcapd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// nfdump's `tcp_flags` text ("...AP.SF": CWR ECE URG ACK PSH RST SYN
/// FIN, a dot where unset) as the flags byte.
fn flags_byte(text: &str) -> u64 {
    assert_eq!(text.len(), 8, "tcp_flags {text:?}");
    text.bytes()
        .fold(0, |byte, c| byte << 1 | u64::from(c != b'.'))
}

/// What nfdump reads from the files in `dir`: per flow, summed over its
/// records (flags OR-ed), and the number of records.
fn nfdump_totals(dir: &Path) -> (Totals, usize) {
    let text = oracle("nfdump", &["-R", &dir.to_string_lossy(), "-o", "json"]);
    let records: Vec<Value> = serde_json::from_str(&text).expect("nfdump -o json is JSON");
    let mut out = Totals::new();
    for r in &records {
        let addr = |v4: &str, v6: &str| -> IpAddr {
            r[v4].as_str().or(r[v6].as_str()).unwrap().parse().unwrap()
        };
        let n = |k: &str| r[k].as_u64().unwrap_or(0);
        let key = (
            addr("src4_addr", "src6_addr"),
            addr("dst4_addr", "dst6_addr"),
            n("src_port"),
            n("dst_port"),
            n("proto"),
            n("src_vlan"),
        );
        let t = out.entry(key).or_default();
        for (sum, k) in t
            .iter_mut()
            .zip(["in_packets", "in_bytes", "out_packets", "out_bytes"])
        {
            *sum += n(k);
        }
        t[4] |= flags_byte(r["tcp_flags"].as_str().unwrap());
    }
    (out, records.len())
}

/// The first differences between `want` and `got`, for a message.
fn differences(want: &Totals, got: &Totals) -> String {
    let keys = want.keys().chain(got.keys());
    let diff: Vec<String> = keys
        .filter(|k| want.get(k) != got.get(k))
        .take(5)
        .map(|k| format!("{k:?}: replay {:?}, nfdump {:?}", want.get(k), got.get(k)))
        .collect();
    diff.join("\n")
}

#[test]
fn nfcapd_stores_every_flow_with_the_replays_per_direction_totals_and_tcp_flags() {
    for version in [10, 9] {
        let want = purge_totals(&captures(), version);
        assert!(want.len() > 80, "{} flows", want.len());
        assert!(want.keys().any(|k| k.0.is_ipv6()) && want.keys().any(|k| k.5 != 0));
        assert!(want.values().any(|t| t[4] != 0), "flows with TCP flags");
        let dir = TempDir::new(&format!("ipfix-nfcapd-{version}"));
        let flows = dir.path("flows");
        std::fs::create_dir(&flows).unwrap();
        let nfcapd = Nfcapd::start(&flows);
        replay_to(&dir, nfcapd.port, version);
        let log = nfcapd.stop();
        assert!(
            log.contains("Sequence Errors: 0, Bad Packets: 0"),
            "version {version}: {log}"
        );
        let (got, records) = nfdump_totals(&flows);
        assert!(
            got == want,
            "version {version}: nfdump's flows differ from the replay's purges:\n{}",
            differences(&want, &got)
        );
        // Long flows came in parts (active timeout), which added up.
        assert!(
            records > want.len() + 10,
            "version {version}: {records} records for {} flows",
            want.len()
        );
    }
}

/// The sink's messages to a socket of the test's: `version`'s messages,
/// in order, and the port they were sent to.
fn exported_messages(dir: &TempDir, version: u16) -> (Vec<Vec<u8>>, u16) {
    let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = collector.local_addr().unwrap().port();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            collector
                .set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let mut got = Vec::new();
            let mut buf = vec![0; 65_536];
            while !done.load(Ordering::Acquire) {
                if let Ok(len) = collector.recv(&mut buf) {
                    got.push(buf[..len].to_vec());
                }
            }
            got
        })
    };
    replay_to(dir, port, version);
    // Every message is in the socket once the replay is done: read out.
    wait_read(port, "the test's collector");
    done.store(true, Ordering::Release);
    (reader.join().unwrap(), port)
}

/// Writes `messages` to `path` as UDP datagrams to 127.0.0.1:`port`.
fn write_pcap(path: &Path, messages: &[Vec<u8>], port: u16) {
    let mut pcap = PcapWriter::new(1);
    for (i, m) in messages.iter().enumerate() {
        let mut frame = Vec::new();
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64)
            .udp(40_000, port)
            .write(&mut frame, m)
            .unwrap();
        pcap.frame(Duration::from_millis(i as u64), &frame, frame.len());
    }
    pcap.write(path);
}

/// The sum of the numbers of a `-E occurrence=a` field.
fn sum(field: &str) -> u64 {
    field
        .split(',')
        .filter(|n| !n.is_empty())
        .map(|n| n.parse::<u64>().unwrap())
        .sum()
}

#[test]
fn tshark_decodes_every_message_without_a_malformed_field() {
    for version in [10, 9] {
        let want = purge_totals(&captures(), version);
        let [packets, bytes] = want
            .values()
            .fold([0; 2], |[p, b], t| [p + t[0] + t[2], b + t[1] + t[3]]);
        let dir = TempDir::new(&format!("ipfix-tshark-{version}"));
        let (messages, port) = exported_messages(&dir, version);
        let pcap = dir.path("export.pcap");
        write_pcap(&pcap, &messages, port);
        let pcap = pcap.to_string_lossy();
        let decode = format!("udp.port=={port},cflow");
        let bad = oracle(
            "tshark",
            &[
                "-r",
                &pcap,
                "-d",
                &decode,
                "-Y",
                "_ws.malformed || _ws.expert",
            ],
        );
        assert!(bad.is_empty(), "version {version}: tshark found:\n{bad}");
        // v9 names the reverse counters post_*; IPFIX's reverse elements
        // are octets and packets again.
        let fields = oracle(
            "tshark",
            &[
                "-r",
                &pcap,
                "-d",
                &decode,
                "-T",
                "fields",
                "-E",
                "occurrence=a",
                "-e",
                "cflow.version",
                "-e",
                "cflow.sequence",
                "-e",
                "cflow.srcport",
                "-e",
                "cflow.packets",
                "-e",
                "cflow.post_packets",
                "-e",
                "cflow.octets",
                "-e",
                "cflow.post_octets",
                "-e",
                "cflow.pie.ntop.l7_proto_name",
            ],
        );
        let mut next_sequence = 0;
        let (mut records, mut got_packets, mut got_bytes) = (0, 0, 0);
        let mut names = Vec::new();
        for (i, line) in fields.lines().enumerate() {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f[0], version.to_string(), "message {i} is cflow {version}");
            let sequence: u64 = f[1].parse().unwrap();
            assert_eq!(sequence, next_sequence, "version {version}: message {i}");
            let flows = f[2].split(',').filter(|p| !p.is_empty()).count() as u64;
            next_sequence += if version == 10 { flows } else { 1 };
            records += flows;
            got_packets += sum(f[3]) + sum(f[4]);
            got_bytes += sum(f[5]) + sum(f[6]);
            names.extend(f[7].split(',').map(str::to_owned));
        }
        assert_eq!(fields.lines().count(), messages.len());
        assert!(
            records as usize > want.len(),
            "version {version}: {records} records"
        );
        assert_eq!(
            (got_packets, got_bytes),
            (packets, bytes),
            "version {version}: the records' counters add up to the purges' totals"
        );
        for name in ["TLS.Google", "SIP", "SSH", "Syslog", "Kerberos"] {
            assert!(
                names.iter().any(|n| n == name),
                "version {version}: no {name}"
            );
        }
    }
}
