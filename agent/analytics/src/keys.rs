//! Keys a worker has seen, each with an id that its flows remember from
//! one interval to the next, and what each key counted in the interval: a
//! flow whose keys are known costs an addition per definition, not a key
//! made and looked up. The ids go to the reducer too: it is handed each
//! new key once, then amounts by id (see [`crate::numbers`]).

use hashbrown::HashTable;

use crate::table::{Sum, hash};

/// Keys and their ids (in the order they came), and a value for each.
#[derive(Debug)]
pub(crate) struct Keys<V> {
    /// Ids, by their key's hash.
    index: HashTable<u32>,
    /// The keys, one after another: id `i`'s is `bytes[ends[i - 1]..ends[i]]`.
    bytes: Vec<u8>,
    ends: Vec<u32>,
    /// By id: its key's hash (the index grows without hashing keys again,
    /// and a key goes to the reducer with it).
    hashes: Vec<u64>,
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
            index: HashTable::new(),
            bytes: Vec::new(),
            ends: Vec::new(),
            hashes: Vec::new(),
            values: Vec::new(),
            counted: Vec::new(),
            sent: 0,
        }
    }
}

impl<V: Sum + PartialEq> Keys<V> {
    /// The id of `key` (a new one if it is new).
    pub(crate) fn id(&mut self, key: &[u8]) -> u32 {
        let Keys {
            index,
            bytes,
            ends,
            hashes,
            values,
            ..
        } = self;
        let h = hash(key);
        let same = |&id: &u32| hashes[id as usize] == h && span(bytes, ends, id) == key;
        if let Some(&id) = index.find(h, same) {
            return id;
        }
        // Ids are 32-bit: a worker's keys are bounded by its flows (see
        // `Tally::take`), far below 4 billion.
        let id = ends.len() as u32;
        bytes.extend_from_slice(key);
        ends.push(bytes.len() as u32);
        hashes.push(h);
        values.push(V::default());
        index.insert_unique(h, id, |&id| hashes[id as usize]);
        id
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
        self.ends.len()
    }

    /// The keys numbered since the last call.
    pub(crate) fn take_new(&mut self) -> NewKeys {
        let first = self.sent;
        self.sent = self.ends.len();
        let start = first.checked_sub(1).map_or(0, |p| self.ends[p]);
        NewKeys {
            first,
            bytes: self.bytes[start as usize..].to_vec(),
            ends: self.ends[first..].iter().map(|e| e - start).collect(),
            hashes: self.hashes[first..].to_vec(),
        }
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
            bytes,
            ends,
            values,
            counted,
            ..
        } = self;
        let (bytes, ends) = (&*bytes, &*ends);
        counted.drain(..).filter_map(move |id| {
            let v = std::mem::take(&mut values[id as usize]);
            (v != V::default()).then(|| (span(bytes, ends, id), v))
        })
    }
}

/// Key `id`'s bytes, of keys kept one after another in `bytes`, each
/// ending where `ends` says.
pub(crate) fn span<'a>(bytes: &'a [u8], ends: &[u32], id: u32) -> &'a [u8] {
    let i = id as usize;
    let start = i.checked_sub(1).map_or(0, |p| ends[p] as usize);
    &bytes[start..ends[i] as usize]
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
