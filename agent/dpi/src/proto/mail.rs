//! mail: not written yet.

use flowstat_core::Metadata;

use crate::dissect::{Packet, Scratch, Verdict};

/// Per-flow state.
#[derive(Debug, Default)]
pub(crate) struct State {}

/// Not written yet: never claims a flow.
pub(crate) fn dissect(_pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    Verdict::No
}
