//! `flowstatd replay`: capture files in, telemetry out.
//!
//! The reader (the calling thread) reads each file, gives every frame a
//! sequence number, decodes and counts it once, and hands it to the flow
//! worker that owns its flow. With one worker the worker runs inline and
//! writes to the sinks directly; with more, one runs inline and each other
//! on a thread of its own, and the reader merges their records into the
//! order one worker gives (see [`crate::merge`]), so the output is the
//! same for any number of workers. Time is packet time: intervals end on multiples of the
//! interval in the capture's clock, and the wall clock is never read.
//! Nothing is dropped: the pipeline waits for its slowest part.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use flowstat_capture::FileSource;
use flowstat_core::{
    Batch, CaptureError, CaptureSource, CaptureStatus, Frame, InterfaceReport, Plugin, Records,
    Timestamp,
};
use flowstat_flow::FlowLimit;
use flowstat_plugins::CorePlugin;
use flowstat_sinks::SinkRuntime;
use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::dispatch::{Dispatched, Dispatcher, PacketBatch, Spares, unsupported_link_warning};
use crate::interval::{CapturePart, IntervalClock, Reducer, WorkerReport};
use crate::merge::{Lane, Merger, Out, PUBLISH_BATCH, SETTLE_TIMEOUT};
use crate::pipeline::PipelineConfig;
use crate::top::{cut, terminal_width};
use crate::worker::{Deliver, FlowWorker, Position};

/// What to replay and how.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// Capture files, replayed in order, each as its own source.
    pub files: Vec<PathBuf>,
    /// Role of the sources: true for `lan` (records say `internal: true`).
    pub internal: bool,
    /// Pace the replay by packet timestamps.
    pub realtime: bool,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Flow workers; 1 runs everything on the calling thread. Otherwise
    /// one worker runs on the calling thread, which also reads, decodes
    /// and merges, and takes a third of the share of flows of each other.
    pub workers: usize,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            files: Vec::new(),
            internal: true,
            realtime: false,
            progress: false,
            workers: 1,
        }
    }
}

/// What a replay did.
#[derive(Debug, Default)]
pub struct ReplaySummary {
    /// Files read, in whole or (after an `error`) in part.
    pub files: usize,
    /// Frames read, all files.
    pub packets: u64,
    /// Flows seen, all files (each purged by the end, so each has its
    /// `flow_purge`).
    pub flows: u64,
    /// Wall-clock time from the first file opened to the last record
    /// published (the sinks may still hold some).
    pub elapsed: Duration,
    /// Warnings (truncated files), one line each.
    pub warnings: Vec<String>,
    /// The damage that ended the replay early: the flows seen up to it
    /// were purged and published.
    pub error: Option<CaptureError>,
}

/// Frames lent per call to the source.
const BATCH: usize = 1024;
/// A worker is handed a batch at this many packets, or bytes of payload.
/// Batches are made with room for that much (a frame more) and reused,
/// so that filling one never grows it: growing a large buffer faults in
/// fresh pages, and that took a fifth of the reader's time.
const WORKER_BATCH: usize = 1024;
const WORKER_BATCH_BYTES: usize = 256 << 10;
/// Batches that may wait for each worker, and messages for the merger.
const QUEUE: usize = 8;
/// The most packets a worker's batch may lag behind the capture.
const LAG: u64 = 16 * WORKER_BATCH as u64;

/// Replays `opts.files` through the core plugin into `sinks`.
///
/// Every file is opened and checked before the first packet is read, so a
/// bad path fails fast with no output. A file that ends mid-record is
/// replayed up to the break and reported in the summary's warnings; a
/// corrupt one is replayed up to the damage, its flows purged, and the
/// damage reported in the summary's `error`. The sinks come back with
/// every record published, for the caller to finish.
pub fn replay(
    cfg: PipelineConfig,
    opts: &ReplayOptions,
    sinks: SinkRuntime,
) -> Result<(ReplaySummary, SinkRuntime), CaptureError> {
    let started = Instant::now();
    let sources = opts
        .files
        .iter()
        .map(|p| FileSource::open(p))
        .collect::<Result<Vec<_>, _>>()?;
    let reducer = Reducer::new(
        cfg.update_interval,
        cfg.resource_usage,
        cfg.analytics.clone(),
        core_plugins(&cfg),
        sinks.wanted(),
    )
    .with_api(cfg.api.clone());
    let workers = opts.workers.max(1);
    // The reading thread's own worker takes one share of the flows, each
    // other three: the reading thread also reads, decodes and merges (1:3
    // was the fastest here on the every-flow-new mix; 1:2 and 1:4 were
    // slower).
    let shares: Vec<u32> = (0..workers).map(|w| if w == 0 { 1 } else { 3 }).collect();
    let reader = Reader::new(&cfg, opts, shares.clone());
    let limit = FlowLimit::new(cfg.flows.max_flows);
    let (mut summary, sinks) = if workers == 1 {
        let worker = cfg.worker(&limit, core_plugins(&cfg), sinks.wanted());
        let inline = Inline {
            worker,
            reducer,
            out: InlineOut {
                sinks,
                report: None,
            },
        };
        let (summary, inline) = reader.run(sources, inline);
        (summary, inline.out.sinks)
    } else {
        let threads = Threads::start(&cfg, workers, &limit, reducer, sinks);
        let (summary, threads) = reader.run(sources, threads);
        (summary, threads.finish())
    };
    summary.elapsed = started.elapsed();
    Ok((summary, sinks))
}

/// The plugins of replay: the core telemetry, with the address databases
/// loaded once.
fn core_plugins(cfg: &PipelineConfig) -> Vec<Box<dyn Plugin>> {
    vec![Box::new(CorePlugin::new(Arc::clone(&cfg.geo)))]
}

/// What the reader drives: one worker inline, or workers on threads.
trait Pipeline {
    /// A new source; returns its id.
    fn open(&mut self, name: &str, internal: bool) -> usize;
    /// Flow work for a dispatched packet, the `seq`th.
    fn packet(&mut self, source: usize, seq: u64, dispatched: &mut Dispatched<'_>);
    /// The end of an interval (`close`: the end of the source: every flow
    /// is purged and the source closed).
    fn end_interval(&mut self, source: usize, part: CapturePart, close: bool);

    /// Waits until every interval that ended has been written out.
    fn wait(&mut self) {}

    /// Flows created, as of the last interval written out.
    fn flows(&self) -> u64;
}

/// Reads the files, in order, and drives the pipeline.
struct Reader {
    interval: Duration,
    decode: flowstat_decode::DecodeConfig,
    internal: bool,
    realtime: bool,
    progress: bool,
    /// Each worker's share of the flows.
    shares: Vec<u32>,
    /// Frames read so far, all files: each frame's sequence number.
    seq: u64,
    /// Packet time covered by sources already finished.
    uptime_base: Duration,
    /// Counters of finished sources.
    captures: Vec<CaptureStatus>,
}

/// The source being read.
struct Run {
    id: usize,
    name: String,
    received: u64,
    /// First packet time, once a packet came.
    start: Option<Timestamp>,
    /// Latest packet time: frames are raised to it, so time never goes
    /// backwards.
    clock: Timestamp,
    intervals: IntervalClock,
    dispatcher: Dispatcher,
}

impl Reader {
    fn new(cfg: &PipelineConfig, opts: &ReplayOptions, shares: Vec<u32>) -> Self {
        Reader {
            interval: cfg.update_interval,
            decode: cfg.decode,
            internal: opts.internal,
            realtime: opts.realtime,
            progress: opts.progress,
            shares,
            seq: 0,
            uptime_base: Duration::ZERO,
            captures: Vec::new(),
        }
    }

    fn run<P: Pipeline>(mut self, sources: Vec<FileSource>, mut pipeline: P) -> (ReplaySummary, P) {
        let mut summary = ReplaySummary::default();
        let mut progress = self.progress.then(|| Progress::new(&sources));
        // Paced, a frame may wait long for its time: the progress shown
        // follows frame by frame.
        let budget = if self.realtime { 1 } else { BATCH };
        for mut source in sources {
            let name = source.name().to_owned();
            summary.files += 1;
            let mut pacer = self.realtime.then(Pacer::default);
            let mut run = Run {
                id: pipeline.open(&name, self.internal),
                name,
                received: 0,
                start: None,
                clock: Timestamp::ZERO,
                intervals: IntervalClock::new(self.interval),
                dispatcher: Dispatcher::new(self.decode, &self.shares),
            };
            let failure = loop {
                let batch = source.poll_batch(budget, &mut |frame| {
                    if let Some(p) = &mut pacer {
                        p.wait_for(frame.ts);
                    }
                    self.frame(&mut run, frame, &mut pipeline);
                });
                if let Some(p) = &mut progress {
                    let read = source.progress().map(|(done, _)| done);
                    p.show(&run.name, read, self.seq, pipeline.flows());
                }
                match batch {
                    Ok(Batch::Frames(_) | Batch::Idle) => {}
                    Ok(Batch::End) => break None,
                    Err(e @ (CaptureError::Truncated { .. } | CaptureError::Shrank { .. })) => {
                        tracing::warn!("{e}; its flows are purged and the replay goes on");
                        summary.warnings.push(e.to_string());
                        break None;
                    }
                    Err(e) => break Some(e),
                }
            };
            if let Some(p) = &mut progress {
                p.file_done(source.progress().map(|(_, size)| size));
            }
            let stats = source.stats();
            summary.packets += stats.received;
            let mut capture = CaptureStatus {
                name: run.name.clone(),
                received: run.received,
                dropped: stats.dropped,
            };
            // A source without packets has no interval to report (and no
            // flow to purge).
            if let Some(start) = run.start {
                let end = run.clock;
                let mut part = self.part(&mut run, end, capture.clone());
                let counters = &mut part.interfaces[0].counters;
                counters.capture_dropped += stats.dropped;
                counters.capture_filtered += stats.filtered;
                pipeline.end_interval(run.id, part, true);
                self.uptime_base += run.clock.since(start);
            }
            for &(link, frames) in run.dispatcher.unsupported_links() {
                let warning = unsupported_link_warning(&run.name, link, Some(frames));
                tracing::warn!("{warning}");
                summary.warnings.push(warning);
            }
            capture.received = run.received;
            self.captures.push(capture);
            if failure.is_some() {
                summary.error = failure;
                break;
            }
        }
        if let Some(p) = progress {
            p.bar.finish_and_clear();
        }
        pipeline.wait();
        summary.flows = pipeline.flows();
        (summary, pipeline)
    }

    /// Accounts one frame: ends the intervals it is past, then hands its
    /// packet to its worker.
    fn frame<P: Pipeline>(&mut self, run: &mut Run, frame: &Frame<'_>, pipeline: &mut P) {
        let ts = frame.ts.max(run.clock);
        run.start.get_or_insert(ts);
        for now in run.intervals.due(ts) {
            let current = self.current(run);
            let part = self.part(run, now, current);
            pipeline.end_interval(run.id, part, false);
            if self.realtime {
                // Watched as it goes: each interval out as it ends.
                pipeline.wait();
            }
        }
        run.clock = ts;
        run.received += 1;
        self.seq += 1;
        let frame = Frame { ts, ..*frame };
        // Matched in place: a Dispatched is 160 bytes.
        if let Some(dispatched) = &mut run.dispatcher.dispatch(&frame) {
            pipeline.packet(run.id, self.seq, dispatched);
        }
    }

    /// The running source's capture counters.
    fn current(&self, run: &Run) -> CaptureStatus {
        CaptureStatus {
            name: run.name.clone(),
            received: run.received,
            dropped: 0,
        }
    }

    /// The reader's part of the interval of `run` ending at `now`.
    fn part(&self, run: &mut Run, now: Timestamp, current: CaptureStatus) -> CapturePart {
        let mut captures = self.captures.clone();
        captures.push(current);
        CapturePart {
            now,
            uptime: self.uptime_base + now.since(run.start.unwrap_or(now)),
            interfaces: vec![InterfaceReport {
                name: run.name.clone(),
                counters: run.dispatcher.take_counters(),
                kernel: None,
            }],
            reports: Vec::new(),
            tallies: Vec::new(),
            captures,
        }
    }
}

/// One worker on the reader's thread, writing to the sinks itself.
struct Inline {
    worker: FlowWorker,
    reducer: Reducer,
    out: InlineOut,
}

/// The inline worker's records go straight to the sinks; its report waits
/// for the interval's end.
struct InlineOut {
    sinks: SinkRuntime,
    report: Option<WorkerReport>,
}

impl Deliver for InlineOut {
    fn deliver(&mut self, records: &mut Records, positions: &mut Vec<Position>, _: Position) {
        positions.clear();
        if !records.is_empty() {
            self.sinks.publish(records.take());
        }
    }

    fn report(&mut self, report: WorkerReport) {
        self.report = Some(report);
    }
}

impl Pipeline for Inline {
    fn open(&mut self, name: &str, internal: bool) -> usize {
        self.worker.open_source(name, internal)
    }

    fn packet(&mut self, source: usize, seq: u64, dispatched: &mut Dispatched<'_>) {
        dispatched.run(&mut self.worker, source, seq, &mut self.out);
    }

    fn end_interval(&mut self, source: usize, mut part: CapturePart, close: bool) {
        if close {
            self.worker.close(Some(source), &mut self.out);
        } else {
            self.worker.end_interval(part.now, &mut self.out);
        }
        if let Some(r) = self.out.report.take() {
            part.reports = vec![r.sources.get(source).copied().unwrap_or_default()];
            part.tallies.push(r.tally);
        }
        let sinks = &self.out.sinks;
        sinks.settle(SETTLE_TIMEOUT);
        sinks.publish(self.reducer.end_interval(part, sinks.status()));
    }

    fn flows(&self) -> u64 {
        self.reducer.flows()
    }
}

/// What the reader tells a worker thread.
enum Input {
    /// A new source.
    Open(String, bool),
    /// Packets, DNS answers and interval ends.
    Packets(PacketBatch),
}

/// Workers: the first on the reader's thread, the others on threads of
/// their own; the reader merges their records.
///
/// The reader's worker runs each of its packets as it comes, and hands
/// its records straight to the merger; the other workers get theirs in
/// batches. An interval's end travels in the batches like a packet: the
/// reader neither sends a batch for it nor waits for it (the capture
/// corpus ends an interval every hundred packets or so, and each wait
/// drained the pipeline). A batch goes when it is full, and a worker's
/// batch at most [`LAG`] packets late, so that the merger, which holds a
/// worker's records until every other has seen the packets before them,
/// holds few.
///
/// Tried instead and not kept: no hand-over, each worker reading every
/// file itself and running only its own flows' packets (the same output;
/// every frame decoded by every worker). On 2 cores it was no faster than
/// the batches (every-flow-new mix, same turns: 1.26 against 1.33 times
/// one worker), and it cannot read a stream.
struct Threads {
    /// The reader's own worker.
    local: FlowWorker,
    others: Others,
}

/// The workers on threads, and the merger.
struct Others {
    inputs: Vec<Sender<Input>>,
    batches: Vec<PacketBatch>,
    /// Batches the workers are done with, to be filled again.
    spares: Spares,
    /// The sequence number each worker was last sent a batch at.
    told: Vec<u64>,
    /// The last sequence number dispatched.
    seq: u64,
    /// Sources opened.
    sources: usize,
    /// Lane 0 is the reader's worker; lane `w` is `inputs[w - 1]`'s.
    merger: Merger,
    /// The merger's channels, to wait on beside a worker's queue.
    outputs: Vec<Receiver<Vec<Out>>>,
    workers: Vec<JoinHandle<()>>,
}

/// Records the reader's worker may leave with the merger before the reader
/// waits for the other workers to catch up.
const LOCAL_BACKLOG: usize = 4 * PUBLISH_BATCH;

impl Threads {
    fn start(
        cfg: &PipelineConfig,
        n: usize,
        limit: &FlowLimit,
        reducer: Reducer,
        sinks: SinkRuntime,
    ) -> Self {
        let wanted = sinks.wanted();
        let spares = Spares::new(n * QUEUE, new_batch);
        let mut inputs = Vec::new();
        let mut outputs = Vec::new();
        let mut workers = Vec::new();
        for i in 1..n {
            let (in_tx, in_rx) = bounded(QUEUE);
            let (out_tx, out_rx) = bounded(QUEUE);
            let worker = cfg.worker(limit, core_plugins(cfg), wanted);
            let spares = spares.clone();
            workers.push(spawn(&format!("flowstat-work{i}"), move || {
                work(worker, &in_rx, Lane::new(out_tx), &spares)
            }));
            inputs.push(in_tx);
            outputs.push(out_rx);
        }
        let lanes = std::iter::once(None)
            .chain(outputs.iter().cloned().map(Some))
            .collect();
        Threads {
            local: cfg.worker(limit, core_plugins(cfg), wanted),
            others: Others {
                batches: (1..n).map(|_| new_batch()).collect(),
                spares,
                told: vec![0; n - 1],
                seq: 0,
                sources: 0,
                inputs,
                merger: Merger::new(lanes, reducer, sinks),
                outputs,
                workers,
            },
        }
    }

    /// The reader's worker's records, up to date: every record it makes
    /// later is from a later packet.
    fn flush_local(&mut self) {
        let bound = Position::Packet(self.others.seq + 1);
        self.local.flush(bound, &mut LocalOut(&mut self.others));
    }

    /// Waits for the workers; returns the sinks.
    fn finish(mut self) -> SinkRuntime {
        self.wait();
        let mut others = self.others;
        // The workers stop once they have run the batches queued, each of
        // which ends in a message to the merger: it takes them all.
        drop(others.inputs);
        for (i, rx) in others.outputs.iter().enumerate() {
            for msg in rx {
                others.merger.take(i + 1, Ok(msg));
            }
        }
        for w in others.workers {
            if w.join().is_err() {
                tracing::error!("a flow worker panicked");
            }
        }
        others.merger.finish()
    }
}

impl Others {
    /// Sends worker `w` its batch, then every worker whose batch is more
    /// than [`LAG`] packets late its own.
    fn send(&mut self, w: usize) {
        self.send_batch(w);
        for v in 0..self.inputs.len() {
            if self.seq - self.told[v] > LAG {
                self.send_batch(v);
            }
        }
        self.merger.poll();
    }

    /// Sends every worker what it has not been told: its batch, or, empty,
    /// that the packets up to the latest are sent.
    fn send_all(&mut self) {
        for v in 0..self.inputs.len() {
            if !self.batches[v].is_empty() || self.told[v] < self.seq {
                self.send_batch(v);
            }
        }
    }

    /// Sends worker `w` its batch, stamped with the latest sequence number.
    fn send_batch(&mut self, w: usize) {
        let fresh = self.spares.take(self.batches[w].source);
        let mut batch = std::mem::replace(&mut self.batches[w], fresh);
        batch.upto = self.seq;
        self.told[w] = self.seq;
        self.send_merging(w, Input::Packets(batch));
    }

    /// Sends `input` to worker `w`, merging the workers' records while it
    /// waits for room (so no worker waits for the merger while the reader
    /// waits for it).
    fn send_merging(&mut self, w: usize, input: Input) {
        let input = match self.inputs[w].try_send(input) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => return,
            Err(TrySendError::Full(input)) => input,
        };
        let mut select = crossbeam_channel::Select::new();
        select.send(&self.inputs[w]);
        for rx in &self.outputs {
            select.recv(rx);
        }
        let mut input = Some(input);
        while let Some(msg) = input.take() {
            let oper = select.select();
            match oper.index() {
                0 => {
                    let _ = oper.send(&self.inputs[w], msg);
                }
                i => {
                    let out = oper.recv(&self.outputs[i - 1]);
                    self.merger.take(i, out);
                    input = Some(msg);
                }
            }
        }
    }
}

/// The reader's worker's [`Deliver`]: straight to the merger, as lane 0.
/// When the merger holds many of its records (it waits for another worker
/// to pass them: an interval's end is a burst), the others are sent what
/// they have and the reader waits for them.
struct LocalOut<'a>(&'a mut Others);

impl Deliver for LocalOut<'_> {
    fn deliver(&mut self, records: &mut Records, positions: &mut Vec<Position>, bound: Position) {
        let out = Out::Records {
            records: records.take(),
            positions: std::mem::take(positions),
            bound,
        };
        let others = &mut *self.0;
        others.merger.take(0, Ok(vec![out]));
        if others.merger.queued(0) > LOCAL_BACKLOG {
            others.send_all();
            others.merger.drain_lane(0, LOCAL_BACKLOG);
        }
    }

    fn report(&mut self, report: WorkerReport) {
        self.0.merger.take(0, Ok(vec![Out::Report(report)]));
    }
}

impl Pipeline for Threads {
    fn open(&mut self, name: &str, internal: bool) -> usize {
        self.local.open_source(name, internal);
        let others = &mut self.others;
        others.send_all();
        for w in 0..others.inputs.len() {
            others.send_merging(w, Input::Open(name.to_owned(), internal));
        }
        let id = others.sources;
        others.sources += 1;
        for b in &mut others.batches {
            b.source = id;
        }
        id
    }

    fn packet(&mut self, source: usize, seq: u64, dispatched: &mut Dispatched<'_>) {
        self.others.seq = seq;
        if let Some(answer) = &dispatched.answer {
            self.local.learn(answer);
            for b in &mut self.others.batches {
                b.push_answer(answer.clone());
            }
        }
        let Some(w) = dispatched.worker.checked_sub(1) else {
            let mut out = LocalOut(&mut self.others);
            self.local
                .packet(source, seq, &mut dispatched.packet, &mut out);
            return;
        };
        let batch = &mut self.others.batches[w];
        batch.push(seq, &dispatched.packet);
        if batch.len() >= WORKER_BATCH || batch.payload_bytes() >= WORKER_BATCH_BYTES {
            self.flush_local();
            self.others.send(w);
        }
    }

    fn end_interval(&mut self, source: usize, part: CapturePart, close: bool) {
        for b in &mut self.others.batches {
            b.push_end(part.now, close.then_some(source));
        }
        let mut out = LocalOut(&mut self.others);
        if close {
            self.local.close(Some(source), &mut out);
        } else {
            self.local.end_interval(part.now, &mut out);
        }
        self.others.merger.end_interval(source, part);
    }

    fn wait(&mut self) {
        self.flush_local();
        self.others.send_all();
        self.others.merger.wait();
    }

    fn flows(&self) -> u64 {
        self.others.merger.flows()
    }
}

/// An empty batch for a worker, with room for a full one (and interval
/// ends and DNS answers besides).
fn new_batch() -> PacketBatch {
    PacketBatch::with_capacity(WORKER_BATCH + 64, WORKER_BATCH_BYTES + (64 << 10))
}

/// A worker thread: batches from the reader; records and reports to the
/// merger, a message per batch; emptied batches back to the reader.
fn work(mut worker: FlowWorker, inputs: &Receiver<Input>, mut out: Lane, spares: &Spares) {
    for input in inputs {
        match input {
            Input::Open(name, internal) => {
                worker.open_source(&name, internal);
            }
            Input::Packets(batch) => {
                batch.run(&mut worker, &mut out);
                out.send();
                spares.give(batch);
            }
        }
    }
}

fn spawn<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .unwrap_or_else(|e| panic!("cannot start thread {name}: {e}"))
}

/// The replay's progress on stderr, one line for all its files: a bar
/// over their bytes when every one has a size (a stream has none: then a
/// spinner), and the file being read, packets, flows and packet rate,
/// fitted to the terminal's width whenever it is drawn.
struct Progress {
    bar: ProgressBar,
    /// What the text shows, read when the line is drawn.
    counts: Arc<Mutex<Counts>>,
    /// Bytes of the files done.
    done: u64,
}

/// The counts the progress line shows.
#[derive(Default)]
struct Counts {
    /// The file being read.
    name: String,
    packets: u64,
    flows: u64,
}

/// The bar's template, and the columns it takes besides the text: the
/// bar's brackets, the percentage, spaces.
const BAR_TEMPLATE: (&str, usize) = ("[{wide_bar}] {percent:>3}% {counts}", 8);
/// The spinner's template, and the columns it takes besides the text.
const SPINNER_TEMPLATE: (&str, usize) = ("{spinner} {counts}", 2);
/// The bar is at least this wide: the text gives way first.
const MIN_BAR: usize = 10;
/// The line is drawn again this often, also while a paced replay waits
/// for a frame's time.
const REDRAW: Duration = Duration::from_millis(100);

impl Progress {
    fn new(sources: &[FileSource]) -> Self {
        let total: Option<u64> = sources
            .iter()
            .map(|s| s.progress().map(|(_, size)| size))
            .sum();
        let ((template, fixed), fixed_bar) = match total {
            Some(_) => (BAR_TEMPLATE, MIN_BAR),
            None => (SPINNER_TEMPLATE, 0),
        };
        let counts = Arc::new(Mutex::new(Counts::default()));
        let shown = Arc::clone(&counts);
        let text = move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let c = shown.lock().unwrap_or_else(PoisonError::into_inner);
            let secs = state.elapsed().as_secs_f64();
            let rate = if secs > 0.0 {
                (c.packets as f64 / secs) as u64
            } else {
                0
            };
            let width = terminal_width(&std::io::stderr()).unwrap_or(80);
            let room = width.saturating_sub(fixed + fixed_bar);
            let _ = w.write_str(&progress_text(room, &c.name, c.packets, c.flows, rate));
        };
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key("counts", text)
            .progress_chars("=> ");
        let bar =
            ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr()).with_style(style);
        bar.enable_steady_tick(REDRAW);
        Progress {
            bar,
            counts,
            done: 0,
        }
    }

    /// Shows `read` bytes of the file `name` read (none for a stream),
    /// and the counts so far.
    fn show(&mut self, name: &str, read: Option<u64>, packets: u64, flows: u64) {
        {
            let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
            if c.name != name {
                name.clone_into(&mut c.name);
            }
            (c.packets, c.flows) = (packets, flows);
        }
        match read {
            Some(read) if self.bar.length().is_some() => self.bar.set_position(self.done + read),
            _ => self.bar.tick(),
        }
    }

    /// The file of `size` bytes (none for a stream) is done.
    fn file_done(&mut self, size: Option<u64>) {
        self.done += size.unwrap_or(0);
    }
}

/// The text beside the bar in at most `room` columns: the file's name,
/// packets, flows, packet rate. Where room is short the name loses its
/// middle, then is left out, then the rate, then the flows.
fn progress_text(room: usize, name: &str, packets: u64, flows: u64, rate: u64) -> String {
    let counts = [
        format!("{} pkts", HumanCount(packets)),
        format!("{} flows", HumanCount(flows)),
        format!("{} pkt/s", HumanCount(rate)),
    ];
    for n in (1..=counts.len()).rev() {
        let text = counts[..n].join(" ");
        let len = text.chars().count();
        if len > room {
            continue;
        }
        // The name, if at least 8 columns of it fit; at most 30, for the
        // bar's sake.
        let left = (room - len).saturating_sub(1).min(30);
        if n == counts.len() && left >= 8 {
            return format!("{} {text}", cut(name, left, left / 2));
        }
        return text;
    }
    cut(&counts[0], room, 0)
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

    #[test]
    fn progress_text_fits_its_room() {
        let name = "a-rather-long-capture-file-name.pcap";
        let text = |room| progress_text(room, name, 1_234_567, 8_901, 23_456);
        assert_eq!(
            text(80),
            "a-rather-long-…-file-name.pcap 1,234,567 pkts 8,901 flows 23,456 pkt/s"
        );
        assert_eq!(
            text(50),
            "a-ra….pcap 1,234,567 pkts 8,901 flows 23,456 pkt/s"
        );
        assert_eq!(text(45), "1,234,567 pkts 8,901 flows 23,456 pkt/s");
        assert_eq!(text(30), "1,234,567 pkts 8,901 flows");
        assert_eq!(text(20), "1,234,567 pkts");
        assert_eq!(text(8), "1,234,5…");
        for room in 0..100 {
            assert!(text(room).chars().count() <= room, "{room}: {}", text(room));
        }
        assert_eq!(
            progress_text(80, "b.pcap", 1, 0, 0),
            "b.pcap 1 pkts 0 flows 0 pkt/s"
        );
    }

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
