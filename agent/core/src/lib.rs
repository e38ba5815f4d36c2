//! flowstat-core: the types every room of flowstat shares and the three
//! contracts that connect them.
//!
//! - [`CaptureSource`] lends [`Frame`]s (pcap files, libpcap, AF_XDP).
//! - The decoder turns a frame into a [`PacketMeta`]; the flow table turns
//!   packets into [`FlowView`]s and [`FlowEvent`]s.
//! - A [`Plugin`] turns flow events and interval reports into [`Record`]s
//!   (encoded once, as JSON), and every [`Sink`] writes the records it
//!   subscribed to.
//!
//! This crate does no I/O and reads no clock: every time in it is a
//! [`Timestamp`] that came from a packet.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod analytics;
mod capture;
mod category;
mod detection;
mod flow;
mod frame;
mod hex;
mod key;
mod packet;
mod plugin;
pub mod protocol;
mod record;
mod sink;
mod stats;
mod time;

pub use analytics::Analytics;
pub use capture::{Batch, CaptureError, CaptureSource, CaptureStats};
pub use category::Category;
pub use detection::{
    Classifier, Dhcp, FlowInfo, Http, Metadata, Outcome, PortGuess, Ssh, Ssl, Stun, wire_text,
};
pub use flow::{
    AddrClass, Detection, DigestPrev, Endpoint, FlowEvent, FlowView, OtherType, PurgeReason,
    SideStats, TcpCounters,
};
pub use frame::{Frame, LinkType};
pub use hex::{digest_hex, hex, hex_digits, mac_text};
pub use key::{FlowKey, Side};
pub use packet::{DecodeError, Fragment, Layers, PacketMeta, TcpInfo, ip_addr};
pub use plugin::{Plugin, Snapshot, SourceInfo};
pub use protocol::Protocol;
pub use record::{GrowingKindSet, KindSet, Record, RecordKind, Records};
pub use sink::{Delivery, Settled, Sink, SinkError};
pub use stats::{
    AgentStatus, CaptureStatus, InterfaceCounters, InterfaceReport, KernelCounters, SinkStatus,
};
pub use time::Timestamp;

/// The agent's version, as reported in `agent_status` and `agent_hello`.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");
