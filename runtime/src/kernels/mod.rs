//! The arithmetic of scoring: dot products, linear layers and row reads over tensors in place.
//!
//! One rule holds in every file: every sum runs in one fixed order (8 interleaved partial sums,
//! reduced by halving, then the tail) and no fused multiply-add is ever formed, so every build
//! and every target, host or microcontroller, computes the same bits. Tensor bytes are read with
//! `from_le_bytes`, which is correct at any alignment and compiles to plain loads where the
//! target allows unaligned access.
//!
//! - `mod.rs` (here): the kernels, written once over the partial sums of any instruction set
//!   (`Sums`): `dot`, the blocked `matvec` and the layer `linear`. Built with AVX or AVX-512
//!   (`-C target-cpu=...`), `matvec` scores 2 examples per load of the weights and reduces 8 sums
//!   at once (`reduce8`), and every sum still runs in its one order.
//! - `lanes.rs`: the partial sums of the build's own instruction set (`wide::f32x8` on the host,
//!   a plain array on 32-bit Arm) and `reduce`, the one order of their reduction.
//! - `avx.rs`: on x86-64, a default build (SSE2) with the `dispatch` feature runs the layers in
//!   AVX2 or AVX-512 registers when the CPU has them, picked at run time.
//! - `rows.rs`: embedding rows, read and dequantized, and prefetched on x86-64.
//! - `int8.rs`: int8 layers (format v2), whose sums are exact integers: there the rule above
//!   does not apply, and any order or instruction set gives the same bits. On x86-64,
//!   `sse2_int8.rs` (the baseline) and `avx_int8.rs` (AVX2, AVX-512, VNNI, picked at run time)
//!   share their block loop through `simd_int8.rs`; on Linux `amx_int8.rs` runs groups of 64
//!   examples in AMX tiles where the CPU has them.
//! - `interaction.rs`: the top input: z_0 and the pairwise dots, side by side on the host (16
//!   with AVX-512, picked at run time), each in `dot`'s order.

use core::ops::Range;

use half::f16;
use mlet_formats::{Dtype, LayerTensors, Tensor};

#[cfg(all(target_arch = "x86_64", feature = "dispatch", target_os = "linux"))]
mod amx_int8;
#[cfg(all(
    target_arch = "x86_64",
    feature = "dispatch",
    not(target_feature = "avx")
))]
mod avx;
#[cfg(all(target_arch = "x86_64", feature = "dispatch"))]
mod avx_int8;
mod int8;
mod interaction;
mod lanes;
mod rows;
#[cfg(target_arch = "x86_64")]
mod simd_int8;
#[cfg(target_arch = "x86_64")]
mod sse2_int8;

pub(crate) use int8::{Io, CODES_CHUNK};
pub(crate) use interaction::{top_inputs, TopInput};
use lanes::{add_lanes, add_products, lanes, reduce, reduce8, Lanes, ZERO};
#[cfg(target_arch = "x86_64")]
pub(crate) use rows::prefetch_row;
pub(crate) use rows::read_row;

const LANES: usize = 8;

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

/// `sum a[i] * b[i]` for two vectors of the same length, in the fixed order.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_rows([a], b, |v| *v)[0]
}

/// Weight rows scored together by `matvec`: independent sums that keep the adders busy, where
/// there are SIMD registers to hold them (8 with AVX-512's 32 registers, so that `reduce8`
/// serves even one example). On 32-bit Arm (Cortex-M: no SIMD, 8 lanes are 8 scalar registers)
/// one row at a time, which takes less flash; every row's sum runs in the same order either way,
/// so the bits do not change.
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
    // Plain loops until the sums are final: `array::from_fn` closures here would keep them in
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
        Dtype::I8 => t.bytes.get(i).map_or(0.0, |&q| f32::from(q as i8)),
    }
}

/// For every example of `scratch` (one per `per` values): `y = W x + b`, then ReLU if asked,
/// with `x` at `io.input` and `y` at `io.output`. `W` is [output.len(), input.len()] row-major.
/// An int8 layer writes its input's codes at `io.codes` first.
pub(crate) fn linear(
    layer: &LayerTensors<'_>,
    scratch: &mut [f32],
    per: usize,
    io: &Io,
    relu: bool,
) {
    if let Some(int8) = &layer.int8 {
        #[cfg(all(target_arch = "x86_64", feature = "dispatch"))]
        if avx_int8::linear(layer, int8, scratch, per, io, relu) {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        int8::linear_int8::<sse2_int8::Sse2, 4, 2, 4>(
            sse2_int8::Sse2,
            layer,
            int8,
            scratch,
            per,
            io,
            relu,
        );
        #[cfg(not(target_arch = "x86_64"))]
        int8::linear_int8::<int8::Plain, 1, 1, 1>(int8::Plain, layer, int8, scratch, per, io, relu);
        return;
    }
    let io = (io.input.clone(), io.output.clone());
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
