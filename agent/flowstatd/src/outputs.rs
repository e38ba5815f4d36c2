//! The sinks of a configuration, started on the sink runtime.

use std::path::Path;

use anyhow::Context;
use flowstat_api::{ApiSink, ApiState};
use flowstat_core::{KindSet, Sink, SinkStatus};
use flowstat_sinks::{SinkContext, SinkOptions, SinkRuntime};

use crate::config::SinkSection;

/// Starts the sinks of `sections` (already validated), each on a thread of
/// its own; stdout when there is none.
/// The sinks of `sections`; what they create for others (a Unix socket)
/// belongs to `owner` (uid, gid), the agent's user once it drops root.
pub fn start(sections: &[SinkSection], owner: Option<(u32, u32)>) -> anyhow::Result<SinkRuntime> {
    // Each socket sink client is a file descriptor.
    crate::resources::raise_soft_limit(nix::sys::resource::Resource::RLIMIT_NOFILE);
    let mut runtime = SinkRuntime::new();
    if sections.is_empty() {
        let stdout = stdout(false).context("no [[sink]] is configured")?;
        runtime.add(stdout, SinkOptions::new(KindSet::ALL))?;
    }
    let ctx = SinkContext {
        hello: flowstat_plugins::agent_hello().json,
        hostname: host_name(),
        owner,
    };
    for (i, s) in sections.iter().enumerate() {
        let sink = s
            .build(&ctx)
            .map_err(|p| anyhow::anyhow!("sink[{i}].{p}"))?;
        runtime.add(sink, s.options())?;
    }
    Ok(runtime)
}

/// This host's name, as `hostname` prints it; empty if it has none.
fn host_name() -> String {
    match nix::unistd::gethostname() {
        Ok(name) => name.to_string_lossy().into_owned(),
        Err(e) => {
            tracing::warn!("cannot read this host's name: {e}");
            String::new()
        }
    }
}

/// Adds the API's stream sink (`api`), which takes every record into the
/// window `/stream` and `/flows/json` serve, when the API is served.
pub fn add_api_sink(sinks: &mut SinkRuntime, api: Option<&ApiState>) -> anyhow::Result<()> {
    if let Some(api) = api {
        sinks
            .add(
                Box::new(ApiSink::new(api.clone())),
                SinkOptions::new(KindSet::ALL),
            )
            .context("starting the API's stream sink")?;
    }
    Ok(())
}

/// Logs what each sink delivered and lost when it stopped; returns the
/// records they dropped in all.
pub fn log_final(statuses: &[SinkStatus]) -> u64 {
    for s in statuses {
        let (sink, sent, dropped, disconnected) = (&s.name, s.sent, s.dropped, s.disconnected);
        if dropped > s.unconsumed {
            tracing::warn!(
                sink,
                sent,
                dropped,
                disconnected,
                "sink stopped; records were lost"
            );
        } else if dropped > 0 {
            // Nobody connected to take them: not a fault of the agent's.
            tracing::info!(
                sink,
                sent,
                dropped,
                "sink stopped; no consumer took the rest"
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
    let sink = if output == Path::new("-") {
        stdout(true)?
    } else {
        new_file(output)?
    };
    let mut runtime = SinkRuntime::inline(paced);
    runtime.add(sink, SinkOptions::new(kinds))?;
    Ok(runtime)
}

/// The stdout sink; a command-line `filter`'s (see
/// [`StdoutSink::for_filter`](flowstat_sinks::StdoutSink::for_filter)) or
/// an agent's.
#[cfg(feature = "stdout")]
fn stdout(filter: bool) -> anyhow::Result<Box<dyn Sink>> {
    use flowstat_sinks::StdoutSink;
    Ok(Box::new(if filter {
        StdoutSink::for_filter()
    } else {
        StdoutSink::new()
    }))
}

#[cfg(not(feature = "stdout"))]
fn stdout(_: bool) -> anyhow::Result<Box<dyn Sink>> {
    Err(not_built("stdout"))
}

/// A file sink writing `path` afresh, opened.
#[cfg(feature = "file")]
fn new_file(path: &Path) -> anyhow::Result<Box<dyn Sink>> {
    use flowstat_sinks::{FileOptions, FileSink};
    let mut options = FileOptions::new(path);
    options.append = false;
    let mut sink = FileSink::new(options);
    sink.open()?;
    Ok(Box::new(sink))
}

#[cfg(not(feature = "file"))]
fn new_file(_: &Path) -> anyhow::Result<Box<dyn Sink>> {
    Err(not_built("file"))
}

/// The error for using sink type `name`, which this build left out.
#[cfg(not(all(
    feature = "stdout",
    feature = "file",
    feature = "socket",
    feature = "zmq"
)))]
pub(crate) fn not_built(name: &str) -> anyhow::Error {
    let reason = flowstat_sinks::SinkType::named(name)
        .map_or_else(|| format!("no {name} sink"), |t| t.not_built());
    anyhow::anyhow!(reason)
}
