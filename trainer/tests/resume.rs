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
