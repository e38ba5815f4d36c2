//! flowstat-flow: the flow table.
//!
//! Packets ([`flowstat_core::PacketMeta`]) go in through
//! [`FlowTable::observe`]; flow events ([`flowstat_core::FlowEvent`] with a
//! [`flowstat_core::FlowView`]) come out through a callback, at the moments
//! SPEC sections 2 and 3 define: `Detected` when detection concludes,
//! `Stats` at each [`FlowTable::tick`] for flows that saw packets, `Purged`
//! on close, idle expiry, eviction, and [`FlowTable::drain`].
//!
//! The table is sans-IO: it never reads a clock or touches a socket. Time
//! comes in with every packet and every tick, so the same packets always
//! give the same events. It does not decode packets and does not look at
//! payload; DPI plugs in later.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod digest;
mod frag;
mod locals;
mod macs;
mod slab;
mod slot_key;
mod table;
mod tcp;

pub use locals::LocalNetworks;
pub use table::{FlowConfig, FlowLimit, FlowTable, Observed, TableCounters};
