//! How a table is stored: its tensors, and their bytes made a chunk of rows at a time.
//!
//! - `f32`: as computed; `f16`: rounded to IEEE half;
//! - `int8` / `int4`: asymmetric min/max quantization, value = scale * q + offset with q in
//!   0..=255 (int8) or 0..=15 (int4, two codes a byte: element 2c in the low nibble, 2c + 1 in
//!   the high one, an odd row's last high nibble 0), either one (scale, offset) per row, stored
//!   F16 (FBGEMM's convention; 4 bytes a row), or one per table, stored F32 (a table's 8 bytes
//!   are nothing, so they keep full precision). Codes are computed against the stored (rounded)
//!   scale and offset, so a value's error stays within half a quantization step plus the
//!   offset's rounding.
//!
//! Per-row scales are computed again from each chunk for the scale, the offset and the code
//! tensors (they lie apart in the file), so no table-sized buffer is ever held; per-table ones
//! take the table's range in one pass first.

use std::io::Write;

use anyhow::{bail, Result};
use half::f16;
use mlet_formats::{Dtype, EmbeddingDtype};

use super::Int8Scale;
use crate::model::COLLAPSE_CHUNK;

/// The stored rows of the tables being written, a chunk at a time.
pub trait TableSource {
    /// Rows `start..start + len` of table `t`, `d` values each, as f32.
    fn rows(&self, t: usize, start: usize, len: usize) -> Result<Vec<f32>>;
}

/// A part of a stored table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// `emb.{t}.weight`: values or codes.
    Weight,
    /// `emb.{t}.scale`.
    Scale,
    /// `emb.{t}.offset`.
    Offset,
}

/// How the tables are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encoding {
    /// The table dtype.
    pub dtype: EmbeddingDtype,
    /// Scales per row or per table (int8 and int4).
    pub scale: Int8Scale,
}

impl Encoding {
    /// The largest code: 255 for int8, 15 for int4.
    fn levels(&self) -> u8 {
        if self.dtype == EmbeddingDtype::Int4 {
            15
        } else {
            255
        }
    }

    fn quantized(&self) -> bool {
        matches!(self.dtype, EmbeddingDtype::Int8 | EmbeddingDtype::Int4)
    }

    /// The tensors of table `t` of `n` rows of `d` values: name, dtype, shape, part.
    pub fn tensors(&self, t: usize, n: usize, d: usize) -> Vec<(String, Dtype, Vec<usize>, Part)> {
        let weight = format!("emb.{t}.weight");
        match self.dtype {
            EmbeddingDtype::F32 => vec![(weight, Dtype::F32, vec![n, d], Part::Weight)],
            EmbeddingDtype::F16 => vec![(weight, Dtype::F16, vec![n, d], Part::Weight)],
            _ => {
                let (dtype, count) = match self.scale {
                    Int8Scale::Row => (Dtype::F16, n),
                    Int8Scale::Table => (Dtype::F32, 1),
                };
                vec![
                    (
                        weight,
                        Dtype::U8,
                        vec![n, self.dtype.row_bytes(d)],
                        Part::Weight,
                    ),
                    (format!("emb.{t}.scale"), dtype, vec![count], Part::Scale),
                    (format!("emb.{t}.offset"), dtype, vec![count], Part::Offset),
                ]
            }
        }
    }

    /// The stored (scale, offset) of table `t` when it has one per table (`None` otherwise),
    /// from one pass over its rows.
    pub fn table_params(
        &self,
        source: &dyn TableSource,
        t: usize,
        n: usize,
        d: usize,
    ) -> Result<Option<(f32, f32)>> {
        if !self.quantized() || self.scale == Int8Scale::Row {
            return Ok(None);
        }
        let (mut min, mut max) = (f32::INFINITY, f32::NEG_INFINITY);
        each_chunk(source, t, n, d, &format!("emb.{t}.weight"), |values| {
            for &v in values {
                min = min.min(v);
                max = max.max(v);
            }
            Ok(())
        })?;
        Ok(Some(params(min, max, Int8Scale::Table, self.levels())))
    }

    /// Writes `part` of table `t` (`n` rows of `d` values; `params` from [`Self::table_params`])
    /// to `out`, a chunk of rows at a time.
    #[allow(clippy::too_many_arguments)]
    pub fn write(
        &self,
        part: Part,
        source: &dyn TableSource,
        t: usize,
        n: usize,
        d: usize,
        params: Option<(f32, f32)>,
        out: &mut dyn Write,
    ) -> Result<()> {
        if let (Some((scale, offset)), Part::Scale | Part::Offset) = (params, part) {
            let value = if part == Part::Scale { scale } else { offset };
            out.write_all(&value.to_le_bytes())?;
            return Ok(());
        }
        let name = format!("emb.{t}.weight");
        let mut bytes = Vec::new();
        each_chunk(source, t, n, d, &name, |values| {
            bytes.clear();
            match (self.dtype, part) {
                (EmbeddingDtype::F32, _) => {
                    bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()))
                }
                (EmbeddingDtype::F16, _) => {
                    bytes.extend(values.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()))
                }
                (_, Part::Weight) => {
                    let codes = match params {
                        Some((scale, offset)) => values
                            .iter()
                            .map(|&v| encode(v, scale, offset, self.levels()))
                            .collect(),
                        None => quantize(values, d, Int8Scale::Row, self.levels()).codes,
                    };
                    if self.dtype == EmbeddingDtype::Int4 {
                        bytes.extend(pack_int4(&codes, d));
                    } else {
                        bytes.extend(codes);
                    }
                }
                (_, scale_or_offset) => {
                    let q = quantize(values, d, Int8Scale::Row, self.levels());
                    let stored = if scale_or_offset == Part::Scale {
                        &q.scale
                    } else {
                        &q.offset
                    };
                    bytes.extend(stored.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()))
                }
            }
            out.write_all(&bytes)?;
            Ok(())
        })
    }
}

/// Calls `f` with the rows of table `t` ([`COLLAPSE_CHUNK`] at a time) after checking that they
/// are finite (`name` names the tensor in the error).
fn each_chunk(
    source: &dyn TableSource,
    t: usize,
    n: usize,
    d: usize,
    name: &str,
    mut f: impl FnMut(&[f32]) -> Result<()>,
) -> Result<()> {
    for start in (0..n).step_by(COLLAPSE_CHUNK) {
        let values = source.rows(t, start, COLLAPSE_CHUNK.min(n - start))?;
        check_finite(name, &values, d, start)?;
        f(&values)?;
    }
    Ok(())
}

/// Refuses a tensor that holds a value that is not finite: a model with one cannot score (the
/// runtime reports NaN scores as errors), so nothing is written. `width` values make a row;
/// `values` start at row `first`.
pub(super) fn check_finite(name: &str, values: &[f32], width: usize, first: usize) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => bail!(
            "refusing to export: tensor `{name}` holds {} at row {}, column {} (the training \
             diverged; try a lower --lr)",
            values[i],
            first + i / width.max(1),
            i % width.max(1)
        ),
    }
}

/// Codes with their scales and offsets (as stored: rounded to F16 for per-row scales).
pub struct Quantized {
    /// One code per value.
    pub codes: Vec<u8>,
    /// One scale per row, or one for the table.
    pub scale: Vec<f32>,
    /// One offset per row, or one for the table.
    pub offset: Vec<f32>,
}

/// Asymmetric min/max quantization of rows of `width` values to codes in `0..=levels` (255 for
/// int8, 15 for int4), each row on its own (`Row`) or all together (`Table`).
pub fn quantize(values: &[f32], width: usize, mode: Int8Scale, levels: u8) -> Quantized {
    let groups: Vec<&[f32]> = match mode {
        Int8Scale::Row => values.chunks(width.max(1)).collect(),
        Int8Scale::Table => vec![values],
    };
    let mut q = Quantized {
        codes: Vec::with_capacity(values.len()),
        scale: Vec::new(),
        offset: Vec::new(),
    };
    for group in groups {
        let min = group.iter().copied().fold(f32::INFINITY, f32::min);
        let max = group.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let (scale, offset) = params(min, max, mode, levels);
        q.codes
            .extend(group.iter().map(|&v| encode(v, scale, offset, levels)));
        q.scale.push(scale);
        q.offset.push(offset);
    }
    q
}

/// The stored (scale, offset) of values in `min..=max` (none: 0, 0): rounded to F16 for per-row
/// scales, kept F32 for per-table ones.
fn params(min: f32, max: f32, mode: Int8Scale, levels: u8) -> (f32, f32) {
    if min > max {
        return (0.0, 0.0);
    }
    let round = |x: f32| match mode {
        Int8Scale::Row => f16::from_f32(x).to_f32(),
        Int8Scale::Table => x,
    };
    (round((max - min) / f32::from(levels)), round(min))
}

/// The code of `v` against a stored scale and offset.
fn encode(v: f32, scale: f32, offset: f32, levels: u8) -> u8 {
    if scale > 0.0 {
        ((v - offset) / scale).round().clamp(0.0, f32::from(levels)) as u8
    } else {
        0
    }
}

/// int4 codes of rows of `d` values, two a byte: element 2c in the low nibble, 2c + 1 in the
/// high one; an odd row's last high nibble is 0.
pub(super) fn pack_int4(codes: &[u8], d: usize) -> Vec<u8> {
    codes
        .chunks(d.max(1))
        .flat_map(|row| row.chunks(2).map(|p| p[0] | p.get(1).map_or(0, |h| h << 4)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_come_back_within_half_a_step() {
        let mut rng = crate::rng::Rng::new(2);
        let values: Vec<f32> = (0..64 * 8).map(|_| rng.uniform(-0.3, 0.5) as f32).collect();
        for levels in [255, 15] {
            for mode in [Int8Scale::Row, Int8Scale::Table] {
                let q = quantize(&values, 8, mode, levels);
                for (i, &v) in values.iter().enumerate() {
                    let g = if mode == Int8Scale::Row { i / 8 } else { 0 };
                    let back = q.scale[g] * q.codes[i] as f32 + q.offset[g];
                    // Half a step, plus the F16 rounding of the offset for per-row scales.
                    let slack = 0.5 * q.scale[g] + if mode == Int8Scale::Row { 1e-3 } else { 1e-6 };
                    assert!(
                        (back - v).abs() <= slack,
                        "{mode} /{levels}: {v} came back as {back}"
                    );
                    assert!(q.codes[i] <= levels);
                }
            }
        }
        // A constant row quantizes to its value exactly.
        let q = quantize(&[0.25; 4], 4, Int8Scale::Row, 255);
        assert_eq!((q.scale[0], q.offset[0], q.codes[0]), (0.0, 0.25, 0));
    }

    #[test]
    fn int4_codes_pack_two_a_byte_with_a_zero_pad_nibble() {
        assert_eq!(pack_int4(&[1, 2, 3, 4, 5, 6], 3), [0x21, 0x03, 0x54, 0x06]);
        assert_eq!(pack_int4(&[15, 0, 7, 8], 4), [0x0f, 0x87]);
    }

    #[test]
    fn non_finite_values_are_refused_by_name_and_place() {
        assert!(check_finite("emb.0.weight", &[0.5, -1.0, 2.0, 0.0], 2, 0).is_ok());
        let err = check_finite("emb.3.weight", &[0.5, -1.0, 2.0, f32::NAN], 2, 10)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`emb.3.weight` holds NaN at row 11, column 1"),
            "{err}"
        );
        let err = check_finite("top.0.bias", &[f32::INFINITY], 1, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`top.0.bias` holds inf at row 0"), "{err}");
    }
}
