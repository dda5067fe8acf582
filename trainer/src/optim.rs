//! Optimizers: SGD and Adagrad, with sparse in-place updates of embedding tables.
//!
//! - SGD: every parameter moves by `-lr * g` (tables only on the rows the batch touched).
//! - Adagrad: tables are row-wise (FBGEMM's `rowwise_adagrad`): one f32 accumulator per row,
//!   `acc_r += mean_j(g_rj^2)`, `row_r -= lr * g_r / (sqrt(acc_r) + eps)`; accumulators and rows
//!   are updated in place on the touched rows only. MLP weights and biases and MLET projections
//!   (small and dense) use element-wise Adagrad with the same lr and eps.
//!
//! Table updates use `Tensor::scatter_add_set` on the deduplicated row ids, so nothing the size
//! of a table is allocated per step.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use anyhow::{bail, ensure, Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor};

use crate::cpu::write_f32;
use crate::model::Dlrm;
use crate::step::TouchedRows;

/// Added to the root of the Adagrad accumulator.
pub const ADAGRAD_EPS: f64 = 1e-8;

/// Which optimizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerKind {
    /// Plain SGD.
    Sgd,
    /// Row-wise Adagrad for tables, element-wise for the rest.
    Adagrad,
}

impl FromStr for OptimizerKind {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "sgd" => Ok(OptimizerKind::Sgd),
            "adagrad" => Ok(OptimizerKind::Adagrad),
            _ => bail!("unknown optimizer `{s}` (expected sgd or adagrad)"),
        }
    }
}

impl fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adagrad => "adagrad",
        })
    }
}

/// Optimizer settings and state.
pub struct Optimizer {
    kind: OptimizerKind,
    lr: f64,
    /// Adagrad: one accumulator per dense parameter, in `Dlrm::dense_params` order.
    dense_acc: Vec<Tensor>,
    /// Adagrad: one accumulator per table row, [n_t, 1].
    row_acc: Vec<Tensor>,
}

impl Optimizer {
    /// A fresh optimizer for `model`.
    pub fn new(kind: OptimizerKind, lr: f64, model: &Dlrm) -> Result<Optimizer> {
        let (mut dense_acc, mut row_acc) = (Vec::new(), Vec::new());
        if kind == OptimizerKind::Adagrad {
            for p in model.dense_params() {
                dense_acc.push(p.as_tensor().zeros_like()?);
            }
            for table in &model.tables {
                row_acc.push(Tensor::zeros(
                    (table.rows.dim(0)?, 1),
                    DType::F32,
                    model.device(),
                )?);
            }
        }
        Ok(Optimizer {
            kind,
            lr,
            dense_acc,
            row_acc,
        })
    }

    /// Applies one update from `grads`; tables only on the `touched` rows.
    pub fn step(&mut self, model: &Dlrm, grads: &GradStore, touched: &[TouchedRows]) -> Result<()> {
        for (i, param) in model.dense_params().into_iter().enumerate() {
            let g = grads
                .get(param)
                .context("a dense parameter got no gradient")?;
            let update = match self.kind {
                OptimizerKind::Sgd => (g * self.lr)?,
                OptimizerKind::Adagrad => {
                    let acc = (&self.dense_acc[i] + g.sqr()?)?;
                    let update = (g * self.lr)?.div(&acc.sqrt()?.affine(1.0, ADAGRAD_EPS)?)?;
                    self.dense_acc[i] = acc;
                    update
                }
            };
            param.set(&(param.as_tensor() - update)?)?;
        }
        for (t, rows) in touched.iter().enumerate() {
            let g = grads
                .get(rows.leaf.as_tensor())
                .context("a table got no gradient")?;
            let (u, width) = g.dims2()?;
            let step = match self.kind {
                OptimizerKind::Sgd => (g * -self.lr)?,
                OptimizerKind::Adagrad => {
                    let ids = rows.unique.unsqueeze(1)?;
                    let mean_sq = g.sqr()?.mean_keepdim(1)?;
                    self.row_acc[t].scatter_add_set(&ids, &mean_sq, 0)?;
                    let acc = self.row_acc[t].index_select(&rows.unique, 0)?;
                    let denom = acc.sqrt()?.affine(1.0, ADAGRAD_EPS)?;
                    (g * -self.lr)?.broadcast_div(&denom)?
                }
            };
            let ids = rows
                .unique
                .unsqueeze(1)?
                .broadcast_as((u, width))?
                .contiguous()?;
            model.tables[t].rows.scatter_add_set(&ids, &step, 0)?;
        }
        Ok(())
    }

    /// The CPU step's update of one dense parameter, in place: `param` is number `index` of
    /// [`Dlrm::dense_params`] and `grad` its gradient, flattened. Same arithmetic as
    /// [`Optimizer::step`].
    pub fn update_dense_cpu(&mut self, index: usize, param: &Tensor, grad: &[f32]) -> Result<()> {
        ensure!(
            param.elem_count() == grad.len(),
            "a gradient of {} values for a parameter of {}",
            grad.len(),
            param.elem_count()
        );
        let lr = self.lr as f32;
        match self.kind {
            OptimizerKind::Sgd => write_f32(param, |p| {
                for (p, &g) in p.iter_mut().zip(grad) {
                    *p -= g * lr;
                }
            }),
            OptimizerKind::Adagrad => write_f32(&self.dense_acc[index], |acc| {
                write_f32(param, |p| {
                    for ((p, a), &g) in p.iter_mut().zip(acc.iter_mut()).zip(grad) {
                        *a += g * g;
                        *p -= (g * lr) / (a.sqrt() + ADAGRAD_EPS as f32);
                    }
                })
            })?,
        }
    }

    /// The CPU step's sparse update of table `table`, in place: `rows` [n, width] are its stored
    /// rows, `unique` the distinct rows a batch touched and `grad` [unique.len(), width] their
    /// gradients. Same arithmetic as [`Optimizer::step`].
    pub fn update_rows_cpu(
        &mut self,
        table: usize,
        rows: &Tensor,
        unique: &[u32],
        grad: &[f32],
    ) -> Result<()> {
        let (n, width) = rows.dims2()?;
        ensure!(
            grad.len() == unique.len() * width,
            "a gradient of {} values for {} rows of width {width}",
            grad.len(),
            unique.len()
        );
        ensure!(
            unique.iter().all(|&r| (r as usize) < n),
            "a row id beyond the table's {n} rows"
        );
        let lr = self.lr as f32;
        match self.kind {
            OptimizerKind::Sgd => write_f32(rows, |values| {
                for (&r, g) in unique.iter().zip(grad.chunks_exact(width)) {
                    let row = &mut values[r as usize * width..][..width];
                    for (v, &g) in row.iter_mut().zip(g) {
                        *v += g * -lr;
                    }
                }
            }),
            OptimizerKind::Adagrad => write_f32(&self.row_acc[table], |acc| {
                write_f32(rows, |values| {
                    for (&r, g) in unique.iter().zip(grad.chunks_exact(width)) {
                        let mean_sq = g.iter().map(|g| g * g).sum::<f32>() / width as f32;
                        let a = &mut acc[r as usize];
                        *a += mean_sq;
                        let denom = a.sqrt() + ADAGRAD_EPS as f32;
                        let row = &mut values[r as usize * width..][..width];
                        for (v, &g) in row.iter_mut().zip(g) {
                            *v += (g * -lr) / denom;
                        }
                    }
                })
            })?,
        }
    }

    /// The state by name (`opt.dense.{i}`, `opt.rows.{t}`), for checkpoints.
    pub fn named_state(&self) -> Vec<(String, Tensor)> {
        let dense = self
            .dense_acc
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("opt.dense.{i}"), t.clone()));
        let rows = self
            .row_acc
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("opt.rows.{i}"), t.clone()));
        dense.chain(rows).collect()
    }

    /// Restores the state saved by [`Optimizer::named_state`].
    pub fn load_state(&mut self, values: &HashMap<String, Tensor>) -> Result<()> {
        let device = |t: &Tensor| t.device().clone();
        for (prefix, state) in [
            ("opt.dense", &mut self.dense_acc),
            ("opt.rows", &mut self.row_acc),
        ] {
            for (i, slot) in state.iter_mut().enumerate() {
                let name = format!("{prefix}.{i}");
                let value = values
                    .get(&name)
                    .with_context(|| format!("optimizer state `{name}` is missing"))?;
                if value.dims() != slot.dims() {
                    bail!(
                        "optimizer state `{name}` has shape {:?}, expected {:?}",
                        value.dims(),
                        slot.dims()
                    );
                }
                *slot = value.to_device(&device(slot))?.copy()?;
            }
        }
        Ok(())
    }
}
