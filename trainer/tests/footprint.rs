//! `mlet footprint-bench --quick` on a reduced grid: the CSV has one row per model and export,
//! the SVG exists, the Pareto front is not empty, a rerun skips the finished models, a rerun with
//! other settings is refused, and `--optimizer adagrad` trains other weights.

mod common;

/// The reduced grid (plain d=4 and d=16, MLET d=4 k=16) with `extra` arguments.
fn footprint(out: &std::path::Path, extra: &[&str]) -> (bool, String, String) {
    let mut args: Vec<&str> = vec![
        "footprint-bench",
        "--quick",
        "--plain-dims",
        "4,16",
        "--mlet-dims",
        "4",
        "--mlet-ks",
        "16",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    common::mlet(&args)
}

#[test]
fn quick_footprint_writes_csv_svg_and_headline() {
    let out = common::temp("footprint");
    let _ = std::fs::remove_dir_all(&out);
    let (ok, stdout, stderr) = footprint(&out, &[]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("headline"), "{stdout}");

    let csv = std::fs::read_to_string(out.join("footprint.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 3 * 4, "{csv}");
    for model in ["plain-d4", "plain-d16", "mlet-d4-k16"] {
        for export in ["f32", "f16", "int8-row", "int8-table"] {
            let row = rows
                .iter()
                .find(|r| r[0] == model && r[3] == export)
                .unwrap_or_else(|| panic!("no row for {model} {export}:\n{csv}"));
            let auc: f64 = row[6].parse().unwrap();
            assert!(auc > 0.5 && auc < 1.0, "{model} {export}: AUC {auc}");
            assert!(out.join(format!("models/{model}-{export}.mlet")).exists());
        }
    }
    assert!(
        rows.iter().any(|r| r[10] == "true"),
        "empty Pareto front:\n{csv}"
    );
    // The verdict on the paper's claim follows from the CSV: MLET d=4 reaches plain d=16 when
    // its f32 AUC is within 0.001.
    let f32_auc = |model: &str| -> f64 {
        let row = rows.iter().find(|r| r[0] == model && r[3] == "f32");
        row.unwrap()[6].parse().unwrap()
    };
    let gap = f32_auc("plain-d16") - f32_auc("mlet-d4-k16");
    let claim = stdout
        .lines()
        .find(|l| l.contains("paper's claim"))
        .unwrap_or_else(|| panic!("no verdict on the paper's claim:\n{stdout}"));
    if gap <= 0.001 {
        assert!(claim.contains(": reached: tables"), "gap {gap}: {claim}");
    } else {
        assert!(
            claim.ends_with(&format!(": NOT reached: {gap:.4} AUC short")),
            "gap {gap}: {claim}"
        );
    }
    // Smaller exports of one model are smaller files.
    let bytes = |model: &str, export: &str| -> u64 {
        rows.iter()
            .find(|r| r[0] == model && r[3] == export)
            .unwrap()[4]
            .parse()
            .unwrap()
    };
    assert!(bytes("plain-d16", "int8-table") < bytes("plain-d16", "f16"));
    assert!(bytes("plain-d16", "f16") < bytes("plain-d16", "f32"));
    let svg = std::fs::read_to_string(out.join("footprint.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("Pareto front"));

    // A rerun with the same settings skips every finished model and writes the same CSV.
    let (ok, _, stderr) = footprint(&out, &[]);
    assert!(ok, "{stderr}");
    assert_eq!(stderr.matches("done, skipped").count(), 3, "{stderr}");
    assert_eq!(
        std::fs::read_to_string(out.join("footprint.csv")).unwrap(),
        csv
    );

    // Other settings are refused in the same folder, not mixed in: here another optimizer.
    let (ok, _, stderr) = footprint(&out, &["--optimizer", "adagrad"]);
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("holds results of other settings"),
        "{stderr}"
    );

    // In folders of their own, at one learning rate, Adagrad and SGD train every model to other
    // weights (so the option reaches the training), and Adagrad learns.
    let csv_of = |optimizer: &str| {
        let dir = out.with_extension(optimizer);
        let _ = std::fs::remove_dir_all(&dir);
        let (ok, _, stderr) = footprint(&dir, &["--optimizer", optimizer, "--lr", "0.05"]);
        assert!(ok, "{stderr}");
        let csv = std::fs::read_to_string(dir.join("footprint.csv")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        csv
    };
    let (sgd, adagrad) = (csv_of("sgd"), csv_of("adagrad"));
    let auc = |csv: &str, model: &str| -> f64 {
        let row = csv.lines().find(|l| l.starts_with(&format!("{model},")));
        row.unwrap().split(',').nth(6).unwrap().parse().unwrap()
    };
    for model in ["plain-d4", "plain-d16", "mlet-d4-k16"] {
        let (s, a) = (auc(&sgd, model), auc(&adagrad, model));
        assert!(a > 0.55 && a < 1.0, "{model}: Adagrad AUC {a}");
        assert_ne!(s, a, "{model}: the same AUC with SGD and Adagrad");
    }
    std::fs::remove_dir_all(&out).unwrap();
}
