//! int8 layers in AMX tiles (Intel AMX-INT8: Sapphire Rapids and later Xeons), for groups of 64
//! examples; picked at run time on Linux, where a process must ask the kernel for the tile
//! registers first.
//!
//! One `tdpbusd` adds the exact u8 x i8 products of a 16 x 64 tile of codes (16 examples' u8
//! codes `q`, read in place) and a 64 x 16 tile of weights (16 rows, repacked four inputs per
//! i32 lane) into a 16 x 16 tile of i32 sums: 16,384 products an instruction, where `vpdpbusd`
//! does 64. The sums are the same integers as every other level's, so the bits are too.
//! Four tiles of 16 examples share each tile of weights. Examples left over after whole groups
//! of 64 run one at a time in the AVX-512 VNNI kernels, which also give the zero-point sums.
//!
//! The tile instructions are not among Rust's stable intrinsics, so they are written as inline
//! assembly: the runtime's `unsafe` beyond `vpdpbusd`, each block with what makes it sound.

// Index loops over small arrays of registers, written out instead of iterator adaptors, whose
// closures would not always be compiled with the target features.
#![allow(clippy::needless_range_loop)]

extern crate std;

use core::arch::asm;
use core::arch::x86_64::__m512i;
use std::sync::OnceLock;

use pulp::bytemuck::cast;

use super::avx_int8::{V4Vnni, Vnni};
use super::int8::{InputQuant, IntKernels, Rows};
use super::simd_int8::padded_chunk;

/// Examples (tile rows) and weight rows (tile columns) of one tile product.
const TILE: usize = 16;

/// Examples that share each tile of weights: four tiles of sums, whose products do not wait on
/// each other.
pub(super) const GROUP: usize = 4 * TILE;

/// The AMX kernels: groups of 64 examples x 16 rows in tiles, the rest in VNNI registers.
#[derive(Clone, Copy)]
pub(super) struct Amx(pub(super) V4Vnni);

/// Whether this CPU has AMX-INT8 and the OS lets this process use the tile registers; the OS
/// is asked once.
pub(super) fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| {
        use core::arch::x86_64::{__cpuid, __cpuid_count};
        if __cpuid(0).eax < 7 {
            return false;
        }
        // CPUID.(7, 0).EDX: bit 24 AMX-TILE, bit 25 AMX-INT8.
        let edx = __cpuid_count(7, 0).edx;
        edx >> 24 & 1 == 1 && edx >> 25 & 1 == 1 && request_tile_data()
    })
}

/// Asks Linux for the tile data state (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`);
/// true when granted. Without it the first tile instruction kills the process.
#[allow(unsafe_code)]
fn request_tile_data() -> bool {
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    let result: i64;
    // SAFETY: a system call that takes two integers and touches no memory of ours; `syscall`
    // clobbers rcx and r11, declared here.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL => result,
            in("rdi") ARCH_REQ_XCOMP_PERM,
            in("rsi") XFEATURE_XTILEDATA,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    result == 0
}

/// The tile shapes: palette 1; tmm0..tmm3 16 x 16 i32 sums, tmm4, tmm6 and tmm7 16 x 64 u8 codes,
/// tmm5 16 x 64 i8 weights (16 groups of four inputs x 16 rows): 16 rows of 64 bytes each.
const CONFIG: [u8; 64] = {
    let mut c = [0u8; 64];
    c[0] = 1;
    let mut t = 0;
    while t < 8 {
        c[16 + 2 * t] = 64; // bytes per row (u16, little-endian)
        c[48 + t] = TILE as u8; // rows
        t += 1;
    }
    c
};

/// Loads the tile shapes (`CONFIG`); called before each layer.
#[allow(unsafe_code)]
pub(super) fn configure() {
    // SAFETY: `ldtilecfg` reads the 64 bytes of CONFIG; it runs only where `enabled` is true.
    unsafe { asm!("ldtilecfg [{0}]", in(reg) CONFIG.as_ptr(), options(nostack, readonly)) }
}

/// Hands the tile registers back to their initial state, so that the OS need not save them;
/// called after each layer.
#[allow(unsafe_code)]
pub(super) fn release() {
    // SAFETY: `tilerelease` touches no memory; it runs only where `enabled` is true.
    unsafe { asm!("tilerelease", options(nostack, nomem)) }
}

impl Amx {
    /// The same CPU's VNNI kernels.
    #[inline(always)]
    fn vnni(self) -> Vnni {
        Vnni(self.0)
    }

    /// The weights of chunk `i` (inputs `64 i..64 i + 64`) of 16 rows as a tile: row g holds, for
    /// each weight row r, its four weights `64 i + 4 g..64 i + 4 g + 4` (a 16 x 16 transpose of
    /// i32 lanes). A row's chunk past its end reads on into the next row, as every level does
    /// (those weights meet zero codes); the tensor's last rows read a zero-padded copy.
    #[inline(always)]
    fn weight_tile(self, rows: &Rows<'_, TILE>, i: usize) -> [u8; TILE * 64] {
        let f = self.0.avx512f;
        let mut a = [f._mm512_setzero_si512(); TILE];
        for r in 0..TILE {
            let chunk = rows.starts[r].get(64 * i..64 * i + 64);
            a[r] = match chunk.and_then(|c| <&[u8; 64]>::try_from(c).ok()) {
                Some(chunk) => cast(*chunk),
                None => cast(padded_chunk::<64>(rows.row(r), i)),
            };
        }
        // Pairs of rows, then quads, interleaved within 128-bit lanes; then the lanes gathered.
        let mut t = [f._mm512_setzero_si512(); TILE];
        for k in 0..8 {
            t[2 * k] = f._mm512_unpacklo_epi32(a[2 * k], a[2 * k + 1]);
            t[2 * k + 1] = f._mm512_unpackhi_epi32(a[2 * k], a[2 * k + 1]);
        }
        for k in 0..4 {
            a[4 * k] = f._mm512_unpacklo_epi64(t[4 * k], t[4 * k + 2]);
            a[4 * k + 1] = f._mm512_unpackhi_epi64(t[4 * k], t[4 * k + 2]);
            a[4 * k + 2] = f._mm512_unpacklo_epi64(t[4 * k + 1], t[4 * k + 3]);
            a[4 * k + 3] = f._mm512_unpackhi_epi64(t[4 * k + 1], t[4 * k + 3]);
        }
        // a[4 q + k], lane l: rows 4 q..4 q + 4 of group 4 l + k.
        let mut out = [f._mm512_setzero_si512(); TILE];
        for k in 0..4 {
            let p0 = f._mm512_shuffle_i32x4::<0b01_00_01_00>(a[k], a[4 + k]);
            let p1 = f._mm512_shuffle_i32x4::<0b11_10_11_10>(a[k], a[4 + k]);
            let q0 = f._mm512_shuffle_i32x4::<0b01_00_01_00>(a[8 + k], a[12 + k]);
            let q1 = f._mm512_shuffle_i32x4::<0b11_10_11_10>(a[8 + k], a[12 + k]);
            out[k] = f._mm512_shuffle_i32x4::<0b10_00_10_00>(p0, q0);
            out[4 + k] = f._mm512_shuffle_i32x4::<0b11_01_11_01>(p0, q0);
            out[8 + k] = f._mm512_shuffle_i32x4::<0b10_00_10_00>(p1, q1);
            out[12 + k] = f._mm512_shuffle_i32x4::<0b11_01_11_01>(p1, q1);
        }
        cast::<[__m512i; TILE], [u8; TILE * 64]>(out)
    }

    /// `sums[e][r] = row_r . codes_e` for 16 rows and 64 examples, four tiles of 16 examples
    /// sharing each tile of weights (the tiles as [`configure`] shapes them).
    #[allow(unsafe_code)]
    #[inline(always)]
    fn tile_dots(self, rows: &Rows<'_, TILE>, codes: [&[u8]; GROUP]) -> [[i32; TILE]; GROUP] {
        let count = rows.n.div_ceil(64);
        let mut sums = [[0i32; TILE]; GROUP];
        // Each tile of codes is read in place: 16 examples' codes, evenly spaced.
        let mut a = [(codes[0].as_ptr(), 0); 4];
        for (g, a) in a.iter_mut().enumerate() {
            let group: &[&[u8]; TILE] = codes[TILE * g..TILE * (g + 1)]
                .try_into()
                .unwrap_or(&[&[]; TILE]);
            match spacing(group, count * 64) {
                Some(stride) => *a = (group[0].as_ptr(), stride),
                None => {
                    // Not the scorer's scratch: one example at a time in VNNI registers.
                    for (sums, codes) in sums.iter_mut().zip(codes) {
                        *sums = self.vnni().dots::<TILE, 1>(rows, [codes])[0];
                    }
                    return sums;
                }
            }
        }
        // SAFETY: `tilezero` touches no memory.
        unsafe {
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                options(nostack, nomem)
            )
        }
        // Weight tiles are packed a few chunks ahead of the tile loads that read them: a tile
        // load waits for the stores it reads to reach the cache.
        let mut weights = [[0u8; TILE * 64]; AHEAD];
        for first in (0..count).step_by(AHEAD) {
            let chunks = first..count.min(first + AHEAD);
            for (i, tile) in chunks.clone().zip(weights.iter_mut()) {
                *tile = self.weight_tile(rows, i);
            }
            for (i, tile) in chunks.zip(weights.iter()) {
                // SAFETY: tmm5 reads the 1,024 bytes of `tile`. tmm4, tmm6, tmm7 and tmm4 again
                // (a tile load waits for the products that read its register) read group g's
                // 16 rows of 64 bytes, row e at `a[g].0 + 64 i + e * a[g].1`: that is
                // `codes[16 g + e][64 i..64 i + 64]`, as `spacing` checked that every codes
                // slice of the group holds `count * 64` bytes and starts at the group's first
                // plus e strides. The tile products touch no memory.
                unsafe {
                    asm!(
                        "tileloadd tmm5, [{b} + {step}*1]",
                        "tileloadd tmm4, [{a0} + {s0}*1]",
                        "tdpbusd tmm0, tmm4, tmm5",
                        "tileloadd tmm6, [{a1} + {s1}*1]",
                        "tdpbusd tmm1, tmm6, tmm5",
                        "tileloadd tmm7, [{a2} + {s2}*1]",
                        "tdpbusd tmm2, tmm7, tmm5",
                        "tileloadd tmm4, [{a3} + {s3}*1]",
                        "tdpbusd tmm3, tmm4, tmm5",
                        b = in(reg) tile.as_ptr(),
                        step = in(reg) 64usize,
                        a0 = in(reg) a[0].0.wrapping_add(64 * i),
                        s0 = in(reg) a[0].1,
                        a1 = in(reg) a[1].0.wrapping_add(64 * i),
                        s1 = in(reg) a[1].1,
                        a2 = in(reg) a[2].0.wrapping_add(64 * i),
                        s2 = in(reg) a[2].1,
                        a3 = in(reg) a[3].0.wrapping_add(64 * i),
                        s3 = in(reg) a[3].1,
                        options(nostack, readonly),
                    );
                }
            }
        }
        // SAFETY: each tile writes 16 rows of 64 bytes, 64 bytes apart, to its 1,024 bytes of
        // `sums` (examples 16 g..16 g + 16).
        unsafe {
            asm!(
                "tilestored [{c} + {step}*1], tmm0",
                "tilestored [{c} + {step}*1 + 1024], tmm1",
                "tilestored [{c} + {step}*1 + 2048], tmm2",
                "tilestored [{c} + {step}*1 + 3072], tmm3",
                c = in(reg) sums.as_mut_ptr(),
                step = in(reg) 64usize,
                options(nostack),
            );
        }
        sums
    }
}

/// Chunks of weights packed before their tiles are loaded.
const AHEAD: usize = 4;

/// The distance in bytes between consecutive examples' codes when they are evenly spaced and
/// each holds `len` bytes (the scorer's scratch always does: one example per `per` values).
fn spacing(codes: &[&[u8]; TILE], len: usize) -> Option<usize> {
    let at = |e: usize| codes[e].as_ptr() as usize;
    let stride = at(1).checked_sub(at(0))?;
    (0..TILE)
        .all(|e| codes[e].len() >= len && at(e) == at(0) + e * stride)
        .then_some(stride)
}

impl IntKernels for Amx {
    const U8_CODES: bool = true;

    #[inline(always)]
    fn quantize(self, x: &[f32], quant: &InputQuant<'_>, codes: &mut [u8]) -> bool {
        self.vnni().quantize(x, quant, codes)
    }

    #[inline(always)]
    fn dots<const R: usize, const E: usize>(
        self,
        rows: &Rows<'_, R>,
        codes: [&[u8]; E],
    ) -> [[i32; R]; E] {
        if E == GROUP && R < TILE {
            // A group's rows left over after whole tiles (one at a time): VNNI registers, four
            // examples at a time.
            let mut out = [[0; R]; E];
            for (out, codes) in out
                .as_chunks_mut::<4>()
                .0
                .iter_mut()
                .zip(codes.as_chunks::<4>().0)
            {
                *out = self.vnni().dots::<R, 4>(rows, *codes);
            }
            return out;
        }
        if R != TILE || E != GROUP {
            return self.vnni().dots(rows, codes);
        }
        let tile_rows = Rows::<TILE> {
            starts: core::array::from_fn(|r| rows.starts[r]),
            n: rows.n,
        };
        let sums = self.tile_dots(&tile_rows, core::array::from_fn(|e| codes[e]));
        let mut out = [[0; R]; E];
        for e in 0..E {
            for r in 0..R {
                out[e][r] = sums[e][r];
            }
        }
        out
    }

    #[inline(always)]
    fn zero_sums<const R: usize>(self, rows: &Rows<'_, R>, quant: &InputQuant<'_>) -> [i32; R] {
        self.vnni().zero_sums(rows, quant)
    }

    #[inline(always)]
    fn dots_and_zero_sums<const R: usize>(
        self,
        rows: &Rows<'_, R>,
        codes: &[u8],
        quant: &InputQuant<'_>,
    ) -> ([i32; R], [i32; R]) {
        self.vnni().dots_and_zero_sums(rows, codes, quant)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::{configure, enabled, release, spacing, Amx, Rows, GROUP, TILE};
    use crate::kernels::avx_int8::V4Vnni;

    /// The tiles' sums are the exact integer sums, with the codes evenly spaced in one buffer
    /// (read in place) and in buffers of their own (the VNNI fallback), for row lengths whose
    /// last chunk runs past the weight tensor.
    #[test]
    fn tile_sums_are_the_exact_integer_sums() {
        let (Some(simd), true) = (V4Vnni::try_new(), enabled()) else {
            std::eprintln!("this CPU has no AMX-INT8: nothing to compare");
            return;
        };
        for n in [5, 64, 100, 200] {
            let weights: Vec<u8> = (0..TILE * n).map(|i| (i * 7919 % 251) as u8).collect();
            let len = n.next_multiple_of(64);
            let stride = len + 32;
            let mut buffer = std::vec![0u8; GROUP * stride];
            for e in 0..GROUP {
                for j in 0..n {
                    buffer[e * stride + j] = ((e * 31 + j * 17) % 256) as u8;
                }
            }
            let spaced: [&[u8]; GROUP] =
                core::array::from_fn(|e| &buffer[e * stride..e * stride + len]);
            // Copies of growing lengths, so that they are not evenly spaced.
            let own: Vec<Vec<u8>> = (0..GROUP)
                .map(|e| [spaced[e], &std::vec![0u8; 8 * e]].concat())
                .collect();
            let own: [&[u8]; GROUP] = core::array::from_fn(|e| &own[e][..]);
            assert!(spacing(own[..TILE].try_into().unwrap(), len).is_none());
            let rows = Rows::<TILE> {
                starts: core::array::from_fn(|r| &weights[r * n..]),
                n,
            };
            configure();
            let (in_place, copied) = (
                Amx(simd).tile_dots(&rows, spaced),
                Amx(simd).tile_dots(&rows, own),
            );
            release();
            for e in 0..GROUP {
                for r in 0..TILE {
                    let want: i32 = (0..n)
                        .map(|j| i32::from(weights[r * n + j] as i8) * i32::from(spaced[e][j]))
                        .sum();
                    assert_eq!(
                        in_place[e][r], want,
                        "in place: {n} inputs, example {e}, row {r}"
                    );
                    assert_eq!(
                        copied[e][r], want,
                        "own buffers: {n} inputs, example {e}, row {r}"
                    );
                }
            }
        }
    }
}
