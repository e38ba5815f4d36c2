use std::net::IpAddr;

use crate::{Category, FlowKey, Metadata, Protocol, Timestamp};

/// How an address is classified (SPEC section 2, "Client, local and other").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddrClass {
    /// Inside a configured `local_networks` CIDR or an address of a capture
    /// interface.
    Local,
    /// RFC 1918, 100.64/10, loopback, link-local, fc00::/7, fe80::/10.
    Private,
    /// 224/4 or ff00::/8.
    Multicast,
    /// 255.255.255.255 or the broadcast address of a local IPv4 network.
    Broadcast,
    /// Anything else.
    Public,
}

impl AddrClass {
    /// Local or private: an address on this side of the network edge.
    pub const fn is_inside(self) -> bool {
        matches!(self, AddrClass::Local | AddrClass::Private)
    }
}

/// The flow's `other_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OtherType {
    /// Both sides are local or private.
    Local,
    /// The other side is outside.
    Remote,
    /// The other side is a multicast group.
    Multicast,
    /// The other side is a broadcast address.
    Broadcast,
}

impl OtherType {
    /// The wire value.
    pub const fn as_str(self) -> &'static str {
        match self {
            OtherType::Local => "local",
            OtherType::Remote => "remote",
            OtherType::Multicast => "multicast",
            OtherType::Broadcast => "broadcast",
        }
    }
}

/// One side of a flow, oriented as local or other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Address.
    pub ip: IpAddr,
    /// Port, 0 for protocols without ports.
    pub port: u16,
    /// Ethernet source address of this side's first frame; all zero when
    /// unknown (no frame from this side yet, or a link without MACs).
    pub mac: [u8; 6],
    /// Classification of `ip`.
    pub class: AddrClass,
}

/// Counters of one side of a flow, as records report them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SideStats {
    /// Bytes sent by this side since the flow's previous `flow_stats`.
    pub bytes: u64,
    /// Packets sent by this side since the flow's previous `flow_stats`.
    pub packets: u64,
    /// Burst rate in bytes per second over the same interval: `bytes`
    /// divided by the number of one-second slots in which this side sent
    /// anything (0 when it sent nothing).
    pub rate: u64,
    /// Bytes sent by this side since the flow began.
    pub total_bytes: u64,
    /// Packets sent by this side since the flow began.
    pub total_packets: u64,
    /// The TCP flags this side sent since the flow's previous
    /// `flow_stats`, OR-ed (the header's flags byte: FIN 0x01 ... CWR
    /// 0x80); 0 for other protocols.
    pub tcp_flags: u8,
}

/// TCP counters of a flow for one interval (SPEC section 3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpCounters {
    /// Segments with RST set.
    pub resets: u32,
    /// Retransmitted segments.
    pub retrans: u32,
    /// Out-of-window segments: gaps, partial overlaps, misplaced empty ones.
    pub seq_errors: u32,
}

/// What detection has concluded about a flow so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Detection<'a> {
    /// Detected protocol.
    pub protocol: Protocol,
    /// Detected application id (0 when none).
    pub application: u32,
    /// Detected application name (`"Unknown"` when none).
    pub application_name: &'a str,
    /// The detected application's category ([`Category::UNSPECIFIED`]
    /// when none, or when the application table gives it none).
    pub category: Category,
    /// True when decided from ports or a fallback, not from payload.
    pub guessed: bool,
    /// Packets examined by detection so far.
    pub packets: u32,
    /// True on a second `flow` record: detection finished after an
    /// earlier record had to go out with what was known then.
    pub updated: bool,
    /// True when the application came from the DNS cache.
    pub dns_cache_hit: bool,
    /// What DPI read from the payload (empty on `flow_stats`/`flow_purge`).
    pub meta: &'a Metadata,
}

/// A read-only view of a flow, oriented local/other, built by the flow table
/// for each record. Plugins turn it into JSON.
#[derive(Clone, Copy, Debug)]
pub struct FlowView<'a> {
    /// The flow's identity in its table.
    pub key: FlowKey,
    /// The flow's place in its table: no other flow of the table has it
    /// while this one lives; a later flow may, once this one is purged.
    pub slot: u32,
    /// 4 or 6.
    pub ip_version: u8,
    /// IP protocol number.
    pub ip_protocol: u8,
    /// Outermost VLAN id, 0 when untagged.
    pub vlan_id: u16,
    /// DSCP of the flow's first packet.
    pub ip_dscp: u8,
    /// The local endpoint.
    pub local: Endpoint,
    /// The other endpoint.
    pub other: Endpoint,
    /// Classification of the other side relative to the local one.
    pub other_type: OtherType,
    /// True when the client (originator) is the local endpoint.
    pub local_origin: bool,
    /// Time of the first packet.
    pub first_seen: Timestamp,
    /// Time of the latest packet.
    pub last_seen: Timestamp,
    /// Current digest (SHA-1).
    pub digest: [u8; 20],
    /// The flow's earlier digests, when detection has changed it since.
    pub digest_prev: Option<DigestPrev<'a>>,
    /// Detection result.
    pub detection: Detection<'a>,
    /// Counters of the local side.
    pub local_stats: SideStats,
    /// Counters of the other side.
    pub other_stats: SideStats,
    /// TCP counters of the interval, for TCP flows.
    pub tcp: Option<TcpCounters>,
    /// TCP counters since the flow began, for TCP flows.
    pub tcp_total: Option<TcpCounters>,
}

/// A flow's earlier digests (see [`FlowView::digest_prev`]): the first
/// one, computed on demand (a SHA-1 of the flow's identity, paid only for
/// records encoded), and the one a `flow` record carried before detection
/// learnt more, if it did.
#[derive(Clone, Copy)]
pub struct DigestPrev<'a> {
    /// Computes the first digest.
    pub first: &'a dyn Fn() -> [u8; 20],
    /// The digest between the first and the current one.
    pub then: Option<[u8; 20]>,
}

impl DigestPrev<'_> {
    /// The digests, oldest first.
    pub fn all(&self) -> impl Iterator<Item = [u8; 20]> + '_ {
        std::iter::once((self.first)()).chain(self.then)
    }
}

impl std::fmt::Debug for DigestPrev<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.all()).finish()
    }
}

/// Why a flow left the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PurgeReason {
    /// A TCP flow that saw FIN both ways, or RST, then stayed quiet.
    Closed,
    /// Idle past its timeout, evicted, or still open at shutdown.
    Expired,
}

impl PurgeReason {
    /// The wire value of `reason`.
    pub const fn as_str(self) -> &'static str {
        match self {
            PurgeReason::Closed => "closed",
            PurgeReason::Expired => "expired",
        }
    }
}

/// What happened to a flow; each becomes one record of the core plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowEvent {
    /// Detection completed or gave up: the `flow` record.
    Detected,
    /// The flow saw packets in the interval that just ended: `flow_stats`.
    Stats,
    /// The flow left the table: `flow_purge`.
    Purged {
        /// Why.
        reason: PurgeReason,
        /// True when it was evicted to make room (`max_flows`).
        evicted: bool,
    },
}
