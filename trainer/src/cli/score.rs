//! `mlet score`: one probability per input row, in input order, to a file or standard output;
//! with `--carry`, CSV with the carried columns' values beside each probability.

use std::process::ExitCode;

use anyhow::{Context, Result};
use mlet_trainer::data::ReadOptions;
use mlet_trainer::output::{check_file_output, is_stdout, write_streamed};
use mlet_trainer::score::score_batches;

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
    let data = if args.carry.is_empty() {
        args.data.clone()
    } else {
        args.data.clone().with_carry(args.carry.clone())?
    };
    write_streamed(&out, |w| {
        if args.carry.is_empty() {
            return score_batches(&bytes, &data, 0..u64::MAX, options, |_, p| {
                for v in p {
                    writeln!(w, "{v}")?;
                }
                Ok(())
            });
        }
        let mut csv = csv::Writer::from_writer(w);
        let mut header = args.carry.clone();
        header.push("probability".into());
        csv.write_record(&header)?;
        let columns = args.carry.len();
        score_batches(&bytes, &data, 0..u64::MAX, options, |batch, p| {
            for (values, v) in batch.carried.chunks(columns).zip(p) {
                for value in values {
                    csv.write_field(value)?;
                }
                csv.write_record([v.to_string()])?;
            }
            Ok(())
        })?;
        csv.flush()?;
        Ok(())
    })
    .with_context(|| format!("model {}", args.model.display()))?;
    Ok(ExitCode::SUCCESS)
}
