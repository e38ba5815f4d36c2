//! The registry's index: which dissectors a flow starts with, which its
//! first payload byte rules out, and which its ports put first.
//!
//! Built once from [`REGISTRY`], so that what a packet costs does not grow
//! with the number of protocols that cannot be its flow's: a flow's
//! candidates are a bit set, narrowed by transport and `ports_only` at its
//! start and by one table lookup at its first packet with payload.

use std::sync::LazyLock;

use flowstat_core::FlowInfo;
use foldhash::fast::FixedState;
use hashbrown::HashMap;

use crate::proto::REGISTRY;

/// Words of a [`Candidates`] set: one bit per registered dissector.
const WORDS: usize = REGISTRY.len().div_ceil(64);

/// A set of dissectors, by their index in [`REGISTRY`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Candidates([u64; WORDS]);

impl Candidates {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }

    pub(crate) fn remove(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }

    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    /// The dissectors in both sets.
    pub(crate) fn and(mut self, other: &Candidates) -> Candidates {
        for (w, o) in self.0.iter_mut().zip(other.0) {
            *w &= o;
        }
        self
    }

    /// The dissectors in either set.
    fn or(mut self, other: &Candidates) -> Candidates {
        for (w, o) in self.0.iter_mut().zip(other.0) {
            *w |= o;
        }
        self
    }

    /// The dissectors in this set and not in `other`.
    pub(crate) fn and_not(mut self, other: &Candidates) -> Candidates {
        for (w, o) in self.0.iter_mut().zip(other.0) {
            *w &= !o;
        }
        self
    }

    /// The indexes in the set, in registry order.
    pub(crate) fn iter(self) -> impl Iterator<Item = usize> {
        self.0.into_iter().enumerate().flat_map(|(word, mut bits)| {
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let bit = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    word * 64 + bit
                })
            })
        })
    }
}

/// What [`REGISTRY`] says, arranged for lookups.
struct Index {
    /// Dissectors asked for TCP flows, and for UDP flows.
    transport: [Candidates; 2],
    /// Dissectors asked only on their ports.
    ports_only: Vec<usize>,
    /// By transport (TCP first), by whether the client sent the first
    /// packet with payload, by its first byte: the dissectors that may
    /// claim the flow (`256 * (2 * udp + from_client) + byte`).
    first: Vec<Candidates>,
    /// By transport and port: the dissectors whose hints name it.
    hints: HashMap<(bool, u16), Candidates, FixedState>,
}

static INDEX: LazyLock<Index> = LazyLock::new(|| {
    let mut index = Index {
        transport: [Candidates::default(); 2],
        ports_only: Vec::new(),
        first: vec![Candidates::default(); 4 * 256],
        hints: HashMap::with_hasher(FixedState::default()),
    };
    for (i, d) in REGISTRY.iter().enumerate() {
        for (t, asked) in [d.tcp, d.udp].into_iter().enumerate() {
            if !asked {
                continue;
            }
            index.transport[t].insert(i);
            for from_client in [false, true] {
                for byte in 0..=255u8 {
                    if (d.first)(from_client, byte) {
                        let at = 256 * (2 * t + usize::from(from_client)) + usize::from(byte);
                        index.first[at].insert(i);
                    }
                }
            }
            for &port in d.ports {
                index.hints.entry((t == 0, port)).or_default().insert(i);
            }
        }
        if d.ports_only {
            index.ports_only.push(i);
        }
    }
    index
});

/// The dissectors asked for a new flow: those of its transport, less
/// those asked only on ports the flow does not use.
pub(crate) fn start(flow: &FlowInfo) -> Candidates {
    let mut set = match flow.ip_protocol {
        6 => INDEX.transport[0],
        17 => INDEX.transport[1],
        _ => return Candidates::default(),
    };
    for &i in &INDEX.ports_only {
        let ports = REGISTRY[i].ports;
        if !ports.contains(&flow.client_port) && !ports.contains(&flow.server_port) {
            set.remove(i);
        }
    }
    set
}

/// The dissectors that may claim a flow whose first packet with payload
/// starts with `byte`.
pub(crate) fn first(tcp: bool, from_client: bool, byte: u8) -> &'static Candidates {
    &INDEX.first[256 * (2 * usize::from(!tcp) + usize::from(from_client)) + usize::from(byte)]
}

/// The dissectors whose port hints name either port of `flow`.
pub(crate) fn hinted(flow: &FlowInfo) -> Candidates {
    let tcp = flow.ip_protocol == 6;
    let get = |port| INDEX.hints.get(&(tcp, port)).copied().unwrap_or_default();
    get(flow.server_port).or(&get(flow.client_port))
}
