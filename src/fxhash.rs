//! A fast, non-cryptographic hasher for the fleet's maps (node ids, container ids, claim ids).
//!
//! Keys come from the program that owns the fleet, not from untrusted clients, so hash
//! flooding is not a concern, and SipHash would cost a third of a verdict. This is the FxHash
//! multiply-rotate used by rustc.

use std::hash::{BuildHasherDefault, Hasher};

#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // The length first, so that zero padding of the last word never makes two keys equal.
        self.add(bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf));
        }
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.add(n as u64);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // hashbrown takes the bucket from the low bits and the tag from the top 7; a product's
        // low bits depend only on the low bits of its inputs, so keys that differ in a few
        // bytes (node-0001, node-0002) would crowd into few buckets. Rotating the well-mixed
        // high bits down spreads them (rustc-hash 2 does the same).
        self.0.rotate_left(26)
    }
}

pub type FxBuildHasher = BuildHasherDefault<FxHasher>;
pub type FxHashMap<K, V> = std::collections::HashMap<K, V, FxBuildHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn distinct_keys_hash_apart_and_equal_keys_together() {
        let b = FxBuildHasher::default();
        let h = |s: &str| b.hash_one(s);
        assert_eq!(h("worker-1"), h("worker-1"));
        let hashes: std::collections::HashSet<u64> =
            (0..10_000).map(|i| h(&format!("worker-{i}"))).collect();
        assert_eq!(hashes.len(), 10_000);
        assert_ne!(h("a"), h("a\0"));
    }
}
