//! Training checkpoints: one safetensors file holding the model's parameters, the optimizer's
//! state, the best weights kept so far, where training stands (epoch, next row, step) and the
//! settings that shape the run.
//!
//! Both ways stream: a checkpoint is written tensor by tensor in blocks of rows
//! (`mlet_formats::stream`, atomically, so an interrupted write leaves the previous checkpoint
//! whole), and read back by reading only its header first, then each tensor's rows in blocks
//! straight into the parameters they restore ([`TensorSource`]). Neither holds a second copy of
//! the tables, which may be most of the machine's memory.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use candle_core::{Device, Tensor};
use mlet_formats::stream::{write_file, Layout};
use mlet_formats::Dtype;

/// Where training stands.
#[derive(Clone, Debug, PartialEq)]
pub struct Position {
    /// Epoch in progress (from 0).
    pub epoch: usize,
    /// Row of the training data the next batch starts at.
    pub next_row: u64,
    /// Steps taken.
    pub step: u64,
}

/// What a checkpoint holds besides its tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// Where training stands.
    pub position: Position,
    /// Settings of the run (`key` -> value); a resumed run must have the same.
    pub settings: Vec<(String, String)>,
    /// Free values (best AUC and its step, ...).
    pub info: HashMap<String, String>,
}

/// Marks a safetensors file as an mlet checkpoint.
const MARK: &str = "mlet-checkpoint";

/// Values per block when a tensor is copied: 4 MB of f32.
const BLOCK_VALUES: usize = 1 << 20;

/// Rows of a tensor of `shape` per block of about [`BLOCK_VALUES`] values (at least one).
fn block_rows(shape: &[usize]) -> usize {
    let row: usize = shape.iter().skip(1).product();
    (BLOCK_VALUES / row.max(1)).max(1)
}

/// Named f32 tensors whose rows (along the first dimension) can be read a block at a time, so
/// that large tables are restored in place without a second copy.
pub trait TensorSource {
    /// The shape of tensor `name`, if there is one.
    fn shape(&self, name: &str) -> Option<Vec<usize>>;
    /// Rows `start..start + rows` of tensor `name`, on `device`.
    fn rows(&mut self, name: &str, start: usize, rows: usize, device: &Device) -> Result<Tensor>;

    /// Copies tensor `name` into rows `at..` of `target` (whose other dimensions match), a block
    /// at a time; `like` is the shape the tensor must have.
    fn read_into(&mut self, name: &str, like: &[usize], target: &Tensor, at: usize) -> Result<()> {
        let shape = self
            .shape(name)
            .with_context(|| format!("tensor `{name}` is missing"))?;
        if shape != like {
            bail!("tensor `{name}` has shape {shape:?}, the model needs {like:?}");
        }
        let n = shape.first().copied().unwrap_or(1);
        let step = block_rows(&shape);
        for start in (0..n).step_by(step) {
            let rows = self.rows(name, start, step.min(n - start), target.device())?;
            target.slice_set(&rows, 0, at + start)?;
        }
        Ok(())
    }

    /// Tensor `name` whole, which must have shape `like`.
    fn read(&mut self, name: &str, like: &[usize], device: &Device) -> Result<Tensor> {
        let shape = self
            .shape(name)
            .with_context(|| format!("tensor `{name}` is missing"))?;
        if shape != like {
            bail!("tensor `{name}` has shape {shape:?}, the model needs {like:?}");
        }
        self.rows(name, 0, shape.first().copied().unwrap_or(1), device)
    }
}

/// Tensors in memory (the best weights kept during a run).
impl TensorSource for HashMap<String, Tensor> {
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.get(name).map(|t| t.dims().to_vec())
    }

    fn rows(&mut self, name: &str, start: usize, rows: usize, device: &Device) -> Result<Tensor> {
        let t = self
            .get(name)
            .with_context(|| format!("tensor `{name}` is missing"))?;
        let part = if t.rank() == 0 {
            t.clone()
        } else {
            t.narrow(0, start, rows)?
        };
        Ok(part.to_device(device)?.contiguous()?)
    }
}

impl Checkpoint {
    /// Writes the checkpoint with `tensors` (f32, any device) to `path` atomically, a block of
    /// rows at a time.
    pub fn save(&self, path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
        let mut meta: Vec<(String, String)> = vec![
            ("format".into(), MARK.into()),
            ("epoch".into(), self.position.epoch.to_string()),
            ("next_row".into(), self.position.next_row.to_string()),
            ("step".into(), self.position.step.to_string()),
        ];
        meta.extend(
            self.settings
                .iter()
                .map(|(k, v)| (format!("setting.{k}"), v.clone())),
        );
        meta.extend(
            self.info
                .iter()
                .map(|(k, v)| (format!("info.{k}"), v.clone())),
        );
        let by_name: HashMap<&str, &Tensor> =
            tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let plan = tensors
            .iter()
            .map(|(n, t)| (n.clone(), Dtype::F32, t.dims().to_vec()))
            .collect();
        let layout = Layout::new(&meta, plan).map_err(anyhow::Error::msg)?;
        let write = write_file::<anyhow::Error>(
            path,
            &layout,
            |planned, out| {
                let t = by_name[planned.name.as_str()];
                let flat = t.flatten_all()?;
                let mut bytes = Vec::new();
                let n = flat.dim(0)?;
                for start in (0..n).step_by(BLOCK_VALUES) {
                    let block = flat.narrow(0, start, BLOCK_VALUES.min(n - start))?;
                    bytes.clear();
                    bytes.extend(block.to_vec1::<f32>()?.iter().flat_map(|v| v.to_le_bytes()));
                    out.write_all(&bytes)?;
                }
                Ok(())
            },
            |_| Ok(()),
        );
        write.with_context(|| format!("cannot write checkpoint {}", path.display()))
    }
}

/// A checkpoint file opened for reading: its header is read, its tensors are read on demand.
pub struct CheckpointReader {
    path: PathBuf,
    file: File,
    /// Where the data section starts in the file.
    data_start: u64,
    /// Each tensor's shape and byte range in the data section.
    tensors: HashMap<String, (Vec<usize>, u64, u64)>,
    /// What the checkpoint says besides its tensors.
    pub checkpoint: Checkpoint,
}

impl CheckpointReader {
    /// Opens a checkpoint written by [`Checkpoint::save`] and reads its header.
    pub fn open(path: &Path) -> Result<CheckpointReader> {
        let what = || format!("checkpoint {}", path.display());
        let mut file = File::open(path).with_context(|| format!("cannot read {}", what()))?;
        let file_len = file.metadata()?.len();
        let not_safetensors = || format!("{} is not a safetensors file", what());
        let mut prefix = [0u8; 8];
        file.read_exact(&mut prefix).with_context(not_safetensors)?;
        let header_len = u64::from_le_bytes(prefix);
        ensure!(
            header_len <= (100 << 20) && 8 + header_len <= file_len,
            "{} (header length {header_len})",
            not_safetensors()
        );
        let mut header = vec![0u8; header_len as usize];
        file.read_exact(&mut header).with_context(not_safetensors)?;
        let header: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&header).with_context(not_safetensors)?;
        let data_start = 8 + header_len;
        let meta: HashMap<String, String> = header
            .get("__metadata__")
            .and_then(|m| m.as_object())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        if meta.get("format").map(String::as_str) != Some(MARK) {
            bail!(
                "{} is not an mlet checkpoint (metadata `format` is not `{MARK}`)",
                what()
            );
        }
        let mut tensors = HashMap::new();
        for (name, info) in header.iter().filter(|(k, _)| *k != "__metadata__") {
            let bad = || format!("{}: tensor `{name}` has a malformed entry", what());
            let dtype = info["dtype"].as_str().with_context(bad)?;
            ensure!(dtype == "F32", "{}: tensor `{name}` is not F32", what());
            let shape: Vec<usize> = info["shape"]
                .as_array()
                .with_context(bad)?
                .iter()
                .map(|d| d.as_u64().map(|d| d as usize))
                .collect::<Option<_>>()
                .with_context(bad)?;
            let offsets = info["data_offsets"].as_array().with_context(bad)?;
            let (begin, end) = match offsets.as_slice() {
                [b, e] => (b.as_u64().with_context(bad)?, e.as_u64().with_context(bad)?),
                _ => bail!(bad()),
            };
            let elements: usize = shape.iter().product();
            ensure!(
                begin <= end
                    && end - begin == 4 * elements as u64
                    && data_start + end <= file_len,
                "{}: tensor `{name}`'s bytes do not match its shape or lie past the end of the file",
                what()
            );
            tensors.insert(name.clone(), (shape, begin, end));
        }
        let number = |key: &str| -> Result<u64> {
            meta.get(key)
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("{}: metadata `{key}` is missing or not a number", what()))
        };
        let position = Position {
            epoch: number("epoch")? as usize,
            next_row: number("next_row")?,
            step: number("step")?,
        };
        let mut settings: Vec<(String, String)> = meta
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("setting.")
                    .map(|k| (k.to_string(), v.clone()))
            })
            .collect();
        settings.sort();
        let info = meta
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("info.").map(|k| (k.to_string(), v.clone())))
            .collect();
        Ok(CheckpointReader {
            path: path.to_path_buf(),
            file,
            data_start,
            tensors,
            checkpoint: Checkpoint {
                position,
                settings,
                info,
            },
        })
    }
}

impl TensorSource for CheckpointReader {
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.tensors.get(name).map(|(shape, _, _)| shape.clone())
    }

    fn rows(&mut self, name: &str, start: usize, rows: usize, device: &Device) -> Result<Tensor> {
        let (shape, begin, _) = self
            .tensors
            .get(name)
            .with_context(|| format!("checkpoint {}: no tensor `{name}`", self.path.display()))?;
        let row: usize = shape.iter().skip(1).product();
        let mut bytes = vec![0u8; rows * row * 4];
        self.file
            .seek(SeekFrom::Start(
                self.data_start + begin + (start * row * 4) as u64,
            ))
            .and_then(|_| self.file.read_exact(&mut bytes))
            .with_context(|| format!("cannot read checkpoint {}", self.path.display()))?;
        let values: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let mut dims = shape.clone();
        if let Some(first) = dims.first_mut() {
            *first = rows;
        }
        Ok(Tensor::from_vec(values, dims, device)?)
    }
}
