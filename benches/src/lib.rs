//! Shared set-up for the benchmarks: the paper's Criteo model configuration with random weights,
//! and reproducible inputs.

use mlet_formats::writer::RandomModel;
use mlet_formats::{Config, DenseTransform, Dtype, EmbeddingDtype, MlpDtype};

/// The paper's Criteo-Kaggle DLRM: 26 tables of `rows` rows, bottom 13-512-256-64-`dim`,
/// top 512-256-1, with random weights (F32 MLPs; int8 tables with per-row F16 scales).
pub fn criteo_model(dim: u32, rows: u32, tables: EmbeddingDtype) -> Vec<u8> {
    criteo_model_mlp(dim, rows, tables, MlpDtype::F32)
}

/// [`criteo_model`] with its MLP layers stored as `mlp` (int8: random codes and scales, see
/// `RandomModel::writer`).
pub fn criteo_model_mlp(dim: u32, rows: u32, tables: EmbeddingDtype, mlp: MlpDtype) -> Vec<u8> {
    random_model(&[13, 512, 256, 64, dim], &[512, 256, 1], rows, tables, mlp)
}

/// The small DLRM that PyTorch's batch-1 anchor (about 410 us here) was measured on: 26 tables
/// of `rows` rows, bottom 13-64-32-4, top 256-128-1.
pub fn small_model(rows: u32, tables: EmbeddingDtype) -> Vec<u8> {
    small_model_mlp(rows, tables, MlpDtype::F32)
}

/// [`small_model`] with its MLP layers stored as `mlp`.
pub fn small_model_mlp(rows: u32, tables: EmbeddingDtype, mlp: MlpDtype) -> Vec<u8> {
    random_model(&[13, 64, 32, 4], &[256, 128, 1], rows, tables, mlp)
}

/// A microcontroller-sized DLRM (about 200 KB as int8): 26 tables of 512 rows, bottom 13-32-4,
/// top 64-1.
pub fn mcu_model(tables: EmbeddingDtype) -> Vec<u8> {
    mcu_model_mlp(tables, MlpDtype::F32)
}

/// [`mcu_model`] with its MLP layers stored as `mlp`.
pub fn mcu_model_mlp(tables: EmbeddingDtype, mlp: MlpDtype) -> Vec<u8> {
    random_model(&[13, 32, 4], &[64, 1], 512, tables, mlp)
}

fn random_model(
    bottom: &[u32],
    top: &[u32],
    rows: u32,
    tables: EmbeddingDtype,
    mlp: MlpDtype,
) -> Vec<u8> {
    let dim = *bottom.last().expect("bottom widths");
    let config = Config::new(&[rows; 26], dim, bottom, top, DenseTransform::Log1p, tables)
        .and_then(|c| c.with_mlp_dtype(mlp))
        .expect("the benchmark configurations are valid");
    let model = RandomModel {
        config,
        mlp_dtype: Dtype::F32,
        int8_per_row: true,
        int8_scale_dtype: Dtype::F16,
        seed: 1,
    };
    model.writer().to_bytes().expect("random models are valid")
}

/// `count` Criteo-shaped examples: 13 dense counts and 26 raw ids each, row after row.
pub fn criteo_inputs(count: usize, seed: u64) -> (Vec<f32>, Vec<u32>) {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let dense = (0..count * 13).map(|_| (next() % 1000) as f32).collect();
    let ids = (0..count * 26).map(|_| next() as u32).collect();
    (dense, ids)
}

/// Bytes of the MLP weights and biases of a model (F32): what one batch-1 score must stream.
pub fn mlp_bytes(config: &Config) -> usize {
    [config.bottom(), config.top()]
        .iter()
        .flat_map(|w| (0..w.layers()).map(|l| w.layer(l)))
        .map(|(n_in, n_out)| (n_in * n_out + n_out) * 4)
        .sum()
}

/// Multiply-adds of one example through a model's MLP layers (`sum in x out`).
pub fn mlp_macs(config: &Config) -> usize {
    [config.bottom(), config.top()]
        .iter()
        .flat_map(|w| (0..w.layers()).map(|l| w.layer(l)))
        .map(|(n_in, n_out)| n_in * n_out)
        .sum()
}
