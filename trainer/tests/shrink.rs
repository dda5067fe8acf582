//! `mlet shrink --quick`: every model of the grid trained at every learning rate, the
//! candidates over three seeds, the CSVs and the plot written, an answer within the tolerance it
//! states, a printed command that makes the answer's model again, and a rerun that redoes
//! nothing.

mod common;

use std::collections::HashSet;

use common::{mlet, temp};
use mlet_formats::ModelFile;

fn lines(path: &std::path::Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[test]
fn quick_search_answers_and_its_command_makes_the_model() {
    let out = temp("shrink");
    let _ = std::fs::remove_dir_all(&out);
    let (ok, stdout, stderr) = mlet(&["shrink", "--quick", "--out", out.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("left") && stderr.contains("[1/"),
        "{stderr}"
    );

    // Every cell (plain d=4, d=16, MLET d=4 k=64; all and 1/4 rows) at every rate, seed 0.
    let trainings = lines(&out.join("trainings.csv"));
    let cells: HashSet<&str> = trainings.iter().map(|t| t[0].as_str()).collect();
    assert_eq!(cells.len(), 6, "{cells:?}");
    for cell in &cells {
        let rates: HashSet<&str> = trainings
            .iter()
            .filter(|t| t[0] == *cell && t[5] == "0")
            .map(|t| t[4].as_str())
            .collect();
        assert_eq!(rates.len(), 3, "{cell}: {rates:?}");
    }
    // Each cell scored in every export at one rate: its best on validation.
    let summary = lines(&out.join("shrink.csv"));
    assert_eq!(summary.len(), 6 * 12, "{summary:?}");
    for row in &summary {
        let val = |lr: &str| -> f64 {
            let t = trainings
                .iter()
                .find(|t| t[0] == row[0] && t[4] == lr && t[5] == "0");
            // A rate that diverged (NaN) is never the best.
            let auc: f64 = t.unwrap()[6].parse().unwrap();
            if auc.is_nan() {
                f64::NEG_INFINITY
            } else {
                auc
            }
        };
        let best = ["0.3", "1", "3"]
            .into_iter()
            .max_by(|a, b| val(a).total_cmp(&val(b)))
            .unwrap();
        assert_eq!(row[4], best, "{row:?}");
    }

    // The answer: within its stated tolerance of the best mean, and no smaller model is.
    let line = stdout
        .lines()
        .find(|l| l.starts_with("smallest within "))
        .unwrap_or_else(|| panic!("no answer:\n{stdout}"));
    let tolerance: f64 = line["smallest within ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let best_mean = summary
        .iter()
        .map(|r| r[9].parse::<f64>().unwrap())
        .fold(f64::NEG_INFINITY, f64::max);
    let model_file = stdout
        .lines()
        .find_map(|l| l.strip_prefix("its file (seed 0): "))
        .unwrap_or_else(|| panic!("no file:\n{stdout}"));
    let chosen = summary
        .iter()
        .find(|r| model_file.ends_with(&format!("/{}-lr{}-s0-{}.mlet", r[0], r[4], r[5])))
        .unwrap_or_else(|| panic!("the answer is not in the CSV: {model_file}"));
    let chosen_mean: f64 = chosen[9].parse().unwrap();
    assert!(chosen_mean >= best_mean - tolerance - 1e-5, "{line}");
    assert!(tolerance >= 0.001, "{line}");
    assert_eq!(
        chosen[11], "3",
        "the answer was trained with 3 seeds: {chosen:?}"
    );
    assert!(std::fs::read_to_string(out.join("shrink.svg"))
        .unwrap()
        .contains("Pareto front"));

    // The printed command trains the answer's model again: the same tensors as the search's file.
    let command = stdout
        .lines()
        .skip_while(|l| *l != "make it with:")
        .nth(1)
        .unwrap()
        .trim();
    let again = out.join("again.mlet");
    let mut args: Vec<String> = command.split(' ').skip(1).map(str::to_string).collect();
    let last = args.len() - 1;
    args[last] = again.to_str().unwrap().to_string();
    let (ok, _, stderr) = mlet(&args);
    assert!(ok, "{command}: {stderr}");

    let (a, b) = (
        std::fs::read(model_file).unwrap(),
        std::fs::read(&again).unwrap(),
    );
    let (a, b) = (ModelFile::parse(&a).unwrap(), ModelFile::parse(&b).unwrap());
    assert_eq!(a.config(), b.config());
    for t in 0..a.config().num_tables() {
        assert_eq!(a.table(t), b.table(t), "table {t}");
    }
    for l in 0..a.config().top().layers() {
        assert_eq!(a.top_layer(l), b.top_layer(l), "top layer {l}");
    }

    // A rerun trains and scores nothing again and answers the same.
    let (ok, again_stdout, stderr) = mlet(&["shrink", "--quick", "--out", out.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(!stderr.contains("[1/"), "{stderr}");
    assert_eq!(again_stdout, stdout);
    // Other settings are refused in the same folder.
    let (ok, _, stderr) = mlet(&[
        "shrink",
        "--quick",
        "--lrs",
        "0.5",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!ok && stderr.contains("other settings"), "{stderr}");
    std::fs::remove_dir_all(&out).unwrap();
}
