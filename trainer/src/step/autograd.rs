//! One training step with candle's autograd and sparse embedding updates: the path on devices
//! other than the CPU (CUDA), and the oracle the hand-written CPU step is tested against.
//!
//! The batch's rows of all tables are looked up in the model's joined table tensor
//! ([`Dlrm::joined_rows`]) and deduplicated on the host (global row ids never collide across
//! tables). The unique rows are gathered, then spread back to one row per (table, example),
//! outside the graph: that copy [T * B, width] is the leaf `Var` the graph starts from (MLET
//! projects it). After `backward`, its gradient is all the tables get: the optimizer sums it per
//! unique row and adds the update into the joined rows in place, both with
//! [`super::index_add::index_add_rows`]. No table-sized gradient is ever built, and a step costs
//! the same number of kernels whatever the number of tables.
//!
//! Nothing in a step waits for the device: the ids go up in one copy, and the loss stays on the
//! device as a tensor for the caller to read back when it wants (see `train::LossLog`).

use anyhow::{Context, Result};
use candle_core::{Tensor, Var};

use super::dedup::Dedup;
use crate::data::Batch;
use crate::model::Dlrm;
use crate::optim::Optimizer;

/// The rows a batch touches, across all tables.
pub struct TouchedRows {
    /// Distinct rows of [`Dlrm::joined_rows`], in order of first appearance `[U]` (u32).
    pub unique: Tensor,
    /// For each (table, example), table by table, its position in `unique` [T * B] (u32).
    pub inverse: Tensor,
    /// A copy of each (table, example)'s row [T * B, width]; the gradient lands here.
    pub leaf: Var,
}

/// The autograd step, with its host-side buffers reused from step to step.
#[derive(Default)]
pub struct AutogradStep {
    dedup: Dedup,
    /// The batch's rows, then (after dedup) the unique rows followed by the inverse.
    ids: Vec<u32>,
    unique: Vec<u32>,
    inverse: Vec<u32>,
}

impl AutogradStep {
    /// Gathers the rows `batch` touches (see the module doc).
    pub fn gather_touched(&mut self, model: &Dlrm, batch: &Batch) -> Result<TouchedRows> {
        self.ids = model.joined_row_ids(batch);
        self.dedup
            .run(&self.ids, &mut self.unique, &mut self.inverse);
        let (u, n) = (self.unique.len(), self.inverse.len());
        // One host-to-device copy for both index lists.
        self.ids.clear();
        self.ids.extend_from_slice(&self.unique);
        self.ids.extend_from_slice(&self.inverse);
        let both = Tensor::from_slice(&self.ids, u + n, model.device())?;
        let unique = both.narrow(0, 0, u)?;
        let inverse = both.narrow(0, u, n)?;
        let rows = model
            .joined_rows()
            .index_select(&unique, 0)?
            .index_select(&inverse, 0)?;
        let leaf = Var::from_tensor(&rows)?;
        Ok(TouchedRows {
            unique,
            inverse,
            leaf,
        })
    }

    /// One step on `batch`: forward from the touched rows, backward, optimizer update. Returns
    /// the batch's mean loss before the update, as a scalar tensor on the model's device (read
    /// it back when needed: reading waits for the device). The loss is NaN when a touched row
    /// is not finite: candle's ReLU turns NaN into 0, which would hide such rows from the loss.
    pub fn step(
        &mut self,
        model: &Dlrm,
        optimizer: &mut Optimizer,
        batch: &Batch,
    ) -> Result<Tensor> {
        let dense = model.dense_input(&batch.dense, batch.len())?;
        let labels = Tensor::from_slice(&batch.labels, batch.len(), model.device())?;
        let touched = self.gather_touched(model, batch)?;
        let logits = forward_touched(model, &dense, &touched, batch.len())?;
        let loss = bce_with_logits(&logits, &labels)?;
        let grads = loss.backward()?;
        optimizer
            .step(model, &grads, &touched)
            .context("optimizer step")?;
        let rows_probe = touched.leaf.as_tensor().affine(0.0, 0.0)?.sum_all()?;
        Ok((loss.detach() + rows_probe)?)
    }
}

/// Logits `[B]` computed from the gathered rows.
pub fn forward_touched(
    model: &Dlrm,
    dense: &Tensor,
    touched: &TouchedRows,
    batch: usize,
) -> Result<Tensor> {
    model.forward(dense, &model.embed(touched.leaf.as_tensor(), batch)?)
}

/// Mean binary cross-entropy of `logits` against 0/1 `labels`, in the stable form
/// `max(x, 0) - x y + ln(1 + exp(-|x|))`.
pub fn bce_with_logits(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let softplus_tail = logits.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
    let loss = ((logits.relu()? - (logits * labels)?)? + softplus_tail)?;
    Ok(loss.mean_all()?)
}
