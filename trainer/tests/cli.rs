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

/// Writes `mlet synth` rows in `format` to [`temp`]`(name)`.
fn synth(name: &str, format: &str) -> std::path::PathBuf {
    let path = temp(name);
    let args = ["synth", "--rows", "2000", "--seed", "5", "--format", format];
    let (ok, _, err) = mlet(&[&args[..], &["--out", path.to_str().unwrap()]].concat());
    assert!(ok, "{err}");
    path
}

#[test]
fn own_log_train_eval_score_inspect_by_column_names() {
    let csv = synth("own.csv", "csv");
    let tsv = synth("own.tsv", "tsv");
    let parquet = synth("own.parquet", "parquet");
    let model = temp("own.mlet");
    let (ok, out, err) = mlet(&[
        "train",
        "--data",
        &format!("csv:{}", csv.display()),
        "--label",
        "label",
        "--dense",
        "I*",
        "--categorical",
        "C*",
        "--val-fraction",
        "0.25",
        "--dim",
        "4",
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
    assert_eq!(last_json(&out)["rows"], 1500);

    // The schema travels with the model, patterns expanded; eval reads every copy by it.
    let (ok, out, err) = mlet(&["inspect", "--model", model.to_str().unwrap(), "--json"]);
    assert!(ok, "{err}");
    let stored = last_json(&out)["metadata"]["schema"]
        .as_str()
        .unwrap()
        .to_string();
    let schema: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(schema["label"], "label");
    assert_eq!(schema["dense"].as_array().unwrap().len(), 13);
    assert_eq!(schema["categorical"][25], "C26");
    let eval = |spec: String| {
        let (ok, out, err) = mlet(&[
            "eval",
            "--model",
            model.to_str().unwrap(),
            "--data",
            &spec,
            "--json",
        ]);
        assert!(ok, "{spec}: {err}");
        last_json(&out)
    };
    let from_csv = eval(format!("csv:{}", csv.display()));
    assert_eq!(from_csv["rows"], 2000);
    assert_eq!(eval(format!("tsv:{}", tsv.display())), from_csv);
    assert_eq!(eval(format!("parquet:{}", parquet.display())), from_csv);

    // Scoring a copy without labels, columns reversed, padded with an id and an extra column,
    // gives the same probabilities; --carry puts the id beside each.
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut shuffled = String::new();
    for (i, line) in text.lines().enumerate() {
        let mut fields: Vec<&str> = line.split(',').skip(1).collect();
        fields.reverse();
        let id = if i == 0 {
            "id".to_string()
        } else {
            format!("\"r,{i}\"")
        };
        shuffled.push_str(&format!("{id},{},junk\n", fields.join(",")));
    }
    let shuffled = common::temp_file("shuffled.csv", shuffled);
    let score = |spec: String, extra: &[&str]| {
        let mut args = vec!["score", "--model", model.to_str().unwrap(), "--data", &spec];
        args.extend(extra);
        let (ok, out, err) = mlet(&args);
        assert!(ok, "{spec}: {err}");
        out
    };
    let plain = score(format!("csv:{}", csv.display()), &[]);
    let carried = score(format!("csv:{}", shuffled.display()), &["--carry", "id"]);
    let mut lines = carried.lines();
    assert_eq!(lines.next(), Some("id,probability"));
    let rows: Vec<(String, String)> = lines
        .map(|l| {
            let (id, p) = l.rsplit_once(',').unwrap();
            (id.to_string(), p.to_string())
        })
        .collect();
    assert_eq!(rows.len(), 2000);
    assert_eq!(rows[0].0, "\"r,1\"", "RFC 4180 quoting of a carried value");
    let probabilities: Vec<String> = rows.into_iter().map(|(_, p)| p).collect();
    assert_eq!(probabilities, plain.lines().collect::<Vec<_>>());

    // A file without one of the model's columns: an error naming it.
    let cut = common::temp_file("cut.csv", "label,I1\n1,2\n");
    let (ok, _, err) = mlet(&[
        "score",
        "--model",
        model.to_str().unwrap(),
        "--data",
        &format!("csv:{}", cut.display()),
    ]);
    assert!(
        !ok && err.contains("no column `I2`") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn schema_files_and_flags_are_checked() {
    let csv = synth("flags.csv", "csv");
    let data = format!("csv:{}", csv.display());
    let schema = common::temp_file(
        "schema.json",
        r#"{"label": "label", "dense": ["I*"], "categorical": ["C1"], "weights": "w"}"#,
    );
    let cases: [(Vec<&str>, &str); 4] = [
        (
            vec!["--schema", schema.to_str().unwrap()],
            "unknown key `weights`",
        ),
        (
            vec!["--schema", schema.to_str().unwrap(), "--label", "label"],
            "cannot be used with",
        ),
        (
            vec![],
            "needs a schema: --schema FILE or --label/--dense/--categorical",
        ),
        (
            vec![
                "--label",
                "label",
                "--dense",
                "I1,nope",
                "--categorical",
                "C1",
            ],
            "no column `nope`",
        ),
    ];
    for (flags, expected) in cases {
        let (ok, _, err) = mlet(&[&["train", "--data", data.as_str()][..], &flags].concat());
        assert!(!ok && err.contains(expected), "{flags:?}: {err}");
    }
    let (ok, _, err) = mlet(&["synth", "--rows", "5", "--format", "parquet", "--out", "-"]);
    assert!(!ok && err.contains("Parquet output needs a file"), "{err}");
}
