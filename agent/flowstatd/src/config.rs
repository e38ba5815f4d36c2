//! The configuration file (`/etc/flowstatd/flowstatd.toml`; every option,
//! with its default, is in `conf/flowstatd.toml`).
//!
//! Loading reports every error at once, each naming the file, the key and
//! the reason, so a user fixes a config in one pass.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flowstat_analytics::{DefinitionConfig, Spec, ThresholdConfig};
use flowstat_api::ApiConfig;
use flowstat_decode::DecodeConfig;
use flowstat_dpi::Applications;
use flowstat_flow::{FlowConfig, LocalNetworks};
use flowstat_geo::{GeoConfig, GeoDb};
use ipnet::IpNet;
use serde::Deserialize;

/// `[[sink]]`: one output, read and checked by the sinks crate, each type's
/// keys next to its sink.
pub use flowstat_sinks::SinkSection;

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
    /// `[dpi]`
    pub dpi: DpiSection,
    /// `[geo]`: ASN and country databases (none by default).
    pub geo: GeoConfig,
    /// `[api]`: the HTTP face.
    pub api: ApiConfig,
    /// `[[capture]]`: the interfaces the agent captures on.
    pub capture: Vec<CaptureSection>,
    /// `[[sink]]`: where records go (stdout when none is configured).
    pub sink: Vec<SinkSection>,
    /// `[analytics]`
    pub analytics: AnalyticsSection,
    /// `[[flow_definition]]`: named groupings of flows, counted per key.
    pub flow_definition: Vec<DefinitionConfig>,
    /// `[[threshold]]`: events when a metric goes above a value.
    pub threshold: Vec<ThresholdConfig>,
    /// What was read other than written, though not wrong (a bare address
    /// taken as a network): for check-config and the start-up log.
    #[serde(skip)]
    pub notes: Vec<KeyError>,
}

/// `[agent]`: telemetry cadence, what counts as local, how the agent runs.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSection {
    /// Seconds between `flow_stats`, `agent_status` and `interface_stats`.
    pub update_interval_secs: u64,
    /// Networks whose addresses are local, besides the capture interfaces'
    /// (a bare address is its /32 or /128).
    #[serde(deserialize_with = "networks")]
    pub local_networks: Vec<IpNet>,
    /// Flow worker threads; 0 means one per CPU core.
    pub workers: u64,
    /// Packets each worker's queue holds; when full, capture drops and
    /// counts (`queue_dropped`) instead of waiting.
    pub queue_packets: u64,
    /// Run-to-completion: each capture thread (one per interface, and for
    /// AF_XDP per RX queue) decodes and accounts its packets itself, with
    /// no hand-off to flow workers. A flow's packets must all come to one
    /// socket: always so across interfaces, and across an interface's RX
    /// queues when its RSS is symmetric (a split is warned of).
    pub run_to_completion: bool,
    /// User to run as once the captures are open ("" keeps the user that
    /// started the agent).
    pub user: String,
    /// Group to run as ("" means the user's primary group).
    pub group: String,
    /// Where the agent writes its latest `agent_status` (read by
    /// `flowstatd status`); "" to write none.
    pub status_file: PathBuf,
}

impl Default for AgentSection {
    fn default() -> Self {
        AgentSection {
            update_interval_secs: 15,
            local_networks: Vec::new(),
            workers: 0,
            queue_packets: 65_536,
            run_to_completion: false,
            user: String::new(),
            group: String::new(),
            status_file: PathBuf::from("/run/flowstatd/status.json"),
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

/// `[dpi]`: protocol and application detection.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DpiSection {
    /// The application table (`applications.toml`), relative to the config
    /// file's folder unless absolute; empty for the table built into
    /// flowstatd. Read at start and at every SIGHUP.
    pub applications: PathBuf,
    /// Addresses remembered from DNS answers, to name the applications of
    /// later flows to them, in each flow worker's cache; 0 turns the
    /// cache off.
    pub dns_cache_entries: u64,
}

impl Default for DpiSection {
    fn default() -> Self {
        DpiSection {
            applications: PathBuf::new(),
            dns_cache_entries: flowstat_dpi::DNS_CACHE_ENTRIES as u64,
        }
    }
}

/// `[analytics]`: what the agent works out itself besides the records.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyticsSection {
    /// The largest flows (by `total_rate`) kept each interval, for the
    /// top-flows view; 0 keeps none.
    pub top_flows: u64,
}

impl Default for AnalyticsSection {
    fn default() -> Self {
        AnalyticsSection { top_flows: 20 }
    }
}

/// A capture interface's role (`internal` in records).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Internal interface: records say `internal: true`.
    #[default]
    Lan,
    /// External interface: `internal: false`.
    Wan,
}

/// How an interface is captured.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// AF_XDP, falling back to libpcap (when `fallback` allows) if AF_XDP
    /// cannot start; libpcap when a BPF `filter` is set.
    #[default]
    Auto,
    /// AF_XDP only.
    AfXdp,
    /// libpcap only.
    Libpcap,
}

/// AF_XDP attach mode.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum XdpMode {
    /// Native (driver) mode where the driver supports it, else generic.
    #[default]
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (SKB) mode.
    Generic,
}

/// AF_XDP zero-copy.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ZeroCopy {
    /// Zero-copy where the driver allows it, else copy.
    #[default]
    Auto,
    /// Zero-copy only.
    On,
    /// Copy mode.
    Off,
}

/// AF_XDP receive queues: `"all"` or a list of queue numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Queues {
    /// Every RX queue of the interface.
    #[default]
    All,
    /// These queues.
    List(Vec<u32>),
}

impl<'de> Deserialize<'de> for Queues {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            List(Vec<u32>),
        }
        match Raw::deserialize(d)? {
            Raw::Name(s) if s == "all" => Ok(Queues::All),
            Raw::Name(s) => Err(serde::de::Error::custom(format!(
                "invalid value \"{s}\", expected \"all\" or a list of queue numbers"
            ))),
            Raw::List(l) => Ok(Queues::List(l)),
        }
    }
}

/// `[[capture]]`: one interface to capture on.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureSection {
    /// Interface name (required).
    pub interface: String,
    /// `lan` (records say `internal: true`) or `wan`.
    pub role: Role,
    /// `auto`, `af_xdp` or `libpcap`.
    pub method: Method,
    /// BPF filter (libpcap syntax), "" for none. Captures with a filter use
    /// libpcap.
    pub filter: String,
    /// Put the interface in promiscuous mode (libpcap).
    pub promiscuous: bool,
    /// Bytes captured per frame (libpcap); counters always use the frame's
    /// full length.
    pub snaplen: u32,
    /// The kernel ring libpcap captures into, in bytes.
    pub buffer_bytes: u32,
    /// AF_XDP: the RX queues to capture, `"all"` or a list.
    pub queues: Queues,
    /// AF_XDP: `auto`, `native` or `generic`.
    pub xdp_mode: XdpMode,
    /// AF_XDP: `auto`, `on` or `off`.
    pub zero_copy: ZeroCopy,
    /// AF_XDP: fill ring entries (a power of two).
    pub fill_ring: u32,
    /// AF_XDP: RX ring entries (a power of two).
    pub rx_ring: u32,
    /// AF_XDP: frames received per batch.
    pub batch: u32,
    /// AF_XDP: microseconds a wait busy-polls the driver's queue (0: off).
    pub busy_poll_usecs: u32,
    /// With `method = "auto"`: fall back to libpcap when AF_XDP cannot start.
    pub fallback: bool,
}

impl Default for CaptureSection {
    fn default() -> Self {
        CaptureSection {
            interface: String::new(),
            role: Role::Lan,
            method: Method::Auto,
            filter: String::new(),
            promiscuous: true,
            snaplen: 65_535,
            buffer_bytes: 32 << 20,
            queues: Queues::All,
            xdp_mode: XdpMode::Auto,
            zero_copy: ZeroCopy::Auto,
            fill_ring: 8192,
            rx_ring: 8192,
            batch: 64,
            busy_poll_usecs: 0,
            fallback: true,
        }
    }
}

impl CaptureSection {
    /// A capture of `interface` with role `role` and every other setting
    /// at its default (what `-I`/`-E` give).
    pub fn new(interface: &str, role: Role) -> Self {
        CaptureSection {
            interface: interface.to_owned(),
            role,
            ..CaptureSection::default()
        }
    }
}

/// One invalid key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyError {
    /// Dotted path of the key, e.g. `flows.max_flows`, `sink[2].endpoint`
    /// (indexes count the file's tables and items from 0).
    pub key: String,
    /// What is wrong with it, and what to do.
    pub reason: String,
    /// The line of the file the key (or, when it is missing, the nearest
    /// table holding it) is on, from 1.
    pub line: Option<usize>,
}

impl KeyError {
    /// `key` is wrong because of `reason`; its line is found later.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        KeyError {
            key: key.into(),
            reason: reason.into(),
            line: None,
        }
    }

    /// `FILE:LINE: key: reason` (`FILE: key: reason` without a line).
    pub fn display<'a>(&'a self, path: &'a Path) -> impl fmt::Display + 'a {
        struct Shown<'a>(&'a KeyError, &'a Path);
        impl fmt::Display for Shown<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let Shown(e, path) = self;
                write!(f, "{}", path.display())?;
                if let Some(line) = e.line {
                    write!(f, ":{line}")?;
                }
                write!(f, ": {}: {}", e.key, e.reason)
            }
        }
        Shown(self, path)
    }
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
    #[error("{}:{line}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The line the parser stopped on.
        line: usize,
        /// The parser's message: what is wrong, and the line with a caret
        /// under the place.
        message: String,
    },
    /// A capture interface named on the command line does not exist.
    #[error("{0}")]
    Interface(String),
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
        for (i, e) in self.1.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}", e.display(self.0))?;
        }
        Ok(())
    }
}

impl ConfigError {
    /// `errors` of the file at `path`, placed on their lines (the file is
    /// read again for that), in the file's order.
    pub fn invalid(path: &Path, mut errors: Vec<KeyError>) -> ConfigError {
        if let Ok(text) = std::fs::read_to_string(path) {
            locate(&text, &mut errors);
        }
        ConfigError::Invalid {
            path: path.to_owned(),
            errors,
        }
    }
}

/// The text of the configuration file at `path`.
fn read_text(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Adds an error for `key` unless `ok`.
fn require(errors: &mut Vec<KeyError>, ok: bool, key: impl Into<String>, reason: &str) {
    if !ok {
        errors.push(KeyError::new(key, reason));
    }
}

/// At most this many key errors are reported from one file.
const MAX_ERRORS: usize = 50;

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::parse(&read_text(path)?, path)
    }

    /// Reads `path` as [`read`](Config::read) reads a text: the
    /// configuration with its bad keys left out, and every bad key.
    pub fn load_all(path: &Path) -> Result<(Config, Vec<KeyError>), ConfigError> {
        Config::read(&read_text(path)?, path)
    }

    /// Parses and validates `text`, read from `path` (used in messages).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let (config, errors) = Config::read(text, path)?;
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                path: path.to_owned(),
                errors,
            })
        }
    }

    /// Parses and validates `text`: the configuration with every bad key
    /// left at its default (and every bad sink left out), and every bad
    /// key, on its line. Fails only when `text` is not TOML.
    fn read(text: &str, path: &Path) -> Result<(Config, Vec<KeyError>), ConfigError> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            line: line_at(text, e.span().map_or(0, |s| s.start)),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let mut errors = Vec::new();
        let mut notes = bare_addresses(&table);
        // The sinks are read apart, so that a problem inside one names its
        // key (`sink[2].endpoint`), which serde loses through `type`.
        let (sinks, sink_errors) = read_sinks(table.remove("sink"));
        // serde stops at the first bad key: note it, drop it, try again, so
        // that every bad key is reported. Items dropped from a list shift
        // the ones after them: `removed` maps serde's positions back to the
        // file's.
        let mut removed = Removed::default();
        let mut config = loop {
            match serde_path_to_error::deserialize::<_, Config>(toml::Value::Table(table.clone())) {
                Ok(config) => break config,
                Err(e) => {
                    let at = e.path().to_string();
                    let reason = e.inner().to_string();
                    let reason = reason.lines().next().unwrap_or_default().to_owned();
                    let key = removed.in_file(&at);
                    let gone = remove_path(&mut table, &at);
                    if gone {
                        removed.note(&key);
                    }
                    errors.push(KeyError::new(key, reason));
                    if !gone || errors.len() >= MAX_ERRORS {
                        break Config::default();
                    }
                }
            }
        };
        config.sink = sinks;
        errors.extend(config.validate());
        errors.extend(sink_errors);
        locate(text, &mut errors);
        locate(text, &mut notes);
        config.notes = notes;
        Ok((config, errors))
    }

    /// Range checks serde cannot express.
    fn validate(&self) -> Vec<KeyError> {
        let mut errors = Vec::new();
        let e = &mut errors;
        let (a, f, d) = (&self.agent, &self.flows, &self.decode);
        require(
            e,
            (1..=86_400).contains(&a.update_interval_secs),
            "agent.update_interval_secs",
            "must be between 1 and 86400 seconds",
        );
        require(
            e,
            a.workers <= 256,
            "agent.workers",
            "must be at most 256 (0 = one per core)",
        );
        require(
            e,
            (1_024..=16_777_216).contains(&a.queue_packets),
            "agent.queue_packets",
            "must be between 1024 and 16777216",
        );
        require(
            e,
            a.group.is_empty() || !a.user.is_empty(),
            "agent.group",
            "needs agent.user (the group is switched to along with the user)",
        );
        require(
            e,
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
            require(e, v >= 1, key, "must be at least 1 second");
        }
        require(
            e,
            (1..=255).contains(&f.max_detection_packets),
            "flows.max_detection_packets",
            "must be between 1 and 255",
        );
        require(
            e,
            self.dpi.dns_cache_entries <= 16_777_216,
            "dpi.dns_cache_entries",
            "must be at most 16777216",
        );
        require(
            e,
            self.analytics.top_flows <= 10_000,
            "analytics.top_flows",
            "must be at most 10000",
        );
        if let Err((key, reason)) = self.analytics_spec() {
            e.push(KeyError::new(key, reason));
        }
        if let Err((key, reason)) = self.api.check() {
            e.push(KeyError::new(key, reason));
        }
        require(e, d.vxlan_port != 0, "decode.vxlan_port", "must not be 0");
        require(e, d.gtp_u_port != 0, "decode.gtp_u_port", "must not be 0");
        for (i, c) in self.capture.iter().enumerate() {
            let key = |k: &str| format!("capture[{i}].{k}");
            require(e, !c.interface.is_empty(), key("interface"), "is required");
            require(
                e,
                !self.capture[..i].iter().any(|o| o.interface == c.interface),
                key("interface"),
                "is captured twice",
            );
            require(e, c.snaplen >= 64, key("snaplen"), "must be at least 64");
            require(
                e,
                (1 << 20..=1 << 30).contains(&c.buffer_bytes),
                key("buffer_bytes"),
                "must be between 1048576 (1 MiB) and 1073741824 (1 GiB)",
            );
            for (v, k) in [(c.fill_ring, "fill_ring"), (c.rx_ring, "rx_ring")] {
                let ok = v.is_power_of_two() && (64..=65_536).contains(&v);
                require(e, ok, key(k), "must be a power of two from 64 to 65536");
            }
            require(
                e,
                (1..=1_024).contains(&c.batch),
                key("batch"),
                "must be between 1 and 1024",
            );
            require(
                e,
                c.busy_poll_usecs <= 1_000_000,
                key("busy_poll_usecs"),
                "must be at most 1000000 (a second)",
            );
            require(
                e,
                c.queues != Queues::List(Vec::new()),
                key("queues"),
                "must not be empty",
            );
            require(
                e,
                c.filter.is_empty() || c.method != Method::AfXdp,
                key("filter"),
                "needs libpcap: use method = \"libpcap\" or \"auto\"",
            );
        }
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

    /// The application table `dpi.applications` names (the built-in one
    /// when empty); `path` is the config file, which a relative name is
    /// relative to.
    pub fn applications(&self, path: &Path) -> Result<Arc<Applications>, ConfigError> {
        let file = &self.dpi.applications;
        let apps = if file.as_os_str().is_empty() {
            Applications::builtin()
        } else {
            Applications::load(&path.parent().unwrap_or(Path::new("")).join(file))
        };
        apps.map(Arc::new).map_err(|e| {
            ConfigError::invalid(path, vec![KeyError::new("dpi.applications", e.to_string())])
        })
    }

    /// The flow definitions, thresholds and top flows, checked.
    fn analytics_spec(&self) -> Result<Spec, (String, String)> {
        let mut definitions = self.flow_definition.clone();
        // With an ASN database, flow-exporter's series for /metrics.
        if self.geo.asn.is_some() {
            definitions.extend(flowstat_api::flow_exporter_definitions());
        }
        Spec::new(
            definitions,
            self.threshold.clone(),
            usize::try_from(self.analytics.top_flows).unwrap_or(usize::MAX),
        )
    }

    /// The flow definitions, thresholds and top flows (of a loaded
    /// configuration: checked when it was loaded).
    pub fn analytics(&self) -> Spec {
        self.analytics_spec().unwrap_or_default()
    }

    /// The address databases `[geo]` names (none when it names none);
    /// `path` is the config file, which relative names are relative to.
    pub fn geo(&self, path: &Path) -> Result<GeoDb, ConfigError> {
        let dir = path.parent().unwrap_or(Path::new(""));
        let config = GeoConfig {
            asn: self.geo.asn.as_ref().map(|p| dir.join(p)),
            country: self.geo.country.as_ref().map(|p| dir.join(p)),
        };
        GeoDb::open(&config).map_err(|e| {
            let key = if config.asn.as_deref() == Some(e.path()) {
                "geo.asn"
            } else {
                "geo.country"
            };
            ConfigError::invalid(
                path,
                vec![KeyError::new(
                    key,
                    format!("{e} (fix or replace the file, or remove {key} to run without it)"),
                )],
            )
        })
    }

    /// The configured local networks.
    pub fn local_networks(&self) -> LocalNetworks {
        LocalNetworks::new(self.agent.local_networks.iter().copied())
    }

    /// The update interval.
    pub fn update_interval(&self) -> Duration {
        Duration::from_secs(self.agent.update_interval_secs)
    }

    /// What the agent checks of this host before it captures, beyond the
    /// file itself (and the sinks' own checks, made as the file is read):
    /// the capture interfaces exist, their BPF filters compile, the user
    /// and group exist, the status file's directory exists or can be made.
    /// A check of the machine, not of the file: run where the agent runs.
    pub fn check_host(&self) -> Vec<KeyError> {
        let mut errors = Vec::new();
        for (i, c) in self.capture.iter().enumerate() {
            if !crate::ifaces::exists(&c.interface) {
                errors.push(KeyError::new(
                    format!("capture[{i}].interface"),
                    format!(
                        "no interface named {:?} on this host (see `ip link`)",
                        c.interface
                    ),
                ));
            }
            if let Err(reason) = crate::sources::check_filter(&c.filter) {
                errors.push(KeyError::new(format!("capture[{i}].filter"), reason));
            }
        }
        let a = &self.agent;
        if !a.user.is_empty() && !crate::privileges::user_exists(&a.user) {
            errors.push(KeyError::new(
                "agent.user",
                format!(
                    "no user {:?} on this host: create it (adduser --system --group {}), or \
                     set agent.user = \"\" to stay the user that starts the agent",
                    a.user, a.user
                ),
            ));
        }
        if !a.group.is_empty() && !crate::privileges::group_exists(&a.group) {
            errors.push(KeyError::new(
                "agent.group",
                format!(
                    "no group {:?} on this host: create it (addgroup --system {}), or set \
                     agent.group = \"\" for the user's own group",
                    a.group, a.group
                ),
            ));
        }
        if let Err(reason) = flowstat_sinks::dirs::check_parent(&a.status_file) {
            errors.push(KeyError::new("agent.status_file", reason));
        }
        // The status file is written after the drop, as the agent's user.
        let dir = a.status_file.parent().filter(|d| d.is_dir());
        if let (Some(dir), Some((uid, gid))) = (dir, crate::privileges::owner(a)) {
            if !crate::privileges::can_write(dir, uid, gid) {
                errors.push(KeyError::new(
                    "agent.status_file",
                    format!(
                        "{} is not writable by user {:?} (uid {uid}, gid {gid}), which the \
                         agent runs as: give it the directory (chown) or group write access",
                        dir.display(),
                        a.user
                    ),
                ));
            }
        }
        errors
    }
}

/// The `[[sink]]` tables of `value`, and the problems of those that could
/// not be read, keyed `sink[N].KEY`.
fn read_sinks(value: Option<toml::Value>) -> (Vec<SinkSection>, Vec<KeyError>) {
    let mut errors = Vec::new();
    let tables = match value {
        None => Vec::new(),
        Some(toml::Value::Array(tables)) => tables,
        Some(other) => {
            errors.push(KeyError::new(
                "sink",
                format!(
                    "invalid type: {}, expected [[sink]] tables",
                    other.type_str()
                ),
            ));
            Vec::new()
        }
    };
    let mut sinks = Vec::new();
    for (i, table) in tables.into_iter().enumerate() {
        let read = match table {
            toml::Value::Table(table) => SinkSection::read(table),
            other => Err(vec![flowstat_sinks::ConfigProblem::new(
                "",
                format!("invalid type: {}, expected a table", other.type_str()),
            )]),
        };
        match read {
            Ok(sink) => sinks.push(sink),
            Err(problems) => errors.extend(problems.into_iter().map(|p| {
                let key = if p.key.is_empty() {
                    format!("sink[{i}]")
                } else {
                    format!("sink[{i}].{}", p.key)
                };
                KeyError::new(key, p.reason)
            })),
        }
    }
    (sinks, errors)
}

/// One step of a key path: a table's key or a list's index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// The steps of a key path as serde_path_to_error and [`KeyError`] write
/// it (`a.b`, `a.list[2]`, `capture[0].queues`); `None` when a position is
/// unknown (`?`).
fn steps(path: &str) -> Option<Vec<Step<'_>>> {
    let mut steps = Vec::new();
    for segment in path.split('.') {
        let mut parts = segment.split('[');
        if let Some(name) = parts.next().filter(|n| !n.is_empty()) {
            steps.push(Step::Key(name));
        }
        for index in parts {
            steps.push(Step::Index(index.trim_end_matches(']').parse().ok()?));
        }
    }
    Some(steps)
}

/// Writes `steps` as a key path.
fn path_of(steps: &[Step]) -> String {
    let mut out = String::new();
    for step in steps {
        match step {
            Step::Key(k) if out.is_empty() => out.push_str(k),
            Step::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The list items taken out of a configuration while it is read, by the
/// file's path of their list, with their positions in the file.
#[derive(Default)]
struct Removed(std::collections::HashMap<String, Vec<usize>>);

impl Removed {
    /// The file's path of `path`, a path in the table with the items taken
    /// out so far.
    fn in_file(&self, path: &str) -> String {
        let Some(mut steps) = steps(path) else {
            return path.to_owned();
        };
        for at in 0..steps.len() {
            if let Step::Index(mut i) = steps[at]
                && let Some(gone) = self.0.get(&path_of(&steps[..at]))
            {
                // `gone` is sorted: each item taken out at or before the
                // position moves it one further in the file.
                for &g in gone {
                    if g <= i {
                        i += 1;
                    }
                }
                steps[at] = Step::Index(i);
            }
        }
        path_of(&steps)
    }

    /// Notes that the item at the file's path `key` was taken out (when
    /// `key` names a list item).
    fn note(&mut self, key: &str) {
        if let Some(steps) = steps(key)
            && let Some((Step::Index(i), list)) = steps.split_last()
        {
            let gone = self.0.entry(path_of(list)).or_default();
            let at = gone.partition_point(|g| g < i);
            gone.insert(at, *i);
        }
    }
}

/// Removes the value at `path` (see [`steps`]) from `table`; false if
/// nothing could be removed.
fn remove_path(table: &mut toml::Table, path: &str) -> bool {
    let Some(steps) = steps(path) else {
        return false;
    };
    let Some((last, walk)) = steps.split_last() else {
        return false;
    };
    let mut root = toml::Value::Table(std::mem::take(table));
    let mut cur = Some(&mut root);
    for step in walk {
        cur = cur.and_then(|v| match step {
            Step::Key(k) => v.get_mut(*k),
            Step::Index(i) => v.get_mut(*i),
        });
    }
    let removed = match (cur, last) {
        (Some(toml::Value::Table(t)), Step::Key(k)) => t.remove(*k).is_some(),
        (Some(toml::Value::Array(a)), Step::Index(i)) if *i < a.len() => {
            a.remove(*i);
            true
        }
        _ => false,
    };
    if let toml::Value::Table(t) = root {
        *table = t;
    }
    removed
}

/// Puts each of `errors` on its line of `text` (the key's, or when the
/// key is not in the file, the nearest table's that holds it), in the
/// file's order, and says serde's words for kinds of values in plain ones.
fn locate(text: &str, errors: &mut [KeyError]) {
    let doc = toml::de::DeTable::parse(text).ok();
    for e in errors.iter_mut() {
        e.reason = plain(&e.reason);
        let span = doc
            .as_ref()
            .and_then(|doc| Some(span_of(doc.get_ref(), &steps(&e.key)?)));
        e.line = span.flatten().map(|at| line_at(text, at));
    }
    errors.sort_by_key(|e| e.line);
}

/// Where in the file the value at `steps` is, or the last table or list
/// on the way to it that is.
fn span_of(table: &toml::de::DeTable, steps: &[Step]) -> Option<usize> {
    let (mut found, mut value): (Option<usize>, Option<&toml::de::DeValue>) = (None, None);
    for (n, step) in steps.iter().enumerate() {
        let next = match (n, step, value) {
            (0, Step::Key(k), _) => table
                .get_key_value(*k)
                .map(|(key, v)| (key.span().start, v)),
            (_, Step::Key(k), Some(toml::de::DeValue::Table(t))) => {
                t.get_key_value(*k).map(|(key, v)| (key.span().start, v))
            }
            (_, Step::Index(i), Some(toml::de::DeValue::Array(a))) => {
                a.get(*i).map(|v| (v.span().start, v))
            }
            _ => None,
        };
        let Some((at, v)) = next else { break };
        found = Some(at);
        value = Some(v.get_ref());
    }
    found
}

/// The line (from 1) of byte `at` of `text`.
fn line_at(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// `reason` with serde's type names and phrases in plain words.
fn plain(reason: &str) -> String {
    const WORDS: [(&str, &str); 14] = [
        ("expected u8", "expected a whole number from 0 to 255"),
        ("expected u16", "expected a whole number from 0 to 65535"),
        ("expected u32", "expected a whole number (0 or more)"),
        ("expected u64", "expected a whole number (0 or more)"),
        ("expected usize", "expected a whole number (0 or more)"),
        ("expected i32", "expected a whole number"),
        ("expected i64", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected a list, [...]"),
        ("expected a map", "expected a table"),
        ("invalid type: sequence", "invalid type: a list"),
        ("invalid type: map", "invalid type: a table"),
        ("unknown field `", "unknown key `"),
        ("missing field `", "missing key `"),
    ];
    let mut out = reason.to_owned();
    for (serde, words) in WORDS {
        out = out.replace(serde, words);
    }
    out
}

/// Reads a network in CIDR form, or a bare address as its /32 or /128,
/// saying what is wrong with one that is neither.
pub fn parse_network(s: &str) -> Result<IpNet, String> {
    let Some((addr, prefix)) = s.split_once('/') else {
        return s.parse::<std::net::IpAddr>().map(IpNet::from).map_err(|_| {
            format!("{s:?} is not a network: expected ADDRESS/PREFIX, e.g. 192.168.0.0/24")
        });
    };
    let addr: std::net::IpAddr = addr
        .parse()
        .map_err(|_| format!("{s:?}: {addr:?} is not an IPv4 or IPv6 address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let family = if addr.is_ipv4() { "IPv4" } else { "IPv6" };
    let prefix: u8 = prefix.parse().map_err(|_| {
        format!("{s:?}: the prefix length {prefix:?} is not a number from 0 to {max}")
    })?;
    IpNet::new(addr, prefix).map_err(|_| {
        format!("{s:?}: the prefix /{prefix} is longer than an {family} address (at most /{max})")
    })
}

/// Deserializes `agent.local_networks` with [`parse_network`].
fn networks<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    struct Network(IpNet);
    impl<'de> Deserialize<'de> for Network {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let s = String::deserialize(d)?;
            parse_network(&s)
                .map(Network)
                .map_err(serde::de::Error::custom)
        }
    }
    let list = Vec::<Network>::deserialize(d)?;
    Ok(list.into_iter().map(|n| n.0).collect())
}

/// A note for each bare address in `agent.local_networks` of `table`:
/// taken as its /32 or /128.
fn bare_addresses(table: &toml::Table) -> Vec<KeyError> {
    let Some(toml::Value::Array(list)) = table.get("agent").and_then(|a| a.get("local_networks"))
    else {
        return Vec::new();
    };
    list.iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let addr: std::net::IpAddr = v.as_str()?.parse().ok()?;
            let net = IpNet::from(addr);
            Some(KeyError::new(
                format!("agent.local_networks[{i}]"),
                format!("{addr} has no prefix length: taken as {net} (write \"{net}\" to say so)"),
            ))
        })
        .collect()
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
    #[cfg(feature = "file")]
    fn the_shipped_config_is_valid_and_all_defaults_but_sink_and_applications() {
        use flowstat_sinks::{FileConfig, FsyncPolicy, SinkConfig};
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf/flowstatd.toml");
        let mut c = Config::load(&path).unwrap();
        let file = FileConfig {
            path: PathBuf::from("/var/lib/flowstatd/flows.json"),
            rotate_bytes: Some(100 << 20),
            keep: 5,
            gzip: true,
            fsync: FsyncPolicy::Rotate,
            ..FileConfig::default()
        };
        assert_eq!(c.sink, vec![SinkSection::new(SinkConfig::File(file))]);
        // The shipped application table, found next to the config.
        assert_eq!(c.dpi.applications, Path::new("applications.toml"));
        assert!(c.applications(&path).unwrap().len() >= 60);
        c.sink = Vec::new();
        c.dpi.applications = PathBuf::new();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn a_missing_application_table_is_named_with_its_key() {
        let path = Path::new("/etc/flowstatd/flowstatd.toml");
        let c = Config::parse("[dpi]\napplications = \"nowhere.toml\"\n", path).unwrap();
        let e = c.applications(path).unwrap_err().to_string();
        assert!(e.contains("dpi.applications"), "{e}");
        assert!(e.contains("/etc/flowstatd/nowhere.toml"), "{e}");
    }

    #[test]
    fn geo_databases_are_found_next_to_the_config_and_named_when_bad() {
        let dir = std::env::temp_dir().join(format!("flowstat-config-geo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("asn.tsv"), "192.0.2.0/24\t64500\tExample\n").unwrap();
        let path = dir.join("flowstatd.toml");
        let c = Config::parse("[geo]\nasn = \"asn.tsv\"\n", &path).unwrap();
        let db = c.geo(&path);
        let country = Config::parse("[geo]\nasn = \"asn.tsv\"\ncountry = \"no.mmdb\"\n", &path)
            .unwrap()
            .geo(&path);
        std::fs::remove_dir_all(&dir).unwrap();
        let ip = "192.0.2.1".parse().unwrap();
        assert_eq!(db.unwrap().lookup(ip).asn, Some(64500));
        assert!(Config::default().geo(&path).unwrap().is_empty());
        let e = country.unwrap_err().to_string();
        let want = format!(
            "{}: geo.country: {}: ",
            path.display(),
            dir.join("no.mmdb").display()
        );
        assert!(e.starts_with(&want), "{e}");
        assert!(
            e.ends_with("or remove geo.country to run without it)"),
            "{e}"
        );
        let errors = key_errors("[geo]\ncity = \"GeoLite2-City.mmdb\"\n");
        assert_eq!(errors[0].key, "geo.city");
        assert!(
            errors[0].reason.contains("unknown key `city`"),
            "{errors:?}"
        );
    }

    #[test]
    #[cfg(feature = "file")]
    fn captures_and_sinks_are_read_and_checked() {
        use flowstat_core::RecordKind;
        let c = parse(
            "[[capture]]\ninterface = \"eth0\"\nrole = \"wan\"\nqueues = [0, 1]\n\
             [[capture]]\ninterface = \"eth1\"\nmethod = \"libpcap\"\nfilter = \"tcp\"\n\
             [[sink]]\ntype = \"file\"\npath = \"/tmp/x\"\ntypes = [\"flow_purge\"]\n",
        )
        .unwrap();
        assert_eq!(c.capture[0].role, Role::Wan);
        assert_eq!(c.capture[0].queues, Queues::List(vec![0, 1]));
        assert_eq!(c.capture[1].queues, Queues::All);
        assert!(c.sink[0].kinds().contains(RecordKind::FlowPurge));
        assert!(!c.sink[0].kinds().contains(RecordKind::Flow));
        let errors = key_errors(
            "[[capture]]\ninterface = \"eth0\"\nqueues = \"some\"\nrx_ring = 1000\n\
             [[capture]]\ninterface = \"eth0\"\nmethod = \"af_xdp\"\nfilter = \"tcp\"\n\
             [[capture]]\nrole = \"dmz\"\n[[sink]]\ntype = \"kafka\"\n",
        );
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        for want in [
            "capture[0].queues",
            "capture[0].rx_ring",
            "capture[1].interface",
            "capture[1].filter",
            "capture[2].role",
            "sink[0]",
        ] {
            assert!(
                keys.iter().any(|k| k.starts_with(want)),
                "{want} not in {keys:?}"
            );
        }
    }

    #[test]
    #[cfg(all(feature = "file", feature = "socket", feature = "zmq"))]
    fn sink_keys_are_checked_against_their_type() {
        use flowstat_core::{KindSet, RecordKind};
        use flowstat_sinks::{SinkConfig, SocketFraming, ZmqMode};
        let c = parse(
            "[[sink]]\ntype = \"socket\"\nendpoint = \"unix:///run/f.sock\"\nframing = \"length\"\n\
             socket_mode = \"0660\"\n[[sink]]\ntype = \"zmq\"\nendpoint = \"tcp://127.0.0.1:5556\"\n\
             mode = \"connect\"\ntypes = [\"flow\"]\n",
        )
        .unwrap();
        let SinkConfig::Socket(socket) = &c.sink[0].config else {
            panic!("{:?}", c.sink[0]);
        };
        assert_eq!(socket.socket_mode, Some(0o660));
        assert_eq!(socket.framing, SocketFraming::LengthHeader);
        let SinkConfig::Zmq(zmq) = &c.sink[1].config else {
            panic!("{:?}", c.sink[1]);
        };
        assert_eq!(zmq.mode, ZmqMode::Connect);
        assert_eq!(c.sink[1].kinds(), KindSet::of(&[RecordKind::Flow]));
        let errors = key_errors(
            "[[sink]]\ntype = \"file\"\nendpoint = \"tcp://x\"\nfsync = \"sometimes\"\n\
             [[sink]]\ntype = \"socket\"\nendpoint = \"http://127.0.0.1:1\"\n\
             [[sink]]\ntype = \"socket\"\nendpoint = \"unix:///x.sock\"\nsocket_mode = \"999\"\n\
             socket_owner = \"no-such-user-9\"\nrotate_bytes = 100000\n\
             [[sink]]\ntype = \"zmq\"\n\
             [[sink]]\ntype = \"zmq\"\nendpoint = \"foo://bar\"\nsend_hwm = \"many\"\n\
             [[sink]]\ntype = \"zmq\"\nendpoint = \"tcp://127.0.0.1\"\ntypes = [\"flow\", 3]\n",
        );
        let got: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| (e.key.as_str(), e.reason.as_str()))
            .collect();
        for (key, reason) in [
            ("sink[0].endpoint", "applies to type socket and zmq only"),
            ("sink[0].path", "is required for a file sink"),
            ("sink[0].fsync", "unknown variant `sometimes`"),
            ("sink[1].endpoint", "unix://"),
            ("sink[2].rotate_bytes", "applies to type file only"),
            ("sink[2].socket_mode", "octal"),
            ("sink[2].socket_owner", "no user named"),
            ("sink[3].endpoint", "is required"),
            ("sink[4].endpoint", "unknown transport \"foo\""),
            ("sink[4].send_hwm", "invalid type: string \"many\""),
            ("sink[5].endpoint", "no port"),
            ("sink[5].types[1]", "invalid type"),
        ] {
            assert!(
                got.iter().any(|(k, r)| *k == key && r.contains(reason)),
                "{key}: {reason} not in {got:?}"
            );
        }
        assert_eq!(got.len(), 12, "{got:?}");
    }

    #[test]
    #[cfg(feature = "stdout")]
    fn a_sink_of_an_unknown_type_is_one_error() {
        let errors = key_errors(
            "[[sink]]\ntype = \"stdout\"\n[[sink]]\ntype = \"nats\"\nservers = [\"k:4222\"]\n",
        );
        assert_eq!(
            errors,
            vec![KeyError {
                key: "sink[1].type".into(),
                reason: "unknown sink type \"nats\", expected one of \"stdout\", \"file\", \
                         \"socket\", \"zmq\", \"ipfix\", \"kafka\", \"mqtt\", \"http\""
                    .into(),
                line: Some(4),
            }]
        );
        let err = parse("sink = 1\n").unwrap_err().to_string();
        assert_eq!(
            err,
            "test.toml:1: sink: invalid type: integer, expected [[sink]] tables"
        );
        let err = parse("sink = [1]\n").unwrap_err().to_string();
        assert_eq!(
            err,
            "test.toml:1: sink[0]: invalid type: integer, expected a table"
        );
    }

    #[test]
    fn the_host_is_checked_for_interfaces_filters_users_and_directories() {
        let good = "[agent]\nuser = \"root\"\ngroup = \"root\"\n\
                    [[capture]]\ninterface = \"lo\"\nmethod = \"libpcap\"\nfilter = \"tcp port 80\"\n";
        assert_eq!(parse(good).unwrap().check_host(), vec![]);
        let c = parse(
            "[agent]\nuser = \"nosuchuser9\"\ngroup = \"nosuchgroup9\"\n\
             status_file = \"/proc/version/run/status.json\"\n\
             [[capture]]\ninterface = \"lo\"\nmethod = \"libpcap\"\nfilter = \"tcp porrt 80\"\n\
             [[capture]]\ninterface = \"nosuch9\"\n",
        )
        .unwrap();
        let got: Vec<(String, String)> = c
            .check_host()
            .into_iter()
            .map(|e| (e.key, e.reason))
            .collect();
        let want = [
            ("capture[0].filter", "bad BPF filter \"tcp porrt 80\""),
            ("capture[1].interface", "no interface named \"nosuch9\""),
            (
                "agent.user",
                "no user \"nosuchuser9\" on this host: create it",
            ),
            (
                "agent.group",
                "no group \"nosuchgroup9\" on this host: create it",
            ),
            ("agent.status_file", "/proc/version is not a directory"),
        ];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for (key, reason) in want {
            assert!(
                got.iter().any(|(k, r)| k == key && r.contains(reason)),
                "{key}: {reason} not in {got:?}"
            );
        }
        // A status directory the agent's user cannot write to, once it has
        // dropped root: refused; the same with write access for all: fine.
        let dir = std::env::temp_dir().join(format!("flowstat-status-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = parse(&format!(
            "[agent]\nuser = \"nobody\"\nstatus_file = {:?}\n",
            dir.join("status.json")
        ))
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let refused = c.check_host();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(c.check_host(), vec![]);
        std::fs::remove_dir(&dir).unwrap();
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(
            refused[0]
                .reason
                .contains("is not writable by user \"nobody\""),
            "{refused:?}"
        );
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
        assert_eq!(
            bogus.reason,
            "unknown key `bogus`, expected one of `update_interval_secs`, `local_networks`, `workers`, `queue_packets`, `run_to_completion`, `user`, `group`, `status_file`"
        );
        let kind = errors
            .iter()
            .find(|e| e.key == "agent.update_interval_secs")
            .unwrap();
        assert_eq!(
            kind.reason,
            "invalid type: string \"x\", expected a whole number (0 or more)"
        );
        // In the file's order, each on its line.
        let lines: Vec<Option<usize>> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3, 4, 6, 7, 8].map(Some), "{errors:?}");
    }

    #[test]
    fn list_items_are_named_by_their_place_in_the_file() {
        // Each bad item is taken out to read on: the ones after it must
        // keep their own index, not the shifted one.
        let errors = key_errors(
            "[agent]\nlocal_networks = [\"300.1.1.1/8\", \"10.0.0.0/33\", \"10.0.0.0/8\",\n\
             \"fe80::/129\", \"x/8\", \"10.1.0.0/16\", \"10.2.0.0/abc\"]\n",
        );
        let got: Vec<(&str, &str, Option<usize>)> = errors
            .iter()
            .map(|e| (e.key.as_str(), e.reason.as_str(), e.line))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "agent.local_networks[0]",
                    "\"300.1.1.1/8\": \"300.1.1.1\" is not an IPv4 or IPv6 address",
                    Some(2)
                ),
                (
                    "agent.local_networks[1]",
                    "\"10.0.0.0/33\": the prefix /33 is longer than an IPv4 address (at most /32)",
                    Some(2)
                ),
                (
                    "agent.local_networks[3]",
                    "\"fe80::/129\": the prefix /129 is longer than an IPv6 address (at most /128)",
                    Some(3)
                ),
                (
                    "agent.local_networks[4]",
                    "\"x/8\": \"x\" is not an IPv4 or IPv6 address",
                    Some(3)
                ),
                (
                    "agent.local_networks[6]",
                    "\"10.2.0.0/abc\": the prefix length \"abc\" is not a number from 0 to 32",
                    Some(3)
                ),
            ]
        );
    }

    #[test]
    fn a_bare_address_is_a_host_network_with_a_note() {
        let c =
            parse("[agent]\nlocal_networks = [\"10.0.0.0/8\", \"192.0.2.7\", \"2001:db8::1\"]\n")
                .unwrap();
        let nets: Vec<String> = c
            .agent
            .local_networks
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(nets, ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::1/128"]);
        let notes: Vec<String> = c
            .notes
            .iter()
            .map(|n| n.display(Path::new("t.toml")).to_string())
            .collect();
        assert_eq!(
            notes,
            [
                "t.toml:2: agent.local_networks[1]: 192.0.2.7 has no prefix length: taken as 192.0.2.7/32 (write \"192.0.2.7/32\" to say so)",
                "t.toml:2: agent.local_networks[2]: 2001:db8::1 has no prefix length: taken as 2001:db8::1/128 (write \"2001:db8::1/128\" to say so)",
            ]
        );
    }

    #[test]
    fn messages_name_file_key_and_reason() {
        let err = parse("[flows]\nmax_flows = 0\n").unwrap_err().to_string();
        assert_eq!(
            err,
            "test.toml:2: flows.max_flows: must be between 1 and 4294967294"
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = parse("[flows]\nmax_flows = 1\n[agent\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("test.toml:3: TOML parse error at line 3"),
            "{err}"
        );
        // toml's own picture of the place, on lines of its own.
        assert!(err.contains("\n3 | [agent\n"), "{err}");
        assert!(err.contains("^"), "{err}");
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
