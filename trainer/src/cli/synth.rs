//! `mlet synth`: synthetic Criteo-shaped rows from the built-in hidden model, as a Criteo TSV,
//! CSV, TSV or Parquet file.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use mlet_trainer::data::{write_synthetic, Vocab};
use mlet_trainer::output::{check_file_output, is_stdout};

use super::args::{SynthArgs, VocabKind};

pub fn run(args: SynthArgs) -> Result<ExitCode> {
    let out = if is_stdout(&args.out) {
        args.out.clone()
    } else {
        check_file_output(&args.out, "--out")?
    };
    let vocab = match args.vocab {
        VocabKind::Default => Vocab::Default,
        VocabKind::Criteo => Vocab::Criteo {
            scale: args.vocab_scale,
        },
    };
    write_synthetic(
        &out,
        args.format.into(),
        args.rows,
        args.seed,
        args.rank.into(),
        vocab,
    )?;
    if !is_stdout(&out) {
        let _ = writeln!(
            std::io::stderr(),
            "wrote {} rows to {}",
            args.rows,
            out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
