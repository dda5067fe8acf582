//! The arithmetic of scoring: dot products, linear layers and row reads over tensors in place.
//!
//! Every sum runs in one fixed order (8 interleaved partial sums, reduced by halving, then the
//! tail), so the host and a microcontroller compute the same bits; no fused multiply-add is ever
//! formed. Tensor bytes are read with `from_le_bytes`, which is correct at any alignment and
//! compiles to plain loads where the target allows unaligned access.

use half::f16;
use mlet_formats::{Dtype, LayerTensors, TableTensors, Tensor};

const LANES: usize = 8;

/// Adds the partial sums by halving (lane i plus lane i + half, until one is left), then the tail.
fn reduce(mut acc: [f32; LANES], tail: f32) -> f32 {
    let mut half = LANES / 2;
    while half > 0 {
        for i in 0..half {
            acc[i] += acc[i + half];
        }
        half /= 2;
    }
    acc[0] + tail
}

/// `sum a[i] * b[i]` over `min(a.len(), b.len())` elements, in the fixed order.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_with(a, b, |v| *v)
}

/// The one dot product: lane `k` sums the elements `i = k mod LANES` of the whole chunks, the
/// lanes are reduced by halving, and the tail is added last.
#[inline(always)]
fn dot_with<T>(w: &[T], x: &[f32], load: impl Fn(&T) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut w_chunks = w.chunks_exact(LANES);
    let mut x_chunks = x.chunks_exact(LANES);
    for (wc, xc) in (&mut w_chunks).zip(&mut x_chunks) {
        for k in 0..LANES {
            acc[k] += load(&wc[k]) * xc[k];
        }
    }
    let mut tail = 0.0f32;
    for (wv, xv) in w_chunks.remainder().iter().zip(x_chunks.remainder()) {
        tail += load(wv) * xv;
    }
    reduce(acc, tail)
}

/// `out[j] = W[j] . x` for each row of `W`, whose elements are `S` little-endian bytes.
fn matvec<const S: usize>(
    w: &[u8],
    x: &[f32],
    out: &mut [f32],
    load: impl Fn(&[u8; S]) -> f32 + Copy,
) {
    let rows = w.as_chunks::<S>().0.chunks_exact(x.len().max(1));
    for (row, o) in rows.zip(out.iter_mut()) {
        *o = dot_with(row, x, load);
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

/// `output = W input + b`, then ReLU if asked. `W` is [output.len(), input.len()] row-major.
pub(crate) fn linear(layer: &LayerTensors<'_>, input: &[f32], output: &mut [f32], relu: bool) {
    match layer.weight.dtype {
        Dtype::F16 => matvec::<2>(layer.weight.bytes, input, output, |b| {
            f16::from_le_bytes(*b).to_f32()
        }),
        _ => matvec::<4>(layer.weight.bytes, input, output, |b| {
            f32::from_le_bytes(*b)
        }),
    }
    for (j, out) in output.iter_mut().enumerate() {
        let value = *out + element(&layer.bias, j);
        *out = if relu && value < 0.0 { 0.0 } else { value };
    }
}

/// Writes row `row` of a table, dequantized, into `out` (d values).
pub(crate) fn read_row(table: &TableTensors<'_>, row: usize, out: &mut [f32]) {
    let d = out.len();
    let w = &table.weight;
    let start = row * d;
    match w.dtype {
        Dtype::F32 => {
            let values = w
                .bytes
                .as_chunks::<4>()
                .0
                .get(start..start + d)
                .unwrap_or(&[]);
            for (o, b) in out.iter_mut().zip(values) {
                *o = f32::from_le_bytes(*b);
            }
        }
        Dtype::F16 => {
            let values = w
                .bytes
                .as_chunks::<2>()
                .0
                .get(start..start + d)
                .unwrap_or(&[]);
            for (o, b) in out.iter_mut().zip(values) {
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
            let codes = w.bytes.get(start..start + d).unwrap_or(&[]);
            for (o, &q) in out.iter_mut().zip(codes) {
                *o = scale * f32::from(q) + offset;
            }
        }
    }
}
