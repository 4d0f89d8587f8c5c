//! The corpus's randomness: a seeded xorshift generator and the few ways the
//! generator draws from it (weighted picks, hex digits, GUIDs, addresses).

/// A small xorshift generator: deterministic and dependency-free, so a seed
/// names the same corpus on every machine and every Rust version.
///
/// ```
/// let mut a = trawl_bench::Rng::new(7);
/// let mut b = trawl_bench::Rng::new(7);
/// assert_eq!(a.next_u64(), b.next_u64());
/// ```
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (zero is replaced, xorshift needs a set bit).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A value in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// True `per_mille` times in a thousand.
    pub fn chance(&mut self, per_mille: usize) -> bool {
        self.below(1000) < per_mille
    }

    /// One entry of a table of `(weight, item)` pairs, in proportion to the
    /// weights (the table is non-empty with a positive total).
    pub fn weighted<'a, T>(&mut self, table: &'a [(u32, T)]) -> &'a T {
        let total: u32 = table.iter().map(|(w, _)| w).sum();
        let mut at = self.below(total as usize) as u32;
        for (w, item) in table {
            if at < *w {
                return item;
            }
            at -= w;
        }
        &table[table.len() - 1].1
    }

    /// `n` lower-case hex digits.
    pub fn hex(&mut self, n: usize) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        (0..n)
            .map(|_| DIGITS[self.below(16)] as char)
            .collect::<String>()
    }

    /// `n` upper-case hex digits.
    pub fn upper_hex(&mut self, n: usize) -> String {
        self.hex(n).to_ascii_uppercase()
    }

    /// A GUID without braces, upper case (`8C1F0E6A-…`), as Windows prints them.
    pub fn guid(&mut self) -> String {
        format!(
            "{}-{}-{}-{}-{}",
            self.upper_hex(8),
            self.upper_hex(4),
            self.upper_hex(4),
            self.upper_hex(4),
            self.upper_hex(12)
        )
    }

    /// A private IPv4 address, as internal hosts have.
    pub fn private_ip(&mut self) -> String {
        format!(
            "10.{}.{}.{}",
            self.below(32),
            self.below(256),
            1 + self.below(254)
        )
    }

    /// A public-looking IPv4 address, as attackers' servers have.
    pub fn public_ip(&mut self) -> String {
        format!(
            "{}.{}.{}.{}",
            *self.pick(&[45u8, 91, 103, 141, 185, 193, 194]),
            self.below(256),
            self.below(256),
            1 + self.below(254)
        )
    }
}

/// A generator seeded from a text, so a value derived from it (a binary's
/// hashes from its path) is the same wherever the text appears.
pub fn rng_for(text: &str) -> Rng {
    // FNV-1a: stable, unlike the standard library's hasher.
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    Rng::new(h)
}
