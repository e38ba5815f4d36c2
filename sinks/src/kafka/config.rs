//! The Kafka sink's keys: `[[sink]]` with `type = "kafka"`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use flowstat_core::{RecordKind, Sink};
use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::{KafkaAcks, KafkaCompression, KafkaOptions, KafkaSink, topic_for};
use crate::config::{BuildSink, ConfigProblem, SinkContext, check_host_port, is_host_name};

/// `type = "kafka"`: a Kafka producer (see [`KafkaSink`]).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// `brokers` (required): bootstrap brokers, `"HOST:PORT"` each; HOST
    /// is an IP address (IPv6 in brackets) or a host name.
    pub brokers: Vec<String>,
    /// `topic`: the topic template, `{type}` standing for the record type
    /// (default `"flowstat.{type}"`).
    pub topic: String,
    /// `compression`: `"lz4"` (the default), `"zstd"`, `"gzip"`,
    /// `"snappy"` or `"none"`.
    pub compression: KafkaCompression,
    /// `acks`: `"all"` (the default, or -1), 1 (the leader) or 0 (none).
    pub acks: KafkaAcks,
    /// `idempotence`: no duplicates or reordering on retries (default
    /// true; needs `acks = "all"`).
    pub idempotence: bool,
    /// `close_timeout_ms`: how long shutdown waits for the brokers to
    /// acknowledge what the sink holds (default 1000).
    pub close_timeout_ms: u64,
    /// `properties`: librdkafka properties passed through, as strings,
    /// integers or booleans (`"security.protocol" = "sasl_ssl"`...).
    #[serde(deserialize_with = "scalar_map")]
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    /// No brokers (required), and [`KafkaOptions`]' defaults.
    fn default() -> Self {
        let o = KafkaOptions::new(&[]);
        KafkaConfig {
            brokers: o.brokers,
            topic: o.topic,
            compression: o.compression,
            acks: o.acks,
            idempotence: o.idempotence,
            close_timeout_ms: o.close_timeout.as_millis() as u64,
            properties: o.properties,
        }
    }
}

impl KafkaConfig {
    /// The sink's options, keying records without a digest by `host_name`.
    pub fn options(&self, host_name: &str) -> KafkaOptions {
        KafkaOptions {
            brokers: self.brokers.clone(),
            topic: self.topic.clone(),
            compression: self.compression,
            acks: self.acks,
            idempotence: self.idempotence,
            close_timeout: Duration::from_millis(self.close_timeout_ms),
            properties: self.properties.clone(),
            host_name: host_name.to_owned(),
        }
    }
}

impl BuildSink for KafkaConfig {
    fn problems(&self) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        if self.brokers.is_empty() {
            out.push(ConfigProblem::new(
                "brokers",
                format!("is required: a list of HOST:PORT, {BROKERS_EXAMPLE}"),
            ));
        }
        for (i, broker) in self.brokers.iter().enumerate() {
            if let Err(reason) = check_broker(broker) {
                out.push(ConfigProblem::new(format!("brokers[{i}]"), reason));
            }
        }
        if let Err(reason) = check_topic(&self.topic) {
            out.push(ConfigProblem::new("topic", reason));
        }
        if self.idempotence && self.acks != KafkaAcks::All {
            out.push(ConfigProblem::new(
                "acks",
                format!(
                    "idempotence (on by default) needs acks = \"all\": set acks = \"all\", or \
                     idempotence = false to have acks = {}",
                    self.acks.as_str()
                ),
            ));
        }
        for (key, value) in &self.properties {
            if let Err(reason) = check_property(key, value) {
                out.push(ConfigProblem::new(format!("properties.{key}"), reason));
            }
        }
        out
    }

    fn build(&self, ctx: &SinkContext) -> Result<Box<dyn Sink>, ConfigProblem> {
        if let Some(problem) = self.problems().into_iter().next() {
            return Err(problem);
        }
        Ok(Box::new(KafkaSink::new(self.options(&ctx.hostname))))
    }
}

/// An example of `brokers`, for messages.
const BROKERS_EXAMPLE: &str = r#"e.g. ["kafka1.example:9092", "10.0.0.2:9092"]"#;

/// Checks a bootstrap broker, `HOST:PORT`.
fn check_broker(broker: &str) -> Result<(), String> {
    if let Some((scheme, _)) = broker.split_once("://") {
        return Err(format!(
            "invalid broker {broker:?}: HOST:PORT goes without {scheme}:// (the protocol is \
             the property \"security.protocol\"), {BROKERS_EXAMPLE}"
        ));
    }
    check_host_port(broker, "HOST:PORT", |host| {
        if is_host_name(host) {
            Ok(())
        } else {
            Err(format!("{host:?} is not an IP address or a host name"))
        }
    })
    .map_err(|why| format!("invalid broker {broker:?}: {why}, {BROKERS_EXAMPLE}"))
}

/// Checks a topic template: `{type}` its only placeholder, and a legal
/// Kafka topic name (at most 249 letters, digits, `.`, `_` and `-`) for
/// every record type.
fn check_topic(template: &str) -> Result<(), String> {
    const EXAMPLE: &str = r#"e.g. "flowstat.{type}""#;
    let invalid = |why: String| format!("invalid topic template {template:?}: {why}, {EXAMPLE}");
    if template.is_empty() {
        return Err(format!("must not be empty, {EXAMPLE}"));
    }
    let mut rest = template;
    while let Some(at) = rest.find(['{', '}']) {
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("{type}") {
            rest = after;
            continue;
        }
        let what = match tail.find('}') {
            Some(end) if tail.starts_with('{') => format!("unknown placeholder {}", &tail[..=end]),
            _ => format!("a lone {:?}", &tail[..1]),
        };
        return Err(invalid(format!(
            "{what}: the one placeholder is {{type}}, the record type"
        )));
    }
    for kind in RecordKind::ALL {
        let topic = topic_for(template, kind);
        let bad = topic
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')));
        if let Some(c) = bad {
            return Err(invalid(format!(
                "{c:?} cannot be in a Kafka topic name (letters, digits, '.', '_' and '-' only)"
            )));
        }
        if topic.len() > 249 {
            return Err(invalid(format!(
                "the topic of {} records is {} characters long; Kafka allows 249",
                kind.as_str(),
                topic.len()
            )));
        }
        if topic == "." || topic == ".." {
            return Err(invalid(format!("{topic:?} is not a topic name")));
        }
    }
    Ok(())
}

/// Checks a librdkafka property: not one the sink sets from a key of its
/// own, and a name and value librdkafka takes.
fn check_property(key: &str, value: &str) -> Result<(), String> {
    if let Some((_, own)) = KafkaOptions::OWN_PROPERTIES.iter().find(|(p, _)| *p == key) {
        return Err(format!(
            "is set by the sink's key `{own}`: use that instead"
        ));
    }
    if key == "transactional.id" {
        return Err("the sink does not use transactions: leave it out".into());
    }
    match ClientConfig::new().set(key, value).create_native_config() {
        Ok(_) => Ok(()),
        Err(KafkaError::ClientConfig(_, reason, _, _)) => Err(format!("librdkafka: {reason}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Reads a table of librdkafka properties, each a string, an integer or
/// a boolean, into strings.
fn scalar_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    struct Properties;

    impl<'de> Visitor<'de> for Properties {
        type Value = BTreeMap<String, String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a table of librdkafka properties")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((key, Scalar(value))) = map.next_entry()? {
                out.insert(key, value);
            }
            Ok(out)
        }
    }

    deserializer.deserialize_map(Properties)
}

/// A property's value: a string, an integer or a boolean, as a string.
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;

        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, an integer or a boolean")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_owned()))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }

        deserializer.deserialize_any(ScalarVisitor)
    }
}

impl<'de> Deserialize<'de> for KafkaAcks {
    /// Reads `"all"` or -1, 1 or 0 (a number, or the same as a string).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AcksVisitor;

        impl Visitor<'_> for AcksVisitor {
            type Value = KafkaAcks;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#""all" (or -1), 1 or 0"#)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<KafkaAcks, E> {
                match v {
                    "all" | "-1" => Ok(KafkaAcks::All),
                    "1" => Ok(KafkaAcks::Leader),
                    "0" => Ok(KafkaAcks::None),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<KafkaAcks, E> {
                match v {
                    -1 => Ok(KafkaAcks::All),
                    1 => Ok(KafkaAcks::Leader),
                    0 => Ok(KafkaAcks::None),
                    _ => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<KafkaAcks, E> {
                match i64::try_from(v) {
                    Ok(v) => self.visit_i64(v),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
                }
            }
        }

        deserializer.deserialize_any(AcksVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{SinkConfig, read_for_test};

    fn read(text: &str) -> Result<KafkaConfig, Vec<(String, String)>> {
        match read_for_test("kafka", text)? {
            SinkConfig::Kafka(c) => Ok(c),
            #[allow(
                unreachable_patterns,
                reason = "unreachable when it is the only type built"
            )]
            other => panic!("not a kafka sink: {other:?}"),
        }
    }

    #[test]
    fn every_key_is_read_and_the_rest_default() {
        let c = read(
            "brokers = [\"k1.example:9092\", \"10.0.0.2:9093\", \"[::1]:9094\"]\n\
             topic = \"netflows-{type}\"\ncompression = \"zstd\"\nacks = 1\n\
             idempotence = false\nclose_timeout_ms = 5000\n\
             [properties]\n\"security.protocol\" = \"sasl_ssl\"\n\
             \"sasl.mechanisms\" = \"SCRAM-SHA-512\"\n\"linger.ms\" = 20\n\
             \"socket.keepalive.enable\" = true\n",
        )
        .unwrap();
        let o = c.options("probe7");
        assert_eq!(
            o.brokers,
            ["k1.example:9092", "10.0.0.2:9093", "[::1]:9094"]
        );
        assert_eq!(o.topic, "netflows-{type}");
        assert_eq!(o.compression, KafkaCompression::Zstd);
        assert_eq!(o.acks, KafkaAcks::Leader);
        assert!(!o.idempotence);
        assert_eq!(o.close_timeout, Duration::from_secs(5));
        assert_eq!(o.host_name, "probe7");
        let props: Vec<(&str, &str)> = o
            .properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            props,
            [
                ("linger.ms", "20"),
                ("sasl.mechanisms", "SCRAM-SHA-512"),
                ("security.protocol", "sasl_ssl"),
                ("socket.keepalive.enable", "true"),
            ]
        );
        let c = read("brokers = [\"127.0.0.1:9092\"]\n").unwrap();
        let mut want = KafkaOptions::new(&["127.0.0.1:9092"]);
        want.host_name = "h".into();
        assert_eq!(c.options("h"), want);
        for (acks, want) in [
            ("\"all\"", KafkaAcks::All),
            ("-1", KafkaAcks::All),
            ("\"-1\"", KafkaAcks::All),
            ("0", KafkaAcks::None),
            ("\"0\"", KafkaAcks::None),
        ] {
            let c = read(&format!(
                "brokers = [\"k:1\"]\nacks = {acks}\nidempotence = false\n"
            ))
            .unwrap();
            assert_eq!(c.acks, want, "{acks}");
        }
    }

    #[test]
    fn a_bad_broker_list_is_named_with_the_fix() {
        let got = read("brokers = []\n").unwrap_err();
        assert_eq!(
            got,
            vec![(
                "brokers".into(),
                format!("is required: a list of HOST:PORT, {BROKERS_EXAMPLE}")
            )]
        );
        let got = read("").unwrap_err();
        assert_eq!(got[0].0, "brokers");
        let got = read(
            "brokers = [\"k1:9092\", \"k2\", \"k3:0\", \"bad_name:9092\", \"::1:9092\", \
             \"PLAINTEXT://k4:9092\", \"[::g]:1\", \"300.1.1.1:9092\"]\n",
        )
        .unwrap_err();
        let want = [
            (
                "brokers[1]",
                "invalid broker \"k2\": no port: expected HOST:PORT",
            ),
            (
                "brokers[2]",
                "the port must be a number from 1 to 65535, not \"0\"",
            ),
            (
                "brokers[3]",
                "\"bad_name\" is not an IP address or a host name",
            ),
            ("brokers[4]", "an IPv6 address goes in brackets: [::1]:PORT"),
            ("brokers[5]", "HOST:PORT goes without PLAINTEXT://"),
            ("brokers[6]", "\"::g\" is not an IPv6 address"),
            ("brokers[7]", "\"300.1.1.1\" is not an IPv4 address"),
        ];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for ((key, reason), (want_key, want_reason)) in got.iter().zip(want) {
            assert_eq!(key, want_key);
            assert!(reason.contains(want_reason), "{key}: {reason}");
            assert!(reason.ends_with(BROKERS_EXAMPLE), "{key}: {reason}");
        }
        let got = read("brokers = \"k1:9092\"\n").unwrap_err();
        assert_eq!(got[0].0, "brokers");
        assert!(got[0].1.contains("invalid type: string"), "{got:?}");
    }

    #[test]
    fn a_bad_topic_template_is_named_with_the_fix() {
        for good in ["flowstat.{type}", "flows", "{type}", "a_b-c.{type}.{type}"] {
            assert_eq!(check_topic(good), Ok(()), "{good}");
        }
        let example = r#"e.g. "flowstat.{type}""#;
        for (template, reason) in [
            ("", "must not be empty"),
            ("flowstat.{kind}", "unknown placeholder {kind}"),
            ("flowstat.{type", "a lone \"{\""),
            ("flowstat.type}", "a lone \"}\""),
            ("flow stats", "' ' cannot be in a Kafka topic name"),
            ("flowstat/{type}", "'/' cannot be in a Kafka topic name"),
            ("é{type}", "'é' cannot be in a Kafka topic name"),
            (".", "\".\" is not a topic name"),
        ] {
            let got = check_topic(template).unwrap_err();
            assert!(got.contains(reason), "{template}: {got}");
            assert!(got.ends_with(example), "{template}: {got}");
        }
        let long = format!("{}{{type}}", "x".repeat(240));
        let got = check_topic(&long).unwrap_err();
        let want = "the topic of agent_hello records is 251 characters long; Kafka allows 249";
        assert!(got.contains(want), "{got}");
        let got = read("brokers = [\"k:1\"]\ntopic = \"flows {type}\"\n").unwrap_err();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, "topic");
        assert!(
            got[0]
                .1
                .starts_with("invalid topic template \"flows {type}\": ")
        );
    }

    #[test]
    fn acks_other_than_all_need_idempotence_off() {
        let got = read("brokers = [\"k:1\"]\nacks = 1\n").unwrap_err();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, "acks");
        assert!(got[0].1.contains("idempotence = false"), "{got:?}");
        for bad in ["2", "\"leader\"", "true"] {
            let got = read(&format!("brokers = [\"k:1\"]\nacks = {bad}\n")).unwrap_err();
            assert_eq!(got.len(), 1, "{bad}: {got:?}");
            assert_eq!(got[0].0, "acks");
            assert!(
                got[0].1.contains(r#"expected "all" (or -1), 1 or 0"#),
                "{got:?}"
            );
        }
        let got = read("brokers = [\"k:1\"]\ncompression = \"brotli\"\n").unwrap_err();
        assert_eq!(got[0].0, "compression");
        assert!(got[0].1.contains("unknown variant `brotli`"), "{got:?}");
    }

    #[test]
    fn properties_are_checked_by_librdkafka_and_the_sinks_own_refused() {
        let got = read(
            "brokers = [\"k:1\"]\n[properties]\n\"linger.ms\" = \"soon\"\n\
             \"no.such.property\" = 1\n\"bootstrap.servers\" = \"k:2\"\n\
             \"enable.idempotence\" = false\n\"transactional.id\" = \"t\"\n\
             \"message.timeout.ms\" = 60000\n\"nested\" = { a = 1 }\n",
        )
        .unwrap_err();
        let reason = |key: &str| {
            &got.iter()
                .find(|(k, _)| k == key)
                .unwrap_or_else(|| panic!("{key} not in {got:?}"))
                .1
        };
        assert!(reason("properties.nested").contains("a string, an integer or a boolean"));
        // A value serde refused leaves the table out: the others are
        // checked once it is fixed.
        assert_eq!(got.len(), 1, "{got:?}");
        let got = read(
            "brokers = [\"k:1\"]\n[properties]\n\"linger.ms\" = \"soon\"\n\
             \"no.such.property\" = 1\n\"bootstrap.servers\" = \"k:2\"\n\
             \"enable.idempotence\" = false\n\"transactional.id\" = \"t\"\n\
             \"message.timeout.ms\" = 60000\n",
        )
        .unwrap_err();
        let reason = |key: &str| {
            &got.iter()
                .find(|(k, _)| k == key)
                .unwrap_or_else(|| panic!("{key} not in {got:?}"))
                .1
        };
        assert!(
            reason("properties.linger.ms").starts_with("librdkafka: Invalid value"),
            "{got:?}"
        );
        assert!(
            reason("properties.no.such.property").contains("No such configuration property"),
            "{got:?}"
        );
        assert_eq!(
            reason("properties.bootstrap.servers"),
            "is set by the sink's key `brokers`: use that instead"
        );
        assert_eq!(
            reason("properties.enable.idempotence"),
            "is set by the sink's key `idempotence`: use that instead"
        );
        assert!(reason("properties.transactional.id").contains("does not use transactions"));
        assert_eq!(got.len(), 5, "{got:?}");
    }

    #[test]
    fn tls_and_sasl_properties_pass_through() {
        let c = read(
            "brokers = [\"k:9093\"]\n[properties]\n\"security.protocol\" = \"sasl_ssl\"\n\
             \"sasl.mechanisms\" = \"SCRAM-SHA-256\"\n\"sasl.username\" = \"agent\"\n\
             \"sasl.password\" = \"secret\"\n\"ssl.ca.location\" = \"/etc/ssl/certs\"\n",
        )
        .unwrap();
        let native = c.options("").client_config();
        assert_eq!(native.get("security.protocol"), Some("sasl_ssl"));
        assert!(native.create_native_config().is_ok());
    }

    #[test]
    fn build_refuses_what_problems_reports() {
        let c = KafkaConfig::default();
        let e = c.build(&SinkContext::default()).err().unwrap();
        assert_eq!(e.key, "brokers");
        let c = KafkaConfig {
            brokers: vec!["127.0.0.1:9092".into()],
            ..KafkaConfig::default()
        };
        let sink = c.build(&SinkContext::default()).unwrap();
        assert_eq!(sink.name(), "kafka:127.0.0.1:9092");
    }
}
