//! The IPFIX sink's keys: `[[sink]]` with `type = "ipfix"`.

use std::time::Duration;

use flowstat_core::{RecordKind, Sink};
use serde::Deserialize;

use super::{IpfixOptions, IpfixSink, IpfixVersion, READS};
use crate::config::{BuildSink, ConfigProblem, SinkContext, check_host_port, is_host_name};

/// `type = "ipfix"`: IPFIX or NetFlow v9 flow records over UDP to a
/// collector (see [`IpfixSink`]).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct IpfixConfig {
    /// `collector` (required): `HOST:PORT`, HOST an IPv4 address, an IPv6
    /// address in brackets or a host name.
    pub collector: String,
    /// `version`: 10 (IPFIX, the default) or 9 (NetFlow v9).
    pub version: u16,
    /// `observation_domain_id`: the observation domain (v9: source id),
    /// default 0.
    pub observation_domain_id: u32,
    /// `active_timeout_secs`: a flow alive this long since its previous
    /// export is exported at its next `flow_stats` record (default 120,
    /// at least 1).
    pub active_timeout_secs: u64,
    /// `template_refresh_messages`: the templates are sent again after
    /// this many messages (default 20, at least 1).
    pub template_refresh_messages: u32,
    /// `template_refresh_secs`: ... or after this long (default 60, at
    /// least 1).
    pub template_refresh_secs: u64,
    /// `max_message_bytes`: the largest message, a UDP payload (default
    /// 1400, from 1024 to 65507).
    pub max_message_bytes: usize,
    /// `max_flows`: flows whose metadata the sink keeps between their
    /// `flow` record and their purge, about 250 bytes each with their
    /// names (default 1000000, the agent's `max_flows`; at least 1).
    pub max_flows: usize,
}

impl Default for IpfixConfig {
    /// No collector (required), and [`IpfixOptions`]' defaults.
    fn default() -> Self {
        let o = IpfixOptions::new("");
        IpfixConfig {
            collector: o.collector,
            version: 10,
            observation_domain_id: o.observation_domain_id,
            active_timeout_secs: o.active_timeout.as_secs(),
            template_refresh_messages: o.template_refresh_messages,
            template_refresh_secs: o.template_refresh.as_secs(),
            max_message_bytes: o.max_message_bytes,
            max_flows: o.max_flows,
        }
    }
}

/// The smallest and largest `max_message_bytes`: room for the templates
/// and the longest data record; the largest UDP payload over IPv4.
const MESSAGE_BYTES: (usize, usize) = (1024, 65_507);

impl IpfixConfig {
    /// The sink's options (the values unchecked: see `problems`).
    pub fn options(&self) -> IpfixOptions {
        IpfixOptions {
            version: match self.version {
                9 => IpfixVersion::NetflowV9,
                _ => IpfixVersion::Ipfix,
            },
            observation_domain_id: self.observation_domain_id,
            active_timeout: Duration::from_secs(self.active_timeout_secs),
            template_refresh_messages: self.template_refresh_messages,
            template_refresh: Duration::from_secs(self.template_refresh_secs),
            max_message_bytes: self.max_message_bytes,
            max_flows: self.max_flows,
            ..IpfixOptions::new(&self.collector)
        }
    }
}

impl BuildSink for IpfixConfig {
    fn problems(&self) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        if let Err(reason) = check_collector(&self.collector) {
            out.push(ConfigProblem::new("collector", reason));
        }
        if !matches!(self.version, 9 | 10) {
            out.push(ConfigProblem::new(
                "version",
                format!("must be 10 (IPFIX) or 9 (NetFlow v9), not {}", self.version),
            ));
        }
        for (key, value) in [
            ("active_timeout_secs", self.active_timeout_secs),
            ("template_refresh_secs", self.template_refresh_secs),
            (
                "template_refresh_messages",
                self.template_refresh_messages.into(),
            ),
            ("max_flows", self.max_flows as u64),
        ] {
            if value < 1 {
                out.push(ConfigProblem::new(key, "must be at least 1"));
            }
        }
        let (min, max) = MESSAGE_BYTES;
        if !(min..=max).contains(&self.max_message_bytes) {
            out.push(ConfigProblem::new(
                "max_message_bytes",
                format!("must be from {min} to {max} (a UDP payload; 1400 fits a 1500-byte MTU)"),
            ));
        }
        out
    }

    fn build(&self, _: &SinkContext) -> Result<Box<dyn Sink>, ConfigProblem> {
        if let Some(problem) = self.problems().into_iter().next() {
            return Err(problem);
        }
        Ok(Box::new(IpfixSink::new(self.options())))
    }

    fn reads(&self) -> Option<&'static [RecordKind]> {
        Some(READS)
    }
}

/// Checks `collector`: `HOST:PORT`.
fn check_collector(collector: &str) -> Result<(), String> {
    const EXAMPLES: &str = "e.g. 127.0.0.1:4739, [2001:db8::1]:4739 or collector.example:4739";
    if collector.is_empty() {
        return Err(format!("is required: HOST:PORT, {EXAMPLES}"));
    }
    if let Some((scheme, _)) = collector.split_once("://") {
        return Err(format!(
            "invalid collector {collector:?}: HOST:PORT, without {scheme}://; {EXAMPLES}"
        ));
    }
    check_host_port(collector, "HOST:PORT", |host| {
        if is_host_name(host) {
            Ok(())
        } else {
            Err(format!("{host:?} is not an IP address or a host name"))
        }
    })
    .map_err(|why| format!("invalid collector {collector:?}: {why}; {EXAMPLES}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SinkSection;
    use crate::config::{SinkConfig, read_for_test};
    use flowstat_core::KindSet;

    fn read(text: &str) -> Result<IpfixConfig, Vec<(String, String)>> {
        match read_for_test("ipfix", text)? {
            SinkConfig::Ipfix(c) => Ok(c),
            #[allow(
                unreachable_patterns,
                reason = "unreachable when it is the only type built"
            )]
            other => panic!("not an ipfix sink: {other:?}"),
        }
    }

    #[test]
    fn every_key_is_read_and_the_rest_default() {
        let c = read(
            "collector = \"[::1]:2055\"\nversion = 9\nobservation_domain_id = 7\n\
             active_timeout_secs = 30\ntemplate_refresh_messages = 5\n\
             template_refresh_secs = 10\nmax_message_bytes = 9000\nmax_flows = 100\n",
        )
        .unwrap();
        assert_eq!(
            c.options(),
            IpfixOptions {
                collector: "[::1]:2055".into(),
                version: IpfixVersion::NetflowV9,
                observation_domain_id: 7,
                active_timeout: Duration::from_secs(30),
                template_refresh_messages: 5,
                template_refresh: Duration::from_secs(10),
                max_message_bytes: 9000,
                max_flows: 100,
            }
        );
        let c = read("collector = \"collector.example:4739\"\n").unwrap();
        assert_eq!(c.options(), IpfixOptions::new("collector.example:4739"));
        assert_eq!(c.options().version, IpfixVersion::Ipfix);
    }

    #[test]
    fn a_bad_collector_is_named_with_the_form_it_takes() {
        for (collector, reason) in [
            ("", "is required: HOST:PORT"),
            ("127.0.0.1", "no port: expected HOST:PORT"),
            ("127.0.0.1:0", "the port must be a number from 1 to 65535"),
            ("127.0.0.1:ipfix", "the port must be a number"),
            ("::1:4739", "an IPv6 address goes in brackets: [::1]:PORT"),
            ("[::g]:4739", "\"::g\" is not an IPv6 address"),
            ("300.1.1.1:4739", "\"300.1.1.1\" is not an IPv4 address"),
            (
                "bad_name:4739",
                "\"bad_name\" is not an IP address or a host name",
            ),
            ("udp://10.0.0.1:4739", "HOST:PORT, without udp://"),
        ] {
            let got = read(&format!("collector = {collector:?}\n")).unwrap_err();
            assert!(
                got.len() == 1 && got[0].0 == "collector" && got[0].1.contains(reason),
                "{collector}: want {reason}, got {got:?}"
            );
            if !collector.is_empty() {
                assert!(
                    got[0].1.contains("e.g. 127.0.0.1:4739"),
                    "{collector}: the fix is shown: {got:?}"
                );
            }
        }
        for collector in ["10.0.0.1:4739", "[2001:db8::1]:2055", "localhost:4739"] {
            assert!(
                read(&format!("collector = {collector:?}\n")).is_ok(),
                "{collector}"
            );
        }
    }

    #[test]
    fn bad_values_are_named() {
        let got = read(
            "collector = \"127.0.0.1:4739\"\nversion = 5\nactive_timeout_secs = 0\n\
             template_refresh_secs = 0\ntemplate_refresh_messages = 0\nmax_flows = 0\n\
             max_message_bytes = 100\nobservation_domain_id = -1\n",
        )
        .unwrap_err();
        let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "observation_domain_id",
                "version",
                "active_timeout_secs",
                "template_refresh_secs",
                "template_refresh_messages",
                "max_flows",
                "max_message_bytes"
            ],
            "{got:?}"
        );
        assert!(
            got[1]
                .1
                .contains("must be 10 (IPFIX) or 9 (NetFlow v9), not 5")
        );
        assert_eq!(got[2].1, "must be at least 1");
        assert!(got[6].1.contains("must be from 1024 to 65507"), "{got:?}");
        assert!(read("collector = \"127.0.0.1:1\"\nmax_message_bytes = 65508\n").is_err());
    }

    #[test]
    fn the_sink_gets_the_flow_records_it_reads_whatever_types_says() {
        let table = |text: &str| toml::from_str(&format!("type = \"ipfix\"\n{text}")).unwrap();
        let reads = KindSet::of(READS);
        let s = SinkSection::read(table("collector = \"127.0.0.1:4739\"\n")).unwrap();
        assert_eq!(s.kinds(), reads, "only what it reads, by default");
        assert!(!s.kinds().contains(RecordKind::AgentStatus));
        let s = SinkSection::read(table(
            "collector = \"127.0.0.1:4739\"\n\
             types = [\"flow\", \"flow_stats\", \"flow_purge\", \"agent_status\"]\n",
        ))
        .unwrap();
        assert_eq!(s.kinds(), reads);
        let got = SinkSection::read(table(
            "collector = \"127.0.0.1:4739\"\ntypes = [\"flow_purge\"]\n",
        ))
        .unwrap_err();
        assert_eq!(
            got,
            vec![ConfigProblem::new(
                "types",
                "the ipfix sink reads flow, flow_stats, flow_purge: add flow, flow_stats, or \
                 leave types out"
            )]
        );
        // A replay's --types cannot starve it.
        let mut s = SinkSection::read(table("collector = \"127.0.0.1:4739\"\n")).unwrap();
        s.set_types(&[RecordKind::FlowPurge]);
        assert_eq!(s.kinds(), reads);
    }
}
