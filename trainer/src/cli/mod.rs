//! The `mlet` command line: [`args`] defines every command and flag, and each command has its
//! handler in a module of its own (`train`, `eval`, `score`, `inspect`, `quantize`, `synth`,
//! `footprint`, `shrink`);
//! `print` holds what several of them print.
//!
//! Exit status: 0 on success, 1 on an error (printed as `error: ...` on standard error), 130
//! when a run was interrupted with Ctrl-C (its checkpoint or finished models kept), and 141
//! (128 + SIGPIPE, what a shell reports for a program killed by a closed pipe) when the reader of
//! standard output went away, e.g. `mlet inspect --model m.mlet | head`: quietly, no message.

pub mod args;
mod eval;
mod footprint;
mod inspect;
mod print;
mod quantize;
mod score;
mod shrink;
mod synth;
mod train;

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use mlet_trainer::data::DataSpec;
use mlet_trainer::output::is_broken_pipe;

use args::{Cli, Command};

/// Parses the command line, runs the command and turns its outcome into an exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(threads) = cli.threads {
        // Read by candle and by rayon's pool when they first start, which has not happened yet:
        // nothing else runs at this point.
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    }
    match run(cli.command) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::from(141),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Train(args) => train::run(*args),
        Command::Eval(args) => eval::run(args),
        Command::Score(args) => score::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Quantize(args) => quantize::run(args),
        Command::Synth(args) => synth::run(args),
        Command::Demo => {
            mlet_trainer::demo::run(&mut std::io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::FootprintBench(args) => footprint::run(*args),
        Command::Shrink(args) => shrink::run(*args),
    }
}

/// Sets a flag on the first Ctrl-C (the run stops after the current step); exits on the second.
fn stop_on_ctrl_c(message: &'static str) -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        let _ = writeln!(
            std::io::stderr(),
            "\n{message} (Ctrl-C again to quit at once)"
        );
    })
    .context("cannot install the Ctrl-C handler")?;
    Ok(stop)
}

/// `data` and `val` with the schema of `columns` attached, if one was given: its patterns
/// resolved against `data`'s columns, and the same resolved names required of `val`.
fn with_columns(
    columns: &args::SchemaArgs,
    data: DataSpec,
    val: Option<DataSpec>,
) -> Result<(DataSpec, Option<DataSpec>)> {
    let Some(schema) = columns.schema()? else {
        return Ok((data, val));
    };
    let data = data.with_schema(&schema, true)?;
    let resolved = data.column_schema().cloned().unwrap_or(schema);
    let val = val.map(|v| v.with_schema(&resolved, true)).transpose()?;
    Ok((data, val))
}

/// Reads a model file whole.
fn read_model(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read the model {}", path.display()))
}
