//! flowstat-sinks: outputs for records, and the runtime that feeds them.
//!
//! [`SinkRuntime`] gives every sink its own thread and bounded queue and
//! fans each encoded record out to the sinks that subscribed to its type.
//! Each sink is one [`Sink`](flowstat_core::Sink) in a module of its own:
//! stdout, a rotating file, a socket server (Unix or TCP) and a ZeroMQ PUB
//! socket; `lines` is the newline framing that stdout and file share.
#![deny(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod file;
mod lines;
mod runtime;
mod socket;
mod stdout;
#[cfg(feature = "zmq")]
mod zeromq;

pub use file::{FileOptions, FileSink, FsyncPolicy};
pub use runtime::{SinkOptions, SinkRuntime};
pub use socket::{Endpoint as SocketEndpoint, Framing as SocketFraming, SocketOptions, SocketSink};
pub use stdout::StdoutSink;
#[cfg(feature = "zmq")]
pub use zeromq::{ZmqMode, ZmqOptions, ZmqSink};
