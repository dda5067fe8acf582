//! What the x86-64 int8 kernels share: the block loop over whole chunks (`dots!`) and its
//! helpers. Each level (`sse2_int8.rs`, `avx_int8.rs`) brings the registers and instructions.

use super::int8::Rows;

/// `IntKernels::dots` for a level with inherent `zero`, `load_w`, `load_x`, `mac` and `sums`,
/// weights in chunks of `$w` bytes and codes in chunks of `$x` bytes (as many inputs).
macro_rules! dots {
    ($w:literal, $x:literal) => {
        #[inline(always)]
        fn dots<const R: usize, const E: usize>(
            self,
            rows: &Rows<'_, R>,
            codes: [&[u8]; E],
        ) -> [[i32; R]; E] {
            let mut acc = [[self.zero(); R]; E];
            let mut xs = [self.zero(); E];
            let count = rows.n.div_ceil($w);
            if in_place::<R, E>(rows, &codes, count * $w, count * $x) {
                // Exactly `count` chunks of each row and example: indexed below without
                // bounds checks.
                let mut ws: [&[[u8; $w]]; R] = [&[]; R];
                for r in 0..R {
                    ws[r] = &rows.starts[r].as_chunks::<$w>().0[..count];
                }
                let mut cs: [&[[u8; $x]]; E] = [&[]; E];
                for e in 0..E {
                    cs[e] = &codes[e].as_chunks::<$x>().0[..count];
                }
                for i in 0..count {
                    for e in 0..E {
                        xs[e] = self.load_x(&cs[e][i]);
                    }
                    for r in 0..R {
                        let w = self.load_w(&ws[r][i]);
                        for e in 0..E {
                            acc[e][r] = self.mac(acc[e][r], w, xs[e]);
                        }
                    }
                }
            } else {
                // The tensor's last rows: a row's last chunk from a zero-padded copy (rows past
                // the tensor are all zeros). The same loop order as above: indexing the
                // accumulators by a loop variable here would keep them in memory there too.
                for i in 0..count {
                    for e in 0..E {
                        let x = codes[e].as_chunks::<$x>().0.get(i);
                        xs[e] = self.load_x(x.unwrap_or(&[0; $x]));
                    }
                    for r in 0..R {
                        let w = self.load_w(&padded_chunk::<$w>(rows.row(r), i));
                        for e in 0..E {
                            acc[e][r] = self.mac(acc[e][r], w, xs[e]);
                        }
                    }
                }
            }
            unflatten(self.sums(&acc))
        }
    };
}

pub(super) use dots;

/// Most sums `sums256` and `sums512` reduce (16: a block of 4 rows x 4 examples).
pub(super) const MAX_SUMS: usize = 16;

/// Example-major sums as `[[i32; R]; E]`.
#[inline(always)]
pub(super) fn unflatten<const R: usize, const E: usize>(sums: [i32; MAX_SUMS]) -> [[i32; R]; E] {
    let mut out = [[0; R]; E];
    for e in 0..E {
        for r in 0..R {
            out[e][r] = sums[(e * R + r) % MAX_SUMS];
        }
    }
    out
}

/// Whether every row can be read in whole chunks in place (`row_bytes` from its start: a row's
/// last, partial chunk reaches past its end, where the weight tensor goes on and the codes are
/// zero), and every example's codes have `code_bytes`. Only the tensor's last rows cannot.
#[inline(always)]
pub(super) fn in_place<const R: usize, const E: usize>(
    rows: &Rows<'_, R>,
    codes: &[&[u8]; E],
    row_bytes: usize,
    code_bytes: usize,
) -> bool {
    rows.starts.iter().all(|s| s.len() >= row_bytes) && codes.iter().all(|c| c.len() >= code_bytes)
}

/// One row's chunks of `W` weights, the last one zero-padded in a copy: for the rows whose last
/// chunk cannot be read in place.
#[inline(always)]
pub(super) fn padded_chunk<const W: usize>(row: &[u8], c: usize) -> [u8; W] {
    let mut chunk = [0u8; W];
    if let Some(part) = row.get(c * W..) {
        let len = part.len().min(W);
        chunk[..len].copy_from_slice(&part[..len]);
    }
    chunk
}
