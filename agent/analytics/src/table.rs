//! Keys and what was counted for each, the keys' bytes kept one after
//! another in one buffer: no allocation per key, and a table of a million
//! keys is a few buffers, freed at once.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry as Slot;

/// Byte-string keys and a value for each.
#[derive(Clone, Debug, Default)]
pub(crate) struct Table<V> {
    bytes: Vec<u8>,
    entries: HashTable<Entry<V>>,
    hasher: foldhash::fast::RandomState,
}

/// Where a key's bytes are, and its value.
#[derive(Clone, Copy, Debug)]
struct Entry<V> {
    at: u32,
    len: u32,
    value: V,
}

impl<V> Entry<V> {
    fn key<'a>(&self, bytes: &'a [u8]) -> &'a [u8] {
        &bytes[self.at as usize..(self.at + self.len) as usize]
    }
}

impl<V: Default> Table<V> {
    /// The value of `key`, added (as the default) if missing.
    pub(crate) fn get(&mut self, key: &[u8]) -> &mut V {
        let Table {
            bytes,
            entries,
            hasher,
        } = self;
        let slot = entries.entry(
            hasher.hash_one(key),
            |e| e.key(bytes) == key,
            |e| hasher.hash_one(e.key(bytes)),
        );
        match slot {
            Slot::Occupied(e) => &mut e.into_mut().value,
            Slot::Vacant(e) => {
                // Offsets are 32-bit: keys are short and a table holds the
                // keys of an interval, far below 4 GiB.
                let at = bytes.len() as u32;
                bytes.extend_from_slice(key);
                let entry = Entry {
                    at,
                    len: key.len() as u32,
                    value: V::default(),
                };
                &mut e.insert(entry).into_mut().value
            }
        }
    }

    /// Every key and its value, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &V)> {
        self.entries.iter().map(|e| (e.key(&self.bytes), &e.value))
    }

    /// Keeps the keys whose value `keep` says to keep (it may change the
    /// value), and packs their bytes.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&mut V) -> bool) {
        self.entries.retain(|e| keep(&mut e.value));
        let mut packed = Vec::with_capacity(self.bytes.len());
        for e in self.entries.iter_mut() {
            let at = packed.len() as u32;
            packed.extend_from_slice(e.key(&self.bytes));
            e.at = at;
        }
        self.bytes = packed;
    }
}
