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
use std::sync::LazyLock;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry as Slot;

/// Parts of a table: at a million keys, a part's keys and slots (~250 KiB)
/// stay in a core's cache while they are summed.
pub(crate) const PARTS: usize = 256;
const _: () = assert!(PARTS.is_power_of_two());

/// Keys from which values are listed per part before they are summed.
const DEFER_AT: usize = 1 << 14;

/// Values listed in a part before they are summed, at least: each summing
/// brings the part's keys into the cache, worth it for as many values as
/// the part has keys (which also bounds the lists' memory by the table's).
const LIST_AT_LEAST: usize = 1024;

/// The hash of every table and of [`Keys`](crate::keys::Keys): one per
/// process (seeded at random, against keys chosen to collide), so that a
/// key has the same hash and part in a worker's table or keys and in the
/// reducer's, and goes from one to the other with its hash, part by part.
static HASHER: LazyLock<foldhash::fast::RandomState> = LazyLock::new(Default::default);

/// `key`'s hash: the same in every table of the process, and in the
/// workers' [`Keys`](crate::keys::Keys).
pub(crate) fn hash(key: &[u8]) -> u64 {
    HASHER.hash_one(key)
}

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
}

impl<V> Default for Table<V> {
    fn default() -> Self {
        Table {
            parts: vec![Part::default()],
        }
    }
}

/// One part of a table: its keys, and the values listed for it.
#[derive(Debug)]
struct Part<V> {
    bytes: Vec<u8>,
    entries: HashTable<Entry<V>>,
    /// Values not yet summed, their keys in `listed_keys`.
    listed: Vec<Entry<V>>,
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

/// A key's hash, where its bytes are, and its value.
#[derive(Clone, Copy, Debug)]
struct Entry<V> {
    hash: u64,
    at: u32,
    len: u32,
    value: V,
}

impl<V> Entry<V> {
    fn key<'a>(&self, bytes: &'a [u8]) -> &'a [u8] {
        &bytes[self.at as usize..(self.at + self.len) as usize]
    }
}

impl<V: Sum> Table<V> {
    /// Adds `value` to `key`'s (added if missing).
    pub(crate) fn add(&mut self, key: &[u8], value: V) {
        self.add_hashed(hash(key), key, value);
    }

    /// Adds `value` to the key of hash `hash`.
    pub(crate) fn add_hashed(&mut self, hash: u64, key: &[u8], value: V) {
        let parts = self.parts.len();
        let part = &mut self.parts[part_of(hash, parts)];
        if parts == 1 {
            part.sum(hash, key, value);
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
        part.listed.push(Entry {
            hash,
            at,
            len,
            value,
        });
        if part.listed.len() >= part.entries.len().max(LIST_AT_LEAST) {
            part.sum_listed();
        }
    }

    /// Adds every key of `others` whose value `sort` makes `Ok`, and
    /// returns what it makes of the others. Tables of as many parts are
    /// merged part by part, each of this table's parts in the cache while
    /// the others' keys are summed into it with the hashes they have, and
    /// large tables on every core, a range of parts each.
    pub(crate) fn merge<W: Sum + Sync, X: Send>(
        &mut self,
        others: &mut [Table<W>],
        sort: impl Fn(u64, &[u8], &W) -> Result<V, X> + Sync,
    ) -> Vec<X>
    where
        V: Send,
    {
        others.iter_mut().for_each(Table::settle);
        let parts = others
            .iter()
            .fold(self.parts.len(), |n, o| n.max(o.parts.len()));
        if self.parts.len() < parts {
            self.repart(parts);
        }
        let mut rest = Vec::new();
        for o in others.iter().filter(|o| o.parts.len() < parts) {
            for p in &o.parts {
                for e in &p.entries {
                    let key = e.key(&p.bytes);
                    match sort(e.hash, key, &e.value) {
                        Ok(v) => self.add_hashed(e.hash, key, v),
                        Err(x) => rest.push(x),
                    }
                }
            }
        }
        self.settle();
        let aligned: Vec<&Table<W>> = others.iter().filter(|o| o.parts.len() == parts).collect();
        let merge = |first: usize, mine: &mut [Part<V>]| {
            let mut rest = Vec::new();
            for (i, part) in mine.iter_mut().enumerate() {
                for o in &aligned {
                    let theirs = &o.parts[first + i];
                    for e in &theirs.entries {
                        let key = e.key(&theirs.bytes);
                        match sort(e.hash, key, &e.value) {
                            Ok(v) => part.sum(e.hash, key, v),
                            Err(x) => rest.push(x),
                        }
                    }
                }
            }
            rest
        };
        let chunk = parts.div_ceil(cores());
        if parts < PARTS || chunk == parts {
            rest.extend(merge(0, &mut self.parts));
        } else {
            std::thread::scope(|s| {
                let mut chunks = self.parts.chunks_mut(chunk).enumerate();
                let here = chunks.next();
                let merge = &merge;
                let others: Vec<_> = chunks
                    .map(|(i, mine)| s.spawn(move || merge(i * chunk, mine)))
                    .collect();
                if let Some((_, mine)) = here {
                    rest.extend(merge(0, mine));
                }
                for other in others {
                    rest.extend(
                        other
                            .join()
                            .unwrap_or_else(|e| std::panic::resume_unwind(e)),
                    );
                }
            });
        }
        if self.parts.len() == 1 && self.parts[0].entries.len() >= DEFER_AT {
            self.repart(PARTS);
        }
        rest
    }

    /// An empty table with room for as many keys in each part as this one
    /// holds: the next interval's, which holds about as many.
    pub(crate) fn shaped_like(&self) -> Table<V> {
        if self.len() < DEFER_AT / 4 {
            return Table::default();
        }
        Table {
            parts: self
                .parts
                .iter()
                .map(|p| Part {
                    bytes: Vec::with_capacity(p.bytes.len()),
                    entries: HashTable::with_capacity(p.entries.len()),
                    listed: Vec::new(),
                    listed_keys: Vec::new(),
                })
                .collect(),
        }
    }

    /// How many keys it holds (values listed not summed aside).
    pub(crate) fn len(&self) -> usize {
        self.parts.iter().map(|p| p.entries.len()).sum()
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
                self.parts[part_of(e.hash, parts)].sum(e.hash, e.key(&p.bytes), e.value);
            }
        }
    }

    /// Sums every value listed, and lets go of the lists: a table that is
    /// read holds only its keys.
    pub(crate) fn settle(&mut self) {
        for part in self.parts.iter_mut() {
            part.sum_listed();
            part.listed = Vec::new();
            part.listed_keys = Vec::new();
        }
    }

    /// Every key, with its hash, and its value, in no particular order
    /// (the keys of one part after another).
    pub(crate) fn iter(&mut self) -> impl Iterator<Item = (u64, &[u8], &V)> {
        self.settle();
        self.parts.iter().flat_map(|p| {
            p.entries
                .iter()
                .map(|e| (e.hash, e.key(&p.bytes), &e.value))
        })
    }

    /// Takes `key` (of hash `hash`) out, and its value.
    pub(crate) fn remove(&mut self, hash: u64, key: &[u8]) -> Option<V> {
        let parts = self.parts.len();
        let part = &mut self.parts[part_of(hash, parts)];
        part.sum_listed();
        let Part { bytes, entries, .. } = part;
        let found = entries.find_entry(hash, |e| e.hash == hash && e.key(bytes) == key);
        found.ok().map(|e| e.remove().0.value)
    }

    /// Keeps the keys whose value `keep` says to keep (it may change the
    /// value), and packs their bytes once they take less than half.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&mut V) -> bool) {
        self.settle();
        for part in self.parts.iter_mut() {
            part.entries.retain(|e| keep(&mut e.value));
            let live: usize = part.entries.iter().map(|e| e.len as usize).sum();
            if live >= part.bytes.len() / 2 {
                continue;
            }
            let mut packed = Vec::with_capacity(live);
            for e in part.entries.iter_mut() {
                let at = packed.len() as u32;
                packed.extend_from_slice(e.key(&part.bytes));
                e.at = at;
            }
            part.bytes = packed;
        }
        if self.parts.len() > 1 && self.len() < DEFER_AT / 4 {
            self.repart(1);
        }
    }
}

/// The cores this process may run on.
pub(crate) fn cores() -> usize {
    static CORES: LazyLock<usize> =
        LazyLock::new(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    *CORES
}

/// The part of `parts` (1 or [`PARTS`], a power of two: a mask, not a
/// division, on every add) that a key's hash goes to: bits that neither a
/// slot's index (the low ones) nor its tag (the top 7) use, for a part's
/// keys to spread over its slots.
pub(crate) fn part_of(hash: u64, parts: usize) -> usize {
    (hash >> 40) as usize & (parts - 1)
}

impl<V: Sum> Part<V> {
    /// Adds `value` to `key`'s (added if missing); `hash` is its hash.
    fn sum(&mut self, hash: u64, key: &[u8], value: V) {
        let Part { bytes, entries, .. } = self;
        let slot = entries.entry(hash, |e| e.hash == hash && e.key(bytes) == key, |e| e.hash);
        match slot {
            Slot::Occupied(mut e) => e.get_mut().value.add(&value),
            Slot::Vacant(e) => {
                let at = bytes.len() as u32;
                bytes.extend_from_slice(key);
                let len = key.len() as u32;
                e.insert(Entry {
                    hash,
                    at,
                    len,
                    value,
                });
            }
        }
    }

    /// Sums the values listed; the lists keep their room for more.
    fn sum_listed(&mut self) {
        let mut listed = std::mem::take(&mut self.listed);
        let mut keys = std::mem::take(&mut self.listed_keys);
        for e in &listed {
            self.sum(e.hash, e.key(&keys), e.value);
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
        let mut all: Vec<_> = t.iter().map(|(_, k, &v)| (k.to_vec(), v)).collect();
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

    #[test]
    fn merged_tables_of_one_part_and_of_many_sum_every_key_not_set_aside() {
        // Two tables past DEFER_AT and a small one, their keys overlapping,
        // into a small table, the keys of odd hashes set aside; then a
        // small one into the merged table.
        let mut map: HashMap<Vec<u8>, u64> = HashMap::from([(b"old".to_vec(), 5)]);
        let mut table = Table::default();
        table.add(b"old", 5);
        let mut others: Vec<Table<u64>> = (0..3).map(|_| Table::default()).collect();
        let mut aside: HashMap<Vec<u8>, u64> = HashMap::new();
        for (t, n) in [(0, 3 * DEFER_AT as u64), (1, 2 * DEFER_AT as u64), (2, 100)] {
            for i in 0..n {
                let key = ((i * 7) % (2 * DEFER_AT as u64)).to_be_bytes();
                others[t].add(&key, i + 1);
                let to = if hash(&key) % 2 == 1 {
                    &mut aside
                } else {
                    &mut map
                };
                *to.entry(key.to_vec()).or_default() += 10 * (i + 1);
            }
        }
        let sort = |h: u64, key: &[u8], &v: &u64| match h % 2 {
            0 => Ok(10 * v),
            _ => Err((key.to_vec(), 10 * v)),
        };
        let mut set_aside: HashMap<Vec<u8>, u64> = HashMap::new();
        for (key, v) in table.merge(&mut others, sort) {
            *set_aside.entry(key).or_default() += v;
        }
        assert_eq!(set_aside, aside);
        assert_eq!(table.parts.len(), PARTS);
        let mut small = Table::default();
        small.add(b"old", 1);
        small.add(b"new", 2);
        table.merge(std::slice::from_mut(&mut small), |_, _, &v| {
            Ok::<_, ()>(10 * v)
        });
        *map.get_mut(b"old".as_slice()).unwrap() += 10;
        map.insert(b"new".to_vec(), 20);
        let mut expected: Vec<_> = map.into_iter().collect();
        expected.sort();
        assert_eq!(contents(&mut table), expected);
    }
}
