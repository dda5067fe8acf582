//! int8 layers from F32 ones and their calibrated input ranges (the rule is in `quantize`'s
//! module documentation).

use std::fmt;

use mlet_formats::writer::OwnedTensor;

use super::forward::InputRange;

/// Where an int8 layer's input scale and zero point are shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum InputScale {
    /// Per layer, the shape whose int8 outputs are nearer the F32 layer's (mean squared error
    /// over the calibration rows): per-column scales help columns of different ranges, but
    /// folded into per-row weight scales they coarsen the weights of the narrow columns.
    Auto,
    /// One scale and zero point per layer.
    Tensor,
    /// One per input column in every layer.
    Column,
}

impl fmt::Display for InputScale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InputScale::Auto => "auto",
            InputScale::Tensor => "tensor",
            InputScale::Column => "column",
        })
    }
}

/// An int8 layer for F32 `weight` and `bias` by `shape`: per tensor, per column, or (auto)
/// whichever of the two gives outputs nearer the F32 layer's on the calibration inputs.
pub fn choose_int8_layer(
    weight: &[f32],
    bias: &[f32],
    range: &InputRange,
    shape: InputScale,
    clip: f64,
) -> (Int8Layer, bool) {
    match shape {
        InputScale::Tensor => (int8_layer(weight, bias, range, false, clip), false),
        InputScale::Column => (int8_layer(weight, bias, range, true, clip), true),
        InputScale::Auto => {
            let tensor = int8_layer(weight, bias, range, false, clip);
            let column = int8_layer(weight, bias, range, true, clip);
            let (e_tensor, e_column) = (
                output_error(weight, bias, range, &tensor),
                output_error(weight, bias, range, &column),
            );
            if e_column < e_tensor {
                (column, true)
            } else {
                (tensor, false)
            }
        }
    }
}

/// Rows of the calibration inputs an automatic choice compares the shapes on.
const CHOICE_ROWS: usize = 1024;

/// Mean squared difference between the F32 layer's outputs and the int8 layer's, computed by
/// the format's rule, on (up to [`CHOICE_ROWS`] of) the calibration inputs.
fn output_error(weight: &[f32], bias: &[f32], range: &InputRange, layer: &Int8Layer) -> f64 {
    let n = range.columns.max(1);
    let f32s = |t: &OwnedTensor| -> Vec<f32> {
        t.bytes()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    };
    let (acc_scale, inv) = (f32s(&layer.acc_scale), f32s(&layer.input_inv_scale));
    let zero = layer.input_zero.bytes();
    let codes: Vec<i32> = layer
        .weight
        .bytes()
        .iter()
        .map(|&b| i32::from(b as i8))
        .collect();
    let pick = |j: usize, len: usize| if len == 1 { 0 } else { j };
    let rows = range.values.len() / n;
    let step = rows.div_ceil(CHOICE_ROWS).max(1);
    let mut error = 0.0f64;
    for x in range.values.chunks_exact(n).step_by(step) {
        let c: Vec<i32> = (0..n)
            .map(|j| {
                let z = f32::from(zero[pick(j, zero.len())]);
                let v = (x[j] * inv[pick(j, inv.len())]).clamp(-512.0, 512.0);
                ((v.round_ties_even() + z).clamp(0.0, 255.0) - z) as i32
            })
            .collect();
        for (i, (w, b)) in weight.chunks_exact(n).zip(bias).enumerate() {
            let exact: f32 = b + w.iter().zip(x).map(|(w, x)| w * x).sum::<f32>();
            let acc: i32 = codes[i * n..(i + 1) * n]
                .iter()
                .zip(&c)
                .map(|(w, c)| w * c)
                .sum();
            let int8 = acc as f32 * acc_scale[i] + b;
            error += f64::from(exact - int8).powi(2);
        }
    }
    error
}

/// The scale s and zero point z of the range [lo, hi] widened to hold 0: x = s (q - z) for
/// q in 0..=255, with 0 exact (a ReLU's zeros and a padding's zeros stay zero).
pub fn affine(lo: f32, hi: f32) -> (f32, u8) {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    if !(hi - lo).is_finite() || hi - lo <= 0.0 {
        return (1.0, 0);
    }
    let scale = (hi - lo) / 255.0;
    let zero = (-lo / scale).round().clamp(0.0, 255.0) as u8;
    (scale, zero)
}

/// The five tensors of an int8 layer.
pub struct Int8Layer {
    /// I8 `[out, in]`.
    pub weight: OwnedTensor,
    /// F32 `[out]`.
    pub acc_scale: OwnedTensor,
    /// F32 `[1]` or `[in]`.
    pub input_inv_scale: OwnedTensor,
    /// U8 `[1]` or `[in]`.
    pub input_zero: OwnedTensor,
    /// F32 `[out]`, as given.
    pub bias: OwnedTensor,
}

/// An int8 layer from F32 weights `[out][in]`, bias, and the range its input took.
/// Input scales per column or per tensor; the column scales s_j folded into the weights
/// (W'_ij = W_ij s_j), which are then quantized symmetrically per row: a_i = max_j |W'_ij| / 127,
/// w_ij = round(W'_ij / a_i), acc_scale_i = a_i.
pub fn int8_layer(
    weight: &[f32],
    bias: &[f32],
    range: &InputRange,
    per_column: bool,
    clip: f64,
) -> Int8Layer {
    let inputs = range.columns;
    let outputs = bias.len();
    let params: Vec<(f32, u8)> = if per_column {
        (0..inputs)
            .map(|j| {
                let (lo, hi) = range.column_range(j, clip);
                affine(lo, hi)
            })
            .collect()
    } else {
        let (lo, hi) = range.tensor_range(clip);
        vec![affine(lo, hi)]
    };
    // The runtime multiplies by the f32 inverse; the weights take the scale it stands for.
    let inv: Vec<f32> = params.iter().map(|&(s, _)| 1.0 / s).collect();
    let column_scale = |j: usize| 1.0 / f64::from(inv[if per_column { j } else { 0 }]);
    let mut codes = Vec::with_capacity(outputs * inputs);
    let mut acc_scale = Vec::with_capacity(outputs);
    for row in weight.chunks_exact(inputs.max(1)).take(outputs) {
        let folded: Vec<f64> = row
            .iter()
            .enumerate()
            .map(|(j, &w)| f64::from(w) * column_scale(j))
            .collect();
        let a = folded.iter().fold(0.0f64, |m, w| m.max(w.abs())) / 127.0;
        codes.extend(folded.iter().map(|&w| {
            if a > 0.0 {
                (w / a).round().clamp(-127.0, 127.0) as i8
            } else {
                0
            }
        }));
        acc_scale.push(a as f32);
    }
    let columns = params.len();
    Int8Layer {
        weight: OwnedTensor::i8(&[outputs, inputs], &codes),
        acc_scale: OwnedTensor::f32(&[outputs], &acc_scale),
        input_inv_scale: OwnedTensor::f32(&[columns], &inv),
        input_zero: OwnedTensor::u8(&[columns], params.iter().map(|&(_, z)| z).collect()),
        bias: OwnedTensor::f32(&[outputs], bias),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_keep_zero_exact() {
        // ReLU outputs: zero point 0.
        assert_eq!(affine(0.0, 2.55), (0.01, 0));
        let (s, z) = affine(-1.0, 3.0);
        assert!((s - 4.0 / 255.0).abs() < 1e-7);
        assert_eq!(z, 64);
        // A range that never moved: anything works, 0 stays exact.
        assert_eq!(affine(0.0, 0.0), (1.0, 0));
        assert_eq!(affine(f32::INFINITY, f32::NEG_INFINITY), (1.0, 0));
    }

    #[test]
    fn int8_layers_reproduce_the_f32_layer_within_their_steps() {
        // y = W x + b on inputs inside the calibrated ranges, against the integer arithmetic.
        let weight = [0.5, -0.25, 1.0, 0.125, -2.0, 0.75];
        let bias = [0.1, -0.2];
        let range = InputRange {
            columns: 3,
            values: vec![0.0, -1.0, 0.0, 4.0, 1.0, 0.5],
        };
        for per_column in [false, true] {
            let layer = int8_layer(&weight, &bias, &range, per_column, 0.0);
            let w: Vec<i8> = layer.weight.bytes().iter().map(|&b| b as i8).collect();
            let f = |t: &OwnedTensor| -> Vec<f32> {
                t.bytes()
                    .chunks(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                    .collect()
            };
            let (acc_scale, inv) = (f(&layer.acc_scale), f(&layer.input_inv_scale));
            let zero = layer.input_zero.bytes().to_vec();
            let x = [3.0f32, -0.5, 0.25];
            let pick = |v: &[f32], j: usize| if v.len() == 1 { v[0] } else { v[j] };
            let c: Vec<i32> = (0..3)
                .map(|j| {
                    let z = f32::from(zero[if zero.len() == 1 { 0 } else { j }]);
                    let q = ((x[j] * pick(&inv, j)).round_ties_even() + z).clamp(0.0, 255.0);
                    (q - z) as i32
                })
                .collect();
            for i in 0..2 {
                let acc: i32 = (0..3).map(|j| i32::from(w[i * 3 + j]) * c[j]).sum();
                let got = acc as f32 * acc_scale[i] + bias[i];
                let want: f32 = bias[i] + (0..3).map(|j| weight[i * 3 + j] * x[j]).sum::<f32>();
                assert!(
                    (got - want).abs() < 0.05,
                    "per column {per_column}, row {i}: {got} vs {want}"
                );
            }
        }
    }
}
