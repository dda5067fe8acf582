//! Re-export a model file with narrower tables or layers, without retraining: int8 layers
//! calibrated on rows the user names (format v2), F16 layers, int8 or int4 tables.
//!
//! The int8 layer rule (the arithmetic is `mlet_formats`' contract; this is how the scales are
//! chosen, recorded in the file's `quant.*` keys):
//! - Calibration: the F32 model runs over the calibration rows (by default the validation rows,
//!   at most `--calibration-rows` of them) and records the smallest and largest value of every
//!   input column of every layer.
//! - Inputs: asymmetric min/max over those rows (`--calibration-clip q` takes the q and 1 - q
//!   quantiles instead), the range widened to hold 0 so that 0 is exact (ReLU outputs and
//!   log1p(0) give zero point 0): scale = (max - min) / 255, zero point = round(-min / scale).
//!   Values beyond the calibrated range clamp to the end codes.
//! - Shape: per tensor or per input column, chosen per layer (`--input-scale auto`) as the one
//!   whose int8 outputs are nearer the F32 layer's (mean squared error on up to 1,024
//!   calibration rows). Per-column scales give narrow columns finer codes, but folded into the
//!   per-row weight scales they coarsen those columns' weights, so neither shape wins
//!   everywhere (`tensor` and `column` force one shape).
//! - Weights: symmetric per output row, after the column scales are folded in (W'_ij = W_ij s_j):
//!   a_i = max_j |W'_ij| / 127, codes round(W'_ij / a_i) in -127..=127, `acc_scale_i = a_i`; the
//!   bias stays F32.

mod forward;
mod layers;

use std::ops::Range;

use anyhow::{bail, Context, Result};
use half::f16;
use mlet_formats::writer::{ModelWriter, OwnedTensor, WriteError};
use mlet_formats::{Config, Dtype, EmbeddingDtype, MlpDtype, ModelFile};

pub use forward::{InputRange, Ranges};
pub use layers::{affine, choose_int8_layer, int8_layer, InputScale};

use crate::data::{BatchStream, DataSpec, ReadOptions};
use crate::export::{table_tensors, FileSizes, Int8Scale};
use crate::metrics::Metrics;
use crate::score::score_file;

/// How the MLP layers are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layers {
    /// F32 weights and biases (format v1).
    F32,
    /// F16 weights and biases (format v1).
    F16,
    /// int8 layers (format v2), calibrated.
    Int8,
}

impl Layers {
    /// The spelling of `--mlp-dtype`.
    pub fn as_str(self) -> &'static str {
        match self {
            Layers::F32 => "f32",
            Layers::F16 => "f16",
            Layers::Int8 => "int8",
        }
    }
}

/// What to store, and how to calibrate int8 layers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// New table dtype and scale layout, or `None` to keep the tables as they are.
    pub tables: Option<(EmbeddingDtype, Int8Scale)>,
    /// How the layers are stored.
    pub layers: Layers,
    /// Where int8 layers' input scales are shared.
    pub input_scale: InputScale,
    /// The share of calibration values left out of each end of an input range (0: min/max).
    pub clip: f64,
}

/// Rows of a data source.
#[derive(Clone, Debug, PartialEq)]
pub struct Rows {
    /// The source.
    pub spec: DataSpec,
    /// Row numbers (`start..u64::MAX`: to the end).
    pub range: Range<u64>,
    /// How to read them.
    pub options: ReadOptions,
}

impl std::fmt::Display for Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.range.end == u64::MAX {
            write!(f, "{} rows {}..", self.spec, self.range.start)
        } else {
            write!(
                f,
                "{} rows {}..{}",
                self.spec, self.range.start, self.range.end
            )
        }
    }
}

/// The ranges every layer's input took on `rows`, running the F32 model of `file`.
pub fn calibrate(file: &ModelFile<'_>, rows: &Rows) -> Result<Ranges> {
    let forward = forward::Forward::new(file)?;
    let schema = rows.spec.schema();
    let config = file.config();
    if schema.num_dense != config.num_dense() || schema.num_tables != config.num_tables() {
        bail!(
            "the model takes {} dense values and {} ids, calibration data {} has {} and {}",
            config.num_dense(),
            config.num_tables(),
            rows.spec,
            schema.num_dense,
            schema.num_tables
        );
    }
    let mut ranges = forward.ranges();
    let mut stream = BatchStream::spawn(&rows.spec, rows.options, rows.range.clone(), 1024)?;
    while let Some(batch) = stream.next_batch()? {
        forward.observe(&batch.dense, &batch.ids, &mut ranges);
    }
    if ranges.rows == 0 {
        bail!("no calibration rows in {rows}");
    }
    Ok(ranges)
}

/// A writer for `file` re-stored by `settings`; `ranges` (from [`calibrate`]) are needed for
/// int8 layers. Free metadata is kept.
pub fn requantize(
    file: &ModelFile<'_>,
    settings: &Settings,
    ranges: Option<&Ranges>,
) -> Result<ModelWriter> {
    let source = file.config();
    if source.mlp_dtype() == MlpDtype::Int8 {
        bail!("the model's layers are already int8: start from the F32 model it came from");
    }
    let (table_dtype, int8_scale) = settings
        .tables
        .unwrap_or((source.embedding_dtype(), Int8Scale::Row));
    let mlp = match settings.layers {
        Layers::Int8 => MlpDtype::Int8,
        Layers::F32 | Layers::F16 => MlpDtype::F32,
    };
    let config = Config::new(
        source.table_rows(),
        source.dim() as u32,
        source.bottom().as_slice(),
        &source.top().as_slice()[1..],
        source.dense_transform(),
        table_dtype,
    )
    .and_then(|c| c.with_mlp_dtype(mlp))
    .map_err(|e| anyhow::anyhow!("the model does not fit the format: {e}"))?;
    let mut writer = ModelWriter::new(&config);
    let mut info = Ok(());
    file.each_metadata(|key, value| {
        if info.is_ok() {
            info = match writer.info(key, value) {
                Err(WriteError::ReservedKey(_)) | Ok(_) => Ok(()),
                Err(e) => Err(e),
            };
        }
    });
    info.map_err(|e| anyhow::anyhow!("{e}"))?;
    let d = source.dim();
    let mut shapes = Vec::new();
    for t in 0..source.num_tables() {
        let table = file.table(t);
        if settings.tables.is_none() {
            writer.tensor(format!("emb.{t}.weight"), owned(&table.weight, file, t));
            for (part, tensor) in [("scale", table.scale), ("offset", table.offset)] {
                if let Some(tensor) = tensor {
                    writer.tensor(format!("emb.{t}.{part}"), owned_1d(&tensor));
                }
            }
            continue;
        }
        let rows = source.table_rows()[t] as usize;
        let values: Vec<f32> = (0..rows)
            .flat_map(|r| forward::table_row(file, t, r))
            .collect();
        for (name, tensor) in table_tensors(t, &values, d, table_dtype, int8_scale) {
            writer.tensor(name, tensor);
        }
    }
    for (group, widths, ranges) in [
        ("bottom", source.bottom(), ranges.map(|r| &r.bottom)),
        ("top", source.top(), ranges.map(|r| &r.top)),
    ] {
        for l in 0..widths.layers() {
            let layer = if group == "bottom" {
                file.bottom_layer(l)
            } else {
                file.top_layer(l)
            };
            let (inputs, outputs) = widths.layer(l);
            let (weight, bias) = (forward::floats(&layer.weight), forward::floats(&layer.bias));
            let name = |part: &str| format!("{group}.{l}.{part}");
            match settings.layers {
                Layers::F32 => {
                    writer.tensor(
                        name("weight"),
                        OwnedTensor::f32(&[outputs, inputs], &weight),
                    );
                    writer.tensor(name("bias"), OwnedTensor::f32(&[outputs], &bias));
                }
                Layers::F16 => {
                    writer.tensor(name("weight"), half_tensor(&[outputs, inputs], &weight));
                    writer.tensor(name("bias"), half_tensor(&[outputs], &bias));
                }
                Layers::Int8 => {
                    let range = ranges
                        .and_then(|r| r.get(l))
                        .context("int8 layers need calibration ranges")?;
                    let (q, per_column) = choose_int8_layer(
                        &weight,
                        &bias,
                        range,
                        settings.input_scale,
                        settings.clip,
                    );
                    shapes.push(format!(
                        "{group}.{l}:{}",
                        if per_column { "column" } else { "tensor" }
                    ));
                    writer
                        .tensor(name("weight"), q.weight)
                        .tensor(name("bias"), q.bias)
                        .tensor(name("acc_scale"), q.acc_scale)
                        .tensor(name("input_inv_scale"), q.input_inv_scale)
                        .tensor(name("input_zero"), q.input_zero);
                }
            }
        }
    }
    if !shapes.is_empty() {
        writer
            .info("quant.input_shapes", shapes.join(","))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(writer)
}

/// A table's weight tensor as stored, owned.
fn owned(t: &mlet_formats::Tensor<'_>, file: &ModelFile<'_>, table: usize) -> OwnedTensor {
    let config = file.config();
    let rows = config.table_rows()[table] as usize;
    let width = config.embedding_dtype().row_bytes(config.dim()) / t.dtype.size();
    owned_shaped(t, &[rows, width])
}

/// A 1-dimensional tensor as stored, owned.
fn owned_1d(t: &mlet_formats::Tensor<'_>) -> OwnedTensor {
    owned_shaped(t, &[t.len()])
}

fn owned_shaped(t: &mlet_formats::Tensor<'_>, shape: &[usize]) -> OwnedTensor {
    match t.dtype {
        Dtype::F32 => OwnedTensor::f32(shape, &forward::floats(t)),
        Dtype::F16 => {
            let bits: Vec<u16> = t
                .bytes
                .chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
                .collect();
            OwnedTensor::f16_bits(shape, &bits)
        }
        Dtype::U8 => OwnedTensor::u8(shape, t.bytes.to_vec()),
        Dtype::I8 => {
            let codes: Vec<i8> = t.bytes.iter().map(|&b| b as i8).collect();
            OwnedTensor::i8(shape, &codes)
        }
    }
}

fn half_tensor(shape: &[usize], values: &[f32]) -> OwnedTensor {
    let bits: Vec<u16> = values.iter().map(|&v| f16::from_f32(v).to_bits()).collect();
    OwnedTensor::f16_bits(shape, &bits)
}

/// What a re-export did: the AUC (and the rest) of both models on the same rows, and the bytes
/// of both files by part.
#[derive(Clone, Debug)]
pub struct Report {
    /// The model as it came.
    pub before: Metrics,
    /// The re-stored model.
    pub after: Metrics,
    /// Bytes by part before.
    pub before_bytes: FileSizes,
    /// Bytes by part after.
    pub after_bytes: FileSizes,
    /// The rows both were scored on.
    pub rows: String,
}

/// Re-stores the model file `source` by `settings` (calibrating int8 layers on `calibration`),
/// scores both files with `mlet-runtime` on `validation`, and records the settings and both
/// AUCs in `quant.*` keys. Returns the new file's bytes (validated) and the report.
pub fn quantize_file(
    source: &[u8],
    settings: &Settings,
    calibration: Option<&Rows>,
    validation: &Rows,
) -> Result<(Vec<u8>, Report)> {
    let file = ModelFile::parse(source).map_err(|e| anyhow::anyhow!("the model: {e}"))?;
    let ranges = match (settings.layers, calibration) {
        (Layers::Int8, Some(rows)) => Some(calibrate(&file, rows)?),
        (Layers::Int8, None) => bail!("int8 layers need calibration rows"),
        _ => None,
    };
    let mut writer = requantize(&file, settings, ranges.as_ref())?;
    let info = |w: &mut ModelWriter, k: &str, v: String| -> Result<()> {
        w.info(k, v).map(|_| ()).map_err(|e| anyhow::anyhow!("{e}"))
    };
    info(
        &mut writer,
        "quant.mlp_dtype",
        settings.layers.as_str().into(),
    )?;
    if let (Some(rows), Some(ranges)) = (calibration, &ranges) {
        info(
            &mut writer,
            "quant.calibration",
            format!("{rows} ({} rows)", ranges.rows),
        )?;
        info(
            &mut writer,
            "quant.input_scale",
            format!(
                "{} (quantiles {} and {}, widened to hold 0)",
                settings.input_scale,
                settings.clip,
                1.0 - settings.clip
            ),
        )?;
    }
    let draft = writer
        .to_bytes()
        .map_err(|e| anyhow::anyhow!("cannot build the quantized model: {e}"))?;
    let score = |bytes: &[u8]| -> Result<Metrics> {
        let (p, y) = score_file(
            bytes,
            &validation.spec,
            validation.range.clone(),
            validation.options,
        )?;
        if p.is_empty() {
            bail!("no validation rows in {validation}");
        }
        Ok(Metrics::compute(&p, &y))
    };
    let (before, after) = (score(source)?, score(&draft)?);
    info(
        &mut writer,
        "quant.source_auc",
        format!("{:.6}", before.auc),
    )?;
    info(&mut writer, "quant.auc", format!("{:.6}", after.auc))?;
    info(&mut writer, "quant.auc_rows", validation.to_string())?;
    let bytes = writer
        .to_bytes()
        .map_err(|e| anyhow::anyhow!("cannot build the quantized model: {e}"))?;
    let sizes = |b: &[u8]| -> Result<FileSizes> {
        let f = ModelFile::parse(b).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(FileSizes::of(&f))
    };
    let report = Report {
        before,
        after,
        before_bytes: sizes(source)?,
        after_bytes: sizes(&bytes)?,
        rows: validation.to_string(),
    };
    Ok((bytes, report))
}
