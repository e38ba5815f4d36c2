//! flowstat-sinks: outputs for records, their configuration, and the
//! runtime that feeds them.
//!
//! [`SinkRuntime`] gives every sink its own thread and bounded queue and
//! fans each encoded record out to the sinks that subscribed to its type.
//! Each sink is a [`Sink`](flowstat_core::Sink) in a module of its own,
//! behind a cargo feature: stdout, a rotating file, a socket server (Unix
//! or TCP), a ZeroMQ PUB socket, a Kafka producer and an IPFIX (or NetFlow v9)
//! exporter;
//! `lines` is the newline framing that stdout and file share.
//! [`MemorySink`] keeps records in memory, for tests and embedding. Next
//! to each sink is its `[[sink]]` configuration; [`SinkSection`] reads
//! and checks a `[[sink]]` table and builds its sink (see the `config`
//! module for adding a sink type).
//! Reading the configuration file, and choosing where records go when
//! none is configured, are flowstatd's.
#![deny(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod config;
#[cfg(feature = "file")]
mod file;
#[cfg(feature = "ipfix")]
mod ipfix;
#[cfg(feature = "kafka")]
mod kafka;
#[cfg(any(feature = "file", feature = "stdout"))]
#[cfg_attr(
    not(all(feature = "file", feature = "stdout")),
    allow(dead_code, reason = "parts of the framing serve only one of the two")
)]
mod lines;
mod memory;
mod runtime;
#[cfg(feature = "socket")]
mod socket;
#[cfg(feature = "stdout")]
mod stdout;
#[cfg(feature = "zmq")]
mod zeromq;

pub use config::{BuildSink, ConfigProblem, SinkConfig, SinkContext, SinkSection, SinkType};
#[cfg(feature = "file")]
pub use file::{FileConfig, FileOptions, FileSink, FsyncPolicy};
#[cfg(feature = "ipfix")]
pub use ipfix::{IpfixConfig, IpfixOptions, IpfixSink, IpfixVersion};
#[cfg(feature = "kafka")]
pub use kafka::{KafkaAcks, KafkaCompression, KafkaConfig, KafkaOptions, KafkaSink};
pub use memory::MemorySink;
pub use runtime::{SinkOptions, SinkRuntime};
#[cfg(feature = "socket")]
pub use socket::{
    Endpoint as SocketEndpoint, Framing as SocketFraming, SocketConfig, SocketOptions, SocketSink,
};
#[cfg(feature = "stdout")]
pub use stdout::{StdoutConfig, StdoutSink};
#[cfg(feature = "zmq")]
pub use zeromq::{ZmqConfig, ZmqMode, ZmqOptions, ZmqSink};
