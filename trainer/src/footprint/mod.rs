//! `mlet footprint-bench`: validation AUC against model bytes, plain tables against MLET.
//!
//! Trains plain d in {2, 4, 8, 16, 32} and MLET d in {2, 4, 8} with k in {16, 64, 256} on the
//! same rows (through [`crate::train::train`]), exports each model four ways (f32, f16, int8 with
//! per-row scales, int8 with per-table scales, through [`crate::export::export`]), scores the
//! validation rows from every exported file with `mlet-runtime` ([`crate::score::score_file`]),
//! and writes into the output folder:
//! - `footprint.csv`: one row per exported file (bytes, runtime AUC and logloss, Pareto flag);
//! - `footprint.svg`: AUC against file bytes (log x axis), the Pareto front marked;
//! - `models/`: the exported files; `footprint-settings.txt`: the settings the rows belong to.
//!
//! Every output is written atomically, and the CSV and plot after each model, so an interrupted
//! run keeps its finished models: a rerun with the same settings skips them, and the model that
//! was interrupted resumes from its checkpoint.
//!
//! This file runs the grid; [`csv`] reads and writes the CSV, [`plot`] draws the SVG, and
//! [`report`] prints the table, the headline and the verdict on the paper's claim.

mod csv;
mod plot;
mod report;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use mlet_formats::writer::write_atomic;
use mlet_formats::EmbeddingDtype;

pub use csv::{read_csv, write_csv};
pub use plot::plot_svg;
pub use report::{headline, paper_claim, report};

use crate::data::{DataSpec, ReadOptions};
use crate::export::{export, Int8Scale};
use crate::metrics::Metrics;
use crate::optim::OptimizerKind;
use crate::score::score_file;
use crate::train::{train, training_info, TrainSettings, Validation};

/// Two AUCs closer than this count as a match in the headline.
pub const AUC_MATCH: f64 = 0.001;

/// The four ways each model is exported: name, table dtype, int8 scales.
pub const EXPORTS: [(&str, EmbeddingDtype, Int8Scale); 4] = [
    ("f32", EmbeddingDtype::F32, Int8Scale::Row),
    ("f16", EmbeddingDtype::F16, Int8Scale::Row),
    ("int8-row", EmbeddingDtype::Int8, Int8Scale::Row),
    ("int8-table", EmbeddingDtype::Int8, Int8Scale::Table),
];

/// What a footprint run trains and how.
#[derive(Clone, Debug)]
pub struct FootprintSettings {
    /// Training rows.
    pub train: DataSpec,
    /// Validation rows (scored from every exported file).
    pub val: DataSpec,
    /// Output folder.
    pub out_dir: PathBuf,
    /// Widths d of the plain models.
    pub plain_dims: Vec<usize>,
    /// Widths d of the MLET models.
    pub mlet_dims: Vec<usize>,
    /// Inner widths k of the MLET models (each with every MLET d).
    pub mlet_ks: Vec<usize>,
    /// Bottom MLP hidden widths.
    pub bottom_hidden: Vec<usize>,
    /// Top MLP hidden widths.
    pub top_hidden: Vec<usize>,
    /// Passes over the training rows.
    pub epochs: usize,
    /// Examples per step.
    pub batch: usize,
    /// Learning rate.
    pub lr: f64,
    /// SGD, or row-wise Adagrad for the tables (element-wise for the rest).
    pub optimizer: OptimizerKind,
    /// Most rows per table.
    pub rows: usize,
    /// Show training progress bars.
    pub progress: bool,
}

impl FootprintSettings {
    /// The default run: 1M synthetic training rows, 200k validation rows, the full grid, one
    /// epoch of SGD (lr 1.0, batch 256) with the demo's MLPs (bottom 64-32, top 64-32): about
    /// 14M training examples, sized to finish within an hour on a 2-core workstation.
    pub fn full(out_dir: PathBuf) -> FootprintSettings {
        FootprintSettings {
            train: DataSpec::Synthetic {
                rows: 1_000_000,
                seed: 1,
                rank: crate::data::DEFAULT_SYNTHETIC_RANK,
                vocab: crate::data::Vocab::Default,
            },
            val: DataSpec::Synthetic {
                rows: 200_000,
                seed: 2,
                rank: crate::data::DEFAULT_SYNTHETIC_RANK,
                vocab: crate::data::Vocab::Default,
            },
            out_dir,
            plain_dims: vec![2, 4, 8, 16, 32],
            mlet_dims: vec![2, 4, 8],
            mlet_ks: vec![16, 64, 256],
            bottom_hidden: vec![64, 32],
            top_hidden: vec![64, 32],
            epochs: 1,
            batch: 256,
            lr: 1.0,
            optimizer: OptimizerKind::Sgd,
            rows: 1_000_000,
            progress: false,
        }
    }

    /// The CI smoke test: the same grid and settings on 60k training and 10k validation rows.
    pub fn quick(out_dir: PathBuf) -> FootprintSettings {
        let mut s = FootprintSettings::full(out_dir);
        s.train = DataSpec::Synthetic {
            rows: 60_000,
            seed: 1,
            rank: crate::data::DEFAULT_SYNTHETIC_RANK,
            vocab: crate::data::Vocab::Default,
        };
        s.val = DataSpec::Synthetic {
            rows: 10_000,
            seed: 2,
            rank: crate::data::DEFAULT_SYNTHETIC_RANK,
            vocab: crate::data::Vocab::Default,
        };
        s
    }

    /// The models to train, in order: plain by d, then MLET by d and k.
    pub fn models(&self) -> Vec<ModelKind> {
        let plain = self.plain_dims.iter().map(|&dim| ModelKind { dim, k: 0 });
        let mlet = self
            .mlet_dims
            .iter()
            .flat_map(|&dim| self.mlet_ks.iter().map(move |&k| ModelKind { dim, k }));
        plain.chain(mlet).collect()
    }

    /// The settings that the rows of a CSV belong to, as text (a rerun must match them).
    pub fn fingerprint(&self) -> String {
        let join = |w: &[usize]| w.iter().map(usize::to_string).collect::<Vec<_>>().join("-");
        format!(
            "train={}\nval={}\nbottom={}\ntop={}\nepochs={}\nbatch={}\nlr={}\noptimizer={}\nrows={}\n",
            self.train,
            self.val,
            join(&self.bottom_hidden),
            join(&self.top_hidden),
            self.epochs,
            self.batch,
            self.lr,
            self.optimizer,
            self.rows
        )
    }

    fn train_settings(&self, model: ModelKind) -> TrainSettings {
        let mut s = TrainSettings::new(self.train.clone());
        s.validation = Validation::Data(self.val.clone());
        s.dim = model.dim;
        s.mlet_k = model.k;
        s.bottom_hidden = self.bottom_hidden.clone();
        s.top_hidden = self.top_hidden.clone();
        s.epochs = self.epochs;
        s.batch = self.batch;
        s.lr = self.lr;
        s.optimizer = self.optimizer;
        s.rows = self.rows;
        s.progress = self.progress;
        s.verbose = false;
        s.checkpoint = Some(self.out_dir.join(format!("{}.checkpoint", model.name())));
        s
    }
}

/// One model of the grid: width d and MLET inner width k (0 = plain).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelKind {
    /// Embedding width d.
    pub dim: usize,
    /// MLET inner width k (0 = plain).
    pub k: usize,
}

impl ModelKind {
    /// `plain-d16` or `mlet-d4-k64` (used in file names and the CSV).
    pub fn name(&self) -> String {
        if self.k == 0 {
            format!("plain-d{}", self.dim)
        } else {
            format!("mlet-d{}-k{}", self.dim, self.k)
        }
    }

    /// `plain d=16` or `MLET d=4 k=64`.
    pub fn label(&self) -> String {
        if self.k == 0 {
            format!("plain d={}", self.dim)
        } else {
            format!("MLET d={} k={}", self.dim, self.k)
        }
    }
}

/// One exported file and how it scored.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// The model.
    pub model: ModelKind,
    /// How it was exported (a name from [`EXPORTS`]).
    pub export: String,
    /// File bytes.
    pub bytes: u64,
    /// Bytes of the embedding tables (codes, scales and offsets).
    pub table_bytes: u64,
    /// Validation AUC scored from the file by `mlet-runtime`.
    pub auc: f64,
    /// Validation logloss scored from the file.
    pub logloss: f64,
    /// Validation AUC of the trained (f32, uncollapsed) model in the trainer.
    pub trained_auc: f64,
    /// Training throughput of the model.
    pub samples_per_s: f64,
    /// Whether no other file is at least as small and at least as accurate, one strictly.
    pub pareto: bool,
}

impl Point {
    /// `MLET d=4 k=64 int8-row`.
    pub fn label(&self) -> String {
        format!("{} {}", self.model.label(), self.export)
    }
}

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    /// Every model is in the CSV.
    Finished(Vec<Point>),
    /// A stop was requested while this model trained; its checkpoint is kept for the rerun.
    Interrupted(ModelKind),
}

/// Runs the benchmark (see the module doc), printing progress to `log`. Returns early, keeping
/// what is finished, when `stop` becomes true.
pub fn run(
    settings: &FootprintSettings,
    stop: &AtomicBool,
    log: &mut dyn Write,
) -> Result<Outcome> {
    let dir = &settings.out_dir;
    let models_dir = dir.join("models");
    std::fs::create_dir_all(&models_dir)
        .with_context(|| format!("cannot create {}", models_dir.display()))?;
    let fingerprint_path = dir.join("footprint-settings.txt");
    let csv_path = dir.join("footprint.csv");
    let fingerprint = settings.fingerprint();
    let mut points = match std::fs::read_to_string(&fingerprint_path) {
        Ok(old) if old == fingerprint => match std::fs::read_to_string(&csv_path) {
            Ok(text) => read_csv(&text).with_context(|| format!("{}", csv_path.display()))?,
            Err(_) => Vec::new(),
        },
        Ok(_) => bail!(
            "{} holds results of other settings (see {}): choose another --out folder or delete it",
            dir.display(),
            fingerprint_path.display()
        ),
        Err(_) => {
            write_atomic(&fingerprint_path, fingerprint.as_bytes())
                .with_context(|| format!("cannot write {}", fingerprint_path.display()))?;
            Vec::new()
        }
    };
    let models = settings.models();
    points.retain(|p| models.contains(&p.model));
    let options = ReadOptions {
        skip_bad_lines: false,
        require_labels: true,
    };
    for (i, &model) in models.iter().enumerate() {
        let done = EXPORTS
            .iter()
            .all(|(e, _, _)| points.iter().any(|p| p.model == model && p.export == *e));
        if done {
            writeln!(
                log,
                "[{}/{}] {}: done, skipped",
                i + 1,
                models.len(),
                model.label()
            )?;
            continue;
        }
        points.retain(|p| p.model != model);
        let mut train_settings = settings.train_settings(model);
        let checkpoint = train_settings.checkpoint_path();
        if checkpoint.exists() {
            train_settings.resume = Some(checkpoint.clone());
        }
        writeln!(
            log,
            "[{}/{}] {}: training",
            i + 1,
            models.len(),
            model.label()
        )?;
        let started = Instant::now();
        let report = train(&train_settings, stop)?;
        if report.interrupted.is_some() {
            return Ok(Outcome::Interrupted(model));
        }
        let trained = report.validation.context("footprint runs validate")?;
        let info = training_info(&train_settings, &report);
        for (export_name, dtype, scale) in EXPORTS {
            let path = models_dir.join(format!("{}-{export_name}.mlet", model.name()));
            let sizes = export(&report.model, dtype, scale, &info, &path)?;
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let (p, y) = score_file(&bytes, &settings.val, 0..u64::MAX, options)?;
            let m = Metrics::compute(&p, &y);
            points.push(Point {
                model,
                export: export_name.to_string(),
                bytes: sizes.total as u64,
                table_bytes: sizes.tables as u64,
                auc: as_stored(m.auc),
                logloss: as_stored(m.logloss),
                trained_auc: as_stored(trained.auc),
                samples_per_s: report.samples_per_s,
                pareto: false,
            });
        }
        mark_pareto(&mut points);
        write_outputs(settings, &points)?;
        let _ = std::fs::remove_file(&checkpoint);
        writeln!(
            log,
            "[{}/{}] {}: AUC {:.5} (trained), {:.0} samples/s, {:.0} s; exported and scored {}",
            i + 1,
            models.len(),
            model.label(),
            trained.auc,
            report.samples_per_s,
            started.elapsed().as_secs_f64(),
            EXPORTS.map(|(e, _, _)| e).join(", ")
        )?;
    }
    mark_pareto(&mut points);
    write_outputs(settings, &points)?;
    Ok(Outcome::Finished(points))
}

/// `x` rounded to the CSV's 6 decimals, so that the Pareto front of a rerun (computed from the
/// CSV) is the front of the first run.
fn as_stored(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn write_outputs(settings: &FootprintSettings, points: &[Point]) -> Result<()> {
    let csv = settings.out_dir.join("footprint.csv");
    write_atomic(&csv, write_csv(points).as_bytes())
        .with_context(|| format!("cannot write {}", csv.display()))?;
    let svg_path = settings.out_dir.join("footprint.svg");
    let title = format!("Validation AUC against model bytes ({})", settings.train);
    let svg = plot_svg(points, &title)?;
    write_atomic(&svg_path, svg.as_bytes())
        .with_context(|| format!("cannot write {}", svg_path.display()))
}

/// Sets [`Point::pareto`]: a point is on the front when no other point has at most its bytes
/// and at least its AUC, one of the two strictly.
pub fn mark_pareto(points: &mut [Point]) {
    let xy: Vec<(u64, f64)> = points.iter().map(|p| (p.bytes, p.auc)).collect();
    for (p, on) in points.iter_mut().zip(crate::plot::pareto_front(&xy)) {
        p.pareto = on;
    }
}
