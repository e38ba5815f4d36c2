//! `flowstatd tail`: watch a running agent's stream from its socket or
//! ZeroMQ sink.

#![cfg_attr(
    not(any(feature = "socket", feature = "zmq")),
    allow(dead_code, reason = "no sink to tail is built in")
)]

use std::io::Write;

use flowstat_core::RecordKind;

use crate::config::SinkSection;

/// What to watch and how to print it.
#[derive(Clone, Debug)]
pub struct TailOptions {
    /// `unix:///PATH` or `tcp://HOST:PORT` (socket sink), `zmq+tcp://...`
    /// or `zmq+ipc://...` (ZeroMQ sink).
    pub endpoint: String,
    /// Only these record types (all when empty).
    pub types: Vec<RecordKind>,
    /// Print each record as received, one line, instead of indented.
    pub raw: bool,
    /// Stop after this many records.
    pub count: Option<u64>,
    /// Sent as the first line to a socket sink that asks a token.
    pub token: Option<String>,
}

/// The endpoint of the first socket or ZeroMQ sink in `sinks`, in the form
/// `tail` takes, and the token it asks.
pub fn endpoint_of(sinks: &[SinkSection]) -> Option<(String, Option<String>)> {
    sinks.iter().find_map(|s| match &s.config {
        #[cfg(feature = "socket")]
        flowstat_sinks::SinkConfig::Socket(c) => c
            .endpoint
            .as_ref()
            .map(|e| (e.to_string(), c.token.clone())),
        #[cfg(feature = "zmq")]
        flowstat_sinks::SinkConfig::Zmq(c) => Some((format!("zmq+{}", c.endpoint), None)),
        _ => None,
    })
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
        if self.opts.raw {
            self.out.write_all(record)?;
        } else {
            let value: serde_json::Value = serde_json::from_slice(record)?;
            serde_json::to_writer_pretty(&mut *self.out, &value)?;
        }
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        self.printed += 1;
        Ok(self.opts.count.is_none_or(|n| self.printed < n))
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
