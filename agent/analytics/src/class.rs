//! Flows that agree on every few-valued field the definitions read
//! (application, protocol, interface, AS...) form a class. A worker sums
//! each class's amounts, and makes the keys of the definitions that read
//! only such fields once per class at the interval's end: ten dashboard
//! definitions cost a flow one lookup, not ten (and none once the flow
//! remembers its class). Definitions that read addresses, ports, MACs or
//! host names are counted per flow.

use flowstat_core::FlowView;

use crate::field::{Field, FlowCtx};
use crate::keys::Keys;
use crate::spec::Definition;
use crate::table::{Sum, Table};

/// What a flow's `flow_stats` or `flow_purge` adds up, for every
/// [`Measure`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Amounts {
    pub local_bytes: u64,
    pub other_bytes: u64,
    pub local_packets: u64,
    pub other_packets: u64,
    /// Flows whose first record this is.
    pub flows: u64,
}

impl Sum for Amounts {
    fn add(&mut self, a: &Amounts) {
        self.local_bytes += a.local_bytes;
        self.other_bytes += a.other_bytes;
        self.local_packets += a.local_packets;
        self.other_packets += a.other_packets;
        self.flows += a.flows;
    }
}

impl Amounts {
    /// A flow's interval.
    pub(crate) fn of(f: &FlowView<'_>) -> Amounts {
        let (l, o) = (&f.local_stats, &f.other_stats);
        Amounts {
            local_bytes: l.bytes,
            other_bytes: o.bytes,
            local_packets: l.packets,
            other_packets: o.packets,
            // A flow counts once, in its first record: the one whose
            // interval holds all its packets.
            flows: u64::from(l.packets + o.packets == l.total_packets + o.total_packets),
        }
    }
}

/// Which definitions are counted by class, and the fields of a class.
#[derive(Debug, Default)]
pub(crate) struct ClassPlan {
    /// The fields a class key holds, in order.
    fields: Vec<Field>,
    /// Per definition: where its keys and filtered fields are among
    /// `fields`, if it is counted by class.
    defs: Vec<Option<Places>>,
}

#[derive(Debug)]
struct Places {
    keys: Vec<usize>,
    filter: Vec<usize>,
}

impl ClassPlan {
    /// The plan for `definitions`.
    pub(crate) fn new<'a>(definitions: impl Iterator<Item = &'a Definition>) -> ClassPlan {
        let mut fields = Vec::new();
        let mut defs = Vec::new();
        for d in definitions {
            if d.reads(|f| !f.is_few()) {
                defs.push(None);
                continue;
            }
            let mut at = |f: Field| match fields.iter().position(|&x| x == f) {
                Some(i) => i,
                None => {
                    fields.push(f);
                    fields.len() - 1
                }
            };
            let keys = d.keys.iter().map(|&f| at(f)).collect();
            let filter = d.filter.iter().map(|&(f, _)| at(f)).collect();
            defs.push(Some(Places { keys, filter }));
        }
        ClassPlan { fields, defs }
    }

    /// Whether definition `i` is counted by class.
    pub(crate) fn by_class(&self, i: usize) -> bool {
        self.defs.get(i).is_some_and(Option::is_some)
    }

    /// Whether no definition is counted by class.
    pub(crate) fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Writes the flow's class key into `key`.
    pub(crate) fn encode(&self, flow: &FlowCtx<'_>, key: &mut Vec<u8>) {
        key.clear();
        for f in &self.fields {
            f.encode(flow, key);
        }
    }

    /// Adds each class's amounts of the interval to the keys of the
    /// definitions counted by class (`tables[i]` is definition `i`'s),
    /// and starts the next interval's at zero.
    pub(crate) fn fold(
        &self,
        definitions: &[std::sync::Arc<Definition>],
        classes: &mut Keys<Amounts>,
        tables: &mut [Table<u64>],
    ) {
        let mut spans = Vec::with_capacity(self.fields.len());
        let mut key = Vec::new();
        for (class, amounts) in classes.drain() {
            spans.clear();
            let mut at = 0;
            for f in &self.fields {
                let len = f.span(&class[at..]);
                spans.push(&class[at..at + len]);
                at += len;
            }
            for ((d, places), table) in definitions.iter().zip(&self.defs).zip(&mut *tables) {
                let Some(places) = places else { continue };
                let amount = d.measure.of(&amounts);
                if amount == 0
                    || !d
                        .filter
                        .iter()
                        .zip(&places.filter)
                        .all(|((_, value), &i)| spans[i] == value.as_slice())
                {
                    continue;
                }
                key.clear();
                for &i in &places.keys {
                    key.extend_from_slice(spans[i]);
                }
                table.add(&key, amount);
            }
        }
    }
}
