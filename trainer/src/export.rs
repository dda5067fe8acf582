//! Collapse, quantize and export a trained model as a model file, streamed: each table is
//! collapsed (MLET: E_t = A_t P_t), checked, quantized and written [`COLLAPSE_CHUNK`] rows at a
//! time straight into the file, whose header is laid out first (`mlet_formats::stream`), so
//! exporting takes one chunk of memory besides the model, whatever the size of the tables.
//! Tables are stored as
//! - `f32`: as computed;
//! - `f16`: rounded to IEEE half;
//! - `int8`: asymmetric min/max quantization, value = scale * q + offset with q in 0..=255,
//!   either one (scale, offset) per row, stored F16 (FBGEMM's convention; 4 bytes a row), or one
//!   per table, stored F32 (a table's 8 bytes are nothing, so they keep full precision). Codes
//!   are computed against the stored (rounded) scale and offset, so a value's error stays
//!   within half a quantization step plus the offset's rounding.
//!
//! MLP weights and biases are F32. A value that is not finite stops the export, naming the
//! tensor, row and column. The file is written to a temporary file, which is checked against
//! every rule of the reader (through a memory map: only its header is read) before it replaces
//! the target, so a failed export leaves an earlier file as it was.
//!
//! [`COLLAPSE_CHUNK`]: crate::model::COLLAPSE_CHUNK

use std::fmt;
use std::path::Path;

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use half::f16;
use mlet_formats::stream::{write_file, Layout};
use mlet_formats::writer::{format_metadata, is_free_key};
use mlet_formats::{Config, DenseTransform, Dtype, EmbeddingDtype, ModelFile};

use crate::model::{Dlrm, Linear};

/// How int8 tables are scaled.
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
    /// Measures a valid v1 file.
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

/// What a tensor of the file is made from.
enum Piece {
    /// The rows of table t as stored (values or codes).
    Rows(usize),
    /// The int8 scales of table t.
    Scale(usize),
    /// The int8 offsets of table t.
    Offset(usize),
    /// An MLP weight or bias, F32 values in memory (small).
    Values(Vec<f32>),
}

/// Writes the model to `path` (streamed, checked, atomically; see the module doc) and returns
/// its sizes.
pub fn export(
    model: &Dlrm,
    dtype: EmbeddingDtype,
    int8_scale: Int8Scale,
    info: &[(String, String)],
    path: &Path,
) -> Result<FileSizes> {
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
    if dtype == EmbeddingDtype::Int4 {
        bail!("int4 tables: not exported by this trainer yet");
    }
    // A key given twice keeps its last value.
    let mut metadata: std::collections::BTreeMap<String, String> =
        format_metadata(&config).into_iter().collect();
    for (key, value) in info {
        if !is_free_key(key) {
            bail!("metadata key `{key}` is reserved by the format");
        }
        metadata.insert(key.clone(), value.clone());
    }
    let metadata: Vec<(String, String)> = metadata.into_iter().collect();
    let d = spec.dim;
    let stored = match dtype {
        EmbeddingDtype::F32 => Dtype::F32,
        EmbeddingDtype::F16 => Dtype::F16,
        _ => Dtype::U8,
    };
    let mut plan = Vec::new();
    let mut pieces = HashMap::new();
    for (t, &n) in spec.table_rows.iter().enumerate() {
        plan.push((format!("emb.{t}.weight"), stored, vec![n, d]));
        pieces.insert(format!("emb.{t}.weight"), Piece::Rows(t));
        if dtype == EmbeddingDtype::Int8 {
            let (scale_dtype, count) = match int8_scale {
                Int8Scale::Row => (Dtype::F16, n),
                Int8Scale::Table => (Dtype::F32, 1),
            };
            for (part, piece) in [("scale", Piece::Scale(t)), ("offset", Piece::Offset(t))] {
                plan.push((format!("emb.{t}.{part}"), scale_dtype, vec![count]));
                pieces.insert(format!("emb.{t}.{part}"), piece);
            }
        }
    }
    for (group, layers) in [("bottom", &model.bottom), ("top", &model.top)] {
        for (l, Linear { weight, bias }) in layers.iter().enumerate() {
            for (part, t) in [("weight", weight), ("bias", bias)] {
                let name = format!("{group}.{l}.{part}");
                let values: Vec<f32> = t.flatten_all()?.to_vec1()?;
                let width = t.dims().last().copied().unwrap_or(1);
                check_finite(&name, &values, width, 0)?;
                plan.push((name.clone(), Dtype::F32, t.dims().to_vec()));
                pieces.insert(name, Piece::Values(values));
            }
        }
    }
    // One (scale, offset) per table takes the whole table's range: one pass before writing.
    let table_params: Vec<(f32, f32)> = match (dtype, int8_scale) {
        (EmbeddingDtype::Int8, Int8Scale::Table) => (0..spec.table_rows.len())
            .map(|t| table_range(model, t).map(|(min, max)| params(min, max, Int8Scale::Table)))
            .collect::<Result<_>>()?,
        _ => Vec::new(),
    };
    let layout = Layout::new(&metadata, plan).map_err(anyhow::Error::msg)?;
    let mut sizes = None;
    let written = write_file::<anyhow::Error>(
        path,
        &layout,
        |tensor, out| {
            let mut bytes = Vec::new();
            let mut emit = |bytes: &mut Vec<u8>| -> Result<()> {
                out.write_all(bytes)?;
                bytes.clear();
                Ok(())
            };
            match &pieces[&tensor.name] {
                Piece::Values(values) => {
                    bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
                    emit(&mut bytes)
                }
                Piece::Rows(t) => each_chunk(model, *t, &tensor.name, |values| {
                    match (dtype, int8_scale) {
                        (EmbeddingDtype::F32, _) => {
                            bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()))
                        }
                        (EmbeddingDtype::F16, _) => bytes
                            .extend(values.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes())),
                        (_, Int8Scale::Row) => {
                            bytes.extend(quantize(values, d, Int8Scale::Row).codes)
                        }
                        (_, Int8Scale::Table) => {
                            let (scale, offset) = table_params[*t];
                            bytes.extend(values.iter().map(|&v| encode(v, scale, offset)))
                        }
                    }
                    emit(&mut bytes)
                }),
                Piece::Scale(t) | Piece::Offset(t) => {
                    let scale = matches!(pieces[&tensor.name], Piece::Scale(_));
                    match int8_scale {
                        Int8Scale::Table => {
                            let (s, o) = table_params[*t];
                            bytes.extend(if scale { s } else { o }.to_le_bytes());
                            emit(&mut bytes)
                        }
                        Int8Scale::Row => each_chunk(model, *t, &tensor.name, |values| {
                            let q = quantize(values, d, Int8Scale::Row);
                            let part = if scale { &q.scale } else { &q.offset };
                            bytes.extend(part.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()));
                            emit(&mut bytes)
                        }),
                    }
                }
            }
        },
        |tmp| {
            sizes = Some(check_written(tmp)?);
            Ok(())
        },
    );
    written.with_context(|| format!("cannot export {}", path.display()))?;
    sizes.context("the written file was checked")
}

/// A metadata value as text: a model file holds each value as a JSON string, whose raw form
/// (what `mlet_formats::ModelFile::metadata` returns) keeps its escapes, e.g. `\"` in a stored
/// schema.
pub fn metadata_text(raw: &str) -> String {
    serde_json::from_str(&format!("\"{raw}\"")).unwrap_or_else(|_| raw.to_string())
}

/// Calls `f` with the stored values of table `t`, [`COLLAPSE_CHUNK`] rows at a time, after
/// checking that they are finite (`name` names the tensor in the error).
///
/// [`COLLAPSE_CHUNK`]: crate::model::COLLAPSE_CHUNK
fn each_chunk(
    model: &Dlrm,
    t: usize,
    name: &str,
    mut f: impl FnMut(&[f32]) -> Result<()>,
) -> Result<()> {
    let (n, d) = (model.spec.table_rows[t], model.spec.dim);
    let chunk = crate::model::COLLAPSE_CHUNK;
    for start in (0..n).step_by(chunk) {
        let values: Vec<f32> = model
            .collapsed_rows(t, start, chunk.min(n - start))?
            .flatten_all()?
            .to_vec1()?;
        check_finite(name, &values, d, start)?;
        f(&values)?;
    }
    Ok(())
}

/// The smallest and largest stored value of table `t`.
fn table_range(model: &Dlrm, t: usize) -> Result<(f32, f32)> {
    let (mut min, mut max) = (f32::INFINITY, f32::NEG_INFINITY);
    each_chunk(model, t, &format!("emb.{t}.weight"), |values| {
        for &v in values {
            min = min.min(v);
            max = max.max(v);
        }
        Ok(())
    })?;
    Ok((min, max))
}

/// Refuses a tensor that holds a value that is not finite: a model with one cannot score (the
/// runtime reports NaN scores as errors), so nothing is written. `width` values make a row;
/// `values` start at row `first`.
fn check_finite(name: &str, values: &[f32], width: usize, first: usize) -> Result<()> {
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

/// Parses the finished file (through a memory map: only the header is read) against every rule
/// of the reader, and measures it.
fn check_written(path: &Path) -> Result<FileSizes> {
    let file = std::fs::File::open(path)?;
    // SAFETY: the file is this process's own temporary file, complete and synced, and nothing
    // writes to it while it is mapped (it is renamed over the target only after this check).
    let map = unsafe { memmap2::Mmap::map(&file)? };
    let parsed = ModelFile::parse(&map)
        .map_err(|e| anyhow::anyhow!("the written file breaks a rule of the format: {e}"))?;
    Ok(FileSizes::of(&parsed))
}

/// int8 codes with their scales and offsets (as stored: rounded to F16 for per-row scales).
pub struct Quantized {
    /// One code per value.
    pub codes: Vec<u8>,
    /// One scale per row, or one for the table.
    pub scale: Vec<f32>,
    /// One offset per row, or one for the table.
    pub offset: Vec<f32>,
}

/// Asymmetric min/max quantization of rows of `width` values, each row on its own (`Row`) or
/// all together (`Table`; see the module doc).
pub fn quantize(values: &[f32], width: usize, mode: Int8Scale) -> Quantized {
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
        let (scale, offset) = params(min, max, mode);
        q.codes
            .extend(group.iter().map(|&v| encode(v, scale, offset)));
        q.scale.push(scale);
        q.offset.push(offset);
    }
    q
}

/// The stored (scale, offset) of values in `min..=max` (an empty group: 0, 0): rounded to F16
/// for per-row scales, kept F32 for per-table ones.
fn params(min: f32, max: f32, mode: Int8Scale) -> (f32, f32) {
    if min > max {
        return (0.0, 0.0);
    }
    let round = |x: f32| match mode {
        Int8Scale::Row => f16::from_f32(x).to_f32(),
        Int8Scale::Table => x,
    };
    (round((max - min) / 255.0), round(min))
}

/// The code of `v` against a stored scale and offset.
fn encode(v: f32, scale: f32, offset: f32) -> u8 {
    if scale > 0.0 {
        ((v - offset) / scale).round().clamp(0.0, 255.0) as u8
    } else {
        0
    }
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

    /// The streamed file holds what quantizing each whole collapsed table at once gives, also
    /// for a table of more than one chunk.
    #[test]
    fn streamed_tables_are_the_tables_quantized_whole() {
        let spec = crate::model::ModelSpec {
            num_dense: 2,
            table_rows: vec![crate::model::COLLAPSE_CHUNK + 300, 7],
            dim: 3,
            mlet_k: 8,
            bottom_hidden: vec![4],
            top_hidden: vec![4],
            mlet_init_scale: 1.0,
        };
        let model = Dlrm::new(spec, 1, &candle_core::Device::Cpu).unwrap();
        let tables: Vec<Vec<f32>> = model
            .collapsed_tables(1 << 20)
            .unwrap()
            .iter()
            .map(|t| t.flatten_all().unwrap().to_vec1().unwrap())
            .collect();
        let path = std::env::temp_dir().join(format!("mlet-export-{}.mlet", std::process::id()));
        for (dtype, mode) in [
            (EmbeddingDtype::F32, Int8Scale::Row),
            (EmbeddingDtype::F16, Int8Scale::Row),
            (EmbeddingDtype::Int8, Int8Scale::Row),
            (EmbeddingDtype::Int8, Int8Scale::Table),
        ] {
            let sizes = export(&model, dtype, mode, &[("note".into(), "x".into())], &path).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(sizes.total, bytes.len());
            let file = ModelFile::parse(&bytes).unwrap();
            assert_eq!(file.metadata("note"), Some("x"));
            for (t, values) in tables.iter().enumerate() {
                let table = file.table(t);
                let f16s = |v: &[f32]| -> Vec<u8> {
                    v.iter()
                        .flat_map(|&x| f16::from_f32(x).to_le_bytes())
                        .collect()
                };
                match dtype {
                    EmbeddingDtype::F32 => {
                        let want: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                        assert_eq!(table.weight.bytes, &want[..]);
                    }
                    EmbeddingDtype::F16 => assert_eq!(table.weight.bytes, &f16s(values)[..]),
                    _ => {
                        let q = quantize(values, 3, mode);
                        assert_eq!(table.weight.bytes, &q.codes[..], "{mode} codes, table {t}");
                        let stored = |v: &[f32]| match mode {
                            Int8Scale::Row => f16s(v),
                            Int8Scale::Table => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                        };
                        assert_eq!(table.scale.unwrap().bytes, &stored(&q.scale)[..]);
                        assert_eq!(table.offset.unwrap().bytes, &stored(&q.offset)[..]);
                    }
                }
            }
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn int8_reconstruction_error_is_within_half_a_step() {
        let mut rng = crate::rng::Rng::new(2);
        let values: Vec<f32> = (0..64 * 8).map(|_| rng.uniform(-0.3, 0.5) as f32).collect();
        for mode in [Int8Scale::Row, Int8Scale::Table] {
            let q = quantize(&values, 8, mode);
            for (i, &v) in values.iter().enumerate() {
                let g = if mode == Int8Scale::Row { i / 8 } else { 0 };
                let back = q.scale[g] * q.codes[i] as f32 + q.offset[g];
                // Half a step, plus the F16 rounding of the offset for per-row scales.
                let slack = 0.5 * q.scale[g] + if mode == Int8Scale::Row { 1e-3 } else { 1e-6 };
                assert!((back - v).abs() <= slack, "{mode}: {v} came back as {back}");
            }
        }
        // A constant row quantizes to its value exactly.
        let q = quantize(&[0.25; 4], 4, Int8Scale::Row);
        assert_eq!((q.scale[0], q.offset[0], q.codes[0]), (0.0, 0.25, 0));
    }
}
