//! The `mlet` command: synth -> train --json -> eval --json -> score -> inspect --json, and a
//! malformed input's error message.

mod common;

use common::{mlet, temp};

fn last_json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.lines().last().expect("a JSON line")).unwrap()
}

#[test]
fn synth_train_eval_score_inspect() {
    let tsv = temp("synth.tsv");
    let model = temp("model.mlet");
    let scores = temp("scores.txt");
    let (ok, _, err) = mlet(&[
        "synth",
        "--rows",
        "3000",
        "--seed",
        "9",
        "--out",
        tsv.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let data = format!("criteo:{}", tsv.display());
    let (ok, out, err) = mlet(&[
        "train",
        "--data",
        &data,
        "--val-fraction",
        "0.25",
        "--dim",
        "4",
        "--mlet-k",
        "16",
        "--bottom",
        "16",
        "--top",
        "16",
        "--batch",
        "64",
        "--lr",
        "0.5",
        "--out",
        model.to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "{err}");
    assert!(err.contains("collapse check"), "{err}");
    let train = last_json(&out);
    assert_eq!(train["rows"], 2250);
    assert_eq!(train["val_rows"], 750);
    assert!(train["samples_per_s"].as_f64().unwrap() > 0.0);
    assert!(train["collapse_max_abs_diff"].as_f64().unwrap() < 1e-5);
    let bytes = &train["bytes"];
    assert_eq!(
        bytes["total"].as_u64().unwrap(),
        std::fs::metadata(&model).unwrap().len()
    );

    // eval scores the whole file; its AUC on all 3000 rows is a valid probability ranking.
    let (ok, out, err) = mlet(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        &data,
        "--json",
    ]);
    assert!(ok, "{err}");
    let eval = last_json(&out);
    assert_eq!(eval["rows"], 3000);
    assert!(eval["auc"].as_f64().unwrap() > 0.5 && eval["logloss"].as_f64().unwrap() > 0.0);

    let (ok, out, err) = mlet(&["score", "--model", model.to_str().unwrap(), "--data", &data]);
    assert!(ok, "{err}");
    let stdout_scores: Vec<f32> = out.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(stdout_scores.len(), 3000);
    assert!(stdout_scores.iter().all(|p| (0.0..=1.0).contains(p)));
    let (ok, _, err) = mlet(&[
        "score",
        "--model",
        model.to_str().unwrap(),
        "--data",
        &data,
        "--out",
        scores.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert_eq!(std::fs::read_to_string(&scores).unwrap(), out);

    let (ok, out, err) = mlet(&["inspect", "--model", model.to_str().unwrap(), "--json"]);
    assert!(ok, "{err}");
    let info = last_json(&out);
    assert_eq!(info["config"]["dim"], 4);
    assert_eq!(info["config"]["bottom_mlp"], "13-16-4");
    assert_eq!(info["metadata"]["mlet_k"], "16");
    assert_eq!(info["tensors"].as_array().unwrap().len(), 26 + 4 + 4);

    // The text form lists the metadata sorted by key, the same on every run.
    let (ok, text, err) = mlet(&["inspect", "--model", model.to_str().unwrap()]);
    assert!(ok, "{err}");
    let keys: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "metadata:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.trim().split(" = ").next().unwrap())
        .collect();
    assert!(keys.len() > 20 && keys.contains(&"val_auc"), "{keys:?}");
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
    assert_eq!(
        mlet(&["inspect", "--model", model.to_str().unwrap()]).1,
        text
    );
}

#[test]
fn a_malformed_line_is_reported_not_panicked() {
    let tsv = temp("bad.tsv");
    std::fs::write(&tsv, "1\t2\t3\n").unwrap();
    let (ok, _, err) = mlet(&["train", "--data", &format!("criteo:{}", tsv.display())]);
    assert!(!ok);
    assert!(
        err.contains("line 1") && err.contains("found 3") && !err.contains("panicked"),
        "{err}"
    );
}
