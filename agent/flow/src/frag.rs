//! Attribution of IP fragments to their datagram's flow (SPEC section 2).
//!
//! The first fragment carries the ports, so it finds the flow; later
//! fragments are matched to it by (VLAN, source, destination, protocol,
//! fragment id). Fragments that arrive before their first fragment are held
//! as counts and credited when it comes; if it never comes they are
//! reported as discarded when the entry times out.

use flowstat_core::{PacketMeta, Timestamp};
use foldhash::fast::FixedState;
use hashbrown::HashMap;

use flowstat_core::FlowKey;
use flowstat_core::Side;

/// Most datagrams tracked at once; beyond it a new datagram's later
/// fragments are discarded at once rather than held.
pub(crate) const MAX_DATAGRAMS: usize = 65_536;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct DatagramKey {
    ip_version: u8,
    protocol: u8,
    vlan_id: u16,
    id: u32,
    src: [u8; 16],
    dst: [u8; 16],
}

impl DatagramKey {
    pub(crate) fn of(pkt: &PacketMeta<'_>, id: u32) -> Self {
        DatagramKey {
            ip_version: pkt.ip_version,
            protocol: pkt.protocol,
            vlan_id: pkt.vlan_id,
            id,
            src: pkt.src_ip,
            dst: pkt.dst_ip,
        }
    }
}

/// What is known about one fragmented datagram.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Datagram {
    /// The first fragment was seen: later ones belong to this flow and side.
    Attributed {
        key: FlowKey,
        side: Side,
        seen: Timestamp,
    },
    /// Only later fragments so far: held as counts.
    Pending {
        packets: u64,
        bytes: u64,
        /// When the first of them came, and the latest.
        first: Timestamp,
        seen: Timestamp,
        mac: [u8; 6],
    },
}

impl Datagram {
    fn seen(&self) -> Timestamp {
        match *self {
            Datagram::Attributed { seen, .. } | Datagram::Pending { seen, .. } => seen,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Fragments {
    pub(crate) map: HashMap<DatagramKey, Datagram, FixedState>,
}

impl Fragments {
    /// Removes datagrams not seen since `deadline`; returns the packets and
    /// bytes of the pending ones, which are lost.
    pub(crate) fn expire(&mut self, deadline: Timestamp) -> (u64, u64) {
        let mut lost = (0, 0);
        self.map.retain(|_, d| {
            if d.seen() >= deadline {
                return true;
            }
            if let Datagram::Pending { packets, bytes, .. } = *d {
                lost.0 += packets;
                lost.1 += bytes;
            }
            false
        });
        lost
    }
}
