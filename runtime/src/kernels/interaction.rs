//! The top MLP's input for every example of a tile: z_0, then z_i . z_j for i in 1..=T, j in
//! 0..i, each dot in the one fixed order of `dot` (8 partial sums over the whole chunks of 8,
//! reduced by halving, then the tail).
//!
//! On the host the dots of one z_i with `L` of the z_j are computed side by side, one z_j per
//! lane: from a transposed copy of the z vectors, every step of every dot is the same IEEE
//! operation on the same operands as in `dot`, only for `L` dots at once, so the bits are those
//! of `dot` (a unit test and the batch test compare them). `L` is 16 with AVX-512, 8 with AVX2
//! (picked at run time with `dispatch`, as the layers are), 4 with SSE2: the 8 partial sums
//! then fill 8 registers. On 32-bit Arm (no SIMD) it is `dot` per pair.

use core::ops::Range;

use super::dot;

/// Most values of the transposed copy (`dim x` the vectors rounded up to `L`); larger models
/// go pair by pair.
#[cfg(not(target_arch = "arm"))]
const MAX_TRANSPOSED: usize = 2048;

/// Where the parts of each example's `per` values are.
pub(crate) struct TopInput {
    /// Values per example.
    pub(crate) per: usize,
    /// The T + 1 embedding vectors z_0, ..., z_T at the front (z_0 is copied in first).
    pub(crate) z_len: usize,
    /// Embedding width d.
    pub(crate) dim: usize,
    /// Where the bottom MLP left z_0.
    pub(crate) z0: Range<usize>,
    /// Where the top input goes (z_0, then the dots).
    pub(crate) top: Range<usize>,
}

/// Writes the top input of every example of `scratch`.
pub(crate) fn top_inputs(scratch: &mut [f32], at: &TopInput) {
    #[cfg(all(
        target_arch = "x86_64",
        feature = "dispatch",
        not(target_feature = "avx512f")
    ))]
    {
        if let Some(simd) = pulp::x86::V4::try_new() {
            return simd.vectorize(Tile::<16> { scratch, at });
        }
        #[cfg(not(target_feature = "avx"))]
        if let Some(simd) = pulp::x86::V3::try_new() {
            return simd.vectorize(Tile::<8> { scratch, at });
        }
    }
    const BUILT: usize = if cfg!(target_feature = "avx512f") {
        16
    } else if cfg!(target_feature = "avx") {
        8
    } else {
        4
    };
    tile::<BUILT>(scratch, at);
}

/// `tile` run by `vectorize` inside a function compiled with the CPU's AVX features.
#[cfg(all(
    target_arch = "x86_64",
    feature = "dispatch",
    not(target_feature = "avx512f")
))]
struct Tile<'s, 'a, const L: usize> {
    scratch: &'s mut [f32],
    at: &'a TopInput,
}

#[cfg(all(
    target_arch = "x86_64",
    feature = "dispatch",
    not(target_feature = "avx512f")
))]
impl<const L: usize> pulp::NullaryFnOnce for Tile<'_, '_, L> {
    type Output = ();
    #[inline(always)]
    fn call(self) {
        tile::<L>(self.scratch, self.at);
    }
}

/// The top inputs of a tile, `L` dots side by side (32-bit Arm: pair by pair).
#[inline(always)]
fn tile<const L: usize>(scratch: &mut [f32], at: &TopInput) {
    #[cfg(not(target_arch = "arm"))]
    let mut zt = [0.0f32; MAX_TRANSPOSED];
    let dim = at.dim;
    for example in scratch.chunks_exact_mut(at.per) {
        // z0 sits in the work area, past the embeddings: a plain copy (no memmove on MCUs).
        let (z, work) = example.split_at_mut(at.z_len);
        let z0 = work.get(at.z0.start - at.z_len..at.z0.end - at.z_len);
        if let (Some(z0), Some(front)) = (z0, z.get_mut(..dim)) {
            front.copy_from_slice(z0);
        }
        let Some(top) = work.get_mut(at.top.start - at.z_len..at.top.end - at.z_len) else {
            continue;
        };
        let (top_z0, pairs) = top.split_at_mut(dim.min(top.len()));
        top_z0.copy_from_slice(&z[..top_z0.len()]);
        #[cfg(not(target_arch = "arm"))]
        {
            let vectors = z.len() / dim.max(1);
            if dim > 0 && dim * vectors.next_multiple_of(L) <= MAX_TRANSPOSED {
                side_by_side::<L>(z, dim, vectors, &mut zt, pairs);
                continue;
            }
        }
        pair_by_pair(z, dim, pairs);
    }
}

/// `dot` for every pair.
#[inline(always)]
fn pair_by_pair(z: &[f32], dim: usize, out: &mut [f32]) {
    let vectors = z.len() / dim.max(1);
    let mut out = out.iter_mut();
    for i in 1..vectors {
        let zi = &z[i * dim..(i + 1) * dim];
        for (j, pair) in (0..i).zip(&mut out) {
            *pair = dot(zi, &z[j * dim..(j + 1) * dim]);
        }
    }
}

/// The dots of each z_i with `L` z_j at once, from `zt`: for group g of `L` vectors and element
/// k, `zt[(g * dim + k) * L + lane]` = z_{L g + lane}[k] (0 past the last vector).
#[cfg(not(target_arch = "arm"))]
#[inline(always)]
fn side_by_side<const L: usize>(
    z: &[f32],
    dim: usize,
    vectors: usize,
    zt: &mut [f32],
    out: &mut [f32],
) {
    let (cols, _) = zt.as_chunks_mut::<L>();
    // The last group's lanes past the last vector: zero (their dots are computed, not kept).
    for row in cols.iter_mut().skip(vectors / L * dim).take(dim) {
        *row = [0.0; L];
    }
    for (j, zj) in z.chunks_exact(dim).take(vectors).enumerate() {
        let rows = cols.iter_mut().skip(j / L * dim);
        for (row, &v) in rows.zip(zj) {
            row[j % L] = v;
        }
    }
    let whole = dim / 8;
    let mut out = out.iter_mut();
    for i in 1..vectors {
        let zi = &z[i * dim..(i + 1) * dim];
        for g in 0..i.div_ceil(L) {
            let Some(group) = cols.get(g * dim..(g + 1) * dim) else {
                return;
            };
            let sums = dots::<L>(zi, group, whole);
            // The sums first: `zip` would take (and drop) one more pair past the last sum.
            for (sum, pair) in sums.into_iter().take(i - g * L).zip(&mut out) {
                *pair = sum;
            }
        }
    }
}

/// `dot(zi, z_j)` for the `L` vectors z_j whose elements are `cols[k][lane]`, each by `dot`'s
/// steps: lane k of the partial sums takes the products of elements 8c + k of the whole chunks
/// in order (from 0), the tail's products are summed in order from 0, then
/// `((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7))`, plus the tail.
#[cfg(not(target_arch = "arm"))]
#[inline(always)]
fn dots<const L: usize>(zi: &[f32], cols: &[[f32; L]], whole: usize) -> [f32; L] {
    let mut acc = [[0.0f32; L]; 8];
    for c in 0..whole {
        for k in 0..8 {
            let (a, col) = (zi[8 * c + k], &cols[8 * c + k]);
            for lane in 0..L {
                acc[k][lane] += a * col[lane];
            }
        }
    }
    let mut tail = [0.0f32; L];
    for (t, &a) in zi.iter().enumerate().skip(8 * whole) {
        for lane in 0..L {
            tail[lane] += a * cols[t][lane];
        }
    }
    let mut sums = [0.0f32; L];
    for lane in 0..L {
        let four = [
            acc[0][lane] + acc[4][lane],
            acc[1][lane] + acc[5][lane],
            acc[2][lane] + acc[6][lane],
            acc[3][lane] + acc[7][lane],
        ];
        let two = [four[0] + four[2], four[1] + four[3]];
        sums[lane] = (two[0] + two[1]) + tail[lane];
    }
    sums
}

#[cfg(all(test, not(target_arch = "arm")))]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::{pair_by_pair, side_by_side, MAX_TRANSPOSED};

    #[test]
    fn side_by_side_gives_the_bits_of_dot() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Values of many magnitudes and both signs, and exact zeros (signs of zero matter).
            let v = (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
            match state % 7 {
                0 => 0.0,
                1 => -0.0,
                2 => v * 1e-30,
                3 => v * 1e20,
                _ => v,
            }
        };
        let shapes = [
            (2, 1),
            (3, 3),
            (17, 8),
            (27, 16),
            (27, 4),
            (27, 17),
            (65, 13),
            (5, 64),
        ];
        for (vectors, dim) in shapes {
            let z: Vec<f32> = (0..vectors * dim).map(|_| next()).collect();
            let pairs = vectors * (vectors - 1) / 2;
            let mut want = std::vec![0.0f32; pairs];
            pair_by_pair(&z, dim, &mut want);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
            // A dirty buffer: nothing of an earlier use may leak into the dots.
            let mut zt = std::vec![f32::NAN; MAX_TRANSPOSED];
            for lanes in [4, 8, 16] {
                let mut got = std::vec![0.0f32; pairs];
                match lanes {
                    4 => side_by_side::<4>(&z, dim, vectors, &mut zt, &mut got),
                    8 => side_by_side::<8>(&z, dim, vectors, &mut zt, &mut got),
                    _ => side_by_side::<16>(&z, dim, vectors, &mut zt, &mut got),
                }
                assert_eq!(bits(&want), bits(&got), "{vectors} x {dim}, {lanes} lanes");
            }
        }
    }
}
