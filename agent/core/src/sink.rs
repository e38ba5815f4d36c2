use std::io;
use std::sync::Arc;

use crate::Record;

/// An output for records: stdout, a file, a socket server, ZeroMQ...
///
/// A sink is driven by one thread of the sink runtime, which owns its
/// bounded queue: records wait there while the sink cannot deliver (not
/// open, no consumer, back-pressure), and the oldest are dropped and
/// counted when it is full. The runtime calls [`open`](Sink::open) first
/// and again, with backoff, after [`open`](Sink::open) or
/// [`write`](Sink::write) failed; [`poll`](Sink::poll) at least every
/// 100 ms; [`flush`](Sink::flush) whenever its queue is empty; and
/// [`close`](Sink::close) at the end.
///
/// A sink writes whole records: if it fails part-way it must not leave a
/// partial record where a consumer will read it.
pub trait Sink: Send {
    /// The sink's name, used in logs and in `agent_status`.
    fn name(&self) -> &str;

    /// Opens the destination: creates the file, binds or connects the
    /// socket. Called again after a failure; it must then start afresh.
    fn open(&mut self) -> Result<(), SinkError>;

    /// Does the sink's background work (accepts clients, reads
    /// subscriptions, pushes out buffered bytes) and says whether a record
    /// written now would reach a consumer. Records wait in the queue while
    /// it says no.
    fn poll(&mut self) -> Result<bool, SinkError> {
        Ok(true)
    }

    /// Writes one record, or says to hold it and try again later
    /// ([`Delivery::Retry`]: no consumer, or the destination is full).
    fn write(&mut self, record: &Record) -> Result<Delivery, SinkError>;

    /// Writes a record the runtime shares between its sinks: as
    /// [`write`](Sink::write), unless the sink keeps records, which then
    /// keeps this one instead of a copy.
    fn write_shared(&mut self, record: &Arc<Record>) -> Result<Delivery, SinkError> {
        self.write(record)
    }

    /// Pushes buffered records towards their destination without waiting
    /// on a slow consumer.
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    /// Called once, at shutdown, after the last record: delivers what is
    /// still buffered, waiting at most about a second for slow consumers.
    fn close(&mut self) -> Result<(), SinkError> {
        self.flush()
    }

    /// Consumers this sink disconnected since start because they did not
    /// keep up (socket clients); 0 for sinks without consumers.
    fn disconnected(&self) -> u64 {
        0
    }

    /// What became, since the last call, of records [`write`](Sink::write)
    /// took as [`Delivery::Pending`]: acknowledged by the peer, or given
    /// up on. Called after every [`poll`](Sink::poll) and after
    /// [`close`](Sink::close); records still pending after `close` count
    /// as dropped.
    fn settled(&mut self) -> Settled {
        Settled::default()
    }
}

/// Outcomes of pending records (see [`Sink::settled`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settled {
    /// Acknowledged by the peer (a broker, a collector).
    pub sent: u64,
    /// Given up on: refused, or out of retries.
    pub dropped: u64,
}

/// What became of a record handed to [`Sink::write`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Written: at least one consumer will get it.
    Sent,
    /// Not written: keep it, and hand it over again later.
    Retry,
    /// Taken, and held by the sink until its peer acknowledges it (a
    /// Kafka delivery report, an MQTT PUBACK, an HTTP 2xx); its outcome
    /// comes from [`Sink::settled`]. A sink bounds what it holds this
    /// way and says [`Delivery::Retry`] when full.
    Pending,
}

/// Why a sink could not deliver.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Opening or writing failed.
    #[error("sink {sink}: {context}")]
    Io {
        /// The sink's name.
        sink: String,
        /// What it was doing: "cannot bind ...", "write failed".
        context: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl SinkError {
    /// An I/O failure of `sink` while doing `context`.
    pub fn io(sink: &str, context: impl Into<String>, source: io::Error) -> Self {
        SinkError::Io {
            sink: sink.to_owned(),
            context: context.into(),
            source,
        }
    }
}
