//! Flow storage: slots addressed by a `u32` index, in fixed-size chunks.
//!
//! Chunks never move once allocated, and the slab grows one chunk at a
//! time, so its slack is at most one chunk: unlike a doubling `Vec`, the
//! memory per flow stays close to the slot size at any table size.
//!
//! A chunk is a power of two in bytes (256 KiB), not in slots: allocators
//! serve a large block from the next of their size classes, and 1,024
//! slots of 224 bytes (229,376 bytes) would take a 256 KiB block, wasting
//! 32 bytes a flow.

/// Bytes per chunk.
const CHUNK_BYTES: usize = 256 << 10;

#[derive(Debug)]
pub(crate) struct Slab<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    /// Slots per chunk.
    const CHUNK: usize = {
        let slots = CHUNK_BYTES / std::mem::size_of::<T>();
        if slots == 0 { 1 } else { slots }
    };

    /// Slots ever used (live or free).
    pub(crate) fn len(&self) -> u32 {
        self.len as u32
    }

    pub(crate) fn get(&self, idx: u32) -> &T {
        let i = idx as usize;
        &self.chunks[i / Self::CHUNK][i % Self::CHUNK]
    }

    pub(crate) fn get_mut(&mut self, idx: u32) -> &mut T {
        let i = idx as usize;
        &mut self.chunks[i / Self::CHUNK][i % Self::CHUNK]
    }

    /// Adds a slot holding `value`; returns its index.
    pub(crate) fn push(&mut self, value: T) -> u32 {
        if self.len % Self::CHUNK == 0 {
            self.chunks.push(Vec::with_capacity(Self::CHUNK));
        }
        if let Some(chunk) = self.chunks.last_mut() {
            chunk.push(value);
        }
        self.len += 1;
        (self.len - 1) as u32
    }

    /// Heap bytes of the slots.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.chunks.iter().map(Vec::capacity).sum::<usize>() * std::mem::size_of::<T>()
            + self.chunks.capacity() * std::mem::size_of::<Vec<T>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_keep_their_index_across_chunks() {
        let mut s = Slab::default();
        let chunk = Slab::<u32>::CHUNK as u32;
        assert_eq!(chunk * 4, CHUNK_BYTES as u32);
        for i in 0..(chunk * 2 + 5) {
            assert_eq!(s.push(i), i);
        }
        assert_eq!(*s.get(chunk), chunk);
        *s.get_mut(3) = 99;
        assert_eq!(*s.get(3), 99);
        assert_eq!(s.len(), chunk * 2 + 5);
        assert_eq!(s.memory_bytes() / CHUNK_BYTES, 3, "three chunks");
    }
}
