//! Embedding rows: read and dequantized in place (`read_row`), and on x86-64 asked of the caches
//! ahead of the reads (`prefetch_row`).

use half::f16;
use mlet_formats::{Dtype, TableTensors, Tensor};

use super::element;

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
        Dtype::U8 | Dtype::I8 => {
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
