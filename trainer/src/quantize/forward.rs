//! The model of a file with F32/F16 layers run in plain f32 (any order: only statistics are
//! taken from it), recording the range of every layer's input: what int8 layers are calibrated
//! on.

use anyhow::{bail, Result};
use half::f16;
use mlet_formats::ids::row_of;
use mlet_formats::{
    DenseTransform, Dtype, EmbeddingDtype, LayerTensors, MlpDtype, ModelFile, Tensor,
};

/// The values a layer's input took: every row's input vector, in row order.
#[derive(Clone, Debug, PartialEq)]
pub struct InputRange {
    /// Input columns.
    pub columns: usize,
    /// `columns` values per row seen.
    pub values: Vec<f32>,
}

impl InputRange {
    fn new(columns: usize) -> InputRange {
        InputRange {
            columns,
            values: Vec::new(),
        }
    }

    fn add(&mut self, x: &[f32]) {
        self.values.extend_from_slice(x);
    }

    /// The `q` and `1 - q` quantiles of every value (q = 0: the smallest and largest).
    pub fn tensor_range(&self, q: f64) -> (f32, f32) {
        quantiles(self.values.clone(), q)
    }

    /// The `q` and `1 - q` quantiles of column `j`'s values.
    pub fn column_range(&self, j: usize, q: f64) -> (f32, f32) {
        let column = self.values.iter().skip(j).step_by(self.columns.max(1));
        quantiles(column.copied().collect(), q)
    }
}

/// The `q` and `1 - q` quantiles of `values` (NaN-free), nearest rank.
fn quantiles(mut values: Vec<f32>, q: f64) -> (f32, f32) {
    values.retain(|v| !v.is_nan());
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let last = values.len() - 1;
    let k = ((q * last as f64).round() as usize).min(last);
    let lo = *values.select_nth_unstable_by(k, f32::total_cmp).1;
    let hi = *values.select_nth_unstable_by(last - k, f32::total_cmp).1;
    (lo, hi)
}

/// The input ranges of every layer: bottom layers first, then top layers.
#[derive(Clone, Debug, PartialEq)]
pub struct Ranges {
    /// One per bottom layer.
    pub bottom: Vec<InputRange>,
    /// One per top layer.
    pub top: Vec<InputRange>,
    /// Rows seen.
    pub rows: usize,
}

/// A file's layers and tables decoded to f32, ready to run row after row.
pub struct Forward<'a> {
    file: &'a ModelFile<'a>,
    bottom: Vec<Layer>,
    top: Vec<Layer>,
}

/// One layer's weights `[out][in]` and bias in f32.
struct Layer {
    inputs: usize,
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Layer {
    fn new(t: &LayerTensors<'_>, inputs: usize) -> Layer {
        Layer {
            inputs,
            weight: floats(&t.weight),
            bias: floats(&t.bias),
        }
    }

    fn run(&self, x: &[f32], relu: bool) -> Vec<f32> {
        self.bias
            .iter()
            .zip(self.weight.chunks_exact(self.inputs.max(1)))
            .map(|(b, w)| {
                let v = b + w.iter().zip(x).map(|(w, x)| w * x).sum::<f32>();
                if relu {
                    v.max(0.0)
                } else {
                    v
                }
            })
            .collect()
    }
}

/// An F32 or F16 tensor's values.
pub fn floats(t: &Tensor<'_>) -> Vec<f32> {
    match t.dtype {
        Dtype::F16 => t
            .bytes
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        _ => t
            .bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    }
}

/// Row `row` of table `t`, dequantized (every table dtype).
pub fn table_row(file: &ModelFile<'_>, t: usize, row: usize) -> Vec<f32> {
    let config = file.config();
    let (d, dtype) = (config.dim(), config.embedding_dtype());
    let table = file.table(t);
    let width = dtype.row_bytes(d);
    let bytes = &table.weight.bytes[row * width..(row + 1) * width];
    let pick = |s: &Option<Tensor<'_>>| {
        s.map(|s| {
            let v = floats(&s);
            if v.len() == 1 {
                v[0]
            } else {
                v[row]
            }
        })
        .unwrap_or(0.0)
    };
    match dtype {
        EmbeddingDtype::F32 | EmbeddingDtype::F16 => floats(&Tensor {
            dtype: table.weight.dtype,
            bytes,
        }),
        EmbeddingDtype::Int8 => {
            let (s, o) = (pick(&table.scale), pick(&table.offset));
            bytes.iter().map(|&q| s * f32::from(q) + o).collect()
        }
        EmbeddingDtype::Int4 => {
            let (s, o) = (pick(&table.scale), pick(&table.offset));
            (0..d)
                .map(|k| {
                    let b = bytes[k / 2];
                    let q = if k % 2 == 0 { b & 15 } else { b >> 4 };
                    s * f32::from(q) + o
                })
                .collect()
        }
    }
}

impl<'a> Forward<'a> {
    /// Decodes the layers of a file whose MLP is F32 or F16.
    pub fn new(file: &'a ModelFile<'a>) -> Result<Forward<'a>> {
        let config = file.config();
        if config.mlp_dtype() != MlpDtype::F32 {
            bail!("the model's layers are already int8: quantize the F32 model it came from");
        }
        let layers = |widths: &mlet_formats::Widths,
                      get: fn(&ModelFile<'a>, usize) -> LayerTensors<'a>| {
            (0..widths.layers())
                .map(|l| Layer::new(&get(file, l), widths.layer(l).0))
                .collect()
        };
        Ok(Forward {
            file,
            bottom: layers(config.bottom(), ModelFile::bottom_layer),
            top: layers(config.top(), ModelFile::top_layer),
        })
    }

    /// Runs rows (`dense` and `ids` row-major) through the model, widening `ranges` by every
    /// layer's input.
    pub fn observe(&self, dense: &[f32], ids: &[u32], ranges: &mut Ranges) {
        let config = self.file.config();
        let (nd, nt, d) = (config.num_dense(), config.num_tables(), config.dim());
        for (dense, ids) in dense.chunks_exact(nd).zip(ids.chunks_exact(nt)) {
            let mut x: Vec<f32> = dense
                .iter()
                .map(|&v| match config.dense_transform() {
                    DenseTransform::Log1p => v.max(0.0).ln_1p(),
                    DenseTransform::Identity => v,
                })
                .collect();
            for (layer, range) in self.bottom.iter().zip(&mut ranges.bottom) {
                range.add(&x);
                x = layer.run(&x, true);
            }
            let mut z = vec![x.clone()];
            for (t, (&raw, &rows)) in ids.iter().zip(config.table_rows()).enumerate() {
                z.push(table_row(self.file, t, row_of(raw, rows) as usize));
            }
            let mut top = x;
            for i in 1..z.len() {
                for j in 0..i {
                    top.push(z[i].iter().zip(&z[j]).take(d).map(|(a, b)| a * b).sum());
                }
            }
            let last = self.top.len().saturating_sub(1);
            for (l, (layer, range)) in self.top.iter().zip(&mut ranges.top).enumerate() {
                range.add(&top);
                top = layer.run(&top, l < last);
            }
            ranges.rows += 1;
        }
    }

    /// Empty ranges for every layer.
    pub fn ranges(&self) -> Ranges {
        Ranges {
            bottom: self
                .bottom
                .iter()
                .map(|l| InputRange::new(l.inputs))
                .collect(),
            top: self.top.iter().map(|l| InputRange::new(l.inputs)).collect(),
            rows: 0,
        }
    }
}
