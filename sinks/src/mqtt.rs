//! The MQTT sink: each record a PUBLISH to a topic made from a template
//! (`flowstat/{hostname}/{type}`), at QoS 0 or 1, over TCP or TLS.
//!
//! The packets are rumqttc's (its `mqttbytes` codec); the session is the
//! sink's own, on its thread, with non-blocking I/O: rumqttc's event loop
//! wants a thread and a tokio runtime of its own, writes out one packet
//! per system call, and after a reconnect with a clean session forgets
//! what the broker had not acknowledged, which this sink must account for.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use flowstat_core::{Delivery, Record, RecordKind, Settled, Sink, SinkError};
use rumqttc::mqttbytes::{self, QoS, v4};
use rustls::pki_types::ServerName;

mod config;

pub use config::MqttConfig;

/// How a record is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qos {
    /// QoS 0: sent once handed to the socket, lost if the connection
    /// drops before the broker read it.
    AtMostOnce,
    /// QoS 1: held until the broker's PUBACK, and published again after
    /// a reconnect until then (a subscriber may get it twice).
    AtLeastOnce,
}

/// Settings of an [`MqttSink`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqttOptions {
    /// The broker's host name or IP address.
    pub host: String,
    /// The broker's port.
    pub port: u16,
    /// TLS (`mqtts://`).
    pub tls: bool,
    /// With TLS, a PEM file of the CA certificates to trust instead of
    /// the Mozilla roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// The topic of each record: `{hostname}` and `{type}` replaced.
    pub topic: String,
    /// What `{hostname}` stands for.
    pub hostname: String,
    /// QoS 0 or 1.
    pub qos: Qos,
    /// The MQTT client id (`{hostname}` replaced).
    pub client_id: String,
    /// User name and password, if the broker asks for them.
    pub credentials: Option<(String, String)>,
    /// The longest the connection stays silent (a PINGREQ then goes at
    /// half of it); zero for none.
    pub keep_alive: Duration,
    /// How long connecting, the TLS handshake and the CONNACK may take.
    pub connect_timeout: Duration,
    /// Records written and not yet settled (acknowledged at QoS 1, handed
    /// to the socket at QoS 0), at most; then the sink says retry.
    pub inflight: usize,
}

impl MqttOptions {
    /// A plain connection to `host:port`, the default topic at QoS 1, a
    /// keep-alive of 30 s and 1,000 records in flight.
    pub fn new(host: &str, port: u16) -> Self {
        MqttOptions {
            host: host.to_owned(),
            port,
            tls: false,
            ca_file: None,
            topic: "flowstat/{hostname}/{type}".into(),
            hostname: String::new(),
            qos: Qos::AtLeastOnce,
            client_id: "flowstatd-{hostname}".into(),
            credentials: None,
            keep_alive: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            inflight: 1000,
        }
    }
}

/// Encoded bytes gathered before they are written out in one go.
const WRITE_BYTES: usize = 64 << 10;
/// Encoded bytes the sink holds at most before it says retry.
const HOLD_BYTES: usize = 4 << 20;
/// How long `close` waits for the broker to take what the sink holds.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// The largest packet read from the broker (acknowledgements are tiny).
const MAX_INCOMING: usize = 1 << 16;

/// An MQTT 3.1.1 publisher.
///
/// At QoS 1 a record is [`Delivery::Pending`] until the broker's PUBACK;
/// at most `inflight` are, and the sink says retry beyond. When the
/// connection drops, the runtime reopens the sink with backoff, and it
/// publishes again, first, every record not yet acknowledged: none is
/// lost that the broker did not take, and a subscriber may see one twice.
/// At QoS 0 a record is sent once its bytes were handed to the socket.
/// Records still held when the sink closes (after waiting a second for
/// the broker) are counted dropped by the runtime.
pub struct MqttSink {
    name: String,
    options: MqttOptions,
    /// The topic of each record kind, in [`RecordKind::ALL`]'s order.
    topics: Vec<String>,
    conn: Option<Conn>,
    /// Why the connection was lost in `write`; `poll` reports it.
    lost: Option<io::Error>,
    /// Records written and not settled, oldest first.
    held: VecDeque<Held>,
    next_pkid: u16,
    /// Encoded, not yet written.
    out: BytesMut,
    /// Read, not yet decoded.
    input: BytesMut,
    /// Bytes encoded on this connection.
    encoded: u64,
    /// Bytes of them written, and of those, gone to the socket (TLS may
    /// still hold some).
    written: u64,
    on_socket: u64,
    last_sent: Instant,
    ping_sent: Option<Instant>,
    settled: Settled,
}

/// A record the broker has not taken yet.
struct Held {
    record: Arc<Record>,
    /// Its packet id at QoS 1; 0 at QoS 0.
    pkid: u16,
    /// Where its bytes end, in the connection's `encoded` count.
    end: u64,
}

/// A record's JSON as a PUBLISH payload, without a copy.
struct Payload(Arc<Record>);

impl AsRef<[u8]> for Payload {
    fn as_ref(&self) -> &[u8] {
        &self.0.json
    }
}

impl MqttSink {
    /// A publisher to `options.host`, opened by the runtime.
    pub fn new(options: MqttOptions) -> Self {
        let scheme = if options.tls { "mqtts" } else { "mqtt" };
        let host = if options.host.contains(':') {
            format!("[{}]", options.host)
        } else {
            options.host.clone()
        };
        let topics = RecordKind::ALL
            .iter()
            .map(|k| {
                options
                    .topic
                    .replace("{hostname}", &options.hostname)
                    .replace("{type}", k.as_str())
            })
            .collect();
        MqttSink {
            name: format!("mqtt:{scheme}://{host}:{}", options.port),
            options,
            topics,
            conn: None,
            lost: None,
            held: VecDeque::new(),
            next_pkid: 0,
            out: BytesMut::new(),
            input: BytesMut::new(),
            encoded: 0,
            written: 0,
            on_socket: 0,
            last_sent: Instant::now(),
            ping_sent: None,
            settled: Settled::default(),
        }
    }

    fn error(&self, context: impl Into<String>, e: io::Error) -> SinkError {
        SinkError::io(&self.name, context, e)
    }

    fn qos(&self) -> QoS {
        match self.options.qos {
            Qos::AtMostOnce => QoS::AtMostOnce,
            Qos::AtLeastOnce => QoS::AtLeastOnce,
        }
    }

    /// Appends the PUBLISH of `record` to `out`; returns where it ends.
    fn encode(&mut self, record: &Arc<Record>, pkid: u16) -> io::Result<u64> {
        let index = RecordKind::ALL
            .iter()
            .position(|k| *k == record.kind)
            .unwrap_or_default();
        let publish = v4::Publish {
            dup: false,
            qos: self.qos(),
            retain: false,
            topic: self.topics[index].clone(),
            pkid,
            payload: Bytes::from_owner(Payload(Arc::clone(record))),
        };
        let n = publish.write(&mut self.out).map_err(invalid)?;
        self.encoded += n as u64;
        Ok(self.encoded)
    }

    /// The next packet id: 1..=65535, round. With at most 65,535 records
    /// held, acknowledged in order, the id is free again when it comes
    /// round.
    fn next_pkid(&mut self) -> u16 {
        self.next_pkid = self.next_pkid.checked_add(1).unwrap_or(1);
        self.next_pkid
    }

    /// Writes out what is encoded, as far as the socket takes it now.
    fn send(&mut self) -> io::Result<()> {
        let Some(conn) = &mut self.conn else {
            return Ok(());
        };
        while !self.out.is_empty() {
            match conn.write_some(&self.out) {
                Ok(0) => break,
                Ok(n) => {
                    self.out.advance(n);
                    self.written += n as u64;
                    self.last_sent = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        conn.push_tls()?;
        if conn.idle() {
            self.on_socket = self.written;
        }
        Ok(())
    }

    /// Reads what the broker sent and settles the records it took.
    fn receive(&mut self) -> io::Result<()> {
        let Some(conn) = &mut self.conn else {
            return Ok(());
        };
        loop {
            match conn.read_some(&mut self.input) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the broker closed the connection",
                    ));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        loop {
            match v4::Packet::read(&mut self.input, MAX_INCOMING) {
                Ok(v4::Packet::PubAck(ack)) => self.acknowledged(ack.pkid),
                Ok(v4::Packet::PingResp) => self.ping_sent = None,
                Ok(other) => tracing::debug!("{}: ignored {other:?}", self.name),
                Err(mqttbytes::Error::InsufficientBytes(_)) => return Ok(()),
                Err(e) => return Err(invalid(e)),
            }
        }
    }

    /// The broker took the record with packet id `pkid`.
    fn acknowledged(&mut self, pkid: u16) {
        // Acknowledgements come in order (MQTT 3.1.1, 4.6): the oldest.
        if let Some(i) = self.held.iter().position(|h| h.pkid == pkid) {
            self.held.remove(i);
            self.settled.sent += 1;
        }
    }

    /// At QoS 0: the records whose bytes all went to the socket are sent.
    fn settle_written(&mut self) {
        if self.options.qos != Qos::AtMostOnce {
            return;
        }
        while self.held.front().is_some_and(|h| h.end <= self.on_socket) {
            self.held.pop_front();
            self.settled.sent += 1;
        }
    }

    /// Writes out, reads acknowledgements, and sends a PINGREQ when due.
    fn pump(&mut self) -> io::Result<()> {
        self.send()?;
        self.receive()?;
        self.settle_written();
        let keep_alive = self.options.keep_alive;
        if keep_alive.is_zero() {
            return Ok(());
        }
        match self.ping_sent {
            Some(at) if at.elapsed() >= keep_alive => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no PINGRESP from the broker within the keep-alive ({} s)",
                        keep_alive.as_secs()
                    ),
                ));
            }
            None if self.last_sent.elapsed() >= keep_alive / 2 => {
                v4::PingReq.write(&mut self.out).map_err(invalid)?;
                self.ping_sent = Some(Instant::now());
                self.send()?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The connection failed: what went to the socket at QoS 0 is sent,
    /// the rest is held for the next connection.
    fn disconnected(&mut self) {
        self.settle_written();
        self.conn = None;
    }

    /// As [`disconnected`](Self::disconnected), in `write` or `flush`:
    /// `poll` reports `e`.
    fn lose(&mut self, e: io::Error) {
        self.disconnected();
        self.lost = Some(e);
    }

    /// Whether the sink holds all it may.
    fn full(&self) -> bool {
        self.held.len() >= self.options.inflight || self.out.len() >= HOLD_BYTES
    }

    /// Connects, logs in and publishes again what the last connection
    /// left unacknowledged.
    fn connect(&mut self) -> io::Result<()> {
        let o = &self.options;
        let mut conn = Conn::connect(o)?;
        let mut connect = v4::Connect::new(o.client_id.replace("{hostname}", &o.hostname));
        connect.keep_alive = u16::try_from(o.keep_alive.as_secs()).unwrap_or(u16::MAX);
        connect.clean_session = true;
        if let Some((user, password)) = &o.credentials {
            connect.set_login(user, password);
        }
        let mut buf = BytesMut::new();
        connect.write(&mut buf).map_err(invalid)?;
        conn.write_all(&buf)?;
        let ack = loop {
            match v4::Packet::read(&mut self.input, MAX_INCOMING) {
                Ok(v4::Packet::ConnAck(ack)) => break ack,
                Ok(other) => {
                    return Err(invalid(format!("expected CONNACK, got {other:?}")));
                }
                Err(mqttbytes::Error::InsufficientBytes(_)) => {}
                Err(e) => return Err(invalid(e)),
            }
            match conn.read_some(&mut self.input) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the broker closed the connection before its CONNACK",
                    ));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no CONNACK from the broker",
                    ));
                }
                Err(e) => return Err(e),
            }
        };
        if ack.code != v4::ConnectReturnCode::Success {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                refusal(ack.code),
            ));
        }
        conn.sock.set_nonblocking(true)?;
        self.conn = Some(conn);
        self.last_sent = Instant::now();
        if !self.held.is_empty() {
            tracing::info!(
                "{}: publishing again {} records the broker had not acknowledged",
                self.name,
                self.held.len()
            );
        }
        let held: Vec<(Arc<Record>, u16)> = self
            .held
            .iter()
            .map(|h| (Arc::clone(&h.record), h.pkid))
            .collect();
        for (i, (record, pkid)) in held.into_iter().enumerate() {
            self.held[i].end = self.encode(&record, pkid)?;
        }
        self.send()
    }
}

/// A codec error as an I/O error.
fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("MQTT: {e}"))
}

/// Why the broker refused the connection, and what to check.
fn refusal(code: v4::ConnectReturnCode) -> String {
    use v4::ConnectReturnCode as C;
    let fix = match code {
        C::BadUserNamePassword | C::NotAuthorized => "check username and password",
        C::BadClientId => "check client_id",
        C::RefusedProtocolVersion => "the broker does not speak MQTT 3.1.1",
        C::ServiceUnavailable | C::Success => "the broker is not ready",
    };
    format!("the broker refused the connection ({code:?}): {fix}")
}

impl Sink for MqttSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn open(&mut self) -> Result<(), SinkError> {
        self.conn = None;
        self.lost = None;
        self.out.clear();
        self.input.clear();
        (self.encoded, self.written, self.on_socket) = (0, 0, 0);
        self.ping_sent = None;
        let target = format!("{}:{}", self.options.host, self.options.port);
        self.connect().map_err(|e| {
            self.conn = None;
            self.error(format!("cannot connect to {target}"), e)
        })
    }

    fn poll(&mut self) -> Result<bool, SinkError> {
        if let Some(e) = self.lost.take() {
            return Err(self.error("connection lost", e));
        }
        if self.conn.is_none() {
            return Ok(false);
        }
        if let Err(e) = self.pump() {
            self.disconnected();
            return Err(self.error("connection lost", e));
        }
        Ok(true)
    }

    fn write(&mut self, record: &Record) -> Result<Delivery, SinkError> {
        self.write_shared(&Arc::new(record.clone()))
    }

    fn write_shared(&mut self, record: &Arc<Record>) -> Result<Delivery, SinkError> {
        if self.conn.is_none() {
            return Ok(Delivery::Retry);
        }
        if self.full() {
            if let Err(e) = self.pump() {
                self.lose(e);
                return Ok(Delivery::Retry);
            }
            if self.full() {
                return Ok(Delivery::Retry);
            }
        }
        let pkid = match self.options.qos {
            Qos::AtMostOnce => 0,
            Qos::AtLeastOnce => self.next_pkid(),
        };
        let end = self
            .encode(record, pkid)
            .map_err(|e| self.error("cannot encode a record", e))?;
        self.held.push_back(Held {
            record: Arc::clone(record),
            pkid,
            end,
        });
        if self.out.len() >= WRITE_BYTES
            && let Err(e) = self.send()
        {
            self.lose(e);
        }
        Ok(Delivery::Pending)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        if let Err(e) = self.send() {
            self.lose(e);
        }
        Ok(())
    }

    /// Waits up to a second for the broker to take what the sink holds,
    /// then disconnects.
    fn close(&mut self) -> Result<(), SinkError> {
        let deadline = Instant::now() + CLOSE_WAIT;
        while self.conn.is_some() && !(self.held.is_empty() && self.out.is_empty()) {
            if let Err(e) = self.pump() {
                self.lose(e);
                break;
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if let Some(mut conn) = self.conn.take() {
            // A last DISCONNECT, if the socket takes it now: the broker
            // ends the session when the connection goes all the same.
            let mut buf = BytesMut::new();
            if v4::Disconnect.write(&mut buf).is_ok() && conn.write_some(&buf).is_ok() {
                if let Some(tls) = &mut conn.tls {
                    tls.send_close_notify();
                }
                let _ = conn.push_tls();
            }
        }
        Ok(())
    }

    fn settled(&mut self) -> Settled {
        std::mem::take(&mut self.settled)
    }
}

/// A connection to the broker: TCP, or TLS over TCP.
struct Conn {
    sock: TcpStream,
    tls: Option<Box<rustls::ClientConnection>>,
}

impl Conn {
    /// Connects to the broker of `o` and shakes hands if TLS, blocking
    /// for at most `connect_timeout` at each step.
    fn connect(o: &MqttOptions) -> io::Result<Conn> {
        let mut last = None;
        let mut sock = None;
        for addr in (o.host.as_str(), o.port).to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, o.connect_timeout) {
                Ok(s) => {
                    sock = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let sock = sock.ok_or_else(|| {
            last.unwrap_or_else(|| io::Error::other(format!("{} has no address", o.host)))
        })?;
        sock.set_nodelay(true)?;
        sock.set_read_timeout(Some(o.connect_timeout))?;
        sock.set_write_timeout(Some(o.connect_timeout))?;
        let mut conn = Conn { sock, tls: None };
        if o.tls {
            let config =
                crate::tls::client_config(o.ca_file.as_deref()).map_err(io::Error::other)?;
            let name = ServerName::try_from(o.host.clone()).map_err(io::Error::other)?;
            let mut tls = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
            while tls.is_handshaking() {
                tls.complete_io(&mut conn.sock)?;
            }
            conn.tls = Some(Box::new(tls));
        }
        Ok(conn)
    }

    /// Writes what the socket takes now (the TLS layer takes what its
    /// buffer has room for); 0 when nothing could be taken.
    fn write_some(&mut self, data: &[u8]) -> io::Result<usize> {
        match &mut self.tls {
            None => self.sock.write(data),
            Some(tls) => {
                let n = tls.writer().write(data)?;
                self.push_tls()?;
                Ok(n)
            }
        }
    }

    /// Writes `data` whole on a blocking socket.
    fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = self.write_some(data)?;
            data = &data[n..];
        }
        loop {
            self.push_tls()?;
            if self.idle() {
                return Ok(());
            }
        }
    }

    /// Writes the TLS records waiting, as far as the socket takes them.
    fn push_tls(&mut self) -> io::Result<()> {
        let Some(tls) = &mut self.tls else {
            return Ok(());
        };
        while tls.wants_write() {
            match tls.write_tls(&mut self.sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether every byte written went to the socket.
    fn idle(&self) -> bool {
        self.tls.as_ref().is_none_or(|t| !t.wants_write())
    }

    /// Reads what is there into `input`: the bytes read, 0 at the end of
    /// the stream, `WouldBlock` when nothing is there.
    fn read_some(&mut self, input: &mut BytesMut) -> io::Result<usize> {
        let mut chunk = [0u8; 16 << 10];
        let n = match &mut self.tls {
            None => self.sock.read(&mut chunk)?,
            Some(tls) => loop {
                match tls.reader().read(&mut chunk) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if tls.read_tls(&mut self.sock)? == 0 {
                            break 0;
                        }
                        tls.process_new_packets().map_err(io::Error::other)?;
                    }
                    Err(e) => return Err(e),
                }
            },
        };
        input.extend_from_slice(&chunk[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
