//! One training step with candle's autograd and sparse embedding updates: the path on devices
//! other than the CPU (CUDA), and the oracle the hand-written CPU step is tested against.
//!
//! The batch's rows of all tables are looked up in the model's joined table tensor
//! ([`Dlrm::joined_rows`]) and deduplicated on the host (global row ids never collide across
//! tables). The unique rows are gathered, then spread back to one row per (table, example),
//! outside the graph: that copy [T * B, width] is the leaf `Var` the graph starts from (MLET
//! projects it). After `backward`, its gradient is all the tables get: the optimizer sums it per
//! unique row and adds the update into the joined rows in place, both with
//! [`crate::index_add::index_add_rows`]. No table-sized gradient is ever built, and a step costs
//! the same number of kernels whatever the number of tables.
//!
//! Nothing in a step waits for the device: the ids go up in one copy, and the loss stays on the
//! device as a tensor for the caller to read back when it wants (see `train::LossLog`).

use anyhow::{Context, Result};
use candle_core::{Tensor, Var};

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
    /// it back when needed: reading waits for the device).
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
        Ok(loss.detach())
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

/// Deduplicates ids in order of first appearance with an open-addressing hash table reused
/// across calls.
#[derive(Default)]
pub struct Dedup {
    /// 0: empty; otherwise 1 + the id's index in `unique`.
    slots: Vec<u32>,
}

impl Dedup {
    /// Fills `unique` with the distinct values of `ids` and `inverse` with each id's index
    /// among them.
    pub fn run(&mut self, ids: &[u32], unique: &mut Vec<u32>, inverse: &mut Vec<u32>) {
        let bits = (2 * ids.len()).next_power_of_two().max(16).trailing_zeros();
        let mask = (1usize << bits) - 1;
        self.slots.clear();
        self.slots.resize(mask + 1, 0);
        unique.clear();
        inverse.clear();
        for &id in ids {
            // Fibonacci hashing: the top bits of id times 2^64 / golden ratio.
            let mut slot =
                ((id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize;
            loop {
                match self.slots[slot] {
                    0 => {
                        unique.push(id);
                        self.slots[slot] = unique.len() as u32;
                        inverse.push(unique.len() as u32 - 1);
                        break;
                    }
                    s if unique[s as usize - 1] == id => {
                        inverse.push(s - 1);
                        break;
                    }
                    _ => slot = (slot + 1) & mask,
                }
            }
        }
    }
}

/// Mean binary cross-entropy of `logits` against 0/1 `labels`, in the stable form
/// `max(x, 0) - x y + ln(1 + exp(-|x|))`.
pub fn bce_with_logits(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let softplus_tail = logits.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
    let loss = ((logits.relu()? - (logits * labels)?)? + softplus_tail)?;
    Ok(loss.mean_all()?)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::rng::Rng;

    /// The plain definition: distinct values in order of first appearance, and each value's
    /// index among them.
    fn unique_inverse(ids: &[u32]) -> (Vec<u32>, Vec<u32>) {
        let mut position: HashMap<u32, u32> = HashMap::new();
        let mut unique = Vec::new();
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

    #[test]
    fn dedup_keeps_first_appearance_order() {
        let mut dedup = Dedup::default();
        let (mut unique, mut inverse) = (Vec::new(), Vec::new());
        dedup.run(&[5, 3, 5, 9, 3, 3], &mut unique, &mut inverse);
        assert_eq!(unique, vec![5, 3, 9]);
        assert_eq!(inverse, vec![0, 1, 0, 2, 1, 1]);
        let mut rng = Rng::new(7);
        for (len, range) in [
            (0, 1),
            (1, 1),
            (128, 5),
            (128, 1000),
            (300, u64::MAX),
            (7, 3),
        ] {
            let ids: Vec<u32> = (0..len)
                .map(|_| (rng.next_u64() % range.min(1 << 32)) as u32)
                .collect();
            dedup.run(&ids, &mut unique, &mut inverse);
            assert_eq!((unique.clone(), inverse.clone()), unique_inverse(&ids));
        }
    }
}
