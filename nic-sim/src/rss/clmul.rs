//! The Toeplitz hash of the common frame by carry-less multiply ([`Clmul`]).

use super::Hash12;

/// The Toeplitz hash of 12 bytes by two carry-less multiplies (x86-64 `pclmulqdq`), for a
/// host that has them: a value exists only where [`Clmul::new`] found the instructions.
///
/// How: bit `t` of the hash (from the top) is the parity of `in[i] & key[i + t]` over the
/// 96 input bits `i` (bits numbered from each byte's top). With the input's bits in reverse
/// order (`in[i]` at bit `i`) and the key's in order (`key[j]` at bit `63 - j`), a 64-bit
/// carry-less product collects exactly those pairs `(i, i + t)` at bit `63 - t`. One product
/// takes input bits 0..64 with key bits 0..64 (the pairs with `i + t < 64`), the other input
/// bits 32..96 with key bits 64..128 (the rest: `i + t >= 64` means `i >= 33`), landing at
/// bit `95 - t`; so the hash is bits 32..64 of the first product XOR bits 64..96 of the
/// second. Reversing the bits of each byte takes two 16-entry lookups (`pshufb`).
///
/// Why: the tables cost two instructions an input byte (a byte load, then a load and XOR),
/// 25 for the 12 bytes, and a register for the tables' address in the reading loop, which
/// keeps more of its state on the stack; this is 15 instructions with its constants in
/// vector registers ([`Hash12::ready`]). Callgrind, demo: see `share::read::fill`.
#[derive(Debug, Clone, Copy)]
pub struct Clmul {
    /// Key bytes 0..8 and 8..16 as big-endian words (key bit `j` at bit `63 - j % 64`).
    key: [u64; 2],
}

impl Clmul {
    /// The hasher for `key`, if this host has the instructions (`pclmulqdq`, and AVX for
    /// three-operand forms that spare register copies).
    #[allow(unreachable_code)]
    pub fn new(key: &[u8; 40]) -> Option<Clmul> {
        #[cfg(target_arch = "x86_64")]
        {
            if !(std::arch::is_x86_feature_detected!("pclmulqdq")
                && std::arch::is_x86_feature_detected!("avx"))
            {
                return None;
            }
            let word = |at: usize| {
                let mut w = [0u8; 8];
                w.copy_from_slice(&key[at..at + 8]);
                u64::from_be_bytes(w)
            };
            return Some(Clmul {
                key: [word(0), word(8)],
            });
        }
        None
    }
}

impl Hash12 for Clmul {
    #[inline(always)]
    fn hash12(&self, input: &[u8; 12]) -> u32 {
        self.ready().hash12(input)
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn ready(&self) -> impl Hash12 + '_ {
        // SAFETY: a `Clmul` exists only on a host with the instructions (`Clmul::new`).
        unsafe { ClmulReady::new(self) }
    }

    #[cfg(not(target_arch = "x86_64"))]
    #[inline(always)]
    fn ready(&self) -> impl Hash12 + '_ {
        self
    }
}

/// [`Clmul`]'s constants as vector values: the nibble mask, the two nibble reversal tables
/// and the key.
///
/// Why each passes through an empty `asm` block: the compiler otherwise loaded the three
/// constants (and the key, from the stack) again for every frame, rather than keep them in
/// the vector registers the reading loop leaves free: 4 host instructions a frame
/// (callgrind, demo).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct ClmulReady {
    nibble: std::arch::x86_64::__m128i,
    rev_lo: std::arch::x86_64::__m128i,
    rev_hi: std::arch::x86_64::__m128i,
    key: std::arch::x86_64::__m128i,
}

#[cfg(target_arch = "x86_64")]
impl ClmulReady {
    #[target_feature(enable = "pclmulqdq,avx")]
    #[inline]
    fn new(c: &Clmul) -> ClmulReady {
        use std::arch::x86_64::{__m128i, _mm_set_epi64x, _mm_set1_epi8, _mm_setr_epi8};
        let opaque = |mut v: __m128i| {
            // SAFETY: an empty instruction sequence that reads and writes only the register
            // it is given (unchanged).
            unsafe {
                std::arch::asm!("/* {0} */", inout(xmm_reg) v, options(pure, nomem, nostack, preserves_flags));
            }
            v
        };
        // Each byte's bits reversed: its low nibble reversed into the high one, and back.
        ClmulReady {
            nibble: opaque(_mm_set1_epi8(0x0f)),
            rev_lo: opaque(_mm_setr_epi8(
                0x00,
                0x80u8 as i8,
                0x40,
                0xc0u8 as i8,
                0x20,
                0xa0u8 as i8,
                0x60,
                0xe0u8 as i8,
                0x10,
                0x90u8 as i8,
                0x50,
                0xd0u8 as i8,
                0x30,
                0xb0u8 as i8,
                0x70,
                0xf0u8 as i8,
            )),
            rev_hi: opaque(_mm_setr_epi8(
                0x0, 0x8, 0x4, 0xc, 0x2, 0xa, 0x6, 0xe, 0x1, 0x9, 0x5, 0xd, 0x3, 0xb, 0x7, 0xf,
            )),
            key: opaque(_mm_set_epi64x(c.key[1] as i64, c.key[0] as i64)),
        }
    }
}

#[cfg(target_arch = "x86_64")]
impl Hash12 for ClmulReady {
    #[inline(always)]
    fn hash12(&self, input: &[u8; 12]) -> u32 {
        // SAFETY: a `ClmulReady` is made only from a `Clmul`, which exists only on a host
        // with the instructions (`Clmul::new`).
        unsafe { clmul_hash12(self, input) }
    }

    #[inline(always)]
    fn ready(&self) -> impl Hash12 + '_ {
        *self
    }
}

/// [`Clmul`]'s arithmetic without the instructions: the reference its tests compare with.
#[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
pub(super) fn clmul_portable(key: [u64; 2], input: &[u8; 12]) -> u32 {
    let word = |at: usize| {
        let mut w = [0u8; 8];
        for (o, &b) in w.iter_mut().zip(&input[at..at + 8]) {
            *o = b.reverse_bits();
        }
        u64::from_le_bytes(w)
    };
    let product = |x: u64, y: u64| {
        (0..64)
            .filter(|i| x >> i & 1 == 1)
            .fold(0u128, |p, i| p ^ (u128::from(y) << i))
    };
    let (a, b) = (product(word(0), key[0]), product(word(4), key[1]));
    ((a >> 32) ^ (b >> 64)) as u32
}

/// See [`Clmul`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "pclmulqdq,avx")]
#[inline]
fn clmul_hash12(c: &ClmulReady, input: &[u8; 12]) -> u32 {
    use std::arch::x86_64::{
        _mm_and_si128, _mm_castpd_si128, _mm_castsi128_pd, _mm_clmulepi64_si128, _mm_extract_epi32,
        _mm_loadh_pd, _mm_loadl_epi64, _mm_or_si128, _mm_shuffle_epi8, _mm_srli_epi16,
        _mm_srli_si128, _mm_xor_si128,
    };
    let p = input.as_ptr();
    // SAFETY: both 8-byte loads lie within the 12 bytes (0..8 and 4..12); neither needs
    // alignment.
    let v = unsafe {
        let lo = _mm_loadl_epi64(p.cast());
        _mm_castpd_si128(_mm_loadh_pd(_mm_castsi128_pd(lo), p.add(4).cast()))
    };
    let lo = _mm_shuffle_epi8(c.rev_lo, _mm_and_si128(v, c.nibble));
    let hi = _mm_shuffle_epi8(c.rev_hi, _mm_and_si128(_mm_srli_epi16::<4>(v), c.nibble));
    let bits = _mm_or_si128(lo, hi);
    let a = _mm_clmulepi64_si128::<0x00>(bits, c.key);
    let b = _mm_clmulepi64_si128::<0x11>(bits, c.key);
    _mm_extract_epi32::<1>(_mm_xor_si128(a, _mm_srli_si128::<4>(b))) as u32
}
