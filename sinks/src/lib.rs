//! flowstat-sinks: outputs for records, their configuration, and the
//! runtime that feeds them.
//!
//! [`SinkRuntime`] gives every sink its own thread and bounded queue and
//! fans each encoded record out to the sinks that subscribed to its type.
//! Each sink is a [`Sink`](flowstat_core::Sink) in a module of its own,
//! behind a cargo feature: stdout, a rotating file, a socket server (Unix
//! or TCP), a ZeroMQ PUB socket, a Kafka producer, an IPFIX (or NetFlow
//! v9) exporter, an MQTT publisher and HTTP POST of NDJSON batches;
//! `lines` is the newline framing that stdout, file and HTTP share, `tls`
//! the rustls set-up of MQTT and HTTP, `url` their URL check.
//! [`MemorySink`] keeps records in memory, for tests and embedding. Next
//! to each sink is its `[[sink]]` configuration; [`SinkSection`] reads
//! and checks a `[[sink]]` table and builds its sink (see the `config`
//! module for adding a sink type).
//! Reading the configuration file, and choosing where records go when
//! none is configured, are flowstatd's.
#![deny(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod config;
pub mod dirs;
#[cfg(feature = "file")]
mod file;
#[cfg(feature = "http")]
mod http;
#[cfg(feature = "ipfix")]
mod ipfix;
#[cfg(feature = "kafka")]
mod kafka;
#[cfg(any(feature = "file", feature = "stdout", feature = "http"))]
#[cfg_attr(
    not(all(feature = "file", feature = "stdout")),
    allow(dead_code, reason = "parts of the framing serve only some of them")
)]
mod lines;
mod memory;
#[cfg(feature = "mqtt")]
mod mqtt;
mod runtime;
#[cfg(feature = "socket")]
mod socket;
#[cfg(feature = "stdout")]
mod stdout;
#[cfg(any(feature = "mqtt", feature = "http"))]
mod tls;
#[cfg(any(feature = "mqtt", feature = "http"))]
mod url;
#[cfg(feature = "zmq")]
mod zeromq;

pub use config::{BuildSink, ConfigProblem, SinkConfig, SinkContext, SinkSection, SinkType};
#[cfg(feature = "file")]
pub use file::{FileConfig, FileOptions, FileSink, FsyncPolicy};
#[cfg(feature = "http")]
pub use http::{HttpAuth, HttpConfig, HttpOptions, HttpSink};
#[cfg(feature = "ipfix")]
pub use ipfix::{IpfixConfig, IpfixOptions, IpfixSink, IpfixVersion};
#[cfg(feature = "kafka")]
pub use kafka::{KafkaAcks, KafkaCompression, KafkaConfig, KafkaOptions, KafkaSink};
pub use memory::MemorySink;
#[cfg(feature = "mqtt")]
pub use mqtt::{MqttConfig, MqttOptions, MqttSink, Qos};
pub use runtime::{SinkOptions, SinkRuntime};
#[cfg(feature = "socket")]
pub use socket::{
    Endpoint as SocketEndpoint, Framing as SocketFraming, SocketConfig, SocketOptions, SocketSink,
};
#[cfg(feature = "stdout")]
pub use stdout::{StdoutConfig, StdoutSink};
#[cfg(feature = "zmq")]
pub use zeromq::{ZmqConfig, ZmqMode, ZmqOptions, ZmqSink};

/// Warns when sink `name` listens on `addr` beyond loopback, where any
/// host that reaches it reads every record, or (`token`) sees the token
/// and the records go by in clear.
#[cfg(any(feature = "socket", feature = "zmq"))]
fn warn_if_exposed(name: &str, addr: std::net::SocketAddr, token: bool) {
    if addr.ip().is_loopback() {
        return;
    }
    if token {
        tracing::warn!(
            "{name}: listening on {addr}, beyond loopback: clients must send the token, but it \
             and the records cross the network unencrypted (tunnel the port, e.g. ssh -L, or \
             firewall it)"
        );
    } else {
        tracing::warn!(
            "{name}: listening on {addr}, beyond loopback, without authentication: any host \
             that reaches it reads every record (listen on 127.0.0.1, or \
             firewall the port)"
        );
    }
}
