//! Seeded random streams and the few distributions the generator needs.
//!
//! Every independent piece of the organisation (a repo's commits, a service's deployments, a
//! service's bill for one month) draws from its own ChaCha8 stream derived from the seed, so a
//! piece can be regenerated alone and output never depends on generation order.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What a random stream is for; part of its seed.
#[derive(Debug, Clone, Copy)]
pub enum Stream {
    /// A repo's commits.
    Commits = 1,
    /// A service's deployments and incidents.
    Delivery = 2,
    /// A service's cloud resources (fixed for the whole period).
    Resources = 3,
    /// One month of a cost owner's bill.
    Bill = 4,
}

/// SplitMix64: a strong 64-bit mix, for picks that must not draw from a stream.
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The stream for `(seed, purpose, a, b)`.
pub fn stream(seed: u64, purpose: Stream, a: u64, b: u64) -> ChaCha8Rng {
    let mixed =
        splitmix64(seed ^ splitmix64((purpose as u64) << 56 ^ splitmix64(a) ^ b.rotate_left(29)));
    ChaCha8Rng::seed_from_u64(mixed)
}

/// A standard normal draw (Box–Muller).
pub fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A log-normal draw with the given median and shape.
pub fn log_normal(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal(rng)).exp()
}

/// Seconds from a log-normal with `median_seconds`, clamped to `[min, max]`.
pub fn span(rng: &mut ChaCha8Rng, median_seconds: f64, sigma: f64, min: i64, max: i64) -> i64 {
    (log_normal(rng, median_seconds, sigma).round() as i64).clamp(min, max)
}

/// A Poisson draw (Knuth for small means, a rounded normal for large ones).
pub fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> u32 {
    if mean <= 0.0 {
        return 0;
    }
    if mean > 30.0 {
        return (mean + mean.sqrt() * normal(rng)).round().max(0.0) as u32;
    }
    let limit = (-mean).exp();
    let mut product: f64 = rng.random::<f64>();
    let mut count = 0;
    while product > limit {
        count += 1;
        product *= rng.random::<f64>();
    }
    count
}

/// 40 lowercase hex digits, a git commit id.
pub fn sha(rng: &mut ChaCha8Rng) -> String {
    let mut out = String::with_capacity(40);
    for _ in 0..5 {
        out.push_str(&format!("{:08x}", rng.random::<u32>()));
    }
    out
}

/// `n` lowercase hex digits.
pub fn hex(rng: &mut ChaCha8Rng, n: usize) -> String {
    let mut out = String::with_capacity(n + 8);
    while out.len() < n {
        out.push_str(&format!("{:08x}", rng.random::<u32>()));
    }
    out.truncate(n);
    out
}
