//! flowstat-analytics: what the agent answers itself (SPEC section 7).
//!
//! - Flow definitions group flows by some of their fields and count a
//!   value per group; each interval gives every group's rate and running
//!   total, and the top groups.
//! - The largest flows of each interval, by `total_rate`.
//! - Thresholds on a definition's groups, on per-flow rates or on
//!   interface metrics, which make `event`s when crossed.
//!
//! Each flow worker keeps a [`Tally`] of its own flows, fed by their
//! `flow_stats` and `flow_purge` events; at an interval's end the
//! [`Reducer`] merges every worker's [`TallyPart`] into the interval's
//! [`Analytics`](flowstat_core::Analytics): amounts by key id for the
//! keys of flows that remember theirs, by key for the others. The
//! settings ([`Spec`]) are [`Shared`] so that they can change at run
//! time.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod class;
mod field;
mod keys;
mod numbers;
mod reduce;
mod spec;
mod table;
mod tally;

pub use reduce::Reducer;
pub use spec::{Definition, DefinitionConfig, FilterValue, Shared, Spec, ThresholdConfig};
pub use tally::{Tally, TallyPart};

#[cfg(test)]
mod tests;
