//! Deterministic inputs for unit tests (no RNG crate: the bytes must never change).

/// xorshift64* stream: fast, seeded, and stable forever.
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// `(chunk id prefix, length)` of `pseudo_random(2026, 1 MiB)` with default parameters.
pub const GOLDEN_1MIB: &[(&str, usize)] = &[
    ("1bd98981baee", 97938),
    ("0d7f97597f42", 71409),
    ("bbc1eea9e900", 109217),
    ("fb64163c18f2", 57098),
    ("f71a49e49a92", 83081),
    ("b11b71797fb9", 61948),
    ("33ee0e7dffc4", 53379),
    ("9af42a5b0dfb", 67948),
    ("6b0e2939602f", 22862),
    ("849c0af3a66d", 34798),
    ("209b5d44b593", 70863),
    ("68d7d6032614", 53337),
    ("9029d9800fc5", 17318),
    ("0ff2185b7251", 56493),
    ("034d40340859", 57404),
    ("e0e9c825d5ba", 101231),
    ("1bc9bb6232ac", 32252),
];
