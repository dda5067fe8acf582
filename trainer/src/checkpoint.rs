//! Training checkpoints: one safetensors file holding the model's parameters, the optimizer's
//! state, the best weights kept so far, where training stands (epoch, next row, step) and the
//! settings that shape the run. Written atomically, so an interrupted write leaves the previous
//! checkpoint whole.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use mlet_formats::writer::{write_atomic, OwnedTensor};

/// What a checkpoint holds besides tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct Position {
    /// Epoch in progress (from 0).
    pub epoch: usize,
    /// Row of the training data the next batch starts at.
    pub next_row: u64,
    /// Steps taken.
    pub step: u64,
}

/// A checkpoint in memory.
pub struct Checkpoint {
    /// Where training stands.
    pub position: Position,
    /// Settings of the run (`key` -> value); a resumed run must have the same.
    pub settings: Vec<(String, String)>,
    /// Free values (best AUC and its step, ...).
    pub info: HashMap<String, String>,
    /// Tensors by name.
    pub tensors: HashMap<String, Tensor>,
}

/// Marks a safetensors file as an mlet checkpoint.
const MARK: &str = "mlet-checkpoint";

impl Checkpoint {
    /// Writes the checkpoint to `path` atomically.
    pub fn save(&self, path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
        let mut owned = Vec::with_capacity(tensors.len());
        for (name, t) in tensors {
            let values: Vec<f32> = t.flatten_all()?.to_vec1()?;
            owned.push((name.clone(), OwnedTensor::f32(t.dims(), &values)));
        }
        let mut meta: HashMap<String, String> = HashMap::new();
        meta.insert("format".into(), MARK.into());
        meta.insert("epoch".into(), self.position.epoch.to_string());
        meta.insert("next_row".into(), self.position.next_row.to_string());
        meta.insert("step".into(), self.position.step.to_string());
        for (k, v) in &self.settings {
            meta.insert(format!("setting.{k}"), v.clone());
        }
        for (k, v) in &self.info {
            meta.insert(format!("info.{k}"), v.clone());
        }
        let views = owned.iter().map(|(n, t)| (n.as_str(), t));
        let bytes =
            safetensors::serialize(views, Some(meta)).context("cannot serialize the checkpoint")?;
        write_atomic(path, &bytes)
            .with_context(|| format!("cannot write checkpoint {}", path.display()))
    }

    /// Reads a checkpoint written by [`Checkpoint::save`].
    pub fn load(path: &Path, device: &Device) -> Result<Checkpoint> {
        let what = || format!("checkpoint {}", path.display());
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", what()))?;
        let file = safetensors::SafeTensors::deserialize(&bytes)
            .with_context(|| format!("{} is not a safetensors file", what()))?;
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)?;
        let meta = header.metadata().clone().unwrap_or_default();
        if meta.get("format").map(String::as_str) != Some(MARK) {
            bail!(
                "{} is not an mlet checkpoint (metadata `format` is not `{MARK}`)",
                what()
            );
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
        let mut tensors = HashMap::new();
        for (name, view) in file.tensors() {
            if view.dtype() != safetensors::Dtype::F32 {
                bail!("{}: tensor `{name}` is not F32", what());
            }
            let values: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            tensors.insert(name, Tensor::from_vec(values, view.shape(), device)?);
        }
        Ok(Checkpoint {
            position,
            settings,
            info,
            tensors,
        })
    }
}
