//! `mlet demo`: the README's main job, with no arguments and no downloads.
//!
//! Trains plain d=16, plain d=4 and MLET d=4 (k=64) on the same synthetic rows, exports each as
//! int8 (per-row scales), re-scores the validation rows from each file with `mlet-runtime`, and
//! prints AUC, logloss and bytes. The MLPs are smaller than the paper's (bottom 64-32, top
//! 64-32) so that the three runs finish in well under 3 minutes on 2 cores in a release build;
//! SGD as in the paper, with lr 1.0 at batch 256.

use std::io::Write;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};

use crate::data::{DataSpec, ReadOptions};
use crate::export::{export, Int8Scale};
use crate::metrics::Metrics;
use crate::score::score_file;
use crate::train::{train, training_info, TrainSettings, Validation};
use mlet_formats::EmbeddingDtype;

/// Training rows of the demo.
pub const TRAIN_ROWS: u64 = 400_000;
/// Validation rows of the demo.
pub const VAL_ROWS: u64 = 20_000;

/// Runs the demo, printing progress and the table to `out`.
pub fn run(out: &mut dyn Write) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("mlet-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let train_data = DataSpec::Synthetic {
        rows: TRAIN_ROWS,
        seed: 1,
        rank: 8,
        vocab: crate::data::Vocab::Default,
    };
    let val_data = DataSpec::Synthetic {
        rows: VAL_ROWS,
        seed: 2,
        rank: 8,
        vocab: crate::data::Vocab::Default,
    };
    writeln!(
        out,
        "training on {train_data}, validating on {val_data}; files in {}",
        dir.display()
    )?;
    let runs = [
        ("plain d=16", 16, 0),
        ("plain d=4", 4, 0),
        ("MLET d=4 k=64", 4, 64),
    ];
    let mut rows = Vec::new();
    for (name, dim, k) in runs {
        let mut settings = TrainSettings::new(train_data.clone());
        settings.validation = Validation::Data(val_data.clone());
        settings.dim = dim;
        settings.mlet_k = k;
        settings.bottom_hidden = vec![64, 32];
        settings.top_hidden = vec![64, 32];
        settings.batch = 256;
        settings.lr = 1.0;
        settings.progress = true;
        settings.verbose = false;
        let report = train(&settings, &AtomicBool::new(false))?;
        let path = dir.join(format!("{}.mlet", name.replace([' ', '='], "_")));
        let sizes = export(
            &report.model,
            EmbeddingDtype::Int8,
            Int8Scale::Row,
            &training_info(&settings, &report),
            &path,
        )?;
        let bytes = std::fs::read(&path)?;
        let (p, y) = score_file(
            &bytes,
            &val_data,
            0..u64::MAX,
            ReadOptions {
                skip_bad_lines: false,
                require_labels: true,
            },
        )?;
        let runtime = Metrics::compute(&p, &y);
        let trained = report.validation.context("the demo validates")?;
        writeln!(
            out,
            "{name}: trained AUC {:.4}, {:.0} samples/s",
            trained.auc, report.samples_per_s
        )?;
        rows.push((name, trained.auc, runtime, sizes));
    }
    writeln!(
        out,
        "\n{:<15} {:>10} {:>10} {:>12} {:>12} {:>10}",
        "model", "AUC f32", "AUC int8", "logloss int8", "table bytes", "file bytes"
    )?;
    for (name, auc, m, sizes) in rows {
        writeln!(
            out,
            "{name:<15} {auc:>10.4} {:>10.4} {:>12.4} {:>12} {:>10}",
            m.auc, m.logloss, sizes.tables, sizes.total
        )?;
    }
    Ok(())
}
