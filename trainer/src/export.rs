//! Collapse, quantize and export a trained model as a model file.
//!
//! Tables are collapsed (MLET: E_t = A_t P_t, computed 65,536 rows at a time) and stored as
//! - `f32`: as computed;
//! - `f16`: rounded to IEEE half;
//! - `int8`: asymmetric min/max quantization, value = scale * q + offset with q in 0..=255,
//!   either one (scale, offset) per row, stored F16 (FBGEMM's convention; 4 bytes a row), or one
//!   per table, stored F32 (a table's 8 bytes are nothing, so they keep full precision). Codes
//!   are computed against the stored (rounded) scale and offset, so a value's error stays
//!   within half a quantization step plus the offset's rounding.
//! - `int4` (format v2): the same with q in 0..=15, two codes a byte.
//!
//! MLP weights and biases are F32 here; `crate::quantize` turns them into F16 or int8 layers.
//! The file is written through `mlet_formats::writer::ModelWriter::write`: validated against
//! every rule of the reader, and atomically.

use std::fmt;
use std::path::Path;

use anyhow::{Context, Result};
use half::f16;
use mlet_formats::writer::{ModelWriter, OwnedTensor};
use mlet_formats::{Config, DenseTransform, EmbeddingDtype, ModelFile};

use crate::model::{Dlrm, Linear};

/// Rows collapsed at a time.
const COLLAPSE_CHUNK: usize = 1 << 16;

/// How int8 and int4 tables are scaled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Int8Scale {
    /// One F16 scale and offset per row.
    Row,
    /// One F32 scale and offset per table.
    Table,
}

impl fmt::Display for Int8Scale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Int8Scale::Row => "row",
            Int8Scale::Table => "table",
        })
    }
}

/// A file's bytes by part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileSizes {
    /// The whole file.
    pub total: usize,
    /// Embedding tables (codes, scales and offsets included).
    pub tables: usize,
    /// MLP weights and biases.
    pub mlp: usize,
    /// The 8-byte length prefix and the JSON header.
    pub header: usize,
}

impl FileSizes {
    /// Measures a valid file.
    pub fn of(file: &ModelFile<'_>) -> FileSizes {
        let config = file.config();
        let tables = (0..config.num_tables())
            .map(|t| {
                let table = file.table(t);
                table.weight.bytes.len()
                    + table.scale.map_or(0, |s| s.bytes.len())
                    + table.offset.map_or(0, |o| o.bytes.len())
            })
            .sum();
        let layer_bytes =
            |l: &mlet_formats::LayerTensors<'_>| l.weight.bytes.len() + l.bias.bytes.len();
        let mlp = (0..config.bottom().layers())
            .map(|l| layer_bytes(&file.bottom_layer(l)))
            .sum::<usize>()
            + (0..config.top().layers())
                .map(|l| layer_bytes(&file.top_layer(l)))
                .sum::<usize>();
        let header = 8 + file.header_len();
        FileSizes {
            total: header + file.data_len(),
            tables,
            mlp,
            header,
        }
    }
}

impl fmt::Display for FileSizes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes: tables {}, MLP {}, header {}",
            self.total, self.tables, self.mlp, self.header
        )
    }
}

/// A writer holding the model's collapsed tables in `dtype`, its MLPs, and `info` as free
/// metadata.
pub fn model_writer(
    model: &Dlrm,
    dtype: EmbeddingDtype,
    int8_scale: Int8Scale,
    info: &[(String, String)],
) -> Result<ModelWriter> {
    let spec = &model.spec;
    let as_u32 = |v: &[usize]| v.iter().map(|&x| x as u32).collect::<Vec<u32>>();
    let config = Config::new(
        &as_u32(&spec.table_rows),
        spec.dim as u32,
        &as_u32(&spec.bottom_widths()),
        &as_u32(&spec.top_widths()[1..]),
        DenseTransform::Log1p,
        dtype,
    )
    .map_err(|e| anyhow::anyhow!("the model does not fit the format: {e}"))?;
    let mut writer = ModelWriter::new(&config);
    for (key, value) in info {
        writer
            .info(key, value)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let d = spec.dim;
    for (t, table) in model
        .collapsed_tables(COLLAPSE_CHUNK)?
        .into_iter()
        .enumerate()
    {
        let values: Vec<f32> = table.flatten_all()?.to_vec1()?;
        for (name, tensor) in table_tensors(t, &values, d, dtype, int8_scale) {
            writer.tensor(name, tensor);
        }
    }
    for (group, layers) in [("bottom", &model.bottom), ("top", &model.top)] {
        for (l, Linear { weight, bias }) in layers.iter().enumerate() {
            let w: Vec<f32> = weight.flatten_all()?.to_vec1()?;
            let b: Vec<f32> = bias.to_vec1()?;
            writer.tensor(
                format!("{group}.{l}.weight"),
                OwnedTensor::f32(weight.dims(), &w),
            );
            writer.tensor(
                format!("{group}.{l}.bias"),
                OwnedTensor::f32(bias.dims(), &b),
            );
        }
    }
    Ok(writer)
}

/// Writes the model to `path` (atomically, validated) and returns its sizes.
pub fn export(
    model: &Dlrm,
    dtype: EmbeddingDtype,
    int8_scale: Int8Scale,
    info: &[(String, String)],
    path: &Path,
) -> Result<FileSizes> {
    let writer = model_writer(model, dtype, int8_scale, info)?;
    let bytes = writer
        .write(path)
        .with_context(|| format!("cannot export {}", path.display()))?;
    let file = ModelFile::parse(&bytes)
        .map_err(|e| anyhow::anyhow!("the written file does not parse: {e}"))?;
    Ok(FileSizes::of(&file))
}

/// The tensors of table `t` from its values (`d` a row) stored as `dtype`: `emb.{t}.weight`,
/// and for int8 and int4 its `scale` and `offset`.
pub fn table_tensors(
    t: usize,
    values: &[f32],
    d: usize,
    dtype: EmbeddingDtype,
    int8_scale: Int8Scale,
) -> Vec<(String, OwnedTensor)> {
    let n = values.len() / d.max(1);
    let weight = format!("emb.{t}.weight");
    match dtype {
        EmbeddingDtype::F32 => vec![(weight, OwnedTensor::f32(&[n, d], values))],
        EmbeddingDtype::F16 => {
            let bits: Vec<u16> = values.iter().map(|&v| f16::from_f32(v).to_bits()).collect();
            vec![(weight, OwnedTensor::f16_bits(&[n, d], &bits))]
        }
        EmbeddingDtype::Int8 | EmbeddingDtype::Int4 => {
            let int4 = dtype == EmbeddingDtype::Int4;
            let q = quantize(values, d, int8_scale, if int4 { 15 } else { 255 });
            let codes = if int4 {
                // Element 2c in the low nibble, 2c + 1 in the high one; an odd row's last high
                // nibble is 0.
                q.codes
                    .chunks(d.max(1))
                    .flat_map(|row| row.chunks(2).map(|p| p[0] | p.get(1).map_or(0, |h| h << 4)))
                    .collect()
            } else {
                q.codes
            };
            let width = dtype.row_bytes(d);
            let count = q.scale.len();
            let (scale, offset) = match int8_scale {
                Int8Scale::Row => {
                    let bits = |v: &[f32]| {
                        v.iter()
                            .map(|&x| f16::from_f32(x).to_bits())
                            .collect::<Vec<u16>>()
                    };
                    (
                        OwnedTensor::f16_bits(&[count], &bits(&q.scale)),
                        OwnedTensor::f16_bits(&[count], &bits(&q.offset)),
                    )
                }
                Int8Scale::Table => (
                    OwnedTensor::f32(&[count], &q.scale),
                    OwnedTensor::f32(&[count], &q.offset),
                ),
            };
            vec![
                (weight, OwnedTensor::u8(&[n, width], codes)),
                (format!("emb.{t}.scale"), scale),
                (format!("emb.{t}.offset"), offset),
            ]
        }
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
/// int8, 15 for int4; see the module doc).
pub fn quantize(values: &[f32], width: usize, mode: Int8Scale, levels: u8) -> Quantized {
    let groups: Vec<&[f32]> = match mode {
        Int8Scale::Row => values.chunks(width).collect(),
        Int8Scale::Table => vec![values],
    };
    let round = |x: f32| match mode {
        Int8Scale::Row => f16::from_f32(x).to_f32(),
        Int8Scale::Table => x,
    };
    let mut q = Quantized {
        codes: Vec::with_capacity(values.len()),
        scale: Vec::new(),
        offset: Vec::new(),
    };
    for group in groups {
        let min = group.iter().copied().fold(f32::INFINITY, f32::min);
        let max = group.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let (min, max) = if group.is_empty() {
            (0.0, 0.0)
        } else {
            (min, max)
        };
        let top = f32::from(levels);
        let scale = round((max - min) / top);
        let offset = round(min);
        q.codes.extend(group.iter().map(|&v| {
            if scale > 0.0 {
                ((v - offset) / scale).round().clamp(0.0, top) as u8
            } else {
                0
            }
        }));
        q.scale.push(scale);
        q.offset.push(offset);
    }
    q
}

/// Largest |p_two_layer - p_collapsed| over `rows` of `spec`: how far collapsing MLET's
/// A_t P_t into one table moves the model's probabilities (0 for plain tables up to rounding).
pub fn collapse_gap(
    model: &Dlrm,
    spec: &crate::data::DataSpec,
    rows: std::ops::Range<u64>,
    options: crate::data::ReadOptions,
) -> Result<f32> {
    let collapsed = model.collapsed()?;
    let (two_layer, _) = crate::train::predict_all(model, spec, rows.clone(), options)?;
    let (one_layer, _) = crate::train::predict_all(&collapsed, spec, rows, options)?;
    Ok(two_layer
        .iter()
        .zip(&one_layer)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int4_rows_pack_two_codes_a_byte_within_half_a_step() {
        let mut rng = crate::rng::Rng::new(3);
        let d = 5;
        let values: Vec<f32> = (0..20 * d).map(|_| rng.uniform(-0.4, 0.3) as f32).collect();
        let tensors = table_tensors(0, &values, d, EmbeddingDtype::Int4, Int8Scale::Table);
        let (codes, scale, offset) = (&tensors[0].1, &tensors[1].1, &tensors[2].1);
        assert_eq!(codes.shape(), &[20, 3]);
        let f = |t: &OwnedTensor| f32::from_le_bytes(t.bytes()[..4].try_into().unwrap());
        let (scale, offset) = (f(scale), f(offset));
        for (r, row) in codes.bytes().chunks(3).enumerate() {
            assert_eq!(row[2] >> 4, 0, "padding nibble");
            for k in 0..d {
                let q = if k % 2 == 0 {
                    row[k / 2] & 15
                } else {
                    row[k / 2] >> 4
                };
                let back = scale * f32::from(q) + offset;
                let v = values[r * d + k];
                assert!(
                    (back - v).abs() <= 0.5 * scale + 1e-6,
                    "{v} came back as {back}"
                );
            }
        }
    }

    #[test]
    fn int8_reconstruction_error_is_within_half_a_step() {
        let mut rng = crate::rng::Rng::new(2);
        let values: Vec<f32> = (0..64 * 8).map(|_| rng.uniform(-0.3, 0.5) as f32).collect();
        for mode in [Int8Scale::Row, Int8Scale::Table] {
            let q = quantize(&values, 8, mode, 255);
            for (i, &v) in values.iter().enumerate() {
                let g = if mode == Int8Scale::Row { i / 8 } else { 0 };
                let back = q.scale[g] * q.codes[i] as f32 + q.offset[g];
                // Half a step, plus the F16 rounding of the offset for per-row scales.
                let slack = 0.5 * q.scale[g] + if mode == Int8Scale::Row { 1e-3 } else { 1e-6 };
                assert!((back - v).abs() <= slack, "{mode}: {v} came back as {back}");
            }
        }
        // A constant row quantizes to its value exactly.
        let q = quantize(&[0.25; 4], 4, Int8Scale::Row, 255);
        assert_eq!((q.scale[0], q.offset[0], q.codes[0]), (0.0, 0.25, 0));
    }
}
