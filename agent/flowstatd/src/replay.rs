//! `flowstatd replay`: capture files in, telemetry out.

use std::path::PathBuf;
use std::time::Instant;

use flowstat_capture::FileSource;
use flowstat_core::{Batch, CaptureError, CaptureSource, Plugin, Timestamp};
use flowstat_plugins::CorePlugin;
use flowstat_sinks::SinkRuntime;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::{Engine, EngineConfig};

/// What to replay and how.
#[derive(Clone, Debug, Default)]
pub struct ReplayOptions {
    /// Capture files, replayed in order, each as its own source.
    pub files: Vec<PathBuf>,
    /// Role of the sources: true for `lan` (records say `internal: true`).
    pub internal: bool,
    /// Pace the replay by packet timestamps.
    pub realtime: bool,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// What a replay did.
#[derive(Debug, Default)]
pub struct ReplaySummary {
    /// Frames read, all files.
    pub packets: u64,
    /// Warnings (truncated files), one line each.
    pub warnings: Vec<String>,
    /// The damage that ended the replay early: the flows seen up to it
    /// were purged and published.
    pub error: Option<CaptureError>,
}

/// Frames lent per call to the source.
const BATCH: usize = 1024;

/// Replays `opts.files` through the core plugin into `sinks`.
///
/// Every file is opened and checked before the first packet is read, so a
/// bad path fails fast with no output. A file that ends mid-record is
/// replayed up to the break and reported in the summary's warnings; a
/// corrupt one is replayed up to the damage, its flows purged, and the
/// damage reported in the summary's `error`. The sinks come back with
/// every record published, for the caller to finish.
pub fn replay(
    cfg: EngineConfig,
    opts: &ReplayOptions,
    sinks: SinkRuntime,
) -> Result<(ReplaySummary, SinkRuntime), CaptureError> {
    let mut sources = opts
        .files
        .iter()
        .map(|p| FileSource::open(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut engine = Engine::new(cfg, &core_plugins, sinks);
    let mut summary = ReplaySummary::default();
    for source in &mut sources {
        let name = source.name().to_owned();
        let progress = progress_bar(opts.progress, source, &name);
        let mut pacer = opts.realtime.then(Pacer::default);
        let mut run = engine.begin_source(&name, opts.internal);
        let failure = loop {
            let batch = source.poll_batch(BATCH, &mut |frame| {
                if let Some(p) = &mut pacer {
                    p.wait_for(frame.ts);
                }
                run.frame(frame);
            });
            if let (Some(bar), Some((done, _))) = (&progress, source.progress()) {
                bar.set_position(done);
            }
            match batch {
                Ok(Batch::Frames(_) | Batch::Idle) => {}
                Ok(Batch::End) => break None,
                Err(e @ CaptureError::Truncated { .. }) => {
                    tracing::warn!("{e}; its flows are purged and the replay goes on");
                    summary.warnings.push(e.to_string());
                    break None;
                }
                Err(e) => break Some(e),
            }
        };
        if let Some(bar) = progress {
            bar.finish_and_clear();
        }
        summary.packets += source.stats().received;
        run.end(source.stats());
        if failure.is_some() {
            summary.error = failure;
            break;
        }
    }
    Ok((summary, engine.finish()))
}

/// The plugins of replay: the core telemetry.
fn core_plugins() -> Vec<Box<dyn Plugin>> {
    vec![Box::new(CorePlugin::default())]
}

fn progress_bar(enabled: bool, source: &FileSource, name: &str) -> Option<ProgressBar> {
    let (_, total) = source.progress()?;
    if !enabled {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{prefix} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(name.to_owned());
    Some(bar)
}

/// Sleeps so that frames come out at the pace their timestamps say.
#[derive(Default)]
struct Pacer {
    origin: Option<(Timestamp, Instant)>,
}

impl Pacer {
    fn wait_for(&mut self, ts: Timestamp) {
        let (first, started) = *self.origin.get_or_insert((ts, Instant::now()));
        let due = started + ts.since(first);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pacer_waits_for_packet_time() {
        let mut p = Pacer::default();
        let t0 = Timestamp::from_secs(1_000);
        let start = Instant::now();
        p.wait_for(t0);
        p.wait_for(t0.saturating_add(Duration::from_millis(50)));
        assert!(start.elapsed() >= Duration::from_millis(50));
    }
}
