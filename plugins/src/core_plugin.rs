//! The core telemetry plugin: SPEC.md's records, readable by Netify Agent
//! v5 consumers.
//!
//! # Wire format
//!
//! One JSON object per record, keys in a fixed order: `type` first, then
//! the envelope, then the body with its keys sorted. Integers only; every
//! `*_at` is Unix epoch milliseconds.
//!
//! Flow records: `{"type", "interface", "internal", ["reason", "evicted",]
//! "flow": {...}}`. The `flow` object holds:
//!
//! | field | in | meaning |
//! | --- | --- | --- |
//! | `detection_packets` | all | packets examined by detection |
//! | `digest`, `digest_prev` | all | current SHA-1 digest (hex); earlier ones, oldest first |
//! | `last_seen_at` | all | ms, latest packet |
//! | `local_bytes`, `local_packets`, `other_bytes`, `other_packets` | all | wire bytes / frames sent by each side since the flow's previous `flow_stats` |
//! | `local_rate`, `other_rate` | all | bytes/s over the same interval, averaged over the one-second slots in which that side sent |
//! | `tcp` | all, TCP only | `{resets, retrans, seq_errors}` during the same interval |
//! | `total_bytes`, `total_packets` | all | since the flow began, both sides |
//! | `total_local_bytes`, `total_local_packets`, `total_other_bytes`, `total_other_packets` | all | since the flow began, per side (extension) |
//! | `first_seen_at`, `ip_version`, `ip_protocol`, `vlan_id`, `local_ip`, `local_port`, `other_ip`, `other_port`, `local_origin`, `detected_protocol_name`, `detected_application_name` | `flow`, `flow_purge` | the flow's identity |
//! | `detected_protocol`, `detected_application`, `detection_guessed`, `host_server_name`, `dns_host_name`, `ip_dscp`, `local_mac`, `other_mac`, `other_type`, `category`, and Netify's flags (`app_ip_override`, `app_proto_twins`, `detection_updated`, `dhc_hit`, `fhc_hit`, `ip_nat`, `soft_dissector`, all false) | `flow` | metadata |
//!
//! `flow_purge` adds `reason` (`closed` or `expired`) and `evicted` (true
//! when `max_flows` pushed the flow out) to the envelope.
//!
//! `agent_status` is flat; `interface_stats` has one object per interface,
//! keyed by its name. Netify's CPU fields (`cpu_user`, `cpu_system` and
//! their `_prev`) are whole seconds; the `_ms` extensions carry
//! milliseconds.

use flowstat_core::{
    AGENT_VERSION, AgentStatus, DecodeError, FlowEvent, FlowView, InterfaceCounters,
    IntervalReport, Plugin, Record, RecordKind, SourceInfo,
};
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeStruct, Serializer};
use std::fmt;

/// Produces `flow`, `flow_stats`, `flow_purge`, `agent_status` and
/// `interface_stats`.
#[derive(Debug, Default)]
pub struct CorePlugin;

impl Plugin for CorePlugin {
    fn name(&self) -> &str {
        "core"
    }

    fn on_flow(
        &mut self,
        source: &SourceInfo<'_>,
        event: FlowEvent,
        flow: &FlowView<'_>,
        out: &mut Vec<Record>,
    ) {
        let (kind, reason, evicted) = match event {
            FlowEvent::Detected => (RecordKind::Flow, None, None),
            FlowEvent::Stats => (RecordKind::FlowStats, None, None),
            FlowEvent::Purged { reason, evicted } => {
                (RecordKind::FlowPurge, Some(reason.as_str()), Some(evicted))
            }
        };
        let record = FlowRecord {
            kind: kind.as_str(),
            interface: source.interface,
            internal: source.internal,
            reason,
            evicted,
            flow: FlowBody { kind, flow },
        };
        out.push(encode(kind, &record));
    }

    fn on_interval(&mut self, report: &IntervalReport<'_>, out: &mut Vec<Record>) {
        out.push(encode(
            RecordKind::AgentStatus,
            &AgentStatusRecord(report.status),
        ));
        out.push(encode(
            RecordKind::InterfaceStats,
            &InterfaceStatsRecord(report),
        ));
    }
}

fn encode(kind: RecordKind, value: &impl Serialize) -> Record {
    let mut json = Vec::with_capacity(512);
    // Serializing these types into a Vec cannot fail: no map has non-string
    // keys and no value refuses to serialize.
    if let Err(e) = serde_json::to_writer(&mut json, value) {
        unreachable!("encoding {} failed: {e}", kind.as_str());
    }
    Record { kind, json }
}

#[derive(Serialize)]
struct FlowRecord<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    interface: &'a str,
    internal: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    evicted: Option<bool>,
    flow: FlowBody<'a>,
}

/// The `flow` object of a flow record: which fields it has depends on the
/// record kind (see the module docs); keys come out sorted.
struct FlowBody<'a> {
    kind: RecordKind,
    flow: &'a FlowView<'a>,
}

impl Serialize for FlowBody<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let f = self.flow;
        let meta = self.kind == RecordKind::Flow;
        let identity = meta || self.kind == RecordKind::FlowPurge;
        let d = &f.detection;
        let (l, o) = (&f.local_stats, &f.other_stats);
        let mut s = serializer.serialize_struct("flow", 48)?;
        if meta {
            s.serialize_field("app_ip_override", &false)?;
            s.serialize_field("app_proto_twins", &false)?;
            s.serialize_field("category", &Category)?;
            s.serialize_field("detected_application", &d.application)?;
        }
        if identity {
            s.serialize_field("detected_application_name", d.application_name)?;
        }
        if meta {
            s.serialize_field("detected_protocol", &d.protocol.0)?;
        }
        if identity {
            s.serialize_field("detected_protocol_name", d.protocol.name())?;
        }
        if meta {
            s.serialize_field("detection_guessed", &d.guessed)?;
        }
        s.serialize_field("detection_packets", &d.packets)?;
        if meta {
            s.serialize_field("detection_updated", &false)?;
            s.serialize_field("dhc_hit", &false)?;
        }
        s.serialize_field("digest", &Hex(&f.digest))?;
        s.serialize_field("digest_prev", &HexList(f.digest_prev))?;
        if meta {
            // SPEC 4: a DNS flow's query name goes in `dns_host_name`.
            let dns = if d.protocol.0 == 5 {
                d.host_server_name
            } else {
                ""
            };
            s.serialize_field("dns_host_name", dns)?;
            s.serialize_field("fhc_hit", &false)?;
        }
        if identity {
            s.serialize_field("first_seen_at", &f.first_seen.as_millis())?;
        }
        if meta {
            s.serialize_field("host_server_name", d.host_server_name)?;
            s.serialize_field("ip_dscp", &f.ip_dscp)?;
            s.serialize_field("ip_nat", &false)?;
        }
        if identity {
            s.serialize_field("ip_protocol", &f.ip_protocol)?;
            s.serialize_field("ip_version", &f.ip_version)?;
        }
        s.serialize_field("last_seen_at", &f.last_seen.as_millis())?;
        s.serialize_field("local_bytes", &l.bytes)?;
        if identity {
            s.serialize_field("local_ip", &f.local.ip)?;
        }
        if meta {
            s.serialize_field("local_mac", &Mac(f.local.mac))?;
        }
        if identity {
            s.serialize_field("local_origin", &f.local_origin)?;
        }
        s.serialize_field("local_packets", &l.packets)?;
        if identity {
            s.serialize_field("local_port", &f.local.port)?;
        }
        s.serialize_field("local_rate", &l.rate)?;
        s.serialize_field("other_bytes", &o.bytes)?;
        if identity {
            s.serialize_field("other_ip", &f.other.ip)?;
        }
        if meta {
            s.serialize_field("other_mac", &Mac(f.other.mac))?;
        }
        s.serialize_field("other_packets", &o.packets)?;
        if identity {
            s.serialize_field("other_port", &f.other.port)?;
        }
        s.serialize_field("other_rate", &o.rate)?;
        if meta {
            s.serialize_field("other_type", f.other_type.as_str())?;
            s.serialize_field("soft_dissector", &false)?;
        }
        if let Some(tcp) = &f.tcp {
            s.serialize_field(
                "tcp",
                &Tcp {
                    resets: tcp.resets,
                    retrans: tcp.retrans,
                    seq_errors: tcp.seq_errors,
                },
            )?;
        }
        s.serialize_field("total_bytes", &(l.total_bytes + o.total_bytes))?;
        s.serialize_field("total_local_bytes", &l.total_bytes)?;
        s.serialize_field("total_local_packets", &l.total_packets)?;
        s.serialize_field("total_other_bytes", &o.total_bytes)?;
        s.serialize_field("total_other_packets", &o.total_packets)?;
        s.serialize_field("total_packets", &(l.total_packets + o.total_packets))?;
        if identity {
            s.serialize_field("vlan_id", &f.vlan_id)?;
        }
        s.end()
    }
}

#[derive(Serialize)]
struct Tcp {
    resets: u32,
    retrans: u32,
    seq_errors: u32,
}

/// Netify's category ids; flowstat has no category lists yet, so all are 0
/// (unknown).
struct Category;

impl Serialize for Category {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("category", 4)?;
        for field in ["application", "domain", "overlay", "protocol"] {
            s.serialize_field(field, &0)?;
        }
        s.end()
    }
}

/// A digest as 40 lowercase hex digits.
struct Hex<'a>(&'a [u8; 20]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl Serialize for Hex<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

struct HexList<'a>(&'a [[u8; 20]]);

impl Serialize for HexList<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(Hex))
    }
}

/// A MAC address as `aa:bb:cc:dd:ee:ff`.
struct Mac([u8; 6]);

impl Serialize for Mac {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        serializer.collect_str(&format_args!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        ))
    }
}

struct AgentStatusRecord<'a>(&'a AgentStatus);

impl Serialize for AgentStatusRecord<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let a = self.0;
        let mut s = serializer.serialize_struct("agent_status", 36)?;
        s.serialize_field("type", RecordKind::AgentStatus.as_str())?;
        s.serialize_field("agent_version", AGENT_VERSION)?;
        s.serialize_field("build_version", &BuildVersion)?;
        s.serialize_field("captures", &Captures(a))?;
        s.serialize_field("cpu_cores", &a.cpu_cores)?;
        s.serialize_field("cpu_system", &(a.cpu_system_ms / 1000))?;
        s.serialize_field("cpu_system_ms", &a.cpu_system_ms)?;
        s.serialize_field("cpu_system_prev", &(a.cpu_system_prev_ms / 1000))?;
        s.serialize_field("cpu_user", &(a.cpu_user_ms / 1000))?;
        s.serialize_field("cpu_user_ms", &a.cpu_user_ms)?;
        s.serialize_field("cpu_user_prev", &(a.cpu_user_prev_ms / 1000))?;
        s.serialize_field("dhc_status", &false)?;
        s.serialize_field("fhc_status", &false)?;
        s.serialize_field("flow_count", &a.flow_count)?;
        s.serialize_field("flow_count_prev", &a.flow_count_prev)?;
        s.serialize_field("flows_active", &a.flows_active)?;
        s.serialize_field("flows_evicted", &a.flows_evicted)?;
        s.serialize_field("flows_expired", &a.flows_expired)?;
        s.serialize_field("flows_expiring", &a.flows_expiring)?;
        s.serialize_field("flows_in_use", &a.flow_count)?;
        s.serialize_field("flows_purged", &a.flows_purged)?;
        s.serialize_field("maxrss_kb", &a.maxrss_kb)?;
        s.serialize_field("maxrss_kb_prev", &a.maxrss_kb_prev)?;
        s.serialize_field("memrss_kb", &a.memrss_kb)?;
        s.serialize_field("memrss_kb_prev", &a.memrss_kb_prev)?;
        s.serialize_field("sinks", &Sinks(a))?;
        // flowstat does not use TCMalloc.
        s.serialize_field("tcm_kb", &0)?;
        s.serialize_field("tcm_kb_prev", &0)?;
        s.serialize_field("timestamp", &a.timestamp.as_secs())?;
        s.serialize_field("update_imf", &1)?;
        s.serialize_field("update_interval", &a.update_interval)?;
        s.serialize_field("uptime", &a.uptime)?;
        s.end()
    }
}

/// `flowstatd/<version> (<arch>-<os>)`.
struct BuildVersion;

impl Serialize for BuildVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!(
            "flowstatd/{AGENT_VERSION} ({}-{})",
            std::env::consts::ARCH,
            std::env::consts::OS
        ))
    }
}

struct Captures<'a>(&'a AgentStatus);

impl Serialize for Captures<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Entry {
            dropped: u64,
            received: u64,
        }
        serializer.collect_map(self.0.captures.iter().map(|c| {
            (
                &c.name,
                Entry {
                    dropped: c.dropped,
                    received: c.received,
                },
            )
        }))
    }
}

struct Sinks<'a>(&'a AgentStatus);

impl Serialize for Sinks<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Entry {
            dropped: u64,
            queued: u64,
            sent: u64,
        }
        serializer.collect_map(self.0.sinks.iter().map(|s| {
            (
                &s.name,
                Entry {
                    dropped: s.dropped,
                    queued: s.queued,
                    sent: s.sent,
                },
            )
        }))
    }
}

struct InterfaceStatsRecord<'a>(&'a IntervalReport<'a>);

impl Serialize for InterfaceStatsRecord<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut m = serializer.serialize_map(None)?;
        m.serialize_entry("type", RecordKind::InterfaceStats.as_str())?;
        for iface in self.0.interfaces {
            m.serialize_entry(&iface.name, &Counters(&iface.counters))?;
        }
        m.end()
    }
}

struct Counters<'a>(&'a InterfaceCounters);

impl Serialize for Counters<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut s = serializer.serialize_struct("interface", 23)?;
        s.serialize_field("capture_dropped", &c.capture_dropped)?;
        s.serialize_field("capture_filtered", &c.capture_filtered)?;
        s.serialize_field("decode_issues", &DecodeIssues(&c.decode_issues))?;
        s.serialize_field("discarded", &c.discarded)?;
        s.serialize_field("discarded_bytes", &c.discarded_bytes)?;
        s.serialize_field("ethernet", &c.ethernet)?;
        s.serialize_field("flow_dropped", &c.flow_dropped)?;
        s.serialize_field("fragmented", &c.fragmented)?;
        s.serialize_field("icmp", &c.icmp)?;
        s.serialize_field("igmp", &c.igmp)?;
        s.serialize_field("ip", &c.ip)?;
        s.serialize_field("ip_bytes", &c.ip_bytes)?;
        s.serialize_field("largest_bytes", &c.largest_bytes)?;
        s.serialize_field("mpls", &c.mpls)?;
        s.serialize_field("pppoe", &c.pppoe)?;
        s.serialize_field("queue_dropped", &c.queue_dropped)?;
        s.serialize_field("raw", &c.raw)?;
        s.serialize_field("tcp", &c.tcp)?;
        s.serialize_field("tcp_resets", &c.tcp_resets)?;
        s.serialize_field("tcp_seq_errors", &c.tcp_seq_errors)?;
        s.serialize_field("udp", &c.udp)?;
        s.serialize_field("vlan", &c.vlan)?;
        s.serialize_field("wire_bytes", &c.wire_bytes)?;
        s.end()
    }
}

/// Frames per decode problem, every kind listed, sorted by name.
struct DecodeIssues<'a>(&'a [u64; DecodeError::ALL.len()]);

impl Serialize for DecodeIssues<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut kinds = DecodeError::ALL;
        kinds.sort_by_key(|k| k.name());
        serializer.collect_map(kinds.iter().map(|k| (k.name(), self.0[k.index()])))
    }
}

#[cfg(test)]
mod tests;
