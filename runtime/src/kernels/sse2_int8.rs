//! int8 layers in SSE2 registers, the x86-64 baseline: a build without `dispatch`, or a CPU
//! without AVX2. Codes are `q - zero` as i16; weights are widened to i16 by interleaving each
//! byte with itself and shifting right arithmetically (SSE2 has no `pmovsxbw`); each `pmaddwd`
//! adds two exact products into an i32 lane. `safe_arch` gives the SSE2 instructions safely
//! (SSE2 is part of every x86-64 CPU).

// Index loops over small arrays of registers, as in `avx_int8.rs`.
#![allow(clippy::needless_range_loop)]

use safe_arch::{
    add_i32_m128i, add_m128, cmp_unord_mask_m128, convert_to_m128_from_i32_m128i, m128, m128i,
    max_m128, min_m128, move_mask_m128, mul_i16_horizontal_add_m128i, mul_m128,
    pack_i32_to_i16_m128i, set_splat_m128, shr_imm_i16_m128i, sub_m128, truncate_m128_to_m128i,
    unpack_high_i16_m128i, unpack_low_i16_m128i, unpack_low_i8_m128i, zeroed_m128i,
};

use super::int8::{code, InputQuant, IntKernels, Rows, LIMIT, ROUND};
use super::simd_int8::{dots, in_place, padded_chunk, unflatten, MAX_SUMS};

/// The SSE2 kernels: 8 i16 codes a register; used in blocks of 4 rows x 2 examples (the widened
/// weights serve two examples; 8 sums in 16 registers).
#[derive(Clone, Copy)]
pub(super) struct Sse2;

impl Sse2 {
    #[inline(always)]
    fn zero(self) -> m128i {
        zeroed_m128i()
    }
    /// 8 weights, widened to i16: each byte beside itself, then the pair shifted right by 8.
    #[inline(always)]
    fn load_w(self, w: &[u8; 8]) -> m128i {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(w);
        let v = m128i::from(bytes);
        shr_imm_i16_m128i::<8>(unpack_low_i8_m128i(v, v))
    }
    /// 8 i16 codes.
    #[inline(always)]
    fn load_x(self, x: &[u8; 16]) -> m128i {
        m128i::from(*x)
    }
    #[inline(always)]
    fn mac(self, acc: m128i, w: m128i, x: m128i) -> m128i {
        add_i32_m128i(acc, mul_i16_horizontal_add_m128i(w, x))
    }
    /// Each accumulator's lane sum, example-major (exact in wrapping i32).
    #[inline(always)]
    fn sums<const R: usize, const E: usize>(self, acc: &[[m128i; R]; E]) -> [i32; MAX_SUMS] {
        let mut sums = [0i32; MAX_SUMS];
        for e in 0..E {
            for r in 0..R {
                let lanes: [i32; 4] = acc[e][r].into();
                let sum = lanes.iter().fold(0i32, |s, &v| s.wrapping_add(v));
                sums[(e * R + r) % MAX_SUMS] = sum;
            }
        }
        sums
    }
}

impl IntKernels for Sse2 {
    const U8_CODES: bool = false;

    #[inline(always)]
    fn quantize(self, x: &[f32], quant: &InputQuant<'_>, codes: &mut [u8]) -> bool {
        quantize(x, quant, codes)
    }

    dots!(8, 16);

    fn zero_sums<const R: usize>(self, _: &Rows<'_, R>, _: &InputQuant<'_>) -> [i32; R] {
        [0; R]
    }
}

/// The i16 codes `q - zero` of `x` into `codes`, 8 at a time (the tail by `code`); true if some
/// `x * input_inv_scale` is NaN. Each step is the rule's f32 operation.
#[inline(always)]
fn quantize(x: &[f32], quant: &InputQuant<'_>, codes: &mut [u8]) -> bool {
    let (inv0, zero0) = quant.at(0);
    let per_column_inv = quant.inv_scale.len() > 1;
    let per_column_zero = quant.zero.len() > 1;
    let inv_chunks = quant.inv_scale.bytes.as_chunks::<16>().0;
    let zero_chunks = quant.zero.bytes.as_chunks::<8>().0;
    let (low, high, round) = (
        set_splat_m128(-LIMIT),
        set_splat_m128(LIMIT),
        set_splat_m128(ROUND),
    );
    let (lo_q, hi_q) = (set_splat_m128(0.0), set_splat_m128(255.0));
    let mut nan = set_splat_m128(0.0);
    let mut done = 0;
    let x_chunks = x.as_chunks::<8>().0;
    for (c, (xs, out)) in x_chunks
        .iter()
        .zip(codes.as_chunks_mut::<16>().0)
        .enumerate()
    {
        // The 8 zero points as two f32 halves.
        let zeros: [m128; 2] = match zero_chunks.get(c) {
            Some(z) if per_column_zero => {
                let mut bytes = [0u8; 16];
                bytes[..8].copy_from_slice(z);
                let words = unpack_low_i8_m128i(m128i::from(bytes), zeroed_m128i());
                [
                    convert_to_m128_from_i32_m128i(unpack_low_i16_m128i(words, zeroed_m128i())),
                    convert_to_m128_from_i32_m128i(unpack_high_i16_m128i(words, zeroed_m128i())),
                ]
            }
            _ => [set_splat_m128(f32::from(zero0)); 2],
        };
        let mut ints = [zeroed_m128i(); 2];
        for h in 0..2 {
            let inv = match inv_chunks.get(2 * c + h) {
                Some(b) if per_column_inv => {
                    let f: [f32; 4] = core::array::from_fn(|k| {
                        f32::from_le_bytes([b[4 * k], b[4 * k + 1], b[4 * k + 2], b[4 * k + 3]])
                    });
                    m128::from(f)
                }
                _ => set_splat_m128(inv0),
            };
            let xh: [f32; 4] = [xs[4 * h], xs[4 * h + 1], xs[4 * h + 2], xs[4 * h + 3]];
            let v = mul_m128(m128::from(xh), inv);
            nan = safe_arch::bitor_m128(nan, cmp_unord_mask_m128(v, v));
            let v = min_m128(max_m128(v, low), high);
            let r = sub_m128(add_m128(v, round), round);
            let q = min_m128(max_m128(add_m128(r, zeros[h]), lo_q), hi_q);
            // q - zero is an exact integer in -255..=255: truncation converts it exactly.
            ints[h] = truncate_m128_to_m128i(sub_m128(q, zeros[h]));
        }
        *out = pack_i32_to_i16_m128i(ints[0], ints[1]).into();
        done = 8 * (c + 1);
    }
    let mut any_nan = move_mask_m128(nan) != 0;
    let tail = x
        .iter()
        .zip(codes.as_chunks_mut::<2>().0)
        .enumerate()
        .skip(done);
    for (j, (&x, c)) in tail {
        let (inv, zero) = quant.at(j);
        let v = x * inv;
        any_nan |= v.is_nan();
        *c = (code(v, f32::from(zero)) as i16 - i16::from(zero)).to_ne_bytes();
    }
    any_nan
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::super::int8::random::RandomLayer;
    use super::super::int8::{linear_int8, Plain};
    use super::Sse2;

    #[test]
    fn sse2_int8_layers_give_the_bits_of_the_plain_loops() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for (n_in, n_out, examples, per_column) in [
            (1, 1, 1, false),
            (7, 3, 2, true),
            (13, 64, 5, false),
            (33, 9, 64, true),
            (367, 20, 7, false),
        ] {
            let random = RandomLayer::new(n_in, n_out, examples, per_column, &mut next);
            let (layer, int8) = random.tensors();
            let (xs, per, io) = (&random.xs, random.per, &random.io);
            let (mut plain, mut sse2) = (xs.clone(), xs.clone());
            linear_int8::<Plain, 1, 1, 1>(Plain, &layer, &int8, &mut plain, per, io, true);
            linear_int8::<Sse2, 4, 2, 4>(Sse2, &layer, &int8, &mut sse2, per, io, true);
            let bits = |s: &[f32]| s.iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
            for e in 0..examples {
                let out = e * per + n_in..e * per + n_in + n_out;
                assert_eq!(
                    bits(&plain[out.clone()]),
                    bits(&sse2[out]),
                    "{n_in} -> {n_out}, example {e}"
                );
            }
        }
    }
}
