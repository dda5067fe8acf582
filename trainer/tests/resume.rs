//! Resuming from a checkpoint ends with the same bits as an uninterrupted run, whether the
//! checkpoint came from `--checkpoint-every` or from a stop request (Ctrl-C), with the
//! hand-written CPU step and with the autograd step (the CUDA path, losses read back late).

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use mlet_trainer::data::DataSpec;
use mlet_trainer::optim::OptimizerKind;
use mlet_trainer::train::{train, TrainReport, TrainSettings, Validation};

fn settings(
    mlet_k: usize,
    optimizer: OptimizerKind,
    autograd: bool,
    checkpoint: PathBuf,
) -> TrainSettings {
    let mut s = TrainSettings::new(DataSpec::Synthetic {
        rows: 1200,
        seed: 3,
        rank: 4,
        vocab: mlet_trainer::data::Vocab::Default,
    });
    s.validation = Validation::Fraction(0.25);
    s.dim = 4;
    s.mlet_k = mlet_k;
    s.bottom_hidden = vec![16];
    s.top_hidden = vec![16];
    s.rows = 500;
    s.batch = 64;
    s.epochs = 2;
    s.lr = if optimizer == OptimizerKind::Sgd {
        0.1
    } else {
        0.02
    };
    s.optimizer = optimizer;
    s.eval_every = Some(5);
    s.checkpoint = Some(checkpoint);
    s.autograd = autograd;
    s
}

fn weights(report: &TrainReport) -> Vec<(String, Vec<f32>)> {
    common::weights(&report.model)
}

fn check(mlet_k: usize, optimizer: OptimizerKind, autograd: bool) {
    let tag = format!("{}-{mlet_k}-{optimizer}-{autograd}", std::process::id());
    let settings =
        |mlet_k, optimizer, checkpoint| settings(mlet_k, optimizer, autograd, checkpoint);
    let path = std::env::temp_dir().join(format!("mlet-resume-{tag}.ckpt"));
    let never = AtomicBool::new(false);

    // 900 training rows, 2 epochs of 15 batches (the last of 4 rows): 30 steps. One checkpoint,
    // at step 17 (inside epoch 2).
    let mut s = settings(mlet_k, optimizer, path.clone());
    s.checkpoint_every = Some(17);
    let whole = train(&s, &never).unwrap();
    assert_eq!(whole.steps, 30);
    // The weights compared below are the best validated ones: they must come from after the
    // checkpoint (or be the final ones), or both runs would return the same snapshot from
    // before it and the resumed training would go uncompared.
    assert!(
        whole.best_step.is_none_or(|step| step > 17),
        "best weights at step {:?}, before the checkpoint at 17",
        whole.best_step
    );
    let mut resumed_settings = settings(mlet_k, optimizer, path.with_extension("after"));
    resumed_settings.resume = Some(path.clone());
    let resumed = train(&resumed_settings, &never).unwrap();
    assert_eq!(
        resumed.samples,
        12 * 64 + 4,
        "the resumed run trains only the remaining steps"
    );
    assert_eq!(weights(&whole), weights(&resumed));
    assert_eq!(whole.validation, resumed.validation);
    assert_eq!(whole.best_step, resumed.best_step);

    // A stop request after the first step writes a checkpoint and returns; resuming finishes
    // the same run.
    let stop = AtomicBool::new(true);
    let stopped = train(&settings(mlet_k, optimizer, path.clone()), &stop).unwrap();
    assert_eq!(
        (stopped.steps, stopped.interrupted.as_ref()),
        (1, Some(&path))
    );
    stop.store(false, Ordering::SeqCst);
    let mut again = settings(mlet_k, optimizer, path.with_extension("again"));
    again.resume = Some(path.clone());
    let finished = train(&again, &stop).unwrap();
    assert_eq!(weights(&whole), weights(&finished));

    // A resume with different settings is refused, naming the setting.
    let mut other = settings(mlet_k, optimizer, path.with_extension("other"));
    other.lr *= 2.0;
    other.resume = Some(path);
    let e = train(&other, &never)
        .err()
        .expect("a changed lr must be refused");
    assert!(format!("{e:#}").contains("setting `lr`"), "{e:#}");
}

#[test]
fn resume_plain_sgd() {
    check(0, OptimizerKind::Sgd, false);
}

#[test]
fn resume_mlet_adagrad() {
    check(8, OptimizerKind::Adagrad, false);
}

#[test]
fn resume_autograd_mlet_adagrad() {
    check(8, OptimizerKind::Adagrad, true);
}

#[test]
fn resume_autograd_plain_sgd() {
    check(0, OptimizerKind::Sgd, true);
}

#[test]
fn resume_on_csv_data_continues_and_refuses_another_schema() {
    use mlet_trainer::data::{write_synthetic, ColumnSchema, Vocab, WriteFormat};
    let csv = std::env::temp_dir().join(format!("mlet-resume-{}.csv", std::process::id()));
    write_synthetic(&csv, WriteFormat::Csv, 1200, 3, 4, Vocab::Default).unwrap();
    let with = |json: &str, checkpoint: PathBuf| {
        let schema = ColumnSchema::from_json(json).unwrap();
        let data = format!("csv:{}", csv.display())
            .parse::<DataSpec>()
            .unwrap();
        let mut s = settings(0, OptimizerKind::Sgd, false, checkpoint);
        s.data = data.with_schema(&schema, true).unwrap();
        s
    };
    let all = r#"{"label":"label","dense":["I*"],"categorical":["C*"]}"#;
    let path = std::env::temp_dir().join(format!("mlet-resume-csv-{}.ckpt", std::process::id()));
    let mut s = with(all, path.clone());
    s.checkpoint_every = Some(17);
    let whole = train(&s, &AtomicBool::new(false)).unwrap();
    let mut resumed = with(all, path.with_extension("after"));
    resumed.resume = Some(path.clone());
    let resumed = train(&resumed, &AtomicBool::new(false)).unwrap();
    assert_eq!(weights(&whole), weights(&resumed));
    let mut other = with(
        r#"{"label":"label","dense":["I*"],"categorical":["C1","C2"]}"#,
        path.with_extension("other"),
    );
    other.resume = Some(path);
    let e = train(&other, &AtomicBool::new(false))
        .err()
        .expect("another schema must be refused");
    assert!(format!("{e:#}").contains("setting `schema`"), "{e:#}");
}
