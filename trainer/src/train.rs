//! The training run: plan the splits and table sizes, train with sparse updates, validate,
//! keep the best weights, checkpoint, resume, stop cleanly on request.
//!
//! Rows are read in file order every epoch (no shuffling: Criteo and Avazu are in time order, as
//! in the paper's one-epoch runs), which also makes a run a pure function of its settings: a
//! run resumed from a checkpoint ends with the same bits as an uninterrupted one on the CPU.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use candle_core::{Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};

use crate::checkpoint::{Checkpoint, CheckpointReader, Position, TensorSource};
use crate::data::{BatchStream, DataSpec, ReadOptions};
use crate::memory::{self, Estimate};
use crate::metrics::Metrics;
use crate::model::{Dlrm, ModelSpec};
use crate::optim::{Optimizer, OptimizerKind};
use crate::step::{Loss, Step};

/// Where validation rows come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Validation {
    /// No validation.
    None,
    /// Another data source, whole.
    Data(DataSpec),
    /// The last fraction of the training source's rows (time order kept).
    Fraction(f64),
    /// These rows of a source (the others of the training source may train).
    Rows(DataSpec, Range<u64>),
}

/// Everything a training run needs.
#[derive(Clone, Debug)]
pub struct TrainSettings {
    /// Training data.
    pub data: DataSpec,
    /// The rows of `data` to train on (all by default; the end may lie past the last row).
    pub train_rows: Range<u64>,
    /// Validation data.
    pub validation: Validation,
    /// Embedding width d.
    pub dim: usize,
    /// MLET inner width k (0 = plain).
    pub mlet_k: usize,
    /// MLET projection init scale.
    pub mlet_init_scale: f64,
    /// Bottom MLP hidden widths.
    pub bottom_hidden: Vec<usize>,
    /// Top MLP hidden widths.
    pub top_hidden: Vec<usize>,
    /// Most rows per table: a table gets `min(rows, distinct values in the training rows)`.
    pub rows: usize,
    /// Rows of each table, given (the tables are then sized without reading the data first).
    pub table_rows: Option<Vec<usize>>,
    /// Passes over the training data.
    pub epochs: usize,
    /// Examples per step.
    pub batch: usize,
    /// Learning rate.
    pub lr: f64,
    /// Seed of the initial weights.
    pub seed: u64,
    /// Optimizer.
    pub optimizer: OptimizerKind,
    /// Validate every this many steps and keep the best weights (`None`: only at the end).
    pub eval_every: Option<u64>,
    /// Checkpoint file (also written on interruption; default `mlet-checkpoint.safetensors`).
    pub checkpoint: Option<PathBuf>,
    /// Write a checkpoint every this many steps (`None`: only when stopped).
    pub checkpoint_every: Option<u64>,
    /// Continue from this checkpoint.
    pub resume: Option<PathBuf>,
    /// Skip and count malformed lines instead of stopping.
    pub skip_bad_lines: bool,
    /// Show a progress bar.
    pub progress: bool,
    /// Print the memory estimate on standard error at the start.
    pub verbose: bool,
    /// Where to compute.
    pub device: Device,
    /// Use candle's autograd step on the CPU too (the step of other devices; slower than the
    /// hand-written CPU step, with the same arithmetic).
    pub autograd: bool,
}

impl TrainSettings {
    /// Settings with the paper's defaults (d = 16, plain, bottom 512-256-64, top 512-256,
    /// batch 128, SGD lr 0.2, one epoch) for `data`.
    pub fn new(data: DataSpec) -> TrainSettings {
        TrainSettings {
            data,
            train_rows: 0..u64::MAX,
            validation: Validation::None,
            dim: 16,
            mlet_k: 0,
            mlet_init_scale: 1.0,
            bottom_hidden: vec![512, 256, 64],
            top_hidden: vec![512, 256],
            rows: 1_000_000,
            table_rows: None,
            epochs: 1,
            batch: 128,
            lr: 0.2,
            seed: 0,
            optimizer: OptimizerKind::Sgd,
            eval_every: None,
            checkpoint: None,
            checkpoint_every: None,
            resume: None,
            skip_bad_lines: false,
            progress: false,
            verbose: true,
            device: Device::Cpu,
            autograd: false,
        }
    }

    /// The settings a resumed run must share with the checkpoint, as text.
    pub fn fingerprint(&self) -> Vec<(String, String)> {
        let join = |w: &[usize]| w.iter().map(usize::to_string).collect::<Vec<_>>().join("-");
        let validation = match &self.validation {
            Validation::None => "none".to_string(),
            Validation::Data(d) => d.to_string(),
            Validation::Fraction(f) => format!("fraction {f}"),
            Validation::Rows(d, rows) => format!("{d} rows {}..{}", rows.start, rows.end),
        };
        let mut out: Vec<(String, String)> = [
            ("data", self.data.to_string()),
            (
                "train_rows",
                format!("{}..{}", self.train_rows.start, self.train_rows.end),
            ),
            ("validation", validation),
            ("dim", self.dim.to_string()),
            ("mlet_k", self.mlet_k.to_string()),
            ("mlet_init_scale", self.mlet_init_scale.to_string()),
            ("bottom", join(&self.bottom_hidden)),
            ("top", join(&self.top_hidden)),
            ("rows", self.rows.to_string()),
            (
                "table_rows",
                self.table_rows
                    .as_ref()
                    .map_or("distinct".to_string(), |rows| {
                        rows.iter()
                            .map(usize::to_string)
                            .collect::<Vec<_>>()
                            .join(",")
                    }),
            ),
            ("batch", self.batch.to_string()),
            ("lr", self.lr.to_string()),
            ("seed", self.seed.to_string()),
            ("optimizer", self.optimizer.to_string()),
            ("eval_every", self.eval_every.unwrap_or(0).to_string()),
            ("skip_bad_lines", self.skip_bad_lines.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if let Some(schema) = self.data.column_schema() {
            out.push((SCHEMA_KEY.into(), schema.to_json()));
        }
        out.sort();
        out
    }

    /// The checkpoint path, default included.
    pub fn checkpoint_path(&self) -> PathBuf {
        self.checkpoint
            .clone()
            .unwrap_or_else(|| PathBuf::from("mlet-checkpoint.safetensors"))
    }

    fn read_options(&self) -> ReadOptions {
        ReadOptions {
            skip_bad_lines: self.skip_bad_lines,
            require_labels: true,
        }
    }
}

/// The rows of each split and the size of each table.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Training rows of `settings.data` (`start..u64::MAX`: to the end of the input).
    pub train: Range<u64>,
    /// Validation source and its rows.
    pub validation: Option<(DataSpec, Range<u64>)>,
    /// Rows per table: `min(settings.rows, distinct raw ids in the training rows)`.
    pub table_rows: Vec<usize>,
    /// Training examples per epoch (malformed lines skipped).
    pub train_examples: u64,
}

/// Splits the data and sizes the tables. This reads the training rows once before training
/// (parsing only; memory is bounded by `settings.rows` ids per table), and `--val-fraction`
/// first counts the lines of the file (a byte scan).
pub fn plan(settings: &TrainSettings) -> Result<Plan> {
    ensure!(
        settings.lr.is_finite() && settings.lr > 0.0,
        "--lr must be a finite number above 0, got {}",
        settings.lr
    );
    ensure!(settings.epochs > 0, "--epochs must be at least 1");
    ensure!(settings.batch > 0, "--batch must be at least 1");
    ensure!(settings.rows > 0, "--rows must be at least 1");
    ensure!(settings.dim > 0, "--dim must be at least 1");
    let (train, validation) = match &settings.validation {
        Validation::None => (0..u64::MAX, None),
        Validation::Data(spec) | Validation::Rows(spec, _) => {
            let (val, train) = (spec.schema()?, settings.data.schema()?);
            ensure!(
                val == train,
                "validation data {spec} has {val:?}, the training data {train:?}"
            );
            let rows = match &settings.validation {
                Validation::Rows(_, rows) => rows.clone(),
                _ => 0..u64::MAX,
            };
            (0..u64::MAX, Some((spec.clone(), rows)))
        }
        Validation::Fraction(f) => {
            let total = settings.data.count_rows()?;
            ensure!(
                *f > 0.0 && *f < 1.0,
                "--val-fraction must be between 0 and 1, got {f}"
            );
            let val = (total as f64 * f).round() as u64;
            ensure!(
                val > 0 && val < total,
                "--val-fraction {f} of {total} rows leaves no training or no validation rows"
            );
            (
                0..total - val,
                Some((settings.data.clone(), total - val..total)),
            )
        }
    };
    let train = train.start.max(settings.train_rows.start)..train.end.min(settings.train_rows.end);
    if settings.eval_every.is_some() && validation.is_none() {
        bail!("--eval-every needs validation data (--val or --val-fraction)");
    }
    let (table_rows, train_examples) = match &settings.table_rows {
        Some(rows) => {
            let tables = settings.data.schema()?.num_tables;
            ensure!(
                rows.len() == tables,
                "--table-rows gives {} tables, {} has {tables}",
                rows.len(),
                settings.data
            );
            ensure!(
                rows.iter().all(|&n| n > 0),
                "--table-rows: a table needs a row"
            );
            let examples = train
                .end
                .min(settings.data.count_rows()?)
                .saturating_sub(train.start);
            (rows.clone(), examples)
        }
        None => distinct_rows(
            &settings.data,
            settings.read_options(),
            train.clone(),
            settings.rows,
        )?,
    };
    ensure!(train_examples > 0, "no training rows in {}", settings.data);
    Ok(Plan {
        train,
        validation,
        table_rows,
        train_examples,
    })
}

/// Per table, `min(cap, distinct raw ids)` over `rows`, and the number of examples read.
fn distinct_rows(
    spec: &DataSpec,
    options: ReadOptions,
    rows: Range<u64>,
    cap: usize,
) -> Result<(Vec<usize>, u64)> {
    let tables = spec.schema()?.num_tables;
    let mut seen: Vec<HashSet<u32>> = vec![HashSet::new(); tables];
    let mut stream = BatchStream::spawn(spec, options, rows, 4096)?;
    let mut examples = 0;
    while let Some(batch) = stream.next_batch()? {
        examples += batch.len() as u64;
        for (i, &raw) in batch.ids.iter().enumerate() {
            let set = &mut seen[i % tables];
            if set.len() < cap {
                set.insert(raw);
            }
        }
    }
    Ok((seen.iter().map(|s| s.len().max(1)).collect(), examples))
}

/// Probabilities and labels of `rows` of `spec`, computed by `model` in batches.
pub fn predict_all(
    model: &Dlrm,
    spec: &DataSpec,
    rows: Range<u64>,
    options: ReadOptions,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let mut stream = BatchStream::spawn(spec, options, rows, 4096)?;
    let (mut probabilities, mut labels) = (Vec::new(), Vec::new());
    while let Some(batch) = stream.next_batch()? {
        probabilities.extend(model.predict(&batch)?);
        labels.extend_from_slice(&batch.labels);
    }
    Ok((probabilities, labels))
}

/// The best weights seen at a validation.
struct Best {
    metrics: Metrics,
    step: u64,
    tensors: Vec<(String, Tensor)>,
}

impl Best {
    fn snapshot(model: &Dlrm, metrics: Metrics, step: u64) -> Result<Best> {
        let tensors = model
            .named_tensors()
            .into_iter()
            // Each table is a view of the joined rows: copy the view alone (`Tensor::copy`
            // would clone the whole joined storage for every table).
            .map(|(n, t)| Ok((n, t.force_contiguous()?.detach())))
            .collect::<Result<Vec<_>>>()?;
        Ok(Best {
            metrics,
            step,
            tensors,
        })
    }
}

/// What a training run produced.
pub struct TrainReport {
    /// The trained model (the best validated weights when `--eval-every` found better ones).
    pub model: Dlrm,
    /// The splits and table sizes.
    pub plan: Plan,
    /// Validation metrics of the returned model.
    pub validation: Option<Metrics>,
    /// Step at which the returned weights were validated best (`None`: the final weights).
    pub best_step: Option<u64>,
    /// Steps taken, resumed ones included.
    pub steps: u64,
    /// Examples trained on by this process.
    pub samples: u64,
    /// Training throughput of this process (steps and data reading, not validation), after
    /// its first progress update (about 20 steps of warm-up: CUDA loads its kernels on first
    /// use); over all steps when there were no more.
    pub samples_per_s: f64,
    /// Malformed lines skipped in the last epoch read.
    pub bad_lines: u64,
    /// Set when a stop was requested: the checkpoint written.
    pub interrupted: Option<PathBuf>,
}

/// Trains as `settings` say. When `stop` becomes true, writes a checkpoint after the current
/// step and returns early (see [`TrainReport::interrupted`]).
pub fn train(settings: &TrainSettings, stop: &AtomicBool) -> Result<TrainReport> {
    let plan = plan(settings)?;
    let spec = ModelSpec {
        num_dense: settings.data.schema()?.num_dense,
        table_rows: plan.table_rows.clone(),
        dim: settings.dim,
        mlet_k: settings.mlet_k,
        bottom_hidden: settings.bottom_hidden.clone(),
        top_hidden: settings.top_hidden.clone(),
        mlet_init_scale: settings.mlet_init_scale,
    };
    let estimate = Estimate::of(
        &spec,
        settings.optimizer,
        settings.batch,
        settings.eval_every.is_some(),
    );
    let available = memory::available();
    let line = match available {
        Some(a) => format!("memory: about {estimate}; {} available", memory::bytes(a)),
        None => format!("memory: about {estimate}"),
    };
    if settings.verbose {
        let _ = writeln!(std::io::stderr(), "{line}");
    }
    if let Some(available) = available.filter(|&a| a < estimate.total()) {
        bail!(
            "this run needs about {} and the machine has {} available; try fewer rows per \
             table (--rows, --table-rows), a smaller --dim or --mlet-k, or SGD (Adagrad keeps \
             one value per row)",
            memory::bytes(estimate.total()),
            memory::bytes(available)
        );
    }
    let model = Dlrm::new(spec, settings.seed, &settings.device)?;
    let mut optimizer = Optimizer::new(settings.optimizer, settings.lr, &model)?;
    let mut position = Position {
        epoch: 0,
        next_row: plan.train.start,
        step: 0,
    };
    let mut best: Option<Best> = None;
    if let Some(path) = &settings.resume {
        let mut reader = CheckpointReader::open(path)?;
        let checkpoint = reader.checkpoint.clone();
        let mut saved = checkpoint.settings.clone();
        saved.retain(|(k, _)| k != "epochs");
        for (key, value) in settings.fingerprint() {
            let old = saved
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.as_str());
            if old != Some(value.as_str()) {
                bail!(
                    "cannot resume from {}: setting `{key}` was {:?}, now `{value}`",
                    path.display(),
                    old.unwrap_or("absent")
                );
            }
        }
        model
            .load_named(&mut reader)
            .with_context(|| format!("checkpoint {}", path.display()))?;
        optimizer
            .load_state(&mut reader)
            .with_context(|| format!("checkpoint {}", path.display()))?;
        position = checkpoint.position.clone();
        best = restore_best(&mut reader, &model)
            .with_context(|| format!("checkpoint {}", path.display()))?;
    }

    let mut step = Step::new(&model, settings.autograd)?;
    let total_examples = plan.train_examples * settings.epochs as u64;
    let bar = progress_bar(settings.progress, total_examples);
    bar.set_position((position.epoch as u64 * plan.train_examples).min(total_examples));
    let mut busy = Duration::ZERO;
    let (mut samples, mut bad_lines) = (0u64, 0u64);
    let mut losses = LossLog::new(settings.lr);
    // (samples, busy) at the first progress update: the end of the warm-up.
    let mut warmed_up = None;
    let mut interrupted = None;
    'epochs: while position.epoch < settings.epochs {
        let rows = position.next_row..plan.train.end;
        let mut stream = BatchStream::spawn(
            &settings.data,
            settings.read_options(),
            rows,
            settings.batch,
        )?;
        let mut tick = Instant::now();
        while let Some(batch) = stream.next_batch()? {
            let loss = step.run(&model, &mut optimizer, &batch)?;
            losses.push(position.step + 1, loss)?;
            position.step += 1;
            position.next_row = batch.next_row;
            samples += batch.len() as u64;
            bar.inc(batch.len() as u64);
            if position.step.is_multiple_of(PROGRESS_EVERY) {
                // Reading the losses back waits for the device: once per PROGRESS_EVERY steps.
                let loss = stop_clock(&mut losses, &model, &mut busy, tick)?;
                tick = Instant::now();
                warmed_up.get_or_insert((samples, busy));
                let rate = samples as f64 / busy.as_secs_f64().max(1e-9);
                bar.set_message(format!("{rate:.0} samples/s  loss {loss:.4}"));
            }
            if settings
                .eval_every
                .is_some_and(|n| position.step.is_multiple_of(n))
            {
                let (spec, rows) = plan
                    .validation
                    .as_ref()
                    .expect("plan checked validation data");
                stop_clock(&mut losses, &model, &mut busy, tick)?;
                let (p, y) = predict_all(&model, spec, rows.clone(), settings.read_options())?;
                let metrics = Metrics::compute(&p, &y);
                tick = Instant::now();
                let line = format!(
                    "step {}: validation AUC {:.5}, logloss {:.5}",
                    position.step, metrics.auc, metrics.logloss
                );
                if bar.is_hidden() {
                    if settings.verbose {
                        let _ = writeln!(std::io::stderr(), "{line}");
                    }
                } else {
                    bar.println(line);
                }
                if best.as_ref().is_none_or(|b| metrics.auc > b.metrics.auc) {
                    best = Some(Best::snapshot(&model, metrics, position.step)?);
                }
            }
            let due = settings
                .checkpoint_every
                .is_some_and(|n| position.step.is_multiple_of(n));
            let stopping = stop.load(Ordering::SeqCst);
            if due || stopping {
                stop_clock(&mut losses, &model, &mut busy, tick)?;
                let path = settings.checkpoint_path();
                save_checkpoint(
                    &path,
                    settings,
                    &position,
                    &model,
                    &optimizer,
                    best.as_ref(),
                )?;
                if stopping {
                    interrupted = Some(path);
                    break 'epochs;
                }
                tick = Instant::now();
            }
        }
        stop_clock(&mut losses, &model, &mut busy, tick)?;
        bad_lines = stream.bad_lines();
        position.epoch += 1;
        position.next_row = plan.train.start;
    }
    bar.finish_and_clear();
    let (timed_samples, timed) = match warmed_up {
        Some((s, b)) if samples > s => (samples - s, busy - b),
        _ => (samples, busy),
    };
    let samples_per_s = timed_samples as f64 / timed.as_secs_f64().max(1e-9);

    let mut validation = None;
    let mut best_step = None;
    if interrupted.is_none() {
        if let Some((spec, rows)) = &plan.validation {
            let (p, y) = predict_all(&model, spec, rows.clone(), settings.read_options())?;
            let last = Metrics::compute(&p, &y);
            validation = Some(last);
            if let Some(b) = best.filter(|b| b.metrics.auc > last.auc) {
                let mut values: HashMap<String, Tensor> = b.tensors.into_iter().collect();
                model.load_named(&mut values)?;
                validation = Some(b.metrics);
                best_step = Some(b.step);
            }
        }
    }
    Ok(TrainReport {
        model,
        plan,
        validation,
        best_step,
        steps: position.step,
        samples,
        samples_per_s,
        bad_lines,
        interrupted,
    })
}

/// Stops the training clock: waits for the steps queued on the device (by reading their losses
/// back, so that their time is counted) and adds the time since `tick` to `busy`. Returns the
/// running loss. The clock runs again from the next `tick`.
fn stop_clock(
    losses: &mut LossLog,
    model: &Dlrm,
    busy: &mut Duration,
    tick: Instant,
) -> Result<f64> {
    let loss = losses.read(model)?;
    *busy += tick.elapsed();
    Ok(loss)
}

/// Steps between progress updates; the losses are read back (a wait for the device) this often.
const PROGRESS_EVERY: u64 = 20;

/// Step losses and their running average (`a = 0.98 a + 0.02 loss`), and the watch for a run
/// that diverged. Losses still on the device wait in `pending` until [`LossLog::read`], so that a
/// step never waits for the device; a loss is checked when it reaches the host (at once on the
/// CPU), and a loss that is not finite stops the run with [`Diverged`].
struct LossLog {
    average: Option<f64>,
    /// Losses on the device, with their step numbers.
    pending: Vec<(u64, Tensor)>,
    /// The last finite loss and its step.
    last_finite: Option<(u64, f32)>,
    /// The run's learning rate, for the message.
    lr: f64,
}

impl LossLog {
    fn new(lr: f64) -> LossLog {
        LossLog {
            average: None,
            pending: Vec::new(),
            last_finite: None,
            lr,
        }
    }

    /// Adds the loss of step `step` (from 1); one still on the device waits in `pending`.
    fn push(&mut self, step: u64, loss: Loss) -> Result<()> {
        match loss {
            Loss::Host(loss) => self.add(step, loss),
            Loss::Device(loss) => {
                self.pending.push((step, loss));
                Ok(())
            }
        }
    }

    /// Adds a loss known on the host to the running average; a loss that is not finite is
    /// [`Diverged`].
    fn add(&mut self, step: u64, loss: f32) -> Result<()> {
        if !loss.is_finite() {
            return Err(Diverged {
                step,
                cause: format!("the loss is {loss}"),
                last_finite: self.last_finite,
                lr: self.lr,
            }
            .into());
        }
        self.last_finite = Some((step, loss));
        let loss = loss as f64;
        self.average = Some(self.average.map_or(loss, |a| 0.98 * a + 0.02 * loss));
        Ok(())
    }

    /// Reads the pending losses back with `model`'s [`Dlrm::dense_probe`] (one copy, which
    /// waits for the device's queued work), checks them, and returns the running average (NaN
    /// before the first loss).
    fn read(&mut self, model: &Dlrm) -> Result<f64> {
        let mut tensors: Vec<Tensor> = self.pending.iter().map(|(_, t)| t.clone()).collect();
        tensors.push(model.dense_probe()?);
        let mut values = Tensor::stack(&tensors, 0)?.to_vec1::<f32>()?;
        let probe = values.pop().unwrap_or(f32::NAN);
        let steps: Vec<u64> = self.pending.drain(..).map(|(s, _)| s).collect();
        for (&step, loss) in steps.iter().zip(values) {
            self.add(step, loss)?;
        }
        if !probe.is_finite() {
            let step = steps.last().or(self.last_finite.as_ref().map(|(s, _)| s));
            return Err(Diverged {
                step: step.copied().unwrap_or(0),
                cause: "an MLP weight or bias is no longer finite".into(),
                last_finite: self.last_finite,
                lr: self.lr,
            }
            .into());
        }
        Ok(self.average.unwrap_or(f64::NAN))
    }
}

/// A run whose loss stopped being a finite number: its weights can no longer score, so it stops
/// before any checkpoint or export would keep them (an earlier checkpoint stays as it was).
#[derive(Debug)]
pub struct Diverged {
    /// The step (from 1) at which it was found.
    pub step: u64,
    /// What was found: a loss, or a weight, that is not finite.
    pub cause: String,
    /// The last finite loss and its step, if any.
    pub last_finite: Option<(u64, f32)>,
    /// The run's learning rate.
    pub lr: f64,
}

impl std::fmt::Display for Diverged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "training diverged at step {}: {}", self.step, self.cause)?;
        match self.last_finite {
            Some((step, loss)) => write!(
                f,
                " (last finite loss {} at step {step})",
                readable(loss.into())
            )?,
            None => f.write_str(" (no step had a finite loss)")?,
        }
        write!(
            f,
            "; nothing is exported or checkpointed from this run; try a lower --lr (this run: {})",
            readable(self.lr)
        )
    }
}

/// `x` with 5 decimals, or in scientific notation when that would be unreadable.
fn readable(x: f64) -> String {
    if x != 0.0 && !(1e-4..1e6).contains(&x.abs()) {
        format!("{x:.3e}")
    } else {
        format!("{x:.5}")
    }
}

impl std::error::Error for Diverged {}

fn progress_bar(show: bool, total: u64) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(
        "[{elapsed_precise}] {wide_bar} {human_pos}/{human_len} rows  {msg}  ETA {eta}",
    )
    .expect("the progress template is valid");
    bar.set_style(style);
    bar
}

/// Writes a checkpoint of the whole training state.
fn save_checkpoint(
    path: &Path,
    settings: &TrainSettings,
    position: &Position,
    model: &Dlrm,
    optimizer: &Optimizer,
    best: Option<&Best>,
) -> Result<()> {
    let mut tensors = model.named_tensors();
    tensors.extend(optimizer.named_state());
    let mut info = HashMap::new();
    if let Some(b) = best {
        tensors.extend(
            b.tensors
                .iter()
                .map(|(n, t)| (format!("best.{n}"), t.clone())),
        );
        info.insert("best_step".to_string(), b.step.to_string());
        info.insert("best_metrics".to_string(), b.metrics.to_json().to_string());
    }
    let mut saved_settings = settings.fingerprint();
    saved_settings.push(("epochs".into(), settings.epochs.to_string()));
    let checkpoint = Checkpoint {
        position: position.clone(),
        settings: saved_settings,
        info,
    };
    checkpoint.save(path, &tensors)
}

/// The best weights stored in a checkpoint, if any.
fn restore_best(reader: &mut CheckpointReader, model: &Dlrm) -> Result<Option<Best>> {
    let checkpoint = reader.checkpoint.clone();
    let Some(step) = checkpoint.info.get("best_step") else {
        return Ok(None);
    };
    let step: u64 = step
        .parse()
        .context("checkpoint: best_step is not a number")?;
    let json: serde_json::Value = serde_json::from_str(
        checkpoint
            .info
            .get("best_metrics")
            .context("checkpoint: best_metrics missing")?,
    )
    .context("checkpoint: best_metrics is not JSON")?;
    let field = |k: &str| -> Result<f64> { Ok(json[k].as_f64().unwrap_or(f64::NAN)) };
    let metrics = Metrics {
        auc: field("auc")?,
        logloss: field("logloss")?,
        normalized_entropy: field("normalized_entropy")?,
        accuracy: field("accuracy")?,
        rows: field("rows")? as u64,
        positives: field("positives")? as u64,
    };
    let tensors = model
        .named_tensors()
        .into_iter()
        .map(|(name, t)| {
            let best = reader.read(&format!("best.{name}"), t.dims(), model.device())?;
            Ok((name, best))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(Best {
        metrics,
        step,
        tensors,
    }))
}

/// The metadata key under which a model file holds the column schema of its training data
/// (JSON), and the checkpoint setting that keeps a resumed run on the same schema.
pub const SCHEMA_KEY: &str = "schema";

/// Free metadata for an exported file: how it was trained and how it validated, and the column
/// schema of `csv:`, `tsv:` and `parquet:` training data under [`SCHEMA_KEY`] (which `eval` and
/// `score` read new files by).
pub fn training_info(settings: &TrainSettings, report: &TrainReport) -> Vec<(String, String)> {
    let mut info: Vec<(String, String)> = settings
        .fingerprint()
        .into_iter()
        .map(|(k, v)| {
            if k == SCHEMA_KEY {
                (k, v)
            } else {
                (format!("train.{k}"), v)
            }
        })
        .collect();
    info.push(("train.epochs".into(), settings.epochs.to_string()));
    info.push(("train.steps".into(), report.steps.to_string()));
    info.push((
        "train.examples".into(),
        report.plan.train_examples.to_string(),
    ));
    info.push(("mlet_k".into(), settings.mlet_k.to_string()));
    info.push((
        "trainer".into(),
        concat!("mlet-trainer ", env!("CARGO_PKG_VERSION")).into(),
    ));
    if let Some(m) = &report.validation {
        info.push(("val_auc".into(), format!("{:.6}", m.auc)));
        info.push(("val_logloss".into(), format!("{:.6}", m.logloss)));
        info.push(("val_rows".into(), m.rows.to_string()));
    }
    info
}
