//! What the agent's analytics found in one interval (SPEC section 7): each
//! flow definition's top keys, the largest flows, and the threshold events.
//! Built by the interval's reducer, read by the interval plugins (the
//! `aggregate` and `event` records) and, later, the HTTP face.

use std::net::IpAddr;

use serde::Serialize;
use serde_json::value::RawValue;

/// The analytics part of an interval's [`Snapshot`](crate::Snapshot).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Analytics {
    /// One table per flow definition, in the order they were defined.
    pub definitions: Vec<DefinitionTable>,
    /// The flows with the largest `total_rate` in the interval, largest
    /// first.
    pub top_flows: Vec<FlowSummary>,
    /// Threshold crossings at this interval's end, by `event_id`.
    pub events: Vec<Event>,
}

/// One flow definition's result for an interval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DefinitionTable {
    /// The definition's name.
    pub name: String,
    /// Whether an `aggregate` record carries it.
    #[serde(skip)]
    pub emit: bool,
    /// The interval's length in seconds (what rates are per).
    pub interval: u64,
    /// The keys with the largest values in the interval, largest first
    /// (ties in key order), then the rest folded into one row whose key
    /// is `"other"`, when there is a rest.
    pub rows: Vec<Row>,
}

/// One key of a flow definition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The key's fields, by name; the string `"other"` for the folded rest.
    pub key: KeyJson,
    /// The value counted during the interval.
    pub value: u64,
    /// `value` per second of the interval (rounded down).
    pub rate: u64,
    /// The value counted since the definition began.
    pub total: u64,
}

/// A flow definition's key as JSON text, written once by the reducer and
/// copied as is into records (and, later, API answers).
#[derive(Clone, Debug, Serialize)]
#[serde(transparent)]
pub struct KeyJson(Box<RawValue>);

impl KeyJson {
    /// The key of the folded rest: `"other"`.
    pub fn other() -> KeyJson {
        KeyJson::new(r#""other""#.into()).unwrap_or_else(|_| unreachable!("valid JSON"))
    }

    /// The key written as `json`; an error if it is not JSON.
    pub fn new(json: String) -> Result<KeyJson, serde_json::Error> {
        RawValue::from_string(json).map(KeyJson)
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for KeyJson {
    fn eq(&self, other: &KeyJson) -> bool {
        self.get() == other.get()
    }
}

impl Eq for KeyJson {}

/// A flow, as top-N lists and events name it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct FlowSummary {
    /// The flow's current digest, hex.
    pub digest: String,
    /// Its capture interface (or file).
    pub interface: String,
    /// IP protocol number.
    pub ip_protocol: u8,
    /// The local endpoint.
    pub local_ip: IpAddr,
    /// The local port.
    pub local_port: u16,
    /// The other endpoint.
    pub other_ip: IpAddr,
    /// The other port.
    pub other_port: u16,
    /// `detected_protocol_name`.
    pub detected_protocol_name: String,
    /// `detected_application_name`.
    pub detected_application_name: String,
    /// Local side's rate over the interval, bytes per second.
    pub local_rate: u64,
    /// Other side's rate over the interval, bytes per second.
    pub other_rate: u64,
    /// `local_rate + other_rate`.
    pub total_rate: u64,
    /// Bytes both ways since the flow began.
    pub total_bytes: u64,
}

/// A threshold crossing: the `event` record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Grows by one per event, from 1 at start.
    pub event_id: u64,
    /// The interval end it was found at, in ms.
    pub at: u64,
    /// The threshold's name.
    pub threshold: String,
    /// What it watches: a flow definition, a per-flow field or an
    /// interface metric.
    pub metric: String,
    /// The value that crossed.
    pub value: u64,
    /// The threshold's value.
    pub threshold_value: u64,
    /// What crossed it.
    #[serde(flatten)]
    pub subject: Subject,
}

/// What crossed a threshold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// A flow definition's key.
    Key(KeyJson),
    /// One flow.
    Flow(FlowSummary),
    /// A capture interface.
    Interface(String),
}
