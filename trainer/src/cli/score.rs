//! `mlet score`: one probability per input row, in input order, to a file or standard output.

use std::process::ExitCode;

use anyhow::{Context, Result};
use mlet_trainer::data::ReadOptions;
use mlet_trainer::output::{check_file_output, is_stdout, write_streamed};
use mlet_trainer::score::score_file;

use super::args::ScoreArgs;

pub fn run(args: ScoreArgs) -> Result<ExitCode> {
    let out = if is_stdout(&args.out) {
        args.out.clone()
    } else {
        check_file_output(&args.out, "--out")?
    };
    let bytes = super::read_model(&args.model)?;
    let options = ReadOptions {
        skip_bad_lines: args.skip_bad_lines,
        require_labels: false,
    };
    let (p, _) = score_file(&bytes, &args.data, 0..u64::MAX, options)
        .with_context(|| format!("model {}", args.model.display()))?;
    write_streamed(&out, |w| {
        for v in &p {
            writeln!(w, "{v}")?;
        }
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
