//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use flowstat_sinks::{MemorySink, SinkOptions, SinkRuntime};
use flowstat_tests::corpus_files;
pub use flowstat_tests::fixtures;
use flowstatd::{Config, PipelineConfig, ReplayOptions};
use serde_json::Value;

/// `tests/golden`.
pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden")
}

/// A file of the repository by its path from the top.
pub fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// A fixture by its path under `tests/fixtures`.
pub fn fixture(rel: &str) -> PathBuf {
    fixtures().join(rel)
}

/// Every capture of the corpus, sorted; fails if the corpus is incomplete.
pub fn corpus() -> Vec<PathBuf> {
    let out = corpus_files();
    assert!(out.len() >= 70, "corpus incomplete: {} captures", out.len());
    out
}

/// The path of a capture relative to the fixtures, for messages.
pub fn rel(path: &Path) -> String {
    path.strip_prefix(fixtures())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Engine settings from a config, as `flowstatd replay` builds them.
pub fn pipeline_config(cfg: &Config) -> PipelineConfig {
    PipelineConfig::from_config(cfg, Path::new("(test)"), false).expect("application table")
}

/// `flowstatd replay`'s options for every decapsulation ([`all_tunnels`]).
pub const ALL_TUNNEL_ARGS: [&str; 6] = [
    "--decapsulate",
    "ip_in_ip",
    "--decapsulate",
    "gre",
    "--decapsulate",
    "vxlan",
];

/// A config with every optional tunnel decapsulated, as tshark dissects.
pub fn all_tunnels() -> Config {
    let mut cfg = Config::default();
    cfg.decode.decapsulate = vec![
        flowstatd::config::Tunnel::IpInIp,
        flowstatd::config::Tunnel::Gre,
        flowstatd::config::Tunnel::Vxlan,
    ];
    cfg
}

/// Replays `files` in-process and returns the records as JSON lines.
pub fn replay_lines(files: &[PathBuf], cfg: &Config) -> Vec<String> {
    replay_workers(files, cfg, 1)
}

/// Replays `files` in-process on `workers` flow workers and returns the
/// records as JSON lines.
pub fn replay_workers(files: &[PathBuf], cfg: &Config, workers: usize) -> Vec<String> {
    let memory = MemorySink::default();
    let mut sinks = SinkRuntime::inline(false);
    sinks
        .add(
            Box::new(memory.clone()),
            SinkOptions::new(flowstat_core::KindSet::ALL),
        )
        .expect("sink thread");
    let opts = ReplayOptions {
        files: files.to_vec(),
        internal: true,
        workers,
        ..Default::default()
    };
    let (summary, sinks) = flowstatd::replay(pipeline_config(cfg), &opts, sinks)
        .unwrap_or_else(|e| panic!("replay of {files:?} failed: {e}"));
    if let Some(e) = summary.error {
        panic!("replay of {files:?} failed: {e}");
    }
    let status = sinks.finish(Duration::from_secs(10));
    assert_eq!(status[0].dropped, 0, "records dropped");
    memory.lines()
}

/// Replays `files` in-process and returns the records parsed.
pub fn replay(files: &[PathBuf], cfg: &Config) -> Vec<Value> {
    replay_lines(files, cfg)
        .iter()
        .map(|l| serde_json::from_str(l).expect("records are JSON"))
        .collect()
}

/// The `flowstatd` binary, built once per test run with the tests' own
/// profile (a `--release` run must not pick up a stale release binary).
pub fn flowstatd() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // target/<profile>/deps/e2e-<hash> -> target/<profile>/flowstatd
        let exe = std::env::current_exe().expect("test executable path");
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target profile dir");
        let profile = match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev",
            _ => "release",
        };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "--profile", profile])
            .args(["-p", "flowstatd", "--bin", "flowstatd"])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building flowstatd failed");
        let bin = dir.join("flowstatd");
        assert!(bin.exists(), "{} missing after build", bin.display());
        bin
    })
    .clone()
}

/// Runs `flowstatd` with `args`.
pub fn run_flowstatd(args: &[&str]) -> Output {
    Command::new(flowstatd())
        .args(args)
        .output()
        .expect("run flowstatd")
}

/// Writes `config` to a file and checks that `flowstatd check-config`
/// refuses it with one line per key of `want`, `FILE: KEY: ...`, holding
/// each of that key's texts (the problem and its fix).
pub fn assert_config_problems(config: &str, want: &[(&str, &[&str])]) {
    let tmp = TempDir::new("badconf");
    let conf = tmp.path("flowstatd.toml");
    std::fs::write(&conf, config).unwrap();
    let path = conf.to_string_lossy();
    let out = run_flowstatd(&["check-config", &path]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Each line: `flowstatd: FILE:LINE: key: reason`.
    let key_of = |l: &str| {
        let rest = l.strip_prefix(&format!("flowstatd: {path}:"))?;
        let (line, rest) = rest.split_once(": ")?;
        line.parse::<usize>().ok()?;
        rest.split_once(": ").map(|(key, _)| key.to_owned())
    };
    for (key, texts) in want {
        assert!(
            stderr
                .lines()
                .any(|l| key_of(l).as_deref() == Some(key) && texts.iter().all(|t| l.contains(t))),
            "no line names {key} ({texts:?}):\n{stderr}"
        );
    }
    assert_eq!(stderr.lines().count(), want.len(), "{stderr}");
}

/// Runs `cmd`; fails the test unless it succeeds. Its stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tmux server of its own, running one command in a terminal of
/// `width`x`height`; killed on drop. The pane stays when the command
/// exits, to read what it left.
pub struct Tmux(String);

impl Tmux {
    /// The session, and the pane, that runs the command.
    const SESSION: &str = "main";

    /// Starts `command` (a shell command line) in a new terminal.
    pub fn start(width: u16, height: u16, command: &str) -> Tmux {
        static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmux = Tmux(format!("flowstat-test-{}-{n}", std::process::id()));
        let (w, h) = (width.to_string(), height.to_string());
        // One command list: the option is set before the server can see
        // the command exit.
        run(tmux
            .cmd()
            .args(["new-session", "-d", "-s", Tmux::SESSION, "-x", &w, "-y", &h])
            .args([command, ";", "set-option", "-g", "remain-on-exit", "on"]));
        tmux
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.0]);
        c
    }

    /// Types `keys` (tmux's key names).
    pub fn send_keys(&self, keys: &str) {
        run(self.cmd().args(["send-keys", "-t", Tmux::SESSION, keys]));
    }

    /// What the terminal shows, after what scrolled off its top, a line
    /// per line the command wrote: a line the terminal wrapped is one
    /// line here, longer than the width.
    pub fn screen(&self) -> String {
        run(self
            .cmd()
            .args(["capture-pane", "-p", "-J", "-S", "-", "-t", Tmux::SESSION]))
    }

    /// Waits until the screen shows what `ok` wants; the screen.
    pub fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            assert!(Instant::now() < deadline, "never showed {what}:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether the command still runs.
    pub fn running(&self) -> bool {
        let dead = self
            .cmd()
            .args(["display-message", "-p", "-t", Tmux::SESSION, "#{pane_dead}"])
            .output()
            .expect("run tmux");
        dead.status.success() && dead.stdout.trim_ascii() == b"0"
    }

    /// Waits until the command has exited, `what` said what it waits for;
    /// the screen.
    pub fn wait_exit(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.running() {
            assert!(Instant::now() < deadline, "{what}:\n{}", self.screen());
            std::thread::sleep(Duration::from_millis(100));
        }
        self.screen()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self
            .cmd()
            .arg("kill-server")
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local address").port()
}

/// Runs an oracle tool (tshark, ...) that CI installs; a missing tool fails
/// the test with a message saying how to install it.
pub fn oracle(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} is needed as a test oracle ({e}); install it with .ci/deps")
        });
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("oracle output is UTF-8")
}

/// A scratch directory, removed when dropped; each one new, even when
/// tests running at once give the same name.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("flowstat-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A capture paced for `--realtime`: at each whole second `0..=last`,
/// `flows(second)` new UDP flows (10.0.0.1 to 10.SECOND.x.y, port 53),
/// so that records come in bursts a second apart.
pub fn paced_udp_flows(path: &Path, last: u8, flows: impl Fn(u8) -> u16) {
    let mut pcap = PcapWriter::new(1);
    let t0 = Duration::from_secs(1_735_689_600);
    for sec in 0..=last {
        for i in 0..flows(sec) {
            let [hi, lo] = i.to_be_bytes();
            let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
                .ipv4([10, 0, 0, 1], [10, sec, hi, lo], 64)
                .udp(40_000, 53);
            let mut frame = Vec::new();
            b.write(&mut frame, &[0; 20]).unwrap();
            let at = t0 + Duration::from_secs(sec.into()) + Duration::from_micros(i.into());
            pcap.frame(at, &frame, frame.len());
        }
    }
    pcap.write(path);
}

/// Writes a classic pcap file (microsecond, Ethernet unless told otherwise).
pub struct PcapWriter {
    bytes: Vec<u8>,
}

impl PcapWriter {
    pub fn new(linktype: u32) -> Self {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        bytes.extend_from_slice(&2u16.to_le_bytes());
        bytes.extend_from_slice(&4u16.to_le_bytes());
        bytes.extend_from_slice(&0i32.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&65_535u32.to_le_bytes());
        bytes.extend_from_slice(&linktype.to_le_bytes());
        PcapWriter { bytes }
    }

    /// Adds a frame captured at `at` after the epoch; `wire_len` is the
    /// original length (at least the data's).
    pub fn frame(&mut self, at: Duration, data: &[u8], wire_len: usize) -> &mut Self {
        let secs = u32::try_from(at.as_secs()).expect("time fits pcap");
        self.bytes.extend_from_slice(&secs.to_le_bytes());
        self.bytes
            .extend_from_slice(&at.subsec_micros().to_le_bytes());
        self.bytes
            .extend_from_slice(&(data.len() as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&(wire_len.max(data.len()) as u32).to_le_bytes());
        self.bytes.extend_from_slice(data);
        self
    }

    pub fn write(&self, path: &Path) {
        std::fs::write(path, &self.bytes).expect("write pcap");
    }
}

/// Writes to `path` a capture of one TCP session from 10.0.0.1:40000 to
/// 10.0.0.2:`server_port`: the three-way handshake, then each of
/// `segments` (`(from client, payload)`) in one segment, 1 ms apart,
/// acknowledged as a real stack would.
pub fn tcp_session(path: &Path, server_port: u16, segments: &[(bool, &[u8])]) {
    let mut pcap = PcapWriter::new(1);
    let (client, server) = (([10, 0, 0, 1], 40_000), ([10, 0, 0, 2], server_port));
    // The next sequence number of each side: client, server.
    let mut next = [1_000u32, 5_000];
    let mut at = Duration::from_secs(1_700_000_000);
    let handshake = [
        (true, true, false),
        (false, true, true),
        (true, false, true),
    ];
    let packets = handshake
        .iter()
        .map(|&(from_client, syn, ack)| (from_client, syn, ack, &[][..]))
        .chain(segments.iter().map(|&(c, data)| (c, false, true, data)));
    for (from_client, syn, ack, data) in packets {
        let (src, dst) = if from_client {
            (client, server)
        } else {
            (server, client)
        };
        let side = usize::from(!from_client);
        let mut b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src.0, dst.0, 64)
            .tcp(src.1, dst.1, next[side], 65_535);
        if syn {
            b = b.syn();
        }
        if ack {
            b = b.ack(next[1 - side]);
        }
        if !data.is_empty() {
            b = b.psh();
        }
        let mut frame = Vec::new();
        b.write(&mut frame, data).expect("frame");
        pcap.frame(at, &frame, frame.len());
        next[side] = next[side].wrapping_add(u32::from(syn) + data.len() as u32);
        at += Duration::from_millis(1);
    }
    pcap.write(path);
}

/// Writes to `path` a capture of `n` one-packet UDP flows, each from its
/// own client (10.x.y.z) to 203.0.113.(i % 250 + 1):40000, 10 µs apart,
/// as `genflows.py` makes them.
pub fn udp_flows(path: &Path, n: u32) {
    let mut w = PcapWriter::new(1);
    for i in 0..n {
        let [_, a, b, c] = i.to_be_bytes();
        let builder = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
            .ipv4([10, a, b, c], [203, 0, 113, (i % 250 + 1) as u8], 64)
            .udp(1024 + (i % 60_000) as u16, 40_000);
        let mut frame = Vec::new();
        builder
            .write(&mut frame, b"xxxxxxxxxxxxxxxxxx")
            .expect("frame");
        let at = Duration::from_secs(1_700_000_000) + Duration::from_micros(u64::from(i) * 10);
        w.frame(at, &frame, frame.len());
    }
    w.write(path);
}

/// `flowstatd replay FILES -c CONFIG -o OUT --api 127.0.0.1:PORT --linger`,
/// serving its API until dropped (SIGTERM), with a client that keeps error
/// answers' bodies (and sends a bearer token when given one).
pub struct ApiReplay {
    child: std::process::Child,
    /// The API's base URL.
    pub base: String,
    /// The client.
    pub http: ureq::Agent,
    token: Option<String>,
}

impl ApiReplay {
    /// Starts the replay; returns once the API listens. `extra` goes on the
    /// command line.
    pub fn start(files: &[PathBuf], config: &Path, out: &Path, extra: &[&str]) -> ApiReplay {
        let port = free_port();
        let child = Command::new(flowstatd())
            .arg("replay")
            .args(files)
            .arg("-c")
            .arg(config)
            .arg("-o")
            .arg(out)
            .args(["--api", &format!("127.0.0.1:{port}"), "--linger"])
            .args(extra)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start flowstatd replay");
        let replay = ApiReplay {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into(),
            token: None,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the API never listened"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        replay
    }

    /// Requests carry `Authorization: Bearer TOKEN` from now on.
    pub fn with_token(mut self, token: &str) -> ApiReplay {
        self.token = Some(format!("Bearer {token}"));
        self
    }

    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Waits until `out` holds `intervals` interval ends (the replay of as
    /// many files is over).
    pub fn wait_done(&self, out: &Path, intervals: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(out).unwrap_or_default();
            if text.matches(r#""type":"agent_status""#).count() >= intervals {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the replay never ended"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn send<B>(
        &self,
        req: ureq::RequestBuilder<B>,
        call: impl FnOnce(
            ureq::RequestBuilder<B>,
        ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> (u16, Value) {
        let req = match &self.token {
            Some(t) => req.header("authorization", t),
            None => req,
        };
        let mut resp = call(req).unwrap();
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// GET `path`: the status and the body as JSON (or as a string).
    pub fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(self.url(path)), |r| r.call())
    }

    /// PUT `body` (JSON) to `path`.
    pub fn put(&self, path: &str, body: &str) -> (u16, Value) {
        let req = self
            .http
            .put(self.url(path))
            .header("content-type", "application/json");
        self.send(req, |r| r.send(body))
    }

    /// DELETE `path`.
    pub fn delete(&self, path: &str) -> (u16, Value) {
        self.send(self.http.delete(self.url(path)), |r| r.call())
    }

    /// Stops it with SIGTERM, which it must exit on with success.
    pub fn stop(&mut self) {
        let term = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(term.success());
        let status = self.child.wait().expect("wait for flowstatd");
        assert!(status.success(), "flowstatd after SIGTERM: {status}");
    }
}

impl Drop for ApiReplay {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Keeps a reviewed list of accepted disagreements with an oracle exact:
/// `fixtures/FILE` has one tab-separated line per case, its columns then
/// the reason. A disagreement `found` that is not listed fails, and so does
/// a listed one that no longer happens; both are printed as lines to paste.
pub fn assert_listed(file: &str, found: &std::collections::BTreeSet<Vec<String>>) {
    let text = std::fs::read_to_string(fixture(file)).expect("the list of disagreements");
    let mut listed = std::collections::BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut columns: Vec<String> = line.split('\t').map(str::to_owned).collect();
        let reason = columns
            .pop()
            .filter(|r| !r.trim().is_empty() && !columns.is_empty());
        let reason = reason.unwrap_or_else(|| panic!("{file}:{}: columns, then a reason", n + 1));
        assert!(
            listed.insert(columns, reason).is_none(),
            "{file}:{}: listed twice",
            n + 1
        );
    }
    let unlisted: Vec<String> = found
        .iter()
        .filter(|d| !listed.contains_key(*d))
        .map(|d| format!("{}\tREASON", d.join("\t")))
        .collect();
    let stale: Vec<String> = listed
        .iter()
        .filter(|(d, _)| !found.contains(*d))
        .map(|(d, reason)| format!("{}\t{reason}", d.join("\t")))
        .collect();
    assert!(
        unlisted.is_empty() && stale.is_empty(),
        "{} disagreements not in {file}:\n{}\n{} listed ones that no longer happen:\n{}",
        unlisted.len(),
        unlisted.join("\n"),
        stale.len(),
        stale.join("\n")
    );
}
