//! Collapse, quantize and export a trained model as a model file, streamed: the header is laid
//! out first (`mlet_formats::stream`), then each table is collapsed (MLET: E_t = A_t P_t),
//! checked, encoded and written [`COLLAPSE_CHUNK`] rows at a time straight into the file
//! ([`tables`] says how each dtype is stored), so exporting takes one chunk of memory besides
//! the model, whatever the size of the tables. [`crate::quantize`] writes its re-exports through
//! the same [`ModelPlan`].
//!
//! A value that is not finite stops the export, naming the tensor, row and column. The file is
//! written to a temporary file, which is checked against every rule of the reader (through a
//! memory map: only its header is read) before it replaces the target, so a failed export leaves
//! an earlier file as it was.
//!
//! [`COLLAPSE_CHUNK`]: crate::model::COLLAPSE_CHUNK

pub mod tables;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use mlet_formats::stream::{write_file, Layout};
use mlet_formats::writer::{format_metadata, is_free_key, OwnedTensor};
use mlet_formats::{Config, DenseTransform, Dtype, EmbeddingDtype, ModelFile};

use crate::model::{Dlrm, Linear};
use tables::{check_finite, Encoding, Part, TableSource};

pub use tables::{quantize, Quantized};

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
    /// MLP layers (weights, biases, and the scales of int8 layers).
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
        let header = 8 + file.header_len();
        // Tensors tile the data section: the layers hold what the tables do not.
        FileSizes {
            total: header + file.data_len(),
            tables,
            mlp: file.data_len() - tables,
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

/// A metadata value as text: a model file holds each value as a JSON string, whose raw form
/// (what `mlet_formats::ModelFile::metadata` returns) keeps its escapes, e.g. `\"` in a stored
/// schema.
pub fn metadata_text(raw: &str) -> String {
    serde_json::from_str(&format!("\"{raw}\"")).unwrap_or_else(|_| raw.to_string())
}

/// Where a tensor's bytes come from.
enum Piece<'a> {
    /// A part of a table, encoded from a [`TableSource`] a chunk at a time.
    Table(Part, usize),
    /// Bytes in memory (an MLP tensor: small).
    Owned(Vec<u8>),
    /// Bytes of another file, as stored (a table kept as it was).
    Borrowed(&'a [u8]),
}

/// A model file to be written: its configuration, metadata and tensors, each with where its
/// bytes come from.
pub struct ModelPlan<'a> {
    config: Config,
    metadata: BTreeMap<String, String>,
    tensors: Vec<(String, Dtype, Vec<usize>, Piece<'a>)>,
    encoding: Encoding,
}

impl<'a> ModelPlan<'a> {
    /// A file of `config` whose tables are stored by `scale` (its table dtype is the
    /// configuration's); tensors are added next.
    pub fn new(config: Config, scale: Int8Scale) -> ModelPlan<'a> {
        ModelPlan {
            config,
            metadata: format_metadata(&config).into_iter().collect(),
            tensors: Vec::new(),
            encoding: Encoding {
                dtype: config.embedding_dtype(),
                scale,
            },
        }
    }

    /// Adds a free information key (a key given twice keeps its last value).
    pub fn info(&mut self, key: &str, value: impl fmt::Display) -> Result<()> {
        if !is_free_key(key) {
            bail!("metadata key `{key}` is reserved by the format");
        }
        self.metadata.insert(key.to_string(), value.to_string());
        Ok(())
    }

    /// Adds every table, encoded from the [`TableSource`] given to [`ModelPlan::write`].
    pub fn tables(&mut self) {
        let d = self.config.dim();
        for (t, &n) in self.config.table_rows().iter().enumerate() {
            for (name, dtype, shape, part) in self.encoding.tensors(t, n as usize, d) {
                self.tensors
                    .push((name, dtype, shape, Piece::Table(part, t)));
            }
        }
    }

    /// Adds a tensor held in memory.
    pub fn tensor(&mut self, name: String, tensor: OwnedTensor) {
        let (dtype, shape) = (tensor.dtype(), tensor.shape().to_vec());
        self.tensors
            .push((name, dtype, shape, Piece::Owned(tensor.bytes().to_vec())));
    }

    /// Adds a tensor of another file, as stored.
    pub fn borrowed(&mut self, name: String, tensor: &mlet_formats::Tensor<'a>, shape: Vec<usize>) {
        self.tensors
            .push((name, tensor.dtype, shape, Piece::Borrowed(tensor.bytes)));
    }

    /// Writes the file to `path` (streamed, checked, atomically; see the module doc), its tables
    /// from `source`, and returns its sizes.
    pub fn write(self, path: &Path, source: &dyn TableSource) -> Result<FileSizes> {
        let d = self.config.dim();
        let rows = |t: usize| self.config.table_rows()[t] as usize;
        // One (scale, offset) per table takes the whole table's range: one pass before writing.
        let params = (0..self.config.num_tables())
            .map(|t| self.encoding.table_params(source, t, rows(t), d))
            .collect::<Result<Vec<_>>>()?;
        let metadata: Vec<(String, String)> = self.metadata.into_iter().collect();
        let plan = self
            .tensors
            .iter()
            .map(|(n, dtype, shape, _)| (n.clone(), *dtype, shape.clone()))
            .collect();
        let layout = Layout::new(&metadata, plan).map_err(anyhow::Error::msg)?;
        let pieces: BTreeMap<&str, &Piece<'_>> = self
            .tensors
            .iter()
            .map(|(n, _, _, piece)| (n.as_str(), piece))
            .collect();
        let mut sizes = None;
        let written = write_file::<anyhow::Error>(
            path,
            &layout,
            |tensor, out| match pieces[tensor.name.as_str()] {
                Piece::Table(part, t) => {
                    self.encoding
                        .write(*part, source, *t, rows(*t), d, params[*t], out)
                }
                Piece::Owned(bytes) => Ok(out.write_all(bytes)?),
                Piece::Borrowed(bytes) => {
                    for chunk in bytes.chunks(1 << 20) {
                        out.write_all(chunk)?;
                    }
                    Ok(())
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
}

/// A trained model's tables as stored: collapsed (MLET) chunk by chunk.
impl TableSource for Dlrm {
    fn rows(&self, t: usize, start: usize, len: usize) -> Result<Vec<f32>> {
        Ok(self
            .collapsed_rows(t, start, len)?
            .flatten_all()?
            .to_vec1()?)
    }
}

/// The configuration of `model`'s file with `dtype` tables and F32 layers.
pub fn config_of(model: &Dlrm, dtype: EmbeddingDtype) -> Result<Config> {
    let spec = &model.spec;
    let as_u32 = |v: &[usize]| v.iter().map(|&x| x as u32).collect::<Vec<u32>>();
    Config::new(
        &as_u32(&spec.table_rows),
        spec.dim as u32,
        &as_u32(&spec.bottom_widths()),
        &as_u32(&spec.top_widths()[1..]),
        DenseTransform::Log1p,
        dtype,
    )
    .map_err(|e| anyhow::anyhow!("the model does not fit the format: {e}"))
}

/// Writes the model to `path` with `dtype` tables (scaled by `int8_scale`), F32 layers and
/// `info` as free metadata (streamed, checked, atomically) and returns its sizes.
pub fn export(
    model: &Dlrm,
    dtype: EmbeddingDtype,
    int8_scale: Int8Scale,
    info: &[(String, String)],
    path: &Path,
) -> Result<FileSizes> {
    let mut plan = ModelPlan::new(config_of(model, dtype)?, int8_scale);
    for (key, value) in info {
        plan.info(key, value)?;
    }
    plan.tables();
    for (group, layers) in [("bottom", &model.bottom), ("top", &model.top)] {
        for (l, Linear { weight, bias }) in layers.iter().enumerate() {
            for (part, t) in [("weight", weight), ("bias", bias)] {
                let name = format!("{group}.{l}.{part}");
                let values: Vec<f32> = t.flatten_all()?.to_vec1()?;
                let width = t.dims().last().copied().unwrap_or(1);
                check_finite(&name, &values, width, 0)?;
                plan.tensor(name, OwnedTensor::f32(t.dims(), &values));
            }
        }
    }
    plan.write(path, model)
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
    use half::f16;

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
            (EmbeddingDtype::Int4, Int8Scale::Row),
            (EmbeddingDtype::Int4, Int8Scale::Table),
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
                        let int4 = dtype == EmbeddingDtype::Int4;
                        let q = quantize(values, 3, mode, if int4 { 15 } else { 255 });
                        let codes = if int4 {
                            tables::pack_int4(&q.codes, 3)
                        } else {
                            q.codes.clone()
                        };
                        assert_eq!(
                            table.weight.bytes,
                            &codes[..],
                            "{dtype:?} {mode}, table {t}"
                        );
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
}
