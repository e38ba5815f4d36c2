//! What the HTTP face serves, kept up to date by the pipeline's interval
//! reducer: the latest interval's snapshot and status records, the recent
//! events, and running totals for the Prometheus counters. Written once an
//! interval, read by any number of requests; a reader never holds up the
//! pipeline for longer than a pointer swap.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use flowstat_analytics::Shared;
use flowstat_core::analytics::Event;
use flowstat_core::{KindSet, Record, RecordKind, Snapshot};
use tokio::sync::watch;

use crate::stream::Window;

/// Events kept for `/events/json`.
const EVENTS_KEPT: usize = 1_000;

/// The API's view of the agent, shared by the pipeline (which writes it)
/// and the server (which reads it).
#[derive(Clone)]
pub struct ApiState(Arc<Inner>);

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("newest_event", &*self.0.newest.borrow())
            .finish_non_exhaustive()
    }
}

struct Inner {
    /// The flow definitions and thresholds, changed through the API.
    analytics: Shared,
    latest: RwLock<Arc<Latest>>,
    events: Mutex<VecDeque<Event>>,
    /// The newest event's id: long-polls wait for it to change.
    newest: watch::Sender<u64>,
    /// The newest records, for the stream.
    window: Window,
    /// No record or event comes any more (the agent stops): streams end
    /// once they have sent every record, long-polls answer at once.
    closed: AtomicBool,
}

/// The latest interval, as the API serves it.
#[derive(Debug, Default)]
pub(crate) struct Latest {
    /// The interval's snapshot.
    pub snapshot: Arc<Snapshot>,
    /// Its `agent_status` record.
    pub agent_status: Option<String>,
    /// Its `interface_stats` record.
    pub interface_stats: Option<String>,
    /// Counters since start, for Prometheus.
    pub totals: Totals,
}

/// Counters summed over every interval since start.
#[derive(Clone, Debug, Default)]
pub(crate) struct Totals {
    /// Intervals ended.
    pub intervals: u64,
    /// Flows purged.
    pub flows_purged: u64,
    /// Flows evicted for `max_flows`.
    pub flows_evicted: u64,
    /// Per interface: frames, wire bytes, capture drops, queue drops,
    /// discarded frames.
    pub interfaces: BTreeMap<String, [u64; 5]>,
}

impl ApiState {
    /// A state whose definitions and thresholds are `analytics`'.
    pub fn new(analytics: Shared) -> ApiState {
        ApiState(Arc::new(Inner {
            analytics,
            latest: RwLock::default(),
            events: Mutex::default(),
            newest: watch::Sender::new(0),
            window: Window::new(),
            closed: AtomicBool::new(false),
        }))
    }

    /// The flow definitions and thresholds.
    pub(crate) fn analytics(&self) -> &Shared {
        &self.0.analytics
    }

    /// The latest interval.
    pub(crate) fn latest(&self) -> Arc<Latest> {
        Arc::clone(&self.0.latest.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Keeps the records of `kinds` for `/stream` and `/flows/json` from
    /// now on, before any client asks for them (`replay --linger`, for
    /// exploring a capture afterwards).
    pub fn keep(&self, kinds: KindSet) {
        self.0.window.keep(kinds);
    }

    /// An interval ended: its snapshot and the records made of it.
    pub fn publish(&self, snapshot: Arc<Snapshot>, records: &[Record]) {
        let prev = self.latest();
        let mut totals = prev.totals.clone();
        totals.intervals += 1;
        totals.flows_purged += snapshot.status.flows_purged;
        totals.flows_evicted += snapshot.status.flows_evicted;
        for i in &snapshot.interfaces {
            let c = &i.counters;
            let t = totals.interfaces.entry(i.name.clone()).or_default();
            let add = [
                c.raw,
                c.wire_bytes,
                c.capture_dropped,
                c.queue_dropped,
                c.discarded,
            ];
            for (t, a) in t.iter_mut().zip(add) {
                *t += a;
            }
        }
        let text = |kind| {
            records
                .iter()
                .find(|r| r.kind == kind)
                .map(|r| String::from_utf8_lossy(&r.json).into_owned())
        };
        let latest = Latest {
            snapshot: Arc::clone(&snapshot),
            agent_status: text(RecordKind::AgentStatus).or_else(|| prev.agent_status.clone()),
            interface_stats: text(RecordKind::InterfaceStats)
                .or_else(|| prev.interface_stats.clone()),
            totals,
        };
        *self
            .0
            .latest
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(latest);
        let events = &snapshot.analytics.events;
        if let Some(last) = events.last() {
            let mut kept = self.0.events.lock().unwrap_or_else(PoisonError::into_inner);
            kept.extend(events.iter().cloned());
            let over = kept.len().saturating_sub(EVENTS_KEPT);
            kept.drain(..over);
            drop(kept);
            self.0.newest.send_replace(last.event_id);
        }
    }

    /// Events newer than `after`, oldest first, at most `most` (the newest
    /// of them).
    pub(crate) fn events_after(&self, after: u64, most: usize) -> Vec<Event> {
        let kept = self.0.events.lock().unwrap_or_else(PoisonError::into_inner);
        let newer: Vec<&Event> = kept.iter().filter(|e| e.event_id > after).collect();
        let skip = newer.len().saturating_sub(most);
        newer.into_iter().skip(skip).cloned().collect()
    }

    /// The threshold of event `id`, if it is still kept.
    pub(crate) fn threshold_of(&self, id: u64) -> Option<String> {
        let kept = self.0.events.lock().unwrap_or_else(PoisonError::into_inner);
        kept.iter()
            .find(|e| e.event_id == id)
            .map(|e| e.threshold.clone())
    }

    /// The newest records.
    pub(crate) fn window(&self) -> &Window {
        &self.0.window
    }

    /// A receiver that changes when an event comes.
    pub(crate) fn watch_events(&self) -> watch::Receiver<u64> {
        self.0.newest.subscribe()
    }

    /// Says that nothing comes any more, and wakes every request that
    /// waits for something.
    pub(crate) fn close(&self) {
        self.0.closed.store(true, Ordering::Relaxed);
        self.0.newest.send_modify(|_| {});
        self.0.window.wake();
    }

    /// Whether nothing comes any more.
    pub(crate) fn closed(&self) -> bool {
        self.0.closed.load(Ordering::Relaxed)
    }
}
