//! Deterministic identifiers and seeded randomness.
//!
//! Every effect of a job is keyed by an id derived from what it is about (a prospect's
//! source id, a step number, a period), so a job delivered twice writes the same rows.

/// FNV-1a over the parts, separated so that `["ab","c"]` and `["a","bc"]` differ.
pub fn stable_hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0x1f)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// A short readable id: `prefix_` and 16 hex digits.
pub fn stable_id(prefix: &str, parts: &[&str]) -> String {
    format!("{prefix}_{:016x}", stable_hash(parts))
}

/// SplitMix64: tiny, portable and the same on every platform and version, which a
/// seeded simulation needs (rand's small generators do not promise that).
#[derive(Debug, Clone)]
pub struct SeededRng(u64);

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// A generator for one decision about one thing, independent of the order in which
    /// decisions are taken.
    pub fn for_decision(seed: u64, parts: &[&str]) -> Self {
        Self(seed ^ stable_hash(parts))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_ids_do_not_depend_on_how_parts_are_split() {
        assert_ne!(stable_hash(&["ab", "c"]), stable_hash(&["a", "bc"]));
        assert_eq!(stable_id("p", &["x"]), stable_id("p", &["x"]));
    }

    #[test]
    fn seeded_generators_repeat_and_differ_by_decision() {
        let a: Vec<u64> = (0..3)
            .map(|_| 0)
            .scan(SeededRng::new(7), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..3)
            .map(|_| 0)
            .scan(SeededRng::new(7), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        let x = SeededRng::for_decision(7, &["reply", "m1"]).unit();
        let y = SeededRng::for_decision(7, &["reply", "m2"]).unit();
        assert_ne!(x, y);
        assert!((0.0..1.0).contains(&x));
    }
}
