//! The dashboard at `/`, in a real browser: `flowstatd replay --api
//! --linger` serves a few nDPI captures, headless Chromium (Debian's
//! `chromium`, which `.ci/deps test` installs) loads the page, and the test
//! drives it over the DevTools protocol: no console message, no script
//! error, no failed request, and the applications table holds the
//! applications the API has. The screenshot is kept in
//! `target/test-artifacts/dashboard.png`.
//!
//! The protocol, not `--dump-dom`: the page long-polls `/events/json`, and
//! Chromium's virtual time does not advance while a request is open, so a
//! `--virtual-time-budget` run never ends.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use crate::common::{ApiReplay, TempDir, fixture};

/// The definitions the page shows, as a config file gives them (created
/// from the page they would count only from the next interval, after the
/// replay has ended), and a threshold for the events table.
const CONFIG: &str = r#"
[[threshold]]
name = "busy-app"
metric = "dashboard-apps"
value = 500
by_flow = true

[[flow_definition]]
name = "dashboard-apps"
keys = ["application"]
value = "bytes"
n = 10

[[flow_definition]]
name = "dashboard-hosts"
keys = ["local_ip"]
value = "bytes"
n = 10
"#;

/// Headless Chromium driven over the DevTools protocol on a pipe
/// (`--remote-debugging-pipe`: commands in on fd 3, answers and events out
/// on fd 4, each message ending in a NUL byte). A shell puts the child's
/// stdin and stdout on those descriptors.
struct Browser {
    child: Child,
    commands: ChildStdin,
    messages: Receiver<Value>,
    next_id: u64,
    session: Option<String>,
    /// Console messages, script exceptions and error log entries seen.
    complaints: Vec<String>,
}

impl Browser {
    /// Starts chromium with its profile, cache, crash reports and
    /// temporary files in `dir` (it leaves them behind when killed).
    fn start(dir: &Path) -> Browser {
        let mut child = Command::new("sh")
            .args([
                "-c",
                r#"exec 3<&0 4>&1 </dev/null >/dev/null; exec "$@""#,
                "sh",
            ])
            .args([
                "chromium",
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
            ])
            .args(["--remote-debugging-pipe", "--no-first-run", "--mute-audio"])
            .arg("--window-size=1280,900")
            .arg("about:blank")
            .env("XDG_CONFIG_HOME", dir)
            .env("XDG_CACHE_HOME", dir)
            .env("TMPDIR", dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let commands = child.stdin.take().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let (tx, messages) = channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            while out.read_until(0, &mut buf).is_ok_and(|n| n > 0) {
                buf.pop();
                if tx.send(serde_json::from_slice(&buf).unwrap()).is_err() {
                    break;
                }
                buf.clear();
            }
        });
        Browser {
            child,
            commands,
            messages,
            next_id: 0,
            session: None,
            complaints: Vec::new(),
        }
    }

    /// Sends a command (to the page once attached) and waits for its
    /// result, noting the complaints among the events on the way.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let mut msg = json!({"id": self.next_id, "method": method, "params": params});
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.commands
            .write_all(&bytes)
            .unwrap_or_else(|e| panic!("chromium is needed ({e}): .ci/deps test installs it"));
        loop {
            let m = self
                .messages
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|e| {
                    panic!("no answer from chromium to {method} ({e}): .ci/deps test installs it")
                });
            if m["id"] == self.next_id {
                assert!(m["error"].is_null(), "{method}: {}", m["error"]);
                return m["result"].clone();
            }
            self.note(&m);
        }
    }

    /// Keeps what an event says went wrong in the page.
    fn note(&mut self, m: &Value) {
        let p = &m["params"];
        match m["method"].as_str() {
            Some("Runtime.consoleAPICalled") => {
                let args: Vec<String> = p["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| a["value"].to_string())
                    .collect();
                let kind = p["type"].as_str().unwrap_or_default();
                self.complaints
                    .push(format!("console.{kind}: {}", args.join(" ")));
            }
            Some("Runtime.exceptionThrown") => {
                let d = &p["exceptionDetails"];
                let what = d["exception"]["description"].as_str();
                self.complaints.push(format!(
                    "{} {}",
                    d["text"].as_str().unwrap_or_default(),
                    what.unwrap_or_default()
                ));
            }
            Some("Log.entryAdded") if p["entry"]["level"] == "error" => {
                let e = &p["entry"];
                let (url, text) = (e["url"].as_str(), e["text"].as_str());
                self.complaints.push(format!(
                    "{}: {}",
                    url.unwrap_or_default(),
                    text.unwrap_or_default()
                ));
            }
            _ => {}
        }
    }

    /// Opens `url` in a new page and listens to its console and log.
    fn open(&mut self, url: &str) {
        let target = self.call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = self.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        self.session = Some(attached["sessionId"].as_str().unwrap().to_owned());
        for domain in ["Runtime", "Log", "Page"] {
            self.call(&format!("{domain}.enable"), json!({}));
        }
        self.call("Page.navigate", json!({"url": url}));
    }

    /// The value of a script expression in the page.
    fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        assert!(r["exceptionDetails"].is_null(), "{expression}: {r}");
        r["result"]["value"].clone()
    }

    fn screenshot(&mut self, path: &Path) {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `target/test-artifacts`, beside the tests' own profile directory.
fn artifacts() -> PathBuf {
    // target/<profile>/deps/e2e-<hash>
    let exe = std::env::current_exe().unwrap();
    let dir = exe.ancestors().nth(3).unwrap().join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A GET answered 200 with JSON.
fn get_json(agent: &ApiReplay, path: &str) -> Value {
    let (status, body) = agent.get(path);
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// The keys of a flow definition's top rows (`field` of each, "other"
/// left out), sorted.
fn top_keys(agent: &ApiReplay, definition: &str, field: &str) -> Vec<String> {
    let rows = get_json(agent, &format!("/activeflows/ALL/{definition}/json"));
    let mut keys: Vec<String> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["key"][field].as_str().map(String::from))
        .collect();
    keys.sort();
    keys
}

/// The first column of a table's body as the page shows it, sorted.
fn column(browser: &mut Browser, table: &str) -> Vec<String> {
    let cells = browser.eval(&format!(
        "[...document.querySelectorAll('#{table} tbody tr')].map(r => r.cells[0].textContent)"
    ));
    let mut cells: Vec<String> = serde_json::from_value(cells).unwrap();
    cells.sort();
    cells
}

#[test]
fn dashboard_fills_its_tables_in_a_browser() {
    let tmp = TempDir::new("dashboard");
    let config = tmp.path("flowstatd.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let files = ["google_ssl.pcap", "443-curl.pcap", "http_ipv6.pcap"]
        .map(|f| fixture(&format!("ndpi/{f}")));
    let out = tmp.path("out.json");
    let mut agent = ApiReplay::start(&files, &config, &out, &[]);
    agent.wait_done(&out, files.len());
    let base = agent.base.clone();
    assert_eq!(get_json(&agent, "/agent/json")["type"], "agent_status");
    let apps = top_keys(&agent, "dashboard-apps", "application");
    let hosts = top_keys(&agent, "dashboard-hosts", "local_ip");
    assert!(apps.len() >= 2, "the capture has applications: {apps:?}");
    let events = get_json(&agent, "/events/json");
    let events = events.as_array().unwrap();
    assert!(!events.is_empty(), "the threshold fired");

    let mut browser = Browser::start(&tmp.0);
    browser.open(&format!("{base}/"));
    let deadline = Instant::now() + Duration::from_secs(15);
    let shown = loop {
        let shown = column(&mut browser, "apps");
        // Two samples make a line in the chart.
        if shown == apps && !column(&mut browser, "flows").is_empty() {
            std::thread::sleep(Duration::from_millis(2500));
            break shown;
        }
        if Instant::now() > deadline {
            let alert = browser.eval("document.getElementById('alert').textContent");
            panic!(
                "the applications table shows {shown:?}, the API has {apps:?}; \
                 the page says {alert}; complaints: {:?}",
                browser.complaints
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(column(&mut browser, "hosts"), hosts, "the hosts table");
    let thresholds = browser.eval(
        "[...document.querySelectorAll('#events tbody tr')].map(r => r.cells[1].textContent)",
    );
    assert_eq!(
        thresholds,
        json!(vec!["busy-app"; events.len()]),
        "the events table"
    );
    assert_eq!(
        browser.eval("document.getElementById('alert').hidden"),
        true
    );
    browser.screenshot(&artifacts().join("dashboard.png"));
    assert!(
        browser.complaints.is_empty(),
        "the page complained: {:#?}",
        browser.complaints
    );
    println!("dashboard shows applications {shown:?}");
    agent.stop();
}
