//! `mlet train`: trains, validates, checks MLET's collapse, and exports.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use mlet_trainer::data::ReadOptions;
use mlet_trainer::export::{collapse_gap, export};
use mlet_trainer::output::check_file_output;
use mlet_trainer::quantize::{quantize_file, Layers, Rows, Settings};
use mlet_trainer::train::{train, training_info, TrainSettings, Validation};
use serde_json::json;

use super::args::{DeviceKind, TrainArgs};
use super::print::{metrics_line, report_json, report_lines, sizes_json};

pub fn run(args: TrainArgs) -> Result<ExitCode> {
    let (data, val) = super::with_columns(&args.columns, args.data.clone(), args.val.clone())?;
    // Every output is checked before the first step, not after hours of training.
    let out = match &args.out {
        Some(path) => Some(check_file_output(path, "--out")?),
        None => None,
    };
    if args.checkpoint.is_some() || args.checkpoint_every.is_some() {
        let mut probe = TrainSettings::new(data.clone());
        probe.checkpoint = args.checkpoint.clone();
        check_file_output(&probe.checkpoint_path(), "--checkpoint")?;
    }
    let layers = Layers::from(args.mlp_dtype);
    if layers == Layers::Int8
        && args.calibration.is_none()
        && args.val.is_none()
        && args.val_fraction.is_none()
    {
        bail!("--mlp-dtype int8 calibrates on the validation rows: give --val, --val-fraction or --calibration");
    }
    let mut settings = TrainSettings::new(data);
    settings.validation = match (val, args.val_fraction) {
        (Some(spec), _) => Validation::Data(spec),
        (None, Some(f)) => Validation::Fraction(f),
        (None, None) => Validation::None,
    };
    settings.dim = args.dim;
    settings.mlet_k = args.mlet_k.unwrap_or(0);
    settings.mlet_init_scale = args.mlet_init_scale;
    settings.bottom_hidden = args.bottom.0.clone();
    settings.top_hidden = args.top.0.clone();
    settings.rows = args.rows;
    settings.table_rows = args.table_rows.clone().map(|rows| rows.0);
    settings.epochs = args.epochs;
    settings.batch = args.batch;
    settings.lr = args.lr;
    settings.seed = args.seed;
    settings.optimizer = args.optimizer;
    settings.eval_every = args.eval_every;
    settings.checkpoint = args.checkpoint.clone();
    settings.checkpoint_every = args.checkpoint_every;
    settings.resume = args.resume.clone();
    settings.skip_bad_lines = args.skip_bad_lines;
    settings.progress = !args.json;
    settings.device = device(args.device)?;
    settings.autograd = args.autograd;

    let stop = super::stop_on_ctrl_c("stopping after this step and writing a checkpoint")?;
    let report = train(&settings, &stop)?;
    let training_peak = mlet_trainer::memory::peak_rss();
    let mut log = std::io::stderr();
    if let Some(path) = &report.interrupted {
        writeln!(
            log,
            "interrupted at step {}: checkpoint written to {}; continue with the same command plus --resume {}",
            report.steps,
            path.display(),
            path.display()
        )?;
        return Ok(ExitCode::from(130));
    }
    let plan = &report.plan;
    writeln!(
        log,
        "trained {} steps on {} rows x {} epoch(s), {:.0} samples/s; tables {:?}",
        report.steps, plan.train_examples, settings.epochs, report.samples_per_s, plan.table_rows
    )?;
    if report.bad_lines > 0 {
        writeln!(log, "skipped {} malformed line(s)", report.bad_lines)?;
    }
    if let Some(m) = &report.validation {
        let kept = report
            .best_step
            .map(|s| format!(" (best weights, step {s})"))
            .unwrap_or_default();
        writeln!(log, "validation{kept}: {}", metrics_line(m))?;
    }
    let options = ReadOptions {
        skip_bad_lines: settings.skip_bad_lines,
        require_labels: true,
    };
    let mut sizes = None;
    let mut quantized = None;
    if let Some(out) = &out {
        let info = training_info(&settings, &report);
        let dtype = args.dtype.into();
        let s = if layers == Layers::F32 {
            export(&report.model, dtype, args.int8_scale, &info, out)?
        } else {
            // The F32 file first (beside the output, streamed), then its layers re-stored
            // (int8: calibrated) into the output, and both scored.
            let f32_file = out.with_file_name(format!(
                ".{}.f32.tmp{}",
                out.file_name().unwrap_or_default().to_string_lossy(),
                std::process::id()
            ));
            let quantized_report = (|| -> Result<_> {
                export(&report.model, dtype, args.int8_scale, &info, &f32_file)?;
                let validation = match &plan.validation {
                    Some((spec, range)) => Rows {
                        spec: spec.clone(),
                        range: range.clone(),
                        options,
                    },
                    None => Rows {
                        spec: args.calibration.clone().context("no rows to score")?,
                        range: 0..args.calibration_rows,
                        options,
                    },
                };
                let calibration = match &args.calibration {
                    Some(spec) => Rows {
                        spec: spec.clone(),
                        range: 0..args.calibration_rows,
                        options,
                    },
                    None => Rows {
                        range: validation.range.start
                            ..validation
                                .range
                                .end
                                .min(validation.range.start + args.calibration_rows),
                        ..validation.clone()
                    },
                };
                let quant = Settings {
                    tables: None,
                    layers,
                    input_scale: args.input_scale,
                    clip: args.calibration_clip,
                };
                quantize_file(&f32_file, &quant, Some(&calibration), &validation, out)
            })();
            let _ = std::fs::remove_file(&f32_file);
            let r = quantized_report?;
            writeln!(log, "{}", report_lines(&r, "f32 layers", layers.as_str()))?;
            let s = r.after_bytes;
            quantized = Some(r);
            s
        };
        writeln!(
            log,
            "exported {} ({} tables, {} layers): {s}",
            out.display(),
            dtype.as_str(),
            layers.as_str()
        )?;
        sizes = Some(s);
    }
    // The export streams; the collapse check after it builds the collapsed tables whole (n x d
    // f32), so the export's peak is taken first.
    let export_peak = mlet_trainer::memory::peak_rss();
    let mut gap = None;
    if settings.mlet_k > 0 {
        let (spec, rows) = plan
            .validation
            .clone()
            .unwrap_or((settings.data.clone(), 0..4096));
        let g = collapse_gap(&report.model, &spec, rows, options)?;
        writeln!(
            log,
            "collapse check on {spec}: max |p_two_layer - p_collapsed| = {g:.3e}"
        )?;
        gap = Some(g);
    }
    if args.json {
        let m = report.validation;
        let mut line = json!({
            "auc": m.map(|m| m.auc),
            "logloss": m.map(|m| m.logloss),
            "normalized_entropy": m.map(|m| m.normalized_entropy),
            "accuracy": m.map(|m| m.accuracy),
            "val_rows": m.map(|m| m.rows),
            "rows": plan.train_examples,
            "epochs": settings.epochs,
            "steps": report.steps,
            "samples_per_s": report.samples_per_s,
            "table_rows": plan.table_rows,
            "bad_lines": report.bad_lines,
            "collapse_max_abs_diff": gap,
        });
        if let Some(s) = &sizes {
            line["bytes"] = sizes_json(s);
        }
        // The process's peak resident memory after training, after the export, and after
        // everything (the collapse check comes last).
        line["training_peak_rss_bytes"] = json!(training_peak);
        line["export_peak_rss_bytes"] = json!(export_peak);
        line["peak_rss_bytes"] = json!(mlet_trainer::memory::peak_rss());
        if let Some(r) = &quantized {
            line["quantized"] = report_json(r);
        }
        writeln!(std::io::stdout().lock(), "{line}")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn device(kind: DeviceKind) -> Result<Device> {
    match kind {
        DeviceKind::Cpu => Ok(Device::Cpu),
        DeviceKind::Cuda => cuda_device(),
    }
}

/// GPU 0, without cudarc's per-allocation events: they order work across streams, and all of
/// the trainer's device work goes through one thread's stream.
#[cfg(feature = "cuda")]
fn cuda_device() -> Result<Device> {
    use anyhow::Context;
    let device = Device::new_cuda(0).context("--device cuda")?;
    if let Device::Cuda(cuda) = &device {
        // SAFETY: every tensor of this process is made and used on this device's one stream
        // (candle's per-thread default stream, used from the main thread only), so there is no
        // second stream whose use of a buffer the events would have to order.
        unsafe { cuda.disable_event_tracking() };
    }
    Ok(device)
}

/// Without the `cuda` feature there is no GPU to open.
#[cfg(not(feature = "cuda"))]
fn cuda_device() -> Result<Device> {
    anyhow::bail!(
        "--device cuda: this `mlet` was built without the `cuda` feature (cargo build --features cuda)"
    )
}
