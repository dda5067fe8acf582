//! `mlet footprint-bench`: the accuracy-against-bytes grid (see `mlet_trainer::footprint`).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Result;
use mlet_trainer::footprint::{self, FootprintSettings, Outcome};
use mlet_trainer::output::check_folder_output;

use super::args::FootprintArgs;

pub fn run(args: FootprintArgs) -> Result<ExitCode> {
    let mut settings = if args.quick {
        FootprintSettings::quick(args.out)
    } else {
        FootprintSettings::full(args.out)
    };
    if let (Some(data), Some(val)) = (args.data, args.val) {
        let (data, val) = super::with_columns(&args.columns, data, Some(val))?;
        settings.train = data;
        settings.val = val.unwrap_or_else(|| settings.val.clone());
    }
    settings.plain_dims = args.plain_dims;
    settings.mlet_dims = args.mlet_dims;
    settings.mlet_ks = args.mlet_ks;
    settings.epochs = args.epochs.unwrap_or(settings.epochs);
    settings.batch = args.batch.unwrap_or(settings.batch);
    settings.lr = args.lr.unwrap_or(settings.lr);
    settings.optimizer = args.optimizer;
    settings.progress = std::io::stderr().is_terminal();
    check_folder_output(&settings.out_dir, "--out")?;
    let stop = super::stop_on_ctrl_c("stopping after this step; finished models are kept")?;
    let mut log = std::io::stderr();
    writeln!(
        log,
        "footprint benchmark: training on {}, validating on {}, {} models, output in {}",
        settings.train,
        settings.val,
        settings.models().len(),
        settings.out_dir.display()
    )?;
    match footprint::run(&settings, &stop, &mut log)? {
        Outcome::Interrupted(model) => {
            writeln!(
                log,
                "interrupted while training {}: finished models are in {}; rerun the same command to continue",
                model.label(),
                settings.out_dir.display()
            )?;
            Ok(ExitCode::from(130))
        }
        Outcome::Finished(points) => {
            let mut out = std::io::stdout().lock();
            footprint::report(&points, &mut out)?;
            writeln!(
                out,
                "wrote {} and {}",
                settings.out_dir.join("footprint.csv").display(),
                settings.out_dir.join("footprint.svg").display()
            )?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
