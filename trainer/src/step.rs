//! One training step with sparse embedding updates.
//!
//! Per table, the batch's rows are deduplicated (unique ids plus each example's index into
//! them); the unique rows are gathered into a detached leaf `Var` [U, width]; inside the graph
//! the leaf is projected (MLET) and expanded back to the batch with `index_select(inverse)`.
//! After `backward`, the leaf's gradient [U, width] is all the table gets: the optimizer adds the
//! update into the table in place. No table-sized gradient is ever built.

use std::collections::HashMap;

use anyhow::{Context, Result};
use candle_core::{Tensor, Var};

use crate::data::Batch;
use crate::model::Dlrm;
use crate::optim::Optimizer;

/// The rows of one table that a batch touches.
pub struct TouchedRows {
    /// Distinct row ids, in order of first appearance [U] (u32).
    pub unique: Tensor,
    /// For each example, its position in `unique` [B] (u32).
    pub inverse: Tensor,
    /// A copy of the unique rows [U, width]; the gradient lands here.
    pub leaf: Var,
}

/// Distinct values of `ids` in order of first appearance, and each id's index among them.
pub fn unique_inverse(ids: &[u32]) -> (Vec<u32>, Vec<u32>) {
    let mut position: HashMap<u32, u32> = HashMap::with_capacity(ids.len());
    let mut unique = Vec::with_capacity(ids.len());
    let inverse = ids
        .iter()
        .map(|&id| {
            *position.entry(id).or_insert_with(|| {
                unique.push(id);
                unique.len() as u32 - 1
            })
        })
        .collect();
    (unique, inverse)
}

/// Gathers the rows each table's ids touch (see the module doc).
pub fn gather_touched(model: &Dlrm, row_ids: &[Vec<u32>]) -> Result<Vec<TouchedRows>> {
    let device = model.device();
    row_ids
        .iter()
        .zip(&model.tables)
        .map(|(ids, table)| {
            let (unique, inverse) = unique_inverse(ids);
            let (u, b) = (unique.len(), inverse.len());
            let unique = Tensor::from_vec(unique, u, device)?;
            let inverse = Tensor::from_vec(inverse, b, device)?;
            let leaf = Var::from_tensor(&table.rows.index_select(&unique, 0)?)?;
            Ok(TouchedRows {
                unique,
                inverse,
                leaf,
            })
        })
        .collect()
}

/// Logits [B] computed from the gathered rows.
pub fn forward_touched(model: &Dlrm, dense: &Tensor, touched: &[TouchedRows]) -> Result<Tensor> {
    let embeddings = touched
        .iter()
        .enumerate()
        .map(|(t, rows)| {
            Ok(model
                .project(t, rows.leaf.as_tensor())?
                .index_select(&rows.inverse, 0)?)
        })
        .collect::<Result<Vec<_>>>()?;
    model.forward(dense, &embeddings)
}

/// Mean binary cross-entropy of `logits` against 0/1 `labels`, in the stable form
/// `max(x, 0) - x y + ln(1 + exp(-|x|))`.
pub fn bce_with_logits(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let softplus_tail = logits.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
    let loss = ((logits.relu()? - (logits * labels)?)? + softplus_tail)?;
    Ok(loss.mean_all()?)
}

/// One step on `batch`: forward from the touched rows, backward, optimizer update. Returns the
/// batch's mean loss before the update.
pub fn train_step(model: &Dlrm, optimizer: &mut Optimizer, batch: &Batch) -> Result<f32> {
    let dense = model.dense_input(&batch.dense, batch.len())?;
    let labels = Tensor::from_slice(&batch.labels, batch.len(), model.device())?;
    let touched = gather_touched(model, &model.row_ids(batch))?;
    let logits = forward_touched(model, &dense, &touched)?;
    let loss = bce_with_logits(&logits, &labels)?;
    let grads = loss.backward()?;
    optimizer
        .step(model, &grads, &touched)
        .context("optimizer step")?;
    Ok(loss.to_scalar::<f32>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_keeps_first_appearance_order() {
        let (u, inv) = unique_inverse(&[5, 3, 5, 9, 3, 3]);
        assert_eq!(u, vec![5, 3, 9]);
        assert_eq!(inv, vec![0, 1, 0, 2, 1, 1]);
        let (u, inv) = unique_inverse(&[]);
        assert!(u.is_empty() && inv.is_empty());
    }
}
