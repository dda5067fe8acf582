//! The runtime against a plain f64 scorer written here from DESIGN.md's text, on random models
//! of every dtype combination.

use std::collections::HashMap;

use mlet_formats::writer::{OwnedTensor, RandomModel};
use mlet_formats::{Config, DenseTransform, Dtype, EmbeddingDtype};
use mlet_runtime::{Error, Model};

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

    fn layer(&self, group: &str, l: usize, x: &[f64], relu: bool) -> Vec<f64> {
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

    fn score(&self, dense: &[f32], ids: &[u32]) -> f64 {
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
            x = self.layer("bottom", l, &x, true);
        }
        // z_0 is the bottom output; z_{t+1} is row raw_t mod n_t of table t.
        let mut z = vec![x];
        for (t, &raw) in ids.iter().enumerate() {
            let r = (raw % c.table_rows()[t]) as usize;
            let w = &self.tensors[&format!("emb.{t}.weight")];
            let mut row: Vec<f64> = w[r * d..(r + 1) * d].to_vec();
            if c.embedding_dtype() == EmbeddingDtype::Int8 {
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
            top = self.layer("top", l, &top, l + 1 < layers);
        }
        1.0 / (1.0 + (-top[0]).exp())
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
    let mut checked = 0;
    for emb in [
        EmbeddingDtype::F32,
        EmbeddingDtype::F16,
        EmbeddingDtype::Int8,
    ] {
        for mlp_dtype in [Dtype::F32, Dtype::F16] {
            for (int8_per_row, int8_scale_dtype) in [
                (true, Dtype::F16),
                (false, Dtype::F32),
                (true, Dtype::F32),
                (false, Dtype::F16),
            ] {
                if emb != EmbeddingDtype::Int8 && !(int8_per_row && int8_scale_dtype == Dtype::F16)
                {
                    continue;
                }
                for (tables, dim) in [(1, 1), (2, 3), (5, 8), (13, 16), (26, 4), (26, 64), (3, 64)]
                {
                    let config = random_config(&mut rng, tables, dim, emb);
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
                        let dense: Vec<f32> = (0..config.num_dense())
                            .map(|_| (rng.below(2001) as f32 - 500.0) * 0.37)
                            .collect();
                        let ids: Vec<u32> = (0..tables).map(|_| rng.next() as u32).collect();
                        let got = runtime.score(&dense, &ids, &mut scratch).unwrap();
                        let want = reference.score(&dense, &ids);
                        assert!(
                            (got as f64 - want).abs() <= 1e-5,
                            "{emb:?} mlp {mlp_dtype:?} per-row {int8_per_row} {int8_scale_dtype:?} T={tables} d={dim}: runtime {got}, reference {want}"
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, (2 + 2 + 8) * 7 * 8);
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
            assert!(
                (got as f64 - want).abs() <= 1e-5,
                "{emb:?} per-row {int8_per_row}, row {r}: runtime {got}, reference {want}"
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
