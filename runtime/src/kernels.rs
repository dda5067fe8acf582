//! The arithmetic of scoring: dot products, linear layers and row reads over tensors in place.
//!
//! Every sum runs in one fixed order (8 interleaved partial sums, reduced by halving, then the
//! tail), so the host and a microcontroller compute the same bits; no fused multiply-add is ever
//! formed. The 8 partial sums are a `wide::f32x8` (SIMD registers) on the host, and a plain
//! array updated in a loop on 32-bit Arm, where Cortex-M has no SIMD and the loop takes less
//! flash: the same IEEE operations in the same order either way. Built with AVX or AVX-512
//! (`-C target-cpu=...`), `matvec` scores 2 examples per load of the weights and reduces 8 sums
//! at once (`reduce8`), and every sum still runs in its one order. A default x86-64 build (SSE2)
//! with the `dispatch` feature runs the layers' products in those AVX kernels when the CPU has
//! them, picked at run time (`avx`). Tensor bytes are read with
//! `from_le_bytes`, which is correct at any alignment and compiles to plain loads where the
//! target allows unaligned access.

use core::ops::Range;

use half::f16;
use mlet_formats::{Dtype, LayerTensors, TableTensors, Tensor};

const LANES: usize = 8;

/// The 8 partial sums of a dot product on the host: SIMD registers.
#[cfg(not(target_arch = "arm"))]
mod lanes {
    use super::LANES;

    /// The 8 partial sums.
    pub(super) type Lanes = wide::f32x8;

    /// All zero.
    pub(super) const ZERO: Lanes = wide::f32x8::ZERO;

    /// `acc[k] += load(w[k]) * x[k]` for every lane: one IEEE multiply, then one add.
    #[inline(always)]
    pub(super) fn add_products<T>(
        acc: &mut Lanes,
        w: &[T; LANES],
        x: &[f32; LANES],
        load: impl Fn(&T) -> f32,
    ) {
        add_lanes(acc, lanes(w, load), x);
    }

    /// 8 weights as lanes.
    #[inline(always)]
    pub(super) fn lanes<T>(w: &[T; LANES], load: impl Fn(&T) -> f32) -> Lanes {
        Lanes::from(w.each_ref().map(load))
    }

    /// `acc[k] += w[k] * x[k]` for every lane: one IEEE multiply, then one add.
    #[inline(always)]
    pub(super) fn add_lanes(acc: &mut Lanes, w: Lanes, x: &[f32; LANES]) {
        *acc += w * Lanes::from(*x);
    }

    /// The lanes as an array.
    pub(super) fn to_array(acc: Lanes) -> [f32; LANES] {
        acc.to_array()
    }

    /// Reduces 8 sums at once, each in the order of `reduce`: transposed, lane `j` of vector
    /// `k` is lane `k` of sum `j`, so every step of the halving adds whole vectors.
    pub(super) fn reduce8(acc: [Lanes; 8], tails: [f32; 8]) -> [f32; 8] {
        let t = Lanes::transpose(acc);
        let four = [t[0] + t[4], t[1] + t[5], t[2] + t[6], t[3] + t[7]];
        let two = [four[0] + four[2], four[1] + four[3]];
        ((two[0] + two[1]) + Lanes::from(tails)).to_array()
    }
}

/// The 8 partial sums of a dot product on 32-bit Arm (Cortex-M, no SIMD): a plain array updated
/// in a loop, which takes less flash than `wide`'s 8 scalar lanes.
#[cfg(target_arch = "arm")]
mod lanes {
    use super::LANES;

    /// The 8 partial sums.
    pub(super) type Lanes = [f32; LANES];

    /// All zero.
    pub(super) const ZERO: Lanes = [0.0; LANES];

    /// `acc[k] += load(w[k]) * x[k]` for every lane: one IEEE multiply, then one add. Each
    /// weight is loaded inside the loop: written as the host's `add_lanes(acc, lanes(w, load), x)`
    /// it measured 308 bytes more runtime code on the Cortex-M4.
    #[inline(always)]
    pub(super) fn add_products<T>(
        acc: &mut Lanes,
        w: &[T; LANES],
        x: &[f32; LANES],
        load: impl Fn(&T) -> f32,
    ) {
        for k in 0..LANES {
            acc[k] += load(&w[k]) * x[k];
        }
    }

    /// 8 weights as lanes (used by the grouped kernel, which 32-bit Arm never runs).
    #[inline(always)]
    pub(super) fn lanes<T>(w: &[T; LANES], load: impl Fn(&T) -> f32) -> Lanes {
        w.each_ref().map(load)
    }

    /// `acc[k] += w[k] * x[k]` for every lane: one IEEE multiply, then one add.
    #[inline(always)]
    pub(super) fn add_lanes(acc: &mut Lanes, w: Lanes, x: &[f32; LANES]) {
        for k in 0..LANES {
            acc[k] += w[k] * x[k];
        }
    }

    /// The lanes as an array.
    pub(super) fn to_array(acc: Lanes) -> [f32; LANES] {
        acc
    }

    /// Reduces 8 sums (used by the grouped kernel, which 32-bit Arm never runs).
    pub(super) fn reduce8(acc: [Lanes; 8], tails: [f32; 8]) -> [f32; 8] {
        core::array::from_fn(|j| super::reduce(acc[j], tails[j]))
    }
}

use lanes::{add_lanes, add_products, lanes, reduce8, to_array, Lanes, ZERO};

/// The 8 partial sums of `dot_block`, in the registers of one instruction set: the build's own
/// (`Built`), or on x86-64 the AVX ones picked at run time (`avx::Avx`). Every
/// implementation adds the same products in the same order, so the bits do not depend on it.
trait Sums: Copy {
    /// 8 partial sums.
    type V: Copy;
    /// All zero.
    fn zero(self) -> Self::V;
    /// 8 weights.
    fn lanes<T>(self, w: &[T; LANES], load: impl Fn(&T) -> f32) -> Self::V;
    /// `acc[k] += w[k] * x[k]`: one IEEE multiply, then one add.
    fn add_lanes(self, acc: &mut Self::V, w: Self::V, x: &[f32; LANES]);
    /// 8 sums reduced at once, each in the order of `reduce`.
    fn reduce8(self, acc: [Self::V; 8], tails: [f32; 8]) -> [f32; 8];
    /// One sum reduced, in the order of `reduce`.
    fn reduce(self, acc: Self::V, tail: f32) -> f32;
}

/// The sums of the instruction set the runtime was built for (`lanes`).
#[derive(Clone, Copy)]
struct Built;

impl Sums for Built {
    type V = Lanes;
    #[inline(always)]
    fn zero(self) -> Lanes {
        ZERO
    }
    #[inline(always)]
    fn lanes<T>(self, w: &[T; LANES], load: impl Fn(&T) -> f32) -> Lanes {
        lanes(w, load)
    }
    #[inline(always)]
    fn add_lanes(self, acc: &mut Lanes, w: Lanes, x: &[f32; LANES]) {
        add_lanes(acc, w, x)
    }
    #[inline(always)]
    fn reduce8(self, acc: [Lanes; 8], tails: [f32; 8]) -> [f32; 8] {
        reduce8(acc, tails)
    }
    #[inline(always)]
    fn reduce(self, acc: Lanes, tail: f32) -> f32 {
        reduce(acc, tail)
    }
}

/// Adds the partial sums by halving (lane i plus lane i + half, until one is left), then the tail.
fn reduce(acc: Lanes, tail: f32) -> f32 {
    reduce_array(to_array(acc), tail)
}

/// `reduce` on the partial sums as an array.
#[inline(always)]
fn reduce_array(a: [f32; LANES], tail: f32) -> f32 {
    let four = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    let two = [four[0] + four[2], four[1] + four[3]];
    (two[0] + two[1]) + tail
}

/// `sum a[i] * b[i]` for two vectors of the same length, in the fixed order.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_rows([a], b, |v| *v)[0]
}

/// Weight rows scored together by `matvec`: independent sums that keep the adders busy, where
/// there are SIMD registers to hold them (8 with AVX-512's 32 registers, so that `reduce8`
/// serves even one example). On 32-bit Arm (Cortex-M: no SIMD, 8 lanes are 8 scalar registers)
/// one row at a time, which takes half the flash; every row's sum runs in the same order either
/// way, so the bits do not change.
const ROWS: usize = if cfg!(target_arch = "arm") {
    1
} else if cfg!(target_feature = "avx512f") {
    8
} else {
    4
};

/// The dot products of `R` rows with `x` (each row as long as `x`), sharing the loads of `x`.
/// Each row's sum runs in the one fixed order: lane `k` adds the products `i = k mod 8` of the
/// whole chunks of 8, the lanes are reduced by halving, and the products of the tail come last.
#[inline(always)]
fn dot_rows<const R: usize, T>(rows: [&[T]; R], x: &[f32], load: impl Fn(&T) -> f32) -> [f32; R] {
    let (x_chunks, x_tail) = x.as_chunks::<LANES>();
    let chunks = rows.map(|row| row.as_chunks::<LANES>());
    let mut acc = [ZERO; R];
    for (c, xc) in x_chunks.iter().enumerate() {
        for r in 0..R {
            if let Some(wc) = chunks[r].0.get(c) {
                add_products(&mut acc[r], wc, xc, &load);
            }
        }
    }
    core::array::from_fn(|r| {
        let tail = chunks[r]
            .1
            .iter()
            .zip(x_tail)
            .fold(0.0f32, |t, (w, x)| t + load(w) * x);
        reduce(acc[r], tail)
    })
}

/// Examples that share each weight load in `matvec`'s blocks of `ROWS` rows: as many as the SIMD
/// registers hold with the `ROWS x EXAMPLES` sums (AVX-512: 8 x 2 of its 32 registers, AVX:
/// 4 x 2 of 16; with SSE2 an 8-lane sum takes two of its 16, so one example). Only the grouping
/// changes, never the order of a sum, so the bits are those of `dot_rows`.
const EXAMPLES: usize = if cfg!(target_feature = "avx") { 2 } else { 1 };

/// The dot products of `R` rows with each of `E` vectors, `sums[e][r] = rows[r] . xs[e]`, each
/// load of 8 weights serving all `E` vectors; every sum in the order of `dot_rows`.
#[inline(always)]
fn dot_block<L: Sums, const R: usize, const E: usize, T>(
    sums_in: L,
    rows: [&[T]; R],
    xs: [&[f32]; E],
    load: impl Fn(&T) -> f32,
) -> [[f32; R]; E] {
    let x_chunks = xs.map(|x| x.as_chunks::<LANES>());
    let w_chunks = rows.map(|row| row.as_chunks::<LANES>());
    let (whole, tail) = x_chunks.first().map_or((0, 0), |x| (x.0.len(), x.1.len()));
    // Rows and vectors have one length (a mismatch would give NaN, which scoring reports as an
    // error); checked here, it also spares the loops below a bounds check per element.
    let x_same = x_chunks
        .iter()
        .all(|x| x.0.len() == whole && x.1.len() == tail);
    let w_same = w_chunks
        .iter()
        .all(|w| w.0.len() == whole && w.1.len() == tail);
    if !x_same || !w_same {
        return [[f32::NAN; R]; E];
    }
    let mut acc = [[sums_in.zero(); R]; E];
    for c in 0..whole {
        for r in 0..R {
            let w = sums_in.lanes(&w_chunks[r].0[c], &load);
            for e in 0..E {
                sums_in.add_lanes(&mut acc[e][r], w, &x_chunks[e].0[c]);
            }
        }
    }
    // The tails element by element, all sums together (each still adds its products in order).
    // Plain loops until the sums are final: `array::from_fn` closures here had kept them in
    // memory inside the chunk loop above.
    let mut tails = [[0.0f32; R]; E];
    for i in 0..tail {
        for r in 0..R {
            let w = load(&w_chunks[r].1[i]);
            for e in 0..E {
                tails[e][r] += w * x_chunks[e].1[i];
            }
        }
    }
    let mut sums = [[0.0; R]; E];
    if (E * R).is_multiple_of(LANES) {
        // Sum i is (example i / R, row i % R); 8 sums are reduced together.
        for first in (0..E * R).step_by(LANES) {
            let at = |k: usize| ((first + k) / R, (first + k) % R);
            let acc8 = core::array::from_fn(|k| acc[at(k).0][at(k).1]);
            let tails8 = core::array::from_fn(|k| tails[at(k).0][at(k).1]);
            for (k, sum) in sums_in.reduce8(acc8, tails8).into_iter().enumerate() {
                sums[at(k).0][at(k).1] = sum;
            }
        }
    } else {
        for e in 0..E {
            for r in 0..R {
                sums[e][r] = sums_in.reduce(acc[e][r], tails[e][r]);
            }
        }
    }
    sums
}

/// For every example of `scratch` (one per `per` values): `y[j] = W[j] . x` with `x` at `input`
/// and `y` at `output`. Each block of weight rows is read once for all the examples, and each
/// load of it serves `E` examples; blocks of `R` rows (with `R == 1`, one row at a time).
#[inline(always)]
fn matvec<L: Sums, const R: usize, const E: usize, const S: usize>(
    sums: L,
    w: &[u8],
    scratch: &mut [f32],
    per: usize,
    input: &Range<usize>,
    output: &Range<usize>,
    load: impl Fn(&[u8; S]) -> f32 + Copy,
) {
    let n = input.len().max(1);
    let w = w.as_chunks::<S>().0;
    // With one row per block (32-bit Arm), the loop over single rows below does all the work and
    // the block loop is compiled out.
    let blocks = if R > 1 { output.len() / R } else { 0 };
    for (b, wb) in w.chunks_exact(n * R).take(blocks).enumerate() {
        let rows: [&[[u8; S]]; R] = core::array::from_fn(|r| &wb[r * n..(r + 1) * n]);
        let ys = b * R..(b + 1) * R;
        let mut groups = scratch.chunks_exact_mut(per * E);
        for group in &mut groups {
            let xs: [&[f32]; E] = core::array::from_fn(|e| {
                let example = group.get(e * per..(e + 1) * per).unwrap_or(&[]);
                example.get(input.clone()).unwrap_or(&[])
            });
            let sums = dot_block(sums, rows, xs, load);
            for (example, sums) in group.chunks_exact_mut(per).zip(&sums) {
                if let Some(y) = example
                    .get_mut(output.clone())
                    .and_then(|y| y.get_mut(ys.clone()))
                {
                    y.copy_from_slice(sums);
                }
            }
        }
        for example in groups.into_remainder().chunks_exact_mut(per) {
            let (x, y) = split_in_out(example, input, output);
            if let Some(y) = y.get_mut(ys.clone()) {
                y.copy_from_slice(&dot_block(sums, rows, [x], load)[0]);
            }
        }
    }
    for j in blocks * R..output.len() {
        let Some(row) = w.get(j * n..(j + 1) * n) else {
            return;
        };
        for example in scratch.chunks_exact_mut(per) {
            let (x, y) = split_in_out(example, input, output);
            if let Some(y) = y.get_mut(j) {
                *y = dot_rows([row], x, load)[0];
            }
        }
    }
}

/// The input and output ranges of one example's scratch, which do not overlap.
fn split_in_out<'s>(
    example: &'s mut [f32],
    input: &Range<usize>,
    output: &Range<usize>,
) -> (&'s [f32], &'s mut [f32]) {
    if input.end <= output.start {
        let (front, back) = example.split_at_mut(output.start);
        (&front[input.clone()], &mut back[..output.len()])
    } else {
        let (front, back) = example.split_at_mut(input.start);
        (&back[..input.len()], &mut front[output.clone()])
    }
}

/// Element `i` of an F32 or F16 tensor (0.0 past the end; the reader has checked lengths).
fn element(t: &Tensor<'_>, i: usize) -> f32 {
    match t.dtype {
        Dtype::F32 => t
            .bytes
            .as_chunks::<4>()
            .0
            .get(i)
            .map_or(0.0, |b| f32::from_le_bytes(*b)),
        Dtype::F16 => t
            .bytes
            .as_chunks::<2>()
            .0
            .get(i)
            .map_or(0.0, |b| f16::from_le_bytes(*b).to_f32()),
        Dtype::U8 => t.bytes.get(i).map_or(0.0, |&q| f32::from(q)),
    }
}

/// For every example of `scratch` (one per `per` values): `y = W x + b`, then ReLU if asked,
/// with `x` at `input` and `y` at `output`. `W` is [output.len(), input.len()] row-major.
pub(crate) fn linear(
    layer: &LayerTensors<'_>,
    scratch: &mut [f32],
    per: usize,
    input: Range<usize>,
    output: Range<usize>,
    relu: bool,
) {
    let io = (input, output);
    #[cfg(all(
        target_arch = "x86_64",
        feature = "dispatch",
        not(target_feature = "avx")
    ))]
    if avx::linear(layer, scratch, per, &io, relu) {
        return;
    }
    linear_with::<Built, ROWS, EXAMPLES>(Built, layer, scratch, per, &io, relu);
}

/// `linear` with the sums `L` in blocks of `R` rows x `E` examples.
#[inline(always)]
fn linear_with<L: Sums, const R: usize, const E: usize>(
    sums: L,
    layer: &LayerTensors<'_>,
    scratch: &mut [f32],
    per: usize,
    (input, output): &(Range<usize>, Range<usize>),
    relu: bool,
) {
    let w = layer.weight.bytes;
    match layer.weight.dtype {
        Dtype::F16 => matvec::<L, R, E, 2>(sums, w, scratch, per, input, output, |b| {
            f16::from_le_bytes(*b).to_f32()
        }),
        _ => matvec::<L, R, E, 4>(sums, w, scratch, per, input, output, |b| {
            f32::from_le_bytes(*b)
        }),
    }
    for example in scratch.chunks_exact_mut(per) {
        for (j, y) in example[output.clone()].iter_mut().enumerate() {
            let value = *y + element(&layer.bias, j);
            *y = if relu && value < 0.0 { 0.0 } else { value };
        }
    }
}

/// The layers in AVX registers on an x86-64 CPU that has them, picked at run time
/// (`pulp` detects the CPU and compiles the kernels inside a function with the AVX2 or AVX-512
/// target features; no `unsafe` here). The default x86-64 build otherwise has only SSE2.
#[cfg(all(
    target_arch = "x86_64",
    feature = "dispatch",
    not(target_feature = "avx")
))]
mod avx {
    use core::arch::x86_64::__m256;
    use core::ops::Range;

    use mlet_formats::LayerTensors;
    use pulp::bytemuck::cast;
    use pulp::x86::{V3, V4};

    use super::{linear_with, reduce_array, Sums, LANES};

    /// 8 partial sums in one AVX register; the token proves that the CPU has AVX.
    #[derive(Clone, Copy)]
    pub(super) struct Avx(pulp::core_arch::x86::Avx);

    impl Sums for Avx {
        type V = __m256;
        #[inline(always)]
        fn zero(self) -> __m256 {
            self.0._mm256_setzero_ps()
        }
        #[inline(always)]
        fn lanes<T>(self, w: &[T; LANES], load: impl Fn(&T) -> f32) -> __m256 {
            cast(w.each_ref().map(load))
        }
        #[inline(always)]
        fn add_lanes(self, acc: &mut __m256, w: __m256, x: &[f32; LANES]) {
            *acc = self
                .0
                ._mm256_add_ps(*acc, self.0._mm256_mul_ps(w, cast(*x)));
        }
        #[inline(always)]
        fn reduce8(self, acc: [__m256; 8], tails: [f32; 8]) -> [f32; 8] {
            let a = self.0;
            // 8 x 8 transpose: lane j of t[k] is lane k of acc[j].
            let lo = |i: usize| a._mm256_unpacklo_ps(acc[i], acc[i + 1]);
            let hi = |i: usize| a._mm256_unpackhi_ps(acc[i], acc[i + 1]);
            let (l0, h0, l2, h2) = (lo(0), hi(0), lo(2), hi(2));
            let (l4, h4, l6, h6) = (lo(4), hi(4), lo(6), hi(6));
            let q = [
                a._mm256_shuffle_ps::<0x44>(l0, l2),
                a._mm256_shuffle_ps::<0xEE>(l0, l2),
                a._mm256_shuffle_ps::<0x44>(h0, h2),
                a._mm256_shuffle_ps::<0xEE>(h0, h2),
                a._mm256_shuffle_ps::<0x44>(l4, l6),
                a._mm256_shuffle_ps::<0xEE>(l4, l6),
                a._mm256_shuffle_ps::<0x44>(h4, h6),
                a._mm256_shuffle_ps::<0xEE>(h4, h6),
            ];
            let t = [
                a._mm256_permute2f128_ps::<0x20>(q[0], q[4]),
                a._mm256_permute2f128_ps::<0x20>(q[1], q[5]),
                a._mm256_permute2f128_ps::<0x20>(q[2], q[6]),
                a._mm256_permute2f128_ps::<0x20>(q[3], q[7]),
                a._mm256_permute2f128_ps::<0x31>(q[0], q[4]),
                a._mm256_permute2f128_ps::<0x31>(q[1], q[5]),
                a._mm256_permute2f128_ps::<0x31>(q[2], q[6]),
                a._mm256_permute2f128_ps::<0x31>(q[3], q[7]),
            ];
            let add = |x, y| a._mm256_add_ps(x, y);
            let four = [
                add(t[0], t[4]),
                add(t[1], t[5]),
                add(t[2], t[6]),
                add(t[3], t[7]),
            ];
            let two = [add(four[0], four[2]), add(four[1], four[3])];
            cast(add(add(two[0], two[1]), cast(tails)))
        }
        #[inline(always)]
        fn reduce(self, acc: __m256, tail: f32) -> f32 {
            reduce_array(cast(acc), tail)
        }
    }

    /// One layer (`linear`) for every example, run by `vectorize` inside a function compiled
    /// with the CPU's AVX features (a closure would not be inlined there, and each intrinsic
    /// would become a call).
    struct Layer<'l, 't, const R: usize, const E: usize> {
        avx: pulp::core_arch::x86::Avx,
        layer: &'l LayerTensors<'t>,
        scratch: &'l mut [f32],
        per: usize,
        io: &'l (Range<usize>, Range<usize>),
        relu: bool,
    }

    impl<const R: usize, const E: usize> pulp::NullaryFnOnce for Layer<'_, '_, R, E> {
        type Output = ();
        #[inline(always)]
        fn call(self) {
            let sums = Avx(self.avx);
            linear_with::<Avx, R, E>(sums, self.layer, self.scratch, self.per, self.io, self.relu);
        }
    }

    /// The AVX levels with kernels: AVX-512 (8 rows x 2 examples per block, in 32 registers)
    /// and AVX2 (4 x 2, in 16).
    #[derive(Clone, Copy, Debug)]
    pub(super) enum Level {
        Avx512,
        Avx2,
    }

    /// `linear` at the best level the CPU has; false when it has neither.
    pub(super) fn linear(
        layer: &LayerTensors<'_>,
        scratch: &mut [f32],
        per: usize,
        io: &(Range<usize>, Range<usize>),
        relu: bool,
    ) -> bool {
        linear_at(Level::Avx512, layer, scratch, per, io, relu)
            || linear_at(Level::Avx2, layer, scratch, per, io, relu)
    }

    /// `linear` at `level`; false when the CPU does not have it.
    pub(super) fn linear_at(
        level: Level,
        layer: &LayerTensors<'_>,
        scratch: &mut [f32],
        per: usize,
        io: &(Range<usize>, Range<usize>),
        relu: bool,
    ) -> bool {
        match level {
            Level::Avx512 => V4::try_new().map(|simd| {
                let avx = simd.avx;
                simd.vectorize(Layer::<8, 2> {
                    avx,
                    layer,
                    scratch,
                    per,
                    io,
                    relu,
                })
            }),
            Level::Avx2 => V3::try_new().map(|simd| {
                let avx = simd.avx;
                simd.vectorize(Layer::<4, 2> {
                    avx,
                    layer,
                    scratch,
                    per,
                    io,
                    relu,
                })
            }),
        }
        .is_some()
    }

    #[cfg(test)]
    mod tests {
        extern crate std;
        use std::vec::Vec;

        use half::f16;
        use mlet_formats::{Dtype, LayerTensors, Tensor};

        use super::super::{linear_with, Built, EXAMPLES, ROWS};
        use super::{linear_at, Level};

        /// `linear` with ReLU for `examples` examples of `per = n_in + n_out` values, by the
        /// build's own kernels, the AVX2 blocks (4 x 2) and the AVX-512 blocks (8 x 2), where
        /// the CPU has them.
        fn outputs(
            layer: &LayerTensors<'_>,
            xs: &[f32],
            n_in: usize,
            n_out: usize,
        ) -> Vec<Vec<u32>> {
            let per = n_in + n_out;
            let io = (0..n_in, n_in..per);
            let fresh = || -> Vec<f32> {
                xs.chunks(n_in)
                    .flat_map(|x| x.iter().copied().chain((0..n_out).map(|_| 0.0)))
                    .collect()
            };
            let bits = |s: Vec<f32>| s.iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
            let mut out = Vec::new();
            let mut scratch = fresh();
            linear_with::<Built, ROWS, EXAMPLES>(Built, layer, &mut scratch, per, &io, true);
            out.push(bits(scratch));
            for level in [Level::Avx2, Level::Avx512] {
                let mut scratch = fresh();
                if linear_at(level, layer, &mut scratch, per, &io, true) {
                    out.push(bits(scratch));
                }
            }
            out
        }

        #[test]
        fn avx2_and_avx512_blocks_give_the_bits_of_the_built_kernels() {
            let mut state = 0x2545_f491_4f6c_dd1du64;
            let mut next = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 * 4.0 - 2.0
            };
            for (n_in, n_out, examples) in [
                (1, 1, 1),
                (7, 3, 2),
                (13, 64, 5),
                (37, 9, 64),
                (64, 17, 3),
                (367, 20, 7),
            ] {
                let w: Vec<f32> = (0..n_in * n_out).map(|_| next()).collect();
                let b: Vec<u8> = (0..n_out).flat_map(|_| next().to_le_bytes()).collect();
                let bias = Tensor {
                    dtype: Dtype::F32,
                    bytes: &b,
                };
                let xs: Vec<f32> = (0..n_in * examples).map(|_| next()).collect();
                let f32_bytes: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
                let f16_bytes: Vec<u8> = w
                    .iter()
                    .flat_map(|&v| f16::from_f32(v).to_le_bytes())
                    .collect();
                for (dtype, bytes) in [(Dtype::F32, &f32_bytes), (Dtype::F16, &f16_bytes)] {
                    let layer = LayerTensors {
                        weight: Tensor { dtype, bytes },
                        bias,
                    };
                    let all = outputs(&layer, &xs, n_in, n_out);
                    if all.len() == 1 {
                        std::eprintln!("this CPU has no AVX2: nothing to compare");
                    }
                    for other in &all[1..] {
                        assert_eq!(
                            &all[0], other,
                            "{dtype:?} {n_in} -> {n_out}, {examples} examples"
                        );
                    }
                }
            }
        }
    }
}

/// Writes row `row` of a table, dequantized, into `out` (d values).
pub(crate) fn read_row(table: &TableTensors<'_>, row: usize, out: &mut [f32]) {
    let w = &table.weight;
    let len = out.len() * w.dtype.size();
    let bytes = w.bytes.get(row * len..(row + 1) * len).unwrap_or(&[]);
    match w.dtype {
        Dtype::F32 => {
            for (o, b) in out.iter_mut().zip(bytes.as_chunks::<4>().0) {
                *o = f32::from_le_bytes(*b);
            }
        }
        Dtype::F16 => {
            for (o, b) in out.iter_mut().zip(bytes.as_chunks::<2>().0) {
                *o = f16::from_le_bytes(*b).to_f32();
            }
        }
        Dtype::U8 => {
            let per_row = |t: &Option<Tensor<'_>>| match t {
                Some(t) if t.len() == 1 => element(t, 0),
                Some(t) => element(t, row),
                None => 0.0,
            };
            let (scale, offset) = (per_row(&table.scale), per_row(&table.offset));
            for (o, &q) in out.iter_mut().zip(bytes) {
                *o = scale * f32::from(q) + offset;
            }
        }
    }
}

/// Asks the caches for row `row` of a table (and its int8 scale and offset, when per row) ahead
/// of `read_row`, so that the cache misses of all the rows of a tile overlap with other work.
#[cfg(target_arch = "x86_64")]
pub(crate) fn prefetch_row(table: &TableTensors<'_>, row: usize, dim: usize) {
    let at = |t: &Tensor<'_>, i: usize| {
        if let Some(byte) = t.bytes.get(i * t.dtype.size()) {
            safe_arch::prefetch_t0(byte);
        }
    };
    at(&table.weight, row * dim);
    for t in [&table.scale, &table.offset].into_iter().flatten() {
        if t.len() > 1 {
            at(t, row);
        }
    }
}
