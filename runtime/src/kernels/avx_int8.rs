//! int8 layers in AVX2 and AVX-512 registers on an x86-64 CPU that has them, picked at run time
//! (`pulp` detects the CPU and compiles the kernels inside a function with those target
//! features). On Linux, with AMX-INT8, whole groups of 64 examples go to the tiles of
//! `amx_int8.rs` first.
//!
//! - With AVX-512 VNNI, codes are `q` as u8 and `vpdpbusd` adds four exact u8 x i8 products
//!   into each i32 lane (64 products an instruction); the layer's `sum_j w_j zero_j` is
//!   subtracted once per row ([`IntKernels::zero_sums`]). `vpdpbusd` is not among pulp's safe
//!   intrinsics: it is the runtime's one `unsafe` call (see [`dpbusd`]).
//! - With AVX-512 BW or AVX2, codes are `q - zero` as i16 and weights are widened to i16
//!   (`vpmovsxbw`), so each `vpmaddwd` adds two exact products (|w (q - z)| <= 128 x 255) into
//!   an i32 lane. The `vpmaddubsw` of u8 codes times i8 weights would do twice the products per
//!   instruction, but it saturates its pair sums at 32,767 (two products can reach
//!   2 x 255 x 127 = 64,770), so it is not exact and is not used.

// Index loops over small arrays of registers, written out instead of iterator adaptors and
// `array::from_fn`, whose closures would not always be compiled with the target features.
#![allow(clippy::needless_range_loop)]

use core::arch::x86_64::{__m128i, __m256, __m256i, __m512, __m512i};

use mlet_formats::{Int8Tensors, LayerTensors};
use pulp::bytemuck::cast;
use pulp::x86::{V3, V4};

use super::int8::{code, linear_int8, InputQuant, IntKernels, Io, Rows, LIMIT, ROUND};
use super::simd_int8::{dots, in_place, padded_chunk, unflatten, MAX_SUMS};

pulp::simd_type! {
    /// AVX-512 with VNNI (Ice Lake and later servers, Zen 4): V4's features and `avx512vnni`.
    pub(super) struct V4Vnni {
        pub sse: "sse",
        pub sse2: "sse2",
        pub fxsr: "fxsr",
        pub sse3: "sse3",
        pub ssse3: "ssse3",
        pub sse4_1: "sse4.1",
        pub sse4_2: "sse4.2",
        pub popcnt: "popcnt",
        pub avx: "avx",
        pub avx2: "avx2",
        pub bmi1: "bmi1",
        pub bmi2: "bmi2",
        pub fma: "fma",
        pub lzcnt: "lzcnt",
        pub avx512f: "avx512f",
        pub avx512bw: "avx512bw",
        pub avx512cd: "avx512cd",
        pub avx512dq: "avx512dq",
        pub avx512vl: "avx512vl",
        pub avx512vnni: "avx512vnni",
    }
}

impl V4Vnni {
    /// The same CPU as a `V4` (a subset of its features).
    fn v4(self) -> V4 {
        V4 {
            sse: self.sse,
            sse2: self.sse2,
            fxsr: self.fxsr,
            sse3: self.sse3,
            ssse3: self.ssse3,
            sse4_1: self.sse4_1,
            sse4_2: self.sse4_2,
            popcnt: self.popcnt,
            avx: self.avx,
            avx2: self.avx2,
            bmi1: self.bmi1,
            bmi2: self.bmi2,
            fma: self.fma,
            lzcnt: self.lzcnt,
            avx512f: self.avx512f,
            avx512bw: self.avx512bw,
            avx512cd: self.avx512cd,
            avx512dq: self.avx512dq,
            avx512vl: self.avx512vl,
        }
    }
}

/// `acc + sum of 4 products u[k] * s[k]` in each i32 lane (`vpdpbusd`): u as u8, s as i8, every
/// product and sum exact (4 x 255 x 128 < 2^31, then a wrapping add).
#[allow(unsafe_code)]
#[inline(always)]
fn dpbusd(
    _vnni: pulp::core_arch::x86::Avx512vnni,
    acc: __m512i,
    u: __m512i,
    s: __m512i,
) -> __m512i {
    // SAFETY: `_mm512_dpbusd_epi32` needs AVX-512 VNNI and AVX-512F, and nothing else (no
    // pointers). An `Avx512vnni` token exists only where pulp detected both on this CPU (and the
    // OS's support for the AVX-512 state, through std); it is taken from a `V4Vnni`, whose
    // `vectorize` compiles this call with those features.
    unsafe { core::arch::x86_64::_mm512_dpbusd_epi32(acc, u, s) }
}

/// The AVX2 kernels: 16 i16 codes a register.
#[derive(Clone, Copy)]
pub(super) struct Avx2(V3);

/// The AVX-512 BW kernels: 32 i16 codes a register.
#[derive(Clone, Copy)]
pub(super) struct Avx512(V4);

/// The AVX-512 VNNI kernels: 64 u8 codes a register.
#[derive(Clone, Copy)]
pub(super) struct Vnni(pub(super) V4Vnni);

// The kernels below are written without closures and `array::from_fn` around intrinsics: a
// closure is a function of its own, compiled without the target features of the function that
// `vectorize` runs, and where LLVM does not inline it every intrinsic in it becomes a call.

impl Avx2 {
    #[inline(always)]
    fn zero(self) -> __m256i {
        self.0.avx._mm256_setzero_si256()
    }
    /// 16 weights, widened to i16.
    #[inline(always)]
    fn load_w(self, w: &[u8; 16]) -> __m256i {
        self.0
            .avx2
            ._mm256_cvtepi8_epi16(cast::<[u8; 16], __m128i>(*w))
    }
    /// 16 i16 codes.
    #[inline(always)]
    fn load_x(self, x: &[u8; 32]) -> __m256i {
        cast(*x)
    }
    #[inline(always)]
    fn mac(self, acc: __m256i, w: __m256i, x: __m256i) -> __m256i {
        let avx2 = self.0.avx2;
        avx2._mm256_add_epi32(acc, avx2._mm256_madd_epi16(w, x))
    }
    #[inline(always)]
    fn sums<const R: usize, const E: usize>(self, acc: &[[__m256i; R]; E]) -> [i32; MAX_SUMS] {
        sums256(self.0, acc)
    }
}

impl IntKernels for Avx2 {
    const U8_CODES: bool = false;

    #[inline(always)]
    fn quantize(self, x: &[f32], quant: &InputQuant<'_>, codes: &mut [u8]) -> bool {
        quantize_i16(self.0, x, quant, codes)
    }

    dots!(16, 32);

    fn zero_sums<const R: usize>(self, _: &Rows<'_, R>, _: &InputQuant<'_>) -> [i32; R] {
        [0; R]
    }
}

impl Avx512 {
    #[inline(always)]
    fn zero(self) -> __m512i {
        self.0.avx512f._mm512_setzero_si512()
    }
    /// 32 weights, widened to i16.
    #[inline(always)]
    fn load_w(self, w: &[u8; 32]) -> __m512i {
        self.0
            .avx512bw
            ._mm512_cvtepi8_epi16(cast::<[u8; 32], __m256i>(*w))
    }
    /// 32 i16 codes.
    #[inline(always)]
    fn load_x(self, x: &[u8; 64]) -> __m512i {
        cast(*x)
    }
    #[inline(always)]
    fn mac(self, acc: __m512i, w: __m512i, x: __m512i) -> __m512i {
        let (f, bw) = (self.0.avx512f, self.0.avx512bw);
        f._mm512_add_epi32(acc, bw._mm512_madd_epi16(w, x))
    }
    #[inline(always)]
    fn sums<const R: usize, const E: usize>(self, acc: &[[__m512i; R]; E]) -> [i32; MAX_SUMS] {
        sums512(self.0, acc)
    }
}

impl IntKernels for Avx512 {
    const U8_CODES: bool = false;

    #[inline(always)]
    fn quantize(self, x: &[f32], quant: &InputQuant<'_>, codes: &mut [u8]) -> bool {
        quantize_i16(*self.0, x, quant, codes)
    }

    dots!(32, 64);

    fn zero_sums<const R: usize>(self, _: &Rows<'_, R>, _: &InputQuant<'_>) -> [i32; R] {
        [0; R]
    }
}

impl Vnni {
    #[inline(always)]
    fn zero(self) -> __m512i {
        self.0.avx512f._mm512_setzero_si512()
    }
    /// 64 weights.
    #[inline(always)]
    fn load_w(self, w: &[u8; 64]) -> __m512i {
        cast(*w)
    }
    /// 64 u8 codes.
    #[inline(always)]
    fn load_x(self, x: &[u8; 64]) -> __m512i {
        cast(*x)
    }
    #[inline(always)]
    fn mac(self, acc: __m512i, w: __m512i, x: __m512i) -> __m512i {
        dpbusd(self.0.avx512vnni, acc, x, w)
    }
    #[inline(always)]
    fn sums<const R: usize, const E: usize>(self, acc: &[[__m512i; R]; E]) -> [i32; MAX_SUMS] {
        sums512(self.0.v4(), acc)
    }
}

impl IntKernels for Vnni {
    const U8_CODES: bool = true;

    #[inline(always)]
    fn quantize(self, x: &[f32], quant: &InputQuant<'_>, codes: &mut [u8]) -> bool {
        quantize_u8(self.0.v4(), x, quant, codes)
    }

    dots!(64, 64);

    /// `sum_j w_rj zero_j`: the zero points as one more vector of u8 codes (per tensor, the one
    /// zero point in every input's place), zero past the inputs like every codes region.
    #[inline(always)]
    fn zero_sums<const R: usize>(self, rows: &Rows<'_, R>, quant: &InputQuant<'_>) -> [i32; R] {
        self.sums_with_zeros::<R, 0>(rows, [], quant)[0]
    }

    #[inline(always)]
    fn dots_and_zero_sums<const R: usize>(
        self,
        rows: &Rows<'_, R>,
        codes: &[u8],
        quant: &InputQuant<'_>,
    ) -> ([i32; R], [i32; R]) {
        let [zero_sums, sums] = self.sums_with_zeros::<R, 1>(rows, [codes], quant);
        (sums, zero_sums)
    }
}

impl Vnni {
    /// The zero sums (first) and, with `E = 1`, one example's sums, in one pass over the
    /// weights (with an example, at most 8 rows: `sums` reduces 16 registers): the zero points are one more vector of u8 codes (per tensor, the one zero point
    /// in every input's place), zero past the inputs like every codes region.
    #[inline(always)]
    fn sums_with_zeros<const R: usize, const E: usize>(
        self,
        rows: &Rows<'_, R>,
        codes: [&[u8]; E],
        quant: &InputQuant<'_>,
    ) -> [[i32; R]; 2] {
        let zeros = quant.zero.bytes;
        let per_column = zeros.len() > 1;
        let one = zeros.first().copied().unwrap_or(0);
        if !per_column && one == 0 {
            let sums = match codes.first() {
                Some(codes) => self.dots::<R, 1>(rows, [codes])[0],
                None => [0; R],
            };
            return [[0; R], sums];
        }
        let count = rows.n.div_ceil(64);
        let zero_chunks = zeros.as_chunks::<64>().0;
        let last = self.load_x(&quant.tail_zeros);
        let full = self.0.avx512f._mm512_set1_epi8(one as i8);
        // acc[0]: the zero sums; acc[1]: the example's.
        let mut acc = [[self.zero(); R]; 2];
        if in_place::<R, E>(rows, &codes, count * 64, count * 64) {
            for i in 0..count {
                let u = match zero_chunks.get(i) {
                    _ if i + 1 == count => last,
                    Some(z) if per_column => self.load_x(z),
                    _ => full,
                };
                let x = match codes.first() {
                    Some(codes) => self.load_x(&codes.as_chunks::<64>().0[i]),
                    None => self.zero(),
                };
                for r in 0..R {
                    let w = self.load_w(&rows.starts[r].as_chunks::<64>().0[i]);
                    acc[0][r] = self.mac(acc[0][r], w, u);
                    if E == 1 {
                        acc[1][r] = self.mac(acc[1][r], w, x);
                    }
                }
            }
        } else {
            for r in 0..R {
                for i in 0..count {
                    let u = match zero_chunks.get(i) {
                        _ if i + 1 == count => last,
                        Some(z) if per_column => self.load_x(z),
                        _ => full,
                    };
                    let w = self.load_w(&padded_chunk::<64>(rows.row(r), i));
                    acc[0][r] = self.mac(acc[0][r], w, u);
                    if let Some(codes) = codes.first() {
                        let x = codes.as_chunks::<64>().0.get(i);
                        acc[1][r] = self.mac(acc[1][r], w, self.load_x(x.unwrap_or(&[0; 64])));
                    }
                }
            }
        }
        if E == 0 {
            [unflatten::<R, 1>(self.sums(&[acc[0]]))[0], [0; R]]
        } else {
            unflatten::<R, 2>(self.sums(&acc))
        }
    }
}

/// The lane sums of `R x E` AVX2 accumulators, example-major (exact in wrapping i32, so in any
/// order): 8 at a time by a transposing tree ([`tree8`]), the rest one by one.
#[inline(always)]
fn sums256<const R: usize, const E: usize>(simd: V3, acc: &[[__m256i; R]; E]) -> [i32; MAX_SUMS] {
    let mut flat = [simd.avx._mm256_setzero_si256(); MAX_SUMS];
    for e in 0..E {
        for r in 0..R {
            flat[(e * R + r) % MAX_SUMS] = acc[e][r];
        }
    }
    let mut sums = [0i32; MAX_SUMS];
    let count = (R * E).min(MAX_SUMS);
    // Whole groups of 8 at constant indices (a loop over them would keep the accumulators in
    // memory).
    let trees = count / 8;
    if trees >= 1 {
        let eight = tree8(
            simd,
            [
                flat[0], flat[1], flat[2], flat[3], flat[4], flat[5], flat[6], flat[7],
            ],
        );
        sums[..8].copy_from_slice(&eight);
    }
    if trees >= 2 {
        let eight = tree8(
            simd,
            [
                flat[8], flat[9], flat[10], flat[11], flat[12], flat[13], flat[14], flat[15],
            ],
        );
        sums[8..].copy_from_slice(&eight);
    }
    for i in trees * 8..count {
        let lanes: [i32; 8] = cast(flat[i]);
        let mut sum = 0i32;
        for v in lanes {
            sum = sum.wrapping_add(v);
        }
        sums[i] = sum;
    }
    sums
}

/// The lane sums of 8 AVX2 registers by a transposing tree: pairs of lanes, then of pairs, then
/// the two 128-bit halves (21 instructions).
#[inline(always)]
fn tree8(simd: V3, flat: [__m256i; 8]) -> [i32; 8] {
    let avx2 = simd.avx2;
    let mut u = [flat[0]; 4];
    for i in 0..4 {
        let (x, y) = (flat[2 * i], flat[2 * i + 1]);
        u[i] = avx2._mm256_add_epi32(
            avx2._mm256_unpacklo_epi32(x, y),
            avx2._mm256_unpackhi_epi32(x, y),
        );
    }
    let mut w = [flat[0]; 2];
    for i in 0..2 {
        let (x, y) = (u[2 * i], u[2 * i + 1]);
        w[i] = avx2._mm256_add_epi32(
            avx2._mm256_unpacklo_epi64(x, y),
            avx2._mm256_unpackhi_epi64(x, y),
        );
    }
    let halves = avx2._mm256_add_epi32(
        avx2._mm256_permute2x128_si256::<0x20>(w[0], w[1]),
        avx2._mm256_permute2x128_si256::<0x31>(w[0], w[1]),
    );
    cast(halves)
}

/// The lane sums of `R x E` AVX-512 accumulators, example-major: 16 at a time by a transposing
/// tree (pairs of lanes, pairs of pairs, then the 128-bit quarters: 45 instructions for 16
/// sums), fewer one by one (the two 256-bit halves added, then the lanes).
#[inline(always)]
fn sums512<const R: usize, const E: usize>(simd: V4, acc: &[[__m512i; R]; E]) -> [i32; MAX_SUMS] {
    let f = simd.avx512f;
    let mut flat = [f._mm512_setzero_si512(); MAX_SUMS];
    for e in 0..E {
        for r in 0..R {
            flat[(e * R + r) % MAX_SUMS] = acc[e][r];
        }
    }
    if R * E == MAX_SUMS {
        let mut u = [flat[0]; 8];
        for i in 0..8 {
            let (x, y) = (flat[2 * i], flat[2 * i + 1]);
            u[i] = f._mm512_add_epi32(f._mm512_unpacklo_epi32(x, y), f._mm512_unpackhi_epi32(x, y));
        }
        let mut w = [flat[0]; 4];
        for i in 0..4 {
            let (x, y) = (u[2 * i], u[2 * i + 1]);
            w[i] = f._mm512_add_epi32(f._mm512_unpacklo_epi64(x, y), f._mm512_unpackhi_epi64(x, y));
        }
        // 128-bit quarters: [x.0 + x.1, x.2 + x.3, y.0 + y.1, y.2 + y.3].
        let mut q = [flat[0]; 2];
        for i in 0..2 {
            let (x, y) = (w[2 * i], w[2 * i + 1]);
            q[i] = f._mm512_add_epi32(
                f._mm512_shuffle_i32x4::<0b10_00_10_00>(x, y),
                f._mm512_shuffle_i32x4::<0b11_01_11_01>(x, y),
            );
        }
        let all = f._mm512_add_epi32(
            f._mm512_shuffle_i32x4::<0b10_00_10_00>(q[0], q[1]),
            f._mm512_shuffle_i32x4::<0b11_01_11_01>(q[0], q[1]),
        );
        return cast(all);
    }
    let mut sums = [0i32; MAX_SUMS];
    for i in 0..(R * E).min(MAX_SUMS) {
        let half = simd.avx2._mm256_add_epi32(
            f._mm512_castsi512_si256(flat[i]),
            f._mm512_extracti64x4_epi64::<1>(flat[i]),
        );
        let lanes: [i32; 8] = cast(half);
        let mut sum = 0i32;
        for v in lanes {
            sum = sum.wrapping_add(v);
        }
        sums[i] = sum;
    }
    sums
}

/// The i16 codes `q - zero` of `x` into `codes`, 16 at a time in AVX registers (the tail by
/// `code`); true if some `x * input_inv_scale` is NaN. Each step is the rule's f32 operation,
/// so the codes are those of the plain loop.
#[inline(always)]
fn quantize_i16(simd: V3, x: &[f32], quant: &InputQuant<'_>, codes: &mut [u8]) -> bool {
    let (avx, avx2) = (simd.avx, simd.avx2);
    let (inv0, zero0) = quant.at(0);
    let per_column_inv = quant.inv_scale.len() > 1;
    let per_column_zero = quant.zero.len() > 1;
    let inv_chunks = quant.inv_scale.bytes.as_chunks::<32>().0;
    let zero_chunks = quant.zero.bytes.as_chunks::<16>().0;
    let (x_chunks, _) = x.as_chunks::<16>();
    let splat = |v: f32| avx._mm256_set1_ps(v);
    let (low, high, round, lo_q, hi_q) = (
        splat(-LIMIT),
        splat(LIMIT),
        splat(ROUND),
        splat(0.0),
        splat(255.0),
    );
    let mut nan = avx._mm256_setzero_ps();
    let mut done = 0;
    for (c, (xs, out)) in x_chunks
        .iter()
        .zip(codes.as_chunks_mut::<32>().0)
        .enumerate()
    {
        let halves: [[f32; 8]; 2] = cast(*xs);
        let zeros: [__m256; 2] = match zero_chunks.get(c) {
            Some(z) if per_column_zero => {
                let [lo, hi]: [[u8; 8]; 2] = cast(*z);
                let widen = |b: [u8; 8]| {
                    let b: [u8; 16] = cast([b, [0; 8]]);
                    avx._mm256_cvtepi32_ps(avx2._mm256_cvtepu8_epi32(cast::<[u8; 16], __m128i>(b)))
                };
                [widen(lo), widen(hi)]
            }
            _ => [splat(f32::from(zero0)); 2],
        };
        let mut ints = [avx._mm256_setzero_si256(); 2];
        for h in 0..2 {
            let inv: __m256 = match inv_chunks.get(2 * c + h) {
                Some(b) if per_column_inv => cast(*b),
                _ => splat(inv0),
            };
            let v = avx._mm256_mul_ps(cast(halves[h]), inv);
            nan = avx._mm256_or_ps(nan, avx._mm256_cmp_ps::<3>(v, v)); // unordered: NaN
            let v = avx._mm256_min_ps(avx._mm256_max_ps(v, low), high);
            let r = avx._mm256_sub_ps(avx._mm256_add_ps(v, round), round);
            let q = avx._mm256_add_ps(r, zeros[h]);
            let q = avx._mm256_min_ps(avx._mm256_max_ps(q, lo_q), hi_q);
            // q - zero is an exact integer in -255..=255: truncation converts it exactly.
            ints[h] = avx._mm256_cvttps_epi32(avx._mm256_sub_ps(q, zeros[h]));
        }
        // packs works per 128-bit half: [a0-3 b0-3 | a4-7 b4-7]; the permute puts a before b.
        let packed = avx2._mm256_packs_epi32(ints[0], ints[1]);
        *out = cast(avx2._mm256_permute4x64_epi64::<0b11_01_10_00>(packed));
        done = 16 * (c + 1);
    }
    let mut any_nan = avx._mm256_movemask_ps(nan) != 0;
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

/// The u8 codes `q` of `x` into `codes`, 16 at a time in AVX-512 registers (the tail by
/// `code`); true if some `x * input_inv_scale` is NaN. Each step is the rule's f32 operation,
/// so the codes are those of the plain loop plus the zero point.
#[inline(always)]
fn quantize_u8(simd: V4, x: &[f32], quant: &InputQuant<'_>, codes: &mut [u8]) -> bool {
    let f = simd.avx512f;
    let (inv0, zero0) = quant.at(0);
    let per_column_inv = quant.inv_scale.len() > 1;
    let per_column_zero = quant.zero.len() > 1;
    let inv_chunks = quant.inv_scale.bytes.as_chunks::<64>().0;
    let zero_chunks = quant.zero.bytes.as_chunks::<16>().0;
    let (x_chunks, _) = x.as_chunks::<16>();
    let splat = |v: f32| f._mm512_set1_ps(v);
    let (low, high, round, lo_q, hi_q) = (
        splat(-LIMIT),
        splat(LIMIT),
        splat(ROUND),
        splat(0.0),
        splat(255.0),
    );
    let mut nan = 0u16;
    let mut done = 0;
    for (c, (xs, out)) in x_chunks
        .iter()
        .zip(codes.as_chunks_mut::<16>().0)
        .enumerate()
    {
        let inv: __m512 = match inv_chunks.get(c) {
            Some(b) if per_column_inv => cast(*b),
            _ => splat(inv0),
        };
        let zero: __m512 = match zero_chunks.get(c) {
            Some(z) if per_column_zero => {
                f._mm512_cvtepi32_ps(f._mm512_cvtepu8_epi32(cast::<[u8; 16], __m128i>(*z)))
            }
            _ => splat(f32::from(zero0)),
        };
        let v = f._mm512_mul_ps(cast(*xs), inv);
        nan |= f._mm512_cmp_ps_mask::<3>(v, v); // unordered: NaN
        let v = f._mm512_min_ps(f._mm512_max_ps(v, low), high);
        let r = f._mm512_sub_ps(f._mm512_add_ps(v, round), round);
        let q = f._mm512_min_ps(f._mm512_max_ps(f._mm512_add_ps(r, zero), lo_q), hi_q);
        // q is an exact integer in 0..=255: truncation converts it exactly.
        *out = cast(f._mm512_cvtepi32_epi8(f._mm512_cvttps_epi32(q)));
        done = 16 * (c + 1);
    }
    let mut any_nan = nan != 0;
    for (j, (&x, c)) in x.iter().zip(codes.iter_mut()).enumerate().skip(done) {
        let (inv, zero) = quant.at(j);
        let v = x * inv;
        any_nan |= v.is_nan();
        *c = code(v, f32::from(zero)) as u8;
    }
    any_nan
}

/// One int8 layer for every example, run by `vectorize` inside a function compiled with the
/// CPU's AVX features.
struct Layer<'l, 't, K, const R: usize, const E: usize, const R1: usize> {
    kernels: K,
    layer: &'l LayerTensors<'t>,
    int8: &'l Int8Tensors<'t>,
    scratch: &'l mut [f32],
    per: usize,
    io: &'l Io,
    relu: bool,
}

impl<K: IntKernels, const R: usize, const E: usize, const R1: usize> pulp::NullaryFnOnce
    for Layer<'_, '_, K, R, E, R1>
{
    type Output = ();
    #[inline(always)]
    fn call(self) {
        linear_int8::<K, R, E, R1>(
            self.kernels,
            self.layer,
            self.int8,
            self.scratch,
            self.per,
            self.io,
            self.relu,
        );
    }
}

/// The int8 kernels' levels.
#[derive(Clone, Copy, Debug)]
pub(super) enum Level {
    /// AMX-INT8 (Linux): groups of 64 examples x 16 rows in tiles, the rest as `Vnni`; only
    /// for a scratch of 64 examples or more.
    #[cfg(target_os = "linux")]
    Amx,
    /// AVX-512 VNNI: blocks of 4 rows x 4 examples (8 rows for one example, with the zero
    /// sums beside them), 64 u8 codes a register.
    Vnni,
    /// AVX-512 BW: blocks of 4 rows x 4 examples (16 rows for one example), 32 codes a
    /// register.
    Avx512,
    /// AVX2: blocks of 4 rows x 2 examples (4 rows for one example: with 8, LLVM kept
    /// accumulators on the stack), 16 codes a register.
    Avx2,
}

/// An int8 layer at the best level the CPU has; false when it has neither.
pub(super) fn linear(
    layer: &LayerTensors<'_>,
    int8: &Int8Tensors<'_>,
    scratch: &mut [f32],
    per: usize,
    io: &Io,
    relu: bool,
) -> bool {
    #[cfg(target_os = "linux")]
    if linear_at(Level::Amx, layer, int8, scratch, per, io, relu) {
        return true;
    }
    linear_at(Level::Vnni, layer, int8, scratch, per, io, relu)
        || linear_at(Level::Avx512, layer, int8, scratch, per, io, relu)
        || linear_at(Level::Avx2, layer, int8, scratch, per, io, relu)
}

/// An int8 layer at `level`; false when the CPU does not have it.
pub(super) fn linear_at(
    level: Level,
    layer: &LayerTensors<'_>,
    int8: &Int8Tensors<'_>,
    scratch: &mut [f32],
    per: usize,
    io: &Io,
    relu: bool,
) -> bool {
    match level {
        #[cfg(target_os = "linux")]
        Level::Amx => V4Vnni::try_new()
            .filter(|_| scratch.len() >= super::amx_int8::GROUP * per && super::amx_int8::enabled())
            .map(|simd| {
                super::amx_int8::configure();
                simd.vectorize(
                    Layer::<super::amx_int8::Amx, 16, { super::amx_int8::GROUP }, 8> {
                        kernels: super::amx_int8::Amx(simd),
                        layer,
                        int8,
                        scratch,
                        per,
                        io,
                        relu,
                    },
                );
                super::amx_int8::release();
            }),
        Level::Vnni => V4Vnni::try_new().map(|simd| {
            simd.vectorize(Layer::<Vnni, 4, 4, 8> {
                kernels: Vnni(simd),
                layer,
                int8,
                scratch,
                per,
                io,
                relu,
            })
        }),
        Level::Avx512 => V4::try_new().map(|simd| {
            simd.vectorize(Layer::<Avx512, 4, 4, 16> {
                kernels: Avx512(simd),
                layer,
                int8,
                scratch,
                per,
                io,
                relu,
            })
        }),
        Level::Avx2 => V3::try_new().map(|simd| {
            simd.vectorize(Layer::<Avx2, 4, 2, 4> {
                kernels: Avx2(simd),
                layer,
                int8,
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

    use super::super::int8::random::RandomLayer;
    use super::super::int8::{linear_int8, Plain};
    use super::{linear_at, Level};

    #[test]
    fn avx2_avx512_and_amx_int8_layers_give_the_bits_of_the_plain_loops() {
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
            (64, 17, 3, true),
            (367, 20, 7, false),
            (512, 33, 9, true),
            // Fewer than 64 examples (VNNI), and 64 or more: groups of 64 in AMX tiles, with
            // the examples and rows left over.
            (13, 64, 37, true),
            (100, 16, 16, false),
            (367, 48, 64, false),
            (512, 33, 70, true),
            // Single examples and leftovers over many rows, rows past the tensor.
            (13, 128, 1, false),
            (100, 70, 1, true),
            (512, 130, 65, false),
            (200, 64, 3, true),
        ] {
            let random = RandomLayer::new(n_in, n_out, examples, per_column, &mut next);
            let (layer, int8) = random.tensors();
            let (xs, per, io) = (&random.xs, random.per, &random.io);
            let bits = |s: &[f32], e: usize| -> Vec<u32> {
                s[e * per + n_in..e * per + n_in + n_out]
                    .iter()
                    .map(|v| v.to_bits())
                    .collect()
            };
            let mut plain = xs.clone();
            linear_int8::<Plain, 1, 1, 1>(Plain, &layer, &int8, &mut plain, per, io, true);
            let levels = [
                Level::Avx2,
                Level::Avx512,
                Level::Vnni,
                #[cfg(target_os = "linux")]
                Level::Amx,
            ];
            for level in levels {
                let mut scratch = xs.clone();
                if !linear_at(level, &layer, &int8, &mut scratch, per, io, true) {
                    std::eprintln!("this CPU has no {level:?}: nothing to compare");
                    continue;
                }
                for e in 0..examples {
                    assert_eq!(
                        bits(&plain, e),
                        bits(&scratch, e),
                        "{level:?} {n_in} -> {n_out}, example {e}"
                    );
                }
            }
        }
    }
}
