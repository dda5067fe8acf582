//! The training step written out by hand for the CPU: the same update as
//! [`super::AutogradStep`] (candle's autograd, which stays the path for other devices and the
//! oracle of the tests), without autograd's bookkeeping.
//!
//! The DLRM's layers are fixed, so the forward pass keeps what the backward pass needs in
//! buffers reused every step, and the backward pass is written out: matrix products through
//! `gemm` ([`super::matmul`]) on feature-major activations, ReLU's gradient as a mask on the
//! layer's output, bias gradients as sums over the batch, no gradient for the input data, the
//! dot interaction as one small product per example. Embeddings keep the sparse path of the
//! autograd step: per table the batch's rows are deduplicated, the gradient reaches the unique
//! rows only (MLET: the gathered rows of A, and the dense P), and the optimizer updates those
//! rows in place.
//!
//! One difference from autograd, at a single point: autograd passes ReLU's gradient where the
//! value before the ReLU is exactly 0, the mask here (output > 0) does not.

use anyhow::{ensure, Result};
use mlet_formats::ids::row_of;

use super::dedup::Dedup;
use super::matmul::{matmul, sum, threads, Mat};
use super::slices::read_f32;
use crate::data::Batch;
use crate::model::{Dlrm, Linear, ModelSpec};
use crate::optim::Optimizer;

/// The buffers of the hand-written step, sized for a model and reused every step.
pub struct CpuStep {
    /// The model shape the buffers are for.
    spec: ModelSpec,
    bottom: MlpBuffers,
    top: MlpBuffers,
    tables: Vec<TableBuffers>,
    /// The interaction's vectors [B, T+1, d]: z_0 (the bottom MLP's output), then one embedding
    /// per table.
    z: Vec<f32>,
    /// The gradient of `z`.
    z_grad: Vec<f32>,
    /// MLET: the gradient of [`Dlrm::projections`] [T, k, d], table t's P at `t * k * d`.
    projection_grad: Vec<f32>,
    /// One example's [T+1, T+1] matrix: its dot products (forward), the gradient of its pairs
    /// made symmetric (backward).
    pairs: Vec<f32>,
    dedup: Dedup,
    threads: usize,
}

impl CpuStep {
    /// Buffers for `model`, which must live on the CPU.
    pub fn new(model: &Dlrm) -> Result<CpuStep> {
        ensure!(
            model.device().is_cpu(),
            "the hand-written step runs on the CPU only"
        );
        let vectors = model.spec.table_rows.len() + 1;
        Ok(CpuStep {
            spec: model.spec.clone(),
            bottom: MlpBuffers::new(model.spec.bottom_widths()),
            top: MlpBuffers::new(model.spec.top_widths()),
            tables: model
                .spec
                .table_rows
                .iter()
                .map(|_| TableBuffers::default())
                .collect(),
            z: Vec::new(),
            z_grad: Vec::new(),
            projection_grad: vec![
                0.0;
                model.spec.table_rows.len() * model.spec.mlet_k * model.spec.dim
            ],
            pairs: vec![0.0; vectors * vectors],
            dedup: Dedup::default(),
            threads: threads(),
        })
    }

    /// One step on `batch`: forward, backward, optimizer update. Returns the batch's mean loss
    /// before the update.
    pub fn step(&mut self, model: &Dlrm, optimizer: &mut Optimizer, batch: &Batch) -> Result<f32> {
        let rows = batch.len();
        ensure!(rows > 0, "a training batch needs at least one row");
        ensure!(
            model.spec == self.spec,
            "the step's buffers were made for another model shape"
        );
        ensure!(
            batch.dense.len() == rows * self.spec.num_dense
                && batch.ids.len() == rows * self.spec.table_rows.len(),
            "the batch does not have the model's dense and categorical widths"
        );
        let loss = self.forward(model, batch)?;
        self.backward(model, rows)?;
        self.update(model, optimizer)?;
        Ok(loss)
    }

    /// Fills every activation buffer and the gradient of the logits; returns the mean loss.
    fn forward(&mut self, model: &Dlrm, batch: &Batch) -> Result<f32> {
        let spec = &model.spec;
        let (rows, d, t_count) = (batch.len(), spec.dim, spec.table_rows.len());
        let vectors = t_count + 1;
        let threads = self.threads;

        // Bottom MLP on log1p(max(x, 0)).
        self.bottom.resize(rows);
        let num_dense = spec.num_dense;
        for (example, raw) in batch.dense.chunks_exact(num_dense).enumerate() {
            for (i, &raw) in raw.iter().enumerate() {
                self.bottom.acts[0][i * rows + example] = libm::log1pf(raw.max(0.0));
            }
        }
        self.bottom.forward(&model.bottom, rows, true, threads)?;

        // z: z_0, then the embeddings.
        self.z.resize(rows * vectors * d, 0.0);
        let z0 = self.bottom.output();
        for (example, zb) in self.z.chunks_exact_mut(vectors * d).enumerate() {
            for (c, z) in zb[..d].iter_mut().enumerate() {
                *z = z0[c * rows + example];
            }
        }
        for (t, (table, buf)) in model.tables.iter().zip(&mut self.tables).enumerate() {
            let n = spec.table_rows[t] as u32;
            buf.ids.clear();
            buf.ids.extend(
                batch.ids[t..]
                    .iter()
                    .step_by(t_count)
                    .map(|&raw| row_of(raw, n)),
            );
            self.dedup.run(&buf.ids, &mut buf.unique, &mut buf.inverse);
            let slot = |example: usize| (example * vectors + t + 1) * d;
            match &table.projection {
                None => read_f32(&table.rows, |values| {
                    for (example, &r) in buf.ids.iter().enumerate() {
                        self.z[slot(example)..][..d]
                            .copy_from_slice(&values[r as usize * d..][..d]);
                    }
                })?,
                Some(p) => {
                    let (u, k) = (buf.unique.len(), spec.mlet_k);
                    buf.gathered.clear();
                    read_f32(&table.rows, |values| {
                        for &r in &buf.unique {
                            buf.gathered
                                .extend_from_slice(&values[r as usize * k..][..k]);
                        }
                    })?;
                    buf.embedded.resize(u * d, 0.0);
                    read_f32(p, |p| {
                        let a = Mat::new(&buf.gathered, u, k);
                        matmul(&mut buf.embedded, a, Mat::new(p, k, d), false, 1);
                    })?;
                    for (example, &i) in buf.inverse.iter().enumerate() {
                        self.z[slot(example)..][..d]
                            .copy_from_slice(&buf.embedded[i as usize * d..][..d]);
                    }
                }
            }
        }

        // Interaction: the top input is z_0, then z_i . z_j for i in 1..=T, j in 0..i, which
        // is row i, columns 0..i of the example's matrix of dot products.
        self.top.resize(rows);
        let top_input = &mut self.top.acts[0];
        for (example, zb) in self.z.chunks_exact(vectors * d).enumerate() {
            let zm = Mat::new(zb, vectors, d);
            matmul(&mut self.pairs, zm, zm.t(), false, 1);
            for (c, &z) in zb[..d].iter().enumerate() {
                top_input[c * rows + example] = z;
            }
            let mut at = d;
            for i in 1..vectors {
                for &dot in &self.pairs[i * vectors..][..i] {
                    top_input[at * rows + example] = dot;
                    at += 1;
                }
            }
        }
        self.top.forward(&model.top, rows, false, threads)?;

        // Binary cross-entropy, mean over the batch, and its gradient (sigmoid(x) - y) / B.
        let last = self.top.widths.len() - 1;
        let mut loss = 0.0f32;
        for ((g, &x), &y) in self.top.grads[last]
            .iter_mut()
            .zip(&self.top.acts[last])
            .zip(&batch.labels)
        {
            loss += x.max(0.0) - x * y + (-x.abs()).exp().ln_1p();
            *g = (1.0 / (1.0 + (-x).exp()) - y) / rows as f32;
        }
        Ok(loss / rows as f32)
    }

    /// Fills every gradient buffer from the gradient of the logits (parameters untouched).
    fn backward(&mut self, model: &Dlrm, rows: usize) -> Result<()> {
        let spec = &model.spec;
        let (d, k) = (spec.dim, spec.mlet_k);
        let vectors = spec.table_rows.len() + 1;
        self.top.backward(&model.top, rows, true, self.threads)?;

        // Interaction: with G the example's symmetric matrix of pair gradients,
        // dz = G z, plus the gradient that reaches z_0 directly.
        self.z_grad.resize(rows * vectors * d, 0.0);
        let top_grad = &self.top.grads[0];
        for (example, (zb, gb)) in self
            .z
            .chunks_exact(vectors * d)
            .zip(self.z_grad.chunks_exact_mut(vectors * d))
            .enumerate()
        {
            let mut at = d;
            for i in 0..vectors {
                self.pairs[i * vectors + i] = 0.0;
                for j in 0..i {
                    let g = top_grad[at * rows + example];
                    self.pairs[i * vectors + j] = g;
                    self.pairs[j * vectors + i] = g;
                    at += 1;
                }
            }
            let pairs = Mat::new(&self.pairs, vectors, vectors);
            matmul(gb, pairs, Mat::new(zb, vectors, d), false, 1);
            for (c, a) in gb[..d].iter_mut().enumerate() {
                *a += top_grad[c * rows + example];
            }
        }

        // Bottom MLP, from z_0's gradient through its ReLU.
        let last = self.bottom.widths.len() - 1;
        let (acts, grads) = (&self.bottom.acts[last], &mut self.bottom.grads[last]);
        for (example, dz) in self.z_grad.chunks_exact(vectors * d).enumerate() {
            for (c, &dz) in dz[..d].iter().enumerate() {
                let at = c * rows + example;
                grads[at] = if acts[at] > 0.0 { dz } else { 0.0 };
            }
        }
        self.bottom
            .backward(&model.bottom, rows, false, self.threads)?;

        // Tables: sum the gradients of each unique row; MLET: on to A's rows and to P.
        for (t, (table, buf)) in model.tables.iter().zip(&mut self.tables).enumerate() {
            let u = buf.unique.len();
            buf.grad.clear();
            buf.grad.resize(u * d, 0.0);
            for (example, &i) in buf.inverse.iter().enumerate() {
                let dz = &self.z_grad[(example * vectors + t + 1) * d..][..d];
                for (g, &dz) in buf.grad[i as usize * d..][..d].iter_mut().zip(dz) {
                    *g += dz;
                }
            }
            if let Some(p) = &table.projection {
                let grad = Mat::new(&buf.grad, u, d);
                let a = Mat::new(&buf.gathered, u, k);
                let p_grad = &mut self.projection_grad[t * k * d..][..k * d];
                matmul(p_grad, a.t(), grad, false, 1);
                buf.row_grad.resize(u * k, 0.0);
                read_f32(p, |p| {
                    matmul(&mut buf.row_grad, grad, Mat::new(p, k, d).t(), false, 1);
                })?;
            }
        }
        Ok(())
    }

    /// Hands every gradient to the optimizer (parameters in [`Dlrm::dense_params`] order).
    fn update(&self, model: &Dlrm, optimizer: &mut Optimizer) -> Result<()> {
        let mut index = 0;
        for (layers, buffers) in [(&model.bottom, &self.bottom), (&model.top, &self.top)] {
            for (l, layer) in layers.iter().enumerate() {
                optimizer.update_dense_cpu(index, &layer.weight, &buffers.weight_grads[l])?;
                optimizer.update_dense_cpu(index + 1, &layer.bias, &buffers.bias_grads[l])?;
                index += 2;
            }
        }
        if let Some(p) = &model.projections {
            optimizer.update_dense_cpu(index, p, &self.projection_grad)?;
        }
        for (t, (table, buf)) in model.tables.iter().zip(&self.tables).enumerate() {
            let grad = match table.projection {
                None => &buf.grad,
                Some(_) => &buf.row_grad,
            };
            optimizer.update_rows_cpu(t, &table.rows, &buf.unique, grad)?;
        }
        Ok(())
    }
}

/// One MLP's activations and gradients, feature-major ([width, B]: the matrix products run
/// faster that way round). Index l of `acts` and `grads` is layer l's input, index l + 1 its
/// output.
struct MlpBuffers {
    /// Layer widths, input first.
    widths: Vec<usize>,
    /// `acts[0]`: the input [widths[0], B]; `acts[l + 1]`: layer l's output [widths[l + 1], B],
    /// after its ReLU.
    acts: Vec<Vec<f32>>,
    /// `grads[l]`: the loss's gradient with respect to `acts[l]`, taken before the ReLU where
    /// the layer has one (so it is the gradient of the layer's matrix product).
    grads: Vec<Vec<f32>>,
    /// Layer l's weight gradient [out, in].
    weight_grads: Vec<Vec<f32>>,
    /// Layer l's bias gradient [out].
    bias_grads: Vec<Vec<f32>>,
}

impl MlpBuffers {
    fn new(widths: Vec<usize>) -> MlpBuffers {
        let layers = widths.len() - 1;
        MlpBuffers {
            acts: vec![Vec::new(); widths.len()],
            grads: vec![Vec::new(); widths.len()],
            weight_grads: (0..layers)
                .map(|l| vec![0.0; widths[l] * widths[l + 1]])
                .collect(),
            bias_grads: (0..layers).map(|l| vec![0.0; widths[l + 1]]).collect(),
            widths,
        }
    }

    /// Sizes the activation and gradient buffers for `rows` examples.
    fn resize(&mut self, rows: usize) {
        for ((a, g), &w) in self.acts.iter_mut().zip(&mut self.grads).zip(&self.widths) {
            a.resize(rows * w, 0.0);
            g.resize(rows * w, 0.0);
        }
    }

    /// The last layer's output [widths last, B].
    fn output(&self) -> &[f32] {
        &self.acts[self.widths.len() - 1]
    }

    /// Runs `layers` on `acts[0]`: ReLU after every layer, or after all but the last when
    /// `relu_last` is false.
    fn forward(
        &mut self,
        layers: &[Linear],
        rows: usize,
        relu_last: bool,
        threads: usize,
    ) -> Result<()> {
        for (l, layer) in layers.iter().enumerate() {
            let (fan_in, fan_out) = (self.widths[l], self.widths[l + 1]);
            let relu = relu_last || l + 1 < layers.len();
            let (inputs, outputs) = self.acts.split_at_mut(l + 1);
            let (x, y) = (Mat::new(&inputs[l], fan_in, rows), &mut outputs[0]);
            read_f32(&layer.weight, |w| {
                matmul(y, Mat::new(w, fan_out, fan_in), x, false, threads);
            })?;
            read_f32(&layer.bias, |b| {
                for (row, &b) in y.chunks_exact_mut(rows).zip(b) {
                    for y in row {
                        *y += b;
                        // NaN passes through, as in the runtime, so that weights that are no
                        // longer finite make the loss NaN (`f32::max` would hide them).
                        if relu && *y < 0.0 {
                            *y = 0.0;
                        }
                    }
                }
            })?;
        }
        Ok(())
    }

    /// From the last layer's gradient (`grads` last), every layer's weight and bias gradients,
    /// and `grads[0]` when `input_grad` (the MLP's input is not a ReLU output, so no mask).
    fn backward(
        &mut self,
        layers: &[Linear],
        rows: usize,
        input_grad: bool,
        threads: usize,
    ) -> Result<()> {
        for (l, layer) in layers.iter().enumerate().rev() {
            let (fan_in, fan_out) = (self.widths[l], self.widths[l + 1]);
            let (lower, upper) = self.grads.split_at_mut(l + 1);
            let dy = Mat::new(&upper[0], fan_out, rows);
            let x = &self.acts[l];
            matmul(
                &mut self.weight_grads[l],
                dy,
                Mat::new(x, fan_in, rows).t(),
                false,
                threads,
            );
            for (g, row) in self.bias_grads[l]
                .iter_mut()
                .zip(upper[0].chunks_exact(rows))
            {
                *g = sum(row);
            }
            if l == 0 && !input_grad {
                continue;
            }
            let dx = &mut lower[l];
            read_f32(&layer.weight, |w| {
                matmul(dx, Mat::new(w, fan_out, fan_in).t(), dy, false, threads);
            })?;
            if l > 0 {
                for (g, &a) in dx.iter_mut().zip(x) {
                    *g = if a > 0.0 { *g } else { 0.0 };
                }
            }
        }
        Ok(())
    }
}

/// One table's share of a step.
#[derive(Default)]
struct TableBuffers {
    /// Each example's row [B].
    ids: Vec<u32>,
    /// The distinct rows, in order of first appearance [U].
    unique: Vec<u32>,
    /// Each example's index into `unique` [B].
    inverse: Vec<u32>,
    /// MLET: the unique rows of A [U, k].
    gathered: Vec<f32>,
    /// MLET: their embeddings, `gathered` times P [U, d].
    embedded: Vec<f32>,
    /// The gradient of the unique rows' embeddings [U, d] (plain: of the rows themselves).
    grad: Vec<f32>,
    /// MLET: the gradient of the unique rows of A [U, k].
    row_grad: Vec<f32>,
}
