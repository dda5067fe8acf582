//! `mlet`: train, evaluate, score, inspect and export DLRM models with plain or MLET embeddings.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use clap::{Args, Parser, Subcommand};
use mlet_formats::ModelFile;
use serde_json::json;

use mlet_trainer::data::{write_criteo_tsv, DataSpec, ReadOptions, DEFAULT_SYNTHETIC_RANK};
use mlet_trainer::export::{collapse_gap, export, parse_dtype, FileSizes, Int8Scale};
use mlet_trainer::metrics::Metrics;
use mlet_trainer::model::parse_widths;
use mlet_trainer::optim::OptimizerKind;
use mlet_trainer::output::write_streamed;
use mlet_trainer::score::score_file;
use mlet_trainer::train::{train, training_info, TrainSettings, Validation};
use mlet_trainer::{demo, footprint};

/// Train wide, ship narrow: DLRM click models with MLET embeddings.
#[derive(Parser)]
#[command(name = "mlet", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model, validate it, and optionally export it.
    Train(Box<TrainArgs>),
    /// Score labeled data with an exported model file (through mlet-runtime) and report metrics.
    Eval {
        /// The model file.
        #[arg(long)]
        model: PathBuf,
        /// Data spec: criteo:PATH, avazu:PATH or `synthetic:N[:SEED[:RANK]]`.
        #[arg(long)]
        data: DataSpec,
        /// Skip and count malformed lines instead of stopping.
        #[arg(long)]
        skip_bad_lines: bool,
        /// End with one JSON line (auc, logloss, rows, ...).
        #[arg(long)]
        json: bool,
    },
    /// Print one probability per input row, in input order (labels not needed).
    Score {
        /// The model file.
        #[arg(long)]
        model: PathBuf,
        /// Data spec.
        #[arg(long)]
        data: DataSpec,
        /// Write the probabilities here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Skip and count malformed lines instead of stopping.
        #[arg(long)]
        skip_bad_lines: bool,
    },
    /// Show a model file's configuration, metadata, tensors and bytes.
    Inspect {
        /// The model file.
        model: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write synthetic rows as a Criteo TSV file.
    Synth {
        /// Rows to write.
        #[arg(long)]
        rows: u64,
        /// Which rows (the hidden model is the same for every seed).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Rank of the hidden model's latent vectors.
        #[arg(long, default_value_t = DEFAULT_SYNTHETIC_RANK)]
        rank: usize,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Train plain d=16, plain d=4 and MLET d=4 (k=64) on built-in synthetic data, export int8,
    /// re-score each file with the runtime and print a table.
    Demo,
    /// Validation AUC against model bytes: train plain and MLET models over a grid of d and k,
    /// export each as f32, f16, int8 per-row and int8 per-table, score every file with the
    /// runtime, write a CSV and an SVG plot with the Pareto front, print the headline.
    FootprintBench(FootprintArgs),
}

#[derive(Args)]
struct FootprintArgs {
    /// Output folder (CSV, SVG, exported models; finished models are skipped on a rerun).
    #[arg(long, default_value = "footprint")]
    out: PathBuf,
    /// The CI smoke test: 60k training rows, 10k validation rows (default: 1M and 200k).
    #[arg(long)]
    quick: bool,
    /// Training data instead of the synthetic default (needs --val).
    #[arg(long, requires = "val")]
    data: Option<DataSpec>,
    /// Validation data (needs --data).
    #[arg(long, requires = "data")]
    val: Option<DataSpec>,
    /// Plain widths d, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [2, 4, 8, 16, 32])]
    plain_dims: Vec<usize>,
    /// MLET widths d, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [2, 4, 8])]
    mlet_dims: Vec<usize>,
    /// MLET inner widths k, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [16, 64, 256])]
    mlet_ks: Vec<usize>,
    /// Passes over the training data.
    #[arg(long)]
    epochs: Option<usize>,
    /// Examples per step.
    #[arg(long)]
    batch: Option<usize>,
    /// Learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// sgd or adagrad (row-wise for tables).
    #[arg(long, default_value = "sgd")]
    optimizer: OptimizerKind,
}

#[derive(Args)]
struct TrainArgs {
    /// Training data: criteo:PATH, avazu:PATH or synthetic:N[:SEED[:RANK]].
    #[arg(long)]
    data: DataSpec,
    /// Validation data (a separate source).
    #[arg(long, conflicts_with = "val_fraction")]
    val: Option<DataSpec>,
    /// Validate on this last fraction of the training data's rows (time order kept).
    #[arg(long)]
    val_fraction: Option<f64>,
    /// Embedding width d.
    #[arg(long, default_value_t = 16)]
    dim: usize,
    /// MLET inner width k (0 = plain tables).
    #[arg(long, default_value_t = 0)]
    mlet_k: usize,
    /// MLET: P starts normal with std SCALE / sqrt(k).
    #[arg(long, default_value_t = 1.0)]
    mlet_init_scale: f64,
    /// Bottom MLP hidden widths (the file's bottom_mlp is D-these-d).
    #[arg(long, default_value = "512-256-64")]
    bottom: String,
    /// Top MLP hidden widths (a final 1 is appended).
    #[arg(long, default_value = "512-256")]
    top: String,
    /// Most rows per table (a table gets min(N, distinct training values)).
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
    /// Passes over the training data.
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// Examples per step.
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 0.2)]
    lr: f64,
    /// Seed of the initial weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// sgd or adagrad (row-wise for tables).
    #[arg(long, default_value = "sgd")]
    optimizer: OptimizerKind,
    /// Validate every N steps and keep the best weights (0 = only at the end).
    #[arg(long, default_value_t = 0)]
    eval_every: u64,
    /// Checkpoint file (written every --checkpoint-every steps and on Ctrl-C).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Write a checkpoint every N steps (0 = never).
    #[arg(long, default_value_t = 0)]
    checkpoint_every: u64,
    /// Continue from a checkpoint (same settings).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Export the trained model to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Exported table dtype: f32, f16 or int8.
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// int8 scales: row (F16 per row) or table (F32 per table).
    #[arg(long, default_value = "row")]
    int8_scale: Int8Scale,
    /// Skip and count malformed lines instead of stopping.
    #[arg(long)]
    skip_bad_lines: bool,
    /// cpu or cuda (needs the `cuda` feature).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// On the CPU, train with candle's autograd step (the CUDA path) instead of the
    /// hand-written one: slower, same arithmetic.
    #[arg(long)]
    autograd: bool,
    /// End with one JSON line (auc, logloss, rows, samples_per_s, ...).
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Train(args) => run_train(*args),
        Command::Eval {
            model,
            data,
            skip_bad_lines,
            json,
        } => {
            let bytes = std::fs::read(&model)
                .with_context(|| format!("cannot read {}", model.display()))?;
            let options = ReadOptions {
                skip_bad_lines,
                require_labels: true,
            };
            let (p, y) = score_file(&bytes, &data, 0..u64::MAX, options)
                .with_context(|| format!("model {}", model.display()))?;
            let m = Metrics::compute(&p, &y);
            println!(
                "{}: {} rows: AUC {:.5}, logloss {:.5}, NE {:.5}, accuracy {:.4}",
                data, m.rows, m.auc, m.logloss, m.normalized_entropy, m.accuracy
            );
            if json {
                println!("{}", m.to_json());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Score {
            model,
            data,
            out,
            skip_bad_lines,
        } => {
            let bytes = std::fs::read(&model)
                .with_context(|| format!("cannot read {}", model.display()))?;
            let options = ReadOptions {
                skip_bad_lines,
                require_labels: false,
            };
            let (p, _) = score_file(&bytes, &data, 0..u64::MAX, options)?;
            let write = |w: &mut dyn Write| -> Result<()> {
                for v in &p {
                    writeln!(w, "{v}")?;
                }
                Ok(())
            };
            match out {
                Some(path) => write_streamed(&path, write)?,
                None => write(&mut std::io::stdout().lock())?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect { model, json } => {
            let bytes = std::fs::read(&model)
                .with_context(|| format!("cannot read {}", model.display()))?;
            let file = ModelFile::parse(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", model.display()))?;
            inspect(&file, json);
            Ok(ExitCode::SUCCESS)
        }
        Command::Synth {
            rows,
            seed,
            rank,
            out,
        } => {
            if rank == 0 || rank > 64 {
                bail!("--rank must be 1..=64");
            }
            write_criteo_tsv(&out, rows, seed, rank)?;
            eprintln!("wrote {rows} rows to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo => {
            demo::run(&mut std::io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::FootprintBench(args) => run_footprint(args),
    }
}

fn device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" => cuda_device(),
        _ => bail!("unknown device `{name}` (expected cpu or cuda)"),
    }
}

/// GPU 0, without cudarc's per-allocation events: they order work across streams, and all of
/// the trainer's device work goes through one thread's stream.
#[cfg(feature = "cuda")]
fn cuda_device() -> Result<Device> {
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
    bail!("--device cuda: this `mlet` was built without the `cuda` feature (cargo build --features cuda)")
}

/// Sets a flag on the first Ctrl-C (the run stops after the current step); exits on the second.
fn stop_on_ctrl_c(message: &'static str) -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\n{message} (Ctrl-C again to quit at once)");
    })
    .context("cannot install the Ctrl-C handler")?;
    Ok(stop)
}

fn run_footprint(args: FootprintArgs) -> Result<ExitCode> {
    let mut settings = if args.quick {
        footprint::FootprintSettings::quick(args.out)
    } else {
        footprint::FootprintSettings::full(args.out)
    };
    if let (Some(data), Some(val)) = (args.data, args.val) {
        settings.train = data;
        settings.val = val;
    }
    settings.plain_dims = args.plain_dims;
    settings.mlet_dims = args.mlet_dims;
    settings.mlet_ks = args.mlet_ks;
    settings.epochs = args.epochs.unwrap_or(settings.epochs);
    settings.batch = args.batch.unwrap_or(settings.batch);
    settings.lr = args.lr.unwrap_or(settings.lr);
    settings.optimizer = args.optimizer;
    settings.progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let stop = stop_on_ctrl_c("stopping after this step; finished models are kept")?;
    eprintln!(
        "footprint benchmark: training on {}, validating on {}, {} models, output in {}",
        settings.train,
        settings.val,
        settings.models().len(),
        settings.out_dir.display()
    );
    match footprint::run(&settings, &stop, &mut std::io::stderr())? {
        footprint::Outcome::Interrupted(model) => {
            eprintln!(
                "interrupted while training {}: finished models are in {}; rerun the same command to continue",
                model.label(),
                settings.out_dir.display()
            );
            Ok(ExitCode::from(130))
        }
        footprint::Outcome::Finished(points) => {
            footprint::report(&points, &mut std::io::stdout().lock())?;
            println!(
                "wrote {} and {}",
                settings.out_dir.join("footprint.csv").display(),
                settings.out_dir.join("footprint.svg").display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run_train(args: TrainArgs) -> Result<ExitCode> {
    let dtype = parse_dtype(&args.dtype)?;
    let mut settings = TrainSettings::new(args.data.clone());
    settings.validation = match (&args.val, args.val_fraction) {
        (Some(spec), _) => Validation::Data(spec.clone()),
        (None, Some(f)) => Validation::Fraction(f),
        (None, None) => Validation::None,
    };
    settings.dim = args.dim;
    settings.mlet_k = args.mlet_k;
    settings.mlet_init_scale = args.mlet_init_scale;
    settings.bottom_hidden = parse_widths(&args.bottom).context("--bottom")?;
    settings.top_hidden = parse_widths(&args.top).context("--top")?;
    settings.rows = args.rows;
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
    settings.device = device(&args.device)?;
    settings.autograd = args.autograd;

    let stop = stop_on_ctrl_c("stopping after this step and writing a checkpoint")?;

    let report = train(&settings, &stop)?;
    if let Some(path) = &report.interrupted {
        eprintln!(
            "interrupted at step {}: checkpoint written to {}; continue with the same command plus --resume {}",
            report.steps,
            path.display(),
            path.display()
        );
        return Ok(ExitCode::from(130));
    }
    let plan = &report.plan;
    eprintln!(
        "trained {} steps on {} rows x {} epoch(s), {:.0} samples/s; tables {:?}",
        report.steps, plan.train_examples, settings.epochs, report.samples_per_s, plan.table_rows
    );
    if report.bad_lines > 0 {
        eprintln!("skipped {} malformed line(s)", report.bad_lines);
    }
    if let Some(m) = &report.validation {
        let kept = report
            .best_step
            .map(|s| format!(" (best weights, step {s})"))
            .unwrap_or_default();
        eprintln!(
            "validation{kept}: {} rows: AUC {:.5}, logloss {:.5}, NE {:.5}, accuracy {:.4}",
            m.rows, m.auc, m.logloss, m.normalized_entropy, m.accuracy
        );
    }
    let options = ReadOptions {
        skip_bad_lines: settings.skip_bad_lines,
        require_labels: true,
    };
    let mut gap = None;
    if settings.mlet_k > 0 {
        let (spec, rows) = plan
            .validation
            .clone()
            .unwrap_or((settings.data.clone(), 0..4096));
        let g = collapse_gap(&report.model, &spec, rows, options)?;
        eprintln!("collapse check on {spec}: max |p_two_layer - p_collapsed| = {g:.3e}");
        gap = Some(g);
    }
    let mut sizes = None;
    if let Some(out) = &args.out {
        let info = training_info(&settings, &report);
        let s = export(&report.model, dtype, args.int8_scale, &info, out)?;
        eprintln!("exported {} ({}): {s}", out.display(), args.dtype);
        sizes = Some(s);
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
        if let Some(FileSizes {
            total,
            tables,
            mlp,
            header,
        }) = sizes
        {
            line["bytes"] =
                json!({ "total": total, "tables": tables, "mlp": mlp, "header": header });
        }
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn inspect(file: &ModelFile<'_>, as_json: bool) {
    let config = file.config();
    let d = config.dim();
    let join = |v: &[u32], sep: &str| v.iter().map(u32::to_string).collect::<Vec<_>>().join(sep);
    let mut tensors = Vec::new();
    for t in 0..config.num_tables() {
        let table = file.table(t);
        let n = config.table_rows()[t] as usize;
        tensors.push((format!("emb.{t}.weight"), table.weight, vec![n, d]));
        for (part, tensor) in [("scale", table.scale), ("offset", table.offset)] {
            if let Some(x) = tensor {
                tensors.push((format!("emb.{t}.{part}"), x, vec![x.len()]));
            }
        }
    }
    for (group, widths) in [("bottom", config.bottom()), ("top", config.top())] {
        for l in 0..widths.layers() {
            let layer = if group == "bottom" {
                file.bottom_layer(l)
            } else {
                file.top_layer(l)
            };
            let (i, o) = widths.layer(l);
            tensors.push((format!("{group}.{l}.weight"), layer.weight, vec![o, i]));
            tensors.push((format!("{group}.{l}.bias"), layer.bias, vec![o]));
        }
    }
    let sizes = FileSizes::of(file);
    let mut metadata = Vec::new();
    file.each_metadata(|k, v| metadata.push((k, v)));
    if as_json {
        let out = json!({
            "config": {
                "num_dense": config.num_dense(),
                "table_rows": config.table_rows(),
                "dim": d,
                "bottom_mlp": join(config.bottom().as_slice(), "-"),
                "top_mlp": join(&config.top().as_slice()[1..], "-"),
                "dense_transform": config.dense_transform().as_str(),
                "embedding_dtype": config.embedding_dtype().as_str(),
            },
            "metadata": metadata.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "tensors": tensors.iter().map(|(n, t, s)| json!({"name": n, "dtype": t.dtype.as_str(), "shape": s, "bytes": t.bytes.len()})).collect::<Vec<_>>(),
            "bytes": {"total": sizes.total, "tables": sizes.tables, "mlp": sizes.mlp, "header": sizes.header},
        });
        println!("{out}");
        return;
    }
    println!(
        "DLRM: {} dense, {} tables {:?}, d = {d}, bottom {}, top {}, {} tables, transform {}",
        config.num_dense(),
        config.num_tables(),
        config.table_rows(),
        join(config.bottom().as_slice(), "-"),
        join(config.top().as_slice(), "-"),
        config.embedding_dtype().as_str(),
        config.dense_transform().as_str()
    );
    println!("metadata:");
    for (k, v) in &metadata {
        println!("  {k} = {v}");
    }
    println!("tensors:");
    for (name, t, shape) in &tensors {
        println!(
            "  {name:<18} {:<4} {:?} {} bytes",
            t.dtype.as_str(),
            shape,
            t.bytes.len()
        );
    }
    println!("{sizes}");
}
