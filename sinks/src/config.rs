//! `[[sink]]` tables: the keys every sink has, and the keys of its type.
//!
//! Each sink type's keys are one `#[serde(deny_unknown_fields, default)]`
//! struct next to its sink (`file/config.rs`, ...) that implements
//! [`BuildSink`]: serde checks names and types, [`BuildSink::problems`]
//! checks values, [`BuildSink::build`] makes the sink. [`SinkConfig`] is
//! the closed enum of those structs, one variant per type and cargo
//! feature; [`SinkSection`] adds the keys every type has (`types`,
//! `queue_records`, `queue_bytes`).
//!
//! Adding a sink type: its module, with the sink and a config struct
//! implementing [`BuildSink`]; a cargo feature; a line in the
//! `sink_types!` list below.
//!
//! `type` is read here, not by `#[serde(tag = "type")]`: serde reads an
//! internally tagged table into a buffer first, and an error inside the
//! buffer loses its key (`sink[2]` instead of `sink[2].endpoint`); nor can
//! a derived enum tell a type this build left out from a misspelt one.
//! Reading the tag first, then the type's struct straight from its keys,
//! names the key of every problem.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::fmt;

use flowstat_core::{KindSet, RecordKind, Sink};
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, forward_to_deserialize_any};
use serde_path_to_error::Segment;

use crate::runtime::SinkOptions;

/// The sink types, each `Variant(ConfigStruct) = "type", feature "name";`.
/// Generates [`SinkConfig`] (a variant per type built in) and
/// [`SinkConfig::TYPES`] (every type, built in or not).
macro_rules! sink_types {
    ($($(#[doc = $doc:literal])* $variant:ident($config:ty) = $name:literal, feature $feature:literal;)*) => {
        /// The keys of one sink type, chosen by the table's `type`. A
        /// variant exists when its cargo feature is on; see
        /// [`SinkConfig::TYPES`] for every type.
        #[derive(Clone, Debug, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum SinkConfig {
            $(
                $(#[doc = $doc])*
                #[cfg(feature = $feature)]
                $variant($config),
            )*
        }

        impl SinkConfig {
            /// Every sink type flowstat has, whether this build has it or
            /// not, in the order the documentation lists them.
            pub const TYPES: &[SinkType] = &[$(SinkType {
                name: $name,
                feature: $feature,
                built: cfg!(feature = $feature),
            }),*];

            /// The `type` of this sink (`"file"`).
            pub fn type_name(&self) -> &'static str {
                match *self {
                    $(#[cfg(feature = $feature)] SinkConfig::$variant(_) => $name,)*
                }
            }

            /// The type's own settings.
            fn settings(&self) -> &dyn BuildSink {
                match *self {
                    $(#[cfg(feature = $feature)] SinkConfig::$variant(ref c) => c,)*
                }
            }

            /// The keys of type `name`, if it is built in.
            fn keys_of_type(name: &str) -> Option<&'static [&'static str]> {
                match name {
                    $(#[cfg(feature = $feature)] $name => Some(keys_of::<$config>()),)*
                    _ => None,
                }
            }

            /// Reads the keys of type `name` (built in) from `table`.
            #[cfg_attr(
                not(any($(feature = $feature),*)),
                allow(unused_variables, clippy::ptr_arg, reason = "no type is built in")
            )]
            fn read_type(
                name: &str,
                table: toml::Table,
                problems: &mut Vec<ConfigProblem>,
            ) -> Option<SinkConfig> {
                match name {
                    $(#[cfg(feature = $feature)] $name => {
                        read_keys::<$config>(table, problems).map(SinkConfig::$variant)
                    })*
                    _ => None,
                }
            }
        }
    };
}

sink_types! {
    /// `type = "stdout"`: newline-delimited JSON to standard output.
    Stdout(crate::stdout::StdoutConfig) = "stdout", feature "stdout";
    /// `type = "file"`: newline-delimited JSON to a rotating file.
    File(crate::file::FileConfig) = "file", feature "file";
    /// `type = "socket"`: a stream socket server, Unix or TCP.
    Socket(crate::socket::SocketConfig) = "socket", feature "socket";
    /// `type = "zmq"`: a ZeroMQ PUB socket.
    Zmq(crate::zeromq::ZmqConfig) = "zmq", feature "zmq";
    /// `type = "ipfix"`: IPFIX or NetFlow v9 flow records to a collector.
    Ipfix(crate::ipfix::IpfixConfig) = "ipfix", feature "ipfix";
    /// `type = "kafka"`: a Kafka producer.
    Kafka(crate::kafka::KafkaConfig) = "kafka", feature "kafka";
    /// `type = "mqtt"`: an MQTT publisher.
    Mqtt(crate::mqtt::MqttConfig) = "mqtt", feature "mqtt";
    /// `type = "http"`: batches of NDJSON by HTTP POST.
    Http(crate::http::HttpConfig) = "http", feature "http";
}

/// One sink type: its `type` name, and the cargo feature that builds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SinkType {
    /// The `type` that names it in a `[[sink]]` table.
    pub name: &'static str,
    /// The cargo feature that builds it in (flowstatd's has the same name).
    pub feature: &'static str,
    /// Whether this build has it.
    pub built: bool,
}

impl SinkType {
    /// The type called `name`, built in or not.
    pub fn named(name: &str) -> Option<&'static SinkType> {
        SinkConfig::TYPES.iter().find(|t| t.name == name)
    }

    /// Why this type cannot be used when the build left it out.
    pub fn not_built(&self) -> String {
        format!(
            "this flowstatd was built without the {} sink (feature {:?})",
            self.name, self.feature
        )
    }
}

/// A problem with one key of a `[[sink]]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The key at fault, within the table: `endpoint`, `types[2]`; empty
    /// for the table as a whole.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigProblem {
    /// `key` is wrong because of `reason`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigProblem {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigProblem {
    /// `key: reason`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

/// What the agent hands every sink it builds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkContext {
    /// The `agent_hello` record's JSON (no newline), which a socket sink
    /// sends each new client first; empty for none.
    pub hello: Vec<u8>,
    /// The agent's host name: the key of a Kafka sink's records that have
    /// no flow digest, `{hostname}` in MQTT topics and client ids; empty
    /// when unknown.
    pub hostname: String,
    /// The user and group (uid, gid) the agent runs as once it drops
    /// root: the default owner of what it creates for others to open (a
    /// socket sink's Unix socket). `None`: it keeps its user.
    pub owner: Option<(u32, u32)>,
}

/// The keys of one sink type, turned into its sink.
///
/// Implemented by a `#[serde(deny_unknown_fields, default)]` struct: every
/// key has a default, so serde only refuses unknown keys and wrong types,
/// and a required key left out is a problem like any other value.
pub trait BuildSink {
    /// What is wrong with the values: a required key left out, a number
    /// out of range, a user this host does not have. Empty when `build`
    /// may be called.
    fn problems(&self) -> Vec<ConfigProblem>;

    /// The sink, not yet opened (the runtime opens it). Fails only on
    /// what [`problems`](Self::problems) would report, in case it was not
    /// asked or the host changed since.
    fn build(&self, ctx: &SinkContext) -> Result<Box<dyn Sink>, ConfigProblem>;

    /// The record types a sink of this type reads, when it reads only
    /// some (the IPFIX sink makes flow records of `flow`, `flow_stats`
    /// and `flow_purge`): it is sent exactly those, whatever `types` or a
    /// replay's `--types` says, and a `types` that leaves one out is a
    /// problem. `None` (the default): it takes every type, and `types`
    /// chooses.
    fn reads(&self) -> Option<&'static [RecordKind]> {
        None
    }
}

/// One `[[sink]]` table: a sink, the records it gets and how many of them
/// may wait for it.
///
/// Read with [`SinkSection::read`], which names the key of every problem;
/// the `Deserialize` impl reads the same way and joins the problems into
/// one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkSection {
    /// `types`: the record types sent; empty (the default) means all.
    pub types: Vec<RecordKind>,
    /// `queue_records`: records that may wait for the sink (default
    /// 65536, at least 1).
    pub queue_records: usize,
    /// `queue_bytes`: bytes of JSON that may wait for the sink (default
    /// 64 MiB, at least 65536).
    pub queue_bytes: usize,
    /// `type` and the type's own keys.
    pub config: SinkConfig,
}

/// The keys every sink type has.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Common {
    types: Vec<RecordKind>,
    queue_records: usize,
    queue_bytes: usize,
}

impl Default for Common {
    fn default() -> Self {
        Common {
            types: Vec::new(),
            queue_records: SinkOptions::QUEUE_RECORDS,
            queue_bytes: SinkOptions::QUEUE_BYTES,
        }
    }
}

impl SinkSection {
    /// `config`, sent every record type, with the default queue limits.
    pub fn new(config: SinkConfig) -> Self {
        let Common {
            types,
            queue_records,
            queue_bytes,
        } = Common::default();
        SinkSection {
            types,
            queue_records,
            queue_bytes,
            config,
        }
    }

    /// Reads and checks a `[[sink]]` table: every problem, each with its
    /// key, or the sink.
    ///
    /// A `type` that is missing, unknown or not built in is the only
    /// problem reported (the other keys mean nothing without it). Else
    /// every key is checked: unknown keys (named as another type's when
    /// they are), wrong types, then the values of the keys left.
    pub fn read(mut table: toml::Table) -> Result<SinkSection, Vec<ConfigProblem>> {
        let name = read_type_name(table.remove("type"))
            .map_err(|p| vec![p])?
            .name;
        let own_keys = SinkConfig::keys_of_type(name).unwrap_or_default();
        let common_keys = keys_of::<Common>();
        let mut problems = Vec::new();
        let mut common = toml::Table::new();
        let mut own = toml::Table::new();
        for (key, value) in table {
            if common_keys.contains(&key.as_str()) {
                common.insert(key, value);
            } else if own_keys.contains(&key.as_str()) {
                own.insert(key, value);
            } else {
                let reason = unknown_key(&key, name, own_keys);
                problems.push(ConfigProblem::new(key, reason));
            }
        }
        let common = read_keys::<Common>(common, &mut problems);
        let config = SinkConfig::read_type(name, own, &mut problems);
        let (Some(common), Some(config)) = (common, config) else {
            return Err(problems);
        };
        let section = SinkSection {
            types: common.types,
            queue_records: common.queue_records,
            queue_bytes: common.queue_bytes,
            config,
        };
        // A key serde refused was left out; its default is no news.
        let refused: BTreeSet<String> = problems.iter().map(|p| top_key(&p.key)).collect();
        problems.extend(
            section
                .problems()
                .into_iter()
                .filter(|p| !refused.contains(&top_key(&p.key))),
        );
        if problems.is_empty() {
            Ok(section)
        } else {
            Err(problems)
        }
    }

    /// What is wrong with the values (see [`BuildSink::problems`]).
    pub fn problems(&self) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        if self.queue_records < 1 {
            out.push(ConfigProblem::new("queue_records", "must be at least 1"));
        }
        if self.queue_bytes < 65_536 {
            out.push(ConfigProblem::new("queue_bytes", "must be at least 65536"));
        }
        if let Some(reads) = self.config.settings().reads()
            && !self.types.is_empty()
        {
            let missing: Vec<&str> = reads
                .iter()
                .filter(|k| !self.types.contains(k))
                .map(|k| k.as_str())
                .collect();
            if !missing.is_empty() {
                let all: Vec<&str> = reads.iter().map(|k| k.as_str()).collect();
                out.push(ConfigProblem::new(
                    "types",
                    format!(
                        "the {} sink reads {}: add {}, or leave types out",
                        self.config.type_name(),
                        all.join(", "),
                        missing.join(", ")
                    ),
                ));
            }
        }
        out.extend(self.config.settings().problems());
        out
    }

    /// The sink, not yet opened (see [`BuildSink::build`]).
    pub fn build(&self, ctx: &SinkContext) -> Result<Box<dyn Sink>, ConfigProblem> {
        self.config.settings().build(ctx)
    }

    /// The record types this sink subscribed to: `types` (all when
    /// empty), or those its type reads (see [`BuildSink::reads`]).
    pub fn kinds(&self) -> KindSet {
        match self.config.settings().reads() {
            Some(reads) => KindSet::of(reads),
            None if self.types.is_empty() => KindSet::ALL,
            None => KindSet::of(&self.types),
        }
    }

    /// Subscribes the sink to `types` instead (all when empty), as a
    /// replay's `--types` does; a sink type that reads only some types
    /// keeps them.
    pub fn set_types(&mut self, types: &[RecordKind]) {
        self.types = types.to_vec();
    }

    /// How the runtime feeds the sink: its types and queue limits.
    pub fn options(&self) -> SinkOptions {
        let mut options = SinkOptions::new(self.kinds());
        options.queue_records = self.queue_records;
        options.queue_bytes = self.queue_bytes;
        options
    }
}

impl<'de> Deserialize<'de> for SinkSection {
    /// Reads the table as [`SinkSection::read`] does; the problems become
    /// one error, `key: reason` joined by `; `.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let table = toml::Table::deserialize(deserializer)?;
        SinkSection::read(table).map_err(|problems| {
            let all: Vec<String> = problems.iter().map(ToString::to_string).collect();
            de::Error::custom(all.join("; "))
        })
    }
}

/// The type `value` names, built in; else the one problem with `type`.
fn read_type_name(value: Option<toml::Value>) -> Result<&'static SinkType, ConfigProblem> {
    let expected = || {
        let names: Vec<String> = SinkConfig::TYPES
            .iter()
            .map(|t| format!("{:?}", t.name))
            .collect();
        format!("expected one of {}", names.join(", "))
    };
    let problem = |reason: String| ConfigProblem::new("type", reason);
    match value {
        None => Err(problem(format!("is required: {}", expected()))),
        Some(toml::Value::String(name)) => match SinkType::named(&name) {
            Some(t) if t.built => Ok(t),
            Some(t) => Err(problem(t.not_built())),
            None => Err(problem(format!(
                "unknown sink type {name:?}, {}",
                expected()
            ))),
        },
        Some(other) => Err(problem(format!(
            "invalid type: {}, {}",
            other.type_str(),
            expected()
        ))),
    }
}

/// Why `key` is refused in a sink of type `name`, whose keys are `own`.
fn unknown_key(key: &str, name: &str, own: &[&str]) -> String {
    let owners: Vec<&str> = SinkConfig::TYPES
        .iter()
        .filter(|t| SinkConfig::keys_of_type(t.name).is_some_and(|keys| keys.contains(&key)))
        .map(|t| t.name)
        .collect();
    if owners.is_empty() {
        let keys: Vec<String> = ["type"]
            .iter()
            .chain(keys_of::<Common>())
            .chain(own)
            .map(|k| format!("`{k}`"))
            .collect();
        format!(
            "unknown field `{key}`, a {name} sink takes {}",
            keys.join(", ")
        )
    } else {
        format!("applies to type {} only", owners.join(" and "))
    }
}

/// The key a problem's key is in: `types` for `types[2]`.
fn top_key(key: &str) -> String {
    key.split(['.', '[']).next().unwrap_or_default().to_owned()
}

/// Deserializes a `T` from `table`, noting every key serde refuses: each
/// is noted, left out, and the rest read again. `None` if a problem has
/// no key to leave out.
fn read_keys<T: DeserializeOwned>(
    mut table: toml::Table,
    problems: &mut Vec<ConfigProblem>,
) -> Option<T> {
    loop {
        match serde_path_to_error::deserialize::<_, T>(toml::Value::Table(table.clone())) {
            Ok(value) => return Some(value),
            Err(e) => {
                let top = match e.path().iter().next() {
                    Some(Segment::Map { key }) => Some(key.clone()),
                    _ => None,
                };
                let key = top
                    .as_ref()
                    .map_or_else(String::new, |_| e.path().to_string());
                let reason = e.inner().to_string();
                let reason = reason.lines().next().unwrap_or_default();
                problems.push(ConfigProblem::new(key, reason));
                top.and_then(|k| table.remove(&k))?;
            }
        }
    }
}

/// The keys of `T`, a struct with a derived `Deserialize`: the field names
/// it hands to `deserialize_struct`, caught by a deserializer that reads
/// nothing.
fn keys_of<T: DeserializeOwned>() -> &'static [&'static str] {
    let fields = Cell::new(None);
    let _ = T::deserialize(FieldNames(&fields));
    fields.get().unwrap_or_default()
}

/// A deserializer that notes the field names of the struct asked for, and
/// fails.
struct FieldNames<'a>(&'a Cell<Option<&'static [&'static str]>>);

/// The error of [`FieldNames`], which never has a value to give.
#[derive(Debug)]
struct NoValue;

impl fmt::Display for NoValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("only field names are read")
    }
}

impl std::error::Error for NoValue {}

impl de::Error for NoValue {
    fn custom<T: fmt::Display>(_: T) -> Self {
        NoValue
    }
}

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = NoValue;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, NoValue> {
        Err(NoValue)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, NoValue> {
        self.0.set(Some(fields));
        Err(NoValue)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// Checks `HOST:PORT`, `form` in messages (`tcp://HOST:PORT`): a port
/// from 1 to 65535, and a host that is an IPv4 address, an IPv6 address
/// in brackets, or else one `other_host` takes (a host name, `*`...).
#[cfg(any(feature = "zmq", feature = "ipfix", feature = "kafka"))]
pub(crate) fn check_host_port(
    address: &str,
    form: &str,
    other_host: impl FnOnce(&str) -> Result<(), String>,
) -> Result<(), String> {
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(format!("no port: expected {form}"));
    };
    if !port.parse::<u16>().is_ok_and(|p| p != 0) {
        return Err(format!(
            "the port must be a number from 1 to 65535, not {port:?}"
        ));
    }
    if let Some(ip) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return match ip.parse::<std::net::Ipv6Addr>() {
            Ok(_) => Ok(()),
            Err(_) => Err(format!("{ip:?} is not an IPv6 address")),
        };
    }
    if host.contains(':') {
        return Err(format!(
            "an IPv6 address goes in brackets: {}",
            form.replace("HOST", "[::1]")
        ));
    }
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return Ok(());
    }
    if !host.is_empty() && host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!("{host:?} is not an IPv4 address"));
    }
    other_host(host)
}

/// Whether `host` is a DNS name: dot-separated labels of letters, digits
/// and hyphens, not starting or ending with a hyphen.
#[cfg(any(feature = "zmq", feature = "ipfix", feature = "kafka"))]
pub(crate) fn is_host_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Reads a `[[sink]]` table of type `sink_type` with the keys in
/// `keys` (TOML lines): its configuration, or its problems as (key,
/// reason). For the sinks' tests of their own configuration.
#[cfg(all(
    test,
    any(
        feature = "file",
        feature = "socket",
        feature = "zmq",
        feature = "ipfix",
        feature = "kafka",
        feature = "mqtt",
        feature = "http"
    )
))]
pub(crate) fn read_for_test(
    sink_type: &str,
    keys: &str,
) -> Result<SinkConfig, Vec<(String, String)>> {
    let table = toml::from_str(&format!("type = \"{sink_type}\"\n{keys}")).unwrap();
    SinkSection::read(table)
        .map(|section| section.config)
        .map_err(|problems| problems.into_iter().map(|p| (p.key, p.reason)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<SinkSection, Vec<ConfigProblem>> {
        SinkSection::read(toml::from_str(text).unwrap())
    }

    /// The problems of `text`, as (key, reason).
    fn problems(text: &str) -> Vec<(String, String)> {
        read(text)
            .unwrap_err()
            .into_iter()
            .map(|p| (p.key, p.reason))
            .collect()
    }

    #[test]
    #[cfg(feature = "stdout")]
    fn the_common_keys_default_and_are_read_for_every_type() {
        let built = SinkConfig::TYPES.iter().filter(|t| t.built);
        for t in built {
            let common = keys_of::<Common>();
            let own = SinkConfig::keys_of_type(t.name).unwrap();
            assert!(
                !own.iter().any(|k| *k == "type" || common.contains(k)),
                "{}: {own:?}",
                t.name
            );
        }
        let s = read("type = \"stdout\"").unwrap();
        assert_eq!(s, SinkSection::new(s.config.clone()));
        assert_eq!(s.kinds(), KindSet::ALL);
        assert_eq!(s.options(), SinkOptions::new(KindSet::ALL));
        let mut s = read(
            "type = \"stdout\"\ntypes = [\"flow_purge\"]\nqueue_records = 10\nqueue_bytes = 65536\n",
        )
        .unwrap();
        assert_eq!(s.config.type_name(), "stdout");
        assert_eq!((s.queue_records, s.queue_bytes), (10, 65_536));
        assert!(s.kinds().contains(RecordKind::FlowPurge));
        assert!(!s.kinds().contains(RecordKind::Flow));
        assert_eq!(s.options().queue_records, 10);
        s.set_types(&[]);
        assert_eq!(s.kinds(), KindSet::ALL);
    }

    #[test]
    #[cfg(feature = "stdout")]
    fn every_bad_common_key_is_named() {
        let got = problems(
            "type = \"stdout\"\ntypes = [\"flow\", \"flw\"]\nqueue_records = 0\nqueue_bytes = -1\n",
        );
        assert_eq!(got.len(), 3, "{got:?}");
        let reason = |key: &str| &got.iter().find(|(k, _)| k == key).unwrap().1;
        assert!(
            reason("types[1]").contains("unknown variant `flw`"),
            "{got:?}"
        );
        assert!(reason("queue_bytes").contains("invalid value"), "{got:?}");
        assert_eq!(reason("queue_records"), "must be at least 1");
    }

    #[test]
    fn a_bad_type_is_the_one_problem() {
        let expected = "expected one of \"stdout\", \"file\", \"socket\", \"zmq\", \"ipfix\", \"kafka\", \"mqtt\", \"http\"";
        assert_eq!(
            problems("type = \"nats\"\nservers = [\"x\"]\ntypes = 3\n"),
            vec![(
                "type".into(),
                format!("unknown sink type \"nats\", {expected}")
            )]
        );
        assert_eq!(
            problems("path = \"/x\"\n"),
            vec![("type".into(), format!("is required: {expected}"))]
        );
        assert_eq!(
            problems("type = 3\n"),
            vec![("type".into(), format!("invalid type: integer, {expected}"))]
        );
    }

    #[test]
    fn a_type_left_out_of_the_build_names_its_feature() {
        let zmq = SinkType {
            name: "zmq",
            feature: "zmq",
            built: false,
        };
        assert_eq!(
            zmq.not_built(),
            "this flowstatd was built without the zmq sink (feature \"zmq\")"
        );
        assert_eq!(
            SinkType::named("zmq").map(|t| t.built),
            Some(cfg!(feature = "zmq"))
        );
        let got = read("type = \"zmq\"\nendpoint = \"tcp://127.0.0.1:1\"\n");
        if cfg!(feature = "zmq") {
            assert!(got.is_ok(), "{got:?}");
        } else {
            assert_eq!(got, Err(vec![ConfigProblem::new("type", zmq.not_built())]));
        }
    }

    #[test]
    #[cfg(all(feature = "stdout", feature = "file", feature = "socket"))]
    fn a_key_of_another_type_names_the_types_it_applies_to() {
        let got = problems("type = \"stdout\"\npath = \"/x\"\nwait_for_consumers = 2\nbogus = 1\n");
        let want_wait = if cfg!(feature = "zmq") {
            "socket and zmq"
        } else {
            "socket"
        };
        assert!(got.contains(&("path".into(), "applies to type file only".into())));
        assert!(got.contains(&(
            "wait_for_consumers".into(),
            format!("applies to type {want_wait} only")
        )));
        assert!(
            got.contains(&(
                "bogus".into(),
                "unknown field `bogus`, a stdout sink takes `type`, `types`, `queue_records`, \
             `queue_bytes`"
                    .into()
            ))
        );
    }

    #[test]
    #[cfg(feature = "stdout")]
    fn the_deserialize_impl_reads_the_same_way() {
        #[derive(Debug, Deserialize)]
        struct File {
            sink: Vec<SinkSection>,
        }
        let f: File = toml::from_str("[[sink]]\ntype = \"stdout\"\n").unwrap();
        assert_eq!(f.sink[0].config.type_name(), "stdout");
        let e = toml::from_str::<File>("[[sink]]\ntype = \"stdout\"\nqueue_records = 0\nx = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("x: unknown field `x`"), "{e}");
        assert!(e.contains("; queue_records: must be at least 1"), "{e}");
    }

    #[test]
    fn keys_are_read_from_the_derived_field_list() {
        assert_eq!(
            keys_of::<Common>(),
            ["types", "queue_records", "queue_bytes"]
        );
        assert!(keys_of::<u32>().is_empty());
    }
}
