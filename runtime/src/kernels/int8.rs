//! int8 layers (format v2, the `mlet_formats` crate doc has the rule): each input is quantized
//! to a code by one f32 multiply and an exact rounding and clamping, the integer sums are exact
//! in i32 (so they may run in any order and any integer instructions), and each output is
//! `(acc as f32) * acc_scale + bias`, then ReLU.
//!
//! The codes of one example's input go to its own region of the scratch (`codes`), written once
//! per layer and read by every block of weight rows. Instruction sets plug in through
//! [`IntKernels`]: the plain loops here (every target; on 32-bit Arm shaped for the Cortex-M4's
//! dual 16-bit multiply-accumulate) and, on x86-64, the AVX2 / AVX-512 ones of `avx_int8.rs`.

use core::ops::Range;

use mlet_formats::{Int8Tensors, LayerTensors, Tensor};

use super::element;

/// 1.5 x 2^23: adding it to an f32 of magnitude below 2^22 and subtracting it again rounds
/// the value to an integer, ties to even, with two IEEE additions (no rounding instruction,
/// which `no_std` targets lack).
pub(super) const ROUND: f32 = 12_582_912.0;

/// `x * input_inv_scale` is clamped to +-LIMIT before rounding: beyond it every code clamps to
/// 0 or 255 whatever the zero point, so no q changes, and the rounding trick stays exact.
pub(super) const LIMIT: f32 = 512.0;

/// Every example's codes region holds a whole number of chunks of this many inputs (2 bytes
/// each): the SIMD kernels load whole chunks, the last one reaching past the row's end, where
/// the weights they multiply are zero. The same on every target, so that a scratch length
/// computed on a host fits a device.
pub(crate) const CODES_CHUNK: usize = 32;

/// Most examples one pass of a layer handles: their NaN flags are the bits of a `u64`.
const PASS: usize = 64;

/// The code q of `v = x * input_inv_scale` for zero point `zero`, as an f32 holding an integer
/// in 0..=255: `clamp(round_ties_even(v) + zero, 0, 255)`, exactly. A NaN `v` gives NaN (the
/// caller flags the example).
#[inline(always)]
pub(super) fn code(v: f32, zero: f32) -> f32 {
    // `clamp` compares (a NaN stays NaN); it is not a min/max instruction.
    let v = v.clamp(-LIMIT, LIMIT);
    (((v + ROUND) - ROUND) + zero).clamp(0.0, 255.0)
}

/// An int8 layer's input quantization, per tensor or per input column.
#[derive(Clone, Copy)]
pub(super) struct InputQuant<'t> {
    /// `input_inv_scale`: F32, 1 or `in` values.
    pub(super) inv_scale: Tensor<'t>,
    /// `input_zero`: U8, 1 or `in` values.
    pub(super) zero: Tensor<'t>,
    /// The zero points of the last chunk of 64 inputs, zero past the inputs (the u8-code
    /// kernels' zero sums read it for every block of rows; only those builds have it).
    #[cfg(all(target_arch = "x86_64", feature = "dispatch"))]
    pub(super) tail_zeros: [u8; 64],
}

impl<'t> InputQuant<'t> {
    /// The quantization of an `n`-input layer, for kernels with u8 codes (`u8_codes`) or not.
    pub(super) fn new(int8: &Int8Tensors<'t>, n: usize, u8_codes: bool) -> InputQuant<'t> {
        #[cfg(not(all(target_arch = "x86_64", feature = "dispatch")))]
        let _ = (n, u8_codes);
        InputQuant {
            inv_scale: int8.input_inv_scale,
            zero: int8.input_zero,
            #[cfg(all(target_arch = "x86_64", feature = "dispatch"))]
            tail_zeros: if u8_codes {
                last_zeros(int8.input_zero.bytes, n)
            } else {
                [0; 64]
            },
        }
    }
}

/// The zero points (`zeros`: one, or one per input) of the last chunk of 64 of `n` inputs, zero
/// past the inputs.
#[cfg(all(target_arch = "x86_64", feature = "dispatch"))]
fn last_zeros(zeros: &[u8], n: usize) -> [u8; 64] {
    let mut last = [0u8; 64];
    let start = n.saturating_sub(1) / 64 * 64;
    let tail = &mut last[..n - start];
    match zeros {
        [one] => tail.fill(*one),
        _ => {
            if let Some(z) = zeros.get(start..n) {
                tail.copy_from_slice(z);
            }
        }
    }
    last
}

impl InputQuant<'_> {
    /// The inverse scale and zero point of input `j`.
    #[inline(always)]
    pub(super) fn at(&self, j: usize) -> (f32, u8) {
        let pick = |t: &Tensor<'_>| if t.len() == 1 { 0 } else { j };
        let inv = element(&self.inv_scale, pick(&self.inv_scale));
        let zero = self.zero.bytes.get(pick(&self.zero)).copied().unwrap_or(0);
        (inv, zero)
    }
}

/// `R` weight rows of `n` bytes each: each slice starts at its row and runs to the end of the
/// weight tensor, so that a kernel may load a whole chunk past a row's end (those weights meet
/// zero codes: every codes region is zero past its inputs) wherever the tensor goes on.
pub(super) struct Rows<'a, const R: usize> {
    /// From each row's start to the end of the tensor.
    pub(super) starts: [&'a [u8]; R],
    /// Bytes (inputs) per row.
    pub(super) n: usize,
}

impl<const R: usize> Rows<'_, R> {
    /// Row `r`'s `n` weights.
    #[inline(always)]
    pub(super) fn row(&self, r: usize) -> &[u8] {
        self.starts[r].get(..self.n).unwrap_or(&[])
    }
}

/// The integer kernels of one instruction set. Codes are either `q - zero` as i16 (2 bytes an
/// input) or `q` as u8 (1 byte; the kernel then subtracts `sum_j w_j zero_j` itself).
pub(super) trait IntKernels: Copy {
    /// Codes are u8 `q` (true) or i16 `q - zero` (false).
    const U8_CODES: bool;

    /// Writes the codes of `x` into `codes`; true if some `x * input_inv_scale` is NaN.
    fn quantize(self, x: &[f32], quant: &InputQuant<'_>, codes: &mut [u8]) -> bool;

    /// `sums[e][r] = sum_j row_r[j] * code_j(codes[e])` (I8 weights). Each codes slice is a
    /// whole number of [`CODES_CHUNK`] chunks, zero past the inputs.
    fn dots<const R: usize, const E: usize>(
        self,
        rows: &Rows<'_, R>,
        codes: [&[u8]; E],
    ) -> [[i32; R]; E];

    /// With u8 codes: `sum_j row_r[j] * zero_j` for every row (what `dots` counted too much).
    fn zero_sums<const R: usize>(self, rows: &Rows<'_, R>, quant: &InputQuant<'_>) -> [i32; R];

    /// `dots` of one example and `zero_sums`, for a layer that scores a single example; a level
    /// with u8 codes computes both in one pass over the weights.
    #[inline(always)]
    fn dots_and_zero_sums<const R: usize>(
        self,
        rows: &Rows<'_, R>,
        codes: &[u8],
        quant: &InputQuant<'_>,
    ) -> ([i32; R], [i32; R]) {
        (
            self.dots::<R, 1>(rows, [codes])[0],
            self.zero_sums(rows, quant),
        )
    }
}

/// The portable kernels: plain loops over i16 codes, on every target without SIMD kernels of
/// its own (on x86-64, the reference the SIMD kernels are tested against).
#[cfg(any(not(target_arch = "x86_64"), test))]
#[derive(Clone, Copy)]
pub(super) struct Plain;

#[cfg(any(not(target_arch = "x86_64"), test))]
impl IntKernels for Plain {
    const U8_CODES: bool = false;

    fn quantize(self, x: &[f32], quant: &InputQuant<'_>, codes: &mut [u8]) -> bool {
        let mut nan = false;
        for (j, (&x, c)) in x.iter().zip(codes.as_chunks_mut::<2>().0).enumerate() {
            let (inv, zero) = quant.at(j);
            let v = x * inv;
            nan |= v.is_nan();
            let q = code(v, f32::from(zero));
            *c = (q as i16 - i16::from(zero)).to_ne_bytes();
        }
        nan
    }

    #[inline(always)]
    fn dots<const R: usize, const E: usize>(
        self,
        rows: &Rows<'_, R>,
        codes: [&[u8]; E],
    ) -> [[i32; R]; E] {
        let mut sums = [[0; R]; E];
        for (sums, codes) in sums.iter_mut().zip(codes) {
            for (r, sum) in sums.iter_mut().enumerate() {
                *sum = dot(rows.row(r), codes);
            }
        }
        sums
    }

    fn zero_sums<const R: usize>(self, _: &Rows<'_, R>, _: &InputQuant<'_>) -> [i32; R] {
        [0; R]
    }
}

/// `sum_j w_j * c_j` of I8 weights and i16 codes: every product and partial sum is exact.
#[cfg(all(not(target_arch = "arm"), any(not(target_arch = "x86_64"), test)))]
#[inline(always)]
fn dot(w: &[u8], codes: &[u8]) -> i32 {
    w.iter()
        .zip(codes.as_chunks::<2>().0)
        .fold(0, |acc, (&w, c)| {
            acc + i32::from(w as i8) * i32::from(i16::from_ne_bytes(*c))
        })
}

/// `sum_j w_j * c_j` on 32-bit Arm: two products of 16-bit halves added to the sum per step (the
/// M4 runs `SMLABB` for each).
#[cfg(target_arch = "arm")]
#[inline(always)]
fn dot(w: &[u8], codes: &[u8]) -> i32 {
    let (pairs, tail) = w.as_chunks::<2>();
    let code_pairs = codes.as_chunks::<4>().0;
    let mut acc = 0i32;
    for (w, c) in pairs.iter().zip(code_pairs) {
        let c0 = i16::from_ne_bytes([c[0], c[1]]);
        let c1 = i16::from_ne_bytes([c[2], c[3]]);
        acc = acc
            .wrapping_add(i32::from(w[0] as i8) * i32::from(c0))
            .wrapping_add(i32::from(w[1] as i8) * i32::from(c1));
    }
    // An odd last weight: its code is the first half of the next pair of codes.
    if let (Some(&w), Some(c)) = (tail.first(), code_pairs.get(pairs.len())) {
        acc = acc.wrapping_add(i32::from(w as i8) * i32::from(i16::from_ne_bytes([c[0], c[1]])));
    }
    acc
}

/// An int8 layer for every example of `scratch` (one per `per` values): `x` at `input`, `y` at
/// `output`, the codes at `codes`, all in one example's values and not overlapping. Groups of
/// `E` examples go through blocks of `R` rows together; examples left over, one at a time,
/// through blocks of `R1` rows. Inlined, so that it is compiled with the target features of
/// its caller (`avx_int8.rs`).
#[inline(always)]
pub(super) fn linear_int8<K: IntKernels, const R: usize, const E: usize, const R1: usize>(
    kernels: K,
    layer: &LayerTensors<'_>,
    int8: &Int8Tensors<'_>,
    scratch: &mut [f32],
    per: usize,
    io: &Io,
    relu: bool,
) {
    for pass in scratch.chunks_mut(PASS * per) {
        layer_pass::<K, R, E, R1>(kernels, layer, int8, pass, per, io, relu);
    }
}

/// Where one example's input, output and codes are in its `per` values.
pub(crate) struct Io {
    /// The layer's input values.
    pub(crate) input: Range<usize>,
    /// Its output values.
    pub(crate) output: Range<usize>,
    /// Room for the input's codes (2 bytes an input, in whole chunks of [`CODES_CHUNK`]).
    pub(crate) codes: Range<usize>,
}

/// One layer's weights and settings, as the block loops use them.
struct Job<'l, 't> {
    layer: &'l LayerTensors<'t>,
    int8: &'l Int8Tensors<'t>,
    quant: InputQuant<'t>,
    io: &'l Io,
    per: usize,
    /// Bytes of codes the kernels read per example: whole chunks.
    padded_len: usize,
    relu: bool,
}

impl<'t> Job<'_, 't> {
    /// Rows `first..first + R` of the weights (`in` bytes each).
    #[inline(always)]
    fn rows<const R: usize>(&self, first: usize) -> Rows<'t, R> {
        let (w, n) = (self.layer.weight.bytes, self.io.input.len());
        let mut starts = [&[][..]; R];
        for (r, start) in starts.iter_mut().enumerate() {
            *start = w.get((first + r) * n..).unwrap_or(&[]);
        }
        Rows { starts, n }
    }

    /// The codes each example of `group` holds.
    #[inline(always)]
    fn codes<'s, const E: usize>(&self, group: &'s [f32]) -> [&'s [u8]; E] {
        core::array::from_fn(|e| {
            let example = group.get(e * self.per..(e + 1) * self.per).unwrap_or(&[]);
            let bytes: &[u8] =
                bytemuck::cast_slice(example.get(self.io.codes.clone()).unwrap_or(&[]));
            bytes.get(..self.padded_len).unwrap_or(&[])
        })
    }
}

/// `linear_int8` for at most [`PASS`] examples.
#[inline(always)]
fn layer_pass<K: IntKernels, const R: usize, const E: usize, const R1: usize>(
    kernels: K,
    layer: &LayerTensors<'_>,
    int8: &Int8Tensors<'_>,
    scratch: &mut [f32],
    per: usize,
    io: &Io,
    relu: bool,
) {
    let n = io.input.len();
    let job = Job {
        layer,
        int8,
        quant: InputQuant::new(int8, n, K::U8_CODES),
        io,
        per,
        padded_len: n.next_multiple_of(CODES_CHUNK) * 2,
        relu,
    };
    let code_len = n * if K::U8_CODES { 1 } else { 2 };
    let mut nan = 0u64;
    for (e, example) in scratch.chunks_exact_mut(per).enumerate() {
        let (x, codes) = split(example, &io.input, &io.codes);
        let codes: &mut [u8] = bytemuck::cast_slice_mut(codes);
        if let Some((codes, padding)) = codes
            .get_mut(..job.padded_len)
            .map(|c| c.split_at_mut(code_len))
        {
            if kernels.quantize(x, &job.quant, codes) {
                nan |= 1 << e;
            }
            padding.fill(0);
        }
    }
    if E == 1 && R == R1 {
        // One shape for every example (the plain loops): compiled once.
        blocks::<K, R, 1>(kernels, &job, scratch);
    } else {
        let grouped = scratch.len() / (per * E) * (per * E);
        let (groups, rest) = scratch.split_at_mut(grouped);
        blocks::<K, R, E>(kernels, &job, groups);
        blocks::<K, R1, 1>(kernels, &job, rest);
    }
    // A NaN never becomes a code: the example's outputs are NaN, and so is its score.
    for (e, example) in scratch.chunks_exact_mut(per).enumerate() {
        if nan >> e & 1 == 1 {
            if let Some(y) = example.get_mut(io.output.clone()) {
                y.fill(f32::NAN);
            }
        }
    }
}

/// The outputs of every group of `E` examples of `scratch`: blocks of `R` rows, then the rows
/// left over one at a time.
#[inline(always)]
fn blocks<K: IntKernels, const R: usize, const E: usize>(
    kernels: K,
    job: &Job<'_, '_>,
    scratch: &mut [f32],
) {
    if scratch.len() < job.per * E {
        return;
    }
    let outputs = job.io.output.len();
    // With one row per block, the loop over single rows below does all the work and the block
    // loop is compiled out.
    let blocks = if R > 1 { outputs / R } else { 0 };
    for b in 0..blocks {
        block::<K, R, E>(kernels, job, scratch, &job.rows::<R>(b * R), b * R);
    }
    for j in blocks * R..outputs {
        block::<K, 1, E>(kernels, job, scratch, &job.rows::<1>(j), j);
    }
}

/// Outputs `first..first + R` of every group of `E` examples of `scratch`.
#[inline(always)]
fn block<K: IntKernels, const R: usize, const E: usize>(
    kernels: K,
    job: &Job<'_, '_>,
    scratch: &mut [f32],
    rows: &Rows<'_, R>,
    first: usize,
) {
    // A single example reads each weight once for its sums and the zero sums together.
    let single = K::U8_CODES && E == 1 && scratch.len() == job.per;
    let mut zero_sums = if K::U8_CODES && !single {
        kernels.zero_sums(rows, &job.quant)
    } else {
        [0; R]
    };
    let scales = job.int8.acc_scale.bytes.as_chunks::<4>().0;
    let biases = job.layer.bias.bytes.as_chunks::<4>().0;
    let ys = job.io.output.start + first..job.io.output.start + first + R;
    for group in scratch.chunks_exact_mut(job.per * E) {
        let sums = if single {
            let codes = job.codes::<1>(group)[0];
            let (sums, zeros) = kernels.dots_and_zero_sums(rows, codes, &job.quant);
            zero_sums = zeros;
            [sums; E]
        } else {
            kernels.dots(rows, job.codes::<E>(group))
        };
        // The block's scales and biases, read after the sums: while the sums run, every
        // register holds the kernel's accumulators.
        let (mut scale, mut bias) = ([0f32; R], [0f32; R]);
        if let (Some(s), Some(b)) = (scales.get(first..first + R), biases.get(first..first + R)) {
            for r in 0..R {
                scale[r] = f32::from_le_bytes(s[r]);
                bias[r] = f32::from_le_bytes(b[r]);
            }
        }
        for (example, sums) in group.chunks_exact_mut(job.per).zip(&sums) {
            // As an array: no bounds checks, so the loop below runs in SIMD registers.
            let y = example.get_mut(ys.clone());
            let Some(y) = y.and_then(|y| <&mut [f32; R]>::try_from(y).ok()) else {
                continue;
            };
            for r in 0..R {
                // `(acc as f32) * acc_scale + bias`, then ReLU.
                let acc = sums[r].wrapping_sub(zero_sums[r]);
                let value = acc as f32 * scale[r] + bias[r];
                y[r] = if job.relu && value < 0.0 { 0.0 } else { value };
            }
        }
    }
}

/// The input values and the codes region of one example, which do not overlap.
fn split<'s>(
    example: &'s mut [f32],
    input: &Range<usize>,
    codes: &Range<usize>,
) -> (&'s [f32], &'s mut [f32]) {
    if input.end <= codes.start {
        let (front, back) = example.split_at_mut(codes.start);
        (
            front.get(input.clone()).unwrap_or(&[]),
            back.get_mut(..codes.len()).unwrap_or(&mut []),
        )
    } else {
        let (front, back) = example.split_at_mut(input.start);
        (
            back.get(..input.len()).unwrap_or(&[]),
            front.get_mut(codes.clone()).unwrap_or(&mut []),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::code;

    #[test]
    fn codes_round_ties_to_even_and_clamp_exactly() {
        // Ties go to the even integer, on both sides of zero, whatever the zero point.
        for (v, zero, q) in [
            (2.5, 0.0, 2.0),
            (3.5, 0.0, 4.0),
            (-2.5, 10.0, 8.0),
            (-3.5, 10.0, 6.0),
            (0.5, 7.0, 7.0),
            (2.4999998, 0.0, 2.0),
            (254.5, 0.0, 254.0),
        ] {
            assert_eq!(code(v, zero), q, "v {v}, zero {zero}");
        }
        // Beyond the range, and at infinities, the code clamps: never a conversion out of range.
        for (v, zero, q) in [
            (1e30, 0.0, 255.0),
            (f32::INFINITY, 200.0, 255.0),
            (f32::NEG_INFINITY, 255.0, 0.0),
            (-1e30, 255.0, 0.0),
            (255.6, 0.0, 255.0),
            (-0.6, 0.0, 0.0),
            (-255.0, 255.0, 0.0),
            (0.0, 255.0, 255.0),
        ] {
            assert_eq!(code(v, zero), q, "v {v}, zero {zero}");
        }
        assert!(code(f32::NAN, 3.0).is_nan());
        // Every integer and half-integer of the useful range, against round_ties_even.
        for k in -1200..=1200 {
            let v = k as f32 * 0.5;
            for zero in [0.0, 1.0, 128.0, 255.0] {
                let want = (libm::rintf(v) + zero).clamp(0.0, 255.0);
                assert_eq!(code(v, zero), want, "v {v}, zero {zero}");
            }
        }
    }
}

/// A random int8 layer for the x86-64 kernels' bit tests: weights, bias, scales and zero points
/// (per tensor or per column), and `examples` random inputs laid out as the scorer's scratch.
#[cfg(all(test, target_arch = "x86_64"))]
pub(super) mod random {
    extern crate std;
    use std::vec::Vec;

    use mlet_formats::{Dtype, Int8Tensors, LayerTensors, Tensor};

    use super::{Io, CODES_CHUNK};

    /// The layer's bytes and the inputs; [`RandomLayer::tensors`] views them.
    pub(in super::super) struct RandomLayer {
        w: Vec<u8>,
        bias: Vec<u8>,
        acc_scale: Vec<u8>,
        inv: Vec<u8>,
        zero: Vec<u8>,
        /// `examples` examples of `per` values each.
        pub(in super::super) xs: Vec<f32>,
        pub(in super::super) per: usize,
        pub(in super::super) io: Io,
    }

    impl RandomLayer {
        pub(in super::super) fn new(
            n_in: usize,
            n_out: usize,
            examples: usize,
            per_column: bool,
            next: &mut dyn FnMut() -> u64,
        ) -> RandomLayer {
            let w: Vec<u8> = (0..n_in * n_out).map(|_| next() as u8).collect();
            let f32s = |count: usize, scale: f32, next: &mut dyn FnMut() -> u64| -> Vec<u8> {
                (0..count)
                    .flat_map(|_| {
                        ((next() >> 40) as f32 / (1u64 << 24) as f32 * scale).to_le_bytes()
                    })
                    .collect()
            };
            let bias = f32s(n_out, 1.0, next);
            let acc_scale = f32s(n_out, 1e-4, next);
            let columns = if per_column { n_in } else { 1 };
            let inv = f32s(columns, 40.0, next);
            let zero: Vec<u8> = (0..columns).map(|_| next() as u8).collect();
            let codes = n_in.next_multiple_of(CODES_CHUNK) / 2;
            let per = n_in + n_out + codes;
            let io = Io {
                input: 0..n_in,
                output: n_in..n_in + n_out,
                codes: n_in + n_out..per,
            };
            let xs: Vec<f32> = (0..examples * per)
                .map(|_| (next() >> 40) as f32 / (1u64 << 24) as f32 * 16.0 - 8.0)
                .collect();
            RandomLayer {
                w,
                bias,
                acc_scale,
                inv,
                zero,
                xs,
                per,
                io,
            }
        }

        /// The layer's tensors.
        pub(in super::super) fn tensors(&self) -> (LayerTensors<'_>, Int8Tensors<'_>) {
            let t = |dtype, bytes| Tensor { dtype, bytes };
            let layer = LayerTensors {
                weight: t(Dtype::I8, &self.w),
                bias: t(Dtype::F32, &self.bias),
                int8: None,
            };
            let int8 = Int8Tensors {
                acc_scale: t(Dtype::F32, &self.acc_scale),
                input_inv_scale: t(Dtype::F32, &self.inv),
                input_zero: t(Dtype::U8, &self.zero),
            };
            (layer, int8)
        }
    }
}
