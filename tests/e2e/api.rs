//! The HTTP API (`flowstat-api`), through a real client against a real
//! agent: `flowstatd replay --api ADDR --linger`, answers checked against
//! the records of the same replay; `/metrics` checked by promtool and
//! scraped by a real Prometheus server.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{ApiReplay, TempDir, fixture, flowstatd, free_port};

const CONFIG: &str = r#"
[[flow_definition]]
name = "apps"
keys = ["application"]
emit = true

[[threshold]]
name = "busy-app"
metric = "apps"
value = 10
by_flow = true
"#;

fn captures() -> Vec<PathBuf> {
    [
        "ndpi/google_ssl.pcap",
        "ndpi/443-curl.pcap",
        "ndpi/http_ipv6.pcap",
    ]
    .iter()
    .map(|f| fixture(f))
    .collect()
}

fn records(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn rest_answers_what_the_records_say() {
    let dir = TempDir::new("api-rest");
    let (cfg, out) = (dir.path("agent.toml"), dir.path("out.json"));
    std::fs::write(&cfg, CONFIG).unwrap();
    let agent = ApiReplay::start(&captures(), &cfg, &out, &["-w", "1"]);
    let recs = {
        let files = captures().len();
        // Each file ends with an interval of its own.
        agent.wait_done(&out, files);
        std::thread::sleep(Duration::from_millis(200));
        records(&out)
    };
    let last = |kind: &str| {
        recs.iter()
            .rev()
            .find(|r| r["type"] == kind)
            .unwrap()
            .clone()
    };

    assert_eq!(agent.get("/agent/json"), (200, last("agent_status")));
    assert_eq!(
        agent.get("/interfaces/json"),
        (200, last("interface_stats"))
    );
    // A definition's top keys now: the last aggregate record's rows.
    let rows: Vec<Value> = last("aggregate")["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| json!({"key": r["key"], "value": r["rate"], "total": r["total"]}))
        .collect();
    assert!(!rows.is_empty());
    assert_eq!(agent.get("/activeflows/ALL/apps/json"), (200, json!(rows)));
    assert_eq!(
        agent.get("/activeflows/ALL/apps/json?maxFlows=0"),
        (200, json!([]))
    );
    let (status, err) = agent.get("/activeflows/eth0/apps/json");
    assert_eq!((status, &err["field"]), (400, &json!("interface")));
    // Events: what the event records say, after an id.
    let events: Vec<Value> = recs
        .iter()
        .filter(|r| r["type"] == "event")
        .cloned()
        .collect();
    assert!(events.len() >= 2, "{events:?}");
    let served = agent.get("/events/json?eventID=1").1;
    let strip = |e: &Value| {
        let mut e = e.clone();
        e.as_object_mut().unwrap().remove("type");
        e
    };
    let expected: Vec<Value> = events[1..].iter().map(strip).collect();
    assert_eq!(served, json!(expected));
    // Logged flows: the flow_purge records, numbered, after a number.
    let purges: Vec<Value> = recs
        .iter()
        .filter(|r| r["type"] == "flow_purge")
        .cloned()
        .collect();
    let (_, logged) = agent.get("/flows/json?flowID=0&maxFlows=1000");
    let logged = logged.as_array().unwrap();
    let got: Vec<Value> = logged.iter().map(|f| f["record"].clone()).collect();
    assert_eq!(got, purges);
    let second = logged[1]["flowID"].as_u64().unwrap();
    let (_, rest) = agent.get(&format!("/flows/json?flowID={second}&maxFlows=2"));
    assert_eq!(rest.as_array().unwrap()[0]["record"], purges[2]);
    // The largest flows of the last interval, largest first.
    let (_, top) = agent.get("/flows/top/json?maxFlows=5");
    let rates: Vec<u64> = top
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["total_rate"].as_u64().unwrap())
        .collect();
    assert!(
        !rates.is_empty() && rates.windows(2).all(|w| w[0] >= w[1]),
        "{rates:?}"
    );
}

#[test]
fn definitions_and_thresholds_change_through_the_api_and_bad_requests_are_refused() {
    let dir = TempDir::new("api-change");
    let (cfg, out) = (dir.path("agent.toml"), dir.path("out.json"));
    std::fs::write(&cfg, CONFIG).unwrap();
    let agent = ApiReplay::start(&[fixture("ndpi/google_ssl.pcap")], &cfg, &out, &[]);
    let hosts = r#"{"keys":["other_ip","other_port"],"value":"packets","n":5}"#;
    assert_eq!(agent.put("/flow/hosts/json", hosts).0, 204);
    let (status, d) = agent.get("/flow/hosts/json");
    assert_eq!(
        (status, &d["keys"], &d["value"]),
        (200, &json!(["other_ip", "other_port"]), &json!("packets"))
    );
    let names: Vec<Value> = agent
        .get("/flow/json")
        .1
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].clone())
        .collect();
    assert_eq!(names, [json!("apps"), json!("hosts")]);

    // Bad requests: each an error naming what is wrong; nothing changes.
    let put = |path: &str, body: &str| agent.put(path, body);
    let (status, e) = put("/flow/x/json", "{not json");
    assert_eq!(status, 400);
    assert!(e["error"].as_str().unwrap().contains("not JSON"), "{e}");
    let (status, e) = put("/flow/x/json", r#"{"keys":["application"],"colour":"red"}"#);
    assert_eq!(status, 400);
    assert!(e["error"].as_str().unwrap().contains("colour"), "{e}");
    let (status, e) = put("/flow/x/json", r#"{"keys":["colour"]}"#);
    assert_eq!(status, 400);
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("unknown field \"colour\""),
        "{e}"
    );
    let (status, e) = put("/flow/x/json", r#"{"keys":"application"}"#);
    assert_eq!((status, &e["field"]), (400, &json!("keys")));
    let big = format!(
        r#"{{"keys":["application"],"pad":"{}"}}"#,
        "x".repeat(100_000)
    );
    assert_eq!(put("/flow/x/json", &big).0, 413);
    let (status, e) = put("/threshold/t/json", r#"{"metric":"nope","value":1}"#);
    assert_eq!(status, 400);
    assert!(
        e["error"].as_str().unwrap().contains("metric \"nope\""),
        "{e}"
    );
    assert_eq!(agent.get("/flow/x/json").0, 404);

    // Thresholds, and definitions in use.
    let t = r#"{"metric":"hosts","value":5,"by_flow":true}"#;
    assert_eq!(agent.put("/threshold/busy-host/json", t).0, 204);
    assert_eq!(agent.get("/threshold/busy-host/json").1["metric"], "hosts");
    assert_eq!(
        agent.delete("/flow/hosts/json").0,
        409,
        "a threshold uses it"
    );
    assert_eq!(agent.delete("/threshold/busy-host/json").0, 204);
    assert_eq!(agent.delete("/flow/hosts/json").0, 204);
    assert_eq!(agent.delete("/flow/hosts/json").0, 404);
    assert_eq!(agent.get("/no/such/path").0, 404);
}

#[test]
fn a_token_guards_every_path() {
    let dir = TempDir::new("api-token");
    let (cfg, out) = (dir.path("agent.toml"), dir.path("out.json"));
    std::fs::write(&cfg, "[api]\ntoken = \"s3cret\"\n").unwrap();
    let agent = ApiReplay::start(&[fixture("ndpi/google_ssl.pcap")], &cfg, &out, &[]);
    let with = |path: &str, token: &str| {
        let r = agent
            .http
            .get(agent.url(path))
            .header("authorization", token)
            .call();
        r.unwrap().status().as_u16()
    };
    for path in ["/version", "/flow/json", "/metrics", "/no/such/path"] {
        let (status, e) = agent.get(path);
        assert_eq!(status, 401, "{path}");
        assert!(e["error"].is_string(), "{e}");
        assert_ne!(with(path, "Bearer s3cret"), 401, "{path}");
        assert_eq!(with(path, "Bearer guess"), 401, "{path}");
    }
}

/// An event produced while `GET /events/json` waits comes back at once.
#[test]
fn a_waiting_events_request_returns_when_an_event_comes() {
    let dir = TempDir::new("api-longpoll");
    let (cfg, out, pcap) = (
        dir.path("agent.toml"),
        dir.path("out.json"),
        dir.path("c.pcap"),
    );
    // 3 s quiet, then 3 s above 10 kB/s; 1 s intervals, paced as recorded.
    crate::analytics::write_crossing(&pcap, &[2_000, 20_000], 3);
    std::fs::write(
        &cfg,
        "[[threshold]]\nname = \"fat\"\nmetric = \"total_rate\"\nvalue = 10000\n",
    )
    .unwrap();
    let agent = ApiReplay::start(&[pcap], &cfg, &out, &["--realtime", "--interval", "1"]);
    let t = Instant::now();
    let (status, events) = agent.get("/events/json?eventID=0&timeout=30");
    let took = t.elapsed();
    assert_eq!(status, 200);
    assert_eq!(events.as_array().map(Vec::len), Some(1), "{events}");
    assert_eq!(events[0]["threshold"], "fat");
    // It waited for the crossing (about 3 s in), and no longer.
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(15),
        "{took:?}"
    );
    // Nothing newer: an empty answer after the timeout.
    let t = Instant::now();
    let (_, none) = agent.get("/events/json?eventID=1&timeout=1");
    assert_eq!(none, json!([]));
    assert!(t.elapsed() >= Duration::from_secs(1));
}

/// `/metrics` passes promtool, and a Prometheus server scraping the agent
/// answers a query for a flow definition's series with the value the
/// records give.
#[test]
fn prometheus_scrapes_the_flow_definition_series() {
    let dir = TempDir::new("api-prometheus");
    let (cfg, out) = (dir.path("agent.toml"), dir.path("out.json"));
    std::fs::write(&cfg, CONFIG).unwrap();
    let agent = ApiReplay::start(&[fixture("ndpi/google_ssl.pcap")], &cfg, &out, &["-w", "1"]);
    agent.wait_done(&out, 1);
    std::thread::sleep(Duration::from_millis(200));
    let metrics = ureq::get(&agent.url("/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    promtool_check(&metrics);
    // The value the records give: the last aggregate's Google total.
    let recs = records(&out);
    let agg = recs
        .iter()
        .rev()
        .find(|r| r["type"] == "aggregate")
        .unwrap();
    let google = agg["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"]["application"] == "Google")
        .unwrap()["total"]
        .as_u64()
        .unwrap();

    let prom_port = free_port();
    let target = agent.base.trim_start_matches("http://").to_owned();
    // The shipped scrape config, pointed at this agent, every second.
    let shipped =
        std::fs::read_to_string(crate::common::repo_file("conf/prometheus/flowstat.yml")).unwrap();
    let prom_cfg = dir.path("prometheus.yml");
    std::fs::write(
        &prom_cfg,
        shipped
            .replace("127.0.0.1:8008", &target)
            .replace("scrape_interval: 15s", "scrape_interval: 1s"),
    )
    .unwrap();
    let mut prom = Command::new("prometheus")
        .args([
            &format!("--config.file={}", prom_cfg.display()),
            &format!("--storage.tsdb.path={}", dir.path("tsdb").display()),
            &format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (Debian prometheus; .ci/deps test installs it)");
    let query = format!(
        "http://127.0.0.1:{prom_port}/api/v1/query?query=flowstat_flow_bytes_total%7Bdefinition%3D%22apps%22%2Capplication%3D%22Google%22%7D"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let value = loop {
        let answer = ureq::get(&query)
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_json::<Value>().ok());
        let v = answer
            .as_ref()
            .and_then(|a| a["data"]["result"][0]["value"][1].as_str())
            .map(str::to_owned);
        if let Some(v) = v {
            break v;
        }
        if Instant::now() > deadline {
            let _ = prom.kill();
            panic!("Prometheus never had the series: {answer:?}");
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    // Every query of the shipped Grafana dashboard is PromQL Prometheus
    // accepts.
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(crate::common::repo_file("conf/grafana/flowstat.json")).unwrap(),
    )
    .unwrap();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$instance", ".*")
                .replace("$apps", "apps")
                .replace("$hosts", "hosts");
            let answer: Value = ureq::get(&format!("http://127.0.0.1:{prom_port}/api/v1/query"))
                .query("query", &expr)
                .call()
                .unwrap()
                .body_mut()
                .read_json()
                .unwrap();
            assert_eq!(answer["status"], "success", "{expr}: {answer}");
        }
    }
    let _ = prom.kill();
    let _ = prom.wait();
    assert_eq!(value, google.to_string());
}

/// With an ASN database, /metrics carries flow-exporter's pair of series,
/// with its labels, and still passes promtool.
#[test]
fn metrics_carry_the_flow_exporter_series_with_an_asn_database() {
    let dir = TempDir::new("api-flow-exporter");
    let (cfg, out) = (dir.path("agent.toml"), dir.path("out.json"));
    std::fs::write(
        &cfg,
        format!(
            "[geo]\nasn = {:?}\n",
            fixture("geo/asn.tsv").to_string_lossy()
        ),
    )
    .unwrap();
    let agent = ApiReplay::start(&[fixture("ndpi/http_ipv6.pcap")], &cfg, &out, &["-w", "1"]);
    agent.wait_done(&out, 1);
    std::thread::sleep(Duration::from_millis(200));
    let (_, metrics) = agent.get("/metrics");
    let metrics = metrics.as_str().unwrap().to_owned();
    promtool_check(&metrics);
    // The capture's client network (64500) talks to Google (15169), both
    // ways.
    for (family, source, destination) in [
        (
            "flow_receive_bytes_total",
            ("15169", "GOOGLE"),
            ("64500", "TEST-CLIENT-NET"),
        ),
        (
            "flow_transmit_bytes_total",
            ("64500", "TEST-CLIENT-NET"),
            ("15169", "GOOGLE"),
        ),
    ] {
        let prefix = format!(
            "{family}{{source_as=\"{}\",source_as_name=\"{}\",destination_as=\"{}\",destination_as_name=\"{}\",hostname=",
            source.0, source.1, destination.0, destination.1
        );
        let line = metrics.lines().find(|l| l.starts_with(&prefix));
        let value: f64 = line
            .unwrap_or_else(|| panic!("no {prefix}... in\n{metrics}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(value > 0.0, "{line:?}");
    }
}

/// `promtool check metrics` on `text`.
fn promtool_check(text: &str) {
    use std::io::Write as _;
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian prometheus; .ci/deps test installs it)");
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let checked = check.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

/// Reads Server-Sent Events from `/stream` until `n` have come: each one's
/// id, event name and data.
fn read_events(
    agent: &ApiReplay,
    query: &str,
    last_id: Option<u64>,
    n: usize,
) -> Vec<(u64, String, Value)> {
    use std::io::BufRead as _;
    let mut req = agent.http.get(agent.url(&format!("/stream?{query}")));
    if let Some(id) = last_id {
        req = req.header("last-event-id", id.to_string());
    }
    let mut resp = req.call().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let reader = std::io::BufReader::new(resp.body_mut().as_reader());
    let mut events = Vec::new();
    let (mut id, mut name) = (0, String::new());
    for line in reader.lines() {
        let line = line.unwrap();
        if let Some(v) = line
            .strip_prefix("id: ")
            .or_else(|| line.strip_prefix("id:"))
        {
            id = v.trim().parse().unwrap();
        } else if let Some(v) = line
            .strip_prefix("event: ")
            .or_else(|| line.strip_prefix("event:"))
        {
            name = v.trim().to_owned();
        } else if let Some(v) = line
            .strip_prefix("data: ")
            .or_else(|| line.strip_prefix("data:"))
        {
            events.push((id, name.clone(), serde_json::from_str(v.trim()).unwrap()));
            if events.len() == n {
                break;
            }
        }
    }
    events
}

/// `/stream` sends records as they come, of the types asked for, and
/// resumes after `Last-Event-ID` from its window.
#[test]
fn the_stream_sends_records_as_they_come_and_resumes_after_an_id() {
    let dir = TempDir::new("api-stream");
    let (cfg, out, pcap) = (
        dir.path("agent.toml"),
        dir.path("out.json"),
        dir.path("c.pcap"),
    );
    crate::analytics::write_crossing(&pcap, &[2_000, 20_000, 2_000], 2);
    std::fs::write(
        &cfg,
        "[[threshold]]\nname = \"fat\"\nmetric = \"total_rate\"\nvalue = 10000\n",
    )
    .unwrap();
    let agent = ApiReplay::start(&[pcap], &cfg, &out, &["--realtime", "--interval", "1"]);
    let live = read_events(&agent, "types=agent_status,event", None, 4);
    let names: Vec<&str> = live.iter().map(|(_, n, _)| n.as_str()).collect();
    assert!(
        names.iter().all(|n| ["agent_status", "event"].contains(n)),
        "{names:?}"
    );
    for (_, name, data) in &live {
        assert_eq!(&data["type"], name);
    }
    let ids: Vec<u64> = live.iter().map(|e| e.0).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    // Resumed after the second: the third and fourth again, the same.
    let again = read_events(&agent, "types=agent_status,event", Some(ids[1]), 2);
    assert_eq!(again, live[2..]);
    // Every record of the replay, from the start of the window: the file's.
    agent.wait_done(&out, 6);
    let all = read_events(&agent, "", Some(0), records(&out).len());
    let streamed: Vec<Value> = all.into_iter().map(|(_, _, d)| d).collect();
    assert_eq!(streamed, records(&out));
    let (status, e) = agent.get("/stream?types=bogus");
    assert_eq!((status, &e["field"]), (400, &json!("types")));
}

/// A replay without `--linger` lets its streams send every record before
/// it exits, and ends them: the client reads to a clean end of the
/// response, which holds every `agent_status` from the stream's start to
/// the last (the stream used to be cut).
#[test]
fn a_replay_ends_its_streams_after_the_last_record() {
    let dir = TempDir::new("api-stream-end");
    let (out, pcap) = (dir.path("out.json"), dir.path("c.pcap"));
    crate::analytics::write_crossing(&pcap, &[2_000, 2_000, 2_000], 1);
    let port = free_port();
    let mut child = Command::new(flowstatd())
        .arg("replay")
        .arg(&pcap)
        .args([
            "-o",
            &out.to_string_lossy(),
            "--realtime",
            "--interval",
            "1",
        ])
        .args(["--api", &format!("127.0.0.1:{port}")])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // agent_status comes at interval ends, a second of packet time apart
    // (the stream may miss those before it opened, never those after).
    let url = format!("http://127.0.0.1:{port}/stream?types=agent_status");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut resp = loop {
        match ureq::get(&url).call() {
            Ok(resp) => break resp,
            Err(e) => assert!(Instant::now() < deadline, "no stream: {e}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = resp
        .body_mut()
        .read_to_string()
        .expect("the stream ends cleanly");
    assert!(child.wait().unwrap().success());
    let streamed: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let status: Vec<Value> = records(&out)
        .into_iter()
        .filter(|r| r["type"] == "agent_status")
        .collect();
    assert!(!streamed.is_empty() && streamed.len() <= status.len());
    assert_eq!(streamed, status[status.len() - streamed.len()..]);
}

/// Load: 50 clients long-polling, 10 streaming and 1,000 idle connections
/// while a replay runs at full speed: the file sink gets every record a
/// replay without the API gives, and every client is served; then requests
/// beyond `max_clients` get 503 at once instead of queueing.
#[test]
fn clients_under_load_cost_the_pipeline_nothing() {
    let dir = TempDir::new("api-load");
    let (cfg, out, plain) = (
        dir.path("agent.toml"),
        dir.path("out.json"),
        dir.path("plain.json"),
    );
    std::fs::write(&cfg, format!("{CONFIG}\n[api]\nmax_clients = 64\n")).unwrap();
    let files: Vec<PathBuf> = crate::common::corpus().into_iter().take(40).collect();
    let status = Command::new(flowstatd())
        .arg("replay")
        .args(&files)
        .args(["-c", &cfg.to_string_lossy(), "-o", &plain.to_string_lossy()])
        .status()
        .unwrap();
    assert!(status.success());

    let agent = ApiReplay::start(&files, &cfg, &out, &[]);
    let port = agent
        .base
        .rsplit(':')
        .next()
        .unwrap()
        .parse::<u16>()
        .unwrap();
    let idle: Vec<std::net::TcpStream> = (0..1_000)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for i in 0..60 {
        let (url, stop) = (agent.base.clone(), stop.clone());
        clients.push(std::thread::spawn(move || {
            let http: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(5)))
                .build()
                .into();
            let (mut answered, mut refused) = (0, 0);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let path = if i < 50 {
                    "/events/json?eventID=1000000&timeout=1"
                } else {
                    "/stream"
                };
                match http.get(format!("{url}{path}")).call() {
                    Ok(r) if r.status() == 503 => refused += 1,
                    Ok(mut r) => {
                        // A stream reads until its timeout cuts it.
                        let _ = r.body_mut().read_to_vec();
                        answered += 1;
                    }
                    Err(_) => answered += 1,
                }
            }
            (answered, refused)
        }));
    }
    // While they hammer it, a plain request is answered too.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(agent.get("/version").0, 200);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (answered, refused) = clients
        .into_iter()
        .map(|c| c.join().unwrap())
        .fold((0, 0), |(a, r), (a2, r2)| (a + a2, r + r2));
    drop(idle);
    assert!(answered >= 60, "only {answered} answers");
    assert_eq!(refused, 0, "60 clients are within max_clients (64)");
    assert_eq!(agent.get("/version").0, 200);
    // 100 long-polls at once: 64 wait, the rest are refused at once.
    let polls: Vec<_> = (0..100)
        .map(|_| {
            let url = agent.url("/events/json?eventID=1000000&timeout=3");
            std::thread::spawn(move || {
                let http: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                http.get(url).call().unwrap().status().as_u16()
            })
        })
        .collect();
    let statuses: Vec<u16> = polls.into_iter().map(|p| p.join().unwrap()).collect();
    let refused = statuses.iter().filter(|s| **s == 503).count();
    let served = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(served + refused, 100, "{statuses:?}");
    assert!((30..=36).contains(&refused), "{refused} refused of 100");
    // Every record of the plain replay, in order (agent_status aside: it
    // lists the api sink too).
    agent.wait_done(&out, files.len());
    let without_status = |p: &Path| -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with(r#"{"type":"agent_status""#))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(without_status(&out), without_status(&plain));
}

/// A stream client that stops reading while more records than the window
/// holds go by is cut: its stream ends instead of waiting forever, short of
/// the records it missed.
#[test]
fn a_stream_client_that_falls_behind_the_window_is_cut() {
    let dir = TempDir::new("api-slow");
    let (cfg, out, pcap) = (
        dir.path("agent.toml"),
        dir.path("out.json"),
        dir.path("f.pcap"),
    );
    // 100,000 flows: 200,000 flow records, three times the window.
    crate::common::udp_flows(&pcap, 100_000);
    std::fs::write(&cfg, "").unwrap();
    let agent = ApiReplay::start(&[pcap], &cfg, &out, &["-w", "1"]);
    let mut resp = agent
        .http
        .get(agent.url("/stream?types=flow,flow_purge"))
        .call()
        .unwrap();
    // Read nothing until the replay is over.
    agent.wait_done(&out, 1);
    let t = Instant::now();
    let body = resp
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_string()
        .unwrap();
    let events = body.matches("\ndata:").count() + usize::from(body.starts_with("data:"));
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "the stream was never cut"
    );
    assert!(events < 200_000, "{events} events: nothing was missed?");
}
