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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use mlet_formats::writer::write_atomic;
use mlet_formats::EmbeddingDtype;
use plotters::prelude::*;

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
    /// 14M training examples, sized to finish within an hour on 2 cores (measured: 6 minutes
    /// with the hand-written CPU step, 23 minutes on one core with the autograd step).
    pub fn full(out_dir: PathBuf) -> FootprintSettings {
        FootprintSettings {
            train: DataSpec::Synthetic {
                rows: 1_000_000,
                seed: 1,
                rank: crate::data::DEFAULT_SYNTHETIC_RANK,
            },
            val: DataSpec::Synthetic {
                rows: 200_000,
                seed: 2,
                rank: crate::data::DEFAULT_SYNTHETIC_RANK,
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
        };
        s.val = DataSpec::Synthetic {
            rows: 10_000,
            seed: 2,
            rank: crate::data::DEFAULT_SYNTHETIC_RANK,
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

const CSV_HEADER: &str =
    "model,dim,k,export,bytes,table_bytes,auc,logloss,trained_auc,train_samples_per_s,pareto";

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
    let flags: Vec<bool> = points
        .iter()
        .map(|p| {
            !points.iter().any(|q| {
                q.bytes <= p.bytes && q.auc >= p.auc && (q.bytes < p.bytes || q.auc > p.auc)
            })
        })
        .collect();
    for (p, f) in points.iter_mut().zip(flags) {
        p.pareto = f;
    }
}

/// The CSV text of `points` (header included).
pub fn write_csv(points: &[Point]) -> String {
    let mut s = format!("{CSV_HEADER}\n");
    for p in points {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{:.6},{:.6},{:.6},{:.0},{}",
            p.model.name(),
            p.model.dim,
            p.model.k,
            p.export,
            p.bytes,
            p.table_bytes,
            p.auc,
            p.logloss,
            p.trained_auc,
            p.samples_per_s,
            p.pareto
        );
    }
    s
}

/// Parses CSV text written by [`write_csv`].
pub fn read_csv(text: &str) -> Result<Vec<Point>> {
    let mut lines = text.lines();
    if lines.next() != Some(CSV_HEADER) {
        bail!("not a footprint CSV (unexpected header)");
    }
    lines
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, line)| {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() != 11 {
                bail!("line {}: expected 11 fields, found {}", i + 2, f.len());
            }
            let num = |j: usize| -> Result<f64> {
                f[j].parse::<f64>().map_err(|_| {
                    anyhow!("line {}: field {} `{}` is not a number", i + 2, j + 1, f[j])
                })
            };
            Ok(Point {
                model: ModelKind {
                    dim: num(1)? as usize,
                    k: num(2)? as usize,
                },
                export: f[3].to_string(),
                bytes: num(4)? as u64,
                table_bytes: num(5)? as u64,
                auc: num(6)?,
                logloss: num(7)?,
                trained_auc: num(8)?,
                samples_per_s: num(9)?,
                pareto: f[10] == "true",
            })
        })
        .collect()
}

/// The smallest point among `candidates` whose AUC is within [`AUC_MATCH`] of `target`'s (or
/// above it).
fn smallest_match<'a>(
    target: &Point,
    candidates: impl Iterator<Item = &'a Point>,
) -> Option<&'a Point> {
    candidates
        .filter(|q| q.auc >= target.auc - AUC_MATCH)
        .min_by_key(|q| q.bytes)
}

/// The headline, one line per plain f32 model: the smallest MLET file of the same dtype (f32)
/// whose AUC matches it within [`AUC_MATCH`], the smallest matching file of any kind, and, for
/// fairness, the smallest matching plain file; each with how many times smaller it is.
pub fn headline(points: &[Point]) -> Vec<String> {
    let mut plain: Vec<&Point> = points
        .iter()
        .filter(|p| p.model.k == 0 && p.export == "f32")
        .collect();
    plain.sort_by_key(|p| p.model.dim);
    let describe = |target: &Point, m: Option<&Point>| match m {
        Some(m) => format!(
            "{} (AUC {:.4}), {:.1}x smaller",
            m.label(),
            m.auc,
            target.bytes as f64 / m.bytes as f64
        ),
        None => "none".to_string(),
    };
    plain
        .into_iter()
        .map(|target| {
            let mlet = points.iter().filter(|q| q.model.k > 0);
            let mlet_f32 = smallest_match(target, mlet.clone().filter(|q| q.export == "f32"));
            let any_mlet = smallest_match(target, mlet);
            let any_plain = smallest_match(target, points.iter().filter(|q| q.model.k == 0));
            format!(
                "{} f32 (AUC {:.4}, {} bytes): MLET f32 match: {}; smallest MLET match: {}; smallest plain match: {}",
                target.model.label(),
                target.auc,
                target.bytes,
                describe(target, mlet_f32),
                describe(target, any_mlet),
                describe(target, any_plain)
            )
        })
        .collect()
}

/// The paper's claim on this data: does the best MLET d=4 f32 file reach plain d=16 f32's AUC
/// (within [`AUC_MATCH`])? `None` when the grid lacks either.
pub fn paper_claim(points: &[Point]) -> Option<String> {
    let plain16 = points
        .iter()
        .find(|p| p.model == ModelKind { dim: 16, k: 0 } && p.export == "f32")?;
    let best4 = points
        .iter()
        .filter(|p| p.model.dim == 4 && p.model.k > 0 && p.export == "f32")
        .max_by(|a, b| a.auc.total_cmp(&b.auc))?;
    let gap = plain16.auc - best4.auc;
    let verdict = if gap <= AUC_MATCH {
        format!(
            "reached: tables {:.1}x smaller in f32",
            plain16.table_bytes as f64 / best4.table_bytes as f64
        )
    } else {
        format!("NOT reached: {gap:.4} AUC short")
    };
    Some(format!(
        "paper's claim (MLET d=4 reaches plain d=16): best {} AUC {:.4} vs plain d=16 f32 AUC {:.4}: {verdict}",
        best4.label(),
        best4.auc,
        plain16.auc
    ))
}

/// Bytes as `12 kB`, `3.4 MB`.
fn human_bytes(b: f64) -> String {
    if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.0} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}

/// The SVG plot of `points`: AUC against bytes (log x axis: linear in log10 bytes), one colour per model family
/// (plain, MLET by k), one marker per export, the Pareto front as a black step line with its
/// points ringed and named.
pub fn plot_svg(points: &[Point], title: &str) -> Result<String> {
    let mut svg = String::new();
    draw(points, title, &mut svg).map_err(|e| anyhow!("cannot draw the plot: {e}"))?;
    Ok(svg)
}

fn draw(
    points: &[Point],
    title: &str,
    svg: &mut String,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, (1100, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let finite: Vec<&Point> = points.iter().filter(|p| p.auc.is_finite()).collect();
    // x is log10(bytes): a linear axis over it spaces the labels evenly.
    let x = |p: &Point| (p.bytes.max(1) as f64).log10();
    let (mut xmin, mut xmax) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut ymin, mut ymax) = (f64::INFINITY, f64::NEG_INFINITY);
    for p in &finite {
        xmin = xmin.min(x(p));
        xmax = xmax.max(x(p));
        ymin = ymin.min(p.auc);
        ymax = ymax.max(p.auc);
    }
    if finite.is_empty() {
        (xmin, xmax, ymin, ymax) = (3.0, 6.0, 0.5, 1.0);
    }
    let pad = ((ymax - ymin) * 0.08).max(0.002);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d((xmin - 0.1)..(xmax + 0.25), (ymin - pad)..(ymax + pad))?;
    chart
        .configure_mesh()
        .x_desc("model file bytes (log scale)")
        .y_desc("validation AUC (scored by mlet-runtime)")
        .x_labels(12)
        .x_label_formatter(&|x| human_bytes(10f64.powf(*x)))
        .y_label_formatter(&|y| format!("{y:.3}"))
        .draw()?;

    let mut front: Vec<&Point> = finite.iter().copied().filter(|p| p.pareto).collect();
    front.sort_by_key(|p| p.bytes);
    let mut steps = Vec::new();
    for (i, p) in front.iter().enumerate() {
        if i > 0 {
            steps.push((x(p), front[i - 1].auc));
        }
        steps.push((x(p), p.auc));
    }
    chart
        .draw_series(LineSeries::new(steps, BLACK.stroke_width(2)))?
        .label("Pareto front")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));

    let mut families: Vec<usize> = finite.iter().map(|p| p.model.k).collect();
    families.sort_unstable();
    families.dedup();
    let palette = [
        RGBColor(200, 30, 30),
        RGBColor(30, 90, 200),
        RGBColor(20, 150, 60),
        RGBColor(150, 60, 180),
        RGBColor(230, 130, 0),
    ];
    for (n, k) in families.iter().enumerate() {
        let color = palette[n % palette.len()];
        for (e, (export_name, _, _)) in EXPORTS.iter().enumerate() {
            let series: Vec<(f64, f64)> = finite
                .iter()
                .filter(|p| p.model.k == *k && p.export == *export_name)
                .map(|p| (x(p), p.auc))
                .collect();
            let drawn = chart.draw_series(series.into_iter().map(move |c| marker(c, e, color)))?;
            if e == 0 {
                let name = if *k == 0 {
                    "plain".to_string()
                } else {
                    format!("MLET k={k}")
                };
                drawn
                    .label(name)
                    .legend(move |(x, y)| Circle::new((x + 10, y), 5, color.filled()));
            }
        }
    }
    for (e, (export_name, _, _)) in EXPORTS.iter().enumerate() {
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
            .label(*export_name)
            .legend(move |(x, y)| legend_marker((x + 10, y), e));
    }
    chart.draw_series(
        front
            .iter()
            .map(|p| Circle::new((x(p), p.auc), 9, BLACK.stroke_width(1))),
    )?;
    // Names alternate above and below their points so that neighbours do not overlap.
    chart.draw_series(front.iter().enumerate().map(|(i, p)| {
        EmptyElement::at((x(p), p.auc))
            + Text::new(
                p.label(),
                (11, if i % 2 == 0 { -14 } else { 6 }),
                ("sans-serif", 11).into_font().color(&BLACK),
            )
    }))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Marker `e` (the export's index in [`EXPORTS`]) at data coordinates `c`.
fn marker<DB: DrawingBackend>(
    c: (f64, f64),
    e: usize,
    color: RGBColor,
) -> DynElement<'static, DB, (f64, f64)> {
    match e {
        0 => Circle::new(c, 5, color.filled()).into_dyn(),
        1 => Circle::new(c, 5, color.stroke_width(2)).into_dyn(),
        2 => TriangleMarker::new(c, 6, color.filled()).into_dyn(),
        _ => Cross::new(c, 5, color.stroke_width(2)).into_dyn(),
    }
}

/// Marker `e` in black at pixel coordinates `c`, for the legend.
fn legend_marker<DB: DrawingBackend>(
    c: (i32, i32),
    e: usize,
) -> DynElement<'static, DB, (i32, i32)> {
    match e {
        0 => Circle::new(c, 5, BLACK.filled()).into_dyn(),
        1 => Circle::new(c, 5, BLACK.stroke_width(2)).into_dyn(),
        2 => TriangleMarker::new(c, 6, BLACK.filled()).into_dyn(),
        _ => Cross::new(c, 5, BLACK.stroke_width(2)).into_dyn(),
    }
}

/// `points` grouped by model, plain first, then MLET by k, each by d.
fn table(points: &[Point]) -> BTreeMap<(usize, usize), Vec<&Point>> {
    let mut out: BTreeMap<(usize, usize), Vec<&Point>> = BTreeMap::new();
    for p in points {
        out.entry((p.model.k, p.model.dim)).or_default().push(p);
    }
    out
}

/// Prints the points as a table, then the headline and the paper's claim, to `out`.
pub fn report(points: &[Point], out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "{:<16} {:<11} {:>11} {:>11} {:>8} {:>8} {:>7}",
        "model", "export", "file bytes", "table bytes", "AUC", "logloss", "pareto"
    )?;
    for group in table(points).values() {
        for p in group {
            writeln!(
                out,
                "{:<16} {:<11} {:>11} {:>11} {:>8.4} {:>8.4} {:>7}",
                p.model.label(),
                p.export,
                p.bytes,
                p.table_bytes,
                p.auc,
                p.logloss,
                if p.pareto { "*" } else { "" }
            )?;
        }
    }
    writeln!(out, "\nheadline (AUC match within {AUC_MATCH}):")?;
    for line in headline(points) {
        writeln!(out, "  {line}")?;
    }
    if let Some(line) = paper_claim(points) {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(dim: usize, k: usize, export: &str, bytes: u64, auc: f64) -> Point {
        Point {
            model: ModelKind { dim, k },
            export: export.into(),
            bytes,
            table_bytes: bytes - 100,
            auc,
            logloss: 0.4,
            trained_auc: auc,
            samples_per_s: 1000.0,
            pareto: false,
        }
    }

    #[test]
    fn pareto_csv_and_headline() {
        let mut points = vec![
            point(16, 0, "f32", 16_000, 0.800),
            point(4, 0, "f32", 4_000, 0.790),
            point(4, 64, "f32", 4_000, 0.7995),
            point(4, 64, "int8-row", 1_500, 0.7992),
            point(4, 64, "f16", 2_100, 0.7990),
        ];
        mark_pareto(&mut points);
        let front: Vec<bool> = points.iter().map(|p| p.pareto).collect();
        assert_eq!(front, [true, false, true, true, false]);
        assert_eq!(read_csv(&write_csv(&points)).unwrap(), points);
        let lines = headline(&points);
        assert_eq!(lines.len(), 2);
        assert!(
            lines[1].contains("MLET f32 match: MLET d=4 k=64 f32 (AUC 0.7995), 4.0x smaller"),
            "{}",
            lines[1]
        );
        assert!(
            lines[1].contains(
                "smallest MLET match: MLET d=4 k=64 int8-row (AUC 0.7992), 10.7x smaller"
            ),
            "{}",
            lines[1]
        );
        assert!(paper_claim(&points).unwrap().contains("reached"));
        let svg = plot_svg(&points, "test").unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("Pareto front"));
    }
}
