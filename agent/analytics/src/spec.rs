//! Flow definitions and thresholds: as configured (`[[flow_definition]]`,
//! `[[threshold]]`), checked, and shared between the workers that count
//! them and the reducer that merges the counts.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use flowstat_core::FlowView;
use serde::{Deserialize, Serialize};

use crate::class::Amounts;
use crate::field::{Field, FlowCtx};

/// A `[[flow_definition]]`: a named grouping of flows and the value
/// counted for each group.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DefinitionConfig {
    /// The definition's name, unique.
    pub name: String,
    /// The flow fields whose values make a key.
    pub keys: Vec<String>,
    /// What is counted: `bytes` (default), `packets`, `flows`,
    /// `local_bytes`, `other_bytes`, `local_packets` or `other_packets`.
    #[serde(default = "default_value")]
    pub value: String,
    /// Only flows whose fields equal these values (all of them).
    #[serde(default)]
    pub filter: BTreeMap<String, FilterValue>,
    /// Keys kept per interval; the rest fold into the key `"other"`.
    #[serde(default = "default_n")]
    pub n: usize,
    /// Write an `aggregate` record of the top keys every interval.
    #[serde(default)]
    pub emit: bool,
}

/// A filter's value: a string, or a number for numeric fields.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum FilterValue {
    /// A name or an address.
    Text(String),
    /// A port, protocol number, VLAN id...
    Number(u64),
}

impl FilterValue {
    fn as_text(&self) -> String {
        match self {
            FilterValue::Text(s) => s.clone(),
            FilterValue::Number(n) => n.to_string(),
        }
    }
}

fn default_value() -> String {
    "bytes".into()
}

fn default_n() -> usize {
    20
}

/// A `[[threshold]]`: an event when a metric goes above a value.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdConfig {
    /// The threshold's name, unique.
    pub name: String,
    /// A flow definition's name (its keys' rates), a per-flow rate
    /// (`local_rate`, `other_rate`, `total_rate`) or an interface metric
    /// (`rx_bytes_per_sec`, `tx_bytes_per_sec`, `rx_packets_per_sec`,
    /// `tx_packets_per_sec`, `capture_dropped`, `queue_dropped`).
    pub metric: String,
    /// The value to go above: per second for rates, per interval for
    /// the drop counters.
    pub value: u64,
    /// One event per key, flow or interface above it; otherwise one, for
    /// the largest.
    #[serde(default)]
    pub by_flow: bool,
    /// After firing, stay quiet until the event is acknowledged.
    #[serde(default)]
    pub lock: bool,
}

/// What a definition counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Measure {
    Bytes,
    Packets,
    Flows,
    LocalBytes,
    OtherBytes,
    LocalPackets,
    OtherPackets,
}

impl Measure {
    const ALL: [(&'static str, Measure); 7] = [
        ("bytes", Measure::Bytes),
        ("packets", Measure::Packets),
        ("flows", Measure::Flows),
        ("local_bytes", Measure::LocalBytes),
        ("other_bytes", Measure::OtherBytes),
        ("local_packets", Measure::LocalPackets),
        ("other_packets", Measure::OtherPackets),
    ];

    /// The amount `a` holds of this measure.
    pub(crate) fn of(self, a: &Amounts) -> u64 {
        match self {
            Measure::Bytes => a.local_bytes + a.other_bytes,
            Measure::Packets => a.local_packets + a.other_packets,
            Measure::Flows => a.flows,
            Measure::LocalBytes => a.local_bytes,
            Measure::OtherBytes => a.other_bytes,
            Measure::LocalPackets => a.local_packets,
            Measure::OtherPackets => a.other_packets,
        }
    }
}

/// A checked flow definition.
#[derive(Debug)]
pub struct Definition {
    pub(crate) config: DefinitionConfig,
    pub(crate) keys: Vec<Field>,
    pub(crate) measure: Measure,
    /// Each filtered field and its value in key form.
    pub(crate) filter: Vec<(Field, Vec<u8>)>,
}

impl Definition {
    /// Checks `config`; the error says what is wrong, by name.
    pub fn new(config: DefinitionConfig) -> Result<Definition, String> {
        let name = &config.name;
        if name.is_empty() {
            return Err("a flow definition needs a name".into());
        }
        let field = |f: &str| {
            Field::parse(f).ok_or_else(|| {
                let known: Vec<_> = Field::ALL.iter().map(|f| f.name()).collect();
                format!(
                    "flow definition {name:?}: unknown field {f:?} (known: {})",
                    known.join(", ")
                )
            })
        };
        if config.keys.is_empty() {
            return Err(format!("flow definition {name:?}: `keys` is empty"));
        }
        let keys = config
            .keys
            .iter()
            .map(|k| field(k))
            .collect::<Result<Vec<_>, _>>()?;
        let measure = Measure::ALL
            .iter()
            .find(|(n, _)| *n == config.value)
            .map(|&(_, m)| m)
            .ok_or_else(|| {
                let known: Vec<_> = Measure::ALL.iter().map(|(n, _)| *n).collect();
                format!(
                    "flow definition {name:?}: unknown value {:?} (known: {})",
                    config.value,
                    known.join(", ")
                )
            })?;
        let filter = config
            .filter
            .iter()
            .map(|(f, v)| {
                let field = field(f)?;
                let value = field
                    .encode_value(&v.as_text())
                    .map_err(|e| format!("flow definition {name:?}: filter {f}: {e}"))?;
                Ok((field, value))
            })
            .collect::<Result<Vec<_>, String>>()?;
        if config.n == 0 {
            return Err(format!("flow definition {name:?}: `n` must be at least 1"));
        }
        Ok(Definition {
            keys,
            measure,
            filter,
            config,
        })
    }

    /// The definition as configured.
    pub fn config(&self) -> &DefinitionConfig {
        &self.config
    }

    /// Whether any key or filter reads a field that `which` picks.
    pub(crate) fn reads(&self, which: impl Fn(Field) -> bool) -> bool {
        self.keys.iter().copied().any(&which) || self.filter.iter().any(|(f, _)| which(*f))
    }

    /// Writes the flow's key into `key`, if the filter lets it in.
    pub(crate) fn key(&self, flow: &FlowCtx<'_>, key: &mut Vec<u8>) -> bool {
        for (field, value) in &self.filter {
            key.clear();
            field.encode(flow, key);
            if key != value {
                return false;
            }
        }
        key.clear();
        for f in &self.keys {
            f.encode(flow, key);
        }
        true
    }
}

/// What a threshold watches.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Metric {
    /// The keys of this flow definition.
    Definition(String),
    /// A per-flow rate.
    Flow(FlowRate),
    /// An interface metric.
    Interface(InterfaceMetric),
}

/// A per-flow rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FlowRate {
    Local,
    Other,
    Total,
}

impl FlowRate {
    const ALL: [(&'static str, FlowRate); 3] = [
        ("local_rate", FlowRate::Local),
        ("other_rate", FlowRate::Other),
        ("total_rate", FlowRate::Total),
    ];

    pub(crate) fn of(self, f: &FlowView<'_>) -> u64 {
        match self {
            FlowRate::Local => f.local_stats.rate,
            FlowRate::Other => f.other_stats.rate,
            FlowRate::Total => f.local_stats.rate + f.other_stats.rate,
        }
    }
}

/// An interface metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InterfaceMetric {
    RxBytes,
    TxBytes,
    RxPackets,
    TxPackets,
    CaptureDropped,
    QueueDropped,
}

impl InterfaceMetric {
    const ALL: [(&'static str, InterfaceMetric); 6] = [
        ("rx_bytes_per_sec", InterfaceMetric::RxBytes),
        ("tx_bytes_per_sec", InterfaceMetric::TxBytes),
        ("rx_packets_per_sec", InterfaceMetric::RxPackets),
        ("tx_packets_per_sec", InterfaceMetric::TxPackets),
        ("capture_dropped", InterfaceMetric::CaptureDropped),
        ("queue_dropped", InterfaceMetric::QueueDropped),
    ];
}

/// A checked threshold.
#[derive(Debug)]
pub(crate) struct Threshold {
    pub(crate) config: ThresholdConfig,
    pub(crate) metric: Metric,
}

/// Everything the analytics count and watch: the definitions, the
/// thresholds, and how many top flows to keep. Workers and the reducer
/// share one; a change makes a new one.
#[derive(Debug, Default)]
pub struct Spec {
    pub(crate) definitions: Vec<Arc<Definition>>,
    pub(crate) thresholds: Vec<Threshold>,
    pub(crate) top_flows: usize,
}

impl Spec {
    /// Checks a configuration: definitions, thresholds (whose metrics
    /// must exist) and the number of top flows kept. The error names the
    /// item (`flow_definition[1]`, `threshold[0]`) and what is wrong.
    pub fn new(
        definitions: Vec<DefinitionConfig>,
        thresholds: Vec<ThresholdConfig>,
        top_flows: usize,
    ) -> Result<Spec, (String, String)> {
        let mut spec = Spec {
            definitions: Vec::new(),
            thresholds: Vec::new(),
            top_flows,
        };
        for (i, d) in definitions.into_iter().enumerate() {
            let key = || format!("flow_definition[{i}]");
            if spec.definitions.iter().any(|x| x.config.name == d.name) {
                return Err((
                    key(),
                    format!("flow definition {:?} is defined twice", d.name),
                ));
            }
            spec.define(d).map_err(|e| (key(), e))?;
        }
        for (i, t) in thresholds.into_iter().enumerate() {
            spec.add_threshold(t)
                .map_err(|e| (format!("threshold[{i}]"), e))?;
        }
        Ok(spec)
    }

    /// Adds or replaces a definition.
    fn define(&mut self, config: DefinitionConfig) -> Result<(), String> {
        let d = Arc::new(Definition::new(config)?);
        match self
            .definitions
            .iter_mut()
            .find(|x| x.config.name == d.config.name)
        {
            Some(old) => *old = d,
            None => self.definitions.push(d),
        }
        Ok(())
    }

    fn add_threshold(&mut self, config: ThresholdConfig) -> Result<(), String> {
        let name = &config.name;
        if self.thresholds.iter().any(|t| t.config.name == *name) {
            return Err(format!("threshold {name:?} is defined twice"));
        }
        let m = config.metric.as_str();
        let metric = if self.definitions.iter().any(|d| d.config.name == m) {
            Metric::Definition(m.to_owned())
        } else if let Some(&(_, r)) = FlowRate::ALL.iter().find(|(n, _)| *n == m) {
            Metric::Flow(r)
        } else if let Some(&(_, i)) = InterfaceMetric::ALL.iter().find(|(n, _)| *n == m) {
            Metric::Interface(i)
        } else {
            return Err(format!(
                "threshold {name:?}: metric {m:?} is neither a flow definition, a per-flow rate \
                 (local_rate, other_rate, total_rate) nor an interface metric (rx_bytes_per_sec, \
                 tx_bytes_per_sec, rx_packets_per_sec, tx_packets_per_sec, capture_dropped, \
                 queue_dropped)"
            ));
        };
        self.thresholds.push(Threshold { config, metric });
        Ok(())
    }

    /// The definitions, in order.
    pub fn definitions(&self) -> impl Iterator<Item = &Definition> {
        self.definitions.iter().map(|d| &**d)
    }

    /// The definition named `name`, as configured.
    pub fn definition(&self, name: &str) -> Option<&DefinitionConfig> {
        self.definitions()
            .map(Definition::config)
            .find(|d| d.name == name)
    }

    /// The thresholds as configured, in order.
    pub fn thresholds(&self) -> impl Iterator<Item = &ThresholdConfig> {
        self.thresholds.iter().map(|t| &t.config)
    }

    /// The threshold named `name`, as configured.
    pub fn threshold(&self, name: &str) -> Option<&ThresholdConfig> {
        self.thresholds().find(|t| t.name == name)
    }

    /// Nothing to count per flow.
    pub(crate) fn counts_nothing(&self) -> bool {
        self.definitions.is_empty()
            && self.top_flows == 0
            && !self
                .thresholds
                .iter()
                .any(|t| matches!(t.metric, Metric::Flow(_)))
    }
}

/// The analytics' settings, shared by the workers, the reducer and
/// whoever changes them at run time (the HTTP API): definitions added or
/// removed count from the next interval.
#[derive(Clone, Debug, Default)]
pub struct Shared(Arc<SharedInner>);

#[derive(Debug, Default)]
struct SharedInner {
    spec: Mutex<Arc<Spec>>,
    /// Bumped on every change: workers look at it once an interval.
    generation: AtomicU64,
    /// Thresholds whose lock was released, for the reducer.
    acknowledged: Mutex<Vec<String>>,
}

impl Shared {
    /// Shares `spec`.
    pub fn new(spec: Spec) -> Shared {
        let shared = Shared::default();
        *shared.lock() = Arc::new(spec);
        shared
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Arc<Spec>> {
        self.0.spec.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current settings.
    pub fn spec(&self) -> Arc<Spec> {
        Arc::clone(&self.lock())
    }

    /// Changes at every change of settings.
    pub(crate) fn generation(&self) -> u64 {
        self.0.generation.load(Ordering::Acquire)
    }

    /// Changes the settings with `change`, given the definitions and the
    /// thresholds' configs; nothing changes if it fails.
    fn change(
        &self,
        change: impl FnOnce(&mut Spec, &mut Vec<ThresholdConfig>) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut spec = self.lock();
        let mut next = Spec {
            definitions: spec.definitions.clone(),
            thresholds: Vec::new(),
            top_flows: spec.top_flows,
        };
        let mut thresholds: Vec<ThresholdConfig> =
            spec.thresholds.iter().map(|t| t.config.clone()).collect();
        change(&mut next, &mut thresholds)?;
        // Thresholds are checked again: their definition may be gone.
        for t in thresholds {
            next.add_threshold(t)?;
        }
        *spec = Arc::new(next);
        self.0.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Replaces everything (a reload).
    pub fn replace(&self, spec: Spec) {
        *self.lock() = Arc::new(spec);
        self.0.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Adds a definition, or replaces the one of the same name.
    pub fn define(&self, config: DefinitionConfig) -> Result<(), String> {
        self.change(|s, _| s.define(config))
    }

    /// Removes a definition; false if there was none of that name. A
    /// threshold on it must go first.
    pub fn remove(&self, name: &str) -> Result<bool, String> {
        let mut found = false;
        self.change(|s, _| {
            let before = s.definitions.len();
            s.definitions.retain(|d| d.config.name != name);
            found = s.definitions.len() < before;
            Ok(())
        })
        .map_err(|e| format!("cannot remove flow definition {name:?}: {e}"))?;
        Ok(found)
    }

    /// Adds a threshold, or replaces the one of the same name (which
    /// keeps its place).
    pub fn set_threshold(&self, config: ThresholdConfig) -> Result<(), String> {
        self.change(|_, thresholds| {
            match thresholds.iter_mut().find(|t| t.name == config.name) {
                Some(old) => *old = config,
                None => thresholds.push(config),
            }
            Ok(())
        })
    }

    /// Removes a threshold; false if there was none of that name.
    pub fn remove_threshold(&self, name: &str) -> bool {
        let mut found = false;
        // Removing a threshold leaves the others as valid as they were.
        let _ = self.change(|_, thresholds| {
            let before = thresholds.len();
            thresholds.retain(|t| t.name != name);
            found = thresholds.len() < before;
            Ok(())
        });
        found
    }

    /// Releases a locked threshold: it may fire again.
    pub fn acknowledge(&self, threshold: &str) {
        self.0
            .acknowledged
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(threshold.to_owned());
    }

    /// The thresholds acknowledged since the last call.
    pub(crate) fn take_acknowledged(&self) -> Vec<String> {
        std::mem::take(
            &mut self
                .0
                .acknowledged
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }
}
