//! `flowstatd replay`'s progress and `flowstatd tail` in a real terminal:
//! tmux runs them at 80x24 (and the replay at 40x24 too), and
//! `capture-pane` must show lines that fit, and the counts the records
//! written hold.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{TempDir, Tmux, flowstatd, paced_udp_flows};

/// The records of a file sink, parsed.
fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The flow_purge records among `records`: one per flow.
fn flows(records: &[Value]) -> usize {
    records.iter().filter(|r| r["type"] == "flow_purge").count()
}

/// `n` with thousands separated, as flowstatd prints counts: `1,500`.
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// The number before `unit` in `line` (`1,500 pkts` for ` pkts`).
fn number_before(line: &str, unit: &str) -> Option<u64> {
    let head = &line[..line.find(unit)?];
    let digits = head.rsplit(' ').next()?.replace(',', "");
    digits.parse().ok()
}

#[test]
fn replay_shows_one_bar_that_fits_and_ends_with_a_summary() {
    for width in [80, 40] {
        let dir = TempDir::new("progress");
        // Two files, paced: 900 then 600 packets, 2 s each.
        let first = dir.path("the-first-capture-of-this-test-has-a-long-name.pcap");
        let second = dir.path("second.pcap");
        paced_udp_flows(&first, 2, |_| 300);
        paced_udp_flows(&second, 2, |_| 200);
        let out = dir.path("out.json");
        let replay = format!(
            "{} replay --realtime --interval 1 -o {} {} {}",
            flowstatd().display(),
            out.display(),
            first.display(),
            second.display()
        );
        let tmux = Tmux::start(width, 24, &replay);
        // Every line fits but the summary, a line for the log, which the
        // terminal may wrap.
        let fits = |line: &str| {
            line.chars().count() <= usize::from(width) || line.starts_with("flowstatd: replayed")
        };
        let bars = |screen: &str| -> Vec<(u64, u64)> {
            screen
                .lines()
                .filter(|l| l.starts_with('['))
                .map(|l| {
                    let percent = number_before(l, "% ");
                    let packets = number_before(l, " pkts");
                    (percent.expect(l), packets.expect(l))
                })
                .collect()
        };

        // While it runs: one bar, fitting the width, over both files (its
        // percentage goes on, not back to 0, in the second).
        let mut seen: Vec<(u64, u64)> = Vec::new();
        let mut last = String::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while tmux.running() {
            let screen = tmux.screen();
            let bar = bars(&screen);
            assert!(
                bar.len() <= 1,
                "{width} columns, more than one bar:\n{screen}"
            );
            assert!(screen.lines().all(fits), "{width} columns:\n{screen}");
            seen.extend(bar);
            last = screen;
            assert!(Instant::now() < deadline, "the replay never ended:\n{last}");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!seen.is_empty(), "{width} columns: no bar shown:\n{last}");
        assert!(
            seen.windows(2)
                .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1),
            "{width} columns: the bar went back: {seen:?}"
        );
        assert!(
            seen.iter()
                .any(|&(percent, packets)| packets > 900 && percent < 100),
            "{width} columns: the bar never showed the second file: {seen:?}"
        );

        // At the end: the bar cleared, and a summary with the counts of
        // the records written.
        let screen = tmux.wait_exit("the replay never ended");
        assert!(bars(&screen).is_empty(), "{screen}");
        let written = records(&out);
        let want = format!(
            "flowstatd: replayed 2 files: 1,500 packets, {} flows, {} records (0 dropped) in ",
            grouped(flows(&written)),
            grouped(written.len())
        );
        let summary: Vec<&str> = screen.lines().filter(|l| l.starts_with(&want)).collect();
        assert_eq!(summary.len(), 1, "want {want}...:\n{screen}");
        assert!(summary[0].ends_with(" packets/s)"), "{screen}");
        assert!(screen.lines().all(fits), "{width} columns:\n{screen}");
        eprintln!("{width}x24, replay done:\n{screen}");
    }
}

#[test]
fn tail_prints_a_line_per_record_cut_to_the_terminal() {
    let dir = TempDir::new("tail-term");
    // A long name: the interface of every record, so that flow lines are
    // wider than 80 columns.
    let capture = dir.path("a-capture-whose-name-makes-every-flow-line-wide.pcap");
    paced_udp_flows(&capture, 1, |_| 20);
    let sock = dir.path("flows.sock");
    let out = dir.path("out.json");
    let config = dir.path("flowstatd.toml");
    std::fs::write(
        &config,
        format!(
            "[[sink]]\ntype = \"socket\"\nendpoint = \"unix://{}\"\n\n\
             [[sink]]\ntype = \"file\"\npath = \"{}\"\n",
            sock.display(),
            out.display()
        ),
    )
    .unwrap();
    let log = dir.path("replay.log");
    let mut replay = std::process::Command::new(flowstatd())
        .args(["replay", "-c"])
        .arg(&config)
        .arg(&capture)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();

    // The replay says at once that its socket sink waits for a consumer,
    // and how to be one.
    let endpoint = format!("unix://{}", sock.display());
    let deadline = Instant::now() + Duration::from_secs(30);
    let told = loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if text.contains("wait for a consumer") {
            break text;
        }
        assert!(Instant::now() < deadline, "never told of waiting:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let waiting = told.lines().find(|l| l.contains("wait for a consumer"));
    let waiting = waiting.unwrap();
    assert!(
        waiting.starts_with(&format!("flowstatd: sink socket:{endpoint}: "))
            && waiting.contains("waiting up to 10 s")
            && waiting.contains(&format!("`flowstatd tail {endpoint}`"))
            && waiting.contains("-o FILE"),
        "{told}"
    );

    let tail = format!("{} tail {endpoint}", flowstatd().display());
    let tmux = Tmux::start(80, 24, &tail);
    let screen = tmux.wait_exit("tail never ended");
    assert!(replay.wait().unwrap().success());

    // A line per record, in order, none wider than the terminal; the
    // wide ones cut, with `…`.
    let written = records(&out);
    let lines: Vec<&str> = screen
        .lines()
        .skip_while(|l| !l.starts_with("flowstatd tail: connected to"))
        .skip(1)
        .take_while(|l| !l.starts_with("Pane is dead"))
        .filter(|l| !l.is_empty())
        .collect();
    let kinds: Vec<&str> = lines
        .iter()
        .map(|l| l.get(9..).and_then(|r| r.split(' ').next()).unwrap_or(l))
        .collect();
    // The socket sink greets each client with the agent's hello.
    let want: Vec<&str> = std::iter::once("agent_hello")
        .chain(written.iter().map(|r| r["type"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, want, "{screen}");
    assert!(lines.iter().all(|l| l.chars().count() <= 80), "{screen}");
    let cut = lines
        .iter()
        .filter(|l| l.chars().count() == 80 && l.ends_with('…'));
    assert!(
        cut.count() >= flows(&written),
        "the flow lines are cut:\n{screen}"
    );
    eprintln!("80x24, tail done:\n{screen}");
}
