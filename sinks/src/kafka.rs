use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use flowstat_core::{Delivery, Record, RecordKind, Settled, Sink, SinkError};
use memchr::memmem::Finder;
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};

mod config;

pub use config::KafkaConfig;

/// How record batches are compressed on the wire; the config's
/// `compression`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KafkaCompression {
    /// Not compressed.
    None,
    /// gzip (zlib).
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4: cheap on the agent's CPU, and the default.
    #[default]
    Lz4,
    /// Zstandard: smaller, for more CPU.
    Zstd,
}

impl KafkaCompression {
    /// librdkafka's name for it (`compression.type`).
    pub fn as_str(self) -> &'static str {
        match self {
            KafkaCompression::None => "none",
            KafkaCompression::Gzip => "gzip",
            KafkaCompression::Snappy => "snappy",
            KafkaCompression::Lz4 => "lz4",
            KafkaCompression::Zstd => "zstd",
        }
    }
}

/// Which brokers must have a record before it counts as sent; the
/// config's `acks`: `"all"` (or -1), 1 or 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KafkaAcks {
    /// Every in-sync replica (the default; idempotence needs it).
    #[default]
    All,
    /// The partition's leader only.
    Leader,
    /// None: a record counts as sent once it is on the wire.
    None,
}

impl KafkaAcks {
    /// librdkafka's value for it (`acks`).
    pub fn as_str(self) -> &'static str {
        match self {
            KafkaAcks::All => "all",
            KafkaAcks::Leader => "1",
            KafkaAcks::None => "0",
        }
    }
}

/// Settings of a [`KafkaSink`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaOptions {
    /// Bootstrap brokers, `HOST:PORT` each.
    pub brokers: Vec<String>,
    /// The topic of each record: `{type}` stands for its type.
    pub topic: String,
    /// Compression of record batches.
    pub compression: KafkaCompression,
    /// Acknowledgements a record needs.
    pub acks: KafkaAcks,
    /// Whether the producer is idempotent: retries after a broker's
    /// failure neither duplicate nor reorder records.
    pub idempotence: bool,
    /// How long closing waits for the brokers to acknowledge what the
    /// sink holds.
    pub close_timeout: Duration,
    /// librdkafka properties (`"security.protocol"`, `"linger.ms"`...),
    /// set over the sink's defaults.
    pub properties: BTreeMap<String, String>,
    /// The key of records that have no flow digest: the agent's host name
    /// (none when empty).
    pub host_name: String,
}

impl KafkaOptions {
    /// The default topic template.
    pub const TOPIC: &'static str = "flowstat.{type}";
    /// The default close timeout.
    pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
    /// librdkafka's properties that the sink sets from its own settings,
    /// each with the setting's key.
    pub const OWN_PROPERTIES: &'static [(&'static str, &'static str)] = &[
        ("bootstrap.servers", "brokers"),
        ("metadata.broker.list", "brokers"),
        ("compression.type", "compression"),
        ("compression.codec", "compression"),
        ("acks", "acks"),
        ("request.required.acks", "acks"),
        ("enable.idempotence", "idempotence"),
    ];
    /// Defaults the sink gives librdkafka, which `properties` may change:
    /// what it holds unacknowledged is bounded by the queue's default
    /// 64 MiB rather than librdkafka's 1 GiB (and its 100000 records).
    const DEFAULT_PROPERTIES: &'static [(&'static str, &'static str)] =
        &[("queue.buffering.max.kbytes", "65536")];

    /// `brokers`, topics `flowstat.{type}`, lz4, acks from every replica,
    /// idempotent, a second to close, no key for records without a digest.
    pub fn new(brokers: &[&str]) -> Self {
        KafkaOptions {
            brokers: brokers.iter().map(|b| (*b).to_owned()).collect(),
            topic: Self::TOPIC.to_owned(),
            compression: KafkaCompression::default(),
            acks: KafkaAcks::default(),
            idempotence: true,
            close_timeout: Self::CLOSE_TIMEOUT,
            properties: BTreeMap::new(),
            host_name: String::new(),
        }
    }

    /// librdkafka's configuration: the defaults, `properties` over them,
    /// and the sink's own settings over those.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        for (k, v) in Self::DEFAULT_PROPERTIES {
            c.set(*k, *v);
        }
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c.set("bootstrap.servers", self.brokers.join(","))
            .set("compression.type", self.compression.as_str())
            .set("acks", self.acks.as_str())
            .set("enable.idempotence", self.idempotence.to_string());
        c
    }
}

/// The topic of a record of `kind` under `template`.
fn topic_for(template: &str, kind: RecordKind) -> String {
    template.replace("{type}", kind.as_str())
}

/// A Kafka producer: each record is one message, its JSON the value.
///
/// Records of a flow (`flow`, `flow_stats`, `flow_purge`) are keyed by the
/// flow's first digest, which stays the same for its whole life (a later
/// digest, after detection, moves the first to `digest_prev`), so that a
/// flow's records stay in one partition, in order. Other records are
/// keyed by the agent's host name.
///
/// A record the producer took is [`Delivery::Pending`] until its delivery
/// report: acknowledged (sent) or failed for good (dropped: refused, or
/// not acknowledged within librdkafka's `message.timeout.ms`, 5 minutes
/// by default, while brokers were away). librdkafka holds records while
/// brokers are away and retries them when they come back; once its
/// buffer (`queue.buffering.max.messages`, `queue.buffering.max.kbytes`)
/// is full, writes say [`Delivery::Retry`] and the sink's queue takes
/// the rest. Idempotence (on by default) keeps retries from duplicating
/// or reordering records.
pub struct KafkaSink {
    name: String,
    options: KafkaOptions,
    /// The topic of each record type, by `kind as usize`.
    topics: [String; RecordKind::ALL.len()],
    producer: Option<BaseProducer<Reports>>,
    outcomes: Arc<Outcomes>,
    digest: Finder<'static>,
    digest_prev: Finder<'static>,
}

impl KafkaSink {
    /// A producer to `options.brokers`, opened by the runtime.
    pub fn new(options: KafkaOptions) -> Self {
        let mut topics: [String; RecordKind::ALL.len()] = Default::default();
        for kind in RecordKind::ALL {
            topics[kind as usize] = topic_for(&options.topic, kind);
        }
        let name = format!("kafka:{}", options.brokers.join(","));
        KafkaSink {
            outcomes: Arc::new(Outcomes {
                name: name.clone(),
                ..Outcomes::default()
            }),
            name,
            options,
            topics,
            producer: None,
            digest: Finder::new(br#""digest":""#),
            digest_prev: Finder::new(br#""digest_prev":[""#),
        }
    }

    /// The key of `record`: its flow's first digest, else the host name.
    fn key<'a>(&'a self, record: &'a Record) -> &'a [u8] {
        let flow = matches!(
            record.kind,
            RecordKind::Flow | RecordKind::FlowStats | RecordKind::FlowPurge
        );
        let digest = |finder: &Finder<'_>| {
            let at = finder.find(&record.json)? + finder.needle().len();
            let hex = record.json.get(at..at + 40)?;
            let whole = record.json.get(at + 40) == Some(&b'"');
            (whole && hex.iter().all(u8::is_ascii_hexdigit)).then_some(hex)
        };
        flow.then(|| digest(&self.digest_prev).or_else(|| digest(&self.digest)))
            .flatten()
            .unwrap_or(self.options.host_name.as_bytes())
    }

    /// Serves the delivery reports librdkafka has ready (one batch per
    /// `poll`), counting them in `outcomes`.
    fn serve(&self) {
        let Some(producer) = &self.producer else {
            return;
        };
        loop {
            let before = self.outcomes.total();
            producer.poll(Duration::ZERO);
            if self.outcomes.total() == before {
                return;
            }
        }
    }

    fn error(&self, context: impl Into<String>, e: impl fmt::Display) -> SinkError {
        SinkError::io(&self.name, context, std::io::Error::other(e.to_string()))
    }
}

impl Sink for KafkaSink {
    fn name(&self) -> &str {
        &self.name
    }

    /// Creates the producer (librdkafka connects in the background). A
    /// producer from before is dropped first: what it still held is
    /// purged and counted dropped.
    fn open(&mut self) -> Result<(), SinkError> {
        self.producer = None;
        let producer = self
            .options
            .client_config()
            .create_with_context(Reports(Arc::clone(&self.outcomes)))
            .map_err(|e| self.error("cannot create the Kafka producer", e))?;
        self.producer = Some(producer);
        Ok(())
    }

    /// Serves delivery reports; fails once the producer has hit a fatal
    /// error (it is then created afresh).
    fn poll(&mut self) -> Result<bool, SinkError> {
        let Some(producer) = &self.producer else {
            return Ok(false);
        };
        self.serve();
        if let Some((code, reason)) = producer.client().fatal_error() {
            return Err(self.error(format!("fatal producer error {code:?}"), reason));
        }
        Ok(true)
    }

    fn write(&mut self, record: &Record) -> Result<Delivery, SinkError> {
        let Some(producer) = &self.producer else {
            return Ok(Delivery::Retry);
        };
        let topic = &self.topics[record.kind as usize];
        let key = self.key(record);
        // Every message names its agent: ClickHouse's `agent` column
        // (conf/clickhouse) reads this header.
        let headers = OwnedHeaders::new_with_capacity(1).insert(Header {
            key: "hostname",
            value: Some(&self.options.host_name),
        });
        let mut message = BaseRecord::to(topic)
            .payload(&record.json[..])
            .headers(headers);
        if !key.is_empty() {
            message = message.key(key);
        }
        match producer.send(message) {
            Ok(()) => Ok(Delivery::Pending),
            // Full, or failed for good (poll says which): reports free
            // room, and a new producer starts empty.
            Err((
                KafkaError::MessageProduction(
                    RDKafkaErrorCode::QueueFull | RDKafkaErrorCode::Fatal,
                ),
                _,
            )) => {
                self.serve();
                Ok(Delivery::Retry)
            }
            // This record only (too large, say): taken and given up on.
            Err((e, _)) => {
                self.outcomes.failed(&e.to_string());
                Ok(Delivery::Pending)
            }
        }
    }

    /// Waits up to `close_timeout` for the brokers to acknowledge what the
    /// producer holds; the rest is purged and counted dropped.
    fn close(&mut self) -> Result<(), SinkError> {
        if let Some(producer) = &self.producer
            && producer.flush(self.options.close_timeout).is_err()
        {
            tracing::warn!(
                "{}: {} records not acknowledged within {:?}: dropped",
                self.name,
                producer.in_flight_count(),
                self.options.close_timeout
            );
        }
        self.producer = None;
        Ok(())
    }

    fn settled(&mut self) -> Settled {
        Settled {
            sent: self.outcomes.sent.swap(0, Ordering::Relaxed),
            dropped: self.outcomes.dropped.swap(0, Ordering::Relaxed),
        }
    }
}

/// Delivery outcomes not yet settled, and whether the sink is failing
/// (its first failure of a run is logged, and the recovery).
#[derive(Default)]
struct Outcomes {
    name: String,
    sent: AtomicU64,
    dropped: AtomicU64,
    failing: AtomicBool,
}

impl Outcomes {
    fn total(&self) -> u64 {
        self.sent.load(Ordering::Relaxed) + self.dropped.load(Ordering::Relaxed)
    }

    /// Logs a problem: the first of a run as a warning, the rest for
    /// debugging.
    fn problem(&self, what: &str) {
        if self.failing.swap(true, Ordering::Relaxed) {
            tracing::debug!("{}: {what}", self.name);
        } else {
            tracing::warn!("{}: {what}", self.name);
        }
    }

    /// A record failed for good.
    fn failed(&self, why: &str) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        self.problem(&format!("a record was not delivered: {why}"));
    }
}

/// The producer's context: counts delivery reports into [`Outcomes`].
/// librdkafka calls it on the sink's thread, from `poll` and `flush`
/// (and logs from its own threads).
struct Reports(Arc<Outcomes>);

impl ClientContext for Reports {
    /// Forwards librdkafka's log, less its line for each failed
    /// connection attempt (kept for debugging): [`error`](Self::error)
    /// has logged the first of a run already.
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Error if facility == "FAIL" => {
                tracing::debug!(target: "librdkafka", "librdkafka: {facility} {message}");
            }
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", "librdkafka: {facility} {message}");
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", "librdkafka: {facility} {message}");
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", "librdkafka: {facility} {message}");
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(target: "librdkafka", "librdkafka: {facility} {message}");
            }
        }
    }

    /// Logs an error of the client as a whole (brokers down, ...).
    fn error(&self, error: KafkaError, reason: &str) {
        self.0.problem(&format!(
            "{reason} ({error}); records wait while librdkafka retries"
        ));
    }
}

impl ProducerContext for Reports {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.0.sent.fetch_add(1, Ordering::Relaxed);
                if self.0.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("{}: delivering again", self.0.name);
                }
            }
            Err((e, _)) => self.0.failed(&e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: RecordKind, json: &str) -> Record {
        Record {
            kind,
            json: json.as_bytes().to_vec(),
        }
    }

    fn sink() -> KafkaSink {
        let mut options = KafkaOptions::new(&["127.0.0.1:9092"]);
        options.host_name = "probe7".into();
        KafkaSink::new(options)
    }

    const D1: &str = "7483b37558a8d53be9d3526468160d653a67d937";
    const D2: &str = "9719261cff925001316bedeb2a4afbe3837be2d7";

    #[test]
    fn a_flow_is_keyed_by_its_first_digest_and_the_rest_by_host_name() {
        let s = sink();
        let before = format!(
            r#"{{"type":"flow_stats","interface":"eth0","flow":{{"digest":"{D1}","digest_prev":[],"x":1}}}}"#
        );
        let after = format!(
            r#"{{"type":"flow_purge","interface":"eth0","flow":{{"digest":"{D2}","digest_prev":["{D1}"]}}}}"#
        );
        for (kind, json) in [
            (RecordKind::FlowStats, &before),
            (RecordKind::FlowPurge, &after),
            (RecordKind::Flow, &after),
        ] {
            assert_eq!(s.key(&record(kind, json)), D1.as_bytes(), "{json}");
        }
        let status = r#"{"type":"agent_status","flow_count":3}"#;
        assert_eq!(s.key(&record(RecordKind::AgentStatus, status)), b"probe7");
        // A flow-shaped event is not a flow record.
        assert_eq!(s.key(&record(RecordKind::Event, &after)), b"probe7");
    }

    #[test]
    fn a_flow_record_without_a_whole_digest_is_keyed_by_host_name() {
        let s = sink();
        for json in [
            r#"{"type":"flow","flow":{}}"#,
            r#"{"type":"flow","flow":{"digest":"abc"}}"#,
            // One character short, one too many, not hex.
            &format!(r#"{{"flow":{{"digest":"{}"}}}}"#, &D1[1..]),
            &format!(r#"{{"flow":{{"digest":"{D1}0"}}}}"#),
            &format!(r#"{{"flow":{{"digest":"{}"}}}}"#, D1.replace('7', "g")),
            // An escaped quote in a string is no key.
            &format!(r#"{{"flow":{{"host_server_name":"\"digest\":\"{D1}\""}}}}"#),
        ] {
            assert_eq!(s.key(&record(RecordKind::Flow, json)), b"probe7", "{json}");
        }
        let mut no_host = KafkaOptions::new(&["127.0.0.1:9092"]);
        no_host.topic = "all".into();
        let s = KafkaSink::new(no_host);
        assert_eq!(s.key(&record(RecordKind::AgentStatus, "{}")), b"");
        assert!(s.topics.iter().all(|t| t == "all"));
    }

    #[test]
    fn each_type_has_its_topic() {
        let s = sink();
        for kind in RecordKind::ALL {
            assert_eq!(
                s.topics[kind as usize],
                format!("flowstat.{}", kind.as_str())
            );
        }
    }

    #[test]
    fn the_sinks_own_settings_win_over_properties() {
        let mut o = KafkaOptions::new(&["k1:9092", "[::1]:9093"]);
        o.compression = KafkaCompression::Zstd;
        o.acks = KafkaAcks::Leader;
        o.idempotence = false;
        o.properties
            .insert("queue.buffering.max.kbytes".into(), "1024".into());
        o.properties.insert("linger.ms".into(), "20".into());
        let c = o.client_config();
        assert_eq!(c.get("bootstrap.servers"), Some("k1:9092,[::1]:9093"));
        assert_eq!(c.get("compression.type"), Some("zstd"));
        assert_eq!(c.get("acks"), Some("1"));
        assert_eq!(c.get("enable.idempotence"), Some("false"));
        assert_eq!(c.get("queue.buffering.max.kbytes"), Some("1024"));
        assert_eq!(c.get("linger.ms"), Some("20"));
        let c = KafkaOptions::new(&["k1:9092"]).client_config();
        assert_eq!(c.get("queue.buffering.max.kbytes"), Some("65536"));
        assert_eq!(c.get("compression.type"), Some("lz4"));
        assert_eq!(c.get("acks"), Some("all"));
        assert_eq!(c.get("enable.idempotence"), Some("true"));
        assert!(c.create_native_config().is_ok());
    }

    #[test]
    fn without_a_producer_nothing_is_taken() {
        let mut s = sink();
        let r = record(RecordKind::Flow, "{}");
        assert_eq!(s.write(&r).unwrap(), Delivery::Retry);
        assert!(!s.poll().unwrap());
        assert_eq!(s.settled(), Settled::default());
        s.close().unwrap();
    }
}
