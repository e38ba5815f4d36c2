use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use flowstat_core::{Delivery, KindSet, Record, Settled, Sink, SinkError, SinkStatus};

/// How a sink is fed: what it subscribed to and how much may wait for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SinkOptions {
    /// The record types the sink gets.
    pub kinds: KindSet,
    /// Records that may wait in its queue; beyond, the publisher waits
    /// while the sink delivers, and the oldest are dropped once it has
    /// delivered nothing for the runtime's patience.
    pub queue_records: usize,
    /// Bytes of JSON that may wait in its queue (beyond, as for
    /// `queue_records`).
    pub queue_bytes: usize,
}

impl SinkOptions {
    /// Default queue size in records.
    pub const QUEUE_RECORDS: usize = 65_536;
    /// Default queue size in bytes.
    pub const QUEUE_BYTES: usize = 64 << 20;

    /// Every record of `kinds`, with the default queue limits.
    pub fn new(kinds: KindSet) -> Self {
        SinkOptions {
            kinds,
            queue_records: Self::QUEUE_RECORDS,
            queue_bytes: Self::QUEUE_BYTES,
        }
    }
}

/// Every configured sink behind its own bounded queue, each written on a
/// thread of its own ([`new`](SinkRuntime::new)) or on the publishing
/// thread ([`inline`](SinkRuntime::inline)).
///
/// A record is encoded once, shared by reference among the sinks
/// subscribed to its type, and appended to their queues. A burst larger
/// than a queue goes in as the sink drains it: a publisher that finds a
/// queue full waits for room while that sink is delivering, and only once
/// the sink has delivered nothing for the runtime's
/// [patience](SinkRuntime::with_patience) (no consumer, a stalled one, a
/// failure) are the oldest records dropped and counted. A sink's queue is
/// written whenever the sink can deliver; a sink that fails is reopened
/// with backoff, and its failures and recoveries are logged once each.
pub struct SinkRuntime {
    sinks: Vec<Handle>,
    mode: Mode,
    patience: Duration,
}

impl Default for SinkRuntime {
    fn default() -> Self {
        SinkRuntime {
            sinks: Vec::new(),
            mode: Mode::default(),
            patience: SinkRuntime::LIVE_PATIENCE,
        }
    }
}

/// Who writes the sinks' queues, and when the sinks are flushed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Mode {
    /// A thread per sink; flushed whenever its queue is empty.
    #[default]
    Threads,
    /// The publishing thread; flushed whenever the queue is empty (a
    /// replay at capture speed).
    Paced,
    /// The publishing thread; written out when the sink's buffer fills
    /// and at close (a batch replay).
    Batch,
}

struct Handle {
    name: String,
    options: SinkOptions,
    shared: Arc<Shared>,
    driver: Driver,
}

/// Who writes a sink's queue.
enum Driver {
    /// Its own thread (`None` once joined).
    Thread(Option<JoinHandle<()>>),
    /// The publishing thread, in `publish` and `finish`.
    Inline(Mutex<SinkWorker>),
}

/// What the publishers and a sink worker share.
struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the sink worker's thread: records came, or shutdown.
    wake: Condvar,
    /// Wakes [`SinkRuntime::settle`] and publishers waiting for room: the
    /// sink worker went round once, or delivered.
    turned: Condvar,
    disconnected: AtomicU64,
}

struct Queue {
    records: VecDeque<Arc<Record>>,
    bytes: usize,
    /// Taken by the sink worker and not yet written: they still hold
    /// their room in the queue.
    in_flight: usize,
    /// Bytes of them.
    in_flight_bytes: usize,
    /// Written as [`Delivery::Pending`], not yet settled by the sink.
    pending: u64,
    sent: u64,
    dropped: u64,
    /// When the sink last delivered, or had delivered everything queued.
    progress_at: Instant,
    /// Publishers waiting for room.
    waiting: usize,
    /// Set by [`SinkRuntime::finish`]: deliver until then, then stop.
    closing: Option<Instant>,
    /// The sink could take records at its last poll.
    ready: bool,
    /// At its last poll the sink was open and working but had no
    /// consumer: what is dropped now counts as `unconsumed` too.
    no_consumer: bool,
    /// Of `dropped`, those dropped while `no_consumer`.
    unconsumed: u64,
    /// The sink worker has stopped.
    stopped: bool,
    /// Records came, or `closing` was set, since the sink worker last
    /// looked: it goes round again before it waits.
    woken: bool,
}

impl Queue {
    fn new() -> Self {
        Queue {
            records: VecDeque::new(),
            bytes: 0,
            in_flight: 0,
            in_flight_bytes: 0,
            pending: 0,
            sent: 0,
            dropped: 0,
            progress_at: Instant::now(),
            waiting: 0,
            closing: None,
            ready: false,
            no_consumer: false,
            unconsumed: 0,
            stopped: false,
            woken: false,
        }
    }

    /// Whether a record of `len` bytes would take the queue past a limit.
    /// Records the worker took and has not written yet count: what it
    /// cannot write goes back in.
    fn full(&self, len: usize, options: &SinkOptions) -> bool {
        self.records.len() + self.in_flight >= options.queue_records
            || self.bytes + self.in_flight_bytes + len > options.queue_bytes
    }

    /// Drops the oldest records beyond the limits.
    fn trim(&mut self, options: &SinkOptions) {
        while self.records.len() > options.queue_records || self.bytes > options.queue_bytes {
            match self.records.pop_front() {
                Some(r) => {
                    self.bytes -= r.json.len();
                    self.dropped += 1;
                    self.unconsumed += u64::from(self.no_consumer);
                }
                None => break,
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Waits on `cv` for at most `timeout`, holding `q` again after (a
/// poisoned lock is taken as it is, as in [`Shared::lock`]).
fn wait_on<'a>(cv: &Condvar, q: MutexGuard<'a, Queue>, timeout: Duration) -> MutexGuard<'a, Queue> {
    cv.wait_timeout(q, timeout)
        .unwrap_or_else(PoisonError::into_inner)
        .0
}

/// Records a sink worker takes from its queue at a time.
const BATCH: usize = 512;
/// How often an idle sink is polled (clients accepted, rotation checked).
const POLL_EVERY: Duration = Duration::from_millis(100);
/// How long a sink that said "retry" rests before the next attempt.
const RETRY_AFTER: Duration = Duration::from_millis(2);
/// The first and the longest wait before reopening a failed sink.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(30));
/// How long a publisher waiting for room sleeps between looks at an
/// inline sink that could not take records.
const ROOM_POLL: Duration = Duration::from_millis(10);

impl SinkRuntime {
    /// The live agent's patience: long enough for a healthy sink's pause
    /// (a rotation, a consumer's hiccup), short enough that a stalled one
    /// holds up flow work only briefly.
    pub const LIVE_PATIENCE: Duration = Duration::from_millis(500);
    /// Replay's patience: a replay has no packets to lose by waiting, so
    /// it waits for as long as a consumer may reasonably take to connect.
    pub const REPLAY_PATIENCE: Duration = Duration::from_secs(10);

    /// No sinks; each one added gets a thread of its own. Patience:
    /// [`LIVE_PATIENCE`](Self::LIVE_PATIENCE).
    pub fn new() -> Self {
        SinkRuntime::default()
    }

    /// Sets how long a publisher that finds a queue full waits for a sink
    /// that delivers nothing before it drops the oldest records.
    pub fn with_patience(mut self, patience: Duration) -> Self {
        self.patience = patience;
        self
    }

    /// No sinks; each one added is written on the thread that publishes,
    /// as far as it can take records then (what it cannot take waits in
    /// its queue, as with a thread). Replay's single-threaded mode: no
    /// hand-over between threads, and counters that are exact whenever
    /// they are read. `paced` (a replay at capture speed, watched as it
    /// goes): each sink is flushed whenever it has written its queue;
    /// otherwise its buffer goes out when full and at the end, which
    /// spares a batch replay a system call per interval. Patience:
    /// [`REPLAY_PATIENCE`](Self::REPLAY_PATIENCE).
    pub fn inline(paced: bool) -> Self {
        SinkRuntime {
            sinks: Vec::new(),
            mode: if paced { Mode::Paced } else { Mode::Batch },
            patience: SinkRuntime::REPLAY_PATIENCE,
        }
    }

    /// Opens `sink`, here and now (with the privileges the caller has), and
    /// starts it, fed the records `options` names. If it cannot be opened,
    /// that is logged, it is retried, and records wait in its queue
    /// meanwhile.
    pub fn add(&mut self, sink: Box<dyn Sink>, options: SinkOptions) -> std::io::Result<()> {
        let name = sink.name().to_owned();
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::new()),
            wake: Condvar::new(),
            turned: Condvar::new(),
            disconnected: AtomicU64::new(0),
        });
        let mut sink =
            SinkWorker::new(sink, Arc::clone(&shared), options, self.mode != Mode::Batch);
        // Until its thread has polled it, an open sink counts as ready, so
        // that `settle` waits for that first poll.
        shared.lock().ready = sink.open();
        let driver = if self.mode == Mode::Threads {
            let thread = std::thread::Builder::new()
                .name(format!("flowstat-sink{}", self.sinks.len()))
                .spawn(move || sink.run())?;
            Driver::Thread(Some(thread))
        } else {
            Driver::Inline(Mutex::new(sink))
        };
        self.sinks.push(Handle {
            name,
            options,
            shared,
            driver,
        });
        Ok(())
    }

    /// The kinds at least one sink subscribed to: the only ones worth
    /// encoding.
    pub fn wanted(&self) -> KindSet {
        self.sinks
            .iter()
            .fold(KindSet::EMPTY, |k, s| k.union(s.options.kinds))
    }

    /// Appends `records`, in order, to the queue of every sink subscribed
    /// to their types. Where a queue is full, waits for room as long as
    /// that sink is delivering (see the type's documentation); an inline
    /// sink writes what it can take now.
    pub fn publish(&self, records: impl IntoIterator<Item = Record>) {
        let records: Vec<Arc<Record>> = records.into_iter().map(Arc::new).collect();
        for s in &self.sinks {
            let mut wanted = records
                .iter()
                .filter(|r| s.options.kinds.contains(r.kind))
                .peekable();
            if wanted.peek().is_none() {
                continue;
            }
            let mut q = s.shared.lock();
            for r in wanted {
                q = s.make_room(q, r.json.len(), self.patience);
                q.bytes += r.json.len();
                q.records.push_back(Arc::clone(r));
            }
            q.trim(&s.options);
            q.woken = true;
            drop(q);
            s.wake();
        }
    }

    /// Waits, at most `timeout`, until every sink that can deliver now has
    /// written all it was given: what replay does before it reads the
    /// counters into `agent_status`, so that they do not depend on timing.
    /// An inline sink has already written what it can: what it settled of
    /// its pending records since its last round is counted now, so that
    /// its counters do not depend on how its records were grouped into
    /// rounds either.
    pub fn settle(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        for s in &self.sinks {
            if let Driver::Inline(sink) = &s.driver {
                sink.lock().unwrap_or_else(PoisonError::into_inner).settle();
                continue;
            }
            let mut q = s.shared.lock();
            while q.ready
                && !q.stopped
                && (!q.records.is_empty() || q.in_flight > 0 || q.pending > 0)
            {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                q = wait_on(&s.shared.turned, q, left);
            }
        }
    }

    /// Delivery counters per sink.
    pub fn status(&self) -> Vec<SinkStatus> {
        self.sinks
            .iter()
            .map(|s| {
                let q = s.shared.lock();
                SinkStatus {
                    name: s.name.clone(),
                    queued: (q.records.len() + q.in_flight) as u64 + q.pending,
                    sent: q.sent,
                    dropped: q.dropped,
                    unconsumed: q.unconsumed,
                    no_consumer: q.no_consumer,
                    disconnected: s.shared.disconnected.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// Lets every sink deliver what it has queued for at most `timeout`,
    /// then stops them (what is still queued then is counted dropped) and
    /// returns their final counters.
    pub fn finish(mut self, timeout: Duration) -> Vec<SinkStatus> {
        self.stop(Instant::now() + timeout);
        self.status()
    }

    /// Tells every sink to deliver until `deadline`, then waits for them
    /// to stop (an inline sink delivers here).
    fn stop(&mut self, deadline: Instant) {
        if self.sinks.is_empty() {
            return;
        }
        for s in &self.sinks {
            let mut q = s.shared.lock();
            q.closing = Some(deadline);
            q.woken = true;
            drop(q);
            s.shared.wake.notify_one();
        }
        for s in &mut self.sinks {
            match &mut s.driver {
                Driver::Thread(thread) => {
                    if let Some(t) = thread.take()
                        && t.join().is_err()
                    {
                        tracing::error!("sink {}: its thread panicked", s.name);
                    }
                }
                Driver::Inline(sink) => {
                    sink.get_mut().unwrap_or_else(PoisonError::into_inner).run()
                }
            }
        }
    }
}

impl Handle {
    /// Has the sink's worker look at its queue: wakes its thread, or runs
    /// a round inline. Returns how long an inline sink asks to be left
    /// before its next round.
    fn wake(&self) -> Option<Duration> {
        match &self.driver {
            Driver::Thread(_) => {
                self.shared.wake.notify_one();
                None
            }
            Driver::Inline(sink) => sink.lock().unwrap_or_else(PoisonError::into_inner).turn(),
        }
    }

    /// Returns `q` (held again) once it has room for a record of `len`
    /// bytes, or at once if the sink has delivered nothing for `patience`:
    /// the caller then appends anyway, and `trim` drops the oldest.
    fn make_room<'a>(
        &'a self,
        mut q: MutexGuard<'a, Queue>,
        len: usize,
        patience: Duration,
    ) -> MutexGuard<'a, Queue> {
        while q.full(len, &self.options) && !q.stopped {
            let stalled_for = q.progress_at.elapsed();
            if stalled_for >= patience {
                break;
            }
            let left = patience - stalled_for;
            q.woken = true;
            match &self.driver {
                Driver::Thread(_) => {
                    q.waiting += 1;
                    self.shared.wake.notify_one();
                    q = wait_on(&self.shared.turned, q, left);
                    q.waiting -= 1;
                }
                Driver::Inline(_) => {
                    drop(q);
                    if let Some(wait) = self.wake() {
                        std::thread::sleep(wait.min(ROOM_POLL).min(left));
                    }
                    q = self.shared.lock();
                }
            }
        }
        q
    }
}

impl Drop for SinkRuntime {
    /// Stops the sinks at once if [`finish`](SinkRuntime::finish) was not
    /// called.
    fn drop(&mut self) {
        self.stop(Instant::now());
    }
}

/// Opens, polls and writes one sink, and keeps its counters: on a thread
/// of its own, or inline on the publishing thread.
struct SinkWorker {
    sink: Box<dyn Sink>,
    shared: Arc<Shared>,
    options: SinkOptions,
    open: bool,
    /// Failing since the last success (logged once).
    failing: bool,
    next_open: Instant,
    backoff: Duration,
    /// Flush whenever the queue has been written (see `Mode`).
    flush_idle: bool,
    /// Records written since the last flush.
    unflushed: bool,
}

impl SinkWorker {
    fn new(
        sink: Box<dyn Sink>,
        shared: Arc<Shared>,
        options: SinkOptions,
        flush_idle: bool,
    ) -> Self {
        SinkWorker {
            sink,
            shared,
            options,
            open: false,
            failing: false,
            next_open: Instant::now(),
            backoff: BACKOFF.0,
            flush_idle,
            unflushed: false,
        }
    }

    /// Goes round until the sink has stopped, waiting between rounds for
    /// records, for `closing`, or for as long as a round asked.
    fn run(&mut self) {
        loop {
            let wait = self.turn();
            // For `settle`: a round went by. Here, not in `turn`: nobody
            // waits for an inline round, and each notice is a system call.
            self.shared.turned.notify_all();
            let Some(wait) = wait else {
                return;
            };
            let mut q = self.shared.lock();
            if !q.woken {
                q = wait_on(&self.shared.wake, q, wait);
            }
            q.woken = false;
        }
    }

    /// One round: polls the sink, writes what it can, stops it if it is
    /// closing and done (or out of time). Returns how long to wait before
    /// the next round, or `None` once stopped.
    fn turn(&mut self) -> Option<Duration> {
        let ready = self.ready();
        let closing = {
            let mut q = self.shared.lock();
            q.ready = ready;
            q.no_consumer = self.open && !ready;
            q.closing
        };
        let wait = if ready {
            self.deliver()
        } else {
            Some(POLL_EVERY)
        };
        let mut q = self.shared.lock();
        // Closing: done once the queue is written, unless the sink is
        // being reopened and holds pending records (a broker restarting):
        // it gets the rest of the time to reopen and deliver them.
        let done = q.records.is_empty() && (self.open || q.pending == 0);
        if let Some(deadline) = closing
            && (done || Instant::now() >= deadline)
        {
            let left = q.records.len() as u64;
            q.dropped += left;
            if q.no_consumer {
                q.unconsumed += left;
            }
            q.records.clear();
            q.bytes = 0;
            drop(q);
            if self.open
                && let Err(e) = self.sink.close()
            {
                self.failed(e);
            }
            self.settle();
            let mut q = self.shared.lock();
            q.dropped += std::mem::take(&mut q.pending);
            q.stopped = true;
            return None;
        }
        let wait = match wait {
            None if q.records.is_empty() => POLL_EVERY,
            None => Duration::ZERO,
            Some(wait) => wait,
        };
        let left = closing.map_or(wait, |d| d.saturating_duration_since(Instant::now()));
        Some(wait.min(left))
    }

    /// Opens the sink if it is due, polls it, and says whether records can
    /// be written now.
    fn ready(&mut self) -> bool {
        if !self.open && (Instant::now() < self.next_open || !self.open()) {
            return false;
        }
        let ready = match self.sink.poll() {
            Ok(ready) => ready,
            Err(e) => {
                self.failed(e);
                false
            }
        };
        self.settle();
        self.shared
            .disconnected
            .store(self.sink.disconnected(), Ordering::Relaxed);
        ready
    }

    /// Counts what the sink settled of its pending records.
    fn settle(&mut self) {
        let Settled { sent, dropped } = self.sink.settled();
        if sent + dropped == 0 {
            return;
        }
        let mut q = self.shared.lock();
        q.pending = q.pending.saturating_sub(sent + dropped);
        q.sent += sent;
        q.dropped += dropped;
        if sent > 0 {
            q.progress_at = Instant::now();
        }
        drop(q);
        self.shared.turned.notify_all();
    }

    /// Opens the sink; says whether it could.
    fn open(&mut self) -> bool {
        match self.sink.open() {
            Ok(()) => self.open = true,
            Err(e) => self.failed(e),
        }
        self.open
    }

    /// Writes what the queue holds, a batch at a time; returns how long to
    /// wait before trying again, or `None` when the queue was emptied.
    fn deliver(&mut self) -> Option<Duration> {
        loop {
            let mut batch: VecDeque<Arc<Record>> = {
                let mut q = self.shared.lock();
                let n = q.records.len().min(BATCH);
                let batch: VecDeque<_> = q.records.drain(..n).collect();
                let bytes = batch.iter().map(|r| r.json.len()).sum::<usize>();
                q.bytes -= bytes;
                q.in_flight = batch.len();
                q.in_flight_bytes = bytes;
                if batch.is_empty() {
                    // Caught up: as good as delivering.
                    q.progress_at = Instant::now();
                }
                batch
            };
            if batch.is_empty() {
                if self.unflushed && self.flush_idle {
                    self.unflushed = false;
                    if let Err(e) = self.sink.flush() {
                        self.failed(e);
                    }
                    // What the flush wrote out of records the sink held
                    // (the file sink's buffer) counts now, not a poll later:
                    // `settle` would wait for that poll.
                    self.settle();
                }
                return None;
            }
            let (mut sent, mut pending, mut dropped, mut wait) = (0, 0, 0, None);
            while let Some(r) = batch.front() {
                match self.sink.write_shared(r) {
                    Ok(Delivery::Sent) => sent += 1,
                    Ok(Delivery::Pending) => pending += 1,
                    Ok(Delivery::Retry) => {
                        wait = Some(RETRY_AFTER);
                        break;
                    }
                    Err(e) => {
                        dropped += 1;
                        batch.pop_front();
                        self.failed(e);
                        wait = Some(POLL_EVERY);
                        break;
                    }
                }
                batch.pop_front();
            }
            let taken = sent + pending > 0;
            self.unflushed |= taken;
            if taken && self.failing {
                self.recovered();
            }
            let mut q = self.shared.lock();
            q.sent += sent;
            q.pending += pending;
            q.dropped += dropped;
            q.in_flight = 0;
            q.in_flight_bytes = 0;
            if taken {
                q.progress_at = Instant::now();
                if q.waiting > 0 {
                    self.shared.turned.notify_all();
                }
            }
            // Held back: not ready until the next poll says so.
            q.ready &= wait != Some(RETRY_AFTER);
            if !batch.is_empty() {
                q.bytes += batch.iter().map(|r| r.json.len()).sum::<usize>();
                for r in batch.into_iter().rev() {
                    q.records.push_front(r);
                }
                q.trim(&self.options);
            }
            if wait.is_some() {
                return wait;
            }
        }
    }

    /// Logs the first failure of a run of them and schedules a reopen.
    fn failed(&mut self, e: SinkError) {
        if !self.failing {
            tracing::error!(
                "{}; its records wait in its queue (the oldest dropped when full) while it is retried",
                error_chain(&e)
            );
            self.failing = true;
        }
        self.open = false;
        self.next_open = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF.1);
    }

    fn recovered(&mut self) {
        tracing::info!("sink {}: delivering again", self.sink.name());
        self.failing = false;
        self.backoff = BACKOFF.0;
    }
}

/// `e` and its causes, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowstat_core::RecordKind;

    /// A sink that records what it was given, can refuse (no consumer)
    /// and can fail.
    #[derive(Clone, Default)]
    struct Probe(Arc<Mutex<ProbeState>>);

    #[derive(Default)]
    struct ProbeState {
        written: Vec<Vec<u8>>,
        consumer: bool,
        fail_writes: usize,
        opens: usize,
        flushes: usize,
        closed: bool,
    }

    impl Sink for Probe {
        fn name(&self) -> &str {
            "probe"
        }
        fn open(&mut self) -> Result<(), SinkError> {
            self.0.lock().unwrap().opens += 1;
            Ok(())
        }
        fn poll(&mut self) -> Result<bool, SinkError> {
            Ok(self.0.lock().unwrap().consumer)
        }
        fn write(&mut self, record: &Record) -> Result<Delivery, SinkError> {
            let mut s = self.0.lock().unwrap();
            if s.fail_writes > 0 {
                s.fail_writes -= 1;
                return Err(SinkError::io(
                    "probe",
                    "write",
                    std::io::Error::other("down"),
                ));
            }
            if !s.consumer {
                return Ok(Delivery::Retry);
            }
            s.written.push(record.json.clone());
            Ok(Delivery::Sent)
        }
        fn flush(&mut self) -> Result<(), SinkError> {
            self.0.lock().unwrap().flushes += 1;
            Ok(())
        }
        fn close(&mut self) -> Result<(), SinkError> {
            self.0.lock().unwrap().closed = true;
            Ok(())
        }
    }

    fn record(kind: RecordKind, n: usize) -> Record {
        Record {
            kind,
            json: format!("{{\"n\":{n}}}").into_bytes(),
        }
    }

    fn wait_until(mut f: impl FnMut() -> bool) {
        let start = Instant::now();
        while !f() {
            assert!(start.elapsed() < Duration::from_secs(10), "timed out");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn records_fan_out_by_kind_in_order() {
        let (all, purges) = (Probe::default(), Probe::default());
        all.0.lock().unwrap().consumer = true;
        purges.0.lock().unwrap().consumer = true;
        let mut rt = SinkRuntime::new();
        rt.add(Box::new(all.clone()), SinkOptions::new(KindSet::ALL))
            .unwrap();
        rt.add(
            Box::new(purges.clone()),
            SinkOptions::new(KindSet::of(&[RecordKind::FlowPurge])),
        )
        .unwrap();
        assert_eq!(rt.wanted(), KindSet::ALL);
        let kinds = [
            RecordKind::Flow,
            RecordKind::FlowPurge,
            RecordKind::FlowStats,
        ];
        for chunk in 0..10 {
            rt.publish((0..100).map(|i| record(kinds[i % 3], chunk * 100 + i)));
        }
        let status = rt.finish(Duration::from_secs(5));
        let all = all.0.lock().unwrap();
        assert_eq!(all.written.len(), 1000);
        assert!(
            all.written
                .iter()
                .enumerate()
                .all(|(i, j)| *j == format!("{{\"n\":{i}}}").into_bytes())
        );
        assert!(all.closed);
        assert_eq!(purges.0.lock().unwrap().written.len(), 330);
        let counts: Vec<_> = status
            .iter()
            .map(|s| (s.sent, s.dropped, s.queued))
            .collect();
        assert_eq!(counts, vec![(1000, 0, 0), (330, 0, 0)]);
    }

    #[test]
    fn an_inline_sink_is_written_by_publish_and_waits_like_a_threaded_one() {
        let probe = Probe::default();
        let patience = Duration::from_millis(50);
        let mut rt = SinkRuntime::inline(false).with_patience(patience);
        let options = SinkOptions {
            queue_records: 10,
            ..SinkOptions::new(KindSet::ALL)
        };
        // Patience counts from the sink's last progress, its start: the
        // clock starts before it.
        let start = Instant::now();
        rt.add(Box::new(probe.clone()), options).unwrap();
        rt.publish((0..25).map(|i| record(RecordKind::Flow, i)));
        assert!(start.elapsed() >= patience, "waited for the sink first");
        let s = &rt.status()[0];
        assert_eq!((s.queued, s.sent, s.dropped), (10, 0, 15), "no consumer");
        probe.0.lock().unwrap().consumer = true;
        rt.publish([record(RecordKind::Flow, 25)]);
        let s = &rt.status()[0];
        // The new record joined a full queue: the oldest made room.
        assert_eq!(
            (s.queued, s.sent, s.dropped),
            (0, 10, 16),
            "written at once"
        );
        let written = probe.0.lock().unwrap().written.clone();
        assert_eq!(written.first().unwrap(), b"{\"n\":16}");
        assert_eq!(written.last().unwrap(), b"{\"n\":25}");
        let s = &rt.finish(Duration::from_secs(1))[0];
        assert_eq!((s.queued, s.sent, s.dropped), (0, 10, 16));
        assert!(probe.0.lock().unwrap().closed);
    }

    #[test]
    fn a_paced_inline_sink_is_flushed_at_each_publish_and_a_batch_one_is_not() {
        for (paced, flushes) in [(true, 2), (false, 0)] {
            let probe = Probe::default();
            probe.0.lock().unwrap().consumer = true;
            let mut rt = SinkRuntime::inline(paced);
            rt.add(Box::new(probe.clone()), SinkOptions::new(KindSet::ALL))
                .unwrap();
            rt.publish([record(RecordKind::Flow, 0)]);
            rt.publish([record(RecordKind::Flow, 1)]);
            let p = probe.0.lock().unwrap();
            assert_eq!((p.written.len(), p.flushes), (2, flushes), "paced {paced}");
        }
    }

    #[test]
    fn without_a_consumer_records_wait_and_the_oldest_are_dropped() {
        let probe = Probe::default();
        let patience = Duration::from_millis(50);
        let mut rt = SinkRuntime::new().with_patience(patience);
        let options = SinkOptions {
            queue_records: 10,
            ..SinkOptions::new(KindSet::ALL)
        };
        // Patience counts from the sink's last progress, its start: the
        // clock starts before it.
        let start = Instant::now();
        rt.add(Box::new(probe.clone()), options).unwrap();
        rt.publish((0..25).map(|i| record(RecordKind::Flow, i)));
        assert!(start.elapsed() >= patience, "waited for the sink first");
        wait_until(|| probe.0.lock().unwrap().opens == 1);
        let s = &rt.status()[0];
        assert_eq!((s.queued, s.sent, s.dropped), (10, 0, 15));
        probe.0.lock().unwrap().consumer = true;
        wait_until(|| rt.status()[0].sent == 10);
        let written = probe.0.lock().unwrap().written.clone();
        assert_eq!(
            written.first().unwrap(),
            b"{\"n\":15}",
            "the newest ten were kept"
        );
        let s = &rt.finish(Duration::from_secs(1))[0];
        assert_eq!((s.queued, s.sent, s.dropped), (0, 10, 15));
    }

    #[test]
    fn a_burst_larger_than_the_queue_waits_for_a_delivering_sink_and_loses_nothing() {
        for inline in [false, true] {
            let probe = Probe::default();
            probe.0.lock().unwrap().consumer = true;
            let mut rt = if inline {
                SinkRuntime::inline(false)
            } else {
                SinkRuntime::new()
            };
            let options = SinkOptions {
                queue_records: 10,
                ..SinkOptions::new(KindSet::ALL)
            };
            rt.add(Box::new(probe.clone()), options).unwrap();
            rt.publish((0..1000).map(|i| record(RecordKind::Flow, i)));
            let s = &rt.finish(Duration::from_secs(5))[0];
            assert_eq!((s.sent, s.dropped), (1000, 0), "inline {inline}");
            let p = probe.0.lock().unwrap();
            assert!(
                p.written
                    .iter()
                    .enumerate()
                    .all(|(i, j)| *j == format!("{{\"n\":{i}}}").into_bytes()),
                "in order"
            );
        }
    }

    /// A sink that takes `window` records, then says retry until its next
    /// poll (a peer that acknowledges in rounds).
    #[derive(Clone, Default)]
    struct Windowed(Arc<Mutex<(usize, Vec<Vec<u8>>)>>);

    impl Sink for Windowed {
        fn name(&self) -> &str {
            "windowed"
        }
        fn open(&mut self) -> Result<(), SinkError> {
            Ok(())
        }
        fn poll(&mut self) -> Result<bool, SinkError> {
            self.0.lock().unwrap().0 = 0;
            Ok(true)
        }
        fn write(&mut self, record: &Record) -> Result<Delivery, SinkError> {
            let mut s = self.0.lock().unwrap();
            if s.0 == 3 {
                return Ok(Delivery::Retry);
            }
            s.0 += 1;
            s.1.push(record.json.clone());
            Ok(Delivery::Sent)
        }
    }

    #[test]
    fn records_a_sink_took_but_could_not_write_keep_their_room_in_the_queue() {
        let sink = Windowed::default();
        let mut rt = SinkRuntime::new().with_patience(SinkRuntime::REPLAY_PATIENCE);
        let options = SinkOptions {
            queue_records: 10,
            ..SinkOptions::new(KindSet::ALL)
        };
        rt.add(Box::new(sink.clone()), options).unwrap();
        for i in 0..100 {
            rt.publish((0..10).map(|j| record(RecordKind::Flow, i * 10 + j)));
        }
        let s = &rt.finish(Duration::from_secs(10))[0];
        assert_eq!((s.sent, s.dropped), (1000, 0));
        let written = &sink.0.lock().unwrap().1;
        assert!(
            written
                .iter()
                .enumerate()
                .all(|(i, j)| *j == format!("{{\"n\":{i}}}").into_bytes()),
            "in order"
        );
    }

    #[test]
    fn a_failing_sink_is_reopened_and_loses_only_what_failed() {
        let probe = Probe::default();
        {
            let mut p = probe.0.lock().unwrap();
            p.consumer = true;
            p.fail_writes = 2;
        }
        let mut rt = SinkRuntime::new();
        rt.add(Box::new(probe.clone()), SinkOptions::new(KindSet::ALL))
            .unwrap();
        rt.publish((0..5).map(|i| record(RecordKind::Flow, i)));
        let s = &rt.finish(Duration::from_secs(5))[0];
        assert_eq!(
            (s.sent, s.dropped, s.unconsumed),
            (3, 2, 0),
            "failures are losses"
        );
        let p = probe.0.lock().unwrap();
        assert_eq!(p.opens, 3, "opened, then reopened after each failure");
        assert_eq!(p.written.len(), 3);
    }

    #[test]
    fn finish_counts_what_no_consumer_took_as_dropped() {
        let probe = Probe::default();
        let mut rt = SinkRuntime::new();
        rt.add(Box::new(probe.clone()), SinkOptions::new(KindSet::ALL))
            .unwrap();
        rt.publish((0..7).map(|i| record(RecordKind::Flow, i)));
        // Its status says they wait for a consumer, for replay to say so.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !rt.status()[0].no_consumer {
            assert!(Instant::now() < deadline, "never said it has no consumer");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(rt.status()[0].queued, 7);
        let start = Instant::now();
        let s = &rt.finish(Duration::from_millis(300))[0];
        assert!(start.elapsed() >= Duration::from_millis(300));
        assert_eq!((s.queued, s.sent, s.dropped), (0, 0, 7));
        assert_eq!(s.unconsumed, 7, "the sink worked; nobody took them");
    }

    /// A sink whose peer acknowledges records later: every record is
    /// pending until `acks` allows it, and is refused past `refuse_from`.
    #[derive(Clone, Default)]
    struct Acked(Arc<Mutex<AckedState>>);

    #[derive(Default)]
    struct AckedState {
        taken: u64,
        /// Records the peer may acknowledge now.
        acks: u64,
        acked: u64,
        refuse_from: Option<u64>,
        refused: u64,
    }

    impl Sink for Acked {
        fn name(&self) -> &str {
            "acked"
        }
        fn open(&mut self) -> Result<(), SinkError> {
            Ok(())
        }
        fn write(&mut self, _: &Record) -> Result<Delivery, SinkError> {
            self.0.lock().unwrap().taken += 1;
            Ok(Delivery::Pending)
        }
        fn settled(&mut self) -> Settled {
            let mut s = self.0.lock().unwrap();
            let limit = s.refuse_from.unwrap_or(u64::MAX).min(s.taken);
            let sent = s.acks.min(limit) - s.acked;
            s.acked += sent;
            let dropped = s.taken - s.acked.max(limit) - s.refused;
            s.refused += dropped;
            Settled { sent, dropped }
        }
    }

    /// A sink whose peer acknowledges what it holds once it is (re)opened,
    /// and that fails while `down`.
    #[derive(Clone, Default)]
    struct Reconnecting(Arc<Mutex<ReconnectingState>>);

    #[derive(Default)]
    struct ReconnectingState {
        down: bool,
        taken: u64,
        acked: u64,
        reported: u64,
        failed_polls: u64,
    }

    impl Sink for Reconnecting {
        fn name(&self) -> &str {
            "reconnecting"
        }
        fn open(&mut self) -> Result<(), SinkError> {
            let mut s = self.0.lock().unwrap();
            if s.down {
                return Err(SinkError::io(
                    "reconnecting",
                    "open",
                    std::io::Error::other("down"),
                ));
            }
            // Held records published again, and acknowledged.
            s.acked = s.taken;
            Ok(())
        }
        fn poll(&mut self) -> Result<bool, SinkError> {
            let mut s = self.0.lock().unwrap();
            if s.down {
                s.failed_polls += 1;
                return Err(SinkError::io(
                    "reconnecting",
                    "poll",
                    std::io::Error::other("down"),
                ));
            }
            Ok(true)
        }
        fn write(&mut self, _: &Record) -> Result<Delivery, SinkError> {
            self.0.lock().unwrap().taken += 1;
            Ok(Delivery::Pending)
        }
        fn settled(&mut self) -> Settled {
            let mut s = self.0.lock().unwrap();
            let sent = s.acked - s.reported;
            s.reported = s.acked;
            Settled { sent, dropped: 0 }
        }
    }

    #[test]
    fn a_sink_reopening_at_the_end_gets_the_time_left_to_deliver_what_it_holds() {
        let sink = Reconnecting::default();
        let mut rt = SinkRuntime::new();
        rt.add(Box::new(sink.clone()), SinkOptions::new(KindSet::ALL))
            .unwrap();
        rt.publish((0..10).map(|i| record(RecordKind::Flow, i)));
        wait_until(|| sink.0.lock().unwrap().taken == 10);
        // The peer goes away with every record held, none acknowledged.
        sink.0.lock().unwrap().down = true;
        wait_until(|| sink.0.lock().unwrap().failed_polls > 0);
        let back = {
            let sink = sink.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                sink.0.lock().unwrap().down = false;
            })
        };
        let s = &rt.finish(Duration::from_secs(10))[0];
        back.join().unwrap();
        assert_eq!((s.queued, s.sent, s.dropped), (0, 10, 0));
    }

    #[test]
    fn settle_counts_what_an_inline_sink_settled_since_its_last_round() {
        // Replay reads the counters after `settle`: what the sink settled
        // after its last round (a file sink's buffer written out by that
        // round's last record) counts then, however the records were
        // grouped into rounds.
        let acked = Acked::default();
        let mut rt = SinkRuntime::inline(false);
        rt.add(Box::new(acked.clone()), SinkOptions::new(KindSet::ALL))
            .unwrap();
        rt.publish((0..10).map(|i| record(RecordKind::Flow, i)));
        acked.0.lock().unwrap().acks = 6;
        let s = &rt.status()[0];
        assert_eq!((s.queued, s.sent), (10, 0), "no round since");
        rt.settle(Duration::ZERO);
        let s = &rt.status()[0];
        assert_eq!((s.queued, s.sent, s.dropped), (4, 6, 0));
    }

    #[test]
    fn pending_records_are_counted_when_settled_and_dropped_if_unsettled_at_the_end() {
        let acked = Acked::default();
        let mut rt = SinkRuntime::new();
        rt.add(Box::new(acked.clone()), SinkOptions::new(KindSet::ALL))
            .unwrap();
        rt.publish((0..10).map(|i| record(RecordKind::Flow, i)));
        wait_until(|| acked.0.lock().unwrap().taken == 10);
        let s = &rt.status()[0];
        assert_eq!((s.queued, s.sent, s.dropped), (10, 0, 0), "all pending");
        acked.0.lock().unwrap().acks = 6;
        wait_until(|| rt.status()[0].sent == 6);
        let s = &rt.status()[0];
        assert_eq!((s.queued, s.dropped), (4, 0));
        acked.0.lock().unwrap().refuse_from = Some(8);
        wait_until(|| rt.status()[0].dropped == 2);
        // Two are still pending at the end: never acknowledged, dropped.
        let s = &rt.finish(Duration::from_millis(100))[0];
        assert_eq!((s.queued, s.sent, s.dropped), (0, 6, 4));
    }
}
