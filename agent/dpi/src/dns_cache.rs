//! Addresses named by DNS answers, so that a later flow to one of them
//! can be given the application of the name (Netify's `dhc_hit`).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;

use foldhash::fast::FixedState;
use hashbrown::HashMap;

/// A bounded map from address to the name that resolved to it. When full,
/// the oldest entry goes.
#[derive(Debug)]
pub(crate) struct DnsCache {
    names: HashMap<IpAddr, Arc<str>, FixedState>,
    order: VecDeque<IpAddr>,
    capacity: usize,
}

impl DnsCache {
    pub(crate) fn new(capacity: usize) -> Self {
        DnsCache {
            names: HashMap::with_hasher(FixedState::default()),
            order: VecDeque::new(),
            capacity,
        }
    }

    /// Records that `name` resolved to `addr` (the newest answer wins).
    pub(crate) fn insert(&mut self, addr: IpAddr, name: Arc<str>) {
        if self.capacity == 0 {
            return;
        }
        if self.names.insert(addr, name).is_none() {
            if self.order.len() == self.capacity
                && let Some(oldest) = self.order.pop_front()
            {
                self.names.remove(&oldest);
            }
            self.order.push_back(addr);
        }
    }

    pub(crate) fn get(&self, addr: &IpAddr) -> Option<&str> {
        self.names.get(addr).map(|n| &**n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_oldest_first() {
        let mut c = DnsCache::new(2);
        let a = |n: u8| IpAddr::from([10, 0, 0, n]);
        c.insert(a(1), "one".into());
        c.insert(a(2), "two".into());
        c.insert(a(1), "uno".into()); // refresh: still two entries
        c.insert(a(3), "three".into());
        assert_eq!(c.get(&a(1)), None);
        assert_eq!(c.get(&a(2)), Some("two"));
        assert_eq!(c.get(&a(3)), Some("three"));
        assert_eq!(c.names.len(), 2);
    }
}
