use std::sync::atomic::{AtomicU16, Ordering};

/// The `type` of a record on the wire (SPEC section 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// First line to each new stream client.
    AgentHello,
    /// Flow metadata, once per flow.
    Flow,
    /// Per-interval flow counters.
    FlowStats,
    /// A flow left the table.
    FlowPurge,
    /// Per-interval agent status.
    AgentStatus,
    /// Per-interval capture interface counters.
    InterfaceStats,
    /// A threshold was crossed.
    Event,
    /// A flow definition's top keys for an interval.
    Aggregate,
}

impl RecordKind {
    /// Every kind.
    pub const ALL: [RecordKind; 8] = [
        RecordKind::AgentHello,
        RecordKind::Flow,
        RecordKind::FlowStats,
        RecordKind::FlowPurge,
        RecordKind::AgentStatus,
        RecordKind::InterfaceStats,
        RecordKind::Event,
        RecordKind::Aggregate,
    ];

    /// The wire value of `type`.
    pub const fn as_str(self) -> &'static str {
        match self {
            RecordKind::AgentHello => "agent_hello",
            RecordKind::Flow => "flow",
            RecordKind::FlowStats => "flow_stats",
            RecordKind::FlowPurge => "flow_purge",
            RecordKind::AgentStatus => "agent_status",
            RecordKind::InterfaceStats => "interface_stats",
            RecordKind::Event => "event",
            RecordKind::Aggregate => "aggregate",
        }
    }

    /// The kind whose wire value is `s`.
    pub fn parse(s: &str) -> Option<RecordKind> {
        RecordKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A set of record kinds: what a sink subscribed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KindSet(u16);

impl KindSet {
    /// Every kind.
    pub const ALL: KindSet = KindSet((1 << RecordKind::ALL.len()) - 1);
    /// No kind.
    pub const EMPTY: KindSet = KindSet(0);

    /// The set of `kinds`.
    pub fn of(kinds: &[RecordKind]) -> Self {
        KindSet(kinds.iter().fold(0, |m, &k| m | 1 << k as u16))
    }

    /// Whether `kind` is in the set.
    pub const fn contains(self, kind: RecordKind) -> bool {
        self.0 & 1 << kind as u16 != 0
    }

    /// Kinds in either set.
    pub const fn union(self, other: KindSet) -> KindSet {
        KindSet(self.0 | other.0)
    }
}

/// A [`KindSet`] shared between threads, that only grows.
#[derive(Debug, Default)]
pub struct GrowingKindSet(AtomicU16);

impl GrowingKindSet {
    /// Adds `kinds`.
    pub fn add(&self, kinds: KindSet) {
        self.0.fetch_or(kinds.0, Ordering::Relaxed);
    }

    /// The kinds added so far.
    pub fn get(&self) -> KindSet {
        KindSet(self.0.load(Ordering::Relaxed))
    }
}

/// One encoded record: a JSON object without the trailing newline.
///
/// Encoded once by a plugin; every sink frames the same bytes its own way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The record's `type`.
    pub kind: RecordKind,
    /// The JSON object, UTF-8, one line.
    pub json: Vec<u8>,
}

/// Records a plugin produced and not yet delivered, with their buffers
/// reused: a record's buffer comes back here after the sinks had it.
///
/// Only kinds some sink subscribed to are encoded: [`Records::push`] skips
/// the others without running their encoder.
#[derive(Debug)]
pub struct Records {
    wanted: KindSet,
    list: Vec<Record>,
    spare: Vec<Vec<u8>>,
}

impl Default for Records {
    /// Every kind wanted.
    fn default() -> Self {
        Records::new(KindSet::ALL)
    }
}

/// Buffers kept for reuse; more are dropped.
const SPARE_BUFFERS: usize = 64;

impl Records {
    /// No records yet; kinds outside `wanted` will be skipped.
    pub fn new(wanted: KindSet) -> Self {
        Records {
            wanted,
            list: Vec::new(),
            spare: Vec::new(),
        }
    }

    /// Adds a record of `kind` whose JSON `encode` writes into an empty
    /// buffer, if `kind` is wanted.
    pub fn push(&mut self, kind: RecordKind, encode: impl FnOnce(&mut Vec<u8>)) {
        if !self.wanted.contains(kind) {
            return;
        }
        // Large enough for the longest record, a `flow`.
        let mut json = self.spare.pop().unwrap_or_else(|| Vec::with_capacity(1536));
        json.clear();
        encode(&mut json);
        self.list.push(Record { kind, json });
    }

    /// Changes the kinds encoded from now on (the sinks changed).
    pub fn set_wanted(&mut self, wanted: KindSet) {
        self.wanted = wanted;
    }

    /// Takes the records out, to hand them to another thread (their
    /// buffers are not reused).
    pub fn take(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.list)
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there is no record.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The records, in order.
    pub fn as_slice(&self) -> &[Record] {
        &self.list
    }

    /// Hands every record, in order, to `deliver`, keeping their buffers;
    /// stops at the first error (the remaining records are dropped).
    pub fn drain<E>(&mut self, mut deliver: impl FnMut(&Record) -> Result<(), E>) -> Result<(), E> {
        let mut result = Ok(());
        for record in self.list.drain(..) {
            if result.is_ok() {
                result = deliver(&record);
            }
            if self.spare.len() < SPARE_BUFFERS {
                self.spare.push(record.json);
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drained_buffers_are_reused() {
        let mut r = Records::default();
        r.push(RecordKind::Flow, |b| b.extend_from_slice(b"{\"a\":1}"));
        let ptr = r.as_slice()[0].json.as_ptr();
        let mut seen = Vec::new();
        r.drain(|rec| {
            seen.push(rec.json.clone());
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(seen, vec![b"{\"a\":1}".to_vec()]);
        assert!(r.is_empty());
        r.push(RecordKind::Flow, |b| b.push(b'x'));
        assert_eq!(r.as_slice()[0].json, b"x");
        assert_eq!(r.as_slice()[0].json.as_ptr(), ptr, "the buffer came back");
    }

    #[test]
    fn unwanted_kinds_are_not_encoded() {
        let mut r = Records::new(KindSet::of(&[RecordKind::FlowPurge]));
        r.push(RecordKind::Flow, |_| panic!("a flow record is not wanted"));
        r.push(RecordKind::FlowPurge, |b| b.push(b'x'));
        assert_eq!(r.as_slice().len(), 1);
        assert!(KindSet::ALL.contains(RecordKind::Event));
        assert!(!KindSet::EMPTY.contains(RecordKind::Flow));
        let both = KindSet::of(&[RecordKind::Flow]).union(KindSet::of(&[RecordKind::Event]));
        assert!(both.contains(RecordKind::Event) && !both.contains(RecordKind::FlowStats));
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in RecordKind::ALL {
            assert_eq!(RecordKind::parse(k.as_str()), Some(k));
            use serde::Deserialize;
            use serde::de::IntoDeserializer;
            let de = k.as_str().into_deserializer();
            let parsed: Result<RecordKind, serde::de::value::Error> = RecordKind::deserialize(de);
            assert_eq!(parsed.unwrap(), k);
        }
        assert_eq!(RecordKind::parse("flows"), None);
    }
}
