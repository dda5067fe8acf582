//! The search itself, in three passes, resumable, with progress and an estimate of the time
//! left.
//!
//! 1. Learning rates: every cell trained at every rate of the grid (seed 0), the middle rate of
//!    every cell first; each cell's f32 file is kept.
//! 2. Scores: each cell's file at its best rate exported in every dtype and scored on the test
//!    rows.
//! 3. Seeds: the candidates retrained at their rate with the other seeds, smallest files first,
//!    and scored likewise.
//!
//! With a time budget, work is only started while it can finish in time (judged by the mean time
//! a training has taken so far): pass 1's other rates are then tried only for cells whose
//! middle-rate validation AUC is within [`super::CANDIDATE_MARGIN`] plus the loss allowed of the
//! best (no other cell can become a candidate), and pass 3 stops at the first candidate it cannot
//! finish, leaving the largest. What was left out is listed in the report.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use mlet_formats::writer::write_atomic;
use mlet_formats::{EmbeddingDtype, ModelFile};

use super::{Cell, ShrinkSettings, CALIBRATION_ROWS, CANDIDATE_MARGIN, EXPORTS};
use crate::data::ReadOptions;
use crate::export::export;
use crate::metrics::Metrics;
use crate::quantize::{
    calibrate, map, requantize, InputScale, Layers, Rows, Settings as QuantSettings,
};
use crate::score::score_file;
use crate::train::{plan, train, training_info, Diverged, TrainSettings, Validation};

/// One training: a cell at a rate and seed, and how it validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Training {
    /// The cell.
    pub cell: Cell,
    /// Learning rate.
    pub lr: f64,
    /// Seed of the initial weights.
    pub seed: u64,
    /// Validation AUC of the trained model (in the trainer, f32).
    pub val_auc: f64,
    /// Seconds it took.
    pub seconds: f64,
}

/// One exported file of a training, scored on the test rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Score {
    /// The cell.
    pub cell: Cell,
    /// Learning rate.
    pub lr: f64,
    /// Seed.
    pub seed: u64,
    /// The export's name (see [`EXPORTS`]).
    pub export: String,
    /// File bytes.
    pub bytes: u64,
    /// Bytes of the tables.
    pub table_bytes: u64,
    /// Bytes of the MLPs.
    pub mlp_bytes: u64,
    /// Test AUC, scored from the file by `mlet-runtime`.
    pub auc: f64,
    /// Test logloss.
    pub logloss: f64,
}

/// How a search ended.
#[derive(Debug)]
pub enum Outcome {
    /// Every planned piece of work is done (or was left out by the budget, listed).
    Finished {
        /// Every training.
        trainings: Vec<Training>,
        /// Every score.
        scores: Vec<Score>,
        /// The rows of each table when a cell uses all of them.
        table_rows: Vec<usize>,
        /// Work the time budget left out.
        trimmed: Vec<String>,
    },
    /// A stop was requested; finished work is kept for the rerun.
    Interrupted,
}

// AUCs and log losses are written in full (shortest round-trip) so that a rerun that reads
// them back ranks and answers exactly as the run that measured them.
const TRAININGS_HEADER: &str = "cell,dim,k,rows,lr,seed,val_auc,seconds";
const SCORES_HEADER: &str =
    "cell,dim,k,rows,lr,seed,export,bytes,table_bytes,mlp_bytes,test_auc,test_logloss";

/// Runs the search (see the module doc), logging progress to `log`.
pub fn run(settings: &ShrinkSettings, stop: &AtomicBool, log: &mut dyn Write) -> Result<Outcome> {
    settings.check()?;
    let started = Instant::now();
    let dir = &settings.out_dir;
    let models = dir.join("models");
    std::fs::create_dir_all(&models)
        .with_context(|| format!("cannot create {}", models.display()))?;
    let fingerprint_path = dir.join("shrink-settings.txt");
    let fingerprint = settings.fingerprint();
    match std::fs::read_to_string(&fingerprint_path) {
        Ok(old) if old == fingerprint => {}
        Ok(_) => bail!(
            "{} holds results of other settings (see {}): choose another --out folder or delete it",
            dir.display(),
            fingerprint_path.display()
        ),
        Err(_) => write_atomic(&fingerprint_path, fingerprint.as_bytes())
            .with_context(|| format!("cannot write {}", fingerprint_path.display()))?,
    }
    // The columns of the user's data, for the commands the report prints.
    if let Some(schema) = settings.train.spec.column_schema() {
        let path = dir.join("schema.json");
        write_atomic(&path, schema.to_json().as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let mut search = Search {
        settings,
        trainings: read_trainings(&dir.join("trainings.csv"))?,
        scores: read_scores(&dir.join("scores.csv"))?,
        table_rows: Vec::new(),
        seconds_per_training: Vec::new(),
        started,
        trimmed: Vec::new(),
        log,
    };
    // The tables' sizes when a cell uses every row: one pass over the training rows.
    let mut sizing = TrainSettings::new(settings.train.spec.clone());
    sizing.train_rows = settings.train.rows.clone();
    search.table_rows = plan(&sizing)?.table_rows;

    let cells = settings.cells();
    let lrs = &settings.lrs;
    let middle = lrs[lrs.len() / 2];
    // Pass 1: the middle rate of every cell, then the others.
    let planned = cells.len() * lrs.len();
    for &cell in &cells {
        if search.train(cell, middle, 0, stop, planned)?.is_none() {
            return Ok(Outcome::Interrupted);
        }
    }
    let best_middle = cells
        .iter()
        .filter_map(|c| search.training(c, middle, 0).map(|t| t.val_auc))
        .fold(f64::NEG_INFINITY, f64::max);
    let other_rates = (cells.len() * (lrs.len() - 1)) as f64;
    let restrict = !search.fits(other_rates);
    for &cell in &cells {
        let near = search
            .training(&cell, middle, 0)
            .is_some_and(|t| t.val_auc >= best_middle - settings.max_auc_loss - CANDIDATE_MARGIN);
        for &lr in lrs.iter().filter(|&&lr| lr != middle) {
            if search.training(&cell, lr, 0).is_some() {
                continue;
            }
            if (restrict && !near) || !search.fits(1.0) {
                search.trim(format!("{} at lr {lr}", cell.label()));
                continue;
            }
            if search.train(cell, lr, 0, stop, planned)?.is_none() {
                return Ok(Outcome::Interrupted);
            }
        }
    }
    // Pass 2: every export of every cell at its best rate.
    let chosen: Vec<(Cell, f64)> = cells
        .iter()
        .filter_map(|c| search.best_rate(c).map(|lr| (*c, lr)))
        .collect();
    let clock = Instant::now();
    let mut cells_scored = 0;
    for (i, &(cell, lr)) in chosen.iter().enumerate() {
        let files = search.score_all(cell, lr, 0)?;
        if files > 0 {
            cells_scored += 1;
            let per_cell = clock.elapsed().as_secs_f64() / cells_scored as f64;
            writeln!(
                search.log,
                "[scores {}/{}] {} lr {lr}: {files} files exported and scored on the test rows; about {} left",
                i + 1,
                chosen.len(),
                cell.label(),
                minutes(per_cell * (chosen.len() - i - 1) as f64)
            )?;
        }
    }
    // Pass 3: the candidates' other seeds, smallest files first.
    let best = search
        .scores
        .iter()
        .map(|s| s.auc)
        .fold(f64::NEG_INFINITY, f64::max);
    let mut candidates: Vec<(Cell, f64, u64)> = chosen
        .iter()
        .filter_map(|&(cell, lr)| {
            let mine = search.scores_of(&cell, lr, 0);
            let top = mine.iter().map(|s| s.auc).fold(f64::NEG_INFINITY, f64::max);
            let smallest = mine.iter().map(|s| s.bytes).min()?;
            (top >= best - settings.max_auc_loss - CANDIDATE_MARGIN).then_some((cell, lr, smallest))
        })
        .collect();
    candidates.sort_by_key(|c| c.2);
    let planned = planned + candidates.len() * (settings.seeds as usize - 1);
    for (cell, lr, _) in candidates {
        for seed in 1..settings.seeds {
            if search.training(&cell, lr, seed).is_none() && !search.fits(1.0) {
                search.trim(format!("{} seed {seed}", cell.label()));
                continue;
            }
            if search.train(cell, lr, seed, stop, planned)?.is_none() {
                return Ok(Outcome::Interrupted);
            }
            search.score_all(cell, lr, seed)?;
        }
    }
    Ok(Outcome::Finished {
        trainings: search.trainings,
        scores: search.scores,
        table_rows: search.table_rows,
        trimmed: search.trimmed,
    })
}

/// The state of a search: what is done, and the time it takes.
struct Search<'a> {
    settings: &'a ShrinkSettings,
    trainings: Vec<Training>,
    scores: Vec<Score>,
    table_rows: Vec<usize>,
    /// Seconds of the trainings done by this process (for the budget and the estimate).
    seconds_per_training: Vec<f64>,
    started: Instant,
    trimmed: Vec<String>,
    log: &'a mut dyn Write,
}

impl Search<'_> {
    fn training(&self, cell: &Cell, lr: f64, seed: u64) -> Option<&Training> {
        self.trainings
            .iter()
            .find(|t| t.cell == *cell && t.lr == lr && t.seed == seed)
    }

    fn scores_of(&self, cell: &Cell, lr: f64, seed: u64) -> Vec<&Score> {
        self.scores
            .iter()
            .filter(|s| s.cell == *cell && s.lr == lr && s.seed == seed)
            .collect()
    }

    /// The cell's rate with the best validation AUC (seed 0; a rate that diverged never).
    fn best_rate(&self, cell: &Cell) -> Option<f64> {
        self.trainings
            .iter()
            .filter(|t| t.cell == *cell && t.seed == 0 && !t.val_auc.is_nan())
            .max_by(|a, b| a.val_auc.total_cmp(&b.val_auc))
            .map(|t| t.lr)
    }

    /// Mean seconds of a training so far (none yet: unknown, taken as 0).
    fn mean_seconds(&self) -> f64 {
        let done = &self.seconds_per_training;
        done.iter().sum::<f64>() / done.len().max(1) as f64
    }

    /// Whether `trainings` more fit in the budget (always, without one).
    fn fits(&self, trainings: f64) -> bool {
        self.settings.budget.is_none_or(|budget| {
            self.started.elapsed().as_secs_f64() + trainings * self.mean_seconds()
                <= budget.as_secs_f64()
        })
    }

    fn trim(&mut self, what: String) {
        self.trimmed.push(what);
    }

    fn file(&self, cell: &Cell, lr: f64, seed: u64, export: &str) -> PathBuf {
        let name = format!("{}-lr{lr}-s{seed}-{export}.mlet", cell.name());
        self.settings.out_dir.join("models").join(name)
    }

    /// Trains `cell` at `lr` with `seed` unless done; `None` when a stop was requested.
    fn train(
        &mut self,
        cell: Cell,
        lr: f64,
        seed: u64,
        stop: &AtomicBool,
        planned: usize,
    ) -> Result<Option<()>> {
        if self.training(&cell, lr, seed).is_some() {
            return Ok(Some(()));
        }
        let s = self.settings;
        let mut t = TrainSettings::new(s.train.spec.clone());
        t.train_rows = s.train.rows.clone();
        t.validation = Validation::Rows(s.val.spec.clone(), s.val.rows.clone());
        t.dim = cell.dim;
        t.mlet_k = cell.k;
        t.table_rows = Some(
            self.table_rows
                .iter()
                .map(|&n| ((n as f64 * cell.rows).ceil() as usize).max(1))
                .collect(),
        );
        t.bottom_hidden = s.bottom_hidden.clone();
        t.top_hidden = s.top_hidden.clone();
        t.epochs = s.epochs;
        t.batch = s.batch;
        t.lr = lr;
        t.seed = seed;
        t.optimizer = s.optimizer;
        t.progress = s.progress;
        t.verbose = false;
        let checkpoint = s
            .out_dir
            .join(format!("{}-lr{lr}-s{seed}.checkpoint", cell.name()));
        if checkpoint.exists() {
            t.resume = Some(checkpoint.clone());
        }
        t.checkpoint = Some(checkpoint.clone());
        let clock = Instant::now();
        // A rate at which the run diverges is a result (the worst), not the end of the search.
        let val_auc = match train(&t, stop) {
            Ok(report) if report.interrupted.is_some() => return Ok(None),
            Ok(report) => {
                let val = report.validation.context("a search validates")?;
                let path = self.file(&cell, lr, seed, "f32");
                let info = training_info(&t, &report);
                let f32_export = EXPORTS[0];
                export(
                    &report.model,
                    f32_export.dtype,
                    f32_export.scale,
                    &info,
                    &path,
                )?;
                val.auc
            }
            Err(e) if e.downcast_ref::<Diverged>().is_some() => f64::NAN,
            Err(e) => return Err(e),
        };
        let _ = std::fs::remove_file(&checkpoint);
        let seconds = clock.elapsed().as_secs_f64();
        self.seconds_per_training.push(seconds);
        self.trainings.push(Training {
            cell,
            lr,
            seed,
            val_auc,
            seconds,
        });
        write_trainings(&s.out_dir.join("trainings.csv"), &self.trainings)?;
        let remaining = planned.saturating_sub(self.trainings.len());
        let result = if val_auc.is_nan() {
            "diverged".to_string()
        } else {
            format!("validation AUC {val_auc:.5}")
        };
        writeln!(
            self.log,
            "[{}/{planned}] {} lr {lr} seed {seed}: {result}, {seconds:.0} s; about {} left",
            self.trainings.len(),
            cell.label(),
            minutes(remaining as f64 * self.mean_seconds())
        )?;
        Ok(Some(()))
    }

    /// Exports the f32 file of a training in every dtype and scores each file on the test rows
    /// (what is not scored yet). An export with int8 layers starts from the export of the same
    /// tables with F32 layers and calibrates on it, as `mlet train --mlp-dtype int8` does.
    /// Returns how many files it exported and scored.
    fn score_all(&mut self, cell: Cell, lr: f64, seed: u64) -> Result<usize> {
        let s = self.settings;
        let options = ReadOptions {
            skip_bad_lines: false,
            require_labels: true,
        };
        let start = s.val.rows.start;
        let calibration = Rows {
            spec: s.val.spec.clone(),
            range: start..s.val.rows.end.min(start + CALIBRATION_ROWS),
            options,
        };
        let mut files = 0;
        for e in EXPORTS {
            if self
                .scores_of(&cell, lr, seed)
                .iter()
                .any(|x| x.export == e.name)
            {
                continue;
            }
            let path = self.file(&cell, lr, seed, e.name);
            if e.name != "f32" {
                let base = match e.mlp {
                    Layers::Int8 => {
                        EXPORTS
                            .iter()
                            .find(|b| {
                                b.mlp == Layers::F32 && (b.dtype, b.scale) == (e.dtype, e.scale)
                            })
                            .context("every int8-layer export has an F32-layer twin")?
                            .name
                    }
                    _ => "f32",
                };
                let source_path = self.file(&cell, lr, seed, base);
                let source_map = map(&source_path)?;
                let source = ModelFile::parse(&source_map)
                    .map_err(|err| anyhow::anyhow!("{}: {err}", source_path.display()))?;
                let ranges = match e.mlp {
                    Layers::Int8 => Some(calibrate(&source, &calibration)?),
                    _ => None,
                };
                let settings = QuantSettings {
                    tables: (base == "f32" && e.dtype != EmbeddingDtype::F32)
                        .then_some((e.dtype, e.scale)),
                    layers: e.mlp,
                    input_scale: InputScale::Auto,
                    clip: 0.0,
                };
                requantize(&source, &settings, ranges.as_ref())?.write(&path, &source)?;
            }
            let bytes = map(&path)?;
            let (p, y) = score_file(&bytes, &s.test.spec, s.test.rows.clone(), options)?;
            let m = Metrics::compute(&p, &y);
            let written = ModelFile::parse(&bytes)
                .map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?;
            let sizes = crate::export::FileSizes::of(&written);
            self.scores.push(Score {
                cell,
                lr,
                seed,
                export: e.name.to_string(),
                bytes: sizes.total as u64,
                table_bytes: sizes.tables as u64,
                mlp_bytes: sizes.mlp as u64,
                auc: m.auc,
                logloss: m.logloss,
            });
            files += 1;
        }
        write_scores(&s.out_dir.join("scores.csv"), &self.scores)?;
        Ok(files)
    }
}

/// `about 12 min` for seconds.
fn minutes(seconds: f64) -> String {
    if seconds < 90.0 {
        format!("{seconds:.0} s")
    } else {
        format!("{:.0} min", seconds / 60.0)
    }
}

fn cell_fields(cell: &Cell) -> String {
    format!("{},{},{},{}", cell.name(), cell.dim, cell.k, cell.rows)
}

fn write_trainings(path: &Path, trainings: &[Training]) -> Result<()> {
    let mut text = format!("{TRAININGS_HEADER}\n");
    for t in trainings {
        text += &format!(
            "{},{},{},{},{:.1}\n",
            cell_fields(&t.cell),
            t.lr,
            t.seed,
            t.val_auc,
            t.seconds
        );
    }
    write_atomic(path, text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}

fn write_scores(path: &Path, scores: &[Score]) -> Result<()> {
    let mut text = format!("{SCORES_HEADER}\n");
    for s in scores {
        text += &format!(
            "{},{},{},{},{},{},{},{},{}\n",
            cell_fields(&s.cell),
            s.lr,
            s.seed,
            s.export,
            s.bytes,
            s.table_bytes,
            s.mlp_bytes,
            s.auc,
            s.logloss
        );
    }
    write_atomic(path, text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}

/// The fields of each line of a CSV written here (none when the file does not exist).
fn read_csv(path: &Path, header: &str, fields: usize) -> Result<Vec<Vec<String>>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(_) => return Ok(Vec::new()),
    };
    let mut lines = text.lines();
    if lines.next() != Some(header) {
        bail!(
            "{}: not a file of this search (unexpected header)",
            path.display()
        );
    }
    lines
        .enumerate()
        .map(|(i, line)| {
            let f: Vec<String> = line.split(',').map(str::to_string).collect();
            if f.len() != fields {
                bail!(
                    "{}: line {}: expected {fields} fields",
                    path.display(),
                    i + 2
                );
            }
            Ok(f)
        })
        .collect()
}

fn number<T: std::str::FromStr>(path: &Path, field: &str) -> Result<T> {
    field
        .parse()
        .map_err(|_| anyhow::anyhow!("{}: `{field}` is not a number", path.display()))
}

fn cell_of(path: &Path, f: &[String]) -> Result<Cell> {
    Ok(Cell {
        dim: number(path, &f[1])?,
        k: number(path, &f[2])?,
        rows: number(path, &f[3])?,
    })
}

fn read_trainings(path: &Path) -> Result<Vec<Training>> {
    read_csv(path, TRAININGS_HEADER, 8)?
        .iter()
        .map(|f| {
            Ok(Training {
                cell: cell_of(path, f)?,
                lr: number(path, &f[4])?,
                seed: number(path, &f[5])?,
                val_auc: number(path, &f[6])?,
                seconds: number(path, &f[7])?,
            })
        })
        .collect()
}

fn read_scores(path: &Path) -> Result<Vec<Score>> {
    read_csv(path, SCORES_HEADER, 12)?
        .iter()
        .map(|f| {
            Ok(Score {
                cell: cell_of(path, f)?,
                lr: number(path, &f[4])?,
                seed: number(path, &f[5])?,
                export: f[6].clone(),
                bytes: number(path, &f[7])?,
                table_bytes: number(path, &f[8])?,
                mlp_bytes: number(path, &f[9])?,
                auc: number(path, &f[10])?,
                logloss: number(path, &f[11])?,
            })
        })
        .collect()
}

/// Scores grouped by (cell, rate, export).
pub(super) fn group(scores: &[Score]) -> HashMap<(String, String, String), Vec<&Score>> {
    let mut out: HashMap<(String, String, String), Vec<&Score>> = HashMap::new();
    for s in scores {
        out.entry((s.cell.name(), s.lr.to_string(), s.export.clone()))
            .or_default()
            .push(s);
    }
    out
}
