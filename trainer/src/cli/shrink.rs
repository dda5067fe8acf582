//! `mlet shrink`: the smallest model within a given AUC loss (see `mlet_trainer::shrink`).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use mlet_trainer::output::check_folder_output;
use mlet_trainer::shrink::{self, Outcome, ShrinkSettings, Split};

use super::args::ShrinkArgs;

pub fn run(args: ShrinkArgs) -> Result<ExitCode> {
    let mut s = if args.quick {
        ShrinkSettings::quick(args.out.clone())
    } else {
        ShrinkSettings::full(args.out.clone())
    };
    let (data, val) = match args.data.clone() {
        Some(data) => {
            let (data, val) = super::with_columns(&args.columns, data, args.val.clone())?;
            (Some(data), val)
        }
        None => (None, None),
    };
    match (&data, &val) {
        (Some(data), Some(val)) => {
            let rows = val.count_rows()?;
            s.train = Split {
                spec: data.clone(),
                rows: 0..u64::MAX,
            };
            s.val = Split {
                spec: val.clone(),
                rows: 0..rows / 2,
            };
            s.test = Split {
                spec: val.clone(),
                rows: rows / 2..rows,
            };
        }
        (Some(data), None) => {
            // The training rows are those of `mlet train --val-fraction 0.2`, so that the
            // command printed for the answer trains the same model.
            let rows = data.count_rows()?;
            let held = (rows as f64 * 0.2).round() as u64;
            let train = rows - held;
            let split = |range| Split {
                spec: data.clone(),
                rows: range,
            };
            s.train = split(0..train);
            s.val = split(train..train + held / 2);
            s.test = split(train + held / 2..rows);
        }
        _ => {}
    }
    s.max_auc_loss = args.max_auc_loss;
    s.plain_dims = args.plain_dims.unwrap_or(s.plain_dims);
    s.mlet_dims = args.mlet_dims.unwrap_or(s.mlet_dims);
    s.mlet_ks = args.mlet_ks.unwrap_or(s.mlet_ks);
    s.row_fractions = args.row_fractions.unwrap_or(s.row_fractions);
    s.lrs = args.lrs.unwrap_or(s.lrs);
    s.seeds = args.seeds.unwrap_or(s.seeds);
    s.optimizer = args.optimizer.unwrap_or(s.optimizer);
    s.batch = args.batch.unwrap_or(s.batch);
    s.epochs = args.epochs.unwrap_or(s.epochs);
    s.bottom_hidden = args.bottom.map_or(s.bottom_hidden, |w| w.0);
    s.top_hidden = args.top.map_or(s.top_hidden, |w| w.0);
    s.budget = args
        .budget_minutes
        .map(|m| Duration::from_secs_f64(m * 60.0));
    s.progress = std::io::stderr().is_terminal();
    s.check()?;
    check_folder_output(&s.out_dir, "--out")?;
    let stop = super::stop_on_ctrl_c("stopping after this step; finished work is kept")?;
    let mut log = std::io::stderr();
    writeln!(
        log,
        "shrink: training on {}, validating on {}, testing on {}; {} models x {} learning rates, {} seeds for candidates; output in {}",
        s.train,
        s.val,
        s.test,
        s.cells().len(),
        s.lrs.len(),
        s.seeds,
        s.out_dir.display()
    )?;
    match shrink::run(&s, &stop, &mut log)? {
        Outcome::Interrupted => {
            writeln!(
                log,
                "interrupted: finished work is in {}; rerun the same command to continue",
                s.out_dir.display()
            )?;
            Ok(ExitCode::from(130))
        }
        Outcome::Finished {
            scores,
            table_rows,
            trimmed,
            ..
        } => {
            let mut text = Vec::new();
            shrink::report(&s, &scores, &table_rows, &trimmed, &mut text)?;
            let path = s.out_dir.join("shrink-report.txt");
            mlet_formats::writer::write_atomic(&path, &text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            std::io::stdout().lock().write_all(&text)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
