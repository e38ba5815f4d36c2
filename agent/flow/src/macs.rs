//! The MAC addresses of a table's flows, each pair kept once: the flows
//! of a link share a handful of pairs (a host's and its gateway's), so a
//! slot names its pair with 4 bytes instead of holding 12.

use foldhash::fast::FixedState;
use hashbrown::HashMap;

use flowstat_core::Side;

/// MAC addresses of a flow's two sides, by [`Side::index`] (zero for a
/// side whose MAC is not known).
type Pair = [[u8; 6]; 2];

/// The pair of a flow that knows neither side's MAC: not stored.
pub(crate) const NO_MACS: u32 = u32::MAX;

/// MAC pairs, each with the number of flows that hold it. A pair no
/// flow holds is forgotten and its entry reused: the store never holds
/// more pairs than the table held flows at once.
#[derive(Debug, Default)]
pub(crate) struct MacPairs {
    /// By index: a pair and the flows holding it (none for a free entry).
    pairs: Vec<(Pair, u32)>,
    /// The index of each pair held.
    index: HashMap<Pair, u32, FixedState>,
    /// Free entries.
    free: Vec<u32>,
}

impl MacPairs {
    /// The pair `idx` names.
    pub(crate) fn get(&self, idx: u32) -> Pair {
        match idx {
            NO_MACS => [[0; 6]; 2],
            _ => self.pairs[idx as usize].0,
        }
    }

    /// For a flow holding pair `idx`: the pair with `side`'s MAC set to
    /// `mac`, held instead of `idx`.
    pub(crate) fn set(&mut self, idx: u32, side: Side, mac: [u8; 6]) -> u32 {
        let mut pair = self.get(idx);
        pair[side.index()] = mac;
        let new = match self.index.get(&pair) {
            Some(&new) => new,
            None => {
                let new = match self.free.pop() {
                    Some(new) => {
                        self.pairs[new as usize] = (pair, 0);
                        new
                    }
                    None => {
                        self.pairs.push((pair, 0));
                        (self.pairs.len() - 1) as u32
                    }
                };
                self.index.insert(pair, new);
                new
            }
        };
        self.pairs[new as usize].1 += 1;
        self.release(idx);
        new
    }

    /// A flow holding pair `idx` leaves (or takes another).
    pub(crate) fn release(&mut self, idx: u32) {
        if idx == NO_MACS {
            return;
        }
        let (pair, flows) = &mut self.pairs[idx as usize];
        *flows -= 1;
        if *flows == 0 {
            self.index.remove(pair);
            self.free.push(idx);
        }
    }

    /// Pairs held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// Heap bytes of the store.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.pairs.capacity() * std::mem::size_of::<(Pair, u32)>()
            + self.index.allocation_size()
            + self.free.capacity() * std::mem::size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_shared_and_forgotten_when_no_flow_holds_them() {
        let mut m = MacPairs::default();
        let (a, b, c) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 3]);
        // Three flows from a; two of them answered by b.
        let mut flows = [NO_MACS; 3].map(|idx| m.set(idx, Side::Lower, a));
        assert_eq!(flows[0], flows[1]);
        assert_eq!(m.len(), 1);
        for f in &mut flows[..2] {
            *f = m.set(*f, Side::Upper, b);
        }
        assert_eq!(m.get(flows[0]), [a, b]);
        assert_eq!(m.get(flows[2]), [a, [0; 6]]);
        assert_eq!(m.len(), 2);
        m.release(flows[2]);
        assert_eq!(m.len(), 1, "[a, 0] is held by no flow");
        // Its entry is reused.
        let other = m.set(NO_MACS, Side::Upper, c);
        assert_eq!(other, flows[2]);
        assert_eq!(m.get(other), [[0; 6], c]);
        m.release(flows[0]);
        assert_eq!(m.get(flows[1]), [a, b], "still held by one flow");
        m.release(flows[1]);
        m.release(other);
        assert_eq!(m.len(), 0);
        assert_eq!(m.pairs.len(), 2, "no entry beyond the most held at once");
    }
}
