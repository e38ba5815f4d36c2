use std::sync::Arc;

use crate::{AgentStatus, Analytics, FlowEvent, FlowView, InterfaceReport, Records};

/// The capture source a flow event comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceInfo<'a> {
    /// The `interface` of records: interface name, or file name offline.
    pub interface: &'a str,
    /// The `internal` of records: true for role `lan`, false for `wan`.
    pub internal: bool,
}

/// One update interval, complete: what every flow worker and capture
/// counted, merged. Built once at the interval's end, then only read: the
/// interval plugins turn it into records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Agent-wide status.
    pub status: AgentStatus,
    /// One entry per capture interface.
    pub interfaces: Vec<InterfaceReport>,
    /// Flow definitions, top flows and threshold events.
    pub analytics: Arc<Analytics>,
}

/// A processor of flow events: turns them into records.
///
/// Every method has a no-op default; a plugin implements what it needs.
/// Methods are called on the thread that owns the flow table, so they must
/// be quick: encode and return, never block.
pub trait Plugin: Send {
    /// A short name for logs and status (`core`, `thresholds`, ...).
    fn name(&self) -> &str;

    /// Called for every flow event, in the order they happen: `Detected` at
    /// most once per flow and before that flow's first `Stats` or `Purged`;
    /// `Stats` at the end of each interval in which the flow saw a packet;
    /// `Purged` exactly once, last.
    fn on_flow(
        &mut self,
        source: &SourceInfo<'_>,
        event: FlowEvent,
        flow: &FlowView<'_>,
        out: &mut Records,
    ) {
        let _ = (source, event, flow, out);
    }

    /// Called at the end of each `update_interval`, after that interval's
    /// flow events, and once more at shutdown.
    fn on_interval(&mut self, snapshot: &Snapshot, out: &mut Records) {
        let _ = (snapshot, out);
    }
}
