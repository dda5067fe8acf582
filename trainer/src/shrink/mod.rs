//! `mlet shrink`: the smallest model that loses at most a given AUC against the best one on the
//! user's data, found by a fair search over every knob that makes a model smaller, and the
//! commands that make it.
//!
//! The protocol:
//! - Three splits in time order: training, validation and test rows ([`Split`]).
//! - Cells: plain tables of width d, MLET tables of width d and inner width k, each with all the
//!   rows a table could use or a fraction of them (the hashing trick: a table gets
//!   `ceil(fraction x distinct values)` rows, and ids share rows by `raw mod n`).
//! - Every cell is trained at every learning rate of a small grid (one seed) and keeps the rate
//!   with the best validation AUC: each model at its own best rate, never one shared rate.
//! - The cell's f32 file is then exported in every table dtype with F32 and with int8 layers
//!   ([`EXPORTS`]; int8 layers calibrated on the validation rows), and every file is scored on
//!   the test rows by `mlet-runtime`.
//! - The candidates, every cell whose test AUC comes within [`CANDIDATE_MARGIN`] of the loss
//!   allowed of the best, are retrained at their rate with more seeds; each (cell, export) is
//!   then reported as the mean and standard deviation of its test AUC over the seeds.
//! - The best is the (cell, export) with the highest mean; another "matches" when its mean is at
//!   most `max(max_auc_loss, 2 x the two means' combined standard error)` below it, and the
//!   smallest match by file bytes is the answer.
//!
//! Every training and every score is appended to CSV files in the output folder as it finishes,
//! so a rerun of the same command skips all finished work. With a time budget, the grid is
//! trimmed as [`mod@run`] explains.

mod report;
mod run;

use std::path::PathBuf;

use anyhow::Result;
use mlet_formats::EmbeddingDtype;

use crate::data::{DataSpec, Vocab, DEFAULT_SYNTHETIC_RANK};
use crate::export::Int8Scale;
use crate::optim::OptimizerKind;
use crate::quantize::Layers;

pub use report::{report, Aggregate, Choice};
pub use run::{run, Outcome};

/// How much better than the loss allowed a single-seed cell's test AUC must come to be
/// retrained with more seeds: about three times the spread of one seed seen at 1M rows.
pub const CANDIDATE_MARGIN: f64 = 0.01;

/// Rows of a data source used as one split.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    /// The source.
    pub spec: DataSpec,
    /// Its rows (the end may lie past the last row).
    pub rows: std::ops::Range<u64>,
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.rows == (0..u64::MAX) {
            write!(f, "{}", self.spec)
        } else if self.rows.end == u64::MAX {
            write!(f, "{} rows {}..", self.spec, self.rows.start)
        } else {
            write!(
                f,
                "{} rows {}..{}",
                self.spec, self.rows.start, self.rows.end
            )
        }
    }
}

/// One way of writing a trained model: table dtype and scales, and MLP layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Export {
    /// Short name (file names, CSV, plot).
    pub name: &'static str,
    /// Table dtype.
    pub dtype: EmbeddingDtype,
    /// int8 and int4 scales per row or per table.
    pub scale: Int8Scale,
    /// F32 layers, or int8 layers calibrated on the validation rows.
    pub mlp: Layers,
}

/// Every export a cell is scored in: each table dtype, with F32 and with int8 layers.
pub const EXPORTS: [Export; 12] = {
    const fn e(name: &'static str, dtype: EmbeddingDtype, scale: Int8Scale, mlp: Layers) -> Export {
        Export {
            name,
            dtype,
            scale,
            mlp,
        }
    }
    use EmbeddingDtype::{Int4, Int8, F16, F32};
    use Int8Scale::{Row, Table};
    [
        e("f32", F32, Row, Layers::F32),
        e("f16", F16, Row, Layers::F32),
        e("int8-row", Int8, Row, Layers::F32),
        e("int8-table", Int8, Table, Layers::F32),
        e("int4-row", Int4, Row, Layers::F32),
        e("int4-table", Int4, Table, Layers::F32),
        e("f32+int8mlp", F32, Row, Layers::Int8),
        e("f16+int8mlp", F16, Row, Layers::Int8),
        e("int8-row+int8mlp", Int8, Row, Layers::Int8),
        e("int8-table+int8mlp", Int8, Table, Layers::Int8),
        e("int4-row+int8mlp", Int4, Row, Layers::Int8),
        e("int4-table+int8mlp", Int4, Table, Layers::Int8),
    ]
};

/// Calibration rows of int8 layers: the first of the validation rows, as `mlet train
/// --mlp-dtype int8` takes them by default.
pub const CALIBRATION_ROWS: u64 = 8192;

/// One model of the grid.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cell {
    /// Embedding width d.
    pub dim: usize,
    /// MLET inner width k (0: plain tables).
    pub k: usize,
    /// Fraction of each table's distinct values it gets rows for (1: all).
    pub rows: f64,
}

impl Cell {
    /// `plain-d16-r1`, `mlet-d4-k64-r0.25` (file names, CSV).
    pub fn name(&self) -> String {
        match self.k {
            0 => format!("plain-d{}-r{}", self.dim, self.rows),
            k => format!("mlet-d{}-k{k}-r{}", self.dim, self.rows),
        }
    }

    /// `plain d=16`, `MLET d=4 k=64, 1/4 rows`.
    pub fn label(&self) -> String {
        let model = match self.k {
            0 => format!("plain d={}", self.dim),
            k => format!("MLET d={} k={k}", self.dim),
        };
        if self.rows < 1.0 {
            format!("{model}, 1/{} rows", (1.0 / self.rows).round())
        } else {
            model
        }
    }

    /// Which knobs make it smaller than a plain model with every row: its method in the plot.
    pub fn method(&self) -> usize {
        match (self.k > 0, self.rows < 1.0) {
            (false, false) => 0,
            (true, false) => 1,
            (false, true) => 2,
            (true, true) => 3,
        }
    }
}

/// The names of [`Cell::method`].
pub const METHODS: [&str; 4] = ["plain", "MLET", "plain, fewer rows", "MLET, fewer rows"];

/// What a search trains and how.
#[derive(Clone, Debug)]
pub struct ShrinkSettings {
    /// Training rows.
    pub train: Split,
    /// Validation rows: pick each cell's learning rate.
    pub val: Split,
    /// Test rows: every reported AUC.
    pub test: Split,
    /// Output folder.
    pub out_dir: PathBuf,
    /// The AUC a model may lose against the best.
    pub max_auc_loss: f64,
    /// Widths d of the plain cells.
    pub plain_dims: Vec<usize>,
    /// Widths d of the MLET cells.
    pub mlet_dims: Vec<usize>,
    /// Inner widths k of the MLET cells.
    pub mlet_ks: Vec<usize>,
    /// Fractions of the distinct values a table gets rows for.
    pub row_fractions: Vec<f64>,
    /// Learning rates tried for every cell.
    pub lrs: Vec<f64>,
    /// Seeds of a candidate cell (at least 3).
    pub seeds: u64,
    /// Optimizer.
    pub optimizer: OptimizerKind,
    /// Examples per step.
    pub batch: usize,
    /// Passes over the training rows.
    pub epochs: usize,
    /// Bottom MLP hidden widths.
    pub bottom_hidden: Vec<usize>,
    /// Top MLP hidden widths.
    pub top_hidden: Vec<usize>,
    /// Stop starting work after this long (see [`mod@run`]).
    pub budget: Option<std::time::Duration>,
    /// Show training progress bars.
    pub progress: bool,
}

impl ShrinkSettings {
    /// The default search on the built-in synthetic world (rank 8): 1M training rows, 100k
    /// validation and 100k test rows (other seeds of the same world), the demo's MLPs, one epoch
    /// of SGD at batch 256 with learning rates {0.3, 1, 3}, plain d in {2, 4, 8, 16, 32} and MLET
    /// d in {2, 4, 8} x k in {64, 256}, each with all, 1/4 and 1/16 of the rows, 3 seeds.
    pub fn full(out_dir: PathBuf) -> ShrinkSettings {
        let synthetic = |rows, seed| Split {
            spec: DataSpec::Synthetic {
                rows,
                seed,
                rank: DEFAULT_SYNTHETIC_RANK,
                vocab: Vocab::Default,
            },
            rows: 0..u64::MAX,
        };
        ShrinkSettings {
            train: synthetic(1_000_000, 1),
            val: synthetic(100_000, 2),
            test: synthetic(100_000, 3),
            out_dir,
            max_auc_loss: 0.001,
            plain_dims: vec![2, 4, 8, 16, 32],
            mlet_dims: vec![2, 4, 8],
            mlet_ks: vec![64, 256],
            row_fractions: vec![1.0, 0.25, 0.0625],
            lrs: vec![0.3, 1.0, 3.0],
            seeds: 3,
            optimizer: OptimizerKind::Sgd,
            batch: 256,
            epochs: 1,
            bottom_hidden: vec![64, 32],
            top_hidden: vec![64, 32],
            budget: None,
            progress: false,
        }
    }

    /// The CI smoke test: 60k/10k/10k rows, plain d in {4, 16}, MLET d=4 k=64, all and 1/4 of
    /// the rows, the same learning rates and seeds.
    pub fn quick(out_dir: PathBuf) -> ShrinkSettings {
        let mut s = ShrinkSettings::full(out_dir);
        s.train.spec = with_rows(&s.train.spec, 60_000);
        s.val.spec = with_rows(&s.val.spec, 10_000);
        s.test.spec = with_rows(&s.test.spec, 10_000);
        s.plain_dims = vec![4, 16];
        s.mlet_dims = vec![4];
        s.mlet_ks = vec![64];
        s.row_fractions = vec![1.0, 0.25];
        s
    }

    /// Every cell, in the order they are trained: plain by d, then MLET by d and k; each with
    /// every row fraction.
    pub fn cells(&self) -> Vec<Cell> {
        let models = self.plain_dims.iter().map(|&dim| (dim, 0)).chain(
            self.mlet_dims
                .iter()
                .flat_map(|&dim| self.mlet_ks.iter().map(move |&k| (dim, k))),
        );
        models
            .flat_map(|(dim, k)| {
                self.row_fractions
                    .iter()
                    .map(move |&rows| Cell { dim, k, rows })
            })
            .collect()
    }

    /// The settings the results of a folder belong to, as text (a rerun must match them).
    pub fn fingerprint(&self) -> String {
        let list = |v: &[f64]| v.iter().map(f64::to_string).collect::<Vec<_>>().join(",");
        let join = |w: &[usize]| w.iter().map(usize::to_string).collect::<Vec<_>>().join("-");
        format!(
            "train={}\nval={}\ntest={}\nlrs={}\noptimizer={}\nbatch={}\nepochs={}\nbottom={}\ntop={}\n",
            self.train,
            self.val,
            self.test,
            list(&self.lrs),
            self.optimizer,
            self.batch,
            self.epochs,
            join(&self.bottom_hidden),
            join(&self.top_hidden)
        )
    }

    /// Checks the settings before any work.
    pub fn check(&self) -> Result<()> {
        anyhow::ensure!(self.seeds >= 3, "--seeds must be at least 3");
        anyhow::ensure!(!self.lrs.is_empty(), "--lrs needs at least one rate");
        anyhow::ensure!(
            self.row_fractions.iter().all(|&f| f > 0.0 && f <= 1.0),
            "--row-fractions must lie in (0, 1]"
        );
        anyhow::ensure!(!self.cells().is_empty(), "the grid has no cell");
        Ok(())
    }
}

/// `spec` with `rows` rows (synthetic sources only; others unchanged).
fn with_rows(spec: &DataSpec, rows: u64) -> DataSpec {
    match spec {
        DataSpec::Synthetic {
            seed, rank, vocab, ..
        } => DataSpec::Synthetic {
            rows,
            seed: *seed,
            rank: *rank,
            vocab: *vocab,
        },
        other => other.clone(),
    }
}
