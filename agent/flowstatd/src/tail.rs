//! `flowstatd tail`: watch a running agent's stream from its socket or
//! ZeroMQ sink.

#![cfg_attr(
    not(any(feature = "socket", feature = "zmq")),
    allow(dead_code, reason = "no sink to tail is built in")
)]

use std::io::Write;

use flowstat_core::RecordKind;
use serde_json::Value;

use crate::top::{bytes, clock, cut, endpoint, terminal_width, text_of};

use crate::config::SinkSection;

/// What to watch and how to print it.
#[derive(Clone, Debug)]
pub struct TailOptions {
    /// `unix:///PATH` or `tcp://HOST:PORT` (socket sink), `zmq+tcp://...`
    /// or `zmq+ipc://...` (ZeroMQ sink).
    pub endpoint: String,
    /// Only these record types (all when empty).
    pub types: Vec<RecordKind>,
    /// Print each record whole, as received, instead of a summary line.
    pub json: bool,
    /// Stop after this many records.
    pub count: Option<u64>,
    /// Sent as the first line to a socket sink that asks a token.
    pub token: Option<String>,
    /// Cut each summary line to the width of the terminal the output is
    /// (whole records, `json`, are never cut).
    pub fit: bool,
}

/// The endpoint of the first socket or ZeroMQ sink in `sinks`, in the form
/// `tail` takes, and the token it asks.
pub fn endpoint_of(sinks: &[SinkSection]) -> Option<(String, Option<String>)> {
    sinks.iter().find_map(sink_endpoint)
}

/// The endpoint of `sink` in the form `tail` takes, and the token it asks,
/// if it is a socket or ZeroMQ sink.
pub fn sink_endpoint(sink: &SinkSection) -> Option<(String, Option<String>)> {
    match &sink.config {
        #[cfg(feature = "socket")]
        flowstat_sinks::SinkConfig::Socket(c) => c
            .endpoint
            .as_ref()
            .map(|e| (e.to_string(), c.token.clone())),
        #[cfg(feature = "zmq")]
        flowstat_sinks::SinkConfig::Zmq(c) => Some((format!("zmq+{}", c.endpoint), None)),
        _ => None,
    }
}

/// Prints records from the endpoint until it closes, `count` records
/// were printed, or the output goes away.
pub fn tail(opts: &TailOptions, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut printer = Printer {
        opts,
        out,
        printed: 0,
    };
    if let Some(endpoint) = opts.endpoint.strip_prefix("zmq+") {
        return tail_zmq(endpoint, &mut printer);
    }
    tail_socket(&opts.endpoint, opts.token.as_deref(), &mut printer)
}

#[cfg(feature = "socket")]
fn tail_socket(
    endpoint: &str,
    token: Option<&str>,
    printer: &mut Printer<'_>,
) -> anyhow::Result<()> {
    use std::io::{BufRead, BufReader, Read};
    use std::net::TcpStream;
    use std::os::unix::net::UnixStream;

    use anyhow::{Context, bail};
    use flowstat_sinks::SocketEndpoint;

    trait Stream: Read + Write {}
    impl<T: Read + Write> Stream for T {}

    let endpoint = SocketEndpoint::parse(endpoint).map_err(anyhow::Error::msg)?;
    let mut stream: Box<dyn Stream> = match &endpoint {
        SocketEndpoint::Unix(path) => Box::new(UnixStream::connect(path).with_context(|| {
            format!("cannot connect to {endpoint} (is the agent running with a socket sink there?)")
        })?),
        SocketEndpoint::Tcp(addr) => Box::new(TcpStream::connect(addr).with_context(|| {
            format!("cannot connect to {endpoint} (is the agent running with a socket sink there?)")
        })?),
    };
    if let Some(token) = token {
        writeln!(stream, "{token}")
            .with_context(|| format!("cannot send the token to {endpoint}"))?;
    }
    eprintln!("flowstatd tail: connected to {endpoint}; waiting for records (Ctrl-C stops)");
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        // Length-header framing: `{"length":N}` then N bytes.
        if let Some(n) = length_header(&line) {
            line.resize(n, 0);
            reader
                .read_exact(&mut line)
                .context("the stream ended inside a record")?;
        }
        let record = line.strip_suffix(b"\n").unwrap_or(&line);
        let Some(kind) = kind_of(record) else {
            if let Some(error) = refusal(record) {
                bail!("{endpoint} refused this client: {error}");
            }
            bail!(
                "{endpoint} sent something that is not a flowstat record: {}",
                String::from_utf8_lossy(record)
            );
        };
        if !printer.print(kind, record)? {
            return Ok(());
        }
    }
}

#[cfg(not(feature = "socket"))]
fn tail_socket(_: &str, _: Option<&str>, _: &mut Printer<'_>) -> anyhow::Result<()> {
    Err(crate::outputs::not_built("socket"))
}

#[cfg(feature = "zmq")]
fn tail_zmq(endpoint: &str, printer: &mut Printer<'_>) -> anyhow::Result<()> {
    use anyhow::{Context, bail};

    let ctx = zmq::Context::new();
    let socket = ctx.socket(zmq::SUB)?;
    socket.set_ipv6(true)?;
    if printer.opts.types.is_empty() {
        socket.set_subscribe(b"")?;
    }
    for kind in &printer.opts.types {
        socket.set_subscribe(kind.as_str().as_bytes())?;
    }
    socket
        .connect(endpoint)
        .with_context(|| format!("cannot connect to {endpoint}"))?;
    // ZeroMQ connects in the background: nothing tells whether a
    // publisher is there until records come.
    eprintln!(
        "flowstatd tail: subscribed to {endpoint}; waiting for its publisher's records \
         (Ctrl-C stops)"
    );
    loop {
        let msg = socket.recv_multipart(0)?;
        let [topic, record] = &msg[..] else {
            bail!(
                "{endpoint} sent a message of {} frames, not topic and record",
                msg.len()
            );
        };
        // ZeroMQ matches topic prefixes: `flow` also brings `flow_stats`.
        let Some(kind) = std::str::from_utf8(topic).ok().and_then(RecordKind::parse) else {
            bail!(
                "{endpoint} sent an unknown topic {:?}",
                String::from_utf8_lossy(topic)
            );
        };
        if !printer.print(kind, record)? {
            return Ok(());
        }
    }
}

#[cfg(not(feature = "zmq"))]
fn tail_zmq(_: &str, _: &mut Printer<'_>) -> anyhow::Result<()> {
    Err(crate::outputs::not_built("zmq"))
}

struct Printer<'a> {
    opts: &'a TailOptions,
    out: &'a mut dyn Write,
    printed: u64,
}

impl Printer<'_> {
    /// Prints `record` if its type was asked for; false once done.
    fn print(&mut self, kind: RecordKind, record: &[u8]) -> anyhow::Result<bool> {
        if !self.opts.types.is_empty() && !self.opts.types.contains(&kind) {
            return Ok(true);
        }
        if self.opts.json {
            self.out.write_all(record)?;
            self.out.write_all(b"\n")?;
        } else {
            let value: serde_json::Value = serde_json::from_slice(record)?;
            // Read for each record: the terminal may be resized.
            let width = self
                .opts
                .fit
                .then(|| terminal_width(&std::io::stdout()))
                .flatten();
            for line in summary(kind, &value) {
                match width {
                    Some(width) => writeln!(self.out, "{}", cut(&line, width, 0))?,
                    None => writeln!(self.out, "{line}")?,
                }
            }
        }
        self.out.flush()?;
        self.printed += 1;
        Ok(self.opts.count.is_none_or(|n| self.printed < n))
    }
}

/// A record as lines for a person: time (UTC), type, then what matters of
/// it: a flow's interface, endpoints, protocol/application, host and bytes;
/// an interval's flows and drops; a line per interface of
/// `interface_stats`.
fn summary(kind: RecordKind, v: &Value) -> Vec<String> {
    let f = &v["flow"];
    let ms = |key: &str| f[key].as_u64().unwrap_or(0);
    let n = |v: &Value, key: &str| v[key].as_u64().unwrap_or(0);
    let head = |ms: u64| format!("{} {:<15}", clock(ms), kind.as_str());
    match kind {
        RecordKind::Flow | RecordKind::FlowPurge => {
            let transport = match n(f, "ip_protocol") {
                6 => "TCP".to_owned(),
                17 => "UDP".to_owned(),
                p => format!("ip-proto {p}"),
            };
            let mut line = format!(
                "{} {} {transport} {} <-> {} {}/{}",
                head(ms(if kind == RecordKind::Flow {
                    "first_seen_at"
                } else {
                    "last_seen_at"
                })),
                text_of(&v["interface"]),
                endpoint(&f["local_ip"], &f["local_port"]),
                endpoint(&f["other_ip"], &f["other_port"]),
                text_of(&f["detected_protocol_name"]),
                text_of(&f["detected_application_name"]),
            );
            let host = text_of(&f["host_server_name"]);
            if !host.is_empty() {
                line.push_str(&format!(" {host}"));
            }
            if kind == RecordKind::FlowPurge {
                line.push_str(&format!(
                    " {} {} in {} packets",
                    text_of(&v["reason"]),
                    bytes(n(f, "total_bytes")),
                    n(f, "total_packets")
                ));
            }
            vec![line]
        }
        RecordKind::FlowStats => vec![format!(
            "{} {} {} {} in {} packets",
            head(ms("last_seen_at")),
            text_of(&v["interface"]),
            text_of(&f["digest"]).get(..12).unwrap_or_default(),
            bytes(n(f, "local_bytes") + n(f, "other_bytes")),
            n(f, "local_packets") + n(f, "other_packets")
        )],
        RecordKind::AgentStatus => vec![format!(
            "{} {} flows active, {} purged, {} evicted",
            head(n(v, "timestamp") * 1000),
            n(v, "flows_active"),
            n(v, "flows_purged"),
            n(v, "flows_evicted")
        )],
        RecordKind::InterfaceStats => v
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(name, _)| *name != "type")
            .map(|(name, i)| {
                format!(
                    "{:8} {:<15} {name} {} frames, {}, dropped {}",
                    "",
                    kind.as_str(),
                    n(i, "raw"),
                    bytes(n(i, "wire_bytes")),
                    n(i, "capture_dropped") + n(i, "queue_dropped")
                )
            })
            .collect(),
        // Events, aggregates: the record, after its type.
        _ => vec![format!("{:8} {:<15} {v}", "", kind.as_str())],
    }
}

/// N, if `line` is a length header `{"length":N}`.
#[cfg(feature = "socket")]
fn length_header(line: &[u8]) -> Option<usize> {
    let rest = line.strip_prefix(br#"{"length":"#)?;
    let digits = rest.strip_suffix(b"}\n")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The record type named by the object's `type` field.
#[cfg(feature = "socket")]
fn kind_of(record: &[u8]) -> Option<RecordKind> {
    #[derive(serde::Deserialize)]
    struct Typed {
        #[serde(rename = "type")]
        kind: RecordKind,
    }
    serde_json::from_slice::<Typed>(record).ok().map(|t| t.kind)
}

/// The reason in the `error` record a socket sink sends a client it
/// turns away (too many clients, no or a wrong token).
#[cfg(feature = "socket")]
fn refusal(record: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Refusal {
        #[serde(rename = "type")]
        kind: String,
        error: String,
    }
    serde_json::from_slice::<Refusal>(record)
        .ok()
        .filter(|r| r.kind == "error")
        .map(|r| r.error)
}

#[cfg(all(test, feature = "socket"))]
mod tests {
    use super::*;

    #[test]
    fn records_are_summed_up_in_a_line() {
        let purge = serde_json::json!({"type": "flow_purge", "interface": "eth0",
            "reason": "closed", "flow": {"ip_protocol": 6, "local_ip": "192.168.1.13",
            "local_port": 55523, "other_ip": "2001:db8::1", "other_port": 443,
            "detected_protocol_name": "TLS", "detected_application_name": "Google",
            "host_server_name": "www.google.com", "last_seen_at": 3_723_000_u64,
            "total_bytes": 73_982, "total_packets": 109}});
        assert_eq!(
            summary(RecordKind::FlowPurge, &purge),
            [
                "01:02:03 flow_purge      eth0 TCP 192.168.1.13:55523 <-> [2001:db8::1]:443 \
              TLS/Google www.google.com closed 74.0 kB in 109 packets"
            ]
        );
        let iface = serde_json::json!({"type": "interface_stats",
            "eth0": {"raw": 10, "wire_bytes": 1500, "capture_dropped": 1, "queue_dropped": 2}});
        assert_eq!(
            summary(RecordKind::InterfaceStats, &iface),
            ["         interface_stats eth0 10 frames, 1.5 kB, dropped 3"]
        );
    }

    #[test]
    fn length_headers_and_types_are_read() {
        assert_eq!(length_header(b"{\"length\":42}\n"), Some(42));
        assert_eq!(length_header(b"{\"type\":\"flow\"}\n"), None);
        assert_eq!(
            kind_of(br#"{"type":"flow_purge","x":1}"#),
            Some(RecordKind::FlowPurge)
        );
        assert_eq!(kind_of(br#"{"x":1}"#), None);
    }
}
