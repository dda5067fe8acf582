//! The layers in AVX registers on an x86-64 CPU that has them, picked at run time
//! (`pulp` detects the CPU and compiles the kernels inside a function with the AVX2 or AVX-512
//! target features; no `unsafe` here). The default x86-64 build otherwise has only SSE2.

use core::arch::x86_64::__m256;
use core::ops::Range;

use mlet_formats::LayerTensors;
use pulp::bytemuck::cast;
use pulp::x86::{V3, V4};

use super::lanes::reduce_array;
use super::{linear_with, Sums, LANES};

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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    ) -> Vec<(Option<Level>, Vec<u32>)> {
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
        out.push((None, bits(scratch)));
        for level in [Level::Avx2, Level::Avx512] {
            let mut scratch = fresh();
            if linear_at(level, layer, &mut scratch, per, &io, true) {
                out.push((Some(level), bits(scratch)));
            }
        }
        out
    }

    /// Says which levels were compared with the built kernels; under CI (`CI=true`), a level
    /// the CPU has (by std's own detection) but that was not compared fails the test.
    fn report_levels(compared: &[Level]) {
        std::eprintln!("AVX levels compared with the built kernels: {compared:?}");
        if std::env::var("CI").as_deref() != Ok("true") {
            return;
        }
        let has = [
            (Level::Avx2, std::is_x86_feature_detected!("avx2")),
            (Level::Avx512, std::is_x86_feature_detected!("avx512f")),
        ];
        for (level, present) in has {
            assert!(
                !present || compared.contains(&level),
                "this CPU has {level:?} but its kernels were not compared"
            );
        }
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
        let mut compared = Vec::new();
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
                    int8: None,
                };
                let all = outputs(&layer, &xs, n_in, n_out);
                compared = all[1..].iter().filter_map(|(level, _)| *level).collect();
                for (level, other) in &all[1..] {
                    assert_eq!(
                        &all[0].1, other,
                        "{level:?}, {dtype:?} {n_in} -> {n_out}, {examples} examples"
                    );
                }
            }
        }
        report_levels(&compared);
    }
}
