//! The keys of one definition that a worker's id names, as the reducer
//! keeps them: numbered, with what each counted in the interval and its
//! total since it became active. A worker's amounts come by id, and are
//! added by number, without hashing a key; as a worker's ids follow one
//! another so do their numbers, read and written in order (a million keys
//! of long flows: 37–57 ms an interval, against 146–157 ms by key in a
//! table).
//!
//! The index from a key's hash to its number is kept in [`PARTS`] parts,
//! as a worker's [`Table`](crate::table::Table) splits its keys: a
//! worker's table comes part by part, and each of its keys is looked for
//! here within one part, which stays in the cache meanwhile.

use crate::keys::KeyList;
use crate::table::PARTS;

/// Numbered keys, what each counted in the interval, and its total.
#[derive(Debug)]
pub(crate) struct Numbers {
    /// The keys, by number.
    keys: KeyList,
    /// By number.
    values: Vec<u64>,
    totals: Vec<u64>,
    /// The numbers that counted something in the interval.
    counted: Vec<u32>,
}

impl Default for Numbers {
    fn default() -> Self {
        Numbers {
            keys: KeyList::new(PARTS),
            values: Vec::new(),
            totals: Vec::new(),
            counted: Vec::new(),
        }
    }
}

impl Numbers {
    /// The number of `key`, whose hash is `h`, if it has one.
    pub(crate) fn find(&self, h: u64, key: &[u8]) -> Option<u32> {
        self.keys.find(h, key)
    }

    /// Numbers `key`, whose hash is `h` and which has no number yet, with
    /// what it counted in the interval and its total.
    pub(crate) fn insert(&mut self, h: u64, key: &[u8], value: u64, total: u64) -> u32 {
        let n = self.keys.push(h, key);
        self.values.push(value);
        self.totals.push(total);
        if value != 0 {
            self.counted.push(n);
        }
        n
    }

    /// Adds `amount` to key `n`'s value and total.
    pub(crate) fn add(&mut self, n: u32, amount: u64) {
        let i = n as usize;
        if self.values[i] == 0 && amount != 0 {
            self.counted.push(n);
        }
        self.values[i] += amount;
        self.totals[i] += amount;
    }

    /// Key `n`, what it counted in the interval, and its total.
    pub(crate) fn get(&self, n: u32) -> (&[u8], u64, u64) {
        (
            self.keys.key(n),
            self.values[n as usize],
            self.totals[n as usize],
        )
    }

    /// The numbers that counted something in the interval.
    pub(crate) fn counted(&self) -> &[u32] {
        &self.counted
    }

    /// Keys held.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Ends the interval: the keys of `before` (those active in the
    /// interval before) idle in this one are forgotten (their totals
    /// restart), and `before` becomes this interval's active keys, each
    /// back at zero.
    pub(crate) fn end_interval(&mut self, before: &mut Vec<u32>) {
        for &n in before.iter() {
            if self.values[n as usize] == 0 {
                self.totals[n as usize] = 0;
            }
        }
        before.clear();
        for n in self.counted.drain(..) {
            self.values[n as usize] = 0;
            before.push(n);
        }
    }

    /// Keeps the keys `keep` names, with their totals, numbered anew in
    /// the order they had, and hands each other key that has a total to
    /// `let_go` (its hash, key and total); returns each old number's new
    /// one (`u32::MAX`: let go of). For between intervals (nothing
    /// counted).
    pub(crate) fn retain(
        &mut self,
        keep: impl Fn(u32) -> bool,
        mut let_go: impl FnMut(u64, &[u8], u64),
    ) -> Vec<u32> {
        let old = std::mem::take(self);
        (0..old.len() as u32)
            .map(|n| {
                let (key, _, total) = old.get(n);
                let h = old.keys.hash(n);
                if keep(n) {
                    self.insert(h, key, 0, total)
                } else {
                    if total != 0 {
                        let_go(h, key, total);
                    }
                    u32::MAX
                }
            })
            .collect()
    }
}
