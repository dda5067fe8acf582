//! `mlet eval`: scores labeled rows with a model file through `mlet-runtime` and prints metrics.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use mlet_trainer::data::ReadOptions;
use mlet_trainer::metrics::Metrics;
use mlet_trainer::score::score_file;

use super::args::EvalArgs;
use super::print::metrics_line;

pub fn run(args: EvalArgs) -> Result<ExitCode> {
    let bytes = super::read_model(&args.model)?;
    let options = ReadOptions {
        skip_bad_lines: args.skip_bad_lines,
        require_labels: true,
    };
    let (p, y) = score_file(&bytes, &args.data, 0..u64::MAX, options)
        .with_context(|| format!("model {}", args.model.display()))?;
    let m = Metrics::compute(&p, &y);
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}: {}", args.data, metrics_line(&m))?;
    if args.json {
        writeln!(out, "{}", m.to_json())?;
    }
    Ok(ExitCode::SUCCESS)
}
