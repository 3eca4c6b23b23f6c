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

fn word8(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // The length first: the words below then determine the key (for keys of one length
        // they cover every byte), and overlapping reads never make two keys equal.
        let n = bytes.len();
        self.add(n as u64);
        if n >= 8 {
            let mut chunks = bytes.chunks_exact(8);
            for c in &mut chunks {
                self.add(word8(c));
            }
            if !chunks.remainder().is_empty() {
                // The last eight bytes, overlapping the last full word: fixed-size reads only
                // (a variable-length copy is a call to memcpy, a third of a short key's hash).
                self.add(word8(&bytes[n - 8..]));
            }
        } else if n >= 4 {
            let lo = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
            let hi = u32::from_le_bytes(bytes[n - 4..].try_into().expect("4 bytes"));
            self.add(u64::from(lo) | u64::from(hi) << 32);
        } else if n > 0 {
            let w =
                u64::from(bytes[0]) | u64::from(bytes[n / 2]) << 8 | u64::from(bytes[n - 1]) << 16;
            self.add(w);
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

    #[test]
    fn every_byte_of_every_length_counts() {
        // The short-key reads overlap; a change in any one byte must still change the hash.
        let b = FxBuildHasher::default();
        for len in 0..=24usize {
            let base: Vec<u8> = (0..len as u8).map(|i| b'a' + i).collect();
            let h0 = b.hash_one(&base[..]);
            for pos in 0..len {
                let mut other = base.clone();
                other[pos] = b'Z';
                assert_ne!(b.hash_one(&other[..]), h0, "length {len}, byte {pos}");
            }
        }
    }
}
