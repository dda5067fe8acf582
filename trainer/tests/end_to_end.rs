//! End to end on the real samples in ../shared/data: train, validate, export, re-score the file
//! with mlet-runtime; MLET collapse equivalence.

mod common;

use std::sync::atomic::AtomicBool;

use mlet_formats::EmbeddingDtype;
use mlet_trainer::data::{DataSpec, ReadOptions};
use mlet_trainer::export::{collapse_gap, export, Int8Scale};
use mlet_trainer::metrics::Metrics;
use mlet_trainer::optim::OptimizerKind;
use mlet_trainer::score::score_file;
use mlet_trainer::train::{train, TrainSettings, Validation};

use common::{shared_data, temp};

const CRITEO: &str = "criteo/criteo_kaggle_train_head10k.tsv";
const AVAZU_TRAIN: &str = "avazu/avazu_train_head_part1_8999rows.csv";
const AVAZU_VAL: &str = "avazu/avazu_train_head_part2_1000rows.csv";
const LABELED: ReadOptions = ReadOptions {
    skip_bad_lines: false,
    require_labels: true,
};

/// Small MLPs and row-wise Adagrad: what 8,000 rows support without overfitting in one epoch.
fn small(
    data: DataSpec,
    validation: Validation,
    dim: usize,
    lr: f64,
    batch: usize,
) -> TrainSettings {
    let mut s = TrainSettings::new(data);
    s.validation = validation;
    s.dim = dim;
    s.bottom_hidden = vec![64, 32];
    s.top_hidden = vec![64, 32];
    s.optimizer = OptimizerKind::Adagrad;
    s.lr = lr;
    s.batch = batch;
    s
}

#[test]
fn criteo_first_8000_rows_predict_the_last_2000_and_the_runtime_agrees() {
    let data = DataSpec::Criteo(shared_data(CRITEO));
    let settings = small(data.clone(), Validation::Fraction(0.2), 8, 0.03, 32);
    let report = train(&settings, &AtomicBool::new(false)).unwrap();
    let (val_spec, val_rows) = report.plan.validation.clone().unwrap();
    assert_eq!(val_rows, 8000..10_000);
    let val = report.validation.unwrap();
    println!(
        "criteo validation AUC {:.5} logloss {:.5}",
        val.auc, val.logloss
    );
    // This run reaches 0.7317; a hashed logistic regression gets about 0.725 on the same split
    // (../shared/data/README.md). The floor keeps a margin for rounding changes, not for seeds:
    // the run is deterministic.
    assert!(val.auc >= 0.728, "AUC {}", val.auc);

    // The exported f32 file, scored by the runtime, gives the trainer's AUC.
    let path = temp("criteo.mlet");
    export(
        &report.model,
        EmbeddingDtype::F32,
        Int8Scale::Row,
        &[],
        &path,
    )
    .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let (p, y) = score_file(&bytes, &val_spec, val_rows.clone(), LABELED).unwrap();
    let runtime = Metrics::compute(&p, &y);
    assert_eq!(runtime.rows, 2000);
    assert!(
        (runtime.auc - val.auc).abs() < 1e-4,
        "runtime AUC {} vs trainer {}",
        runtime.auc,
        val.auc
    );
    assert!((runtime.logloss - val.logloss).abs() < 1e-4);

    // Quantized files stay close.
    for (dtype, scale, slack) in [
        (EmbeddingDtype::F16, Int8Scale::Row, 0.002),
        (EmbeddingDtype::Int8, Int8Scale::Row, 0.01),
        (EmbeddingDtype::Int8, Int8Scale::Table, 0.02),
    ] {
        let sizes = export(&report.model, dtype, scale, &[], &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(sizes.total, bytes.len());
        assert_eq!(sizes.tables + sizes.mlp + sizes.header, sizes.total);
        let (p, y) = score_file(&bytes, &val_spec, val_rows.clone(), LABELED).unwrap();
        let auc = Metrics::compute(&p, &y).auc;
        assert!(
            (auc - val.auc).abs() < slack,
            "{dtype:?} {scale}: AUC {auc} vs {}",
            val.auc
        );
    }
}

#[test]
fn avazu_part1_predicts_part2() {
    let data = DataSpec::Avazu(shared_data(AVAZU_TRAIN));
    let settings = small(
        data,
        Validation::Data(DataSpec::Avazu(shared_data(AVAZU_VAL))),
        8,
        0.05,
        64,
    );
    let report = train(&settings, &AtomicBool::new(false)).unwrap();
    let val = report.validation.unwrap();
    println!(
        "avazu validation AUC {:.5} logloss {:.5}",
        val.auc, val.logloss
    );
    assert_eq!(val.rows, 1000);
    // This run reaches 0.7364, short of the 0.745 a hashed logistic regression gets on the same
    // split (../shared/data/README.md): on 8,999 rows the DLRM, which has no first-order term
    // for its ids, does no better at any setting tried (d 2-16, Adagrad lr 0.02-0.1, SGD, one
    // or two epochs, batch 32-128). The floor keeps a margin for rounding changes only.
    assert!(val.auc >= 0.733, "AUC {}", val.auc);
}

#[test]
fn mlet_collapse_keeps_the_outputs() {
    let data = DataSpec::Criteo(shared_data(CRITEO));
    let mut settings = small(data, Validation::Fraction(0.5), 4, 0.03, 64);
    settings.mlet_k = 32;
    // Train on the first 5,000 rows only: enough to move every part of the model.
    let report = train(&settings, &AtomicBool::new(false)).unwrap();
    let (spec, rows) = report.plan.validation.clone().unwrap();
    let gap = collapse_gap(&report.model, &spec, rows.clone(), LABELED).unwrap();
    println!("max |p_two_layer - p_collapsed| = {gap:e}");
    assert!(gap < 1e-5, "collapse moved a probability by {gap}");
    // The collapsed export scores like the trained two-layer model.
    let path = temp("mlet.mlet");
    export(
        &report.model,
        EmbeddingDtype::F32,
        Int8Scale::Row,
        &[("mlet_k".into(), "32".into())],
        &path,
    )
    .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let (p, _) = score_file(&bytes, &spec, rows.clone(), LABELED).unwrap();
    let (q, _) = mlet_trainer::train::predict_all(&report.model, &spec, rows, LABELED).unwrap();
    let worst = p
        .iter()
        .zip(&q)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(worst < 1e-5, "runtime vs two-layer trainer: {worst}");
    let file = mlet_formats::ModelFile::parse(&bytes).unwrap();
    assert_eq!(file.metadata("mlet_k"), Some("32"));
    assert_eq!(file.config().dim(), 4);
}
