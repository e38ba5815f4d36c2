//! From records to flow exports.
//!
//! A `flow` record's metadata (addresses, ports, names...) is kept per
//! digest in a bounded table; a `flow_stats` record of a flow that has
//! gone `active_timeout` without an export, and every `flow_purge`
//! record, become an [`Export`]: the flow's traffic since its previous
//! export, per direction. Counters come from the records' cumulative
//! `total_*` fields, less what earlier exports of the flow carried, so
//! the data records of a flow add up to its `flow_purge` totals, and a
//! `flow_stats` record lost on the way costs nothing.
//!
//! Sans-IO: time is the records' own (`last_seen_at`, packet time).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::IpAddr;

use flowstat_core::RecordKind;
use serde::Deserialize;

/// Why a data record was exported: IPFIX's `flowEndReason` (IE 136).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum EndReason {
    /// Purged after `ttl_idle_flow` (or `ttl_idle_tcp_flow`) of silence,
    /// or at shutdown.
    IdleTimeout = 1,
    /// Alive longer than the active timeout since its previous export.
    ActiveTimeout = 2,
    /// A TCP flow closed (FIN both ways, or RST).
    EndOfFlow = 3,
    /// Evicted from the agent's full flow table (`max_flows`).
    LackOfResources = 5,
}

/// Bytes and packets sent one way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Bytes on the wire (frame lengths).
    pub(crate) bytes: u64,
    /// Frames.
    pub(crate) packets: u64,
}

impl Counts {
    /// What `self` has beyond `earlier` (0 where it has not).
    fn since(self, earlier: Counts) -> Counts {
        Counts {
            bytes: self.bytes.saturating_sub(earlier.bytes),
            packets: self.packets.saturating_sub(earlier.packets),
        }
    }
}

/// One data record: a flow's traffic between two of its exports, from
/// the initiator's point of view (source = the client, SPEC 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Export<'a> {
    /// The client's address (IPv4 or IPv6, as `dst`).
    pub(crate) src: IpAddr,
    /// The server's address.
    pub(crate) dst: IpAddr,
    /// The client's port (0 without ports).
    pub(crate) src_port: u16,
    /// The server's port.
    pub(crate) dst_port: u16,
    /// IP protocol number.
    pub(crate) protocol: u8,
    /// The IP TOS byte: the flow's DSCP, shifted left 2.
    pub(crate) tos: u8,
    /// Outermost 802.1Q VLAN id, 0 untagged.
    pub(crate) vlan: u16,
    /// Start of the exported span, epoch milliseconds: the flow's first
    /// packet, or the end of its previous export.
    pub(crate) start_ms: u64,
    /// Its end: the flow's latest packet.
    pub(crate) end_ms: u64,
    /// Client to server.
    pub(crate) forward: Counts,
    /// Server to client.
    pub(crate) reverse: Counts,
    /// TCP flags sent over the span, OR-ed: the client's, the server's.
    pub(crate) tcp_flags: [u8; 2],
    /// Why it was exported.
    pub(crate) end_reason: EndReason,
    /// nDPI-style `PROTOCOL.Application` name ("TLS.Google", "DNS").
    pub(crate) application: &'a str,
    /// The host name DPI found (TLS SNI, HTTP Host, DNS query); may be
    /// empty.
    pub(crate) host: &'a str,
}

/// A `flow`, `flow_stats` or `flow_purge` record, as far as an export
/// needs it (the other fields are skipped unread).
#[derive(Deserialize)]
struct RecordJson<'a> {
    #[serde(borrow, default)]
    reason: Option<&'a str>,
    #[serde(default)]
    evicted: bool,
    #[serde(borrow)]
    flow: FlowJson<'a>,
}

/// The `tcp` object of a `flow_stats` or `flow_purge` record.
#[derive(Deserialize, Default)]
struct TcpJson {
    #[serde(default)]
    local_flags: u8,
    #[serde(default)]
    other_flags: u8,
}

/// The `flow` object of a record; identity fields are in `flow` and
/// `flow_purge` records only.
#[derive(Deserialize)]
struct FlowJson<'a> {
    #[serde(borrow)]
    digest: &'a str,
    #[serde(borrow, default)]
    digest_prev: Vec<&'a str>,
    first_seen_at: Option<u64>,
    last_seen_at: u64,
    ip_protocol: Option<u8>,
    vlan_id: Option<u16>,
    #[serde(borrow)]
    local_ip: Option<&'a str>,
    #[serde(borrow)]
    other_ip: Option<&'a str>,
    local_port: Option<u16>,
    other_port: Option<u16>,
    local_origin: Option<bool>,
    #[serde(borrow)]
    detected_protocol_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    detected_application_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    host_server_name: Option<Cow<'a, str>>,
    ip_dscp: Option<u8>,
    total_local_bytes: u64,
    total_local_packets: u64,
    total_other_bytes: u64,
    total_other_packets: u64,
    #[serde(default)]
    tcp: TcpJson,
}

impl FlowJson<'_> {
    /// TCP flags sent since the flow's previous record, `[local, other]`.
    fn tcp_flags(&self) -> [u8; 2] {
        [self.tcp.local_flags, self.tcp.other_flags]
    }

    /// The flow's identity, if the record carries it.
    fn key(&self) -> Option<Key> {
        let local: IpAddr = self.local_ip?.parse().ok()?;
        let other: IpAddr = self.other_ip?.parse().ok()?;
        if local.is_ipv4() != other.is_ipv4() {
            return None;
        }
        Some(Key {
            local,
            other,
            local_port: self.local_port?,
            other_port: self.other_port?,
            protocol: self.ip_protocol?,
            vlan: self.vlan_id.unwrap_or(0),
            local_origin: self.local_origin?,
            first_seen_ms: self.first_seen_at?,
        })
    }

    /// Cumulative counters, `[local, other]`.
    fn totals(&self) -> [Counts; 2] {
        [
            Counts {
                bytes: self.total_local_bytes,
                packets: self.total_local_packets,
            },
            Counts {
                bytes: self.total_other_bytes,
                packets: self.total_other_packets,
            },
        ]
    }

    /// `PROTOCOL.Application` as nDPI writes it: the protocol alone when
    /// the application is unknown.
    fn application(&self) -> String {
        let protocol = self.detected_protocol_name.as_deref().unwrap_or_default();
        let app = self
            .detected_application_name
            .as_deref()
            .filter(|a| !a.is_empty() && *a != "Unknown");
        match app {
            Some(app) if !protocol.is_empty() => format!("{protocol}.{app}"),
            Some(app) => app.to_owned(),
            None => protocol.to_owned(),
        }
    }
}

/// A flow's identity, oriented as the records are (local and other).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    local: IpAddr,
    other: IpAddr,
    local_port: u16,
    other_port: u16,
    protocol: u8,
    vlan: u16,
    /// The local endpoint is the client.
    local_origin: bool,
    first_seen_ms: u64,
}

/// A SHA-1 flow digest.
type Digest = [u8; 20];

/// Parses a 40-character hex digest.
fn digest(hex: &str) -> Option<Digest> {
    let hex = hex.as_bytes();
    if hex.len() != 40 {
        return None;
    }
    let mut out = [0; 20];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let nibble = |c: u8| (c as char).to_digit(16);
        *byte = (nibble(pair[0])? << 4 | nibble(pair[1])?) as u8;
    }
    Some(out)
}

/// What the table keeps of a flow between its `flow` record and its purge.
#[derive(Debug)]
struct Entry {
    key: Key,
    tos: u8,
    application: Box<str>,
    host: Box<str>,
    /// What earlier exports carried, `[local, other]`.
    exported: [Counts; 2],
    /// End of the latest export, epoch ms (0: none yet).
    exported_until_ms: u64,
    /// TCP flags of the records read since the latest export, `[local,
    /// other]`.
    tcp_flags: [u8; 2],
    /// When it was last read, for eviction (see [`Flows::touch`]).
    stamp: u64,
}

/// What became of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A data record went out.
    Exported,
    /// Nothing to export: metadata kept, an active timeout not yet due,
    /// or a record of another type.
    Kept,
    /// The record is not a flow record this sink can read (counted).
    Unreadable,
}

/// The flows seen in `flow` records and not yet purged, by digest, at
/// most `max_flows` of them: past that, the one read least recently is
/// forgotten (and counted).
pub(crate) struct Flows {
    table: foldhash::HashMap<Digest, Entry>,
    /// Digests in the order they were read, each with the stamp it was
    /// read with; an entry whose stamp has moved on is stale here.
    order: VecDeque<(Digest, u64)>,
    stamp: u64,
    max_flows: usize,
    active_timeout_ms: u64,
    /// Flows forgotten because the table was full.
    pub(crate) forgotten: u64,
    /// Records that were not flow records this sink can read.
    pub(crate) unreadable: u64,
}

impl Flows {
    /// An empty table of at most `max_flows` flows, exporting flows alive
    /// longer than `active_timeout_ms` at their `flow_stats` records.
    pub(crate) fn new(max_flows: usize, active_timeout_ms: u64) -> Self {
        Flows {
            table: foldhash::HashMap::default(),
            order: VecDeque::new(),
            stamp: 0,
            max_flows: max_flows.max(1),
            active_timeout_ms,
            forgotten: 0,
            unreadable: 0,
        }
    }

    /// Flows remembered.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Flows it remembers at most.
    pub(crate) fn max_flows(&self) -> usize {
        self.max_flows
    }

    /// Reads one record of `kind`. A `flow` record's metadata is kept; a
    /// `flow_stats` record whose flow is due, and every `flow_purge`
    /// record, is handed to `emit` as an [`Export`]. When `emit` fails,
    /// the table is left as it was (the same record may come again; only
    /// its TCP flags are kept, which reading it again does not change)
    /// and its error is returned.
    pub(crate) fn read<E>(
        &mut self,
        kind: RecordKind,
        json: &[u8],
        emit: impl FnOnce(&Export<'_>) -> Result<(), E>,
    ) -> Result<Outcome, E> {
        if !matches!(
            kind,
            RecordKind::Flow | RecordKind::FlowStats | RecordKind::FlowPurge
        ) {
            return Ok(Outcome::Kept);
        }
        let Ok(record) = serde_json::from_slice::<RecordJson<'_>>(json) else {
            self.unreadable += 1;
            return Ok(Outcome::Unreadable);
        };
        let Some(digest) = digest(record.flow.digest) else {
            self.unreadable += 1;
            return Ok(Outcome::Unreadable);
        };
        match kind {
            RecordKind::Flow => Ok(self.learn(digest, &record.flow)),
            RecordKind::FlowStats => self.stats(digest, &record.flow, emit),
            _ => self.purge(digest, &record, emit),
        }
    }

    /// Keeps (or updates) a `flow` record's metadata.
    fn learn(&mut self, digest: Digest, flow: &FlowJson<'_>) -> Outcome {
        let Some(mut entry) = Entry::new(flow) else {
            self.unreadable += 1;
            return Outcome::Unreadable;
        };
        // A second `flow` record (detection updated) may come under a new
        // digest: what was exported so far stays with the flow.
        if let Some(earlier) = self
            .find(digest, &flow.digest_prev)
            .and_then(|d| self.table.remove(&d))
        {
            entry.exported = earlier.exported;
            entry.exported_until_ms = earlier.exported_until_ms;
            entry.tcp_flags = earlier.tcp_flags;
        }
        self.table.insert(digest, entry);
        self.touch(digest);
        self.evict();
        Outcome::Kept
    }

    /// Exports a flow alive `active_timeout` since its previous export.
    fn stats<E>(
        &mut self,
        digest: Digest,
        flow: &FlowJson<'_>,
        emit: impl FnOnce(&Export<'_>) -> Result<(), E>,
    ) -> Result<Outcome, E> {
        let Some(found) = self.find(digest, &flow.digest_prev) else {
            // No `flow` record seen (dropped, or forgotten): its purge
            // carries its identity and everything.
            return Ok(Outcome::Kept);
        };
        if found != digest
            && let Some(entry) = self.table.remove(&found)
        {
            self.table.insert(digest, entry);
        }
        self.touch(digest);
        let Some(entry) = self.table.get_mut(&digest) else {
            return Ok(Outcome::Kept);
        };
        entry.add_flags(flow.tcp_flags());
        if flow.last_seen_at.saturating_sub(entry.since_ms()) < self.active_timeout_ms {
            return Ok(Outcome::Kept);
        }
        let totals = flow.totals();
        let Some(export) = entry.export(flow.last_seen_at, totals, EndReason::ActiveTimeout) else {
            return Ok(Outcome::Kept);
        };
        emit(&export)?;
        if let Some(entry) = self.table.get_mut(&digest) {
            entry.exported = totals;
            entry.exported_until_ms = flow.last_seen_at;
            entry.tcp_flags = [0; 2];
        }
        Ok(Outcome::Exported)
    }

    /// Exports what a purged flow has not exported yet, and forgets it.
    /// A flow whose `flow` record never came is exported whole, from the
    /// purge's own identity fields (without a host name).
    fn purge<E>(
        &mut self,
        digest: Digest,
        record: &RecordJson<'_>,
        emit: impl FnOnce(&Export<'_>) -> Result<(), E>,
    ) -> Result<Outcome, E> {
        let flow = &record.flow;
        let reason = match (record.evicted, record.reason) {
            (true, _) => EndReason::LackOfResources,
            (false, Some("closed")) => EndReason::EndOfFlow,
            _ => EndReason::IdleTimeout,
        };
        let found = self.find(digest, &flow.digest_prev);
        let mut unknown;
        let entry = match found.and_then(|d| self.table.get_mut(&d)) {
            Some(entry) => entry,
            None => match Entry::new(flow) {
                Some(entry) => {
                    unknown = entry;
                    &mut unknown
                }
                None => {
                    self.unreadable += 1;
                    return Ok(Outcome::Unreadable);
                }
            },
        };
        entry.add_flags(flow.tcp_flags());
        let outcome = match entry.export(flow.last_seen_at, flow.totals(), reason) {
            Some(export) => {
                emit(&export)?;
                Outcome::Exported
            }
            // Everything went out with an active-timeout export.
            None => Outcome::Kept,
        };
        if let Some(d) = found {
            self.table.remove(&d);
        }
        Ok(outcome)
    }

    /// The digest under which the flow of `digest` (or of one of its
    /// earlier digests, newest first) is kept.
    fn find(&self, digest: Digest, prev: &[&str]) -> Option<Digest> {
        if self.table.contains_key(&digest) {
            return Some(digest);
        }
        prev.iter()
            .rev()
            .filter_map(|hex| self::digest(hex))
            .find(|d| self.table.contains_key(d))
    }

    /// Marks `digest` as read just now.
    fn touch(&mut self, digest: Digest) {
        let Some(entry) = self.table.get_mut(&digest) else {
            return;
        };
        self.stamp += 1;
        entry.stamp = self.stamp;
        self.order.push_back((digest, self.stamp));
        // Stale places are dropped once they outnumber the live ones.
        if self.order.len() > 2 * self.table.len() + 1024 {
            let table = &self.table;
            self.order
                .retain(|(d, s)| table.get(d).is_some_and(|e| e.stamp == *s));
        }
    }

    /// Forgets the flows read least recently while there are too many.
    fn evict(&mut self) {
        while self.table.len() > self.max_flows {
            let Some((digest, stamp)) = self.order.pop_front() else {
                return;
            };
            if self.table.get(&digest).is_some_and(|e| e.stamp == stamp) {
                self.table.remove(&digest);
                self.forgotten += 1;
            }
        }
    }
}

impl Entry {
    /// What a `flow` (or `flow_purge`) record tells of its flow, nothing
    /// exported yet; `None` if it lacks the flow's identity.
    fn new(flow: &FlowJson<'_>) -> Option<Entry> {
        Some(Entry {
            key: flow.key()?,
            tos: (flow.ip_dscp.unwrap_or(0) & 0x3f) << 2,
            application: flow.application().into(),
            host: flow.host_server_name.as_deref().unwrap_or_default().into(),
            exported: [Counts::default(); 2],
            exported_until_ms: 0,
            tcp_flags: [0; 2],
            stamp: 0,
        })
    }

    /// Adds a record's TCP flags, `[local, other]` (OR-ed: a record read
    /// again adds nothing).
    fn add_flags(&mut self, more: [u8; 2]) {
        for (flags, more) in self.tcp_flags.iter_mut().zip(more) {
            *flags |= more;
        }
    }

    /// Where the next export starts: the end of the previous one, or the
    /// flow's first packet.
    fn since_ms(&self) -> u64 {
        self.exported_until_ms.max(self.key.first_seen_ms)
    }

    /// The export up to `until_ms` of the traffic by which `totals`
    /// (`[local, other]`) exceed what was exported, with the TCP flags
    /// read since; `None` when there is none.
    fn export(
        &self,
        until_ms: u64,
        totals: [Counts; 2],
        end_reason: EndReason,
    ) -> Option<Export<'_>> {
        let key = &self.key;
        let local = totals[0].since(self.exported[0]);
        let other = totals[1].since(self.exported[1]);
        if local.packets == 0 && other.packets == 0 {
            return None;
        }
        let client = (key.local, key.local_port, local, self.tcp_flags[0]);
        let server = (key.other, key.other_port, other, self.tcp_flags[1]);
        let (client, server) = if key.local_origin {
            (client, server)
        } else {
            (server, client)
        };
        let since_ms = self.since_ms();
        Some(Export {
            src: client.0,
            dst: server.0,
            src_port: client.1,
            dst_port: server.1,
            protocol: key.protocol,
            tos: self.tos,
            vlan: key.vlan,
            start_ms: since_ms,
            end_ms: until_ms.max(since_ms),
            forward: client.2,
            reverse: server.2,
            tcp_flags: [client.3, server.3],
            end_reason,
            application: &self.application,
            host: &self.host,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digest of test flow `n`.
    fn hex(n: u8) -> String {
        format!("{n:02x}").repeat(20)
    }

    /// A `flow` record: flow `n` from the local 10.0.0.1:40000 (the
    /// client when `local_origin`) to 192.0.2.9:443, first seen at 1 s.
    fn flow(n: u8, prev: &[u8], local_origin: bool) -> Vec<u8> {
        let prev: Vec<String> = prev.iter().map(|p| format!("\"{}\"", hex(*p))).collect();
        format!(
            r#"{{"type":"flow","interface":"eth0","internal":true,"flow":{{"category":{{"application":5}},
            "detected_application":126,"detected_application_name":"Google","detected_protocol":91,
            "detected_protocol_name":"TLS","digest":"{}","digest_prev":[{}],"first_seen_at":1000,
            "host_server_name":"www.google.com","ip_dscp":46,"ip_protocol":6,"ip_version":4,
            "last_seen_at":1500,"local_bytes":100,"local_ip":"10.0.0.1","local_origin":{local_origin},
            "local_packets":1,"local_port":40000,"other_bytes":0,"other_ip":"192.0.2.9",
            "other_packets":0,"other_port":443,"ssl":{{"alpn":["h2"]}},"total_local_bytes":100,
            "total_local_packets":1,"total_other_bytes":0,"total_other_packets":0,"vlan_id":12}}}}"#,
            hex(n),
            prev.join(",")
        )
        .into_bytes()
    }

    /// A `flow_stats` record of flow `n` at `at` ms with these totals
    /// (local bytes, local packets, other bytes, other packets).
    fn stats(n: u8, at: u64, t: [u64; 4]) -> Vec<u8> {
        format!(
            r#"{{"type":"flow_stats","interface":"eth0","internal":true,"flow":{{"digest":"{}",
            "digest_prev":[],"last_seen_at":{at},"local_bytes":1,"total_local_bytes":{},
            "total_local_packets":{},"total_other_bytes":{},"total_other_packets":{}}}}}"#,
            hex(n),
            t[0],
            t[1],
            t[2],
            t[3]
        )
        .into_bytes()
    }

    /// A `flow_purge` record of flow `n` at `at` ms with these totals.
    fn purge(n: u8, at: u64, t: [u64; 4], reason: &str, evicted: bool) -> Vec<u8> {
        format!(
            r#"{{"type":"flow_purge","interface":"eth0","internal":true,"reason":"{reason}",
            "evicted":{evicted},"flow":{{"detected_application_name":"Unknown",
            "detected_protocol_name":"HTTP","digest":"{}","digest_prev":[],"first_seen_at":1000,
            "ip_protocol":17,"ip_version":4,"last_seen_at":{at},"local_ip":"10.0.0.1",
            "local_origin":true,"local_port":40000,"other_ip":"192.0.2.9","other_port":443,
            "total_local_bytes":{},"total_local_packets":{},"total_other_bytes":{},
            "total_other_packets":{},"vlan_id":12}}}}"#,
            hex(n),
            t[0],
            t[1],
            t[2],
            t[3]
        )
        .into_bytes()
    }

    /// `record` with a `tcp` object carrying these flags (local, other).
    fn with_tcp(record: Vec<u8>, flags: [u8; 2]) -> Vec<u8> {
        let tcp = format!(
            r#""digest_prev":[],"tcp":{{"local_flags":{},"other_flags":{},"resets":0}}"#,
            flags[0], flags[1]
        );
        String::from_utf8(record)
            .unwrap()
            .replacen(r#""digest_prev":[]"#, &tcp, 1)
            .into_bytes()
    }

    /// An export, owned.
    #[derive(Debug, PartialEq, Eq)]
    struct Owned {
        src: String,
        dst: String,
        ports: (u16, u16),
        protocol: u8,
        tos: u8,
        vlan: u16,
        span: (u64, u64),
        forward: (u64, u64),
        reverse: (u64, u64),
        tcp_flags: [u8; 2],
        reason: EndReason,
        application: String,
        host: String,
    }

    /// Reads `json` as `kind`; the export it made, if any.
    fn read(flows: &mut Flows, kind: RecordKind, json: &[u8]) -> Option<Owned> {
        let mut got = None;
        let outcome = flows
            .read(kind, json, |e| {
                got = Some(Owned {
                    src: e.src.to_string(),
                    dst: e.dst.to_string(),
                    ports: (e.src_port, e.dst_port),
                    protocol: e.protocol,
                    tos: e.tos,
                    vlan: e.vlan,
                    span: (e.start_ms, e.end_ms),
                    forward: (e.forward.bytes, e.forward.packets),
                    reverse: (e.reverse.bytes, e.reverse.packets),
                    tcp_flags: e.tcp_flags,
                    reason: e.end_reason,
                    application: e.application.to_owned(),
                    host: e.host.to_owned(),
                });
                Ok::<_, ()>(())
            })
            .unwrap();
        assert_eq!(outcome == Outcome::Exported, got.is_some());
        got
    }

    #[test]
    fn a_purged_flow_is_one_biflow_record_from_the_client() {
        let mut flows = Flows::new(10, 60_000);
        // The other side is the client: it becomes the source.
        assert_eq!(
            read(&mut flows, RecordKind::Flow, &flow(1, &[], false)),
            None
        );
        let got = read(
            &mut flows,
            RecordKind::FlowPurge,
            &purge(1, 9000, [500, 5, 7000, 8], "closed", false),
        );
        assert_eq!(
            got,
            Some(Owned {
                src: "192.0.2.9".into(),
                dst: "10.0.0.1".into(),
                ports: (443, 40000),
                protocol: 6,
                tos: 46 << 2,
                vlan: 12,
                span: (1000, 9000),
                forward: (7000, 8),
                reverse: (500, 5),
                tcp_flags: [0, 0],
                reason: EndReason::EndOfFlow,
                application: "TLS.Google".into(),
                host: "www.google.com".into(),
            })
        );
        assert_eq!(flows.len(), 0, "forgotten at its purge");
        let got = read(
            &mut flows,
            RecordKind::FlowPurge,
            &purge(1, 9000, [1; 4], "x", true),
        );
        assert_eq!(got.unwrap().reason, EndReason::LackOfResources);
        let got = read(
            &mut flows,
            RecordKind::FlowPurge,
            &purge(1, 9000, [1; 4], "expired", false),
        );
        assert_eq!(got.unwrap().reason, EndReason::IdleTimeout);
    }

    #[test]
    fn a_long_flow_is_exported_each_active_timeout_and_its_parts_add_up() {
        let mut flows = Flows::new(10, 60_000);
        read(&mut flows, RecordKind::Flow, &flow(1, &[], true));
        let steps = [
            (15_000, [100, 1, 50, 1], false),
            (61_000, [200, 2, 80, 2], true),
            (76_000, [300, 3, 90, 3], false),
            (121_000, [400, 4, 95, 4], true),
            // No traffic since the last export.
            (121_000, [400, 4, 95, 4], false),
        ];
        let mut parts = Vec::new();
        for (at, totals, due) in steps {
            let got = read(&mut flows, RecordKind::FlowStats, &stats(1, at, totals));
            assert_eq!(got.is_some(), due, "at {at}");
            parts.extend(got);
        }
        parts.extend(read(
            &mut flows,
            RecordKind::FlowPurge,
            &purge(1, 130_000, [450, 6, 99, 5], "expired", false),
        ));
        let spans: Vec<(u64, u64)> = parts.iter().map(|p| p.span).collect();
        assert_eq!(
            spans,
            [(1000, 61_000), (61_000, 121_000), (121_000, 130_000)]
        );
        assert!(
            parts[..2]
                .iter()
                .all(|p| p.reason == EndReason::ActiveTimeout)
        );
        let sum = |f: fn(&Owned) -> (u64, u64)| {
            parts
                .iter()
                .map(f)
                .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
        };
        assert_eq!(sum(|p| p.forward), (450, 6), "the purge's local totals");
        assert_eq!(sum(|p| p.reverse), (99, 5), "the purge's other totals");
        assert_eq!(parts[1].forward, (200, 2));

        // Nothing new at the purge: no empty record.
        read(&mut flows, RecordKind::Flow, &flow(2, &[], true));
        assert!(
            read(
                &mut flows,
                RecordKind::FlowStats,
                &stats(2, 70_000, [9, 1, 0, 0])
            )
            .is_some()
        );
        let got = read(
            &mut flows,
            RecordKind::FlowPurge,
            &purge(2, 80_000, [9, 1, 0, 0], "expired", false),
        );
        assert_eq!(got, None);
        assert_eq!(flows.len(), 0);
    }

    #[test]
    fn tcp_flags_are_those_sent_since_the_previous_export_from_client_and_server() {
        let (fin, syn, rst, psh, ack) = (1, 2, 4, 8, 16);
        let mut flows = Flows::new(10, 60_000);
        // The other side is the client.
        read(&mut flows, RecordKind::Flow, &flow(1, &[], false));
        let early = with_tcp(stats(1, 15_000, [1, 1, 1, 1]), [syn | ack, syn]);
        assert_eq!(read(&mut flows, RecordKind::FlowStats, &early), None);
        let due = with_tcp(stats(1, 61_000, [2, 2, 2, 2]), [ack, psh | ack]);
        let got = read(&mut flows, RecordKind::FlowStats, &due).unwrap();
        assert_eq!(got.tcp_flags, [syn | psh | ack, syn | ack]);
        let end = with_tcp(
            purge(1, 70_000, [3, 3, 3, 3], "closed", false),
            [rst, fin | ack],
        );
        let got = read(&mut flows, RecordKind::FlowPurge, &end).unwrap();
        assert_eq!(got.tcp_flags, [fin | ack, rst], "only the purge's own");
    }

    #[test]
    fn a_flow_keeps_its_exports_across_a_new_digest() {
        let mut flows = Flows::new(10, 60_000);
        read(&mut flows, RecordKind::Flow, &flow(1, &[], true));
        assert!(
            read(
                &mut flows,
                RecordKind::FlowStats,
                &stats(1, 70_000, [10, 1, 20, 2])
            )
            .is_some()
        );
        // Detection updated: a second `flow` record, under a new digest.
        read(&mut flows, RecordKind::Flow, &flow(2, &[1], true));
        assert_eq!(flows.len(), 1);
        let got = read(
            &mut flows,
            RecordKind::FlowPurge,
            &purge(2, 80_000, [15, 2, 20, 2], "expired", false),
        )
        .unwrap();
        assert_eq!((got.forward, got.reverse), ((5, 1), (0, 0)));
        assert_eq!(got.span, (70_000, 80_000));
        assert_eq!(flows.len(), 0);
    }

    #[test]
    fn a_purge_without_its_flow_record_is_exported_whole() {
        let mut flows = Flows::new(10, 60_000);
        // No `flow` record: stats cannot be exported (no identity)...
        assert_eq!(
            read(
                &mut flows,
                RecordKind::FlowStats,
                &stats(3, 90_000, [1, 1, 1, 1])
            ),
            None
        );
        // ...the purge carries it.
        let got = read(
            &mut flows,
            RecordKind::FlowPurge,
            &purge(3, 95_000, [10, 2, 30, 3], "expired", false),
        )
        .unwrap();
        assert_eq!((got.src.as_str(), got.ports), ("10.0.0.1", (40000, 443)));
        assert_eq!((got.forward, got.reverse), ((10, 2), (30, 3)));
        assert_eq!((got.protocol, got.vlan, got.tos), (17, 12, 0));
        assert_eq!((got.application.as_str(), got.host.as_str()), ("HTTP", ""));
    }

    #[test]
    fn past_max_flows_the_flow_read_least_recently_is_forgotten() {
        let mut flows = Flows::new(2, 60_000);
        read(&mut flows, RecordKind::Flow, &flow(1, &[], true));
        read(&mut flows, RecordKind::Flow, &flow(2, &[], true));
        read(
            &mut flows,
            RecordKind::FlowStats,
            &stats(1, 2000, [1, 1, 0, 0]),
        );
        read(&mut flows, RecordKind::Flow, &flow(3, &[], true));
        assert_eq!((flows.len(), flows.forgotten), (2, 1));
        assert!(flows.table.contains_key(&digest(&hex(1)).unwrap()));
        assert!(!flows.table.contains_key(&digest(&hex(2)).unwrap()));
        // Many reads of few flows: the eviction order stays bounded.
        for i in 0..10_000 {
            read(
                &mut flows,
                RecordKind::FlowStats,
                &stats(1 + (i % 2) as u8 * 2, 2000, [1, 1, 0, 0]),
            );
        }
        assert!(
            flows.order.len() <= 2 * flows.len() + 1024,
            "{}",
            flows.order.len()
        );
        assert_eq!(flows.forgotten, 1);
    }

    #[test]
    fn a_failed_export_changes_nothing() {
        let mut flows = Flows::new(10, 60_000);
        read(&mut flows, RecordKind::Flow, &flow(1, &[], true));
        let json = stats(1, 70_000, [10, 1, 20, 2]);
        let failed = flows.read(RecordKind::FlowStats, &json, |_| Err("full"));
        assert_eq!(failed, Err("full"));
        let purge_json = purge(1, 80_000, [10, 1, 20, 2], "expired", false);
        assert_eq!(
            flows.read(RecordKind::FlowPurge, &purge_json, |_| Err("full")),
            Err("full")
        );
        assert_eq!(flows.len(), 1, "kept for the purge to come again");
        let got = read(&mut flows, RecordKind::FlowPurge, &purge_json).unwrap();
        assert_eq!(
            (got.forward, got.reverse, got.span),
            ((10, 1), (20, 2), (1000, 80_000))
        );
    }

    #[test]
    fn records_it_cannot_read_are_counted_and_others_ignored() {
        let mut flows = Flows::new(10, 60_000);
        let mut none = |kind, json: &[u8]| flows.read(kind, json, |_| Ok::<_, ()>(())).unwrap();
        assert_eq!(
            none(RecordKind::AgentStatus, b"{\"type\":\"agent_status\"}"),
            Outcome::Kept
        );
        assert_eq!(none(RecordKind::Flow, b"{not json"), Outcome::Unreadable);
        assert_eq!(
            none(RecordKind::FlowPurge, br#"{"flow":{"digest":"xyz","last_seen_at":1,"total_local_bytes":1,"total_local_packets":1,"total_other_bytes":1,"total_other_packets":1}}"#),
            Outcome::Unreadable
        );
        assert_eq!(flows.unreadable, 2);
        assert_eq!(digest(&"0A".repeat(20)), Some([10; 20]));
        assert_eq!(digest(&"0g".repeat(20)), None);
    }
}
