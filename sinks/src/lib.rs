//! flowstat-sinks: outputs for records, and the runtime that feeds them.
//!
//! [`SinkRuntime`] gives every sink its own thread and bounded queue and
//! fans each encoded record out to the sinks that subscribed to its type.
//! Each other module is one [`Sink`](flowstat_core::Sink): stdout, a
//! rotating file, a socket server (Unix or TCP) and a ZeroMQ PUB socket.
#![deny(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod file;
mod lines;
mod runtime;
mod socket;
#[cfg(feature = "zmq")]
mod zeromq;

pub use file::{FileOptions, FileSink, FsyncPolicy};
pub use lines::StdoutSink;
pub use runtime::{SinkOptions, SinkRuntime};
pub use socket::{Endpoint as SocketEndpoint, Framing as SocketFraming, SocketOptions, SocketSink};
#[cfg(feature = "zmq")]
pub use zeromq::{ZmqMode, ZmqOptions, ZmqSink};
