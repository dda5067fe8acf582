//! End to end on the real samples in ../shared/data: train, validate, export, re-score the file
//! with mlet-runtime; MLET collapse equivalence; users' own logs (csv:, tsv:, parquet:) with a
//! schema, a Parquet copy training the same bits as its CSV.

mod common;

use std::sync::atomic::AtomicBool;

use mlet_formats::EmbeddingDtype;
use mlet_trainer::data::{DataSpec, ReadOptions};
use mlet_trainer::export::{collapse_gap, export, Int8Scale};
use mlet_trainer::metrics::Metrics;
use mlet_trainer::optim::OptimizerKind;
use mlet_trainer::score::score_file;
use mlet_trainer::train::{train, TrainSettings, Validation};

use common::{csv_as_batch, shared_data, temp, weights, write_parquet};
use mlet_trainer::data::ColumnSchema;
use parquet::basic::{BrotliLevel, Compression, GzipLevel, ZstdLevel};

const CRITEO: &str = "criteo/criteo_kaggle_train_head10k.tsv";
const AVAZU_TRAIN: &str = "avazu/avazu_train_head_part1_8999rows.csv";
const AVAZU_VAL: &str = "avazu/avazu_train_head_part2_1000rows.csv";
const ADULT: &str = "adult/adult.csv";
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

/// The Adult census columns: the six numbers are dense, and those with few values also
/// categorical (a table each, as a hashed model buckets them), with the eight text columns.
const ADULT_SCHEMA: &str = r#"{"label": "income", "positive": [">50K"],
    "dense": ["age", "fnlwgt", "educational-num", "capital-gain", "capital-loss", "hours-per-week"],
    "categorical": ["workclass", "education", "marital-status", "occupation", "relationship",
                    "race", "gender", "native-country", "age", "educational-num",
                    "hours-per-week", "capital-gain"]}"#;

/// Adult's integer columns.
const ADULT_INTS: [&str; 6] = [
    "age",
    "fnlwgt",
    "educational-num",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
];

/// A small model on `spec` (a csv:/parquet: spec) with the Adult schema, validated on the last
/// 20% of its rows.
fn adult_settings(spec: &str) -> TrainSettings {
    let schema = ColumnSchema::from_json(ADULT_SCHEMA).unwrap();
    let data = spec
        .parse::<DataSpec>()
        .unwrap()
        .with_schema(&schema, true)
        .unwrap();
    let mut s = small(data, Validation::Fraction(0.2), 4, 0.05, 128);
    s.bottom_hidden = vec![16];
    s.top_hidden = vec![16];
    s
}

#[test]
fn adult_csv_trains_and_its_parquet_copies_train_the_same_bits() {
    let csv = shared_data(ADULT);
    let settings = adult_settings(&format!("csv:{}", csv.display()));
    let report = train(&settings, &AtomicBool::new(false)).unwrap();
    let val = report.validation.unwrap();
    println!(
        "adult validation AUC {:.5} logloss {:.5}",
        val.auc, val.logloss
    );
    assert_eq!(report.plan.validation.as_ref().unwrap().1, 39_074..48_842);
    assert!(val.auc >= 0.89, "AUC {}", val.auc);
    let expected = weights(&report.model);

    // The same rows as Parquet (integers as INT64, text as dictionary-encoded strings), two
    // row groups, each codec in turn: the same weights, bit for bit.
    let batch = csv_as_batch(&csv, b',', &ADULT_INTS);
    let codecs = [
        Compression::SNAPPY,
        Compression::ZSTD(ZstdLevel::default()),
        Compression::GZIP(GzipLevel::default()),
        Compression::BROTLI(BrotliLevel::default()),
        Compression::LZ4_RAW,
    ];
    for (k, codec) in codecs.into_iter().enumerate() {
        let path = temp(&format!("adult-{k}.parquet"));
        write_parquet(&path, &batch, codec, batch.num_rows().div_ceil(2));
        let settings = adult_settings(&format!("parquet:{}", path.display()));
        let report = train(&settings, &AtomicBool::new(false)).unwrap();
        assert_eq!(report.plan.train_examples, 39_074);
        let got = weights(&report.model);
        for ((name, a), (_, b)) in expected.iter().zip(&got) {
            let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "{codec:?}: {name} differs from the CSV-trained one");
        }
        assert_eq!(
            report.validation.unwrap().auc.to_bits(),
            val.auc.to_bits(),
            "{codec:?}"
        );
    }
}

#[test]
fn criteo_through_tsv_with_a_schema_trains_like_the_criteo_reader() {
    let criteo = shared_data(CRITEO);
    let names: Vec<String> = std::iter::once("label".to_string())
        .chain((1..=13).map(|i| format!("I{i}")))
        .chain((1..=26).map(|i| format!("C{i}")))
        .collect();
    let mut content = names.join("\t").into_bytes();
    content.push(b'\n');
    content.extend(std::fs::read(&criteo).unwrap());
    let tsv = common::temp_file("criteo-header.tsv", content);
    let schema =
        ColumnSchema::from_json(r#"{"label":"label","dense":["I*"],"categorical":["C*"]}"#)
            .unwrap();
    let spec = format!("tsv:{}", tsv.display())
        .parse::<DataSpec>()
        .unwrap()
        .with_schema(&schema, true)
        .unwrap();
    assert_eq!(spec.column_schema().unwrap().categorical, names[14..]);
    let auc = |data: DataSpec| {
        let settings = small(data, Validation::Fraction(0.2), 8, 0.03, 32);
        let report = train(&settings, &AtomicBool::new(false)).unwrap();
        assert_eq!(report.plan.validation.as_ref().unwrap().1, 8000..10_000);
        report.validation.unwrap().auc
    };
    let (by_name, fixed) = (auc(spec), auc(DataSpec::Criteo(criteo)));
    println!("criteo AUC through tsv: {by_name:.5}, through criteo: {fixed:.5}");
    assert!((by_name - fixed).abs() <= 0.005, "{by_name} vs {fixed}");
}
