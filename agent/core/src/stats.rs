use std::ops::AddAssign;

use crate::{DecodeError, Timestamp};

/// Packet counters of one capture interface for one interval (SPEC section
/// 6, `interface_stats`). Every field counts frames unless its name says
/// bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InterfaceCounters {
    /// Frames received.
    pub raw: u64,
    /// Frames with an Ethernet header.
    pub ethernet: u64,
    /// Frames with at least one VLAN tag.
    pub vlan: u64,
    /// Frames with an MPLS label stack.
    pub mpls: u64,
    /// Frames with a PPPoE session header.
    pub pppoe: u64,
    /// Frames carrying IP.
    pub ip: u64,
    /// Wire bytes of the frames carrying IP.
    pub ip_bytes: u64,
    /// Wire bytes of all frames.
    pub wire_bytes: u64,
    /// TCP packets.
    pub tcp: u64,
    /// UDP packets.
    pub udp: u64,
    /// ICMP and ICMPv6 packets.
    pub icmp: u64,
    /// IGMP packets.
    pub igmp: u64,
    /// IP fragments.
    pub fragmented: u64,
    /// Frames not attributed to any flow (non-IP, undecodable, fragments
    /// whose first fragment never came).
    pub discarded: u64,
    /// Wire bytes of the discarded frames.
    pub discarded_bytes: u64,
    /// Largest frame (wire length).
    pub largest_bytes: u64,
    /// TCP sequence errors (SPEC section 3).
    pub tcp_seq_errors: u64,
    /// TCP segments with RST.
    pub tcp_resets: u64,
    /// Frames the capture layer dropped.
    pub capture_dropped: u64,
    /// Frames a capture filter removed.
    pub capture_filtered: u64,
    /// Frames dropped because a worker queue was full.
    pub queue_dropped: u64,
    /// Frames with a decode problem, per [`DecodeError`] kind (indexed by
    /// [`DecodeError::index`]).
    pub decode_issues: [u64; DecodeError::ALL.len()],
}

impl AddAssign<&InterfaceCounters> for InterfaceCounters {
    /// Adds another part of the same interval (another capture thread's,
    /// or the flow workers'); `largest_bytes` takes the larger.
    fn add_assign(&mut self, b: &InterfaceCounters) {
        let InterfaceCounters {
            raw,
            ethernet,
            vlan,
            mpls,
            pppoe,
            ip,
            ip_bytes,
            wire_bytes,
            tcp,
            udp,
            icmp,
            igmp,
            fragmented,
            discarded,
            discarded_bytes,
            largest_bytes,
            tcp_seq_errors,
            tcp_resets,
            capture_dropped,
            capture_filtered,
            queue_dropped,
            decode_issues,
        } = b;
        // Destructured above so that a new field cannot be forgotten here.
        self.raw += raw;
        self.ethernet += ethernet;
        self.vlan += vlan;
        self.mpls += mpls;
        self.pppoe += pppoe;
        self.ip += ip;
        self.ip_bytes += ip_bytes;
        self.wire_bytes += wire_bytes;
        self.tcp += tcp;
        self.udp += udp;
        self.icmp += icmp;
        self.igmp += igmp;
        self.fragmented += fragmented;
        self.discarded += discarded;
        self.discarded_bytes += discarded_bytes;
        self.largest_bytes = self.largest_bytes.max(*largest_bytes);
        self.tcp_seq_errors += tcp_seq_errors;
        self.tcp_resets += tcp_resets;
        self.capture_dropped += capture_dropped;
        self.capture_filtered += capture_filtered;
        self.queue_dropped += queue_dropped;
        for (x, y) in self.decode_issues.iter_mut().zip(decode_issues) {
            *x += y;
        }
    }
}

/// The kernel's counters of a live interface (`/sys/class/net/IF/statistics`)
/// and the rates over the interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelCounters {
    /// Bytes received, since the interface came up.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Packets dropped on receive.
    pub rx_drops: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Send errors.
    pub tx_errors: u64,
    /// Packets dropped on send.
    pub tx_drops: u64,
    /// Receive rate over the interval, bytes per second.
    pub rx_bytes_per_sec: u64,
    /// Send rate over the interval, bytes per second.
    pub tx_bytes_per_sec: u64,
    /// Receive rate over the interval, packets per second.
    pub rx_packets_per_sec: u64,
    /// Send rate over the interval, packets per second.
    pub tx_packets_per_sec: u64,
}

/// One interface's entry in an interval report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceReport {
    /// Interface (or offline source) name.
    pub name: String,
    /// Counters for the interval.
    pub counters: InterfaceCounters,
    /// The kernel's counters, for live interfaces.
    pub kernel: Option<KernelCounters>,
}

/// Delivery counters of one sink.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkStatus {
    /// The sink's name.
    pub name: String,
    /// Records waiting in its queue.
    pub queued: u64,
    /// Records delivered since start.
    pub sent: u64,
    /// Records dropped since start: its queue overflowed, a write failed,
    /// or no consumer took them before shutdown.
    pub dropped: u64,
    /// Of `dropped`, those dropped while the sink worked but had no
    /// consumer (a socket or ZeroMQ sink nobody was connected to).
    pub unconsumed: u64,
    /// At its last poll the sink worked but had no consumer (a socket or
    /// ZeroMQ sink waiting for a client): what it has `queued` waits for
    /// one.
    pub no_consumer: bool,
    /// Consumers disconnected since start for falling behind.
    pub disconnected: u64,
}

/// Counters of one capture source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureStatus {
    /// The source's name.
    pub name: String,
    /// Frames received since start.
    pub received: u64,
    /// Frames dropped by the capture layer since start.
    pub dropped: u64,
}

/// Agent-wide status at the end of an interval (SPEC section 6).
///
/// Flow counts of the interval (`flows_*`) count what happened during the
/// interval; `flow_count` is the table size at its end.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentStatus {
    /// End of the interval.
    pub timestamp: Timestamp,
    /// Interval length in seconds.
    pub update_interval: u64,
    /// Seconds since the agent started (packet time in replay).
    pub uptime: u64,
    /// CPU cores available.
    pub cpu_cores: u64,
    /// User CPU time used since start, milliseconds.
    pub cpu_user_ms: u64,
    /// System CPU time used since start, milliseconds.
    pub cpu_system_ms: u64,
    /// `cpu_user_ms` at the previous report.
    pub cpu_user_prev_ms: u64,
    /// `cpu_system_ms` at the previous report.
    pub cpu_system_prev_ms: u64,
    /// Flows in the table.
    pub flow_count: u64,
    /// `flow_count` at the previous report.
    pub flow_count_prev: u64,
    /// Flows that saw a packet during the interval.
    pub flows_active: u64,
    /// Flows purged as expired (idle or evicted) during the interval.
    pub flows_expired: u64,
    /// TCP flows closed and waiting for `ttl_closed_tcp_flow` to pass.
    pub flows_expiring: u64,
    /// Flows purged (closed or expired) during the interval.
    pub flows_purged: u64,
    /// Flows evicted for `max_flows` during the interval.
    pub flows_evicted: u64,
    /// Peak resident set size, KiB.
    pub maxrss_kb: u64,
    /// `maxrss_kb` at the previous report.
    pub maxrss_kb_prev: u64,
    /// Resident set size, KiB.
    pub memrss_kb: u64,
    /// `memrss_kb` at the previous report.
    pub memrss_kb_prev: u64,
    /// Per-sink delivery counters.
    pub sinks: Vec<SinkStatus>,
    /// Per-capture counters.
    pub captures: Vec<CaptureStatus>,
}
