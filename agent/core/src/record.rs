/// The `type` of a record on the wire (SPEC section 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
}

impl RecordKind {
    /// Every kind.
    pub const ALL: [RecordKind; 7] = [
        RecordKind::AgentHello,
        RecordKind::Flow,
        RecordKind::FlowStats,
        RecordKind::FlowPurge,
        RecordKind::AgentStatus,
        RecordKind::InterfaceStats,
        RecordKind::Event,
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
        }
    }

    /// The kind whose wire value is `s`.
    pub fn parse(s: &str) -> Option<RecordKind> {
        RecordKind::ALL.into_iter().find(|k| k.as_str() == s)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in RecordKind::ALL {
            assert_eq!(RecordKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(RecordKind::parse("flows"), None);
    }
}
