//! Optimizers: SGD and Adagrad, with sparse in-place updates of embedding tables.
//!
//! - SGD: every parameter moves by `-lr * g` (tables only on the rows the batch touched).
//! - Adagrad: tables are row-wise (FBGEMM's `rowwise_adagrad`): one f32 accumulator per row,
//!   `acc_r += mean_j(g_rj^2)`, `row_r -= lr * g_r / (sqrt(acc_r) + eps)`; accumulators and rows
//!   are updated in place on the touched rows only. MLP weights and biases and MLET projections
//!   (small and dense) use element-wise Adagrad with the same lr and eps.
//!
//! Table updates add into the touched rows in place ([`index_add_rows`] on the deduplicated row
//! ids), so nothing the size of a table is allocated per step.

use std::fmt;

use anyhow::{bail, ensure, Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor};

use crate::checkpoint::TensorSource;
use crate::model::Dlrm;
use crate::step::autograd::TouchedRows;
use crate::step::index_add::index_add_rows;
use crate::step::slices::write_f32;

/// Added to the root of the Adagrad accumulator.
pub const ADAGRAD_EPS: f64 = 1e-8;

/// Which optimizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OptimizerKind {
    /// Plain SGD.
    Sgd,
    /// Row-wise Adagrad for tables, element-wise for the rest.
    Adagrad,
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
    /// Adagrad: one accumulator per row of [`Dlrm::joined_rows`] [sum n_t, 1].
    joined_row_acc: Option<Tensor>,
    /// Adagrad: each table's part of `joined_row_acc` [n_t, 1] (views).
    row_acc: Vec<Tensor>,
}

impl Optimizer {
    /// A fresh optimizer for `model`.
    pub fn new(kind: OptimizerKind, lr: f64, model: &Dlrm) -> Result<Optimizer> {
        let mut optimizer = Optimizer {
            kind,
            lr,
            dense_acc: Vec::new(),
            joined_row_acc: None,
            row_acc: Vec::new(),
        };
        if kind == OptimizerKind::Adagrad {
            for p in model.dense_params() {
                optimizer.dense_acc.push(p.as_tensor().zeros_like()?);
            }
            let rows = model.joined_rows().dim(0)?;
            optimizer.join_row_acc(
                Tensor::zeros((rows, 1), DType::F32, model.device())?,
                &model.spec.table_rows,
            )?;
        }
        Ok(optimizer)
    }

    /// Makes `joined` [sum n_t, 1] the row accumulators, each table's part a view.
    fn join_row_acc(&mut self, joined: Tensor, table_rows: &[usize]) -> Result<()> {
        self.row_acc.clear();
        let mut offset = 0;
        for &n in table_rows {
            self.row_acc.push(joined.narrow(0, offset, n)?);
            offset += n;
        }
        self.joined_row_acc = Some(joined);
        Ok(())
    }

    /// Applies one update from `grads`; tables only on the `touched` rows.
    pub fn step(&mut self, model: &Dlrm, grads: &GradStore, touched: &TouchedRows) -> Result<()> {
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
        // The gradient of each unique row: the sum over its (table, example) copies.
        let per_copy = grads
            .get(touched.leaf.as_tensor())
            .context("the tables got no gradient")?;
        let u = touched.unique.dim(0)?;
        let g = Tensor::zeros((u, per_copy.dim(1)?), DType::F32, per_copy.device())?;
        index_add_rows(&g, &touched.inverse, per_copy)?;
        let step = match (self.kind, &self.joined_row_acc) {
            (OptimizerKind::Sgd, _) => (g * -self.lr)?,
            (OptimizerKind::Adagrad, Some(row_acc)) => {
                index_add_rows(row_acc, &touched.unique, &g.sqr()?.mean_keepdim(1)?)?;
                let acc = row_acc.index_select(&touched.unique, 0)?;
                let denom = acc.sqrt()?.affine(1.0, ADAGRAD_EPS)?;
                (g * -self.lr)?.broadcast_div(&denom)?
            }
            (OptimizerKind::Adagrad, None) => bail!("Adagrad without its row accumulators"),
        };
        index_add_rows(model.joined_rows(), &touched.unique, &step)
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

    /// Restores the state saved by [`Optimizer::named_state`] from `source`; the row
    /// accumulators are read in place, a block of rows at a time.
    pub fn load_state(&mut self, source: &mut dyn TensorSource) -> Result<()> {
        for (i, slot) in self.dense_acc.iter_mut().enumerate() {
            let dims = slot.dims().to_vec();
            *slot = source.read(&format!("opt.dense.{i}"), &dims, slot.device())?;
        }
        if let Some(joined) = &self.joined_row_acc {
            let mut at = 0;
            for (i, acc) in self.row_acc.iter().enumerate() {
                source.read_into(&format!("opt.rows.{i}"), acc.dims(), joined, at)?;
                at += acc.dim(0)?;
            }
        }
        Ok(())
    }
}
