//! The configuration file (`/etc/flowstatd/flowstatd.toml`; every option,
//! with its default, is in `conf/flowstatd.toml`).
//!
//! Loading reports every error at once, each naming the file, the key and
//! the reason, so a user fixes a config in one pass.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use flowstat_decode::DecodeConfig;
use flowstat_flow::{FlowConfig, LocalNetworks};
use ipnet::IpNet;
use serde::Deserialize;

/// The whole configuration.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[agent]`
    pub agent: AgentSection,
    /// `[flows]`
    pub flows: FlowsSection,
    /// `[decode]`
    pub decode: DecodeSection,
}

/// `[agent]`: telemetry cadence and what counts as local.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSection {
    /// Seconds between `flow_stats`, `agent_status` and `interface_stats`.
    pub update_interval_secs: u64,
    /// Networks whose addresses are local, besides the capture interfaces'.
    pub local_networks: Vec<IpNet>,
}

impl Default for AgentSection {
    fn default() -> Self {
        AgentSection {
            update_interval_secs: 15,
            local_networks: Vec::new(),
        }
    }
}

/// `[flows]`: flow table size and timeouts.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FlowsSection {
    /// Most flows held; beyond it the least recently seen flow is evicted.
    pub max_flows: u64,
    /// Idle timeout of UDP and other non-TCP flows.
    pub ttl_idle_flow_secs: u64,
    /// Idle timeout of TCP flows.
    pub ttl_idle_tcp_flow_secs: u64,
    /// Quiet time before a closed TCP flow is purged.
    pub ttl_closed_tcp_flow_secs: u64,
    /// Packets examined by detection before it gives up.
    pub max_detection_packets: u64,
    /// How long later fragments are matched to their first fragment.
    pub fragment_timeout_secs: u64,
}

impl Default for FlowsSection {
    fn default() -> Self {
        let d = FlowConfig::default();
        FlowsSection {
            max_flows: d.max_flows as u64,
            ttl_idle_flow_secs: d.ttl_idle_flow.as_secs(),
            ttl_idle_tcp_flow_secs: d.ttl_idle_tcp_flow.as_secs(),
            ttl_closed_tcp_flow_secs: d.ttl_closed_tcp_flow.as_secs(),
            max_detection_packets: u64::from(d.max_detection_packets),
            fragment_timeout_secs: d.fragment_timeout.as_secs(),
        }
    }
}

/// A tunnel flowstat can look inside (config `decode.decapsulate`).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Hash, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum Tunnel {
    /// IPv4/IPv6 in IPv4/IPv6 (IP protocols 4 and 41).
    IpInIp,
    /// GRE (IP protocol 47), including Ethernet over GRE.
    Gre,
    /// VXLAN (UDP `vxlan_port`).
    Vxlan,
}

/// `[decode]`: what the decoder looks inside.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DecodeSection {
    /// Optional tunnels to decapsulate (802.1Q, MPLS, PPPoE and GTP-U
    /// always are).
    pub decapsulate: Vec<Tunnel>,
    /// UDP port of VXLAN.
    pub vxlan_port: u16,
    /// UDP port of GTP-U.
    pub gtp_u_port: u16,
}

impl Default for DecodeSection {
    fn default() -> Self {
        let d = DecodeConfig::default();
        DecodeSection {
            decapsulate: Vec::new(),
            vxlan_port: d.vxlan_port,
            gtp_u_port: d.gtp_u_port,
        }
    }
}

/// One invalid key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyError {
    /// Dotted path of the key, e.g. `flows.max_flows`.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// Keys with wrong names, types or values.
    #[error("{}", KeyErrors(path, errors))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every bad key.
        errors: Vec<KeyError>,
    },
}

struct KeyErrors<'a>(&'a Path, &'a [KeyError]);

impl fmt::Display for KeyErrors<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for e in self.1 {
            if !first {
                f.write_str("\n")?;
            }
            first = false;
            write!(f, "{}: {}: {}", self.0.display(), e.key, e.reason)?;
        }
        Ok(())
    }
}

/// At most this many key errors are reported from one file.
const MAX_ERRORS: usize = 50;

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates `text`, read from `path` (used in messages).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        let mut errors = Vec::new();
        // serde stops at the first bad key: note it, drop it, try again, so
        // that every bad key is reported.
        let config = loop {
            match serde_path_to_error::deserialize::<_, Config>(toml::Value::Table(table.clone())) {
                Ok(config) => break config,
                Err(e) => {
                    let key = e.path().to_string();
                    let reason = e.inner().to_string();
                    let reason = reason.lines().next().unwrap_or_default().to_owned();
                    let removed = remove_path(&mut table, &key);
                    errors.push(KeyError { key, reason });
                    if !removed || errors.len() >= MAX_ERRORS {
                        break Config::default();
                    }
                }
            }
        };
        errors.extend(config.validate());
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                path: path.to_owned(),
                errors,
            })
        }
    }

    /// Range checks serde cannot express.
    fn validate(&self) -> Vec<KeyError> {
        let mut errors = Vec::new();
        let mut check = |ok: bool, key: &str, reason: &str| {
            if !ok {
                errors.push(KeyError {
                    key: key.to_owned(),
                    reason: reason.to_owned(),
                });
            }
        };
        let (a, f, d) = (&self.agent, &self.flows, &self.decode);
        check(
            (1..=86_400).contains(&a.update_interval_secs),
            "agent.update_interval_secs",
            "must be between 1 and 86400 seconds",
        );
        check(
            (1..=u64::from(u32::MAX - 1)).contains(&f.max_flows),
            "flows.max_flows",
            "must be between 1 and 4294967294",
        );
        for (v, key) in [
            (f.ttl_idle_flow_secs, "flows.ttl_idle_flow_secs"),
            (f.ttl_idle_tcp_flow_secs, "flows.ttl_idle_tcp_flow_secs"),
            (f.ttl_closed_tcp_flow_secs, "flows.ttl_closed_tcp_flow_secs"),
            (f.fragment_timeout_secs, "flows.fragment_timeout_secs"),
        ] {
            check(v >= 1, key, "must be at least 1 second");
        }
        check(
            (1..=255).contains(&f.max_detection_packets),
            "flows.max_detection_packets",
            "must be between 1 and 255",
        );
        check(d.vxlan_port != 0, "decode.vxlan_port", "must not be 0");
        check(d.gtp_u_port != 0, "decode.gtp_u_port", "must not be 0");
        errors
    }

    /// The flow table settings.
    pub fn flow_config(&self) -> FlowConfig {
        let f = &self.flows;
        FlowConfig {
            max_flows: usize::try_from(f.max_flows).unwrap_or(usize::MAX),
            ttl_idle_flow: Duration::from_secs(f.ttl_idle_flow_secs),
            ttl_idle_tcp_flow: Duration::from_secs(f.ttl_idle_tcp_flow_secs),
            ttl_closed_tcp_flow: Duration::from_secs(f.ttl_closed_tcp_flow_secs),
            max_detection_packets: u8::try_from(f.max_detection_packets).unwrap_or(u8::MAX),
            fragment_timeout: Duration::from_secs(f.fragment_timeout_secs),
        }
    }

    /// The decoder settings.
    pub fn decode_config(&self) -> DecodeConfig {
        let d = &self.decode;
        DecodeConfig {
            ip_in_ip: d.decapsulate.contains(&Tunnel::IpInIp),
            gre: d.decapsulate.contains(&Tunnel::Gre),
            vxlan: d.decapsulate.contains(&Tunnel::Vxlan),
            vxlan_port: d.vxlan_port,
            gtp_u_port: d.gtp_u_port,
        }
    }

    /// The configured local networks.
    pub fn local_networks(&self) -> LocalNetworks {
        LocalNetworks::new(self.agent.local_networks.iter().copied())
    }

    /// The update interval.
    pub fn update_interval(&self) -> Duration {
        Duration::from_secs(self.agent.update_interval_secs)
    }
}

/// Removes the value at a serde_path_to_error path (`a.b`, `a.list[2]`,
/// or `?` for an unknown position) from `table`; false if nothing could be
/// removed.
fn remove_path(table: &mut toml::Table, path: &str) -> bool {
    let mut segments: Vec<&str> = path.split('.').collect();
    let Some(last) = segments.pop() else {
        return false;
    };
    let mut cur = table;
    for seg in segments {
        match cur.get_mut(seg) {
            Some(toml::Value::Table(t)) => cur = t,
            _ => return false,
        }
    }
    match last.split_once('[') {
        Some((name, index)) => {
            let index = index.trim_end_matches(']').parse::<usize>();
            match (cur.get_mut(name), index) {
                (Some(toml::Value::Array(a)), Ok(i)) if i < a.len() => {
                    a.remove(i);
                    true
                }
                _ => cur.remove(name).is_some(),
            }
        }
        None => cur.remove(last).is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    fn key_errors(text: &str) -> Vec<KeyError> {
        match parse(text) {
            Err(ConfigError::Invalid { errors, .. }) => errors,
            other => panic!("expected key errors, got {other:?}"),
        }
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.update_interval(), Duration::from_secs(15));
        assert_eq!(c.flow_config(), FlowConfig::default());
    }

    #[test]
    fn the_shipped_config_is_valid_and_all_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf/flowstatd.toml");
        let c = Config::load(&path).unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn every_bad_key_is_reported() {
        let errors = key_errors(
            "[agent]\nupdate_interval_secs = \"x\"\nlocal_networks = [\"10.0.0.0/8\", \"300.1.1.1/8\"]\nbogus = 1\n\
             [flows]\nmax_flows = 0\nttl_idle_flow_secs = -1\n[nope]\nx = 1\n",
        );
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        for want in [
            "agent.bogus",
            "agent.update_interval_secs",
            "agent.local_networks[1]",
            "flows.ttl_idle_flow_secs",
            "nope",
            "flows.max_flows",
        ] {
            assert!(keys.contains(&want), "{want} not in {keys:?}");
        }
        let bogus = errors.iter().find(|e| e.key == "agent.bogus").unwrap();
        assert!(bogus.reason.contains("unknown field"), "{}", bogus.reason);
        let cidr = errors
            .iter()
            .find(|e| e.key == "agent.local_networks[1]")
            .unwrap();
        assert!(cidr.reason.contains("invalid"), "{}", cidr.reason);
    }

    #[test]
    fn messages_name_file_key_and_reason() {
        let err = parse("[flows]\nmax_flows = 0\n").unwrap_err().to_string();
        assert_eq!(
            err,
            "test.toml: flows.max_flows: must be between 1 and 4294967294"
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = parse("[agent\n").unwrap_err().to_string();
        assert!(
            err.starts_with("test.toml: TOML parse error at line 1"),
            "{err}"
        );
        assert!(!err.contains('\n'));
    }

    #[test]
    fn tunnels_and_networks_are_read() {
        let c = parse(
            "[agent]\nlocal_networks = [\"192.0.2.0/24\"]\n[decode]\ndecapsulate = [\"gre\", \"vxlan\"]\n",
        )
        .unwrap();
        let d = c.decode_config();
        assert!(d.gre && d.vxlan && !d.ip_in_ip);
        assert_eq!(c.local_networks().networks().len(), 1);
    }
}
