//! The sinks of a configuration, started on the sink runtime.

use std::path::Path;

use flowstat_core::{KindSet, Sink, SinkStatus};
use flowstat_sinks::{
    FileOptions, FileSink, FsyncPolicy, SinkOptions, SinkRuntime, SocketEndpoint, SocketFraming,
    SocketOptions, SocketSink, StdoutSink,
};

use crate::config::{Framing, SinkSection, SinkType, gid_of, uid_of};

/// Starts the sinks of `sections` (already validated), each on a thread of
/// its own; stdout when there is none.
pub fn start(sections: &[SinkSection]) -> anyhow::Result<SinkRuntime> {
    let mut runtime = SinkRuntime::new();
    if sections.is_empty() {
        runtime.add(Box::new(StdoutSink::new()), SinkOptions::new(KindSet::ALL))?;
    }
    for s in sections {
        let options = SinkOptions {
            kinds: s.kinds(),
            queue_records: s.queue_records.unwrap_or(SinkOptions::QUEUE_RECORDS),
            queue_bytes: s.queue_bytes.unwrap_or(SinkOptions::QUEUE_BYTES),
        };
        runtime.add(sink(s)?, options)?;
    }
    Ok(runtime)
}

/// Logs what each sink delivered and lost when it stopped; returns the
/// records they dropped in all.
pub fn log_final(statuses: &[SinkStatus]) -> u64 {
    for s in statuses {
        let (sink, sent, dropped, disconnected) = (&s.name, s.sent, s.dropped, s.disconnected);
        if dropped > 0 {
            tracing::warn!(
                sink,
                sent,
                dropped,
                disconnected,
                "sink stopped; records were lost"
            );
        } else {
            tracing::info!(sink, sent, disconnected, "sink stopped");
        }
    }
    statuses.iter().map(|s| s.dropped).sum()
}

/// The record types the sinks of `sections` subscribed to (all, for the
/// stdout sink that stands in when there is none).
pub fn wanted(sections: &[SinkSection]) -> KindSet {
    if sections.is_empty() {
        return KindSet::ALL;
    }
    sections
        .iter()
        .fold(KindSet::EMPTY, |k, s| k.union(s.kinds()))
}

/// A runtime with one sink: stdout for `-`, else a new file at `output`
/// (replay's `--output`), opened here so that a bad path fails at once.
/// It is written inline, on the replay's thread: a file takes what it is
/// given, so a thread would only add hand-overs. A `paced` replay (at
/// capture speed) flushes it at every interval; otherwise it is written
/// whenever its buffer fills.
pub fn single(output: &Path, kinds: KindSet, paced: bool) -> anyhow::Result<SinkRuntime> {
    let sink: Box<dyn Sink> = if output == Path::new("-") {
        Box::new(StdoutSink::for_filter())
    } else {
        let mut options = FileOptions::new(output);
        options.append = false;
        let mut sink = FileSink::new(options);
        sink.open()?;
        Box::new(sink)
    };
    let mut runtime = SinkRuntime::inline(paced);
    runtime.add(sink, SinkOptions::new(kinds))?;
    Ok(runtime)
}

/// The sink a validated section describes.
fn sink(s: &SinkSection) -> anyhow::Result<Box<dyn Sink>> {
    let endpoint = s.endpoint.clone().unwrap_or_default();
    Ok(match s.kind {
        SinkType::Stdout => Box::new(StdoutSink::new()),
        SinkType::File => {
            let mut o = FileOptions::new(s.path.clone().unwrap_or_default());
            o.rotate_bytes = s.rotate_bytes;
            o.rotate_secs = s.rotate_secs;
            o.keep = s.keep.unwrap_or(o.keep);
            o.gzip = s.gzip.unwrap_or(o.gzip);
            o.fsync = s
                .fsync
                .as_deref()
                .and_then(FsyncPolicy::parse)
                .unwrap_or(o.fsync);
            Box::new(FileSink::new(o))
        }
        SinkType::Socket => {
            let endpoint = SocketEndpoint::parse(&endpoint)
                .unwrap_or_else(|_| unreachable!("validated endpoint {endpoint:?}"));
            let mut o = SocketOptions::new(endpoint, flowstat_plugins::agent_hello().json);
            if s.framing == Some(Framing::Length) {
                o.framing = SocketFraming::LengthHeader;
            }
            o.client_buffer_bytes = s.client_buffer_bytes.unwrap_or(o.client_buffer_bytes);
            o.wait_for_clients = s.wait_for_consumers.unwrap_or(o.wait_for_clients);
            o.unix_mode = s.unix_mode();
            o.unix_owner = s.socket_owner.as_deref().and_then(uid_of);
            o.unix_group = s.socket_group.as_deref().and_then(gid_of);
            Box::new(SocketSink::new(o))
        }
        SinkType::Zmq => zmq(s, &endpoint)?,
    })
}

#[cfg(feature = "zmq")]
fn zmq(s: &SinkSection, endpoint: &str) -> anyhow::Result<Box<dyn Sink>> {
    use crate::config::ZmqModeSetting;
    use flowstat_sinks::{ZmqMode, ZmqOptions, ZmqSink};
    let mut o = ZmqOptions::new(endpoint);
    if s.mode == Some(ZmqModeSetting::Connect) {
        o.mode = ZmqMode::Connect;
    }
    o.send_hwm = s.send_hwm.unwrap_or(o.send_hwm);
    o.wait_for_subscribers = s.wait_for_consumers.unwrap_or(o.wait_for_subscribers);
    Ok(Box::new(ZmqSink::new(o)))
}

#[cfg(not(feature = "zmq"))]
fn zmq(_: &SinkSection, _: &str) -> anyhow::Result<Box<dyn Sink>> {
    anyhow::bail!("this flowstatd was built without ZeroMQ (feature \"zmq\")")
}
