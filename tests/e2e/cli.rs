//! The command line: help, config checking, output to a file.

use std::process::Command;

use crate::common::{TempDir, assert_config_problems, fixture, flowstatd, run_flowstatd};

#[test]
fn help_teaches_the_commands() {
    let out = run_flowstatd(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for word in ["replay", "check-config", "list-applications", "Examples:"] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
    let out = run_flowstatd(&["replay", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "--config",
        "--interval",
        "--local-network",
        "--output",
        "--realtime",
        "--role",
        "--decapsulate",
    ] {
        assert!(help.contains(word), "replay --help lacks {word}");
    }
}

/// `list-applications`: the built-in table, one aligned line each, and
/// the table a config names with -c.
#[test]
fn list_applications_prints_what_the_agent_can_name() {
    let out = run_flowstatd(&["list-applications", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for word in ["--config", "dpi.applications", "--format", "Examples:"] {
        assert!(help.contains(word), "list-applications --help lacks {word}");
    }

    let out = run_flowstatd(&["list-applications"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let header = lines[0];
    assert!(header.trim_start().starts_with("ID"), "{header}");
    let rows = &lines[1..lines.len() - 1];
    assert!(rows.len() >= 300, "{} applications", rows.len());
    assert_eq!(
        lines[lines.len() - 1],
        format!("{} applications", rows.len())
    );
    // Aligned: every column starts where its header does.
    let columns: Vec<usize> = ["NAME", "CATEGORY", "DOMAINS", "NETWORKS"]
        .iter()
        .map(|h| header.find(h).unwrap())
        .collect();
    let google = rows
        .iter()
        .find(|r| r.split_whitespace().nth(1) == Some("Google"))
        .expect("a Google line");
    assert_eq!(&google[columns[0]..columns[0] + 6], "Google");
    assert_eq!(&google[columns[1]..columns[1] + 3], "Web");
    assert_eq!(google.split_whitespace().next(), Some("126"));
    for r in rows {
        assert_eq!(r.len(), header.len(), "{r}");
        let f: Vec<&str> = r.split_whitespace().collect();
        assert_eq!(f.len(), 5, "{r}");
        let (domains, networks): (u32, u32) = (f[3].parse().unwrap(), f[4].parse().unwrap());
        assert!(domains + networks > 0, "{r}");
    }

    // -c: the table the config's dpi.applications names, relative to it.
    let tmp = TempDir::new("listapps");
    std::fs::write(
        tmp.path("apps.toml"),
        "[[application]]\nid = 1000001\nname = \"Intranet\"\ncategory = \"Collaborative\"\n\
         domains = [\"corp.example\", \"intranet.\"]\nnetworks = [\"10.1.0.0/16\"]\n",
    )
    .unwrap();
    let conf = tmp.path("flowstatd.toml");
    std::fs::write(&conf, "[dpi]\napplications = \"apps.toml\"\n").unwrap();
    let out = run_flowstatd(&[
        "list-applications",
        "-c",
        &conf.to_string_lossy(),
        "--format",
        "tsv",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1000001\tIntranet\tCollaborative\t2\t1\n"
    );
    // A broken table: the config's file, key and the table's reason.
    std::fs::write(
        tmp.path("apps.toml"),
        "[[application]]\nid = 1\nname = \"X\"\ncategory = \"Nope\"\n",
    )
    .unwrap();
    let out = run_flowstatd(&["list-applications", "-c", &conf.to_string_lossy()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("dpi.applications") && stderr.contains("category \"Nope\""),
        "{stderr}"
    );
}

#[test]
fn the_shipped_config_passes_check_config_and_runs_on_a_bare_host() {
    // A host as fresh as Debian's, inside namespaces of its own: no
    // /var/lib/flowstatd, no /run/flowstatd, no flowstatd user or group,
    // and a network of its own (only lo).
    let tmp = TempDir::new("bare-host");
    for file in ["passwd", "group"] {
        let text = std::fs::read_to_string(format!("/etc/{file}")).unwrap();
        let kept: String = text
            .lines()
            .filter(|l| !l.starts_with("flowstatd:"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(tmp.path(file), kept).unwrap();
    }
    let conf = fixture("../../conf/flowstatd.toml");
    let script = format!(
        r#"set -eu
mount -t tmpfs none /var/lib
mount -t tmpfs none /run
mount --bind {passwd} /etc/passwd
mount --bind {group} /etc/group
ip link set lo up
if id flowstatd 2>/dev/null; then echo "flowstatd user still there"; exit 1; fi
{bin} check-config {conf}
{bin} replay -c {conf} {pcap}
wc -l < /var/lib/flowstatd/flows.json > {replayed}
{bin} run -c {conf} -I lo 2> {log} &
pid=$!
for i in $(seq 300); do grep -q "flowstatd running" {log} && break; sleep 0.1; done
test -d /run/flowstatd
kill -TERM $pid
wait $pid
"#,
        passwd = tmp.path("passwd").display(),
        group = tmp.path("group").display(),
        replayed = tmp.path("replayed").display(),
        log = tmp.path("run.log").display(),
        bin = flowstatd().display(),
        conf = conf.display(),
        pcap = fixture("ndpi/443-curl.pcap").display(),
    );
    let out = Command::new("unshare")
        .args(["--mount", "--net", "--propagation", "private", "sh", "-c"])
        .arg(&script)
        .output()
        .unwrap();
    let log = std::fs::read_to_string(tmp.path("run.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "{}\n{}\nrun log:\n{log}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with(&format!("{}: ok\n", conf.display())),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The replay made the file sink's directory and wrote every record.
    let replayed: u64 = std::fs::read_to_string(tmp.path("replayed"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(replayed >= 4, "{replayed} records");
    assert!(log.contains("flowstatd running"), "{log}");
}

#[test]
fn check_config_reports_what_would_fail_at_start_each_on_its_line() {
    let tmp = TempDir::new("startconf");
    let conf = tmp.path("flowstatd.toml");
    std::fs::write(
        &conf,
        r#"[agent]
workers = "four"
local_networks = ["10.0.0.0/33", "192.0.2.1", "x/8", "2001:db8::/129"]
user = "nosuchuser9"
status_file = "/proc/version/status.json"

[[capture]]
interface = "nosuch9"
filter = "tcp porrt 80"

[[sink]]
type = "nats"

[[sink]]
type = "zmq"
endpoint = "tcp//127.0.0.1:5556"

[[sink]]
type = "file"
path = "/proc/version/flows/flows.json"
"#,
    )
    .unwrap();
    let out = run_flowstatd(&["check-config", &conf.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(78));
    let path = conf.display();
    let want = [
        "2: agent.workers: invalid type: string \"four\", expected a whole number (0 or more)",
        "3: agent.local_networks[0]: \"10.0.0.0/33\": the prefix /33 is longer than an IPv4 address (at most /32)",
        "3: agent.local_networks[2]: \"x/8\": \"x\" is not an IPv4 or IPv6 address",
        "3: agent.local_networks[3]: \"2001:db8::/129\": the prefix /129 is longer than an IPv6 address (at most /128)",
        "4: agent.user: no user \"nosuchuser9\" on this host: create it (adduser --system --group nosuchuser9), or set agent.user = \"\" to stay the user that starts the agent",
        "5: agent.status_file: the directory /proc/version cannot be made: /proc/version is not a directory",
        "8: capture[0].interface: no interface named \"nosuch9\" on this host (see `ip link`)",
        "9: capture[0].filter: bad BPF filter \"tcp porrt 80\": can't parse filter expression: syntax error",
        "12: sink[0].type: unknown sink type \"nats\", expected one of \"stdout\", \"file\", \"socket\", \"zmq\", \"ipfix\", \"kafka\", \"mqtt\", \"http\"",
        "16: sink[1].endpoint: invalid ZeroMQ endpoint \"tcp//127.0.0.1:5556\": expected tcp://HOST:PORT or ipc:///PATH",
        "20: sink[2].path: the directory /proc/version/flows cannot be made: /proc/version is not a directory",
    ]
    .map(|l| format!("flowstatd: {path}:{l}"));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .collect::<Vec<_>>(),
        want,
    );
    // The bare address is taken, with a note on stdout.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "{path}:3: agent.local_networks[1]: 192.0.2.1 has no prefix length: taken as \
             192.0.2.1/32 (write \"192.0.2.1/32\" to say so) (note)\n"
        )
    );
}

#[test]
fn a_toml_syntax_error_keeps_its_picture_with_a_prefix_on_every_line() {
    let tmp = TempDir::new("syntaxconf");
    let conf = tmp.path("flowstatd.toml");
    std::fs::write(&conf, "[agent]\nworkers = 2\n[flows\n").unwrap();
    let out = run_flowstatd(&["check-config", &conf.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines[0].starts_with(&format!("flowstatd: {}:3: ", conf.display())),
        "{stderr}"
    );
    assert!(lines.contains(&"flowstatd: 3 | [flows"), "{stderr}");
    assert!(lines.iter().any(|l| l.ends_with('^')), "{stderr}");
    assert!(
        lines.iter().all(|l| l.starts_with("flowstatd: ")),
        "{stderr}"
    );
}

#[test]
fn check_config_names_file_key_and_reason_of_every_error() {
    let tmp = TempDir::new("badconf");
    let conf = tmp.path("bad.toml");
    std::fs::write(
        &conf,
        "[agent]\nlocal_networks = [\"10.0.0.0/33\"]\nupdate_interval = 15\n[flows]\nmax_flows = 0\n",
    )
    .unwrap();
    let out = run_flowstatd(&["check-config", &conf.to_string_lossy()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let path = conf.to_string_lossy();
    for (key, reason) in [
        ("agent.local_networks[0]", "the prefix /33 is longer"),
        ("agent.update_interval", "unknown key"),
        ("flows.max_flows", "must be between"),
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(&*path) && l.contains(key) && l.contains(reason)),
            "no line names {key} ({reason}):\n{stderr}"
        );
    }
    // The same config is refused by replay too.
    let pcap = fixture("ndpi/443-curl.pcap");
    let out = run_flowstatd(&["replay", "-c", &path, &pcap.to_string_lossy()]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}

#[test]
fn check_config_names_the_key_inside_a_sink() {
    assert_config_problems(
        "[[sink]]\ntype = \"zmq\"\nendpoint = \"foo://bar\"\n\
         [[sink]]\ntype = \"zmq\"\nendpoint = \"tcp://127.0.0.1\"\nsend_hwm = \"lots\"\n\
         [[sink]]\ntype = \"nats\"\n\
         [[sink]]\ntype = \"file\"\npath = \"/tmp/f.json\"\nendpoint = \"tcp://x\"\n\
         [[sink]]\ntype = \"kafka\"\nbrokers = [\"k1:9092\", \"k2\"]\ntopic = \"flows {type}\"\n\
         [[sink]]\ntype = \"kafka\"\n",
        &[
            ("sink[0].endpoint", &["unknown transport \"foo\""]),
            ("sink[1].endpoint", &["no port"]),
            ("sink[1].send_hwm", &["invalid type"]),
            ("sink[2].type", &["unknown sink type \"nats\""]),
            ("sink[3].endpoint", &["applies to type socket and zmq only"]),
            (
                "sink[4].brokers[1]",
                &["invalid broker \"k2\": no port: expected HOST:PORT"],
            ),
            (
                "sink[4].topic",
                &[
                    "' ' cannot be in a Kafka topic name (letters, digits, '.', '_' and '-' only)",
                    "e.g. \"flowstat.{type}\"",
                ],
            ),
            ("sink[5].brokers", &["is required: a list of HOST:PORT"]),
        ],
    );
}

#[test]
fn check_config_names_a_bad_ipfix_collector_and_the_fix() {
    let fix = "e.g. 127.0.0.1:4739, [2001:db8::1]:4739 or collector.example:4739";
    assert_config_problems(
        "[[sink]]\ntype = \"ipfix\"\ncollector = \"10.0.0.1\"\n\
         [[sink]]\ntype = \"ipfix\"\ncollector = \"::1:4739\"\nversion = 5\n\
         [[sink]]\ntype = \"ipfix\"\ncollector = \"udp://c.example:4739\"\n\
         [[sink]]\ntype = \"ipfix\"\ncollector = \"c.example:4739\"\ntypes = [\"flow_purge\"]\n\
         [[sink]]\ntype = \"ipfix\"\n",
        &[
            ("sink[0].collector", &["no port: expected HOST:PORT", fix]),
            (
                "sink[1].collector",
                &["an IPv6 address goes in brackets", "[::1]:PORT"],
            ),
            (
                "sink[1].version",
                &["must be 10 (IPFIX) or 9 (NetFlow v9)", "not 5"],
            ),
            ("sink[2].collector", &["without udp://", fix]),
            (
                "sink[3].types",
                &["add flow, flow_stats", "or leave types out"],
            ),
            ("sink[4].collector", &["is required: HOST:PORT", fix]),
        ],
    );
}

#[test]
fn output_goes_to_a_file_and_options_apply() {
    let tmp = TempDir::new("output");
    let out_path = tmp.path("records.json");
    let pcap = fixture("ndpi/443-curl.pcap");
    let out = run_flowstatd(&[
        "replay",
        "--output",
        &out_path.to_string_lossy(),
        "--interval",
        "1",
        "--role",
        "wan",
        "--local-network",
        "178.62.0.0/16",
        &pcap.to_string_lossy(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let text = std::fs::read_to_string(&out_path).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let stats: Vec<_> = records
        .iter()
        .filter(|r| r["type"] == "agent_status")
        .collect();
    assert!(stats.len() >= 2, "1 s intervals over a 1.1 s capture");
    assert!(stats.iter().all(|r| r["update_interval"] == 1));
    let purge = records.iter().find(|r| r["type"] == "flow_purge").unwrap();
    assert_eq!(purge["internal"], false);
    // Both ends are inside now (without the option the server is
    // "remote"); the client stays the local side.
    assert_eq!(purge["flow"]["local_ip"], "192.168.1.13");
    let flow = records.iter().find(|r| r["type"] == "flow").unwrap();
    assert_eq!(flow["flow"]["other_type"], "local");
}

#[test]
fn replay_ends_quietly_when_its_reader_goes_away() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    // Far more output than a pipe holds: the reader's exit is noticed.
    let pcap = fixture("ndpi/openvpn.pcap").to_string_lossy().into_owned();
    let mut child = Command::new(flowstatd())
        .arg("replay")
        .args(std::iter::repeat_n(&pcap, 200))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("{\"type\":"), "{first}");
    // The reader is gone (`| head -1`).
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {log}", out.status);
    assert!(!log.contains("ERROR"), "{log}");
}

#[test]
fn list_protocols_names_each_protocol_and_how_it_is_found() {
    let out = run_flowstatd(&["list-protocols"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no {name} line:\n{text}"))
            .to_owned()
    };
    assert!(line("DNS").contains("payload (dns: TCP, UDP; ports 53"));
    assert!(line("ICMP").contains("IP protocol 1"));
    let count: usize = text
        .lines()
        .last()
        .and_then(|l| l.strip_suffix(" protocols"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert_eq!(count, text.lines().count() - 2, "{text}");
}

/// netifyd's habits: `--status` is `status`, `--dump-protos` is
/// `list-protocols`, and -I/-E take local networks after the interface.
#[test]
fn netifyd_options_work() {
    let tmp = TempDir::new("netifyd-options");
    let status = tmp.path("status.json");
    let cfg = tmp.path("agent.toml");
    std::fs::write(
        &cfg,
        format!("[agent]\nstatus_file = {:?}\n", status.to_string_lossy()),
    )
    .unwrap();
    // --type and --types both work, in replay as in tail.
    let replay = run_flowstatd(&[
        "replay",
        "--type",
        "agent_status,interface_stats",
        "-o",
        &status.to_string_lossy(),
        &fixture("ndpi/dns.pcap").to_string_lossy(),
    ]);
    assert!(replay.status.success());
    let cfg = cfg.to_string_lossy();
    let (alias, command) = (
        run_flowstatd(&["--status", "-c", &cfg]),
        run_flowstatd(&["status", "-c", &cfg]),
    );
    assert!(
        alias.status.success(),
        "{}",
        String::from_utf8_lossy(&alias.stderr)
    );
    assert!(!alias.stdout.is_empty());
    assert_eq!(alias.stdout, command.stdout);
    let (alias, command) = (
        run_flowstatd(&["--dump-protos"]),
        run_flowstatd(&["list-protocols"]),
    );
    assert!(alias.status.success() && !alias.stdout.is_empty());
    assert_eq!(alias.stdout, command.stdout);
    // The interface is checked first; a bad network is named.
    let out = run_flowstatd(&["-c", &cfg, "-I", "nosuch0,192.168.0.0/24"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("-I nosuch0: no interface named"),
        "{stderr}"
    );
    let out = run_flowstatd(&["-c", &cfg, "-E", "lo,192.168.0.0/33"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("\"192.168.0.0/33\": the prefix /33 is longer than an IPv4 address"),
        "{stderr}"
    );
}
