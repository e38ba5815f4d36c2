//! The live agent, in a network namespace of its own: a veth pair, the
//! agent capturing on one end, tcpreplay sending known captures into the
//! other. Needs root (CI runs as root); the namespace, its links and any
//! XDP program go away when a test ends, pass or fail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use flowstat_capture::FileSource;
use flowstat_core::{Batch, CaptureSource, LinkType};

use crate::common::{PcapWriter, TempDir, flowstatd, replay, run};

/// A network namespace holding a veth pair `va` <-> `vb`, deleted on drop.
pub(crate) struct Netns {
    name: String,
}

impl Netns {
    pub(crate) fn new(tag: &str) -> Netns {
        Netns::with_queues(tag, 1)
    }

    /// A namespace whose veth pair has `queues` TX and RX queues each.
    pub(crate) fn with_queues(tag: &str, queues: u32) -> Netns {
        let name = format!("fslive-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        // No IPv6 (its neighbour discovery would add flows of its own).
        for key in ["all", "default"] {
            run(ns
                .exec("sysctl")
                .args(["-qw", &format!("net.ipv6.conf.{key}.disable_ipv6=1")]));
        }
        let queues = queues.to_string();
        let q = ["numtxqueues", &queues, "numrxqueues", &queues];
        run(Command::new("ip")
            .args(["-n", &ns.name, "link", "add", "name", "va"])
            .args(q)
            .args(["type", "veth", "peer", "name", "vb"])
            .args(q));
        for dev in ["va", "vb"] {
            // Frames arrive as sent: not merged, VLAN tags kept in the data.
            let _ = ns
                .exec("ethtool")
                .args([
                    "-K", dev, "gro", "off", "gso", "off", "tso", "off", "rxvlan", "off", "txvlan",
                    "off",
                ])
                .output();
            run(Command::new("ip").args(["-n", &ns.name, "link", "set", "dev", dev, "up"]));
        }
        ns
    }

    /// `program` run inside the namespace.
    pub(crate) fn exec(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Sends `pcap` into `va` at `pps` packets per second; checks none failed.
    pub(crate) fn send(&self, pcap: &Path, pps: u32) {
        let out = run(self.exec("tcpreplay").args([
            "-i",
            "va",
            "--pps",
            &pps.to_string(),
            &pcap.to_string_lossy(),
        ]));
        let failed = out
            .lines()
            .find_map(|l| l.trim().strip_prefix("Failed packets:"))
            .and_then(|n| n.trim().parse::<u64>().ok());
        assert_eq!(failed, Some(0), "{out}");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A running `flowstatd run` inside a namespace; killed on drop.
pub(crate) struct Agent {
    child: Child,
    stderr: PathBuf,
}

impl Agent {
    /// Starts the agent with `config` and waits for its first status file.
    pub(crate) fn start(ns: &Netns, config: &Path, status: &Path, stderr: PathBuf) -> Agent {
        Agent::start_under(ns, &[], config, status, stderr)
    }

    /// Starts the agent as `wrapper` (a command and its arguments, which
    /// execs the rest) runs it.
    pub(crate) fn start_under(
        ns: &Netns,
        wrapper: &[&str],
        config: &Path,
        status: &Path,
        stderr: PathBuf,
    ) -> Agent {
        let _ = std::fs::remove_file(status);
        let log = std::fs::File::create(&stderr).unwrap();
        let agent = flowstatd().to_string_lossy().into_owned();
        let mut command = wrapper.to_vec();
        command.push(&agent);
        let child = ns
            .exec(command[0])
            .args(&command[1..])
            // The agent's default log level: what an operator sees.
            .args(["run", "-c", &config.to_string_lossy()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut agent = Agent { child, stderr };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !status.exists() {
            if let Ok(Some(code)) = agent.child.try_wait() {
                panic!("agent exited ({code}) at start:\n{}", agent.log());
            }
            assert!(
                Instant::now() < deadline,
                "no status file after 10 s:\n{}",
                agent.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        agent
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        run(Command::new("kill").args([&format!("-{sig}"), &self.child.id().to_string()]));
    }

    /// Sends SIGTERM; returns the exit status. (How fast it exits is a
    /// benchmark figure, benches/synflood.sh; here it only must.)
    pub(crate) fn stop(&mut self) -> ExitStatus {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "no exit 30 s after SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the log contains `text`.
    fn wait_log(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.log().contains(text) {
            assert!(
                Instant::now() < deadline,
                "log never said {text:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A capture to send: frames of several corpus Ethernet captures that were
/// captured whole and fit a 1500-byte MTU (AF_XDP's 4 KiB frames hold
/// them too), one after another.
/// The frames in the capture at `path`.
fn frames(path: &Path) -> u64 {
    let mut src = FileSource::open(path).unwrap();
    let mut n = 0;
    while let Ok(Batch::Frames(_)) = src.poll_batch(1024, &mut |_| n += 1) {}
    n
}

fn sendable_capture(dir: &TempDir) -> PathBuf {
    const FILES: [&str; 9] = [
        "ndpi/443-curl.pcap",
        "ndpi/http_ipv6.pcap",
        "ndpi/dns.pcap",
        "ndpi/ftp.pcap",
        "ndpi/ipv6_in_gtp.pcap",
        "ndpi/syslog.pcap",
        "zeek/http-vlan-0.pcap",
        "zeek/pppoe.pcap",
        "zeek/mpls-in-vlan.pcap",
    ];
    let mut w = PcapWriter::new(1);
    let mut frames = 0u64;
    for name in FILES {
        let mut src = FileSource::open(&crate::common::fixture(name)).unwrap();
        loop {
            let batch = src.poll_batch(1024, &mut |f| {
                let len = f.wire_len as usize;
                if f.link == LinkType::ETHERNET && f.data.len() == len && len <= 1514 {
                    w.frame(Duration::from_millis(frames), f.data, len);
                    frames += 1;
                }
            });
            if !matches!(batch, Ok(Batch::Frames(_))) {
                break;
            }
        }
    }
    assert!(frames > 500, "only {frames} frames to send");
    let path = dir.path("send.pcap");
    w.write(&path);
    path
}

/// Per-flow, per-side totals from `flow_purge` records, keyed by identity
/// (not digest: the interface name differs between live and replay).
fn totals(records: &[Value]) -> BTreeMap<String, (u64, u64, u64, u64)> {
    let mut out: BTreeMap<String, (u64, u64, u64, u64)> = BTreeMap::new();
    for r in records.iter().filter(|r| r["type"] == "flow_purge") {
        let f = &r["flow"];
        let key = format!(
            "{} v{} {}:{} {}:{}",
            f["ip_protocol"],
            f["vlan_id"],
            f["local_ip"],
            f["local_port"],
            f["other_ip"],
            f["other_port"]
        );
        let n = |k: &str| f[k].as_u64().unwrap();
        let e = out.entry(key).or_default();
        e.0 += n("total_local_packets");
        e.1 += n("total_local_bytes");
        e.2 += n("total_other_packets");
        e.3 += n("total_other_bytes");
    }
    out
}

/// Frames lost on `vb`: capture_dropped + queue_dropped over every
/// `interface_stats`.
fn vb_drops(records: &[Value]) -> u64 {
    records
        .iter()
        .filter(|r| r["type"] == "interface_stats")
        .map(|r| {
            r["vb"]["capture_dropped"].as_u64().unwrap()
                + r["vb"]["queue_dropped"].as_u64().unwrap()
        })
        .sum()
}

/// The whole records in the file sink's file at `path`: a running agent
/// may be in the middle of writing the last one, so a line is read only
/// once its newline is there.
pub(crate) fn read_records(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let whole = text.rfind('\n').map_or("", |end| &text[..end]);
    whole
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn config(dir: &TempDir, name: &str, body: &str) -> PathBuf {
    let path = dir.path(name);
    let status = dir.path("status.json");
    let text = format!(
        "[agent]\nupdate_interval_secs = 1\nworkers = 2\nstatus_file = {:?}\n{body}",
        status.to_string_lossy()
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn live_capture_equals_offline_replay_with_af_xdp_and_libpcap() {
    let dir = TempDir::new("live-equal");
    let pcap = sendable_capture(&dir);
    let want = totals(&replay(
        std::slice::from_ref(&pcap),
        &flowstatd::Config::default(),
    ));
    // Each method with the hand-off to two flow workers, and run to
    // completion (the capture thread is the flow worker).
    for (method, extra, inline) in [
        ("af_xdp", "xdp_mode = \"generic\"\n", false),
        ("libpcap", "", false),
        ("af_xdp", "xdp_mode = \"generic\"\nqueues = [0]\n", true),
        ("libpcap", "", true),
    ] {
        let method_name = format!("{method}{}", if inline { " run to completion" } else { "" });
        let method = method_name.as_str();
        // Under the rest of the suite (other agents and tcpreplays on the
        // same two cores) a capture may fall behind and drop frames. Every
        // frame must then be in a flow or counted dropped; the comparison
        // itself needs a run that dropped nothing.
        let mut clean = false;
        for attempt in 1..=3 {
            let (records, log) = capture_live(&dir, method, extra, inline, &pcap);
            let got = totals(&records);
            let drops = vb_drops(&records);
            if drops > 0 {
                let packets = |t: &BTreeMap<String, (u64, u64, u64, u64)>| -> u64 {
                    t.values().map(|v| v.0 + v.2).sum()
                };
                let missing = packets(&want).saturating_sub(packets(&got));
                assert!(
                    missing <= drops,
                    "{method}: {missing} frames missing from the flows, {drops} counted dropped\n{log}"
                );
                println!("{method}, attempt {attempt}: {drops} frames dropped and counted; again");
                continue;
            }
            let differ: Vec<_> = want
                .iter()
                .filter(|(k, v)| got.get(*k) != Some(v))
                .map(|(k, v)| format!("{k}: replay {v:?}, live {:?}", got.get(k)))
                .chain(
                    got.keys()
                        .filter(|k| !want.contains_key(*k))
                        .map(|k| format!("{k}: live only")),
                )
                .collect();
            assert!(
                differ.is_empty(),
                "{method}: nothing dropped, yet {} flows differ:\n{}",
                differ.len(),
                differ.join("\n")
            );
            println!(
                "{method}: {} flows equal to the offline replay, no drop",
                want.len()
            );

            clean = true;
            break;
        }
        assert!(clean, "{method}: frames dropped in each of 3 runs");
    }
}

/// Runs the agent capturing `vb` with `method` (and its name's first word
/// as the capture method; `extra`: more `[[capture]]` settings), run to
/// completion when `inline`, while `pcap` is sent at 10,000 frames a
/// second; returns its records and its log.
fn capture_live(
    dir: &TempDir,
    name: &str,
    extra: &str,
    inline: bool,
    pcap: &Path,
) -> (Vec<Value>, String) {
    let method = name.split(' ').next().unwrap_or(name);
    let file = name.replace(' ', "-");
    let ns = Netns::new(&file[..file.len().min(12)]);
    let out = dir.path(&format!("{file}.json"));
    let _ = std::fs::remove_file(&out);
    let cfg = config(
        dir,
        &format!("{file}.toml"),
        &format!(
            "run_to_completion = {inline}\n\
             [[capture]]\ninterface = \"vb\"\nmethod = \"{method}\"\n{extra}\
             [[sink]]\ntype = \"file\"\npath = {:?}\n",
            out.to_string_lossy()
        ),
    );
    let mut agent = Agent::start(
        &ns,
        &cfg,
        &dir.path("status.json"),
        dir.path(&format!("{file}.log")),
    );
    if inline {
        agent.wait_log("run to completion: each capture thread is a flow worker");
    }
    // The method and its mode, logged at the default level.
    agent.wait_log(&format!(
        "capturing interface=vb method=\"{}\"",
        if method == "af_xdp" {
            "AF_XDP generic"
        } else {
            "libpcap"
        }
    ));
    ns.send(pcap, 10_000);
    std::thread::sleep(Duration::from_millis(500));
    let status = agent.stop();
    assert!(status.success(), "{method}: {status}\n{}", agent.log());
    (read_records(&out), agent.log())
}

#[test]
fn run_to_completion_takes_each_rx_queue_and_warns_of_a_flow_split_across_them() {
    let dir = TempDir::new("live-queues");
    let curl = crate::common::fixture("ndpi/443-curl.pcap");
    let want = totals(&replay(
        std::slice::from_ref(&curl),
        &flowstatd::Config::default(),
    ));
    // The client's frames and the server's, apart.
    let (client, server) = (dir.path("client.pcap"), dir.path("server.pcap"));
    for (half, filter) in [
        (&client, "tcp.dstport == 443"),
        (&server, "tcp.srcport == 443"),
    ] {
        run(Command::new("tshark").args([
            "-r",
            &curl.to_string_lossy(),
            "-Y",
            filter,
            "-F",
            "pcap",
            "-w",
            &half.to_string_lossy(),
        ]));
    }
    let out = dir.path("out.json");
    // Native XDP: veth then hands each frame to the RX queue numbered as
    // the TX queue it was sent on.
    let cfg = config(
        &dir,
        "agent.toml",
        &format!(
            "run_to_completion = true\n[[capture]]\ninterface = \"vb\"\nmethod = \"af_xdp\"\n\
             xdp_mode = \"native\"\n[[sink]]\ntype = \"file\"\npath = {:?}\n",
            out.to_string_lossy()
        ),
    );
    let start = |tag: &str| {
        let ns = Netns::with_queues(tag, 2);
        let _ = std::fs::remove_file(&out);
        let agent = Agent::start(
            &ns,
            &cfg,
            &dir.path("status.json"),
            dir.path(&format!("{tag}.log")),
        );
        agent.wait_log("capturing interface=vb method=\"AF_XDP native copy\" sockets=2");
        agent.wait_log("run to completion: each capture thread is a flow worker");
        (ns, agent)
    };

    // The kernel picks a TX queue by a hash of the flow that is the same
    // both ways: one queue has the whole flow, as the replay counts it.
    // (A run that dropped frames under the rest of the suite cannot be
    // compared: it runs again, at most 3 times.)
    for attempt in 1..=3 {
        let (ns, mut agent) = start("q-whole");
        ns.send(&curl, 10_000);
        assert!(agent.stop().success(), "{}", agent.log());
        let (records, log) = (read_records(&out), agent.log());
        assert!(!log.contains("two RX queues"), "{log}");
        if vb_drops(&records) == 0 {
            assert_eq!(totals(&records), want, "{log}");
            break;
        }
        assert!(attempt < 3, "frames dropped in each of 3 runs\n{log}");
    }

    // Each CPU sends on a TX queue of its own (XPS), the client's frames
    // from CPU 0 and the server's from CPU 1: the handshake is split.
    let (ns, mut agent) = start("q-split");
    run(ns.exec("sh").args([
        "-c",
        "echo 1 > /sys/class/net/va/queues/tx-0/xps_cpus && \
         echo 2 > /sys/class/net/va/queues/tx-1/xps_cpus",
    ]));
    for (cpu, half) in [("0", &client), ("1", &server)] {
        run(ns
            .exec("taskset")
            .args(["-c", cpu, "tcpreplay", "-i", "va", &half.to_string_lossy()]));
    }
    agent.wait_log("a TCP handshake arrived on two RX queues of vb");
    assert!(agent.stop().success(), "{}", agent.log());
}

/// The frames of `src` from `first` to `last` (1-based), by editcap.
fn slice(src: &Path, dst: &Path, first: u32, last: u32) {
    run(Command::new("editcap").args([
        "-F",
        "pcap",
        "-r",
        &src.to_string_lossy(),
        &dst.to_string_lossy(),
        &format!("{first}-{last}"),
    ]));
}

#[test]
fn sighup_switches_sinks_keeping_every_flows_counters() {
    let dir = TempDir::new("live-hup");
    let curl = crate::common::fixture("ndpi/443-curl.pcap");
    let (first, second) = (dir.path("first.pcap"), dir.path("second.pcap"));
    slice(&curl, &first, 1, 60);
    slice(&curl, &second, 61, 109);
    let (a, b) = (dir.path("a.json"), dir.path("b.json"));
    let sink = |p: &Path| {
        format!(
            "[[capture]]\ninterface = \"vb\"\nmethod = \"libpcap\"\n[[sink]]\ntype = \"file\"\npath = {:?}\n",
            p.to_string_lossy()
        )
    };
    let cfg = config(&dir, "agent.toml", &sink(&a));
    let ns = Netns::new("hup");
    let mut agent = Agent::start(&ns, &cfg, &dir.path("status.json"), dir.path("agent.log"));
    ns.send(&first, 1_000);
    // Let an interval end, so the flow is reported to the first sink.
    wait_for(
        || read_records(&a).iter().any(|r| r["type"] == "flow_stats"),
        "an interval's flow_stats in the first sink",
    );
    config(&dir, "agent.toml", &sink(&b));
    agent.signal("HUP");
    agent.wait_log("configuration reloaded");
    // Exactly what changed: the sinks, not the application table.
    assert!(
        agent.log().contains("changed=[\"sinks\"]"),
        "{}",
        agent.log()
    );
    ns.send(&second, 1_000);
    let status = agent.stop();
    assert!(status.success());
    let (before, after) = (read_records(&a), read_records(&b));
    let curl_flow =
        |r: &&Value| r["flow"]["local_port"] == 55523 || r["flow"]["other_port"] == 55523;
    // flow_stats carry no identity: find the flow's first digest in its
    // flow record, then its flow_stats by that digest.
    let first_digest = |r: &Value| {
        let f = &r["flow"];
        f["digest_prev"].get(0).unwrap_or(&f["digest"]).clone()
    };
    let flow = before
        .iter()
        .find(|r| r["type"] == "flow" && curl_flow(r))
        .expect("flow record in the first sink");
    let digest = first_digest(flow);
    assert!(
        before
            .iter()
            .any(|r| r["type"] == "flow_stats" && first_digest(r) == digest),
        "the first sink reported the flow's first interval"
    );
    assert!(
        !before.iter().any(|r| r["type"] == "flow_purge"),
        "first sink closed at the reload"
    );
    let purge = after
        .iter()
        .find(|r| r["type"] == "flow_purge" && curl_flow(r))
        .expect("purge in the new sink");
    assert_eq!(
        purge["flow"]["total_packets"], 109,
        "no counter lost across the reload"
    );
    assert_eq!(purge["flow"]["total_bytes"], 73_982);
}

/// Polls `done` until it holds; fails after a generous 30 s.
fn wait_for(mut done: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "waited 30 s for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_purges_every_flow() {
    let dir = TempDir::new("live-term");
    let out = dir.path("out.json");
    let cfg = config(
        &dir,
        "agent.toml",
        &format!(
            "[[capture]]\ninterface = \"vb\"\nmethod = \"libpcap\"\n[[sink]]\ntype = \"file\"\npath = {:?}\n",
            out.to_string_lossy()
        ),
    );
    let ns = Netns::new("term");
    let mut agent = Agent::start(&ns, &cfg, &dir.path("status.json"), dir.path("agent.log"));
    let dns = crate::common::fixture("ndpi/dns.pcap");
    ns.send(&dns, 5_000);
    wait_received(&dir.path("status.json"), frames(&dns));
    let status = agent.stop();
    assert!(status.success(), "{status}");
    let records = read_records(&out);
    let digest = |r: &Value| {
        let f = &r["flow"];
        f["digest_prev"]
            .get(0)
            .unwrap_or(&f["digest"])
            .as_str()
            .unwrap()
            .to_owned()
    };
    let seen: std::collections::BTreeSet<String> = records
        .iter()
        .filter(|r| r["type"] == "flow" || r["type"] == "flow_stats")
        .map(digest)
        .collect();
    let purged: std::collections::BTreeSet<String> = records
        .iter()
        .filter(|r| r["type"] == "flow_purge")
        .map(digest)
        .collect();
    assert!(!seen.is_empty());
    assert_eq!(seen, purged, "every flow gets a flow_purge");
}

/// Waits until the agent's status file says it received `packets` frames
/// on `vb`; returns the status file's text.
fn wait_received(status: &Path, packets: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(status).unwrap_or_default();
        let received = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|r| r["type"] == "agent_status")
            .and_then(|r| r["captures"]["vb"]["received"].as_u64())
            .unwrap_or(0);
        if received >= packets {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "the agent received {received} of {packets} frames: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs the agent (2 workers, libpcap on `vb`, a file sink; `flows_toml`
/// its `[flows]` settings) in namespace `name` while `flows` UDP flows are
/// sent at `pps` frames a second; once it has received every frame, waits
/// `then` and stops it. Returns its records and its log. Its queues are
/// the largest there are (32k batches a worker), so that a worker that
/// gets little CPU beside other tests falls behind without a drop: with
/// the default (128 batches), 100k flows at 50k pps lost 8,206 frames
/// while the tshark oracles ran.
fn agent_on_udp_flows(
    name: &str,
    flows: u32,
    pps: u32,
    flows_toml: &str,
    then: Duration,
) -> (Vec<Value>, String) {
    let dir = TempDir::new(&format!("live-{name}"));
    let pcap = dir.path("flows.pcap");
    crate::common::udp_flows(&pcap, flows);
    let out = dir.path("out.json");
    // config() runs 2 workers.
    let cfg = config(
        &dir,
        "agent.toml",
        &format!(
            "queue_packets = 16777216\n[flows]\n{flows_toml}\n[[capture]]\ninterface = \"vb\"\n\
             method = \"libpcap\"\n\
             [[sink]]\ntype = \"file\"\npath = {:?}\n",
            out.to_string_lossy()
        ),
    );
    let ns = Netns::new(name);
    let status = dir.path("status.json");
    let mut agent = Agent::start(&ns, &cfg, &status, dir.path("agent.log"));
    ns.send(&pcap, pps);
    wait_received(&status, u64::from(flows));
    std::thread::sleep(then);
    let code = agent.stop();
    assert!(code.success(), "{code}\n{}", agent.log());
    (read_records(&out), agent.log())
}

#[test]
fn sigterm_with_100000_flows_writes_every_purge() {
    const FLOWS: u32 = 100_000;
    let (records, log) = agent_on_udp_flows("term100k", FLOWS, 50_000, "", Duration::ZERO);
    let purged: std::collections::BTreeSet<&str> = records
        .iter()
        .filter(|r| r["type"] == "flow_purge")
        .map(|r| r["flow"]["digest"].as_str().unwrap())
        .collect();
    let purges = records.iter().filter(|r| r["type"] == "flow_purge").count();
    assert_eq!(vb_drops(&records), 0, "capture_dropped + queue_dropped");
    assert_eq!(
        (purges, purged.len()),
        (FLOWS as usize, FLOWS as usize),
        "one flow_purge for each flow\n{log}"
    );
    assert!(!log.contains("records were lost"), "{log}");
}

#[test]
fn max_flows_bounds_the_agent_across_workers_and_evictions_are_counted() {
    const FLOWS: u32 = 1_000;
    // One more interval after the last frame, so that an agent_status
    // sees the full table.
    let (records, _) = agent_on_udp_flows(
        "maxflows",
        FLOWS,
        2_000,
        "max_flows = 100",
        Duration::from_millis(1_200),
    );
    let statuses: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"] == "agent_status")
        .collect();
    let counts: Vec<u64> = statuses
        .iter()
        .map(|r| r["flow_count"].as_u64().unwrap())
        .collect();
    assert!(counts.iter().all(|&c| c <= 100), "flow_count {counts:?}");
    assert!(counts.contains(&100), "the table never filled: {counts:?}");
    let evicted: u64 = statuses
        .iter()
        .map(|r| r["flows_evicted"].as_u64().unwrap())
        .sum();
    let purges: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"] == "flow_purge")
        .collect();
    let evicted_purges = purges.iter().filter(|r| r["evicted"] == true).count() as u64;
    assert_eq!(purges.len(), FLOWS as usize, "every flow purged once");
    assert_eq!(
        evicted, evicted_purges,
        "flows_evicted counts the evictions"
    );
    assert_eq!(
        evicted,
        u64::from(FLOWS) - 100,
        "the agent's tables full, then evicting"
    );
}

#[test]
fn bad_configs_are_refused_at_start_and_at_reload() {
    let dir = TempDir::new("live-badcfg");
    let ns = Netns::new("badcfg");
    // At start: every problem named with the file, key and reason.
    let bad = config(
        &dir,
        "bad.toml",
        "bogus = 1\nlocal_networks = [\"10.0.0.0/40\"]\n[[capture]]\ninterface = \"vb\"\n",
    );
    let out = ns
        .exec(&flowstatd().to_string_lossy())
        .args(["run", "-c", &bad.to_string_lossy()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let path = bad.to_string_lossy();
    for key in ["agent.bogus", "agent.local_networks[0]"] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(&*path) && l.contains(key)),
            "{key}:\n{stderr}"
        );
    }
    let missing = config(
        &dir,
        "missing.toml",
        "[[capture]]\ninterface = \"nosuch0\"\n",
    );
    let out = ns
        .exec(&flowstatd().to_string_lossy())
        .args(["run", "-c", &missing.to_string_lossy()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("capture[0].interface: no interface named \"nosuch0\""),
        "{stderr}"
    );

    // At reload: refused with the same detail, and the agent keeps running.
    let cfg = config(
        &dir,
        "agent.toml",
        "[[capture]]\ninterface = \"vb\"\nmethod = \"libpcap\"\n",
    );
    let mut agent = Agent::start(&ns, &cfg, &dir.path("status.json"), dir.path("agent.log"));
    config(
        &dir,
        "agent.toml",
        "[[capture]]\ninterface = \"vb\"\nmethod = \"libpcap\"\nretries = 3\n",
    );
    agent.signal("HUP");
    agent.wait_log("reload rejected");
    assert!(
        agent.log().contains("capture[0].retries"),
        "{}",
        agent.log()
    );
    config(&dir, "agent.toml", "[[capture]]\ninterface = \"nosuch0\"\n");
    agent.signal("HUP");
    agent.wait_log("no interface named \"nosuch0\"");
    let status = dir.path("status.json");
    let _ = std::fs::remove_file(&status);
    // The agent still runs its intervals: it writes the status again.
    wait_for(|| status.exists(), "the status file");
    let code = agent.stop();
    assert!(code.success());
}

#[test]
fn the_agent_drops_root_keeping_cap_net_raw_alone() {
    for (method, extra) in [("libpcap", ""), ("af_xdp", "xdp_mode = \"generic\"\n")] {
        drops_root_with(method, extra);
    }
}

/// Runs the agent as `nobody` with capture `method`: its credentials, that
/// it still captures, and (AF_XDP) that its XDP program is gone after exit.
fn drops_root_with(method: &str, extra: &str) {
    let dir = TempDir::new(&format!("live-privs-{method}"));
    // The status file is written after the switch, in a directory the
    // agent makes for its user at start, as outside systemd.
    let status_dir = PathBuf::from(format!(
        "/tmp/flowstat-privs-{method}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&status_dir);
    let status = status_dir.join("status.json");
    let socket = status_dir.join("flows.sock");
    let cfg = dir.path("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "[agent]\nupdate_interval_secs = 1\nuser = \"nobody\"\ngroup = \"nogroup\"\nstatus_file = {:?}\n\
             [[capture]]\ninterface = \"vb\"\nmethod = \"{method}\"\n{extra}[[sink]]\ntype = \"file\"\npath = {:?}\n\
             [[sink]]\ntype = \"socket\"\nendpoint = \"unix://{}\"\ntypes = [\"agent_status\"]\n",
            status.to_string_lossy(),
            dir.path("out.json").to_string_lossy(),
            socket.display()
        ),
    )
    .unwrap();
    let ns = Netns::new(&format!("privs-{method}"));
    // Without CAP_SYS_ADMIN, which the package's unit does not grant
    // either: AF_XDP opens without it.
    let unit = ["setpriv", "--bounding-set=-sys_admin", "--inh-caps=-all"];
    let mut agent = Agent::start_under(&ns, &unit, &cfg, &status, dir.path("agent.log"));
    let proc_status =
        std::fs::read_to_string(format!("/proc/{}/status", agent.child.id())).unwrap();
    let field = |name: &str| {
        proc_status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    let nobody = run(Command::new("id").args(["-u", "nobody"]))
        .trim()
        .to_owned();
    // The socket the agent made as root is the user's it became.
    let meta = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&socket).unwrap());
    assert_eq!(meta.to_string(), nobody, "{method}: the socket's owner");
    assert!(
        field("Uid:").split_whitespace().all(|u| u == nobody),
        "{method}: Uid: {}",
        field("Uid:")
    );
    // CAP_NET_RAW (13), nothing else.
    let want = 1u64 << 13;
    // The bounding set too: nothing else can ever come back, and no exec
    // can raise privileges.
    for set in ["CapEff:", "CapPrm:", "CapBnd:"] {
        assert_eq!(
            u64::from_str_radix(&field(set), 16).unwrap(),
            want,
            "{method}: {set}"
        );
    }
    assert_eq!(field("NoNewPrivs:"), "1", "{method}");
    ns.send(&crate::common::fixture("ndpi/443-curl.pcap"), 5_000);
    let code = agent.stop();
    assert!(code.success(), "{method}: {}", agent.log());
    assert!(!socket.exists(), "{method}: the agent removed its socket");
    std::fs::remove_dir_all(&status_dir).unwrap();
    // Nobody connected to the socket: its records had no consumer, which
    // is no loss of the agent's.
    let log = agent.log();
    assert!(
        log.contains("no consumer took the rest") && !log.contains("records were lost"),
        "{method}: {log}"
    );
    let purge = read_records(&dir.path("out.json"))
        .into_iter()
        .find(|r| r["type"] == "flow_purge")
        .unwrap();
    assert_eq!(
        purge["flow"]["total_packets"], 109,
        "{method}: capture works after the switch"
    );
    let link = run(Command::new("ip").args(["-n", &ns.name, "link", "show", "dev", "vb"]));
    assert!(
        !link.contains("xdp"),
        "{method}: an XDP program is left on vb:\n{link}"
    );
}

#[test]
fn interface_addresses_make_local_networks_and_are_followed() {
    use etherparse::PacketBuilder;
    // A UDP datagram from 203.0.113.9 (the client: it speaks first) to
    // 198.51.100.7: both public, so the client is local, until the capture
    // interface has an address in 198.51.100.0/24.
    let dir = TempDir::new("live-locals");
    let pcap = dir.path("one.pcap");
    let mut frame = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([203, 0, 113, 9], [198, 51, 100, 7], 64)
        .udp(40_000, 40_001)
        .write(&mut frame, b"hello")
        .unwrap();
    let mut w = PcapWriter::new(1);
    w.frame(Duration::ZERO, &frame, frame.len());
    w.write(&pcap);
    let out = dir.path("out.json");
    let cfg = config(
        &dir,
        "agent.toml",
        &format!(
            "[[capture]]\ninterface = \"vb\"\nmethod = \"libpcap\"\n[[sink]]\ntype = \"file\"\npath = {:?}\ntypes = [\"flow\"]\n",
            out.to_string_lossy()
        ),
    );
    let ns = Netns::new("locals");
    let mut agent = Agent::start(&ns, &cfg, &dir.path("status.json"), dir.path("agent.log"));
    ns.send(&pcap, 100);
    // The address comes while the agent runs; the next interval sees it.
    run(Command::new("ip").args([
        "-n",
        &ns.name,
        "addr",
        "add",
        "198.51.100.1/24",
        "dev",
        "vb",
    ]));
    agent.wait_log("local networks changed");
    // A new flow (other ports) after the change.
    let mut frame2 = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([203, 0, 113, 9], [198, 51, 100, 7], 64)
        .udp(40_002, 40_003)
        .write(&mut frame2, b"hello")
        .unwrap();
    let mut w = PcapWriter::new(1);
    w.frame(Duration::ZERO, &frame2, frame2.len());
    w.write(&pcap);
    ns.send(&pcap, 100);
    let code = agent.stop();
    assert!(code.success());
    let locals: BTreeMap<u64, String> = read_records(&out)
        .iter()
        .map(|r| {
            (
                r["flow"]["local_port"].as_u64().unwrap(),
                r["flow"]["local_ip"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        locals.get(&40_000).map(String::as_str),
        Some("203.0.113.9"),
        "{locals:?}"
    );
    assert_eq!(
        locals.get(&40_003).map(String::as_str),
        Some("198.51.100.7"),
        "{locals:?}"
    );
}

/// Sums `key` of the `vb` interface over every `interface_stats` record.
fn vb_sum(records: &[Value], key: &str) -> u64 {
    records
        .iter()
        .filter(|r| r["type"] == "interface_stats")
        .map(|r| r["vb"][key].as_u64().unwrap())
        .sum()
}

#[test]
fn frames_lost_while_the_agent_is_stopped_are_counted_exactly() {
    // A 1 MiB libpcap ring (the smallest) holds about 4,500 of these
    // frames, AF_XDP's 512.
    const FRAMES: u32 = 20_000;
    for (method, extra) in [
        ("libpcap", "buffer_bytes = 1048576\n"),
        // A ring of 512 frames: the kernel drops once it is full.
        (
            "af_xdp",
            "xdp_mode = \"generic\"\nrx_ring = 512\nfill_ring = 512\n",
        ),
    ] {
        let dir = TempDir::new(&format!("live-drops-{method}"));
        let pcap = dir.path("flows.pcap");
        crate::common::udp_flows(&pcap, FRAMES);
        let out = dir.path("out.json");
        let cfg = config(
            &dir,
            "agent.toml",
            &format!(
                "[[capture]]\ninterface = \"vb\"\nmethod = \"{method}\"\n{extra}\
                 [[sink]]\ntype = \"file\"\npath = {:?}\ntypes = [\"interface_stats\"]\n",
                out.to_string_lossy()
            ),
        );
        let ns = Netns::new(&format!("drops-{method}"));
        let mut agent = Agent::start(&ns, &cfg, &dir.path("status.json"), dir.path("agent.log"));
        // Stopped, the agent reads nothing: what the kernel cannot hold for
        // it is dropped, and must be counted.
        agent.signal("STOP");
        ns.send(&pcap, 50_000);
        agent.signal("CONT");
        let counted = |records: &[Value]| {
            vb_sum(records, "raw")
                + vb_sum(records, "capture_dropped")
                + vb_sum(records, "queue_dropped")
        };
        wait_for(
            || counted(&read_records(&out)) >= u64::from(FRAMES),
            "every frame received or counted as dropped",
        );
        let status = agent.stop();
        assert!(status.success(), "{status}\n{}", agent.log());
        let records = read_records(&out);
        assert!(
            vb_sum(&records, "capture_dropped") > 0,
            "{method}: nothing dropped; the test saw no loss to count"
        );
        assert_eq!(
            counted(&records),
            u64::from(FRAMES),
            "{method}: received + capture_dropped + queue_dropped, of {FRAMES} sent \
             (received {}, capture_dropped {}, queue_dropped {})",
            vb_sum(&records, "raw"),
            vb_sum(&records, "capture_dropped"),
            vb_sum(&records, "queue_dropped")
        );
    }
}

/// The agent's flow worker threads, stopped with ptrace (its capture
/// threads run on) until dropped.
struct StoppedWorkers(Vec<nix::unistd::Pid>);

impl StoppedWorkers {
    fn new(agent: &Agent) -> Self {
        use nix::sys::ptrace;
        use nix::sys::wait::{WaitPidFlag, waitpid};
        let tasks = format!("/proc/{}/task", agent.child.id());
        let mut stopped = Vec::new();
        for task in std::fs::read_dir(&tasks).unwrap() {
            let task = task.unwrap().path();
            let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
            if !comm.starts_with("flowstat-work") {
                continue;
            }
            let tid: i32 = task.file_name().unwrap().to_str().unwrap().parse().unwrap();
            let tid = nix::unistd::Pid::from_raw(tid);
            ptrace::seize(tid, ptrace::Options::empty()).unwrap();
            ptrace::interrupt(tid).unwrap();
            waitpid(tid, Some(WaitPidFlag::__WALL)).unwrap();
            stopped.push(tid);
        }
        assert!(!stopped.is_empty(), "no flowstat-work thread in {tasks}");
        StoppedWorkers(stopped)
    }
}

impl Drop for StoppedWorkers {
    fn drop(&mut self) {
        for &tid in &self.0 {
            let _ = nix::sys::ptrace::detach(tid, None);
        }
    }
}

#[test]
fn frames_the_hand_off_drops_are_counted_exactly() {
    const FRAMES: u32 = 20_000;
    let dir = TempDir::new("live-queue-drops");
    let pcap = dir.path("flows.pcap");
    crate::common::udp_flows(&pcap, FRAMES);
    let out = dir.path("out.json");
    let cfg = config(
        &dir,
        "agent.toml",
        &format!(
            "queue_packets = 1024\n[[capture]]\ninterface = \"vb\"\nmethod = \"libpcap\"\n\
             [[sink]]\ntype = \"file\"\npath = {:?}\ntypes = [\"interface_stats\", \"flow_purge\"]\n",
            out.to_string_lossy()
        ),
    );
    let ns = Netns::new("queue-drops");
    let mut agent = Agent::start(&ns, &cfg, &dir.path("status.json"), dir.path("agent.log"));
    // The workers stop; the capture thread goes on and finds their
    // queues full: what it cannot hand over it drops and counts.
    let workers = StoppedWorkers::new(&agent);
    ns.send(&pcap, 50_000);
    wait_received(&dir.path("status.json"), u64::from(FRAMES));
    drop(workers);
    let status = agent.stop();
    assert!(status.success(), "{status}\n{}", agent.log());
    let records = read_records(&out);
    let (raw, queue_dropped) = (vb_sum(&records, "raw"), vb_sum(&records, "queue_dropped"));
    let purges = records.iter().filter(|r| r["type"] == "flow_purge").count() as u64;
    assert!(
        queue_dropped > 0,
        "nothing dropped; the test saw no loss to count"
    );
    assert_eq!(vb_sum(&records, "capture_dropped"), 0);
    assert_eq!(raw, u64::from(FRAMES));
    // One frame a flow: every frame is a flow or counted dropped.
    assert_eq!(
        purges + queue_dropped,
        raw,
        "flows {purges} + queue_dropped {queue_dropped}, of {raw} frames received"
    );
}
