//! `flowstatd status`: the running agent's last `agent_status` (and
//! `interface_stats`), from its status file, as a table.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde_json::Value;

/// Renders the status file's records for a person; `now_secs` is the
/// current Unix time, to say how old the status is.
pub fn render(text: &str, now_secs: u64) -> anyhow::Result<String> {
    let mut status = None;
    let mut interfaces = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value =
            serde_json::from_str(line).context("the status file holds a line that is not JSON")?;
        match v["type"].as_str() {
            Some("agent_status") => status = Some(v),
            Some("interface_stats") => interfaces = Some(v),
            _ => {}
        }
    }
    let s = status.context("the status file holds no agent_status record")?;
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
    let mut out = String::new();
    let at = n(&s, "timestamp");
    let age = now_secs.saturating_sub(at);
    let stale = age > 3 * n(&s, "update_interval").max(1);
    let _ = writeln!(
        out,
        "flowstatd {}, up {}, status of {} ago{}",
        s["agent_version"].as_str().unwrap_or("?"),
        duration(n(&s, "uptime")),
        duration(age),
        if stale {
            " (stale: is the agent running?)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "flows      {} in the table ({} active, {} closing); last interval: {} purged, {} expired, {} evicted",
        n(&s, "flow_count"),
        n(&s, "flows_active"),
        n(&s, "flows_expiring"),
        n(&s, "flows_purged"),
        n(&s, "flows_expired"),
        n(&s, "flows_evicted"),
    );
    let _ = writeln!(
        out,
        "cpu        {} cores; user {:.1} s, system {:.1} s since start",
        n(&s, "cpu_cores"),
        n(&s, "cpu_user_ms") as f64 / 1000.0,
        n(&s, "cpu_system_ms") as f64 / 1000.0,
    );
    let _ = writeln!(
        out,
        "memory     {} MiB resident (peak {} MiB)",
        n(&s, "memrss_kb") / 1024,
        n(&s, "maxrss_kb") / 1024
    );
    table(
        &mut out,
        "capture",
        &s["captures"],
        &["received", "dropped"],
    );
    table(
        &mut out,
        "sink",
        &s["sinks"],
        &["sent", "dropped", "queued"],
    );
    if let Some(i) = interfaces {
        let mut per_if = serde_json::Map::new();
        if let Some(map) = i.as_object() {
            for (name, v) in map.iter().filter(|(k, _)| *k != "type") {
                per_if.insert(name.clone(), v.clone());
            }
        }
        table(
            &mut out,
            "interface",
            &Value::Object(per_if),
            &[
                "raw",
                "ip",
                "tcp",
                "udp",
                "discarded",
                "queue_dropped",
                "rx_packets_per_sec",
                "rx_bytes_per_sec",
            ],
        );
    }
    Ok(out)
}

/// A table of `map`'s entries (name -> object) with `columns`.
fn table(out: &mut String, title: &str, map: &Value, columns: &[&str]) {
    let Some(rows) = map.as_object() else { return };
    let width = rows
        .keys()
        .map(String::len)
        .chain([title.len()])
        .max()
        .unwrap_or(0);
    let _ = write!(out, "{title:width$}");
    for c in columns {
        let _ = write!(out, "  {c:>12}");
    }
    out.push('\n');
    for (name, row) in rows {
        let _ = write!(out, "{name:width$}");
        for c in columns {
            let _ = write!(
                out,
                "  {:>12}",
                row[*c].as_u64().map_or("-".to_owned(), |v| v.to_string())
            );
        }
        out.push('\n');
    }
}

/// `90061` -> `1d 1h 1m 1s`.
fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_agents_status() {
        let text = r#"{"type":"agent_status","agent_version":"0.1.0","captures":{"eth0":{"dropped":2,"received":1000}},"cpu_cores":2,"cpu_user_ms":1500,"cpu_system_ms":250,"flow_count":42,"flows_active":7,"flows_expiring":1,"flows_purged":3,"flows_expired":3,"flows_evicted":0,"maxrss_kb":20480,"memrss_kb":10240,"sinks":{"stdout":{"dropped":0,"queued":0,"sent":99}},"timestamp":1000,"update_interval":15,"uptime":3700}
{"type":"interface_stats","eth0":{"raw":1000,"ip":990,"tcp":900,"udp":90,"discarded":10,"queue_dropped":0,"rx_packets_per_sec":66,"rx_bytes_per_sec":9000}}
"#;
        let out = render(text, 1_010).unwrap();
        assert!(
            out.starts_with("flowstatd 0.1.0, up 1h 1m, status of 10s ago\n"),
            "{out}"
        );
        assert!(
            out.contains("42 in the table (7 active, 1 closing)"),
            "{out}"
        );
        assert!(out.contains("user 1.5 s, system 0.2 s"), "{out}");
        assert!(out.contains("10 MiB resident (peak 20 MiB)"), "{out}");
        let capture = out
            .lines()
            .find(|l| l.starts_with("eth0") && l.contains("1000"))
            .unwrap();
        assert!(capture.ends_with("2"), "{capture}");
        assert!(
            out.lines()
                .any(|l| l.starts_with("stdout") && l.contains("99")),
            "{out}"
        );
        assert!(
            out.lines()
                .any(|l| l.starts_with("eth0") && l.trim_end().ends_with("9000")),
            "{out}"
        );
        assert!(render(text, 2_000).unwrap().contains("stale"));
    }

    #[test]
    fn refuses_what_is_not_a_status_file() {
        assert!(render("hello", 0).is_err());
        assert!(render(r#"{"type":"flow"}"#, 0).is_err());
    }
}
