//! Flow keys as flow slots keep them: 16 bytes instead of a [`FlowKey`]'s
//! 40. IPv4 addresses stay in the slot; an IPv6 flow's address pair goes
//! to a side store of its table, [`V6Addrs`], which the slot names by
//! index. An IPv4 flow costs 24 bytes less than with a whole key in its
//! slot, an IPv6 flow 8 more (its 32 bytes of addresses in the store).

use flowstat_core::FlowKey;

use crate::slab::Slab;

/// A flow's key in its slot.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SlotKey {
    ip_version: u8,
    pub(crate) protocol: u8,
    vlan_id: u16,
    lower_port: u16,
    upper_port: u16,
    /// IPv4: the lower address, then the upper. Otherwise: the index of
    /// the address pair in [`V6Addrs`], in the first 4 bytes.
    addrs: [u8; 8],
}

impl SlotKey {
    /// The store's index of the key's address pair (not IPv4).
    fn pair(&self) -> u32 {
        let [a, b, c, d, ..] = self.addrs;
        u32::from_ne_bytes([a, b, c, d])
    }
}

/// The 8 bytes of an IPv4 key's addresses (the other 12 bytes of each
/// are zero: see [`flowstat_core::PacketMeta`]).
fn v4_addrs(key: &FlowKey) -> [u8; 8] {
    let (l, u) = (&key.lower, &key.upper);
    [l[0], l[1], l[2], l[3], u[0], u[1], u[2], u[3]]
}

/// The address pairs of a table's IPv6 flows (and of any flow whose IP
/// version is not 4), `[lower, upper]`, one entry per flow.
#[derive(Debug, Default)]
pub(crate) struct V6Addrs {
    pairs: Slab<[[u8; 16]; 2]>,
    /// Entries of flows that left, reused first: the store holds at most
    /// as many entries as the table ever held IPv6 flows at once.
    free: Vec<u32>,
}

impl V6Addrs {
    /// `key` as its slot keeps it, its addresses stored here if they are
    /// not IPv4 (until [`release`](Self::release)).
    pub(crate) fn store(&mut self, key: &FlowKey) -> SlotKey {
        let addrs = if key.ip_version == 4 {
            v4_addrs(key)
        } else {
            let pair = [key.lower, key.upper];
            let idx = match self.free.pop() {
                Some(idx) => {
                    *self.pairs.get_mut(idx) = pair;
                    idx
                }
                None => self.pairs.push(pair),
            };
            let [a, b, c, d] = idx.to_ne_bytes();
            [a, b, c, d, 0, 0, 0, 0]
        };
        SlotKey {
            ip_version: key.ip_version,
            protocol: key.protocol,
            vlan_id: key.vlan_id,
            lower_port: key.lower_port,
            upper_port: key.upper_port,
            addrs,
        }
    }

    /// Frees the entry of `k`, if it has one: `k` is no longer valid.
    pub(crate) fn release(&mut self, k: &SlotKey) {
        if k.ip_version != 4 {
            self.free.push(k.pair());
        }
    }

    /// The whole key of `k`.
    pub(crate) fn key(&self, k: &SlotKey) -> FlowKey {
        let (lower, upper) = if k.ip_version == 4 {
            let mut lower = [0; 16];
            let mut upper = [0; 16];
            lower[..4].copy_from_slice(&k.addrs[..4]);
            upper[..4].copy_from_slice(&k.addrs[4..]);
            (lower, upper)
        } else {
            let [lower, upper] = *self.pairs.get(k.pair());
            (lower, upper)
        };
        FlowKey {
            ip_version: k.ip_version,
            protocol: k.protocol,
            vlan_id: k.vlan_id,
            lower_port: k.lower_port,
            upper_port: k.upper_port,
            lower,
            upper,
        }
    }

    /// Whether `k` is `key`, without building the whole key of `k`.
    pub(crate) fn matches(&self, k: &SlotKey, key: &FlowKey) -> bool {
        (
            k.ip_version,
            k.protocol,
            k.vlan_id,
            k.lower_port,
            k.upper_port,
        ) == (
            key.ip_version,
            key.protocol,
            key.vlan_id,
            key.lower_port,
            key.upper_port,
        ) && if k.ip_version == 4 {
            k.addrs == v4_addrs(key)
        } else {
            *self.pairs.get(k.pair()) == [key.lower, key.upper]
        }
    }

    /// Entries held by flows.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.pairs.len() as usize - self.free.len()
    }

    /// Heap bytes of the store.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.pairs.memory_bytes() + self.free.capacity() * std::mem::size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ip_version: u8, lower: [u8; 16], upper: [u8; 16]) -> FlowKey {
        FlowKey {
            ip_version,
            protocol: 17,
            vlan_id: 7,
            lower_port: 53,
            upper_port: 5000,
            lower,
            upper,
        }
    }

    #[test]
    fn keys_come_back_whole_and_match_only_themselves() {
        let mut v6 = V6Addrs::default();
        let mut a4 = [0; 16];
        a4[..4].copy_from_slice(&[10, 0, 0, 1]);
        let mut b4 = [0; 16];
        b4[..4].copy_from_slice(&[10, 0, 0, 2]);
        let v4 = key(4, a4, b4);
        // The same first bytes, as IPv6 addresses.
        let same_bytes_v6 = key(6, a4, b4);
        let v6_key = key(6, [0x20; 16], [0x30; 16]);
        let stored = [v4, same_bytes_v6, v6_key].map(|k| v6.store(&k));
        assert_eq!(v6.len(), 2, "the IPv6 pairs only");
        for (s, k) in stored.iter().zip([v4, same_bytes_v6, v6_key]) {
            assert_eq!(v6.key(s), k);
            assert!(v6.matches(s, &k));
        }
        assert!(!v6.matches(&stored[0], &same_bytes_v6));
        assert!(!v6.matches(&stored[1], &v4));
        assert!(!v6.matches(&stored[1], &v6_key));
        let other_port = FlowKey {
            upper_port: 5001,
            ..v6_key
        };
        assert!(!v6.matches(&stored[2], &other_port));
    }

    #[test]
    fn released_entries_are_reused() {
        let mut v6 = V6Addrs::default();
        let keys: Vec<_> = (0..100u8)
            .map(|i| key(6, [i; 16], [i.wrapping_add(1); 16]))
            .collect();
        for _ in 0..3 {
            let stored: Vec<_> = keys.iter().map(|k| v6.store(k)).collect();
            assert_eq!(v6.len(), 100);
            for (s, k) in stored.iter().zip(&keys) {
                assert_eq!(v6.key(s), *k);
                v6.release(s);
            }
            assert_eq!(v6.len(), 0);
        }
        assert_eq!(v6.pairs.len(), 100, "no entry beyond the most held at once");
    }
}
