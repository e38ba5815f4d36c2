//! `flowstatd run`: the live agent.
//!
//! Threads and what flows between them:
//!
//! - one **capture thread** per source (a libpcap handle, or an AF_XDP
//!   socket per RX queue) decodes each frame far enough to pick its flow's
//!   worker, by a hash of its addresses that is the same in both directions
//!   (so a flow's packets, its fragments included, all reach one worker),
//!   and copies it into that worker's batch. A full worker queue drops the
//!   batch and counts it (`queue_dropped`): capture never waits.
//! - one **flow worker** per core runs a [`FlowWorker`]: flow tables,
//!   plugins, and the encoding of flow records.
//! - one **output thread** owns the sinks.
//! - the **main thread** ends each update interval on the wall clock (ticks
//!   every worker, then reports `agent_status` and `interface_stats`),
//!   handles signals (SIGTERM/SIGINT: purge every flow, flush, exit;
//!   SIGHUP: reload the config) and writes the status file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded, select, unbounded};
use flowstat_core::{
    Batch, CaptureStatus, Frame, InterfaceCounters, InterfaceReport, IntervalReport, KindSet,
    LinkType, PacketMeta, Plugin, Record, RecordKind, Records, SinkStatus, Timestamp,
};
use flowstat_decode::{DecodeConfig, decode};
use flowstat_dpi::{Applications, Engine as DpiEngine};
use flowstat_flow::LocalNetworks;
use flowstat_sinks::SinkRuntime;
use foldhash::fast::FixedState;
use ipnet::IpNet;
use std::hash::BuildHasher;

use crate::config::{CaptureSection, Config, Role, SinkSection};
use crate::engine::{PluginFactory, StatusBuilder, count_frame};
use crate::ifaces::{self, KernelStats};
use crate::sources::{self, LiveSource};
use crate::worker::{FlowWorker, SourceReport};
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
}

/// Frames lent per poll of a source.
const POLL_BUDGET: usize = 256;
/// How long a capture thread waits on an idle source before checking for
/// shutdown.
const IDLE_WAIT: Duration = Duration::from_millis(100);
/// How long a capture thread keeps reading after a stop (it stops sooner
/// once its source has been idle through one wait).
const STOP_DRAIN: Duration = Duration::from_millis(300);
/// How long the main thread waits for the workers at an interval's end.
const WORKER_WAIT: Duration = Duration::from_millis(1500);

/// Runs the agent until SIGTERM or SIGINT.
pub fn run(opts: &RunOptions, plugins: &PluginFactory) -> anyhow::Result<()> {
    let (cfg, apps) = load(opts)?;
    anyhow::ensure!(
        !cfg.capture.is_empty(),
        "no capture interface: add a [[capture]] table to {} or pass -I/-E IFACE",
        opts.config.display()
    );

    // AF_XDP's UMEM is locked memory: take all the limit allows.
    raise_memlock_limit();
    // Open everything that needs privileges, then drop them.
    let mut captures = Vec::new();
    for (id, section) in cfg.capture.iter().enumerate() {
        let (opened, method) = sources::open(section)?;
        tracing::info!(interface = %section.interface, method, sockets = opened.len(), "capturing");
        captures.extend(opened.into_iter().map(|s| (id, s)));
    }
    // Sinks open now too (files, sockets), before privileges go.
    let sinks = outputs::start(&cfg.sink)?;
    privileges::drop_to(&cfg.agent.user, &cfg.agent.group)?;
    let signals = crate::signals::listen()?;

    let dpi = cfg.dpi_engine(apps);
    let mut agent = Agent::start(cfg, opts.clone(), captures, sinks, dpi, plugins)?;
    tracing::info!(workers = agent.workers.len(), "flowstatd running");
    agent.main_loop(&signals);
    agent.shutdown();
    Ok(())
}

/// Raises the soft RLIMIT_MEMLOCK to the hard limit (which needs no
/// privilege): AF_XDP locks its UMEM, 32 MiB per socket by default.
fn raise_memlock_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_MEMLOCK)
        && soft < hard
        && let Err(e) = setrlimit(Resource::RLIMIT_MEMLOCK, hard, hard)
    {
        tracing::debug!(%e, "cannot raise RLIMIT_MEMLOCK");
    }
}

/// The config file (or the defaults, when the default path does not
/// exist), with `-I`/`-E` interfaces added, checked against this host,
/// and the application table it names.
fn load(opts: &RunOptions) -> Result<(Config, Arc<Applications>), ConfigError> {
    let path = &opts.config;
    let mut cfg = if opts.config_given || path.exists() {
        Config::load(path)?
    } else {
        Config::default()
    };
    cfg.check_interfaces(path)?;
    for (names, role, flag) in [
        (&opts.internal, Role::Lan, "-I"),
        (&opts.external, Role::Wan, "-E"),
    ] {
        for name in names {
            if !Path::new("/sys/class/net").join(name).exists() {
                return Err(ConfigError::Interface(format!(
                    "{flag} {name}: no interface named {name:?} on this host (see `ip link`)"
                )));
            }
            if !cfg.capture.iter().any(|c| c.interface == *name) {
                cfg.capture.push(CaptureSection::new(name, role));
            }
        }
    }
    let apps = cfg.applications(path)?;
    Ok((cfg, apps))
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

/// The first multiple of `interval` after `now`.
fn boundary_after(now: Timestamp, interval: Duration) -> Timestamp {
    let step = u64::try_from(interval.as_nanos())
        .unwrap_or(u64::MAX)
        .max(1);
    Timestamp::from_nanos((now.as_nanos() / step + 1).saturating_mul(step))
}

/// Frames of one source bound for one worker.
struct FrameBatch {
    source: usize,
    frames: Vec<(Timestamp, u32, LinkType, usize)>,
    data: Vec<u8>,
}

impl FrameBatch {
    fn new(source: usize) -> Self {
        FrameBatch {
            source,
            frames: Vec::with_capacity(POLL_BUDGET),
            data: Vec::with_capacity(1 << 16),
        }
    }

    fn push(&mut self, f: &Frame<'_>) {
        self.data.extend_from_slice(f.data);
        self.frames.push((f.ts, f.wire_len, f.link, f.data.len()));
    }

    /// The frames, lent in order.
    fn each(&self, mut f: impl FnMut(&Frame<'_>)) {
        let mut at = 0;
        for &(ts, wire_len, link, len) in &self.frames {
            f(&Frame {
                ts,
                wire_len,
                link,
                data: &self.data[at..at + len],
            });
            at += len;
        }
    }
}

/// The worker for a packet: a hash of its IP version, protocol, VLAN and
/// addresses, the same whichever way the packet goes. Ports are left out
/// so that every fragment of a datagram goes where its first one went.
fn worker_of(pkt: &PacketMeta<'_>, hasher: &FixedState, workers: usize) -> usize {
    let (a, b) = if pkt.src_ip <= pkt.dst_ip {
        (pkt.src_ip, pkt.dst_ip)
    } else {
        (pkt.dst_ip, pkt.src_ip)
    };
    (hasher.hash_one((pkt.ip_version, pkt.protocol, pkt.vlan_id, a, b)) % workers as u64) as usize
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

fn capture_loop(
    mut src: LiveSource,
    source: usize,
    decode_cfg: DecodeConfig,
    queues: Vec<Sender<FrameBatch>>,
    shared: Arc<Mutex<CaptureShared>>,
    stop: Arc<AtomicBool>,
) {
    let hasher = FixedState::with_seed(0x7066_6c6f_7773);
    let n = queues.len();
    let mut batches: Vec<FrameBatch> = (0..n).map(|_| FrameBatch::new(source)).collect();
    let mut local = InterfaceCounters::default();
    let mut last_stats = src.stats();
    // After a stop, what the kernel already holds is still read: until the
    // source has stayed idle through one wait, or STOP_DRAIN has passed.
    let mut drain_until: Option<Instant> = None;
    let mut waited_since_stop = false;
    loop {
        if drain_until.is_none() && stop.load(Ordering::Relaxed) {
            drain_until = Some(Instant::now() + STOP_DRAIN);
        }
        let polled = src.poll_batch(POLL_BUDGET, &mut |frame| {
            let mut pkt = PacketMeta::new(frame.ts, frame.wire_len);
            let decoded = decode(frame, &decode_cfg, &mut pkt);
            count_frame(&mut local, frame, &decoded, &pkt);
            if decoded.is_ok() {
                batches[worker_of(&pkt, &hasher, n)].push(frame);
            }
        });
        // A batch goes when it is full, or when the source has nothing more
        // for now: full batches keep the queues' capacity in frames what
        // queue_packets says, whatever the source lends per poll.
        let caught_up = !matches!(polled, Ok(Batch::Frames(_)));
        for (w, batch) in batches.iter_mut().enumerate() {
            if batch.frames.is_empty() || (!caught_up && batch.frames.len() < POLL_BUDGET) {
                continue;
            }
            match queues[w].try_send(std::mem::replace(batch, FrameBatch::new(source))) {
                Ok(()) => {}
                Err(TrySendError::Full(b)) => local.queue_dropped += b.frames.len() as u64,
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
        let stats = src.stats();
        {
            let mut s = shared.lock().unwrap_or_else(PoisonError::into_inner);
            add_counters(&mut s.counters, &local);
            s.counters.capture_dropped += stats.dropped.saturating_sub(last_stats.dropped);
            s.counters.capture_filtered += stats.filtered.saturating_sub(last_stats.filtered);
            s.received += stats.received.saturating_sub(last_stats.received);
            s.dropped += stats.dropped.saturating_sub(last_stats.dropped);
        }
        local = InterfaceCounters::default();
        last_stats = stats;
        match polled {
            Ok(Batch::Frames(_)) => {}
            Ok(Batch::Idle) => {
                if let Some(until) = drain_until {
                    if waited_since_stop || Instant::now() >= until {
                        return;
                    }
                    waited_since_stop = true;
                }
                if let Err(e) = src.wait(IDLE_WAIT) {
                    tracing::error!("{e}; this capture stops");
                    return;
                }
            }
            Ok(Batch::End) => return,
            Err(e) => {
                tracing::error!("{e}; this capture stops");
                return;
            }
        }
    }
}

/// Adds every counter of `b` to `a` (`largest_bytes` takes the larger).
fn add_counters(a: &mut InterfaceCounters, b: &InterfaceCounters) {
    a.raw += b.raw;
    a.ethernet += b.ethernet;
    a.vlan += b.vlan;
    a.mpls += b.mpls;
    a.pppoe += b.pppoe;
    a.ip += b.ip;
    a.ip_bytes += b.ip_bytes;
    a.wire_bytes += b.wire_bytes;
    a.tcp += b.tcp;
    a.udp += b.udp;
    a.icmp += b.icmp;
    a.igmp += b.igmp;
    a.fragmented += b.fragmented;
    a.discarded += b.discarded;
    a.discarded_bytes += b.discarded_bytes;
    a.largest_bytes = a.largest_bytes.max(b.largest_bytes);
    a.tcp_seq_errors += b.tcp_seq_errors;
    a.tcp_resets += b.tcp_resets;
    a.capture_dropped += b.capture_dropped;
    a.capture_filtered += b.capture_filtered;
    a.queue_dropped += b.queue_dropped;
    a.flow_dropped += b.flow_dropped;
    for (x, y) in a.decode_issues.iter_mut().zip(b.decode_issues) {
        *x += y;
    }
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

/// What the output thread is given.
enum Output {
    Records(Vec<Record>),
    /// The new `[[sink]]` tables: the running sinks are finished, these
    /// started.
    Sinks(Vec<SinkSection>),
}

#[allow(clippy::too_many_arguments)]
fn worker_loop(
    mut worker: FlowWorker,
    sources: usize,
    decode_cfg: DecodeConfig,
    packets: Receiver<FrameBatch>,
    control: Receiver<Control>,
    output: Sender<Output>,
    reports: Sender<Vec<SourceReport>>,
) {
    let process = |worker: &mut FlowWorker, batch: &FrameBatch| {
        batch.each(|frame| {
            let mut pkt = PacketMeta::new(frame.ts, frame.wire_len);
            if decode(frame, &decode_cfg, &mut pkt).is_ok() {
                worker.packet(batch.source, &mut pkt);
            }
        });
    };
    let send = |worker: &mut FlowWorker| {
        let records = worker.records().take();
        if !records.is_empty() {
            // The output thread stops last; a failed send means shutdown.
            let _ = output.send(Output::Records(records));
        }
    };
    let never = crossbeam_channel::never();
    let mut live = true;
    loop {
        select! {
            recv(if live { &packets } else { &never }) -> batch => match batch {
                Ok(batch) => {
                    process(&mut worker, &batch);
                    send(&mut worker);
                }
                Err(_) => live = false,
            },
            recv(control) -> msg => match msg {
                Ok(Control::Tick(now)) => {
                    let r = worker.tick(now);
                    send(&mut worker);
                    let _ = reports.send(r);
                }
                Ok(Control::SetLocals(l)) => worker.set_local_networks(l),
                Ok(Control::SetWanted(k)) => worker.records().set_wanted(k),
                Ok(Control::SetApplications(a)) => worker.set_applications(&a),
                Ok(Control::Stop) | Err(_) => {
                    while let Ok(batch) = packets.try_recv() {
                        process(&mut worker, &batch);
                    }
                    let r = (0..sources).map(|s| worker.close_source(s)).collect();
                    send(&mut worker);
                    let _ = reports.send(r);
                    return;
                }
            },
        }
    }
}

/// How long sinks may take to deliver what they hold when they are
/// replaced or the agent stops (SIGTERM must exit within 2 s).
const SINK_DRAIN: Duration = Duration::from_secs(1);

/// Fans records out to the sinks; swaps the sinks at a reload.
fn output_loop(mut sinks: SinkRuntime, rx: Receiver<Output>, status: Arc<Mutex<Vec<SinkStatus>>>) {
    for msg in rx {
        match msg {
            Output::Records(records) => sinks.publish(records),
            Output::Sinks(sections) => {
                outputs::log_final(&sinks.finish(SINK_DRAIN));
                sinks = outputs::start(&sections).unwrap_or_else(|e| {
                    tracing::error!(
                        "cannot start the new sinks' threads: {e}; records are dropped"
                    );
                    SinkRuntime::new()
                });
            }
        }
        *status.lock().unwrap_or_else(PoisonError::into_inner) = sinks.status();
    }
    outputs::log_final(&sinks.finish(SINK_DRAIN));
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
    reports: Receiver<Vec<SourceReport>>,
    output: Option<(Sender<Output>, JoinHandle<()>)>,
    sink_status: Arc<Mutex<Vec<SinkStatus>>>,
    interval_plugins: Vec<Box<dyn Plugin>>,
    records: Records,
    status: StatusBuilder,
    next_tick: Timestamp,
    /// The status file could not be written last time (logged once).
    status_failing: std::cell::Cell<bool>,
}

impl Agent {
    fn start(
        cfg: Config,
        opts: RunOptions,
        captures: Vec<(usize, LiveSource)>,
        sinks: SinkRuntime,
        dpi: DpiEngine,
        plugins: &PluginFactory,
    ) -> anyhow::Result<Agent> {
        let wanted = sinks.wanted();
        let sink_status = Arc::new(Mutex::new(sinks.status()));
        let (out_tx, out_rx) = bounded(1024);
        let status = Arc::clone(&sink_status);
        let output = spawn("flowstat-output", move || {
            output_loop(sinks, out_rx, status)
        })?;

        let (locals, local_list) = local_networks(&cfg);
        let interfaces: Vec<(String, bool)> = cfg
            .capture
            .iter()
            .map(|c| (c.interface.clone(), c.role == Role::Lan))
            .collect();
        let n_workers = match cfg.agent.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n as usize,
        };
        // Each worker's queue holds its share of queue_packets, in batches.
        let batches = (cfg.agent.queue_packets as usize / POLL_BUDGET / n_workers).max(4);
        let (report_tx, reports) = unbounded();
        let decode_cfg = cfg.decode_config();
        let mut workers = Vec::new();
        let mut packet_queues = Vec::new();
        for i in 0..n_workers {
            let mut worker = FlowWorker::new(
                cfg.flow_config(),
                locals.clone(),
                dpi.clone(),
                plugins(),
                wanted,
            );
            for (name, internal) in &interfaces {
                worker.open_source(name, *internal);
            }
            let (packet_tx, packet_rx) = bounded(batches);
            let (control_tx, control_rx) = unbounded();
            let (out, report, sources) = (out_tx.clone(), report_tx.clone(), interfaces.len());
            let handle = spawn(&format!("flowstat-work{i}"), move || {
                worker_loop(
                    worker, sources, decode_cfg, packet_rx, control_rx, out, report,
                )
            })?;
            workers.push((control_tx, handle));
            packet_queues.push(packet_tx);
        }

        let stop = Arc::new(AtomicBool::new(false));
        let shared: Vec<_> = interfaces.iter().map(|_| Arc::default()).collect();
        let mut threads = Vec::new();
        for (n, (source, src)) in captures.into_iter().enumerate() {
            let (queues, stop) = (packet_queues.clone(), Arc::clone(&stop));
            let shared = Arc::clone(&shared[source]);
            let handle = spawn(&format!("flowstat-cap{n}"), move || {
                capture_loop(src, source, decode_cfg, queues, shared, stop)
            })?;
            threads.push(handle);
        }
        let kernel = interfaces
            .iter()
            .map(|(name, _)| KernelStats::new(name))
            .collect();
        let status = StatusBuilder::new(cfg.update_interval(), true);
        Ok(Agent {
            next_tick: boundary_after(wall_now(), cfg.update_interval()),
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
            output: Some((out_tx, output)),
            sink_status,
            interval_plugins: plugins(),
            records: Records::new(wanted),
            status,
            status_failing: std::cell::Cell::new(false),
            cfg,
        })
    }

    fn main_loop(&mut self, signals: &Receiver<crate::signals::Signal>) {
        use crate::signals::Signal;
        loop {
            let wait = Duration::from_nanos(
                self.next_tick
                    .as_nanos()
                    .saturating_sub(wall_now().as_nanos()),
            );
            select! {
                recv(signals) -> sig => match sig {
                    Ok(Signal::Reload) => self.reload(),
                    Ok(Signal::Stop) | Err(_) => return,
                },
                recv(crossbeam_channel::after(wait)) -> _ => {
                    let now = self.next_tick;
                    self.end_interval(now, false);
                    self.next_tick = boundary_after(wall_now().max(now), self.cfg.update_interval());
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
        if let Some((tx, handle)) = self.output.take() {
            drop(tx);
            let _ = handle.join();
        }
        tracing::info!("flowstatd stopped");
    }

    /// Ends an interval at `now` (the last one when `last`): every worker
    /// ticks (or purges everything), then the interval's status goes out.
    fn end_interval(&mut self, now: Timestamp, last: bool) {
        for (control, _) in &self.workers {
            let _ = control.send(if last {
                Control::Stop
            } else {
                Control::Tick(now)
            });
        }
        let mut sources = vec![SourceReport::default(); self.interfaces.len()];
        let deadline = Instant::now() + WORKER_WAIT;
        for _ in 0..self.workers.len() {
            match self.reports.recv_deadline(deadline) {
                Ok(r) => sources.iter_mut().zip(&r).for_each(|(a, b)| a.add(b)),
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
            let mut counters = std::mem::take(&mut shared.counters);
            sources[i].count_into(&mut counters);
            captures.push(CaptureStatus {
                name: name.clone(),
                received: shared.received,
                dropped: shared.dropped,
            });
            interfaces.push(InterfaceReport {
                name: name.clone(),
                counters,
                kernel: self.kernel[i].read(),
            });
        }
        let sinks = self
            .sink_status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let status = self
            .status
            .build(now, self.started.elapsed(), &sources, captures, sinks);
        let report = IntervalReport {
            status: &status,
            interfaces: &interfaces,
        };
        for p in &mut self.interval_plugins {
            p.on_interval(&report, &mut self.records);
        }
        let records = self.records.take();
        self.write_status_file(&records);
        if let Some((out, _)) = &self.output {
            let _ = out.send(Output::Records(records));
        }
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
        let (new, apps) = match load(&self.opts) {
            Ok(loaded) => loaded,
            Err(e) => {
                tracing::error!("reload rejected, keeping the running configuration:\n{e}");
                return;
            }
        };
        let mut changed = vec!["applications"];
        for (control, _) in &self.workers {
            let _ = control.send(Control::SetApplications(Arc::clone(&apps)));
        }
        if new.sink != self.cfg.sink {
            let wanted = outputs::wanted(&new.sink);
            self.records.set_wanted(wanted);
            for (control, _) in &self.workers {
                let _ = control.send(Control::SetWanted(wanted));
            }
            if let Some((out, _)) = &self.output {
                let _ = out.send(Output::Sinks(new.sink.clone()));
            }
            changed.push("sinks");
        }
        if new.agent.update_interval_secs != self.cfg.agent.update_interval_secs {
            self.status = StatusBuilder::new(new.update_interval(), true);
            self.next_tick = boundary_after(wall_now(), new.update_interval());
            changed.push("update_interval_secs");
        }
        let local_changed = new.agent.local_networks != self.cfg.agent.local_networks;
        let restart: Vec<&str> = [
            ("[[capture]]", new.capture != self.cfg.capture),
            ("[flows]", new.flows != self.cfg.flows),
            ("[decode]", new.decode != self.cfg.decode),
            (
                "workers/queue_packets/user/group",
                new.agent.workers != self.cfg.agent.workers
                    || new.agent.queue_packets != self.cfg.agent.queue_packets
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
        kept.agent.workers = self.cfg.agent.workers;
        kept.agent.queue_packets = self.cfg.agent.queue_packets;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_and_every_fragment_pick_the_same_worker() {
        let hasher = FixedState::with_seed(1);
        let mut a = PacketMeta::new(Timestamp::ZERO, 60);
        a.ip_version = 4;
        a.protocol = 17;
        a.src_ip[..4].copy_from_slice(&[10, 0, 0, 1]);
        a.dst_ip[..4].copy_from_slice(&[10, 0, 0, 2]);
        a.src_port = 1234;
        a.dst_port = 53;
        let mut b = a;
        (b.src_ip, b.dst_ip, b.src_port, b.dst_port) = (a.dst_ip, a.src_ip, a.dst_port, a.src_port);
        let mut frag = a;
        (frag.src_port, frag.dst_port) = (0, 0);
        for n in 1..9 {
            let w = worker_of(&a, &hasher, n);
            assert_eq!(w, worker_of(&b, &hasher, n));
            assert_eq!(w, worker_of(&frag, &hasher, n));
        }
    }

    #[test]
    fn boundaries_are_multiples_of_the_interval() {
        let t = Timestamp::from_millis(1_700_000_007_500);
        assert_eq!(
            boundary_after(t, Duration::from_secs(15)),
            Timestamp::from_secs(1_700_000_010)
        );
        assert_eq!(
            boundary_after(Timestamp::from_secs(30), Duration::from_secs(15)),
            Timestamp::from_secs(45)
        );
    }

    #[test]
    fn frame_batches_lend_their_frames_back() {
        let mut b = FrameBatch::new(3);
        for (i, data) in [&b"abc"[..], b"", b"defgh"].into_iter().enumerate() {
            b.push(&Frame {
                ts: Timestamp::from_secs(i as u64),
                wire_len: 99,
                link: LinkType::ETHERNET,
                data,
            });
        }
        let mut seen = Vec::new();
        b.each(|f| seen.push((f.ts.as_secs(), f.data.to_vec())));
        assert_eq!(
            seen,
            vec![(0, b"abc".to_vec()), (1, vec![]), (2, b"defgh".to_vec())]
        );
    }
}
