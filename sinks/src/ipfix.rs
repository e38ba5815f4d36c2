//! An IPFIX exporter (RFC 7011; NetFlow v9, RFC 3954, as an option):
//! flow records, over UDP, to a collector such as nfcapd or nProbe.
//!
//! The sink reads `flow`, `flow_stats` and `flow_purge` records (see
//! `flows`): it keeps each flow's metadata from its `flow` record and
//! sends a data record at its `flow_purge`, and at a `flow_stats` once
//! the flow has gone `active_timeout` without one. Each data record is a
//! biflow (RFC 5103): the client's address and port as source, delta
//! counters per direction, so that a collector adding up a flow's data
//! records gets its `flow_purge` totals. The templates and field
//! encodings are `message`'s.
//!
//! Data records are packed into messages of at most `max_message_bytes`,
//! sent when full and when the runtime flushes the sink (its queue ran
//! empty). The templates are sent alone when the sink opens, and again
//! first in a message every `template_refresh_messages` messages or
//! `template_refresh_secs` seconds, as UDP export needs (RFC 7011
//! section 8.4).
//!
//! UDP has no acknowledgements: a record counts as sent once the sink has
//! read it, its data record (if it makes one) in a message (what the
//! collector loses, its sequence numbers show). A send that fails loses its message, which is logged
//! with its count of data records, and the sink is reopened.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use flowstat_core::{Delivery, Record, RecordKind, Sink, SinkError};

mod config;
mod flows;
mod message;

pub use config::IpfixConfig;
use flows::{Flows, Outcome};
use message::{Header, Message};

/// The export protocol; the config's `version` says 10 or 9.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IpfixVersion {
    /// IPFIX (version 10), RFC 7011.
    #[default]
    Ipfix,
    /// NetFlow version 9, RFC 3954.
    NetflowV9,
}

/// The record types the sink reads.
pub(crate) const READS: &[RecordKind] = &[
    RecordKind::Flow,
    RecordKind::FlowStats,
    RecordKind::FlowPurge,
];

/// Settings of an [`IpfixSink`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpfixOptions {
    /// The collector, `HOST:PORT`: an IPv4 address, an IPv6 address in
    /// brackets, or a host name (resolved when the sink opens).
    pub collector: String,
    /// IPFIX (the default) or NetFlow v9.
    pub version: IpfixVersion,
    /// The observation domain id (v9: source id); default 0.
    pub observation_domain_id: u32,
    /// A flow is exported at its `flow_stats` records once this long has
    /// passed (in packet time) since its previous export; default 120 s,
    /// nProbe's lifetime timeout.
    pub active_timeout: Duration,
    /// The templates are sent again after this many messages; default 20.
    pub template_refresh_messages: u32,
    /// ... or after this long; default 60 s.
    pub template_refresh: Duration,
    /// Largest message (UDP payload); default 1400 bytes, which fits a
    /// 1500-byte MTU with IPv6.
    pub max_message_bytes: usize,
    /// Flows whose metadata the sink keeps between their `flow` record
    /// and their purge; default 1,000,000, as the agent's `max_flows`.
    pub max_flows: usize,
}

impl IpfixOptions {
    /// Exports IPFIX to `collector` with the defaults.
    pub fn new(collector: &str) -> Self {
        IpfixOptions {
            collector: collector.to_owned(),
            version: IpfixVersion::Ipfix,
            observation_domain_id: 0,
            active_timeout: Duration::from_secs(120),
            template_refresh_messages: 20,
            template_refresh: Duration::from_secs(60),
            max_message_bytes: 1400,
            max_flows: 1_000_000,
        }
    }
}

/// How long a send may wait for room in the socket's buffer.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// Exports flows to an IPFIX or NetFlow v9 collector over UDP (see the
/// module docs).
pub struct IpfixSink {
    name: String,
    collector: String,
    flows: Flows,
    exporter: Exporter,
    /// Unreadable records, and a full flow table, were logged.
    warned: (bool, bool),
}

impl IpfixSink {
    /// An exporter to `options.collector`, opened by the runtime.
    pub fn new(options: IpfixOptions) -> Self {
        IpfixSink {
            name: format!("ipfix:{}", options.collector),
            collector: options.collector.clone(),
            flows: Flows::new(options.max_flows, options.active_timeout.as_millis() as u64),
            exporter: Exporter::new(&options),
            warned: (false, false),
        }
    }

    /// Data records exported since start.
    pub fn exported(&self) -> u64 {
        self.exporter.exported
    }

    /// Messages sent since start.
    pub fn messages(&self) -> u64 {
        self.exporter.messages
    }

    /// Flows whose metadata the sink keeps now.
    pub fn flows(&self) -> usize {
        self.flows.len()
    }

    fn error(&self, context: impl Into<String>, e: std::io::Error) -> SinkError {
        SinkError::io(&self.name, context, e)
    }

    /// The error for a message `lost`.
    fn lost(&self, lost: Lost) -> SinkError {
        let context = format!(
            "cannot send to {}: a message of {} flow records lost",
            lost.collector, lost.records
        );
        self.error(context, lost.error)
    }

    /// The collector's first address.
    fn resolve(&self) -> Result<SocketAddr, SinkError> {
        let collector = &self.collector;
        let mut addrs = collector
            .to_socket_addrs()
            .map_err(|e| self.error(format!("cannot resolve {collector}"), e))?;
        addrs.next().ok_or_else(|| {
            self.error(
                format!("cannot resolve {collector}"),
                std::io::Error::other("no address"),
            )
        })
    }
}

/// Packs data records into messages and sends them: the socket, the
/// message being filled, the sequence number and the template timer.
struct Exporter {
    version: IpfixVersion,
    domain: u32,
    template_refresh: (u32, Duration),
    /// The socket and the collector's address, once open.
    socket: Option<(UdpSocket, SocketAddr)>,
    message: Message,
    templates: Vec<u8>,
    /// IPFIX: data records sent; v9: messages sent.
    sequence: u32,
    /// Messages sent since the templates last went, and when they did.
    since_templates: (u32, Option<Instant>),
    started: Instant,
    /// Data records exported, and messages sent, since start.
    exported: u64,
    messages: u64,
}

/// A message that could not be sent, and the data records it took along.
struct Lost {
    collector: SocketAddr,
    records: u32,
    error: std::io::Error,
}

impl Exporter {
    fn new(options: &IpfixOptions) -> Self {
        Exporter {
            version: options.version,
            domain: options.observation_domain_id,
            template_refresh: (options.template_refresh_messages, options.template_refresh),
            socket: None,
            message: Message::new(options.version, options.max_message_bytes),
            templates: message::templates(options.version),
            sequence: 0,
            since_templates: (0, None),
            started: Instant::now(),
            exported: 0,
            messages: 0,
        }
    }

    /// Sends to `collector` from `socket` from now on, the templates
    /// first.
    fn open(&mut self, socket: UdpSocket, collector: SocketAddr) -> Result<(), Lost> {
        self.socket = Some((socket, collector));
        self.since_templates = (0, None);
        self.start_message();
        self.send()
    }

    /// Appends `export` to the message, sending the message first if it
    /// is full.
    fn push(&mut self, export: &flows::Export<'_>) -> Result<(), Lost> {
        if !self.message.push(export) {
            self.send()?;
            // An empty message takes any record.
            self.message.push(export);
        }
        self.exported += 1;
        Ok(())
    }

    /// Whether the next message should carry the templates.
    fn templates_due(&self) -> bool {
        let (messages, every) = self.template_refresh;
        match self.since_templates {
            (_, None) => true,
            (sent, Some(at)) => sent >= messages || at.elapsed() >= every,
        }
    }

    /// Starts a new message, with the templates if they are due.
    fn start_message(&mut self) {
        self.message.clear();
        if self.templates_due() {
            self.message.add_templates(&self.templates);
        }
    }

    /// Sends the message, if it holds anything, and starts the next.
    fn send(&mut self) -> Result<(), Lost> {
        let records = self.message.records();
        let Some((socket, collector)) = &self.socket else {
            return Ok(());
        };
        let templates = self.message.has_templates();
        if records == 0 && !templates {
            return Ok(());
        }
        let export_secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32);
        let header = Header {
            sequence: self.sequence,
            export_secs,
            uptime_ms: self.started.elapsed().as_millis() as u32,
            domain: self.domain,
        };
        let sent = socket
            .send_to(self.message.finish(header), collector)
            .map_err(|error| Lost {
                collector: *collector,
                records,
                error,
            });
        // Sent or lost: a collector sees a lost message as a gap.
        self.sequence = self.sequence.wrapping_add(match self.version {
            IpfixVersion::Ipfix => records,
            IpfixVersion::NetflowV9 => 1,
        });
        self.since_templates = match templates {
            true => (1, Some(Instant::now())),
            false => (self.since_templates.0 + 1, self.since_templates.1),
        };
        self.start_message();
        sent?;
        self.messages += 1;
        Ok(())
    }
}

impl Sink for IpfixSink {
    fn name(&self) -> &str {
        &self.name
    }

    /// Resolves the collector and sends it the templates.
    fn open(&mut self) -> Result<(), SinkError> {
        self.exporter.socket = None;
        let collector = self.resolve()?;
        let local: SocketAddr = match collector {
            SocketAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
            SocketAddr::V6(_) => ([0u16; 8], 0).into(),
        };
        let socket = UdpSocket::bind(local)
            .and_then(|s| s.set_write_timeout(Some(SEND_TIMEOUT)).map(|()| s))
            .map_err(|e| self.error("cannot open a UDP socket", e))?;
        self.exporter
            .open(socket, collector)
            .map_err(|lost| self.lost(lost))
    }

    fn write(&mut self, record: &Record) -> Result<Delivery, SinkError> {
        if self.exporter.socket.is_none() {
            return Ok(Delivery::Retry);
        }
        let exporter = &mut self.exporter;
        let outcome = self
            .flows
            .read(record.kind, &record.json, |export| exporter.push(export))
            .map_err(|lost| self.lost(lost))?;
        if outcome == Outcome::Unreadable && !self.warned.0 {
            self.warned.0 = true;
            tracing::warn!(
                "{}: a {} record without the fields of a flow was skipped (more are not logged)",
                self.name,
                record.kind.as_str()
            );
        }
        if self.flows.forgotten > 0 && !self.warned.1 {
            self.warned.1 = true;
            tracing::warn!(
                "{}: more flows than max_flows ({}): the flows read least recently are \
                 forgotten, and each is exported whole at its purge, without its host name, \
                 counting again what active-timeout exports of it carried (raise max_flows to \
                 the agent's)",
                self.name,
                self.flows.max_flows()
            );
        }
        Ok(Delivery::Sent)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.exporter.send().map_err(|lost| self.lost(lost))
    }

    /// Sends what the message holds (waiting at most a second for room in
    /// the socket's buffer).
    fn close(&mut self) -> Result<(), SinkError> {
        let sent = self.exporter.send().map_err(|lost| self.lost(lost));
        self.exporter.socket = None;
        sent
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::IpAddr;

    use netflow_parser::variable_versions::data_number::{DataNumber, FieldValue};
    use netflow_parser::variable_versions::{ipfix, v9};
    use netflow_parser::{NetflowPacket, NetflowParser};

    use super::*;

    /// A collector on loopback: a thread reading datagrams as they come
    /// (loopback drops what a full socket buffer cannot take).
    struct Collector {
        address: SocketAddr,
        got: std::sync::mpsc::Receiver<Vec<u8>>,
    }

    impl Collector {
        fn new() -> Self {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            let address = socket.local_addr().unwrap();
            let (tx, got) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut buf = vec![0; 65_536];
                // Ends when the test has gone (send fails).
                while let Ok(len) = socket.recv(&mut buf) {
                    if tx.send(buf[..len].to_vec()).is_err() {
                        return;
                    }
                }
            });
            Collector { address, got }
        }

        fn address(&self) -> String {
            self.address.to_string()
        }

        /// The first `n` datagrams.
        fn receive(&self, n: u64) -> Vec<Vec<u8>> {
            (0..n)
                .map(|_| {
                    self.got
                        .recv_timeout(Duration::from_secs(10))
                        .expect("a message within 10 s")
                })
                .collect()
        }
    }

    /// Records of flow `i`: a `flow` record and its purge, IPv4 or IPv6,
    /// with `i` in its ports, counters and TCP flags ([`tcp_flags`]) and a
    /// long multi-byte host name.
    fn records(i: u32) -> [Record; 2] {
        let (local, other) = if i % 3 == 0 {
            (format!("2001:db8::{i:x}"), "2001:db8:ffff::1".to_owned())
        } else {
            (
                format!("10.0.{}.{}", i / 256, i % 256),
                "192.0.2.1".to_owned(),
            )
        };
        let host = format!("{}é.example", "h".repeat(i as usize % 300));
        let common = format!(
            r#""digest":"{:040x}","digest_prev":[],"first_seen_at":{},"ip_protocol":6,
            "ip_version":4,"last_seen_at":{},"local_ip":"{local}","local_origin":true,
            "local_port":{},"other_ip":"{other}","other_port":443,"total_local_bytes":{},
            "total_local_packets":{},"total_other_bytes":{},"total_other_packets":{},
            "vlan_id":{},"detected_protocol_name":"TLS","detected_application_name":"Google""#,
            i + 1,
            1_000_000 + u64::from(i),
            2_000_000 + u64::from(i),
            10_000 + i,
            1000 + i,
            10 + i,
            5000 + i,
            20 + i,
            i % 4095,
        );
        [
            Record {
                kind: RecordKind::Flow,
                json: format!(
                    r#"{{"type":"flow","flow":{{{common},"host_server_name":"{host}","ip_dscp":10}}}}"#
                )
                .into_bytes(),
            },
            Record {
                kind: RecordKind::FlowPurge,
                json: format!(
                    r#"{{"type":"flow_purge","reason":"closed","evicted":false,"flow":{{{common},
                    "tcp":{{"local_flags":{},"other_flags":{},"resets":0}}}}}}"#,
                    tcp_flags(i)[0],
                    tcp_flags(i)[1]
                )
                .into_bytes(),
            },
        ]
    }

    /// The TCP flags of flow `i` in [`records`]: local (the client), other.
    fn tcp_flags(i: u32) -> [u128; 2] {
        [u128::from(i * 7 % 256), u128::from(i * 13 % 256)]
    }

    /// A decoded field value.
    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Value {
        Number(u128),
        Ip(IpAddr),
        Text(String),
        /// A field the parser does not know: its bytes.
        Bytes(Vec<u8>),
    }

    impl Value {
        /// A number, or the big-endian number an unknown field's bytes
        /// make.
        fn number(&self) -> u128 {
            match self {
                Value::Number(n) => *n,
                Value::Bytes(b) if b.len() <= 16 => {
                    b.iter().fold(0, |n, &byte| n << 8 | u128::from(byte))
                }
                other => panic!("not a number: {other:?}"),
            }
        }

        /// A text, or the UTF-8 an unknown field's bytes hold (NUL padding
        /// removed).
        fn text(&self) -> String {
            match self {
                Value::Text(s) => s.trim_end_matches('\0').to_owned(),
                Value::Bytes(b) => String::from_utf8(b.clone())
                    .unwrap()
                    .trim_end_matches('\0')
                    .to_owned(),
                other => panic!("not a text: {other:?}"),
            }
        }
    }

    fn value(v: &FieldValue) -> Value {
        match v {
            FieldValue::DataNumber(n) => Value::Number(match n {
                DataNumber::U8(n) => (*n).into(),
                DataNumber::U16(n) => (*n).into(),
                DataNumber::U24(n) | DataNumber::U32(n) => (*n).into(),
                DataNumber::U64(n) => (*n).into(),
                DataNumber::U128(n) => *n,
                other => panic!("signed number {other:?}"),
            }),
            FieldValue::Ip4Addr(a) => Value::Ip((*a).into()),
            FieldValue::Ip6Addr(a) => Value::Ip((*a).into()),
            FieldValue::Duration(d) => Value::Number(d.as_millis()),
            FieldValue::ProtocolType(p) => Value::Number(u8::from(*p).into()),
            FieldValue::String(s) => Value::Text(s.clone()),
            FieldValue::Vec(b) | FieldValue::Unknown(b) => Value::Bytes(b.clone()),
            other => panic!("unexpected value {other:?}"),
        }
    }

    /// One decoded message: its header's sequence number, whether it
    /// carried templates, and its data records as (field number,
    /// enterprise number) -> value.
    struct Decoded {
        sequence: u32,
        templates: bool,
        records: Vec<BTreeMap<(u16, u32), Value>>,
    }

    /// Decodes `message` with netflow_parser, checking its header's
    /// version, length (IPFIX) or record count (v9).
    fn decode(parser: &mut NetflowParser, message: &[u8], version: IpfixVersion) -> Decoded {
        let result = parser.parse_bytes(message);
        assert!(result.error.is_none(), "{:?}", result.error);
        assert_eq!(result.packets.len(), 1, "one message per datagram");
        let mut out = Decoded {
            sequence: 0,
            templates: false,
            records: Vec::new(),
        };
        match (&result.packets[0], version) {
            (NetflowPacket::IPFix(m), IpfixVersion::Ipfix) => {
                assert_eq!(m.header.version, 10);
                assert_eq!(usize::from(m.header.length), message.len());
                assert_eq!(m.header.observation_domain_id, 7);
                out.sequence = m.header.sequence_number;
                for set in &m.flowsets {
                    match &set.body {
                        ipfix::FlowSetBody::Templates(t) => {
                            assert_eq!(t.len(), 2);
                            out.templates = true;
                        }
                        ipfix::FlowSetBody::Data(data) => {
                            let template = parser_template(parser, set.header.header_id);
                            for record in &data.fields {
                                assert_eq!(record.len(), template.len());
                                out.records.push(
                                    template
                                        .iter()
                                        .zip(record)
                                        .map(|(k, (_, v))| (*k, value(v)))
                                        .collect(),
                                );
                            }
                        }
                        other => panic!("unexpected set {other:?}"),
                    }
                }
            }
            (NetflowPacket::V9(m), IpfixVersion::NetflowV9) => {
                assert_eq!(m.header.source_id, 7);
                out.sequence = m.header.sequence_number;
                let mut count = 0;
                for set in &m.flowsets {
                    match &set.body {
                        v9::FlowSetBody::Template(t) => {
                            assert_eq!(t.templates.len(), 2);
                            count += t.templates.len();
                            out.templates = true;
                        }
                        v9::FlowSetBody::Data(data) => {
                            assert_eq!(set.header.length % 4, 0, "padded to 4 bytes");
                            let template = v9_template(parser, set.header.flowset_id);
                            for record in &data.fields {
                                count += 1;
                                out.records.push(
                                    template
                                        .iter()
                                        .zip(record)
                                        .map(|(k, (_, v))| ((*k, 0), value(v)))
                                        .collect(),
                                );
                            }
                        }
                        other => panic!("unexpected flowset {other:?}"),
                    }
                }
                assert_eq!(usize::from(m.header.count), count, "v9 count");
            }
            (other, _) => panic!("not a {version:?} message: {other:?}"),
        }
        out
    }

    /// The (field number, enterprise number) list of IPFIX template `id`,
    /// as the parser learnt it.
    fn parser_template(parser: &mut NetflowParser, id: u16) -> Vec<(u16, u32)> {
        let t = parser
            .ipfix_parser
            .templates
            .get(&id)
            .expect("template known");
        t.template
            .fields
            .iter()
            .map(|f| (f.field_type_number, f.enterprise_number.unwrap_or(0)))
            .collect()
    }

    /// The field numbers of v9 template `id`, as the parser learnt them.
    fn v9_template(parser: &mut NetflowParser, id: u16) -> Vec<u16> {
        let t = parser.v9_parser.templates.get(&id).expect("template known");
        t.template
            .fields
            .iter()
            .map(|f| f.field_type_number)
            .collect()
    }

    /// Exports `flows` flows through a sink of `version` to a collector on
    /// loopback, and decodes every message.
    fn export(version: IpfixVersion, flows: u32) -> (IpfixSink, Vec<Vec<u8>>, Vec<Decoded>) {
        let collector = Collector::new();
        let mut options = IpfixOptions::new(&collector.address());
        options.version = version;
        options.observation_domain_id = 7;
        options.max_message_bytes = 1024;
        options.template_refresh_messages = 3;
        let mut sink = IpfixSink::new(options);
        sink.open().unwrap();
        for i in 0..flows {
            for r in records(i) {
                assert_eq!(sink.write(&r).unwrap(), Delivery::Sent);
            }
        }
        let status = Record {
            kind: RecordKind::AgentStatus,
            json: b"{\"type\":\"agent_status\"}".to_vec(),
        };
        assert_eq!(sink.write(&status).unwrap(), Delivery::Sent, "ignored");
        sink.close().unwrap();
        assert_eq!(sink.flows(), 0, "every flow purged, forgotten");
        let messages = collector.receive(sink.messages());
        let mut parser = NetflowParser::default();
        // Its guard against huge templates counts a variable-length field
        // as 65535 bytes: two of them pass it.
        parser.ipfix_parser.max_template_total_size = usize::MAX;
        let decoded = messages
            .iter()
            .map(|m| decode(&mut parser, m, version))
            .collect();
        (sink, messages, decoded)
    }

    /// Checks the data records of `decoded` against [`records`], with the
    /// reverse counters at `reverse` fields, the server's TCP flags at
    /// `reverse_flags` (or OR-ed into the client's), names under `names`
    /// and host names cut to `host_bytes`.
    fn check_records(
        decoded: &[Decoded],
        flows: u32,
        reverse: [(u16, u32); 2],
        reverse_flags: Option<(u16, u32)>,
        names: [(u16, u32); 2],
        host_bytes: usize,
    ) {
        let all: Vec<&BTreeMap<(u16, u32), Value>> =
            decoded.iter().flat_map(|d| &d.records).collect();
        assert_eq!(all.len(), flows as usize);
        for (i, r) in all.into_iter().enumerate() {
            let i = i as u32;
            let n = |field: (u16, u32)| r[&field].number();
            let iana = |id: u16| n((id, 0));
            let (src, dst) = if i % 3 == 0 { (27, 28) } else { (8, 12) };
            let want_src: IpAddr = if i % 3 == 0 {
                format!("2001:db8::{i:x}").parse().unwrap()
            } else {
                format!("10.0.{}.{}", i / 256, i % 256).parse().unwrap()
            };
            assert_eq!(r[&(src, 0)], Value::Ip(want_src), "record {i}");
            assert!(matches!(r[&(dst, 0)], Value::Ip(_)));
            let i = u128::from(i);
            assert_eq!((iana(7), iana(11), iana(4)), (10_000 + i, 443, 6));
            assert_eq!((iana(5), iana(58)), (40, i % 4095), "tos, vlan");
            assert_eq!((iana(152), iana(153)), (1_000_000 + i, 2_000_000 + i));
            assert_eq!((iana(1), iana(2)), (1000 + i, 10 + i), "forward");
            assert_eq!(
                (n(reverse[0]), n(reverse[1])),
                (5000 + i, 20 + i),
                "reverse"
            );
            let [client, server] = tcp_flags(i as u32);
            match reverse_flags {
                Some(field) => assert_eq!((iana(6), n(field)), (client, server), "TCP flags"),
                None => assert_eq!(iana(6), client | server, "TCP flags"),
            }
            assert_eq!((iana(136), iana(239)), (3, 1), "end reason, initiator");
            assert_eq!(r[&names[0]].text(), "TLS.Google");
            let host = format!("{}é.example", "h".repeat(i as usize % 300));
            let got = r[&names[1]].text();
            let want_len = host.len().min(host_bytes);
            let want = &host.as_bytes()[..want_len];
            // Cut at a character boundary: "é" is two bytes.
            assert!(
                got.as_bytes() == want || got.as_bytes() == &want[..want_len - 1],
                "record {i}: {got:?}"
            );
        }
    }

    #[test]
    fn ipfix_messages_decode_with_an_independent_parser() {
        let flows = 300;
        let (sink, messages, decoded) = export(IpfixVersion::Ipfix, flows);
        assert_eq!(sink.exported(), u64::from(flows));
        assert!(messages.len() > 20, "{} messages", messages.len());
        let mut sequence = 0;
        for (i, (m, d)) in messages.iter().zip(&decoded).enumerate() {
            assert!(m.len() <= 1024, "message {i}: {} bytes", m.len());
            assert_eq!(d.sequence, sequence, "message {i}: data records before it");
            sequence += d.records.len() as u32;
            assert_eq!(d.templates, i % 3 == 0, "message {i}: templates every 3");
        }
        assert!(
            decoded[0].records.is_empty(),
            "the templates first, at open"
        );
        check_records(
            &decoded,
            flows,
            [(1, 29305), (2, 29305)],
            Some((6, 29305)),
            [(119, 35632), (122, 35632)],
            255,
        );
    }

    #[test]
    fn an_ipv6_collector_gets_the_templates_at_open() {
        let socket = UdpSocket::bind("[::1]:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let address = socket.local_addr().unwrap().to_string();
        let mut options = IpfixOptions::new(&address);
        options.observation_domain_id = 7;
        let mut sink = IpfixSink::new(options);
        assert_eq!(sink.name(), format!("ipfix:{address}"));
        sink.open().unwrap();
        let mut buf = [0; 2048];
        let len = socket.recv(&mut buf).expect("templates within 10 s");
        let mut parser = NetflowParser::default();
        parser.ipfix_parser.max_template_total_size = usize::MAX;
        let d = decode(&mut parser, &buf[..len], IpfixVersion::Ipfix);
        assert!(d.templates && d.records.is_empty());
        assert_eq!(parser_template(&mut parser, 257)[..2], [(27, 0), (28, 0)]);
        sink.close().unwrap();
    }

    #[test]
    fn netflow_v9_messages_decode_with_an_independent_parser() {
        let flows = 300;
        let (_, messages, decoded) = export(IpfixVersion::NetflowV9, flows);
        for (i, (m, d)) in messages.iter().zip(&decoded).enumerate() {
            assert!(m.len() <= 1024, "message {i}: {} bytes", m.len());
            assert_eq!(d.sequence, i as u32, "message {i}: messages before it");
            assert_eq!(d.templates, i % 3 == 0, "message {i}: templates every 3");
        }
        check_records(
            &decoded,
            flows,
            [(23, 0), (24, 0)],
            None,
            [(57591, 0), (57594, 0)],
            64,
        );
    }
}
