//! int8 layers and int4 tables from trained models: calibrated on real rows, they score near the
//! F32 model through the runtime; `mlet quantize` and `mlet train --mlp-dtype int8` write valid
//! format v2 files and report both AUCs.

mod common;

use common::{mlet, shared_data, temp};
use mlet_formats::{EmbeddingDtype, MlpDtype, ModelFile};
use mlet_trainer::data::{DataSpec, ReadOptions};
use mlet_trainer::quantize::{calibrate, requantize, InputScale, Layers, Rows, Settings};
use mlet_trainer::score::score_file;

const OPTIONS: ReadOptions = ReadOptions {
    skip_bad_lines: false,
    require_labels: true,
};

/// The Criteo sample, and a small model trained on its first 8,000 rows (F32 layers).
fn trained(name: &str) -> (String, std::path::PathBuf) {
    let data = format!(
        "criteo:{}",
        shared_data("criteo/criteo_kaggle_train_head10k.tsv").display()
    );
    let model = temp(name);
    let (ok, _, err) = mlet(&[
        "train",
        "--data",
        &data,
        "--val-fraction",
        "0.2",
        "--optimizer",
        "adagrad",
        "--lr",
        "0.03",
        "--batch",
        "32",
        "--bottom",
        "64-32",
        "--top",
        "64-32",
        "--dim",
        "8",
        "--rows",
        "2048",
        "--out",
        model.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    (data, model)
}

fn last_json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

#[test]
fn int8_layers_score_near_the_f32_model_on_real_rows() {
    let (data, model) = trained("quantize-f32.mlet");
    let f32_bytes = std::fs::read(&model).unwrap();
    let spec: DataSpec = data.parse().unwrap();
    let rows = |range| Rows {
        spec: spec.clone(),
        range,
        options: OPTIONS,
    };
    let file = ModelFile::parse(&f32_bytes).unwrap();
    let ranges = calibrate(&file, &rows(8000..10_000)).unwrap();
    assert_eq!(ranges.rows, 2000);
    for shape in [InputScale::Auto, InputScale::Tensor, InputScale::Column] {
        let settings = Settings {
            tables: None,
            layers: Layers::Int8,
            input_scale: shape,
            clip: 0.0,
        };
        let int8_path = temp(&format!("quantize-{shape}.mlet"));
        requantize(&file, &settings, Some(&ranges))
            .unwrap()
            .write(&int8_path, &file)
            .unwrap();
        let int8_bytes = std::fs::read(&int8_path).unwrap();
        let int8 = ModelFile::parse(&int8_bytes).unwrap();
        assert_eq!(int8.config().mlp_dtype(), MlpDtype::Int8);
        assert_eq!(int8.metadata("format_version"), Some("2"));
        let columns = |l: usize| int8.bottom_layer(l).int8.unwrap().input_inv_scale.len();
        match shape {
            InputScale::Tensor => assert_eq!(columns(0), 1),
            InputScale::Column => assert_eq!(columns(0), 13),
            InputScale::Auto => {}
        }
        // The same rows through the runtime: every probability near the F32 model's.
        let (p32, labels) = score_file(&f32_bytes, &spec, 8000..10_000, OPTIONS).unwrap();
        let (p8, _) = score_file(&int8_bytes, &spec, 8000..10_000, OPTIONS).unwrap();
        let diffs: Vec<f32> = p32.iter().zip(&p8).map(|(a, b)| (a - b).abs()).collect();
        let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
        let max = diffs.iter().copied().fold(0.0, f32::max);
        let auc32 = mlet_trainer::metrics::auc(&p32, &labels);
        let auc8 = mlet_trainer::metrics::auc(&p8, &labels);
        eprintln!("{shape}: mean |dp| {mean:.5}, max {max:.4}, AUC {auc32:.5} -> {auc8:.5}");
        if shape != InputScale::Column {
            assert!(
                mean < 0.015 && max < 0.1,
                "{shape}: mean |dp| {mean}, max {max}"
            );
            assert!(
                (auc8 - auc32).abs() < 0.005,
                "{shape}: AUC {auc32} -> {auc8}"
            );
        }
    }
}

#[test]
fn quantize_writes_a_valid_smaller_file_and_reports_both_aucs() {
    let (data, model) = trained("quantize-cli.mlet");
    let out = temp("quantize-cli-int8.mlet");
    let (ok, stdout, err) = mlet(&[
        "quantize",
        "--model",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--calibration",
        &data,
        "--calibration-rows",
        "2000",
        "--dtype",
        "int4",
        "--json",
    ]);
    assert!(ok, "{err}");
    assert!(err.contains("AUC on") && err.contains("bytes:"), "{err}");
    let report = last_json(&stdout);
    let (before, after) = (
        report["auc_before"].as_f64().unwrap(),
        report["auc_after"].as_f64().unwrap(),
    );
    assert!((before - after).abs() < 0.02, "{before} -> {after}");
    let bytes = std::fs::read(&out).unwrap();
    let file = ModelFile::parse(&bytes).unwrap();
    assert_eq!(file.config().embedding_dtype(), EmbeddingDtype::Int4);
    assert_eq!(file.config().mlp_dtype(), MlpDtype::Int8);
    assert!(file
        .metadata("quant.calibration")
        .unwrap()
        .contains("2000 rows"));
    assert!(report["bytes_after"]["total"].as_u64() < report["bytes_before"]["total"].as_u64());
    // It scores through the runtime (eval), and it cannot be quantized again.
    let (ok, _, err) = mlet(&["eval", "--model", out.to_str().unwrap(), "--data", &data]);
    assert!(ok, "{err}");
    let again = temp("quantize-cli-again.mlet");
    let (ok, _, err) = mlet(&[
        "quantize",
        "--model",
        out.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
        "--calibration",
        &data,
    ]);
    assert!(!ok && err.contains("already int8"), "{err}");
    for path in [model, out] {
        let _ = std::fs::remove_file(path);
    }
}

#[test]
fn train_exports_int8_layers_after_calibrating_on_the_validation_rows() {
    let data = format!(
        "criteo:{}",
        shared_data("criteo/criteo_kaggle_train_head10k.tsv").display()
    );
    let out = temp("train-int8.mlet");
    let args = [
        "train",
        "--data",
        &data,
        "--batch",
        "64",
        "--bottom",
        "32",
        "--top",
        "32",
        "--dim",
        "4",
        "--rows",
        "1024",
        "--dtype",
        "int8",
        "--mlp-dtype",
        "int8",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ];
    // Without validation rows there is nothing to calibrate on: refused before training.
    let (ok, _, err) = mlet(&args);
    assert!(!ok && err.contains("--val-fraction"), "{err}");
    let mut with_val = args.to_vec();
    with_val.extend(["--val-fraction", "0.2"]);
    let (ok, stdout, err) = mlet(&with_val);
    assert!(ok, "{err}");
    let line = last_json(&stdout);
    let q = &line["quantized"];
    assert!(q["auc_before"].as_f64().unwrap() > 0.6, "{line}");
    assert!((q["auc_before"].as_f64().unwrap() - q["auc_after"].as_f64().unwrap()).abs() < 0.02);
    let file = std::fs::read(&out).unwrap();
    let file = ModelFile::parse(&file).unwrap();
    assert_eq!(file.config().mlp_dtype(), MlpDtype::Int8);
    assert!(file
        .metadata("quant.calibration")
        .unwrap()
        .contains("rows 8000..10000"));
    let _ = std::fs::remove_file(out);
}
