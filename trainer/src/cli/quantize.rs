//! `mlet quantize`: re-exports a trained model file with narrower layers or tables, without
//! retraining, and prints the AUC of both files on the same rows and their bytes by part.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use mlet_trainer::data::ReadOptions;
use mlet_trainer::output::check_file_output;
use mlet_trainer::quantize::{quantize_file, Rows, Settings};

use super::args::QuantizeArgs;
use super::print::{report_json, report_lines};

pub fn run(args: QuantizeArgs) -> Result<ExitCode> {
    let out = check_file_output(&args.out, "--out")?;
    let options = ReadOptions {
        skip_bad_lines: args.skip_bad_lines,
        require_labels: true,
    };
    let calibration = Rows {
        spec: args.calibration.clone(),
        range: 0..args.calibration_rows,
        options,
    };
    let validation = match &args.val {
        Some(spec) => Rows {
            spec: spec.clone(),
            range: 0..u64::MAX,
            options,
        },
        None => calibration.clone(),
    };
    let settings = Settings {
        tables: args.dtype.map(|d| (d.into(), args.int8_scale)),
        layers: args.mlp_dtype.into(),
        input_scale: args.input_scale,
        clip: args.calibration_clip,
    };
    let report = quantize_file(
        &args.model,
        &settings,
        Some(&calibration),
        &validation,
        &out,
    )
    .with_context(|| format!("model {}", args.model.display()))?;
    let mut log = std::io::stderr();
    writeln!(log, "wrote {}", out.display())?;
    writeln!(log, "{}", report_lines(&report, "source", "quantized"))?;
    if args.json {
        writeln!(std::io::stdout().lock(), "{}", report_json(&report))?;
    }
    Ok(ExitCode::SUCCESS)
}
