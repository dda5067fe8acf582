//! The runtime against a plain f64 scorer written here from DESIGN.md's text, on random models
//! of every dtype combination.
//!
//! int8 layers follow the text step by step: the input as f32 times its inverse scale (one f32
//! multiply), rounded ties-to-even, plus the zero point, clamped to 0..=255; the sum of
//! products in exact integers; `(acc as f32) * acc_scale + bias` in f32. The layer's input
//! comes from f64 arithmetic here and from f32 in the runtime, so where a product lands within
//! a hair of a rounding boundary the two may pick neighbouring codes: such examples are counted
//! and left out of the comparison (the test requires them to be rare).

use std::collections::HashMap;

use mlet_formats::writer::{OwnedTensor, RandomModel};
use mlet_formats::{Config, DenseTransform, Dtype, EmbeddingDtype, MlpDtype};
use mlet_runtime::{Error, Model};

/// An int8 layer's input closer than this (in code units) to a rounding boundary may round
/// either way between f64 and f32 arithmetic.
const BOUNDARY_MARGIN: f64 = 2e-5;

/// A tensor's values as f64, decoded from its bytes.
fn values(t: &OwnedTensor) -> Vec<f64> {
    match t.dtype() {
        Dtype::F32 => t
            .bytes()
            .chunks(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64)
            .collect(),
        Dtype::F16 => t
            .bytes()
            .chunks(2)
            .map(|b| half::f16::from_le_bytes(b.try_into().unwrap()).to_f64())
            .collect(),
        Dtype::U8 => t.bytes().iter().map(|&q| q as f64).collect(),
        Dtype::I8 => t.bytes().iter().map(|&q| q as i8 as f64).collect(),
    }
}

/// DESIGN.md's DLRM, in f64, from the tensors by name.
struct Reference {
    config: Config,
    tensors: HashMap<String, Vec<f64>>,
}

/// Reference logits are kept within this bound so that an f32 probability still tells logits
/// apart: beyond it, probabilities within 1e-5 of 0 or 1 would hide almost any logit error.
const MAX_LOGIT: f64 = 8.0;

/// The largest difference accepted between the logit of the runtime's probability and the
/// reference logit from the f32 sums; the f32 probability's own rounding comes on top.
const LOGIT_TOLERANCE: f64 = 2e-5;

/// Fails unless the runtime's probability has the reference logit, which must be unsaturated.
fn assert_logit(got: f32, want_logit: f64, what: &str) {
    assert!(
        want_logit.abs() <= MAX_LOGIT,
        "{what}: reference logit {want_logit} is saturated: pick smaller inputs"
    );
    let p = got as f64;
    let got_logit = (p / (1.0 - p)).ln();
    // Two f32 ulps of a probability near 1 (2^-23), seen through the logit's slope.
    let rounding = f64::powi(2.0, -23) / (p * (1.0 - p));
    assert!(
        (got_logit - want_logit).abs() <= LOGIT_TOLERANCE + rounding,
        "{what}: runtime logit {got_logit} (probability {got}), reference {want_logit}"
    );
}

/// A reference logit, and whether every int8 layer input was clear of rounding boundaries.
struct Scored {
    logit: f64,
    clear: bool,
}

impl Reference {
    fn new(model: &RandomModel) -> Reference {
        let writer = model.writer();
        let tensors = writer
            .tensors()
            .iter()
            .map(|(n, t)| (n.clone(), values(t)))
            .collect();
        Reference {
            config: model.config,
            tensors,
        }
    }

    fn layer(&self, group: &str, l: usize, x: &[f64], relu: bool, clear: &mut bool) -> Vec<f64> {
        if self.config.mlp_dtype() == MlpDtype::Int8 {
            return self.int8_layer(group, l, x, relu, clear);
        }
        let w = &self.tensors[&format!("{group}.{l}.weight")];
        let b = &self.tensors[&format!("{group}.{l}.bias")];
        (0..b.len())
            .map(|o| {
                let v = b[o] + (0..x.len()).map(|i| w[o * x.len() + i] * x[i]).sum::<f64>();
                if relu {
                    v.max(0.0)
                } else {
                    v
                }
            })
            .collect()
    }

    /// DESIGN.md's int8 layer: codes, exact integer sums, then two f32 operations.
    fn int8_layer(
        &self,
        group: &str,
        l: usize,
        x: &[f64],
        relu: bool,
        clear: &mut bool,
    ) -> Vec<f64> {
        let t = |part: &str| &self.tensors[&format!("{group}.{l}.{part}")];
        let (w, b, acc_scale) = (t("weight"), t("bias"), t("acc_scale"));
        let (inv, zero) = (t("input_inv_scale"), t("input_zero"));
        let pick = |v: &Vec<f64>, j: usize| if v.len() == 1 { v[0] } else { v[j] };
        let codes: Vec<i64> = (0..x.len())
            .map(|j| {
                let v = (x[j] as f32) * pick(inv, j) as f32;
                // A first layer's input (log1p, or the top input's dots) is computed in f64 here
                // and in f32 by the runtime; later layers' inputs are the same f32 values.
                let exact = x[j] * pick(inv, j);
                if l == 0 && (exact - exact.floor() - 0.5).abs() < BOUNDARY_MARGIN {
                    *clear = false;
                }
                let z = pick(zero, j);
                let q = (v.round_ties_even() as f64 + z).clamp(0.0, 255.0);
                (q - z) as i64
            })
            .collect();
        (0..b.len())
            .map(|o| {
                let acc: i64 = (0..x.len())
                    .map(|j| w[o * x.len() + j] as i64 * codes[j])
                    .sum();
                let y = (acc as f32) * acc_scale[o] as f32 + b[o] as f32;
                if relu && y < 0.0 {
                    0.0
                } else {
                    y as f64
                }
            })
            .collect()
    }

    fn score(&self, dense: &[f32], ids: &[u32]) -> f64 {
        let scored = self.score_clear(dense, ids);
        assert!(
            scored.clear,
            "an int8 layer input sits on a rounding boundary"
        );
        scored.logit
    }

    fn score_clear(&self, dense: &[f32], ids: &[u32]) -> Scored {
        let mut clear = true;
        let c = &self.config;
        let d = c.dim();
        // Dense transform, then the bottom MLP with ReLU after every layer.
        let mut x: Vec<f64> = dense
            .iter()
            .map(|&v| match c.dense_transform() {
                DenseTransform::Log1p => (1.0 + (v as f64).max(0.0)).ln(),
                DenseTransform::Identity => v as f64,
            })
            .collect();
        for l in 0..c.bottom().layers() {
            x = self.layer("bottom", l, &x, true, &mut clear);
        }
        // z_0 is the bottom output; z_{t+1} is row raw_t mod n_t of table t.
        let mut z = vec![x];
        for (t, &raw) in ids.iter().enumerate() {
            let r = (raw % c.table_rows()[t]) as usize;
            let w = &self.tensors[&format!("emb.{t}.weight")];
            let mut row: Vec<f64> = match c.embedding_dtype() {
                // Two codes a byte, element 2c in the low nibble; ceil(d / 2) bytes a row.
                EmbeddingDtype::Int4 => {
                    let width = d.div_ceil(2);
                    (0..d)
                        .map(|k| {
                            let byte = w[r * width + k / 2] as u8;
                            f64::from(if k % 2 == 0 { byte & 15 } else { byte >> 4 })
                        })
                        .collect()
                }
                _ => w[r * d..(r + 1) * d].to_vec(),
            };
            if matches!(
                c.embedding_dtype(),
                EmbeddingDtype::Int8 | EmbeddingDtype::Int4
            ) {
                let pick = |v: &Vec<f64>| if v.len() == 1 { v[0] } else { v[r] };
                let scale = pick(&self.tensors[&format!("emb.{t}.scale")]);
                let offset = pick(&self.tensors[&format!("emb.{t}.offset")]);
                row = row.iter().map(|q| scale * q + offset).collect();
            }
            z.push(row);
        }
        // Top input: z_0, then z_i . z_j for i in 1..=T (outer), j in 0..i (inner).
        let mut top = z[0].clone();
        for i in 1..z.len() {
            for j in 0..i {
                top.push(z[i].iter().zip(&z[j]).map(|(a, b)| a * b).sum());
            }
        }
        let layers = c.top().layers();
        for l in 0..layers {
            top = self.layer("top", l, &top, l + 1 < layers, &mut clear);
        }
        Scored {
            logit: top[0],
            clear,
        }
    }
}

/// xorshift64*, for inputs and shapes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_config(rng: &mut Rng, tables: usize, dim: u32, emb: EmbeddingDtype) -> Config {
    let num_dense = 1 + rng.below(13) as u32;
    let rows: Vec<u32> = (0..tables).map(|_| 1 + rng.below(50) as u32).collect();
    let mut bottom = vec![num_dense];
    for _ in 0..rng.below(3) {
        bottom.push(1 + rng.below(40) as u32);
    }
    bottom.push(dim);
    let mut top: Vec<u32> = (0..rng.below(3))
        .map(|_| 1 + rng.below(40) as u32)
        .collect();
    top.push(1);
    let transform = if rng.below(2) == 0 {
        DenseTransform::Log1p
    } else {
        DenseTransform::Identity
    };
    Config::new(&rows, dim, &bottom, &top, transform, emb).unwrap()
}

#[test]
fn runtime_matches_the_f64_reference_on_every_dtype_combination() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut checked, mut on_boundary) = (0, 0);
    for emb in [
        EmbeddingDtype::F32,
        EmbeddingDtype::F16,
        EmbeddingDtype::Int8,
        EmbeddingDtype::Int4,
    ] {
        for mlp_dtype in [Dtype::F32, Dtype::F16, Dtype::I8] {
            for (int8_per_row, int8_scale_dtype) in [
                (true, Dtype::F16),
                (false, Dtype::F32),
                (true, Dtype::F32),
                (false, Dtype::F16),
            ] {
                // Scale settings only matter for quantized tables: one case for the others.
                let default_scales = int8_per_row && int8_scale_dtype == Dtype::F16;
                if !emb.is_quantized() && !default_scales {
                    continue;
                }
                for (tables, dim) in [(1, 1), (2, 3), (5, 8), (13, 16), (26, 4), (26, 64), (3, 64)]
                {
                    let mut config = random_config(&mut rng, tables, dim, emb);
                    if mlp_dtype == Dtype::I8 {
                        config = config.with_mlp_dtype(MlpDtype::Int8).unwrap();
                    }
                    let model = RandomModel {
                        config,
                        mlp_dtype,
                        int8_per_row,
                        int8_scale_dtype,
                        seed: rng.next(),
                    };
                    let reference = Reference::new(&model);
                    let bytes = model.writer().to_bytes().unwrap();
                    let runtime = Model::parse(&bytes).unwrap();
                    let mut scratch = vec![0.0f32; runtime.scratch_len()];
                    for _ in 0..8 {
                        // Inputs up to 555 (identity transform), halved until the reference
                        // logit is unsaturated.
                        let mut spread = 0.37;
                        let (dense, ids, want) = loop {
                            let dense: Vec<f32> = (0..config.num_dense())
                                .map(|_| (rng.below(2001) as f32 - 500.0) * spread)
                                .collect();
                            let ids: Vec<u32> = (0..tables).map(|_| rng.next() as u32).collect();
                            let want = reference.score_clear(&dense, &ids);
                            if want.logit.abs() <= MAX_LOGIT {
                                break (dense, ids, want);
                            }
                            spread *= 0.5;
                        };
                        let got = runtime.score(&dense, &ids, &mut scratch).unwrap();
                        checked += 1;
                        if !want.clear {
                            on_boundary += 1;
                            continue;
                        }
                        assert_logit(
                            got,
                            want.logit,
                            &format!("{emb:?} mlp {mlp_dtype:?} per-row {int8_per_row} {int8_scale_dtype:?} T={tables} d={dim}"),
                        );
                    }
                }
            }
        }
    }
    // (f32 + f16 tables, 1 each) + (int8 + int4, 4 each), 3 MLP dtypes, 7 shapes, 8 inputs.
    assert_eq!(checked, (1 + 1 + 4 + 4) * 3 * 7 * 8);
    eprintln!("{on_boundary} of {checked} examples had an int8 input on a rounding boundary");
    assert!(
        on_boundary * 50 < checked,
        "{on_boundary} of {checked} on a boundary"
    );
}

/// Tables of more than 1 MB take the x86-64 path that prefetches every row of a tile first.
#[test]
fn tables_larger_than_the_caches_score_like_the_reference() {
    let mut rng = Rng(7);
    for (emb, int8_per_row, int8_scale_dtype) in [
        (EmbeddingDtype::F32, true, Dtype::F16),
        (EmbeddingDtype::F16, true, Dtype::F16),
        (EmbeddingDtype::Int8, true, Dtype::F16),
        (EmbeddingDtype::Int8, false, Dtype::F32),
    ] {
        let config = Config::new(
            &[70_000, 1, 70_000],
            8,
            &[5, 16, 8],
            &[16, 1],
            DenseTransform::Identity,
            emb,
        )
        .unwrap();
        let model = RandomModel {
            config,
            mlp_dtype: Dtype::F32,
            int8_per_row,
            int8_scale_dtype,
            seed: rng.next(),
        };
        let reference = Reference::new(&model);
        let bytes = model.writer().to_bytes().unwrap();
        assert!(bytes.len() > 1 << 20, "{emb:?}: {} bytes", bytes.len());
        let runtime = Model::parse(&bytes).unwrap();
        let rows = 70;
        let dense: Vec<f32> = (0..rows * 5).map(|_| rng.below(100) as f32 * 0.1).collect();
        let ids: Vec<u32> = (0..rows * 3).map(|_| rng.next() as u32).collect();
        let mut scratch = vec![0.0f32; runtime.scratch_len() * 32];
        let mut probs = vec![0.0f32; rows];
        runtime
            .score_batch(&dense, &ids, &mut probs, &mut scratch)
            .unwrap();
        for (r, &got) in probs.iter().enumerate() {
            let want = reference.score(&dense[r * 5..(r + 1) * 5], &ids[r * 3..(r + 1) * 3]);
            assert_logit(
                got,
                want,
                &format!("{emb:?} per-row {int8_per_row}, row {r}"),
            );
        }
    }
}

fn criteo_like() -> (Vec<u8>, Config) {
    let config = Config::new(
        &[100; 26],
        16,
        &[13, 64, 16],
        &[32, 1],
        DenseTransform::Log1p,
        EmbeddingDtype::F32,
    )
    .unwrap();
    (
        RandomModel::new(config).writer().to_bytes().unwrap(),
        config,
    )
}

#[test]
fn batch_scoring_equals_one_at_a_time() {
    let (bytes, _) = criteo_like();
    let model = Model::parse(&bytes).unwrap();
    let mut scratch = vec![0.0f32; model.scratch_len()];
    let mut rng = Rng(42);
    let rows = 150;
    let dense: Vec<f32> = (0..rows * 13).map(|_| rng.below(100) as f32).collect();
    let ids: Vec<u32> = (0..rows * 26).map(|_| rng.next() as u32).collect();
    // Scratch for 1 example, for tiles of 5 and 40 (with a partial last tile), and for more than
    // MAX_TILE (tiles of 64, then 22).
    for tile in [1, 5, 40, 100] {
        let mut batch_scratch = vec![0.0f32; model.scratch_len() * tile + 3];
        let mut batch = vec![0.0f32; rows];
        model
            .score_batch(&dense, &ids, &mut batch, &mut batch_scratch)
            .unwrap();
        for r in 0..rows {
            let one = model
                .score(
                    &dense[r * 13..(r + 1) * 13],
                    &ids[r * 26..(r + 1) * 26],
                    &mut scratch,
                )
                .unwrap();
            assert_eq!(one.to_bits(), batch[r].to_bits(), "tile {tile}, row {r}");
        }
    }
}

#[test]
fn unaligned_model_bytes_score_the_same() {
    let (bytes, _) = criteo_like();
    let mut shifted = vec![0u8; bytes.len() + 3];
    shifted[3..].copy_from_slice(&bytes);
    let (a, b) = (
        Model::parse(&bytes).unwrap(),
        Model::parse(&shifted[3..]).unwrap(),
    );
    let mut scratch = vec![0.0f32; a.scratch_len()];
    let dense = [1.0f32; 13];
    let ids: Vec<u32> = (0..26).map(|i| i * 7919).collect();
    let pa = a.score(&dense, &ids, &mut scratch).unwrap();
    let pb = b.score(&dense, &ids, &mut scratch).unwrap();
    assert_eq!(pa.to_bits(), pb.to_bits());
}

#[test]
fn bad_inputs_get_errors() {
    let (bytes, _) = criteo_like();
    let model = Model::parse(&bytes).unwrap();
    let need = model.scratch_len();
    // (26 + 1) * 16 embedding values, plus the widest layer: top 367 -> 32.
    assert_eq!(need, 27 * 16 + 367 + 32);
    let mut scratch = vec![0.0f32; need];
    let (dense, ids) = ([0.5f32; 13], [1u32; 26]);
    assert_eq!(
        model.score(&dense[..12], &ids, &mut scratch),
        Err(Error::DenseLen {
            expected: 13,
            got: 12
        })
    );
    assert_eq!(
        model.score(&dense, &ids[..25], &mut scratch),
        Err(Error::IdsLen {
            expected: 26,
            got: 25
        })
    );
    assert_eq!(
        model.score(&dense, &ids, &mut scratch[..need - 1]),
        Err(Error::ScratchTooSmall {
            needed: need,
            got: need - 1
        })
    );
    let mut bad = dense;
    bad[4] = f32::NAN;
    assert_eq!(
        model.score(&bad, &ids, &mut scratch),
        Err(Error::NonFiniteDense { index: 4 })
    );
    bad[4] = f32::NEG_INFINITY;
    assert_eq!(
        model.score(&bad, &ids, &mut scratch),
        Err(Error::NonFiniteDense { index: 4 })
    );
    let codes = [
        model.score(&dense[..12], &ids, &mut scratch),
        model.score(&dense, &ids[..25], &mut scratch),
        model.score(&dense, &ids, &mut scratch[..need - 1]),
        model.score(&bad, &ids, &mut scratch),
        Model::parse(&[0u8; 3]).map(|_| 0.0), // shorter than the length prefix: rule 1
    ]
    .map(|r| r.unwrap_err().code());
    assert_eq!(codes, [101, 102, 103, 104, 1]);
    let mut out = [0.0f32; 2];
    assert_eq!(
        model.score_batch(&[0.0; 25], &[0; 52], &mut out, &mut scratch),
        Err(Error::DenseLen {
            expected: 26,
            got: 25
        })
    );
    assert!(model.score(&dense, &ids, &mut scratch).unwrap() > 0.0);
}

#[test]
fn nan_weights_give_an_error_not_a_nan() {
    let config = Config::new(
        &[2],
        1,
        &[1, 1],
        &[1],
        DenseTransform::Identity,
        EmbeddingDtype::F32,
    )
    .unwrap();
    let mut writer = mlet_formats::writer::ModelWriter::new(&config);
    writer
        .tensor("emb.0.weight", OwnedTensor::f32(&[2, 1], &[1.0, 2.0]))
        .tensor("bottom.0.weight", OwnedTensor::f32(&[1, 1], &[f32::NAN]))
        .tensor("bottom.0.bias", OwnedTensor::f32(&[1], &[0.0]))
        .tensor("top.0.weight", OwnedTensor::f32(&[1, 2], &[1.0, 1.0]))
        .tensor("top.0.bias", OwnedTensor::f32(&[1], &[0.0]));
    let bytes = writer.to_bytes().unwrap();
    let model = Model::parse(&bytes).unwrap();
    let mut scratch = vec![0.0; model.scratch_len()];
    assert_eq!(
        model.score(&[1.0], &[0], &mut scratch),
        Err(Error::NonFiniteScore)
    );
}

/// A one-layer int8 model (top only): table 0 of d = 1 holds `value`, so the top input is
/// [z_0, z_1 . z_0] with z_0 from a bottom layer of weight `bottom_code`.
fn int8_model(value: f32, bottom_code: i8, top_codes: [i8; 2], acc_scale: f32) -> Vec<u8> {
    let config = Config::new(
        &[1],
        1,
        &[1, 1],
        &[1],
        DenseTransform::Identity,
        EmbeddingDtype::F32,
    )
    .unwrap()
    .with_mlp_dtype(MlpDtype::Int8)
    .unwrap();
    let mut writer = mlet_formats::writer::ModelWriter::new(&config);
    writer
        .tensor("emb.0.weight", OwnedTensor::f32(&[1, 1], &[value]))
        .tensor("bottom.0.weight", OwnedTensor::i8(&[1, 1], &[bottom_code]))
        .tensor("bottom.0.bias", OwnedTensor::f32(&[1], &[0.0]))
        .tensor("bottom.0.acc_scale", OwnedTensor::f32(&[1], &[1.0]))
        .tensor("bottom.0.input_inv_scale", OwnedTensor::f32(&[1], &[1.0]))
        .tensor("bottom.0.input_zero", OwnedTensor::u8(&[1], vec![0]))
        .tensor("top.0.weight", OwnedTensor::i8(&[1, 2], &top_codes))
        .tensor("top.0.bias", OwnedTensor::f32(&[1], &[0.0]))
        .tensor("top.0.acc_scale", OwnedTensor::f32(&[1], &[acc_scale]))
        .tensor("top.0.input_inv_scale", OwnedTensor::f32(&[2], &[1.0, 1.0]))
        .tensor("top.0.input_zero", OwnedTensor::u8(&[2], vec![0, 128]));
    writer.to_bytes().unwrap()
}

#[test]
fn int8_layers_compute_the_rule_exactly() {
    // dense 3 -> z_0 = relu(code 3 * w) = 3 * w; the dot z_1 . z_0 = value * z_0, coded with zero
    // point 128; the logit = acc_scale * (w0 * code(z_0) + w1 * (code(dot) - 128)).
    let logit = |bytes: &[u8], dense: f32| {
        let model = Model::parse(bytes).unwrap();
        let mut scratch = vec![0.0f32; model.scratch_len()];
        let p = model.score(&[dense], &[0], &mut scratch).unwrap() as f64;
        (p / (1.0 - p)).ln()
    };
    // -128 codes are not written by our exporter, but they compute exactly too.
    let bytes = int8_model(2.0, -128, [-128, -128], 0.001);
    // z_0 = relu(-128 * 3) = 0; the dot = 0 -> code 128 -> 0: logit 0.
    assert!(logit(&bytes, 3.0).abs() < 1e-6);
    let bytes = int8_model(0.5, 1, [-128, 127], 0.001);
    // z_0 = 3, dot = 1.5 -> round_ties_even(1.5) = 2: codes 3 and 130 - 128 = 2.
    let want = 0.001 * (-128.0 * 3.0 + 127.0 * 2.0);
    assert!(
        (logit(&bytes, 3.0) - want).abs() < 1e-4,
        "{}",
        logit(&bytes, 3.0)
    );
    // z_0 = 5, dot = 2.5 -> 2 (ties to even): codes 5 and 2.
    let want = 0.001 * (-128.0 * 5.0 + 127.0 * 2.0);
    assert!(
        (logit(&bytes, 5.0) - want).abs() < 1e-4,
        "{}",
        logit(&bytes, 5.0)
    );
}

#[test]
fn a_nan_reaching_an_int8_layer_is_an_error_not_a_code() {
    // An infinite table value makes the dot infinite (clamps to 255), and inf * 0 = NaN.
    for (value, dense) in [(f32::INFINITY, 0.0), (f32::NAN, 1.0)] {
        let bytes = int8_model(value, 1, [1, 1], 0.001);
        let model = Model::parse(&bytes).unwrap();
        let mut scratch = vec![0.0f32; model.scratch_len()];
        assert_eq!(
            model.score(&[dense], &[0], &mut scratch),
            Err(Error::NonFiniteScore),
            "table value {value}, dense {dense}"
        );
    }
    // An infinite input clamps like any value beyond the range: a score, not an error.
    let bytes = int8_model(f32::INFINITY, 1, [1, 1], 0.001);
    let model = Model::parse(&bytes).unwrap();
    let mut scratch = vec![0.0f32; model.scratch_len()];
    assert!(model.score(&[2.0], &[0], &mut scratch).is_ok());
}

#[test]
fn int4_tables_of_odd_width_ignore_the_padding_nibble() {
    let config = Config::new(
        &[2],
        3,
        &[1, 3],
        &[1],
        DenseTransform::Identity,
        EmbeddingDtype::Int4,
    )
    .unwrap();
    let model = RandomModel::new(config);
    let mut writer = model.writer();
    let reference = Reference::new(&model);
    let clean = writer.to_bytes().unwrap();
    // The same file with every padding nibble set.
    let weight = writer
        .tensors()
        .iter()
        .find(|(n, _)| n == "emb.0.weight")
        .unwrap()
        .1
        .clone();
    let mut codes = weight.bytes().to_vec();
    for row in codes.chunks_mut(2) {
        row[1] |= 0xf0;
    }
    writer.tensor("emb.0.weight", OwnedTensor::u8(&[2, 2], codes));
    let mut names: Vec<_> = writer.tensors().to_vec();
    names.retain(|(n, t)| n != "emb.0.weight" || t.bytes() != weight.bytes());
    let mut dirty = mlet_formats::writer::ModelWriter::new(&config);
    for (n, t) in names {
        dirty.tensor(n, t);
    }
    let dirty = dirty.to_bytes().unwrap();
    for bytes in [&clean, &dirty] {
        let runtime = Model::parse(bytes).unwrap();
        let mut scratch = vec![0.0f32; runtime.scratch_len()];
        for id in 0..2u32 {
            let got = runtime.score(&[1.5], &[id], &mut scratch).unwrap();
            let want = reference.score(&[1.5], &[id]);
            assert_logit(got, want, &format!("row {id}"));
        }
    }
}
