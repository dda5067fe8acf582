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

use std::path::Path;

use anyhow::{bail, Context, Result};
use half::f16;
use mlet_formats::writer::{is_free_key, OwnedTensor};
use mlet_formats::{Config, EmbeddingDtype, MlpDtype, ModelFile};

pub use forward::{InputRange, Ranges};
pub use layers::{affine, choose_int8_layer, int8_layer, InputScale};

use crate::data::{BatchStream, DataSpec, ReadOptions};
use crate::export::tables::TableSource;
use crate::export::{metadata_text, FileSizes, Int8Scale, ModelPlan};
use crate::metrics::Metrics;
use crate::score::{score_file, with_model_schema};

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
    let spec = with_model_schema(&rows.spec, file, rows.options.require_labels)?;
    let schema = spec.schema()?;
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
    let mut stream = BatchStream::spawn(&spec, rows.options, rows.range.clone(), 1024)?;
    while let Some(batch) = stream.next_batch()? {
        forward.observe(&batch.dense, &batch.ids, &mut ranges);
    }
    if ranges.rows == 0 {
        bail!("no calibration rows in {rows}");
    }
    Ok(ranges)
}

/// The plan of `file` re-stored by `settings`; `ranges` (from [`calibrate`]) are needed for
/// int8 layers. Free metadata is kept; tables kept as they are come from `file` as stored,
/// others are encoded again from its rows ([`ModelPlan::write`] with `file` as the source).
pub fn requantize<'a>(
    file: &ModelFile<'a>,
    settings: &Settings,
    ranges: Option<&Ranges>,
) -> Result<ModelPlan<'a>> {
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
    let mut plan = ModelPlan::new(config, int8_scale);
    let mut info = Vec::new();
    file.each_metadata(|key, value| {
        if is_free_key(key) {
            info.push((key.to_string(), metadata_text(value)));
        }
    });
    for (key, value) in info {
        plan.info(&key, value)?;
    }
    if settings.tables.is_some() {
        plan.tables();
    } else {
        let width = source.embedding_dtype().row_bytes(source.dim());
        for t in 0..source.num_tables() {
            let table = file.table(t);
            let rows = source.table_rows()[t] as usize;
            let weight_width = width / table.weight.dtype.size();
            plan.borrowed(
                format!("emb.{t}.weight"),
                &table.weight,
                vec![rows, weight_width],
            );
            for (part, tensor) in [("scale", table.scale), ("offset", table.offset)] {
                if let Some(tensor) = tensor {
                    plan.borrowed(format!("emb.{t}.{part}"), &tensor, vec![tensor.len()]);
                }
            }
        }
    }
    let mut shapes = Vec::new();
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
                    plan.tensor(
                        name("weight"),
                        OwnedTensor::f32(&[outputs, inputs], &weight),
                    );
                    plan.tensor(name("bias"), OwnedTensor::f32(&[outputs], &bias));
                }
                Layers::F16 => {
                    plan.tensor(name("weight"), half_tensor(&[outputs, inputs], &weight));
                    plan.tensor(name("bias"), half_tensor(&[outputs], &bias));
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
                    plan.tensor(name("weight"), q.weight);
                    plan.tensor(name("bias"), q.bias);
                    plan.tensor(name("acc_scale"), q.acc_scale);
                    plan.tensor(name("input_inv_scale"), q.input_inv_scale);
                    plan.tensor(name("input_zero"), q.input_zero);
                }
            }
        }
    }
    if !shapes.is_empty() {
        plan.info("quant.input_shapes", shapes.join(","))?;
    }
    Ok(plan)
}

/// A model file's tables, dequantized row by row: what a re-export encodes again.
impl TableSource for ModelFile<'_> {
    fn rows(&self, t: usize, start: usize, len: usize) -> Result<Vec<f32>> {
        Ok((start..start + len)
            .flat_map(|r| forward::table_row(self, t, r))
            .collect())
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

/// Re-stores the model file at `source` by `settings` (calibrating int8 layers on
/// `calibration`) into `out`, streamed (tables a chunk of rows at a time; the source is read
/// through a memory map), records the settings in `quant.*` keys, and scores both files with
/// `mlet-runtime` on `validation`.
pub fn quantize_file(
    source: &Path,
    settings: &Settings,
    calibration: Option<&Rows>,
    validation: &Rows,
    out: &Path,
) -> Result<Report> {
    let source_map = map(source)?;
    let file = ModelFile::parse(&source_map).map_err(|e| anyhow::anyhow!("the model: {e}"))?;
    let ranges = match (settings.layers, calibration) {
        (Layers::Int8, Some(rows)) => Some(calibrate(&file, rows)?),
        (Layers::Int8, None) => bail!("int8 layers need calibration rows"),
        _ => None,
    };
    let mut plan = requantize(&file, settings, ranges.as_ref())?;
    plan.info("quant.mlp_dtype", settings.layers.as_str())?;
    if let (Some(rows), Some(ranges)) = (calibration, &ranges) {
        plan.info(
            "quant.calibration",
            format!("{rows} ({} rows)", ranges.rows),
        )?;
        plan.info(
            "quant.input_scale",
            format!(
                "{} (quantiles {} and {}, widened to hold 0)",
                settings.input_scale,
                settings.clip,
                1.0 - settings.clip
            ),
        )?;
    }
    let after_bytes = plan.write(out, &file)?;
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
    Ok(Report {
        before: score(&source_map)?,
        after: score(&map(out)?)?,
        before_bytes: FileSizes::of(&file),
        after_bytes,
        rows: validation.to_string(),
    })
}

/// A model file, mapped into memory (read only where it is used: a table re-stored as it was is
/// copied a chunk at a time).
pub fn map(path: &Path) -> Result<memmap2::Mmap> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    // SAFETY: the file is only read; like any tool reading a file, this assumes nothing else
    // truncates it meanwhile (then the mapping's pages would fault).
    unsafe { memmap2::Mmap::map(&file) }.with_context(|| format!("cannot read {}", path.display()))
}
