//! `flowstatd run`: the live agent.
//!
//! The pipeline of [`crate::pipeline`], driven by the wall clock:
//!
//! - one **capture thread** per source (a libpcap handle, or an AF_XDP
//!   socket per RX queue) decodes each frame once, counts it, and hands
//!   the decoded packet to its flow's worker (a hash of its addresses that
//!   is the same in both directions, so a flow's packets, its fragments
//!   included, all reach one worker). A full worker queue drops the batch
//!   and counts it (`queue_dropped`): capture never waits.
//! - one **flow worker** per core runs a [`FlowWorker`]: flow tables,
//!   plugins, and the encoding of flow records, which it publishes to the
//!   sinks' queues as it makes them. A full queue holds the worker back
//!   while its sink is delivering and drops the oldest records once the
//!   sink has delivered nothing for [`SinkRuntime::LIVE_PATIENCE`], so an
//!   interval's end or a purge of every flow reaches a sink that keeps up
//!   whole.
//! - the **main thread** ends each update interval on the wall clock
//!   (every worker reports, the [`Reducer`] merges their parts with the
//!   capture threads' and publishes `agent_status` and `interface_stats`),
//!   handles signals (SIGTERM/SIGINT: purge every flow, flush, exit;
//!   SIGHUP: reload the config) and writes the status file.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded, select, unbounded};
use flowstat_analytics::Shared;
use flowstat_api::{ApiServer, ApiState};
use flowstat_core::{
    Batch, CaptureStatus, InterfaceCounters, InterfaceReport, KindSet, Record, RecordKind, Records,
    Timestamp,
};
use flowstat_dpi::Applications;
use flowstat_flow::{FlowLimit, LocalNetworks};
use flowstat_geo::GeoDb;
use flowstat_geo::SharedGeo;
use flowstat_sinks::SinkRuntime;
use ipnet::IpNet;

use crate::config::{CaptureSection, Config, Role};
use crate::dispatch::{
    Dispatched, Dispatcher, PacketBatch, Spares, SplitWatch, unsupported_link_warning,
};
use crate::ifaces::{self, KernelStats};
use crate::interval::{
    CapturePart, IntervalClock, Reducer, SourceReport, WorkerReport, merge_reports,
};
use crate::pipeline::{PipelineConfig, PluginFactory};
use crate::sources::{self, LiveSource};
use crate::worker::{Deliver, FlowWorker, Position};
use crate::{ConfigError, outputs, privileges};

/// How `flowstatd run` was started.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The configuration file.
    pub config: PathBuf,
    /// Whether `config` was given explicitly (a missing default file then
    /// means "all defaults").
    pub config_given: bool,
    /// `-I`: internal (lan) interfaces, added to the config's captures.
    pub internal: Vec<String>,
    /// `-E`: external (wan) interfaces.
    pub external: Vec<String>,
    /// Local networks given with `-I`/`-E` (`-I eth0,192.168.0.0/24`),
    /// added to the config's `agent.local_networks`.
    pub local_networks: Vec<IpNet>,
    /// `--user USER[:GROUP]`: the user and group to run as, instead of
    /// the config's `agent.user` and `agent.group` (the package's service
    /// passes `--user flowstatd`).
    pub user: Option<(String, String)>,
}

/// Frames lent per poll of a source, and packets per worker batch.
const POLL_BUDGET: usize = 256;
/// How long a capture thread waits on an idle source before checking for
/// shutdown.
const IDLE_WAIT: Duration = Duration::from_millis(100);
/// How long a capture thread keeps reading after a stop (it stops sooner
/// once its source has been idle through one wait).
const STOP_DRAIN: Duration = Duration::from_millis(300);
/// How long the main thread waits for the workers at an interval's end.
const WORKER_WAIT: Duration = Duration::from_millis(1500);
/// How long sinks may take to deliver what they hold when they are
/// replaced or the agent stops (SIGTERM must exit within 2 s).
const SINK_DRAIN: Duration = Duration::from_secs(1);

/// Runs the agent until SIGTERM or SIGINT.
pub fn run(opts: &RunOptions, plugins: &PluginFactory) -> anyhow::Result<()> {
    let (cfg, apps, geo) = load(opts)?;
    anyhow::ensure!(
        !cfg.capture.is_empty(),
        "no capture interface: add a [[capture]] table to {} or pass -I/-E IFACE",
        opts.config.display()
    );

    // AF_XDP's UMEM is locked memory: take all the limit allows.
    crate::resources::raise_soft_limit(nix::sys::resource::Resource::RLIMIT_MEMLOCK);
    // Open everything that needs privileges, then drop them.
    let mut captures = Vec::new();
    for (id, section) in cfg.capture.iter().enumerate() {
        let (opened, method) = sources::open(section)?;
        tracing::info!(interface = %section.interface, method, sockets = opened.len(), "capturing");
        captures.extend(opened.into_iter().map(|s| (id, s)));
    }
    // Sinks open now too (files, sockets), before privileges go, and the
    // status file's directory is made (outside systemd, /run/flowstatd
    // does not exist).
    let owner = privileges::owner(&cfg.agent);
    if let Err(e) = flowstat_sinks::dirs::make_parent(&cfg.agent.status_file, owner) {
        // Said again each time the file cannot be written.
        tracing::warn!(file = %cfg.agent.status_file.display(), "cannot make the status file's directory: {e}");
    }
    let sinks = outputs::start(&cfg.sink, owner)?;
    privileges::drop_to(&cfg.agent.user, &cfg.agent.group)?;
    let signals = crate::signals::listen()?;

    if !geo.is_empty() {
        tracing::info!(databases = ?geo, "address databases loaded");
    }
    let mut agent = Agent::start(cfg, apps, geo, opts.clone(), captures, sinks, plugins)?;
    tracing::info!(workers = agent.workers.len(), "flowstatd running");
    agent.main_loop(&signals);
    agent.shutdown();
    Ok(())
}

/// The config file (or the defaults, when the default path does not
/// exist), with `-I`/`-E` interfaces added, checked against this host,
/// and the application table and address databases it names.
fn load(opts: &RunOptions) -> Result<(Config, Arc<Applications>, GeoDb), ConfigError> {
    let path = &opts.config;
    let mut cfg = if opts.config_given || path.exists() {
        Config::load(path)?
    } else {
        Config::default()
    };
    if let Some((user, group)) = &opts.user {
        cfg.agent.user.clone_from(user);
        cfg.agent.group.clone_from(group);
    }
    let problems = cfg.check_host();
    if !problems.is_empty() {
        return Err(ConfigError::invalid(path, problems));
    }
    for note in &cfg.notes {
        tracing::info!("{}", note.display(path));
    }
    for (names, role, flag) in [
        (&opts.internal, Role::Lan, "-I"),
        (&opts.external, Role::Wan, "-E"),
    ] {
        for name in names {
            if !ifaces::exists(name) {
                return Err(ConfigError::Interface(format!(
                    "{flag} {name}: no interface named {name:?} on this host (see `ip link`)"
                )));
            }
            if !cfg.capture.iter().any(|c| c.interface == *name) {
                cfg.capture.push(CaptureSection::new(name, role));
            }
        }
    }
    cfg.agent
        .local_networks
        .extend(opts.local_networks.iter().copied());
    let apps = cfg.applications(path)?;
    let geo = cfg.geo(path)?;
    Ok((cfg, apps, geo))
}

/// The local networks: the config's, and the capture interfaces'.
fn local_networks(cfg: &Config) -> (LocalNetworks, Vec<IpNet>) {
    let names: Vec<String> = cfg.capture.iter().map(|c| c.interface.clone()).collect();
    let mut nets: Vec<IpNet> = ifaces::networks(&names).into_iter().collect();
    nets.extend(cfg.agent.local_networks.iter().copied());
    nets.sort();
    nets.dedup();
    (LocalNetworks::new(nets.iter().copied()), nets)
}

/// The time now, as a packet timestamp.
fn wall_now() -> Timestamp {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_nanos(u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
}

/// The running sinks, shared by the workers and the main thread, and
/// replaced at a reload.
#[derive(Default)]
struct Outputs(RwLock<SinkRuntime>);

impl Outputs {
    fn publish(&self, records: Vec<Record>) {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .publish(records);
    }

    fn status(&self) -> Vec<flowstat_core::SinkStatus> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .status()
    }

    /// Puts `sinks` in place of the running ones, which are returned.
    fn replace(&self, sinks: SinkRuntime) -> SinkRuntime {
        std::mem::replace(
            &mut *self.0.write().unwrap_or_else(PoisonError::into_inner),
            sinks,
        )
    }
}

/// A worker's records go straight to the sinks, its reports to the main
/// thread.
struct LiveOut {
    outputs: Arc<Outputs>,
    reports: Sender<WorkerReport>,
}

impl Deliver for LiveOut {
    fn deliver(&mut self, records: &mut Records, positions: &mut Vec<Position>, _: Position) {
        positions.clear();
        if !records.is_empty() {
            self.outputs.publish(records.take());
        }
    }

    fn report(&mut self, report: WorkerReport) {
        // The main thread stops the workers before it goes: a failed send
        // means it is going anyway.
        let _ = self.reports.send(report);
    }
}

/// What a capture thread shares with the main thread.
#[derive(Debug, Default)]
struct CaptureShared {
    /// Counters since the last interval's end.
    counters: InterfaceCounters,
    /// Frames received and dropped by the capture layer, since start.
    received: u64,
    dropped: u64,
}

/// Where a capture thread's packets go.
enum Route {
    /// To the flow workers' queues, in batches (the hand-off).
    HandOff {
        queues: Vec<Sender<PacketBatch>>,
        spares: Spares,
    },
    /// To the thread's own flow worker, at once: run-to-completion, where
    /// each socket sees every packet of its flows. The thread also takes
    /// the main thread's requests.
    Inline {
        worker: Box<FlowWorker>,
        control: Receiver<Control>,
        out: LiveOut,
        /// Stop came while the source was still being drained.
        stopping: bool,
        /// With other sockets on the interface (RX queues): the watch they
        /// share, and this socket's number in it.
        split: Option<(Arc<SplitWatch>, usize)>,
    },
}

impl Route {
    /// Takes a packet of `source`: run to completion, the worker accounts
    /// it at once, on the frame as the capture lent it (no copy: that was
    /// a fifth of the capture thread's time); in the hand-off, it goes into
    /// its worker's batch.
    fn packet(
        &mut self,
        source: usize,
        mut dispatched: Dispatched<'_>,
        batches: &mut [PacketBatch],
    ) {
        match self {
            // Live, the order across workers is not kept: no sequence.
            Route::HandOff { .. } => dispatched.push(0, batches),
            Route::Inline { worker, out, .. } => dispatched.run(worker, source, 0, out),
        }
    }

    /// Hands over the packets of `batches`: the full ones, or all when
    /// `caught_up`. Frames the hand-off had no room for are counted in
    /// `queue_dropped`. Run to completion, hands on the worker's records
    /// instead. False when the workers are gone.
    fn deliver(
        &mut self,
        batches: &mut [PacketBatch],
        caught_up: bool,
        queue_dropped: &mut u64,
    ) -> bool {
        match self {
            Route::HandOff { queues, spares } => {
                for (w, batch) in batches.iter_mut().enumerate() {
                    if batch.is_empty() || (!caught_up && batch.len() < POLL_BUDGET) {
                        continue;
                    }
                    let source = batch.source;
                    match queues[w].try_send(std::mem::replace(batch, spares.take(source))) {
                        Ok(()) => {}
                        Err(TrySendError::Full(b)) => {
                            *queue_dropped += b.len() as u64;
                            spares.give(b);
                        }
                        Err(TrySendError::Disconnected(_)) => return false,
                    }
                }
            }
            Route::Inline {
                worker,
                control,
                out,
                stopping,
                ..
            } => {
                // Live records keep no order across workers: any bound.
                worker.flush(Position::Packet(1), out);
                // Between batches, what the main thread asks.
                while let Ok(msg) = control.try_recv() {
                    *stopping |= !obey(worker, msg, out);
                }
            }
        }
        true
    }

    /// After the capture ended: a worker of its own goes on taking the
    /// main thread's requests until Stop, then purges every flow.
    fn finish(self) {
        if let Route::Inline {
            mut worker,
            control,
            mut out,
            stopping,
            ..
        } = self
        {
            if !stopping {
                while let Ok(msg) = control.recv() {
                    if !obey(&mut worker, msg, &mut out) {
                        break;
                    }
                }
            }
            worker.close(None, &mut out);
        }
    }
}

fn capture_loop(
    mut src: LiveSource,
    source: usize,
    mut dispatcher: Dispatcher,
    mut route: Route,
    shared: Arc<Mutex<CaptureShared>>,
    stop: Arc<AtomicBool>,
) {
    let mut batches: Vec<PacketBatch> = match &route {
        Route::HandOff { queues, spares } => queues.iter().map(|_| spares.take(source)).collect(),
        Route::Inline { .. } => Vec::new(),
    };
    let split = match &route {
        Route::Inline { split, .. } => split.clone(),
        Route::HandOff { .. } => None,
    };
    let interface = src.name().to_owned();
    let mut queue_dropped = 0;
    let mut last_stats = src.stats();
    // After a stop, what the kernel already holds is still read: until the
    // source has stayed idle through one wait, or STOP_DRAIN has passed.
    let mut drain_until: Option<Instant> = None;
    let mut waited_since_stop = false;
    // Unsupported link types warned of so far.
    let mut warned_links = 0;
    loop {
        if drain_until.is_none() && stop.load(Ordering::Relaxed) {
            drain_until = Some(Instant::now() + STOP_DRAIN);
        }
        let polled = src.poll_batch(POLL_BUDGET, &mut |frame| {
            if let Some(dispatched) = dispatcher.dispatch(frame) {
                if let Some((watch, socket)) = &split {
                    if watch.saw(*socket, &dispatched.packet) {
                        tracing::warn!(
                            "run to completion: a TCP handshake arrived on two RX queues of {} \
                             (its RSS is not symmetric), so flows are split, each queue \
                             counting its half as a flow of its own; make RSS symmetric \
                             (`ethtool -X {0} hfunc toeplitz symmetric-xor`, where the driver \
                             has it) or set agent.run_to_completion = false",
                            interface
                        );
                    }
                }
                route.packet(source, dispatched, &mut batches);
            }
        });
        for &(link, _) in &dispatcher.unsupported_links()[warned_links..] {
            tracing::warn!("{}", unsupported_link_warning(src.name(), link, None));
        }
        warned_links = dispatcher.unsupported_links().len();
        // A batch goes when it is full, or when the source has nothing more
        // for now: full batches keep the queues' capacity in frames what
        // queue_packets says, whatever the source lends per poll.
        let caught_up = !matches!(polled, Ok(Batch::Frames(_)));
        if !route.deliver(&mut batches, caught_up, &mut queue_dropped) {
            return;
        }
        let stats = src.stats();
        {
            let mut s = shared.lock().unwrap_or_else(PoisonError::into_inner);
            s.counters += &dispatcher.take_counters();
            s.counters.queue_dropped += std::mem::take(&mut queue_dropped);
            s.counters.capture_dropped += stats.dropped.saturating_sub(last_stats.dropped);
            s.counters.capture_filtered += stats.filtered.saturating_sub(last_stats.filtered);
            s.received += stats.received.saturating_sub(last_stats.received);
            s.dropped += stats.dropped.saturating_sub(last_stats.dropped);
        }
        last_stats = stats;
        match polled {
            Ok(Batch::Frames(_)) => {}
            Ok(Batch::Idle) => {
                if let Some(until) = drain_until {
                    if waited_since_stop || Instant::now() >= until {
                        break;
                    }
                    waited_since_stop = true;
                }
                if let Err(e) = src.wait(IDLE_WAIT) {
                    tracing::error!("{e}; this capture stops");
                    break;
                }
            }
            Ok(Batch::End) => break,
            Err(e) => {
                tracing::error!("{e}; this capture stops");
                break;
            }
        }
    }
    route.finish();
}

/// What the main thread tells a worker.
enum Control {
    /// End the interval at this time.
    Tick(Timestamp),
    /// New local networks, for flows created from now on.
    SetLocals(LocalNetworks),
    /// The kinds of records now subscribed to.
    SetWanted(KindSet),
    /// A reloaded application table, for flows detected from now on.
    SetApplications(Arc<Applications>),
    /// Finish the queued packets, purge every flow, and stop.
    Stop,
}

fn worker_loop(
    mut worker: FlowWorker,
    packets: Receiver<PacketBatch>,
    spares: Spares,
    control: Receiver<Control>,
    mut out: LiveOut,
) {
    let never = crossbeam_channel::never();
    let mut live = true;
    loop {
        select! {
            recv(if live { &packets } else { &never }) -> batch => match batch {
                Ok(batch) => {
                    batch.run(&mut worker, &mut out);
                    spares.give(batch);
                }
                Err(_) => live = false,
            },
            recv(control) -> msg => {
                if msg.is_ok_and(|msg| obey(&mut worker, msg, &mut out)) {
                    continue;
                }
                while let Ok(batch) = packets.try_recv() {
                    batch.run(&mut worker, &mut out);
                }
                worker.close(None, &mut out);
                return;
            },
        }
    }
}

/// Carries out the main thread's `msg` on `worker`; false for Stop, which
/// the caller carries out once its packets are in.
fn obey(worker: &mut FlowWorker, msg: Control, out: &mut LiveOut) -> bool {
    match msg {
        Control::Tick(now) => worker.end_interval(now, out),
        Control::SetLocals(l) => worker.set_local_networks(l),
        Control::SetWanted(k) => worker.records().set_wanted(k),
        Control::SetApplications(a) => worker.set_applications(&a),
        Control::Stop => return false,
    }
    true
}

/// A running agent, seen from the main thread.
struct Agent {
    cfg: Config,
    opts: RunOptions,
    started: Instant,
    interfaces: Vec<(String, bool)>,
    shared: Vec<Arc<Mutex<CaptureShared>>>,
    kernel: Vec<KernelStats>,
    locals: Vec<IpNet>,
    stop: Arc<AtomicBool>,
    captures: Vec<JoinHandle<()>>,
    workers: Vec<(Sender<Control>, JoinHandle<()>)>,
    reports: Receiver<WorkerReport>,
    /// The flow definitions and thresholds the workers and the reducer
    /// share.
    analytics: Shared,
    /// The HTTP face, stopped with the agent, and what it serves.
    api: Option<ApiServer>,
    api_state: Option<ApiState>,
    outputs: Arc<Outputs>,
    /// The address databases the workers' plugins read, swapped at SIGHUP.
    geo: SharedGeo,
    /// The application table the workers name flows with.
    apps: Arc<Applications>,
    reducer: Reducer,
    clock: IntervalClock,
    /// The status file could not be written last time (logged once).
    status_failing: std::cell::Cell<bool>,
}

impl Agent {
    fn start(
        cfg: Config,
        apps: Arc<Applications>,
        geo: GeoDb,
        opts: RunOptions,
        captures: Vec<(usize, LiveSource)>,
        mut sinks: SinkRuntime,
        plugins: &PluginFactory,
    ) -> anyhow::Result<Agent> {
        let mut pipeline = PipelineConfig::new(&cfg, apps, geo, true);
        let api = if cfg.api.enabled {
            let server = ApiServer::start(&cfg.api, pipeline.serve_api())?;
            tracing::info!(address = %server.addr(), "API listening");
            Some(server)
        } else {
            None
        };
        outputs::add_api_sink(&mut sinks, pipeline.api.as_ref())?;
        let wanted = sinks.wanted();
        let outputs = Arc::new(Outputs(RwLock::new(sinks)));
        let (locals, local_list) = local_networks(&cfg);
        pipeline.locals = locals;
        let interfaces: Vec<(String, bool)> = cfg
            .capture
            .iter()
            .map(|c| (c.interface.clone(), c.role == Role::Lan))
            .collect();
        let inline = cfg.agent.run_to_completion;
        if inline {
            tracing::info!("run to completion: each capture thread is a flow worker");
        }
        let n_workers = match cfg.agent.workers {
            _ if inline => captures.len(),
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n as usize,
        };
        // Live, every worker has a thread of its own: equal shares.
        let shares = vec![1; n_workers];
        // Each worker's queue holds its share of queue_packets, in batches.
        let batches = (cfg.agent.queue_packets as usize / POLL_BUDGET / n_workers).max(4);
        let (report_tx, reports) = unbounded();
        let limit = FlowLimit::new(pipeline.flows.max_flows);
        let mut workers = Vec::new();
        let mut packet_queues = Vec::new();
        // A few batches in flight per worker and capture are all a steady
        // flow of frames needs; a burst's extra batches are freed.
        let spares = Spares::new(4 * n_workers * captures.len().max(1), || {
            PacketBatch::new(0)
        });
        let mut idle_workers = Vec::new();
        for i in 0..n_workers {
            let mut worker = pipeline.worker(&limit, plugins(&pipeline), wanted);
            for (name, internal) in &interfaces {
                worker.open_source(name, *internal);
            }
            let (control_tx, control_rx) = unbounded();
            let out = LiveOut {
                outputs: Arc::clone(&outputs),
                reports: report_tx.clone(),
            };
            if inline {
                idle_workers.push((worker, control_tx, control_rx, out));
                continue;
            }
            let (packet_tx, packet_rx) = bounded(batches);
            let spares = spares.clone();
            let handle = spawn(&format!("flowstat-work{i}"), move || {
                worker_loop(worker, packet_rx, spares, control_rx, out)
            })?;
            workers.push((control_tx, handle));
            packet_queues.push(packet_tx);
        }

        let stop = Arc::new(AtomicBool::new(false));
        let shared: Vec<_> = interfaces.iter().map(|_| Arc::default()).collect();
        let mut threads = Vec::new();
        // Run to completion, the sockets of an interface with several (one
        // per RX queue) share a watch for flows split across them.
        let watches: Vec<Option<Arc<SplitWatch>>> = (0..interfaces.len())
            .map(|i| {
                let sockets = captures.iter().filter(|(s, _)| *s == i).count();
                (inline && sockets > 1).then(Arc::default)
            })
            .collect();
        for (n, (source, src)) in captures.into_iter().enumerate() {
            let stop = Arc::clone(&stop);
            let shared = Arc::clone(&shared[source]);
            let dispatcher = Dispatcher::new(pipeline.decode, &shares);
            let name = format!("flowstat-cap{n}");
            if let Some((worker, control_tx, control, out)) = idle_workers.pop() {
                // It answers to the main thread as a worker does.
                let route = Route::Inline {
                    worker: Box::new(worker),
                    control,
                    out,
                    stopping: false,
                    split: watches[source].clone().map(|w| (w, n)),
                };
                let handle = spawn(&name, move || {
                    capture_loop(src, source, dispatcher, route, shared, stop)
                })?;
                workers.push((control_tx, handle));
                continue;
            }
            let route = Route::HandOff {
                queues: packet_queues.clone(),
                spares: spares.clone(),
            };
            let handle = spawn(&name, move || {
                capture_loop(src, source, dispatcher, route, shared, stop)
            })?;
            threads.push(handle);
        }
        let kernel = interfaces
            .iter()
            .map(|(name, _)| KernelStats::new(name))
            .collect();
        let clock = IntervalClock::started_at(cfg.update_interval(), wall_now());
        Ok(Agent {
            api,
            api_state: pipeline.api.clone(),
            analytics: pipeline.analytics.clone(),
            reducer: Reducer::new(
                cfg.update_interval(),
                true,
                pipeline.analytics.clone(),
                plugins(&pipeline),
                wanted,
            )
            .with_api(pipeline.api.clone()),
            apps: pipeline.apps,
            geo: pipeline.geo,
            clock,
            opts,
            started: Instant::now(),
            interfaces,
            shared,
            kernel,
            locals: local_list,
            stop,
            captures: threads,
            workers,
            reports,
            outputs,
            status_failing: std::cell::Cell::new(false),
            cfg,
        })
    }

    fn main_loop(&mut self, signals: &Receiver<crate::signals::Signal>) {
        use crate::signals::Signal;
        loop {
            let next = self.clock.next().unwrap_or_else(wall_now);
            let wait = Duration::from_nanos(next.as_nanos().saturating_sub(wall_now().as_nanos()));
            select! {
                recv(signals) -> sig => match sig {
                    Ok(Signal::Reload) => self.reload(),
                    Ok(Signal::Stop) | Err(_) => return,
                },
                recv(crossbeam_channel::after(wait)) -> _ => {
                    // The wall clock may be a hair short of the boundary.
                    let now = wall_now().max(next);
                    for end in self.clock.due(now).collect::<Vec<_>>() {
                        self.end_interval(end, false);
                    }
                }
            }
        }
    }

    /// Stops capture, lets the workers purge every flow, reports the last
    /// interval, flushes the sinks.
    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for handle in self.captures.drain(..) {
            let _ = handle.join();
        }
        self.end_interval(wall_now(), true);
        for (_, handle) in self.workers.drain(..) {
            let _ = handle.join();
        }
        let sinks = self.outputs.replace(SinkRuntime::new());
        outputs::log_final(&sinks.finish(SINK_DRAIN));
        if let Some(api) = self.api.take() {
            api.finish(SINK_DRAIN);
        }
        tracing::info!("flowstatd stopped");
    }

    /// Ends an interval at `now` (the last one when `last`): every worker
    /// ends it (or purges everything), then the interval's status goes out.
    fn end_interval(&mut self, now: Timestamp, last: bool) {
        for (control, _) in &self.workers {
            let _ = control.send(if last {
                Control::Stop
            } else {
                Control::Tick(now)
            });
        }
        let mut reports = vec![SourceReport::default(); self.interfaces.len()];
        let mut tallies = Vec::new();
        let deadline = Instant::now() + WORKER_WAIT;
        for _ in 0..self.workers.len() {
            match self.reports.recv_deadline(deadline) {
                Ok(r) => {
                    merge_reports(&mut reports, &r.sources);
                    tallies.push(r.tally);
                }
                Err(_) => {
                    tracing::warn!(
                        "a flow worker did not report in time; its counts join the next interval"
                    );
                    break;
                }
            }
        }
        let mut interfaces = Vec::new();
        let mut captures = Vec::new();
        for (i, (name, _)) in self.interfaces.iter().enumerate() {
            let mut shared = self.shared[i]
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            captures.push(CaptureStatus {
                name: name.clone(),
                received: shared.received,
                dropped: shared.dropped,
            });
            interfaces.push(InterfaceReport {
                name: name.clone(),
                counters: std::mem::take(&mut shared.counters),
                kernel: self.kernel[i].read(),
            });
        }
        let part = CapturePart {
            now,
            uptime: self.started.elapsed(),
            interfaces,
            reports,
            tallies,
            captures,
        };
        let records = self.reducer.end_interval(part, self.outputs.status());
        self.write_status_file(&records);
        self.outputs.publish(records);
        if !last {
            self.refresh_local_networks();
        }
    }

    /// Writes this interval's agent_status and interface_stats records to
    /// the status file (atomically), for `flowstatd status`.
    fn write_status_file(&self, records: &[Record]) {
        let path = &self.cfg.agent.status_file;
        if path.as_os_str().is_empty() {
            return;
        }
        let mut text = Vec::new();
        for r in records
            .iter()
            .filter(|r| matches!(r.kind, RecordKind::AgentStatus | RecordKind::InterfaceStats))
        {
            text.extend_from_slice(&r.json);
            text.push(b'\n');
        }
        let tmp = path.with_extension("tmp");
        match std::fs::write(&tmp, &text).and_then(|()| std::fs::rename(&tmp, path)) {
            Ok(()) if self.status_failing.get() => {
                tracing::info!(path = %path.display(), "status file written again");
                self.status_failing.set(false);
            }
            Err(e) if !self.status_failing.get() => {
                tracing::warn!(path = %path.display(), "cannot write the status file: {e} (`flowstatd status` will show stale data)");
                self.status_failing.set(true);
            }
            _ => {}
        }
    }

    /// Picks up address changes of the capture interfaces.
    fn refresh_local_networks(&mut self) {
        let (locals, list) = local_networks(&self.cfg);
        if list != self.locals {
            tracing::info!(networks = ?list, "local networks changed");
            self.locals = list;
            for (control, _) in &self.workers {
                let _ = control.send(Control::SetLocals(locals.clone()));
            }
        }
    }

    /// SIGHUP: reads the config again; applies it, or keeps the old one and
    /// says why.
    fn reload(&mut self) {
        let (new, apps, geo) = match load(&self.opts) {
            Ok(loaded) => loaded,
            Err(e) => {
                tracing::error!("reload rejected, keeping the running configuration:\n{e}");
                return;
            }
        };
        let mut changed = Vec::new();
        if *apps != *self.apps {
            for (control, _) in &self.workers {
                let _ = control.send(Control::SetApplications(Arc::clone(&apps)));
            }
            self.apps = apps;
            changed.push("applications");
        }
        // Read anew even when the paths are the same: the files may have
        // been updated in place. Flows' next `flow` records use them.
        if new.geo != self.cfg.geo || !geo.is_empty() {
            tracing::info!(databases = ?geo, "address databases loaded");
            changed.push("geo");
        }
        self.geo.store(Arc::new(geo));
        if new.sink != self.cfg.sink {
            let owner = privileges::owner(&new.agent);
            let started = outputs::start(&new.sink, owner).and_then(|mut sinks| {
                outputs::add_api_sink(&mut sinks, self.api_state.as_ref())?;
                Ok(sinks)
            });
            match started {
                Ok(sinks) => {
                    let wanted = sinks.wanted();
                    self.reducer.set_wanted(wanted);
                    for (control, _) in &self.workers {
                        let _ = control.send(Control::SetWanted(wanted));
                    }
                    let old = self.outputs.replace(sinks);
                    outputs::log_final(&old.finish(SINK_DRAIN));
                    changed.push("sinks");
                }
                Err(e) => {
                    tracing::error!("cannot start the new sinks: {e:#}; the running ones stay")
                }
            }
        }
        if (&new.flow_definition, &new.threshold, &new.analytics)
            != (
                &self.cfg.flow_definition,
                &self.cfg.threshold,
                &self.cfg.analytics,
            )
        {
            self.analytics.replace(new.analytics());
            changed.push("flow definitions and thresholds");
        }
        if new.agent.status_file != self.cfg.agent.status_file {
            changed.push("status_file");
        }
        if new.agent.update_interval_secs != self.cfg.agent.update_interval_secs {
            self.reducer.set_update_interval(new.update_interval());
            self.clock = IntervalClock::started_at(new.update_interval(), wall_now());
            changed.push("update_interval_secs");
        }
        let local_changed = new.agent.local_networks != self.cfg.agent.local_networks;
        let restart: Vec<&str> = [
            ("[[capture]]", new.capture != self.cfg.capture),
            ("[flows]", new.flows != self.cfg.flows),
            ("[decode]", new.decode != self.cfg.decode),
            ("[api]", new.api != self.cfg.api),
            (
                "workers/queue_packets/run_to_completion/user/group",
                new.agent.workers != self.cfg.agent.workers
                    || new.agent.queue_packets != self.cfg.agent.queue_packets
                    || new.agent.run_to_completion != self.cfg.agent.run_to_completion
                    || new.agent.user != self.cfg.agent.user
                    || new.agent.group != self.cfg.agent.group,
            ),
        ]
        .into_iter()
        .filter_map(|(name, differs)| differs.then_some(name))
        .collect();
        let mut kept = new;
        // What needs a restart keeps its running value.
        kept.capture = self.cfg.capture.clone();
        kept.flows = self.cfg.flows.clone();
        kept.decode = self.cfg.decode.clone();
        kept.api = self.cfg.api.clone();
        kept.agent.workers = self.cfg.agent.workers;
        kept.agent.queue_packets = self.cfg.agent.queue_packets;
        kept.agent.run_to_completion = self.cfg.agent.run_to_completion;
        kept.agent.user = self.cfg.agent.user.clone();
        kept.agent.group = self.cfg.agent.group.clone();
        self.cfg = kept;
        if local_changed {
            self.refresh_local_networks();
            changed.push("local_networks");
        }
        if !restart.is_empty() {
            tracing::warn!(sections = ?restart, "changed, but these take effect at the next restart");
        }
        tracing::info!(config = %self.opts.config.display(), changed = ?changed, "configuration reloaded");
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> anyhow::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .with_context(|| format!("starting thread {name}"))
}
