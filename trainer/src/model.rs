//! The DLRM of DESIGN.md on candle tensors, with plain or MLET embedding tables.
//!
//! Dense input -> `log1p(max(x, 0))` -> bottom MLP (ReLU after every layer) = z_0; embedding
//! z_{t+1} = row `raw_t mod n_t` of table t (MLET: that row of A_t, times P_t); the top input is
//! z_0 followed by z_i . z_j for i in 1..=T, j in 0..i; top MLP (ReLU after all but the last
//! layer); probability = sigmoid.
//!
//! Table sizes: `--rows N` asks for N rows per table, but a table gets `min(N, distinct raw ids
//! seen in the training data)` rows (see `train::table_rows`). Rows are addressed by
//! `raw mod n_t` (the format's `hashing = mod`), so even a table with as many rows as distinct
//! values may map two values to one row; what the cap guarantees is that no table is larger
//! than the number of values it could ever tell apart.
//!
//! Initialisation (DLRM reference): MLP weights normal with std sqrt(2 / (fan_in + fan_out)),
//! biases normal with std sqrt(1 / fan_out), table rows uniform in +-sqrt(1 / n_t). MLET:
//! A_t as a plain table (n_t x k), P_t (k x d) normal with std `mlet_init_scale / sqrt(k)`, so
//! that at scale 1 the product A_t P_t starts with the spread of a plain table. Everything comes
//! from our seeded [`Rng`], so a seed gives the same model bit for bit.

use anyhow::{bail, ensure, Result};
use candle_core::{DType, Device, Tensor, Var, D};
use mlet_formats::ids::row_of;

use crate::checkpoint::TensorSource;
use crate::data::Batch;
use crate::rng::Rng;

/// Rows of an MLET table collapsed at a time (E_t = A_t P_t): bounds the memory of one product.
pub const COLLAPSE_CHUNK: usize = 1 << 16;

/// Shape and initialisation settings of a DLRM.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    /// Dense inputs D.
    pub num_dense: usize,
    /// Rows of each table.
    pub table_rows: Vec<usize>,
    /// Embedding width d.
    pub dim: usize,
    /// MLET inner width k (0 = plain tables).
    pub mlet_k: usize,
    /// Hidden widths of the bottom MLP (the file's bottom_mlp is D, these, d).
    pub bottom_hidden: Vec<usize>,
    /// Hidden widths of the top MLP (a final width 1 is appended).
    pub top_hidden: Vec<usize>,
    /// MLET: P_t starts normal with std `mlet_init_scale / sqrt(k)`.
    pub mlet_init_scale: f64,
}

impl ModelSpec {
    /// Bottom MLP widths, D first, d last.
    pub fn bottom_widths(&self) -> Vec<usize> {
        let mut w = vec![self.num_dense];
        w.extend(&self.bottom_hidden);
        w.push(self.dim);
        w
    }

    /// Top MLP widths, the input d + T(T+1)/2 first, 1 last.
    pub fn top_widths(&self) -> Vec<usize> {
        let t = self.table_rows.len();
        let mut w = vec![self.dim + t * (t + 1) / 2];
        w.extend(&self.top_hidden);
        w.push(1);
        w
    }

    /// Width of a table's stored rows: k for MLET, d for plain.
    pub fn table_width(&self) -> usize {
        if self.mlet_k > 0 {
            self.mlet_k
        } else {
            self.dim
        }
    }
}

/// One fully connected layer: `y = x W^T + b`.
pub struct Linear {
    /// [out, in].
    pub weight: Var,
    /// `[out]`.
    pub bias: Var,
}

impl Linear {
    /// Applies the layer to `x` [B, in].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)?)
    }
}

/// One embedding table: plain rows (n x d), or MLET's A (n x k) with its projection P (k x d).
/// The rows are not a `Var`: training updates them in place, sparsely.
pub struct Table {
    /// The stored rows: E (plain) or A (MLET).
    pub rows: Tensor,
    /// MLET's P [k, d]: a view of its part of [`Dlrm::projections`]; `None` for a plain table.
    pub projection: Option<Tensor>,
}

/// A DLRM with its parameters.
pub struct Dlrm {
    /// The settings it was built from.
    pub spec: ModelSpec,
    /// Bottom MLP layers.
    pub bottom: Vec<Linear>,
    /// Top MLP layers.
    pub top: Vec<Linear>,
    /// Embedding tables; each one's `rows` is a view of its part of `joined_rows`.
    pub tables: Vec<Table>,
    /// MLET: every table's P, stacked [T, k, d]: one parameter, so that a step projects all
    /// tables with one batched product and updates P with one set of kernels.
    pub projections: Option<Var>,
    /// Every table's stored rows, table after table [sum n_t, width]: one tensor to gather from
    /// and scatter into, whatever the number of tables.
    joined_rows: Tensor,
    /// Where each table starts in `joined_rows`.
    row_offsets: Vec<u32>,
    /// Flat indexes of the pairs (i > j) in the [T+1, T+1] matrix of dot products.
    pair_index: Tensor,
    device: Device,
}

/// Flat indexes of the pairs (i > j) in the [T+1, T+1] matrix of dot products of `tables` + 1
/// vectors, i outer and j inner, both ascending.
fn pair_index(tables: usize, device: &Device) -> Result<Tensor> {
    let vectors = tables + 1;
    let pairs: Vec<u32> = (1..vectors)
        .flat_map(|i| (0..i).map(move |j| (i * vectors + j) as u32))
        .collect();
    Ok(Tensor::from_vec(
        pairs,
        vectors * (vectors - 1) / 2,
        device,
    )?)
}

/// Tensors of a normal distribution with the given std.
fn normal(rng: &mut Rng, shape: (usize, usize), std: f64, device: &Device) -> Result<Tensor> {
    let values: Vec<f32> = (0..shape.0 * shape.1)
        .map(|_| (rng.normal() * std) as f32)
        .collect();
    Ok(Tensor::from_vec(values, shape, device)?)
}

impl Dlrm {
    /// A freshly initialised model (see the module doc), seeded by `seed`.
    pub fn new(spec: ModelSpec, seed: u64, device: &Device) -> Result<Dlrm> {
        ensure!(spec.dim > 0, "the embedding width must be at least 1");
        ensure!(
            !spec.table_rows.is_empty() && spec.table_rows.iter().all(|&n| n > 0),
            "every table needs at least one row"
        );
        let mut rng = Rng::new(seed);
        let mut mlp = |widths: &[usize]| -> Result<Vec<Linear>> {
            widths
                .windows(2)
                .map(|w| {
                    let (fan_in, fan_out) = (w[0], w[1]);
                    let weight = normal(
                        &mut rng,
                        (fan_out, fan_in),
                        (2.0 / (fan_in + fan_out) as f64).sqrt(),
                        device,
                    )?;
                    let bias = normal(
                        &mut rng,
                        (1, fan_out),
                        (1.0 / fan_out as f64).sqrt(),
                        device,
                    )?
                    .reshape(fan_out)?;
                    Ok(Linear {
                        weight: Var::from_tensor(&weight)?,
                        bias: Var::from_tensor(&bias)?,
                    })
                })
                .collect()
        };
        let bottom = mlp(&spec.bottom_widths())?;
        let top = mlp(&spec.top_widths())?;
        // Every table's rows go straight into one buffer, table after table: the joined tensor
        // is made from it without a copy, so the tables are never held twice.
        let width = spec.table_width();
        let total: usize = spec.table_rows.iter().sum();
        let mut rows: Vec<f32> = Vec::new();
        rows.try_reserve_exact(total * width).map_err(|_| {
            anyhow::anyhow!(
                "cannot allocate {:.2} GB for the tables ({total} rows of {width} values)",
                (total * width * 4) as f64 / 1e9
            )
        })?;
        let mut projections = Vec::new();
        for &n in &spec.table_rows {
            let bound = (1.0 / n as f64).sqrt();
            rows.extend((0..n * width).map(|_| rng.uniform(-bound, bound) as f32));
            if spec.mlet_k > 0 {
                let std = spec.mlet_init_scale / (spec.mlet_k as f64).sqrt();
                projections.push(normal(&mut rng, (spec.mlet_k, spec.dim), std, device)?);
            }
        }
        let joined_rows = Tensor::from_vec(rows, (total, width), device)?;
        let projections = if projections.is_empty() {
            None
        } else {
            Some(Var::from_tensor(&Tensor::stack(&projections, 0)?)?)
        };
        let pair_index = pair_index(spec.table_rows.len(), device)?;
        Dlrm::assemble(
            spec,
            bottom,
            top,
            joined_rows,
            projections,
            pair_index,
            device,
        )
    }

    /// A model from its parts: each table's rows a view of its part of `joined_rows` [sum n_t,
    /// width], and each table's P a view of `projections`.
    fn assemble(
        spec: ModelSpec,
        bottom: Vec<Linear>,
        top: Vec<Linear>,
        joined_rows: Tensor,
        projections: Option<Var>,
        pair_index: Tensor,
        device: &Device,
    ) -> Result<Dlrm> {
        let total: usize = spec.table_rows.iter().sum();
        ensure!(
            total <= u32::MAX as usize,
            "the tables hold {total} rows in all; at most {} are supported",
            u32::MAX
        );
        let mut tables = Vec::with_capacity(spec.table_rows.len());
        let mut row_offsets = Vec::with_capacity(spec.table_rows.len());
        let mut offset = 0;
        for (t, &n) in spec.table_rows.iter().enumerate() {
            row_offsets.push(offset as u32);
            let projection = match &projections {
                Some(p) => Some(p.as_tensor().narrow(0, t, 1)?.squeeze(0)?),
                None => None,
            };
            tables.push(Table {
                rows: joined_rows.narrow(0, offset, n)?,
                projection,
            });
            offset += n;
        }
        Ok(Dlrm {
            spec,
            bottom,
            top,
            tables,
            projections,
            joined_rows,
            row_offsets,
            pair_index,
            device: device.clone(),
        })
    }

    /// Every table's stored rows, table after table [sum n_t, width]. Changing them in place
    /// changes the tables.
    pub fn joined_rows(&self) -> &Tensor {
        &self.joined_rows
    }

    /// The device the parameters live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The dense input [rows, D] after `log1p(max(x, 0))`, computed with `libm` like the runtime.
    pub fn dense_input(&self, raw: &[f32], rows: usize) -> Result<Tensor> {
        let values: Vec<f32> = raw.iter().map(|&x| libm::log1pf(x.max(0.0))).collect();
        Ok(Tensor::from_vec(
            values,
            (rows, self.spec.num_dense),
            &self.device,
        )?)
    }

    /// The rows of a batch's raw ids in [`Dlrm::joined_rows`] (`offset_t + raw mod n_t`), table
    /// by table: entry `t * B + b` is example b's row of table t.
    pub fn joined_row_ids(&self, batch: &Batch) -> Vec<u32> {
        let t = self.tables.len();
        let mut ids = Vec::with_capacity(batch.ids.len());
        for table in 0..t {
            let (n, offset) = (self.spec.table_rows[table] as u32, self.row_offsets[table]);
            ids.extend(
                batch.ids[table..]
                    .iter()
                    .step_by(t)
                    .map(|&raw| offset + row_of(raw, n)),
            );
        }
        ids
    }

    /// The embeddings [B, T, d] of stored rows gathered table by table ([T * B, width], in the
    /// order of [`Dlrm::joined_row_ids`]): the rows themselves (plain) or each table's rows
    /// times its P (MLET, one batched product for all tables).
    pub fn embed(&self, rows: &Tensor, batch: usize) -> Result<Tensor> {
        let rows = rows.reshape((self.tables.len(), batch, self.spec.table_width()))?;
        let embedded = match &self.projections {
            Some(p) => rows.matmul(p.as_tensor())?,
            None => rows,
        };
        Ok(embedded.transpose(0, 1)?.contiguous()?)
    }

    /// Logits [B] from the transformed dense input [B, D] and the embeddings [B, T, d].
    pub fn forward(&self, dense: &Tensor, embeddings: &Tensor) -> Result<Tensor> {
        let mut z0 = dense.clone();
        for layer in &self.bottom {
            z0 = layer.forward(&z0)?.relu()?;
        }
        let batch = z0.dim(0)?;
        let z = Tensor::cat(&[&z0.unsqueeze(1)?, embeddings], 1)?; // [B, T+1, d]
        let dots = z.matmul(&z.transpose(1, 2)?)?; // [B, T+1, T+1]
        let n = self.tables.len() + 1;
        let pairs = dots
            .reshape((batch, n * n))?
            .index_select(&self.pair_index, 1)?;
        let mut x = Tensor::cat(&[&z0, &pairs], 1)?;
        let last = self.top.len() - 1;
        for (l, layer) in self.top.iter().enumerate() {
            x = layer.forward(&x)?;
            if l < last {
                x = x.relu()?;
            }
        }
        Ok(x.squeeze(D::Minus1)?)
    }

    /// Click probabilities of a batch (evaluation: whole tables, no training state).
    pub fn predict(&self, batch: &Batch) -> Result<Vec<f32>> {
        let dense = self.dense_input(&batch.dense, batch.len())?;
        let ids = self.joined_row_ids(batch);
        let ids = Tensor::from_vec(ids, batch.ids.len(), &self.device)?;
        let embeddings = self.embed(&self.joined_rows.index_select(&ids, 0)?, batch.len())?;
        let logits = self.forward(&dense, &embeddings)?.detach();
        Ok(candle_nn::ops::sigmoid(&logits)?.to_vec1()?)
    }

    /// The MLP weights and biases and MLET projections: the parameters with dense gradients.
    pub fn dense_params(&self) -> Vec<&Var> {
        let layers = self.bottom.iter().chain(&self.top);
        let mut params: Vec<&Var> = layers.flat_map(|l| [&l.weight, &l.bias]).collect();
        params.extend(&self.projections);
        params
    }

    /// A scalar on the model's device that is 0 when every MLP weight and bias and every MLET
    /// projection is finite and NaN otherwise (`0 * x` is NaN only for x infinite or NaN), so
    /// that a check costs one read back. Candle's ReLU turns NaN into 0, so a weight that is no
    /// longer finite need not show in the loss.
    pub fn dense_probe(&self) -> Result<Tensor> {
        let mut probe = Tensor::zeros((), DType::F32, &self.device)?;
        for p in self.dense_params() {
            probe = (probe + p.as_tensor().affine(0.0, 0.0)?.sum_all()?)?;
        }
        Ok(probe)
    }

    /// Every parameter by name: `bottom.{l}.weight|bias`, `top.{l}.weight|bias`,
    /// `emb.{t}.rows`, `emb.{t}.projection` (MLET).
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (group, layers) in [("bottom", &self.bottom), ("top", &self.top)] {
            for (l, layer) in layers.iter().enumerate() {
                out.push((
                    format!("{group}.{l}.weight"),
                    layer.weight.as_tensor().clone(),
                ));
                out.push((format!("{group}.{l}.bias"), layer.bias.as_tensor().clone()));
            }
        }
        for (t, table) in self.tables.iter().enumerate() {
            out.push((format!("emb.{t}.rows"), table.rows.clone()));
            if let Some(p) = &table.projection {
                out.push((format!("emb.{t}.projection"), p.clone()));
            }
        }
        out
    }

    /// Copies every parameter out of `source` (names as in [`Dlrm::named_tensors`]); shapes
    /// must match. The tables are read a block of rows at a time straight into place, so they are
    /// never held twice.
    pub fn load_named(&self, source: &mut dyn TensorSource) -> Result<()> {
        for (group, layers) in [("bottom", &self.bottom), ("top", &self.top)] {
            for (l, layer) in layers.iter().enumerate() {
                for (part, var) in [("weight", &layer.weight), ("bias", &layer.bias)] {
                    let name = format!("{group}.{l}.{part}");
                    var.set(&source.read(&name, var.dims(), &self.device)?)?;
                }
            }
        }
        let mut projections = Vec::new();
        for (t, table) in self.tables.iter().enumerate() {
            let name = format!("emb.{t}.rows");
            let at = self.row_offsets[t] as usize;
            source.read_into(&name, table.rows.dims(), &self.joined_rows, at)?;
            if let Some(p) = &table.projection {
                let name = format!("emb.{t}.projection");
                projections.push(source.read(&name, p.dims(), &self.device)?);
            }
        }
        if let Some(p) = &self.projections {
            p.set(&Tensor::stack(&projections, 0)?)?;
        }
        Ok(())
    }

    /// Rows `start..start + len` of table `t` as a plain table stores them: E_t = A_t P_t for
    /// MLET (one product of `len` rows), a copy of the rows for a plain table. Collapsing a table
    /// chunk by chunk bounds the memory it takes to that of one chunk.
    pub fn collapsed_rows(&self, t: usize, start: usize, len: usize) -> Result<Tensor> {
        let table = &self.tables[t];
        let rows = table.rows.narrow(0, start, len)?;
        Ok(match &table.projection {
            Some(p) => rows.matmul(p)?.detach(),
            // A copy of the view alone (`Tensor::copy` would clone the joined storage).
            None => rows.force_contiguous()?.detach(),
        })
    }

    /// Every table collapsed ([`Dlrm::collapsed_rows`], `chunk` rows at a time).
    pub fn collapsed_tables(&self, chunk: usize) -> Result<Vec<Tensor>> {
        (0..self.tables.len())
            .map(|t| {
                let n = self.spec.table_rows[t];
                let parts = (0..n)
                    .step_by(chunk.max(1))
                    .map(|start| self.collapsed_rows(t, start, chunk.min(n - start)))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Tensor::cat(&parts, 0)?)
            })
            .collect()
    }

    /// A plain-table model with the same MLPs and E_t = A_t P_t: what the exported file holds.
    pub fn collapsed(&self) -> Result<Dlrm> {
        let spec = ModelSpec {
            mlet_k: 0,
            ..self.spec.clone()
        };
        let copy = |v: &Var| -> Result<Var> { Ok(Var::from_tensor(&v.as_tensor().copy()?)?) };
        let layers = |ls: &[Linear]| -> Result<Vec<Linear>> {
            ls.iter()
                .map(|l| {
                    Ok(Linear {
                        weight: copy(&l.weight)?,
                        bias: copy(&l.bias)?,
                    })
                })
                .collect()
        };
        // The collapsed rows go straight into one buffer, chunk by chunk: besides the result,
        // one chunk is held at a time.
        let total: usize = self.spec.table_rows.iter().sum();
        let mut values = Vec::with_capacity(total * self.spec.dim);
        for (t, &n) in self.spec.table_rows.iter().enumerate() {
            for start in (0..n).step_by(COLLAPSE_CHUNK) {
                let chunk = self.collapsed_rows(t, start, COLLAPSE_CHUNK.min(n - start))?;
                values.extend(chunk.flatten_all()?.to_vec1::<f32>()?);
            }
        }
        let joined = Tensor::from_vec(values, (total, self.spec.dim), &self.device)?;
        Dlrm::assemble(
            spec,
            layers(&self.bottom)?,
            layers(&self.top)?,
            joined,
            None,
            self.pair_index.clone(),
            &self.device,
        )
    }
}

/// Parses hidden widths written `512-256-64` (empty: no hidden layer).
pub fn parse_widths(s: &str) -> Result<Vec<usize>> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    s.split('-')
        .map(|w| match w.parse::<usize>() {
            Ok(v) if v > 0 => Ok(v),
            _ => bail!("widths `{s}`: `{w}` is not a positive whole number"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table of more than one collapse chunk collapses to the model's own two-layer
    /// embeddings, on rows on both sides of every chunk boundary.
    #[test]
    fn tables_over_one_chunk_collapse_to_the_two_layer_model() {
        let rows = COLLAPSE_CHUNK + 777;
        let spec = ModelSpec {
            num_dense: 2,
            table_rows: vec![rows, 5],
            dim: 4,
            mlet_k: 8,
            bottom_hidden: vec![8],
            top_hidden: vec![8],
            mlet_init_scale: 1.0,
        };
        let model = Dlrm::new(spec, 5, &Device::Cpu).unwrap();
        let collapsed = model.collapsed().unwrap();
        let picks = [
            0,
            1,
            COLLAPSE_CHUNK - 1,
            COLLAPSE_CHUNK,
            COLLAPSE_CHUNK + 1,
            rows - 1,
        ];
        let batch = Batch {
            dense: picks.iter().flat_map(|&r| [r as f32, 3.0]).collect(),
            ids: picks.iter().flat_map(|&r| [r as u32, r as u32]).collect(),
            labels: vec![0.0; picks.len()],
            ..Batch::default()
        };
        let two_layer = model.predict(&batch).unwrap();
        let one_layer = collapsed.predict(&batch).unwrap();
        for (i, (a, b)) in two_layer.iter().zip(&one_layer).enumerate() {
            assert!((a - b).abs() < 1e-6, "row {}: {a} vs {b}", picks[i]);
        }
        // The rows themselves: E = A P, row by row, for the rows past the first chunk too.
        let e = collapsed.tables[0].rows.to_vec2::<f32>().unwrap();
        let a = model.tables[0].rows.to_vec2::<f32>().unwrap();
        let p = model.tables[0]
            .projection
            .as_ref()
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        for &r in &picks {
            for c in 0..4 {
                let want: f64 = (0..8).map(|j| a[r][j] as f64 * p[j][c] as f64).sum();
                assert!((e[r][c] as f64 - want).abs() < 1e-6, "row {r} column {c}");
            }
        }
    }
}
