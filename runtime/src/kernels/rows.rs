//! Embedding rows: read and dequantized in place (`read_row`), and on x86-64 asked of the caches
//! ahead of the reads (`prefetch_row`).

use half::f16;
use mlet_formats::{EmbeddingDtype, TableTensors, Tensor};

use super::element;

/// Writes row `row` of a table stored as `dtype`, dequantized, into `out` (d values).
pub(crate) fn read_row(
    table: &TableTensors<'_>,
    dtype: EmbeddingDtype,
    row: usize,
    out: &mut [f32],
) {
    let len = dtype.row_bytes(out.len());
    let bytes = table
        .weight
        .bytes
        .get(row * len..(row + 1) * len)
        .unwrap_or(&[]);
    let per_row = |t: &Option<Tensor<'_>>| match t {
        Some(t) if t.len() == 1 => element(t, 0),
        Some(t) => element(t, row),
        None => 0.0,
    };
    match dtype {
        EmbeddingDtype::F32 => {
            for (o, b) in out.iter_mut().zip(bytes.as_chunks::<4>().0) {
                *o = f32::from_le_bytes(*b);
            }
        }
        EmbeddingDtype::F16 => {
            for (o, b) in out.iter_mut().zip(bytes.as_chunks::<2>().0) {
                *o = f16::from_le_bytes(*b).to_f32();
            }
        }
        EmbeddingDtype::Int8 => {
            let (scale, offset) = (per_row(&table.scale), per_row(&table.offset));
            for (o, &q) in out.iter_mut().zip(bytes) {
                *o = scale * f32::from(q) + offset;
            }
        }
        EmbeddingDtype::Int4 => {
            // Element 2c in the low nibble of byte c, 2c + 1 in the high one.
            let (scale, offset) = (per_row(&table.scale), per_row(&table.offset));
            for (pair, &b) in out.chunks_mut(2).zip(bytes) {
                for (o, q) in pair.iter_mut().zip([b & 0x0f, b >> 4]) {
                    *o = scale * f32::from(q) + offset;
                }
            }
        }
    }
}

/// Asks the caches for row `row` of a table (and its scale and offset, when per row) ahead of
/// `read_row`, so that the cache misses of all the rows of a tile overlap with other work.
#[cfg(target_arch = "x86_64")]
pub(crate) fn prefetch_row(
    table: &TableTensors<'_>,
    dtype: EmbeddingDtype,
    row: usize,
    dim: usize,
) {
    if let Some(byte) = table.weight.bytes.get(row * dtype.row_bytes(dim)) {
        safe_arch::prefetch_t0(byte);
    }
    for t in [&table.scale, &table.offset].into_iter().flatten() {
        if t.len() > 1 {
            if let Some(byte) = t.bytes.get(row * t.dtype.size()) {
                safe_arch::prefetch_t0(byte);
            }
        }
    }
}
