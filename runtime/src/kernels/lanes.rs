//! The 8 partial sums of a dot product in the instruction set the runtime was built for, and
//! their reduction in the one fixed order (`reduce`). On the host they are a `wide::f32x8` (SIMD
//! registers); on 32-bit Arm a plain array updated in a loop, because Cortex-M has no SIMD and
//! the loop takes less flash. The same IEEE operations run in the same order either way.

use super::LANES;

#[cfg(not(target_arch = "arm"))]
pub(super) use simd::{add_lanes, add_products, lanes, reduce8, to_array, Lanes, ZERO};

#[cfg(target_arch = "arm")]
pub(super) use array::{add_lanes, add_products, lanes, reduce8, to_array, Lanes, ZERO};

/// The 8 partial sums of a dot product on the host: SIMD registers.
#[cfg(not(target_arch = "arm"))]
mod simd {
    use super::LANES;

    /// The 8 partial sums.
    pub(in crate::kernels) type Lanes = wide::f32x8;

    /// All zero.
    pub(in crate::kernels) const ZERO: Lanes = wide::f32x8::ZERO;

    /// `acc[k] += load(w[k]) * x[k]` for every lane: one IEEE multiply, then one add.
    #[inline(always)]
    pub(in crate::kernels) fn add_products<T>(
        acc: &mut Lanes,
        w: &[T; LANES],
        x: &[f32; LANES],
        load: impl Fn(&T) -> f32,
    ) {
        add_lanes(acc, lanes(w, load), x);
    }

    /// 8 weights as lanes.
    #[inline(always)]
    pub(in crate::kernels) fn lanes<T>(w: &[T; LANES], load: impl Fn(&T) -> f32) -> Lanes {
        Lanes::from(w.each_ref().map(load))
    }

    /// `acc[k] += w[k] * x[k]` for every lane: one IEEE multiply, then one add.
    #[inline(always)]
    pub(in crate::kernels) fn add_lanes(acc: &mut Lanes, w: Lanes, x: &[f32; LANES]) {
        *acc += w * Lanes::from(*x);
    }

    /// The lanes as an array.
    pub(in crate::kernels) fn to_array(acc: Lanes) -> [f32; LANES] {
        acc.to_array()
    }

    /// Reduces 8 sums at once, each in the order of `reduce`: transposed, lane `j` of vector
    /// `k` is lane `k` of sum `j`, so every step of the halving adds whole vectors.
    pub(in crate::kernels) fn reduce8(acc: [Lanes; 8], tails: [f32; 8]) -> [f32; 8] {
        let t = Lanes::transpose(acc);
        let four = [t[0] + t[4], t[1] + t[5], t[2] + t[6], t[3] + t[7]];
        let two = [four[0] + four[2], four[1] + four[3]];
        ((two[0] + two[1]) + Lanes::from(tails)).to_array()
    }
}

/// The 8 partial sums of a dot product on 32-bit Arm (Cortex-M, no SIMD): a plain array updated
/// in a loop, which takes less flash than `wide`'s 8 scalar lanes.
#[cfg(target_arch = "arm")]
mod array {
    use super::LANES;

    /// The 8 partial sums.
    pub(in crate::kernels) type Lanes = [f32; LANES];

    /// All zero.
    pub(in crate::kernels) const ZERO: Lanes = [0.0; LANES];

    /// `acc[k] += load(w[k]) * x[k]` for every lane: one IEEE multiply, then one add. Each
    /// weight is loaded inside the loop: written as the host's `add_lanes(acc, lanes(w, load), x)`
    /// it measured more runtime code on the Cortex-M4.
    #[inline(always)]
    pub(in crate::kernels) fn add_products<T>(
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
    pub(in crate::kernels) fn lanes<T>(w: &[T; LANES], load: impl Fn(&T) -> f32) -> Lanes {
        w.each_ref().map(load)
    }

    /// `acc[k] += w[k] * x[k]` for every lane: one IEEE multiply, then one add.
    #[inline(always)]
    pub(in crate::kernels) fn add_lanes(acc: &mut Lanes, w: Lanes, x: &[f32; LANES]) {
        for k in 0..LANES {
            acc[k] += w[k] * x[k];
        }
    }

    /// The lanes as an array.
    pub(in crate::kernels) fn to_array(acc: Lanes) -> [f32; LANES] {
        acc
    }

    /// Reduces 8 sums (used by the grouped kernel, which 32-bit Arm never runs).
    pub(in crate::kernels) fn reduce8(acc: [Lanes; 8], tails: [f32; 8]) -> [f32; 8] {
        core::array::from_fn(|j| super::reduce(acc[j], tails[j]))
    }
}

/// Adds the partial sums by halving (lane i plus lane i + half, until one is left), then the tail.
pub(super) fn reduce(acc: Lanes, tail: f32) -> f32 {
    reduce_array(to_array(acc), tail)
}

/// `reduce` on the partial sums as an array.
#[inline(always)]
pub(super) fn reduce_array(a: [f32; LANES], tail: f32) -> f32 {
    let four = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    let two = [four[0] + four[2], four[1] + four[3]];
    (two[0] + two[1]) + tail
}
