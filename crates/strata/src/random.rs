//! A small, fast random number generator (xorshift64*) for jitter, sampling and load
//! generation: not for anything secret.

use std::sync::atomic::{AtomicU64, Ordering};

/// A xorshift64* generator; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed` (any value; 0 is moved off the fixed point).
    pub fn new(seed: u64) -> Rng {
        // splitmix64 spreads similar seeds apart.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)).max(1))
    }

    /// A generator seeded from the clock, the process id and a process-wide counter, so
    /// generators made at the same instant still differ.
    pub fn seeded() -> Rng {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Rng::new(t ^ (u64::from(std::process::id()) << 32) ^ n.wrapping_mul(0x2545_F491_4F6C_DD1D))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A whole number in `[0, n)` (`n` > 0).
    #[cfg_attr(not(feature = "load"), allow(dead_code))]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// `d` varied by up to `±fraction` of itself, uniformly.
    pub fn jitter(&mut self, d: std::time::Duration, fraction: f64) -> std::time::Duration {
        d.mul_f64((1.0 + fraction * (2.0 * self.unit() - 1.0)).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_stay_in_range_and_cover_it() {
        let mut r = Rng::new(0);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[r.below(10) as usize] += 1;
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
        let d = std::time::Duration::from_millis(100);
        for _ in 0..1000 {
            let j = r.jitter(d, 0.25);
            assert!(j >= d.mul_f64(0.75) && j <= d.mul_f64(1.25));
        }
        assert_ne!(Rng::seeded().next_u64(), Rng::seeded().next_u64());
    }
}
