//! `/metrics`: the latest interval in Prometheus' text format (version
//! 0.0.4): the agent's counters and gauges, each interface's, and one
//! counter family per flow definition value, labelled by the definition's
//! key fields (bounded by its `n` plus `"other"`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use flowstat_analytics::{DefinitionConfig, Spec};
use serde_json::Value;

use crate::state::Latest;

/// flow-exporter's series (bytes by source and destination AS, each way),
/// as flow definitions: its metric name, the side the bytes come from,
/// and the keys (source AS and name, then destination AS and name).
const FLOW_EXPORTER: [(&str, &str, [&str; 4]); 2] = [
    (
        "flow_receive_bytes",
        "other_bytes",
        ["other_asn", "other_as_name", "local_asn", "local_as_name"],
    ),
    (
        "flow_transmit_bytes",
        "local_bytes",
        ["local_asn", "local_as_name", "other_asn", "other_as_name"],
    ),
];

/// The flow definitions behind flow-exporter's series, for an agent with
/// an ASN database: `flow_receive_bytes_total` and
/// `flow_transmit_bytes_total{source_as, source_as_name, destination_as,
/// destination_as_name, hostname}`, so that its Grafana dashboards work.
pub fn flow_exporter_definitions() -> Vec<DefinitionConfig> {
    FLOW_EXPORTER
        .iter()
        .map(|(name, value, keys)| DefinitionConfig {
            name: (*name).to_owned(),
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            value: (*value).to_owned(),
            filter: Default::default(),
            n: 100,
            emit: false,
        })
        .collect()
}

/// One family: its help, type and samples.
#[derive(Default)]
struct Family {
    help: &'static str,
    kind: &'static str,
    samples: Vec<(Vec<(String, String)>, f64)>,
}

/// Families by name, written in name order.
#[derive(Default)]
struct Families(BTreeMap<String, Family>);

impl Families {
    fn add(
        &mut self,
        name: &str,
        kind: &'static str,
        help: &'static str,
        labels: Vec<(String, String)>,
        value: f64,
    ) {
        let f = self.0.entry(name.to_owned()).or_default();
        f.help = help;
        f.kind = kind;
        f.samples.push((labels, value));
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for (name, f) in &self.0 {
            let _ = writeln!(out, "# HELP {name} {}", f.help);
            let _ = writeln!(out, "# TYPE {name} {}", f.kind);
            for (labels, value) in &f.samples {
                out.push_str(name);
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (k, v)) in labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{k}=\"{}\"", escape(v));
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {value}");
            }
        }
        out
    }
}

/// A label value as the text format wants it.
fn escape(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

fn label(k: &str, v: impl ToString) -> (String, String) {
    (k.to_owned(), v.to_string())
}

/// The metrics of `latest`, with the definitions of `spec`.
pub(crate) fn render(latest: &Latest, spec: &Spec) -> String {
    let mut m = Families::default();
    let s = &latest.snapshot.status;
    let t = &latest.totals;
    let agent = [
        (
            "flowstat_flows",
            "gauge",
            "Flows in the table.",
            s.flow_count as f64,
        ),
        (
            "flowstat_flows_active",
            "gauge",
            "Flows that saw a packet in the latest interval.",
            s.flows_active as f64,
        ),
        (
            "flowstat_flows_purged_total",
            "counter",
            "Flows purged since start.",
            t.flows_purged as f64,
        ),
        (
            "flowstat_flows_evicted_total",
            "counter",
            "Flows evicted for max_flows since start.",
            t.flows_evicted as f64,
        ),
        (
            "flowstat_intervals_total",
            "counter",
            "Update intervals ended since start.",
            t.intervals as f64,
        ),
        (
            "flowstat_resident_memory_bytes",
            "gauge",
            "Resident set size (0 in replay without --resource-usage).",
            (s.memrss_kb * 1024) as f64,
        ),
    ];
    for (name, kind, help, v) in agent {
        m.add(name, kind, help, Vec::new(), v);
    }
    let cpu = "CPU time used since start (0 in replay without --resource-usage).";
    for (mode, ms) in [("user", s.cpu_user_ms), ("system", s.cpu_system_ms)] {
        m.add(
            "flowstat_cpu_seconds_total",
            "counter",
            cpu,
            vec![label("mode", mode)],
            ms as f64 / 1000.0,
        );
    }
    for c in &s.captures {
        let l = || vec![label("capture", &c.name)];
        m.add(
            "flowstat_capture_received_total",
            "counter",
            "Frames received by the capture since start.",
            l(),
            c.received as f64,
        );
        m.add(
            "flowstat_capture_dropped_total",
            "counter",
            "Frames the capture layer dropped since start.",
            l(),
            c.dropped as f64,
        );
    }
    for k in &s.sinks {
        let l = || vec![label("sink", &k.name)];
        m.add(
            "flowstat_sink_sent_total",
            "counter",
            "Records a sink delivered since start.",
            l(),
            k.sent as f64,
        );
        m.add(
            "flowstat_sink_dropped_total",
            "counter",
            "Records a sink dropped since start.",
            l(),
            k.dropped as f64,
        );
        m.add(
            "flowstat_sink_queued",
            "gauge",
            "Records waiting in a sink's queue.",
            l(),
            k.queued as f64,
        );
    }
    for (name, [frames, bytes, capture_dropped, queue_dropped, discarded]) in &t.interfaces {
        let l = || vec![label("interface", name)];
        m.add(
            "flowstat_interface_frames_total",
            "counter",
            "Frames seen on an interface since start.",
            l(),
            *frames as f64,
        );
        m.add(
            "flowstat_interface_bytes_total",
            "counter",
            "Wire bytes seen on an interface since start.",
            l(),
            *bytes as f64,
        );
        m.add(
            "flowstat_interface_capture_dropped_total",
            "counter",
            "Frames the capture dropped on an interface since start.",
            l(),
            *capture_dropped as f64,
        );
        m.add(
            "flowstat_interface_queue_dropped_total",
            "counter",
            "Frames dropped for a full worker queue since start.",
            l(),
            *queue_dropped as f64,
        );
        m.add(
            "flowstat_interface_discarded_total",
            "counter",
            "Frames discarded by the decoder since start.",
            l(),
            *discarded as f64,
        );
    }
    for i in &latest.snapshot.interfaces {
        let Some(k) = &i.kernel else { continue };
        let l = || vec![label("interface", &i.name)];
        let rates = [
            ("flowstat_interface_rx_bytes_per_second", k.rx_bytes_per_sec),
            ("flowstat_interface_tx_bytes_per_second", k.tx_bytes_per_sec),
            (
                "flowstat_interface_rx_packets_per_second",
                k.rx_packets_per_sec,
            ),
            (
                "flowstat_interface_tx_packets_per_second",
                k.tx_packets_per_sec,
            ),
        ];
        for (name, v) in rates {
            m.add(
                name,
                "gauge",
                "The kernel's rate over the latest interval.",
                l(),
                v as f64,
            );
        }
    }
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    for table in &latest.snapshot.analytics.definitions {
        let Some(d) = spec.definition(&table.name) else {
            continue;
        };
        if let Some((name, _, keys)) = FLOW_EXPORTER.iter().find(|(name, _, _)| *name == d.name) {
            let family = format!("{name}_total");
            let names = [
                "source_as",
                "source_as_name",
                "destination_as",
                "destination_as_name",
            ];
            for row in &table.rows {
                let key = serde_json::from_str::<Value>(row.key.get()).unwrap_or_default();
                let mut labels: Vec<(String, String)> = names
                    .iter()
                    .zip(keys)
                    .map(|(label_name, field)| {
                        let v = match key.get(field) {
                            Some(Value::String(s)) => s.clone(),
                            Some(v) => v.to_string(),
                            None => "other".into(),
                        };
                        label(label_name, v)
                    })
                    .collect();
                labels.push(label("hostname", hostname.trim()));
                let help = "Bytes by source and destination AS (flow-exporter's series).";
                m.add(&family, "counter", help, labels, row.total as f64);
            }
            continue;
        }
        let family = format!("flowstat_flow_{}_total", d.value);
        for row in &table.rows {
            let mut labels = vec![label("definition", &d.name)];
            match serde_json::from_str::<Value>(row.key.get()) {
                Ok(Value::Object(fields)) => {
                    for (k, v) in fields {
                        let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                        labels.push((k, v));
                    }
                }
                _ => labels.extend(d.keys.iter().map(|k| label(k, "other"))),
            }
            m.add(
                &family,
                "counter",
                "A flow definition's value per key since the key became active.",
                labels,
                row.total as f64,
            );
        }
    }
    m.render()
}
