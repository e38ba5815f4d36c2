use std::collections::HashSet;
use std::ffi::{c_int, c_void};

use flowstat_core::{Delivery, Record, Sink, SinkError};

mod config;

pub use config::ZmqConfig;

/// How the PUB socket reaches its subscribers; the config's `mode` says
/// `"bind"` or `"connect"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZmqMode {
    /// Subscribers connect to the agent's endpoint.
    Bind,
    /// The agent connects to a collector's endpoint.
    Connect,
}

/// Settings of a [`ZmqSink`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZmqOptions {
    /// `tcp://HOST:PORT`, `ipc:///PATH`, or anything else libzmq takes.
    pub endpoint: String,
    /// Bind (the default) or connect.
    pub mode: ZmqMode,
    /// Messages libzmq queues per subscriber before the sink holds back.
    pub send_hwm: i32,
    /// Subscriptions to wait for before the first record is sent (records
    /// wait in the sink's queue until then).
    pub wait_for_subscribers: usize,
}

impl ZmqOptions {
    /// Binds `endpoint`, a high-water mark of 10,000 messages, and sending
    /// from the first subscription on.
    pub fn new(endpoint: &str) -> Self {
        ZmqOptions {
            endpoint: endpoint.to_owned(),
            mode: ZmqMode::Bind,
            send_hwm: 10_000,
            wait_for_subscribers: 1,
        }
    }
}

/// A ZeroMQ publisher: each record is a message of two frames, the record
/// type (the topic subscribers filter on) and the JSON.
///
/// The socket is an XPUB, so the sink sees subscriptions come and go. It
/// says it has no consumer while no topic is subscribed (records then
/// wait in its queue rather than vanish, as they would on a plain PUB),
/// and it runs in libzmq's no-drop mode: when a subscriber is a full
/// high-water mark behind, sends are held back and the sink's own queue
/// takes the overflow, dropping and counting its oldest records. What
/// libzmq had already queued for a subscriber that then disconnects is
/// lost without a count: ZeroMQ's PUB/SUB has no acknowledgements.
pub struct ZmqSink {
    name: String,
    options: ZmqOptions,
    socket: Option<(zmq::Context, zmq::Socket)>,
    topics: HashSet<Vec<u8>>,
    subscriptions_seen: usize,
}

impl ZmqSink {
    /// A publisher on `options.endpoint`, opened by the runtime.
    pub fn new(options: ZmqOptions) -> Self {
        ZmqSink {
            name: format!("zmq:{}", options.endpoint),
            options,
            socket: None,
            topics: HashSet::new(),
            subscriptions_seen: 0,
        }
    }

    fn error(&self, context: impl Into<String>, e: zmq::Error) -> SinkError {
        SinkError::io(
            &self.name,
            context,
            std::io::Error::from_raw_os_error(e.to_raw()),
        )
    }
}

/// Sets libzmq's `ZMQ_XPUB_NODROP`, which the zmq crate does not wrap.
#[allow(unsafe_code)]
fn set_xpub_nodrop(socket: &mut zmq::Socket) -> Result<(), zmq::Error> {
    let on: c_int = 1;
    // SAFETY: the socket is open for the duration of the call, and the
    // option value is a live c_int whose size is passed with it.
    // zmq_errno reads the calling thread's errno.
    unsafe {
        match zmq_sys::zmq_setsockopt(
            socket.as_mut_ptr(),
            zmq_sys::ZMQ_XPUB_NODROP as c_int,
            (&raw const on).cast::<c_void>(),
            size_of::<c_int>(),
        ) {
            0 => Ok(()),
            _ => Err(zmq::Error::from_raw(zmq_sys::zmq_errno())),
        }
    }
}

impl Sink for ZmqSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn open(&mut self) -> Result<(), SinkError> {
        self.socket = None;
        self.topics.clear();
        let ctx = zmq::Context::new();
        let endpoint = &self.options.endpoint;
        let mut socket = ctx
            .socket(zmq::XPUB)
            .map_err(|e| self.error("cannot create a ZeroMQ socket", e))?;
        let setup = socket
            .set_xpub_verbose(true)
            .and_then(|()| set_xpub_nodrop(&mut socket))
            .and_then(|()| socket.set_sndhwm(self.options.send_hwm))
            // IPv6 addresses too; `*` then binds both families.
            .and_then(|()| socket.set_ipv6(true))
            // What is queued gets a second to leave at shutdown.
            .and_then(|()| socket.set_linger(1000));
        setup.map_err(|e| self.error("cannot set up the ZeroMQ socket", e))?;
        match self.options.mode {
            ZmqMode::Bind => {
                if let Some(path) = endpoint
                    .strip_prefix("ipc://")
                    .filter(|p| p.starts_with('/'))
                {
                    crate::dirs::make_parent(std::path::Path::new(path), None).map_err(|e| {
                        SinkError::io(
                            &self.name,
                            format!("cannot bind {endpoint}: cannot make its directory"),
                            e,
                        )
                    })?;
                }
                socket
                    .bind(endpoint)
                    .map_err(|e| self.error(format!("cannot bind {endpoint}"), e))?;
                let bound = socket.get_last_endpoint().ok().and_then(Result::ok);
                let addr = bound
                    .as_deref()
                    .and_then(|b| b.strip_prefix("tcp://"))
                    .and_then(|a| a.parse::<std::net::SocketAddr>().ok());
                if let Some(addr) = addr {
                    crate::warn_if_exposed(&self.name, addr, false);
                }
            }
            ZmqMode::Connect => socket
                .connect(endpoint)
                .map_err(|e| self.error(format!("cannot connect to {endpoint}"), e))?,
        }
        self.socket = Some((ctx, socket));
        Ok(())
    }

    /// Reads the subscriptions that came and went.
    fn poll(&mut self) -> Result<bool, SinkError> {
        let Some((_, socket)) = &self.socket else {
            return Ok(false);
        };
        loop {
            match socket.recv_bytes(zmq::DONTWAIT) {
                Ok(msg) => match msg.split_first() {
                    Some((1, topic)) => {
                        self.subscriptions_seen += 1;
                        if self.topics.insert(topic.to_vec()) {
                            tracing::info!(
                                "{}: subscription to {:?}",
                                self.name,
                                topic.escape_ascii().to_string()
                            );
                        }
                    }
                    Some((0, topic)) if self.topics.remove(topic) => {
                        tracing::info!(
                            "{}: no subscriber left for {:?}",
                            self.name,
                            topic.escape_ascii().to_string()
                        );
                    }
                    _ => {}
                },
                Err(zmq::Error::EAGAIN) => break,
                Err(e) => return Err(self.error("cannot read subscriptions", e)),
            }
        }
        Ok(self.subscriptions_seen >= self.options.wait_for_subscribers && !self.topics.is_empty())
    }

    fn write(&mut self, record: &Record) -> Result<Delivery, SinkError> {
        let Some((_, socket)) = &self.socket else {
            return Ok(Delivery::Retry);
        };
        let topic = record.kind.as_str().as_bytes();
        match socket.send_multipart([topic, &record.json[..]], zmq::DONTWAIT) {
            Ok(()) => Ok(Delivery::Sent),
            Err(zmq::Error::EAGAIN) => Ok(Delivery::Retry),
            Err(e) => Err(self.error("send failed", e)),
        }
    }

    /// Closes the socket: libzmq delivers what it queued for at most the
    /// linger time, one second.
    fn close(&mut self) -> Result<(), SinkError> {
        self.socket = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowstat_core::RecordKind;
    use std::time::{Duration, Instant};

    fn record(kind: RecordKind, n: u32) -> Record {
        Record {
            kind,
            json: format!("{{\"n\":{n}}}").into_bytes(),
        }
    }

    /// Polls until the sink says it has a consumer.
    fn wait_ready(sink: &mut ZmqSink) {
        let start = Instant::now();
        while !sink.poll().unwrap() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no subscriber seen"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn subscribers_get_their_topics_and_are_tracked() {
        let (endpoint, socket) = ipc("zmq");
        let mut sink = ZmqSink::new(ZmqOptions::new(&endpoint));
        sink.open().unwrap();
        assert!(!sink.poll().unwrap(), "no subscriber yet");
        let ctx = zmq::Context::new();
        let sub = ctx.socket(zmq::SUB).unwrap();
        sub.set_subscribe(b"flow_purge").unwrap();
        sub.set_rcvtimeo(5000).unwrap();
        sub.connect(&endpoint).unwrap();
        wait_ready(&mut sink);
        for (i, kind) in [
            RecordKind::Flow,
            RecordKind::FlowPurge,
            RecordKind::FlowPurge,
        ]
        .into_iter()
        .enumerate()
        {
            assert_eq!(sink.write(&record(kind, i as u32)).unwrap(), Delivery::Sent);
        }
        for n in [1, 2] {
            let msg = sub.recv_multipart(0).unwrap();
            assert_eq!(
                msg,
                vec![
                    b"flow_purge".to_vec(),
                    format!("{{\"n\":{n}}}").into_bytes()
                ]
            );
        }
        drop(sub);
        let start = Instant::now();
        while sink.poll().unwrap() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "unsubscription not seen"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        sink.close().unwrap();
        let _ = std::fs::remove_file(socket);
    }

    /// An IPC endpoint in the temporary directory, and its socket file,
    /// which the test removes when done (libzmq left it behind).
    fn ipc(name: &str) -> (String, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!("flowstat-{name}-{}", std::process::id()));
        (format!("ipc://{}", path.display()), path)
    }

    /// A TCP port free on `[::1]` and `127.0.0.1` a moment ago.
    fn free_port() -> u16 {
        loop {
            let v6 = std::net::TcpListener::bind("[::1]:0").unwrap();
            let port = v6.local_addr().unwrap().port();
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }

    #[test]
    fn ipv6_and_ipv4_subscribers_reach_tcp_endpoints() {
        for (bind, connect) in [("[::1]", "[::1]"), ("*", "[::1]"), ("*", "127.0.0.1")] {
            let port = free_port();
            let mut sink = ZmqSink::new(ZmqOptions::new(&format!("tcp://{bind}:{port}")));
            sink.open().unwrap();
            let ctx = zmq::Context::new();
            let sub = ctx.socket(zmq::SUB).unwrap();
            sub.set_ipv6(true).unwrap();
            sub.set_subscribe(b"").unwrap();
            sub.set_rcvtimeo(5000).unwrap();
            sub.connect(&format!("tcp://{connect}:{port}")).unwrap();
            wait_ready(&mut sink);
            let sent = sink.write(&record(RecordKind::Flow, 7)).unwrap();
            assert_eq!(sent, Delivery::Sent, "{bind} <- {connect}");
            let msg = sub.recv_multipart(0).unwrap();
            assert_eq!(msg[1], b"{\"n\":7}", "{bind} <- {connect}");
            sink.close().unwrap();
        }
    }

    #[test]
    fn a_subscriber_that_does_not_read_holds_sends_back() {
        let (endpoint, socket) = ipc("zmq-hwm");
        let mut options = ZmqOptions::new(&endpoint);
        options.send_hwm = 10;
        let mut sink = ZmqSink::new(options);
        sink.open().unwrap();
        let ctx = zmq::Context::new();
        let sub = ctx.socket(zmq::SUB).unwrap();
        sub.set_rcvhwm(10).unwrap();
        sub.set_subscribe(b"").unwrap();
        sub.connect(&endpoint).unwrap();
        wait_ready(&mut sink);
        let big = Record {
            kind: RecordKind::FlowStats,
            json: vec![b'x'; 64 << 10],
        };
        let mut sent = 0;
        let held = (0..100_000).any(|_| match sink.write(&big).unwrap() {
            Delivery::Sent => {
                sent += 1;
                false
            }
            Delivery::Retry => true,
            Delivery::Pending => panic!("a PUB socket does not hold records"),
        });
        assert!(held, "never held back");
        assert!(sent >= 10, "held back after {sent}");
        sink.close().unwrap();
        let _ = std::fs::remove_file(socket);
    }
}
