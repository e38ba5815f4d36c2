//! Keys a worker has seen, each with an id that its flows remember from
//! one interval to the next, and what each key counted in the interval: a
//! flow whose keys are known costs an addition per definition, not a key
//! made and looked up. The ids go to the reducer too: it is handed each
//! new key once, then amounts by id (see [`crate::numbers`]).

use hashbrown::HashTable;

use crate::table::{Sum, hash, part_of};

/// Keys kept one after another, numbered in the order they came, each
/// with its hash, and an index from a key's hash to its number split into
/// parts by the hash, as a [`Table`](crate::table::Table) splits its keys.
#[derive(Debug)]
pub(crate) struct KeyList {
    /// Numbers, by their key's hash, in the part of the hash.
    index: Vec<HashTable<u32>>,
    /// Number `n`'s key is `bytes[ends[n - 1]..ends[n]]`.
    bytes: Vec<u8>,
    ends: Vec<u32>,
    /// By number: its key's hash (the index grows without hashing keys
    /// again, and a key goes to the reducer with it).
    hashes: Vec<u64>,
}

impl KeyList {
    /// No keys, indexed in `parts` parts (a power of two).
    pub(crate) fn new(parts: usize) -> Self {
        KeyList {
            index: (0..parts).map(|_| HashTable::new()).collect(),
            bytes: Vec::new(),
            ends: Vec::new(),
            hashes: Vec::new(),
        }
    }

    /// The number of `key`, whose hash is `h`, if it has one.
    pub(crate) fn find(&self, h: u64, key: &[u8]) -> Option<u32> {
        let same = |&n: &u32| self.hashes[n as usize] == h && self.key(n) == key;
        self.index[part_of(h, self.index.len())]
            .find(h, same)
            .copied()
    }

    /// Numbers `key`, whose hash is `h` and which has no number yet.
    pub(crate) fn push(&mut self, h: u64, key: &[u8]) -> u32 {
        // Numbers are 32-bit: a worker's keys are bounded by its flows
        // (see `Tally::take`), and the reducer's by the keys the workers'
        // ids name (see `Counted::next_interval`), far below 4 billion.
        let n = self.ends.len() as u32;
        self.bytes.extend_from_slice(key);
        self.ends.push(self.bytes.len() as u32);
        self.hashes.push(h);
        let hashes = &self.hashes;
        let part = part_of(h, self.index.len());
        self.index[part].insert_unique(h, n, |&n| hashes[n as usize]);
        n
    }

    /// Key `n`.
    pub(crate) fn key(&self, n: u32) -> &[u8] {
        let i = n as usize;
        let start = i.checked_sub(1).map_or(0, |p| self.ends[p] as usize);
        &self.bytes[start..self.ends[i] as usize]
    }

    /// Key `n`'s hash.
    pub(crate) fn hash(&self, n: u32) -> u64 {
        self.hashes[n as usize]
    }

    /// How many keys it holds.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// The keys numbered `first` and after.
    fn since(&self, first: usize) -> NewKeys {
        let start = first.checked_sub(1).map_or(0, |p| self.ends[p]);
        NewKeys {
            first,
            bytes: self.bytes[start as usize..].to_vec(),
            ends: self.ends[first..].iter().map(|e| e - start).collect(),
            hashes: self.hashes[first..].to_vec(),
        }
    }
}

/// Keys and their ids (in the order they came), and a value for each.
#[derive(Debug)]
pub(crate) struct Keys<V> {
    /// The keys, numbered by their ids.
    keys: KeyList,
    /// By id: what it counted in the interval.
    values: Vec<V>,
    /// The ids that counted something in the interval (an id at most
    /// twice: once more if what it counted added up to nothing).
    counted: Vec<u32>,
    /// Ids whose keys [`Keys::take_new`] handed over.
    sent: usize,
}

/// The keys numbered since the last [`Keys::take_new`]: ids `first..`,
/// one after another.
#[derive(Debug, Default)]
pub(crate) struct NewKeys {
    pub(crate) first: usize,
    bytes: Vec<u8>,
    ends: Vec<u32>,
    hashes: Vec<u64>,
}

impl NewKeys {
    /// The keys and their hashes, in the order of their ids.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &[u8])> {
        let mut start = 0;
        self.ends.iter().zip(&self.hashes).map(move |(&end, &h)| {
            let key = &self.bytes[start..end as usize];
            start = end as usize;
            (h, key)
        })
    }
}

impl<V> Default for Keys<V> {
    fn default() -> Self {
        Keys {
            keys: KeyList::new(1),
            values: Vec::new(),
            counted: Vec::new(),
            sent: 0,
        }
    }
}

impl<V: Sum + PartialEq> Keys<V> {
    /// The id of `key` (a new one if it is new).
    pub(crate) fn id(&mut self, key: &[u8]) -> u32 {
        let h = hash(key);
        self.keys.find(h, key).unwrap_or_else(|| {
            self.values.push(V::default());
            self.keys.push(h, key)
        })
    }

    /// Adds `value` to key `id`'s.
    pub(crate) fn add(&mut self, id: u32, value: &V) {
        let sum = &mut self.values[id as usize];
        if *sum == V::default() {
            self.counted.push(id);
        }
        sum.add(value);
    }

    /// How many keys it holds.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// The keys numbered since the last call.
    pub(crate) fn take_new(&mut self) -> NewKeys {
        let first = std::mem::replace(&mut self.sent, self.keys.len());
        self.keys.since(first)
    }

    /// Every id that counted something in the interval, and what it
    /// counted; each starts the next interval at zero.
    pub(crate) fn drain_ids(&mut self) -> Vec<(u32, V)> {
        let mut counted = Vec::with_capacity(self.counted.len());
        for id in self.counted.drain(..) {
            let v = std::mem::take(&mut self.values[id as usize]);
            if v != V::default() {
                counted.push((id, v));
            }
        }
        counted
    }

    /// Every key that counted something in the interval, and what it
    /// counted; each starts the next interval at zero.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = (&[u8], V)> {
        let Keys {
            keys,
            values,
            counted,
            ..
        } = self;
        let keys = &*keys;
        counted.drain(..).filter_map(move |id| {
            let v = std::mem::take(&mut values[id as usize]);
            (v != V::default()).then(|| (keys.key(id), v))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_last_and_an_interval_drains_what_its_keys_counted() {
        let mut keys: Keys<u64> = Keys::default();
        let (a, b) = (keys.id(b"a"), keys.id(b"bb"));
        assert_ne!(a, b);
        assert_eq!(keys.id(b"a"), a);
        keys.add(a, &2);
        keys.add(b, &0);
        keys.add(a, &3);
        let mut got: Vec<_> = keys.drain().map(|(k, v)| (k.to_vec(), v)).collect();
        got.sort();
        assert_eq!(got, [(b"a".to_vec(), 5)]);
        // The next interval starts at zero, the ids stay.
        assert_eq!(keys.drain().count(), 0);
        keys.add(b, &7);
        assert_eq!(keys.id(b"bb"), b);
        let got: Vec<_> = keys.drain().map(|(k, v)| (k.to_vec(), v)).collect();
        assert_eq!(got, [(b"bb".to_vec(), 7)]);
        assert_eq!(keys.len(), 2);
    }
}
