//! The models the check embeds (random weights, shaped like the paper's), the corruptions it
//! applies to their headers, and the host's scores the device's are compared with.

use mlet_formats::writer::RandomModel;
use mlet_formats::{Config, DenseTransform, Dtype, EmbeddingDtype, MlpDtype};

use crate::rows::Rows;
use crate::Result;

/// Criteo-Kaggle table cardinalities (the 26 categorical columns of the full data set).
pub const CRITEO_CARDINALITIES: [u32; 26] = [
    1460, 583, 10_131_227, 2_202_608, 305, 24, 12_517, 633, 3, 93_145, 5683, 8_351_593, 3194, 27,
    14_992, 5_461_306, 10, 5652, 2173, 4, 7_046_547, 18, 15, 286_181, 105, 142_572,
];

/// Largest file of a check model, in bytes.
pub const CHECK_MODEL_MAX_BYTES: usize = 256 * 1024;

/// A named model file.
#[derive(Clone, Debug)]
pub struct NamedModel {
    /// Short name (used for file names).
    pub name: String,
    /// What it is, for reports.
    pub description: String,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

#[allow(clippy::too_many_arguments)]
fn random_model(
    rows: &[u32],
    dim: u32,
    bottom_hidden: &[u32],
    top_hidden: &[u32],
    embedding: EmbeddingDtype,
    mlp_dtype: Dtype,
    int8_per_row: bool,
    int8_scale_dtype: Dtype,
    seed: u64,
) -> Vec<u8> {
    let bottom: Vec<u32> = [13]
        .iter()
        .chain(bottom_hidden)
        .chain(&[dim])
        .copied()
        .collect();
    let top: Vec<u32> = top_hidden.iter().chain(&[1]).copied().collect();
    // `Dtype::I8` stands for int8 layers (format v2).
    let mlp = if mlp_dtype == Dtype::I8 {
        MlpDtype::Int8
    } else {
        MlpDtype::F32
    };
    let config = Config::new(rows, dim, &bottom, &top, DenseTransform::Log1p, embedding)
        .and_then(|c| c.with_mlp_dtype(mlp))
        .expect("the check configurations are valid");
    let model = RandomModel {
        config,
        mlp_dtype,
        int8_per_row,
        int8_scale_dtype,
        seed,
    };
    model.writer().to_bytes().expect("random models are valid")
}

/// The five check models, random weights: 26 tables with the Criteo cardinalities capped at the
/// largest power of two (at most 2^14) that keeps the file within [`CHECK_MODEL_MAX_BYTES`];
/// bottom 13-64-32-d, top 64-32-1.
///
/// | name | tables | MLP |
/// |---|---|---|
/// | `d4-int8-row` | d=4 int8, per-row F16 scale/offset | F32 |
/// | `d4-int8-table` | d=4 int8, per-table F32 scale/offset | F32 |
/// | `d8-f16` | d=8 F16 | F16 |
/// | `d16-f32` | d=16 F32 | F32 |
/// | `d5-int4-int8mlp` | d=5 int4 (odd: a padding nibble a row), per-row F16 | int8 (v2) |
pub fn check_models() -> Vec<NamedModel> {
    let specs = [
        (
            "d4-int8-row",
            "d=4 int8 per-row (F16 scales), F32 MLP",
            4,
            EmbeddingDtype::Int8,
            Dtype::F32,
            true,
            Dtype::F16,
        ),
        (
            "d4-int8-table",
            "d=4 int8 per-table (F32 scales), F32 MLP",
            4,
            EmbeddingDtype::Int8,
            Dtype::F32,
            false,
            Dtype::F32,
        ),
        (
            "d8-f16",
            "d=8 f16, F16 MLP",
            8,
            EmbeddingDtype::F16,
            Dtype::F16,
            true,
            Dtype::F16,
        ),
        (
            "d16-f32",
            "d=16 f32, F32 MLP",
            16,
            EmbeddingDtype::F32,
            Dtype::F32,
            true,
            Dtype::F16,
        ),
        (
            "d5-int4-int8mlp",
            "d=5 int4 per-row (F16 scales), int8 MLP (format v2)",
            5,
            EmbeddingDtype::Int4,
            Dtype::I8,
            true,
            Dtype::F16,
        ),
    ];
    specs
        .iter()
        .enumerate()
        .map(|(i, &(name, what, dim, emb, mlp, per_row, scale))| {
            let make = |cap: u32| {
                let rows: Vec<u32> = CRITEO_CARDINALITIES.iter().map(|&n| n.min(cap)).collect();
                random_model(
                    &rows,
                    dim,
                    &[64, 32],
                    &[64, 32],
                    emb,
                    mlp,
                    per_row,
                    scale,
                    1 + i as u64,
                )
            };
            let (cap, bytes) = (0..=14)
                .rev()
                .map(|p| (1u32 << p, make(1 << p)))
                .find(|(_, b)| b.len() <= CHECK_MODEL_MAX_BYTES)
                .expect("a 1-row model fits");
            NamedModel {
                name: name.into(),
                description: format!("{what}, rows capped at {cap}, random weights"),
                bytes,
            }
        })
        .collect()
}

/// The paper's Criteo configuration (26 tables, bottom 13-512-256-64-d, top 512-256-1), random
/// weights: plain d=16 f32 with 2^11 rows per table and MLET-shaped d=4 int8 per-row (F16 scale
/// and offset) with 2^14 rows per table, both with F32 MLPs; and MLET-shaped d=4 with 2^14 rows
/// per table and an int8 MLP (format v2): int4 tables per row (F16), int8 tables per table
/// (F32), and int8 tables per row (F16), the largest that still fits the 4 MiB flash.
pub fn criteo_models() -> Vec<NamedModel> {
    let plain = random_model(
        &[1 << 11; 26],
        16,
        &[512, 256, 64],
        &[512, 256],
        EmbeddingDtype::F32,
        Dtype::F32,
        true,
        Dtype::F16,
        11,
    );
    let mlet = random_model(
        &[1 << 14; 26],
        4,
        &[512, 256, 64],
        &[512, 256],
        EmbeddingDtype::Int8,
        Dtype::F32,
        true,
        Dtype::F16,
        12,
    );
    let narrow = |tables, per_row, scale, seed| {
        random_model(
            &[1 << 14; 26],
            4,
            &[512, 256, 64],
            &[512, 256],
            tables,
            Dtype::I8,
            per_row,
            scale,
            seed,
        )
    };
    let narrow_models = [
        (
            "criteo-d4-int4row-int8mlp-2p14",
            "int4 per-row (F16)",
            EmbeddingDtype::Int4,
            true,
            Dtype::F16,
        ),
        (
            "criteo-d4-int8table-int8mlp-2p14",
            "int8 per-table (F32)",
            EmbeddingDtype::Int8,
            false,
            Dtype::F32,
        ),
        (
            "criteo-d4-int8row-int8mlp-2p14",
            "int8 per-row (F16)",
            EmbeddingDtype::Int8,
            true,
            Dtype::F16,
        ),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (name, tables, dtype, per_row, scale))| NamedModel {
        name: name.into(),
        description: format!(
            "paper Criteo config, MLET-shaped d=4 {tables}, int8 MLP, 2^14 rows/table, random weights"
        ),
        bytes: narrow(dtype, per_row, scale, 13 + i as u64),
    });
    let mut models = vec![
        NamedModel {
            name: "criteo-d16-f32-2p11".into(),
            description: "paper Criteo config, plain d=16 f32, 2^11 rows/table, random weights"
                .into(),
            bytes: plain,
        },
        NamedModel {
            name: "criteo-d4-int8row-2p14".into(),
            description:
                "paper Criteo config, MLET-shaped d=4 int8 per-row, 2^14 rows/table, random weights"
                    .into(),
            bytes: mlet,
        },
    ];
    models.extend(narrow_models);
    models
}

/// Bytes of a model's embedding tables (weights, scales, offsets) and of its MLPs.
pub fn split_bytes(model: &[u8]) -> Result<(usize, usize)> {
    let file = mlet_formats::ModelFile::parse(model).map_err(|e| fail!("model: {e}"))?;
    let config = file.config();
    let tables: usize = (0..config.num_tables())
        .map(|t| {
            let table = file.table(t);
            table.weight.bytes.len()
                + table.scale.map_or(0, |s| s.bytes.len())
                + table.offset.map_or(0, |s| s.bytes.len())
        })
        .sum();
    let mlp: usize = (0..config.bottom().layers())
        .map(|l| file.bottom_layer(l))
        .chain((0..config.top().layers()).map(|l| file.top_layer(l)))
        .map(|l| l.weight.bytes.len() + l.bias.bytes.len())
        .sum();
    Ok((tables, mlp))
}

/// Flips bytes of a model's header in one of the ways [`corruptions`] names.
pub fn corrupt(model: &[u8], how: &str) -> Vec<u8> {
    let mut bad = model.to_vec();
    let find = |needle: &[u8]| {
        model
            .windows(needle.len())
            .position(|w| w == needle)
            .expect("the header has it")
    };
    match how {
        "length" => bad[0] ^= 0xff,
        "json" => bad[8] ^= 0x20,
        "format" => bad[find(b"mlet-dlrm")] ^= 0x01,
        "offsets" => {
            let at = find(b"\"data_offsets\":[") + 16;
            bad[at] = if bad[at] == b'9' { b'1' } else { b'9' };
        }
        other => panic!("unknown corruption {other}"),
    }
    bad
}

/// The corruptions the check applies: header length, the JSON's first byte, the `format`
/// value, a digit of the first data offsets.
pub fn corruptions() -> [&'static str; 4] {
    ["length", "json", "format", "offsets"]
}

/// Every row's probability as f32 bits, scored by `mlet-runtime` on the host.
pub fn host_scores(
    model: &[u8],
    rows: &Rows,
) -> std::result::Result<Vec<u32>, mlet_runtime::Error> {
    let model = mlet_runtime::Model::parse(model)?;
    let mut scratch = vec![0.0f32; model.scratch_len()];
    (0..rows.len())
        .map(|r| {
            let (dense, ids) = rows.row(r);
            model.score(dense, ids, &mut scratch).map(f32::to_bits)
        })
        .collect()
}

/// Differences between host and device scores.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    /// Rows compared.
    pub rows: usize,
    /// Rows whose bits differ.
    pub mismatches: usize,
    /// Largest difference in units in the last place.
    pub max_ulps: u32,
    /// Largest absolute difference.
    pub max_abs: f32,
}

/// Compares score bits row by row (a length difference counts as mismatches).
pub fn compare(host: &[u32], device: &[u32]) -> Comparison {
    let mut c = Comparison {
        rows: host.len().max(device.len()),
        ..Comparison::default()
    };
    c.mismatches = c.rows - host.len().min(device.len());
    for (&h, &d) in host.iter().zip(device) {
        if h != d {
            c.mismatches += 1;
            c.max_ulps = c.max_ulps.max((h as i64 - d as i64).unsigned_abs() as u32);
            c.max_abs = c.max_abs.max((f32::from_bits(h) - f32::from_bits(d)).abs());
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_models_fit_and_differ() {
        let models = check_models();
        assert_eq!(models.len(), 5);
        for m in &models {
            assert!(
                m.bytes.len() <= CHECK_MODEL_MAX_BYTES,
                "{}: {}",
                m.name,
                m.bytes.len()
            );
            assert!(
                m.bytes.len() > CHECK_MODEL_MAX_BYTES / 2,
                "{}: rows cap too small",
                m.name
            );
            let model = mlet_runtime::Model::parse(&m.bytes).unwrap();
            assert_eq!(model.config().num_tables(), 26);
        }
    }

    #[test]
    fn every_corruption_is_rejected_on_the_host() {
        let model = &check_models()[0].bytes;
        for how in corruptions() {
            let bad = corrupt(model, how);
            assert_ne!(&bad, model);
            assert!(mlet_runtime::Model::parse(&bad).is_err(), "{how}");
        }
    }

    #[test]
    fn comparison_counts_ulps() {
        let one = 1.0f32.to_bits();
        let c = compare(&[one, one + 2], &[one, one]);
        assert_eq!((c.rows, c.mismatches, c.max_ulps), (2, 1, 2));
        assert!(c.max_abs > 0.0);
        assert_eq!(compare(&[one], &[]).mismatches, 1);
    }
}
