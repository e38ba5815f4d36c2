//! Keys and what was counted for each, the keys' bytes kept one after
//! another in buffers: no allocation per key, and a table of a million
//! keys is a few buffers, freed at once.
//!
//! While a table is small a value is summed into its key at once. Once it
//! holds [`DEFER_AT`] keys (a definition keyed by address or port: a
//! million keys and more) it is split into [`PARTS`] by its keys' hashes,
//! and values are listed per part, then summed a part at a time, while
//! that part's keys are in the cache; it is one part again once it keeps
//! fewer than a quarter of that. Summed at once, each value of a
//! million-key table cost two trips to memory (its slot's group, then its
//! slot): 1M new keys took 300 ms, listed and summed by part 125 ms.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry as Slot;

/// Parts of a table: at a million keys, a part's keys and slots (~250 KiB)
/// stay in a core's cache while they are summed.
const PARTS: usize = 256;

/// Keys from which values are listed per part before they are summed.
const DEFER_AT: usize = 1 << 14;

/// Values listed in a part before they are summed, at least: each summing
/// brings the part's keys into the cache, worth it for as many values as
/// the part has keys (which also bounds the lists' memory by the table's).
const LIST_AT_LEAST: usize = 1024;

/// A value that adds up.
pub(crate) trait Sum: Copy + Default {
    /// Adds `other`.
    fn add(&mut self, other: &Self);
}

impl Sum for u64 {
    fn add(&mut self, other: &u64) {
        *self += other;
    }
}

/// Byte-string keys and a value for each.
#[derive(Debug)]
pub(crate) struct Table<V> {
    /// One part while the table is small, else [`PARTS`].
    parts: Vec<Part<V>>,
    hasher: foldhash::fast::RandomState,
}

impl<V> Default for Table<V> {
    fn default() -> Self {
        Table {
            parts: vec![Part::default()],
            hasher: Default::default(),
        }
    }
}

/// One part of a table: its keys, and the values listed for it.
#[derive(Debug)]
struct Part<V> {
    bytes: Vec<u8>,
    entries: HashTable<Entry<V>>,
    /// Values not yet summed, with their keys' hashes, their keys in
    /// `listed_keys`.
    listed: Vec<Listed<V>>,
    listed_keys: Vec<u8>,
}

impl<V> Default for Part<V> {
    fn default() -> Self {
        Part {
            bytes: Vec::new(),
            entries: HashTable::new(),
            listed: Vec::new(),
            listed_keys: Vec::new(),
        }
    }
}

/// Where a key's bytes are, and its value.
#[derive(Clone, Copy, Debug)]
struct Entry<V> {
    at: u32,
    len: u32,
    value: V,
}

/// A value listed for a key not yet summed.
#[derive(Debug)]
struct Listed<V> {
    hash: u64,
    entry: Entry<V>,
}

impl<V> Entry<V> {
    fn key<'a>(&self, bytes: &'a [u8]) -> &'a [u8] {
        &bytes[self.at as usize..(self.at + self.len) as usize]
    }
}

impl<V: Sum> Table<V> {
    /// Adds `value` to `key`'s (added if missing).
    pub(crate) fn add(&mut self, key: &[u8], value: V) {
        let hash = self.hasher.hash_one(key);
        let parts = self.parts.len();
        let part = &mut self.parts[part_of(hash, parts)];
        if parts == 1 {
            part.sum(&self.hasher, hash, key, value);
            if part.entries.len() >= DEFER_AT {
                self.repart(PARTS);
            }
            return;
        }
        // Offsets are 32-bit: keys are short and a part holds the keys of
        // an interval, far below 4 GiB.
        let at = part.listed_keys.len() as u32;
        part.listed_keys.extend_from_slice(key);
        let len = key.len() as u32;
        part.listed.push(Listed {
            hash,
            entry: Entry { at, len, value },
        });
        if part.listed.len() >= part.entries.len().max(LIST_AT_LEAST) {
            part.sum_listed(&self.hasher);
        }
    }

    /// Moves every key (its values summed) into `parts` new parts.
    fn repart(&mut self, parts: usize) {
        self.settle();
        let old = std::mem::replace(
            &mut self.parts,
            (0..parts).map(|_| Part::default()).collect(),
        );
        for p in old {
            for e in p.entries {
                let key = e.key(&p.bytes);
                let hash = self.hasher.hash_one(key);
                self.parts[part_of(hash, parts)].sum(&self.hasher, hash, key, e.value);
            }
        }
    }

    /// Sums every value listed, and lets go of the lists: a table that is
    /// read holds only its keys.
    pub(crate) fn settle(&mut self) {
        for part in self.parts.iter_mut() {
            part.sum_listed(&self.hasher);
            part.listed = Vec::new();
            part.listed_keys = Vec::new();
        }
    }

    /// Every key and its value, in no particular order.
    pub(crate) fn iter(&mut self) -> impl Iterator<Item = (&[u8], &V)> {
        self.settle();
        self.parts
            .iter()
            .flat_map(|p| p.entries.iter().map(|e| (e.key(&p.bytes), &e.value)))
    }

    /// Keeps the keys whose value `keep` says to keep (it may change the
    /// value), and packs their bytes.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&mut V) -> bool) {
        self.settle();
        for part in self.parts.iter_mut() {
            part.entries.retain(|e| keep(&mut e.value));
            let mut packed = Vec::with_capacity(part.bytes.len());
            for e in part.entries.iter_mut() {
                let at = packed.len() as u32;
                packed.extend_from_slice(e.key(&part.bytes));
                e.at = at;
            }
            part.bytes = packed;
        }
        let keys: usize = self.parts.iter().map(|p| p.entries.len()).sum();
        if self.parts.len() > 1 && keys < DEFER_AT / 4 {
            self.repart(1);
        }
    }
}

/// The part of `parts` that a key's hash goes to: bits that neither a
/// slot's index (the low ones) nor its tag (the top 7) use, for a part's
/// keys to spread over its slots.
fn part_of(hash: u64, parts: usize) -> usize {
    (hash >> 40) as usize % parts
}

impl<V: Sum> Part<V> {
    /// Adds `value` to `key`'s (added if missing).
    fn sum(&mut self, hasher: &foldhash::fast::RandomState, hash: u64, key: &[u8], value: V) {
        let Part { bytes, entries, .. } = self;
        let slot = entries.entry(
            hash,
            |e| e.key(bytes) == key,
            |e| hasher.hash_one(e.key(bytes)),
        );
        match slot {
            Slot::Occupied(mut e) => e.get_mut().value.add(&value),
            Slot::Vacant(e) => {
                let at = bytes.len() as u32;
                bytes.extend_from_slice(key);
                let len = key.len() as u32;
                e.insert(Entry { at, len, value });
            }
        }
    }

    /// Sums the values listed; the lists keep their room for more.
    fn sum_listed(&mut self, hasher: &foldhash::fast::RandomState) {
        let mut listed = std::mem::take(&mut self.listed);
        let mut keys = std::mem::take(&mut self.listed_keys);
        for l in &listed {
            self.sum(hasher, l.hash, l.entry.key(&keys), l.entry.value);
        }
        listed.clear();
        keys.clear();
        self.listed = listed;
        self.listed_keys = keys;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The table's keys and values, sorted.
    fn contents(t: &mut Table<u64>) -> Vec<(Vec<u8>, u64)> {
        let mut all: Vec<_> = t.iter().map(|(k, &v)| (k.to_vec(), v)).collect();
        all.sort();
        all
    }

    #[test]
    fn sums_equal_a_maps_before_and_after_it_defers_and_retains() {
        // Keys of several lengths, each added a varying number of times,
        // interleaved: past DEFER_AT the values are listed per part.
        let keys = 3 * DEFER_AT as u64;
        let mut table = Table::default();
        let mut map: HashMap<Vec<u8>, u64> = HashMap::new();
        for i in 0..10 * keys {
            let k = (i * 7919) % keys;
            let key = k.to_be_bytes()[..1 + (k % 8) as usize].to_vec();
            let key = [key.as_slice(), &k.to_le_bytes()].concat();
            table.add(&key, i % 5);
            *map.entry(key).or_default() += i % 5;
        }
        assert_eq!(table.parts.len(), PARTS);
        let mut expected: Vec<_> = map.clone().into_iter().collect();
        expected.sort();
        assert_eq!(contents(&mut table), expected);

        // Retain the odd values, doubled, and go on adding.
        table.retain(|v| {
            *v *= 2;
            *v % 4 == 2
        });
        map.retain(|_, v| {
            *v *= 2;
            *v % 4 == 2
        });
        for (k, v) in map.iter_mut().take(1000) {
            table.add(k, 3);
            *v += 3;
        }
        table.add(b"new", 1);
        map.insert(b"new".to_vec(), 1);
        let mut expected: Vec<_> = map.into_iter().collect();
        expected.sort();
        assert_eq!(contents(&mut table), expected);
    }

    #[test]
    fn a_table_that_keeps_few_keys_is_one_part_again_and_goes_on() {
        let mut table = Table::default();
        for i in 0..2 * DEFER_AT as u64 {
            table.add(&i.to_be_bytes(), i);
        }
        assert_eq!(table.parts.len(), PARTS);
        table.retain(|v| *v < 100);
        assert_eq!(table.parts.len(), 1);
        table.add(&7u64.to_be_bytes(), 1);
        table.add(b"new", 1);
        let mut expected: Vec<_> = (0..100u64)
            .map(|i| (i.to_be_bytes().to_vec(), i + u64::from(i == 7)))
            .chain([(b"new".to_vec(), 1)])
            .collect();
        expected.sort();
        assert_eq!(contents(&mut table), expected);
    }
}
