//! Every command and flag of `mlet`, as clap definitions. Values are checked here, before any
//! work starts: numbers in range, rates finite and positive, choices from a fixed list (which
//! `--help` shows).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use mlet_formats::EmbeddingDtype;
use mlet_trainer::data::{ColumnSchema, DataSpec, WriteFormat, DEFAULT_SYNTHETIC_RANK};
use mlet_trainer::export::Int8Scale;
use mlet_trainer::optim::OptimizerKind;
use mlet_trainer::quantize::{InputScale, Layers};

const EXAMPLES: &str = "\
Examples:
  mlet demo
  mlet synth --rows 100000 --out rows.tsv
  mlet train --data criteo:rows.tsv --val-fraction 0.2 --dim 4 --mlet-k 64 --dtype int8 --out m.mlet
  mlet train --data criteo:rows.tsv --val-fraction 0.2 --dtype int4 --mlp-dtype int8 --out small.mlet
  mlet quantize --model m.mlet --out m-int8.mlet --calibration criteo:rows.tsv --mlp-dtype int8
  mlet eval --model m.mlet --data criteo:rows.tsv
  mlet score --model m.mlet --data criteo:rows.tsv --out scores.txt
  mlet inspect --model m.mlet
  mlet train --data csv:log.csv --label clicked --dense 'n_*' --categorical site,ad --out m.mlet
  mlet score --model m.mlet --data parquet:new/ --carry request_id --out scores.csv";

/// Train wide, ship narrow: DLRM click models with MLET embeddings.
#[derive(Parser)]
#[command(name = "mlet", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Threads for the matrix products (default: every core).
    #[arg(long, global = true, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Subcommand)]
pub enum Command {
    /// Train a model, validate it, and optionally export it.
    Train(Box<TrainArgs>),
    /// Score labeled data with an exported model file (through mlet-runtime) and report metrics.
    Eval(EvalArgs),
    /// Print one probability per input row, in input order (labels not needed).
    Score(ScoreArgs),
    /// Show a model file's configuration, metadata, tensors and bytes.
    Inspect(InspectArgs),
    /// Re-export a trained model file without retraining: int8 layers calibrated on data (format
    /// v2), F16 layers, int8 or int4 tables; prints the AUC of both files and the bytes by part.
    Quantize(QuantizeArgs),
    /// Write synthetic rows as a Criteo TSV, CSV, TSV or Parquet file.
    Synth(SynthArgs),
    /// Train plain d=16, plain d=4 and MLET d=4 (k=64) on built-in synthetic data, export int8,
    /// re-score each file with the runtime and print a table.
    Demo,
    /// Validation AUC against model bytes: train plain and MLET models over a grid of d and k,
    /// export each as f32, f16, int8 per-row and int8 per-table, score every file with the
    /// runtime, write a CSV and an SVG plot with the Pareto front, print the headline.
    FootprintBench(Box<FootprintArgs>),
    /// The smallest model within a given AUC loss of the best on your data: a fair search over
    /// plain and MLET tables, fewer rows per table and lower-precision exports, each model at its
    /// own learning rate, candidates over several seeds; prints the answer, the command that
    /// makes it, and a Pareto plot.
    Shrink(Box<ShrinkArgs>),
}

/// How the embedding tables are stored in an exported file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TableDtype {
    /// 4 bytes a value.
    F32,
    /// IEEE half: 2 bytes a value.
    F16,
    /// 1-byte codes with a scale and offset per row or per table (--int8-scale).
    Int8,
    /// 4-bit codes, two a byte, with a scale and offset per row or per table (--int8-scale;
    /// format v2).
    Int4,
}

impl From<TableDtype> for EmbeddingDtype {
    fn from(dtype: TableDtype) -> EmbeddingDtype {
        match dtype {
            TableDtype::F32 => EmbeddingDtype::F32,
            TableDtype::F16 => EmbeddingDtype::F16,
            TableDtype::Int8 => EmbeddingDtype::Int8,
            TableDtype::Int4 => EmbeddingDtype::Int4,
        }
    }
}

/// How the MLP layers are stored in an exported file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MlpDtype {
    /// F32 weights and biases.
    F32,
    /// IEEE half weights and biases.
    F16,
    /// int8 layers with integer arithmetic (format v2), calibrated on data (--calibration).
    Int8,
}

impl From<MlpDtype> for Layers {
    fn from(dtype: MlpDtype) -> Layers {
        match dtype {
            MlpDtype::F32 => Layers::F32,
            MlpDtype::F16 => Layers::F16,
            MlpDtype::Int8 => Layers::Int8,
        }
    }
}

/// Most calibration rows by default: enough for stable ranges, a few seconds of f32 forward.
pub const DEFAULT_CALIBRATION_ROWS: u64 = 8192;

/// `quantize`.
#[derive(Args)]
pub struct QuantizeArgs {
    /// The trained model file (F32 or F16 layers).
    #[arg(long)]
    pub model: PathBuf,
    /// The re-exported file.
    #[arg(long)]
    pub out: PathBuf,
    /// Rows to calibrate int8 layers on (their first --calibration-rows rows); also the rows
    /// the AUCs are reported on unless --val is given.
    #[arg(long)]
    pub calibration: DataSpec,
    /// Most calibration rows.
    #[arg(long, default_value_t = DEFAULT_CALIBRATION_ROWS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub calibration_rows: u64,
    /// Rows to report the AUC of both files on (default: the calibration rows).
    #[arg(long)]
    pub val: Option<DataSpec>,
    /// Table dtype of the new file (default: the tables as they are).
    #[arg(long, value_enum)]
    pub dtype: Option<TableDtype>,
    /// int8/int4 tables: one F16 scale and offset per row, or one F32 pair per table.
    #[arg(long, value_enum, default_value_t = Int8Scale::Row)]
    pub int8_scale: Int8Scale,
    /// How the layers are stored.
    #[arg(long, value_enum, default_value_t = MlpDtype::Int8)]
    pub mlp_dtype: MlpDtype,
    /// int8 layers: per layer the input scale shape nearer the F32 outputs on the calibration
    /// rows (auto), or everywhere per tensor or per column.
    #[arg(long, value_enum, default_value_t = InputScale::Auto)]
    pub input_scale: InputScale,
    /// int8 layers: the share of calibration values left out at each end of an input range
    /// (0: the smallest and largest value).
    #[arg(long, default_value_t = 0.0, value_parser = below_half)]
    pub calibration_clip: f64,
    /// Skip and count malformed lines instead of stopping.
    #[arg(long)]
    pub skip_bad_lines: bool,
    /// End with one JSON line (both AUCs, both files' bytes).
    #[arg(long)]
    pub json: bool,
}

/// Where training computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeviceKind {
    /// The CPU (the hand-written step).
    Cpu,
    /// GPU 0 (needs an `mlet` built with the `cuda` feature).
    Cuda,
}

/// `eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// The model file.
    #[arg(long)]
    pub model: PathBuf,
    /// Data spec: criteo:PATH, avazu:PATH, csv:PATH, tsv:PATH, parquet:PATH or
    /// synthetic:N[:SEED[:RANK]] (csv/tsv/parquet columns by the model's stored schema).
    #[arg(long)]
    pub data: DataSpec,
    /// Skip and count malformed lines instead of stopping.
    #[arg(long)]
    pub skip_bad_lines: bool,
    /// End with one JSON line (auc, logloss, rows, ...).
    #[arg(long)]
    pub json: bool,
}

/// `score`.
#[derive(Args)]
pub struct ScoreArgs {
    /// The model file.
    #[arg(long)]
    pub model: PathBuf,
    /// Data spec (csv/tsv/parquet columns by the model's stored schema; no label needed).
    #[arg(long)]
    pub data: DataSpec,
    /// Write the probabilities to this file (`-`: standard output, the default).
    #[arg(long, default_value = "-")]
    pub out: PathBuf,
    /// Columns of csv/tsv/parquet data to copy to the output beside each probability (e.g. a
    /// request id): the output becomes CSV with a header `COL,...,probability`.
    #[arg(long, value_delimiter = ',')]
    pub carry: Vec<String>,
    /// Skip and count malformed lines instead of stopping.
    #[arg(long)]
    pub skip_bad_lines: bool,
}

/// `inspect`.
#[derive(Args)]
pub struct InspectArgs {
    /// The model file.
    #[arg(long)]
    pub model: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `synth`.
#[derive(Args)]
pub struct SynthArgs {
    /// Rows to write.
    #[arg(long)]
    pub rows: u64,
    /// Which rows (the hidden model is the same for every seed).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Rank of the hidden model's latent vectors.
    #[arg(long, default_value_t = DEFAULT_SYNTHETIC_RANK as u8,
          value_parser = clap::value_parser!(u8).range(1..=64))]
    pub rank: u8,
    /// The categorical columns' vocabularies.
    #[arg(long, value_enum, default_value_t = VocabKind::Default)]
    pub vocab: VocabKind,
    /// With --vocab criteo: a factor on every cardinality, in (0, 1].
    #[arg(long, default_value_t = 1.0, value_parser = unit_scale)]
    pub vocab_scale: f64,
    /// Output file (`-`: standard output, except for parquet).
    #[arg(long)]
    pub out: PathBuf,
    /// Layout: criteo (TSV without a header), csv or tsv (a header label,I1..I13,C1..C26), or
    /// parquet; the same rows in each.
    #[arg(long, value_enum, default_value_t = SynthFormat::Criteo)]
    pub format: SynthFormat,
}

/// `mlet synth --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SynthFormat {
    /// Criteo Kaggle TSV: no header, label, 13 integers, 26 8-hex-digit ids.
    Criteo,
    /// CSV with a header.
    Csv,
    /// TSV with a header.
    Tsv,
    /// Parquet (label INT32, I* INT64, C* dictionary-encoded strings, snappy).
    Parquet,
}

impl From<SynthFormat> for WriteFormat {
    fn from(format: SynthFormat) -> WriteFormat {
        match format {
            SynthFormat::Criteo => WriteFormat::Criteo,
            SynthFormat::Csv => WriteFormat::Csv,
            SynthFormat::Tsv => WriteFormat::Tsv,
            SynthFormat::Parquet => WriteFormat::Parquet,
        }
    }
}

/// The column schema of csv:, tsv: and parquet: data, from a JSON file or from flags.
#[derive(Args, Clone, Debug, Default)]
pub struct SchemaArgs {
    /// Schema of csv/tsv/parquet data, a JSON file: {"label": COL, "positive": [TEXT, ...],
    /// "dense": [COL, ...], "categorical": [COL, ...]} ("positive" optional; `PREFIX*` selects
    /// columns by prefix).
    #[arg(long, conflicts_with_all = ["label", "positive", "dense", "categorical"])]
    pub schema: Option<PathBuf>,
    /// Label column of csv/tsv/parquet data: 0/1 or true/false, or text with --positive.
    #[arg(long, requires_all = ["dense", "categorical"])]
    pub label: Option<String>,
    /// Label values that mean 1 (comma-separated); any other value means 0.
    #[arg(long, value_delimiter = ',', requires = "label")]
    pub positive: Vec<String>,
    /// Dense columns, comma-separated (`PREFIX*`: every column starting with PREFIX).
    #[arg(long, value_delimiter = ',', requires = "label")]
    pub dense: Vec<String>,
    /// Categorical columns, one embedding table each, comma-separated (`PREFIX*` too).
    #[arg(long, value_delimiter = ',', requires = "label")]
    pub categorical: Vec<String>,
}

impl SchemaArgs {
    /// The schema given, if any.
    pub fn schema(&self) -> anyhow::Result<Option<ColumnSchema>> {
        use anyhow::Context;
        if let Some(path) = &self.schema {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the schema {}", path.display()))?;
            let schema = ColumnSchema::from_json(&text)
                .with_context(|| format!("schema {}", path.display()))?;
            return Ok(Some(schema));
        }
        let Some(label) = &self.label else {
            return Ok(None);
        };
        let schema = ColumnSchema {
            label: label.clone(),
            positive: self.positive.clone(),
            dense: self.dense.clone(),
            categorical: self.categorical.clone(),
        };
        schema.check()?;
        Ok(Some(schema))
    }
}

/// Vocabularies of `mlet synth`'s categorical columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum VocabKind {
    /// 10 to 10^6 values a table, steep Zipf: learnable from a few hundred thousand rows.
    Default,
    /// Criteo Kaggle's 26 cardinalities (33.8M values in all), heavier tail.
    Criteo,
}

/// `footprint-bench`.
#[derive(Args)]
pub struct FootprintArgs {
    /// Output folder (CSV, SVG, exported models; finished models are skipped on a rerun).
    #[arg(long, default_value = "footprint")]
    pub out: PathBuf,
    /// The CI smoke test: 60k training rows, 10k validation rows (default: 1M and 200k).
    #[arg(long)]
    pub quick: bool,
    /// Training data instead of the synthetic default (needs --val).
    #[arg(long, requires = "val")]
    pub data: Option<DataSpec>,
    /// Validation data (needs --data).
    #[arg(long, requires = "data")]
    pub val: Option<DataSpec>,
    /// The columns of csv/tsv/parquet --data and --val.
    #[command(flatten)]
    pub columns: SchemaArgs,
    /// Plain widths d, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [2, 4, 8, 16, 32], value_parser = width)]
    pub plain_dims: Vec<usize>,
    /// MLET widths d, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [2, 4, 8], value_parser = width)]
    pub mlet_dims: Vec<usize>,
    /// MLET inner widths k, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [16, 64, 256], value_parser = width)]
    pub mlet_ks: Vec<usize>,
    /// Passes over the training data.
    #[arg(long, value_parser = count)]
    pub epochs: Option<usize>,
    /// Examples per step.
    #[arg(long, value_parser = count)]
    pub batch: Option<usize>,
    /// Learning rate.
    #[arg(long, value_parser = positive_finite)]
    pub lr: Option<f64>,
    /// Optimizer (Adagrad is row-wise for tables).
    #[arg(long, value_enum, default_value_t = OptimizerKind::Sgd)]
    pub optimizer: OptimizerKind,
}

/// `shrink`.
#[derive(Args)]
pub struct ShrinkArgs {
    /// Training data (default: the built-in synthetic world, 1M rows). Without --val, its rows
    /// in time order are split 80% train, 10% validation, 10% test.
    #[arg(long)]
    pub data: Option<DataSpec>,
    /// Validation and test data (first half validation, second half test), with --data.
    #[arg(long, requires = "data")]
    pub val: Option<DataSpec>,
    /// The columns of csv/tsv/parquet data.
    #[command(flatten)]
    pub columns: SchemaArgs,
    /// The AUC the smallest model may lose against the best.
    #[arg(long, default_value_t = 0.001, value_parser = below_half)]
    pub max_auc_loss: f64,
    /// The CI smoke test: 60k/10k/10k rows and a small grid.
    #[arg(long)]
    pub quick: bool,
    /// Output folder (CSVs, the plot, every model file; a rerun skips finished work).
    #[arg(long, default_value = "shrink")]
    pub out: PathBuf,
    /// Start no work that would end after this many minutes (see `mlet_trainer::shrink`).
    #[arg(long, value_parser = positive_finite)]
    pub budget_minutes: Option<f64>,
    /// Plain widths d, comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = width)]
    pub plain_dims: Option<Vec<usize>>,
    /// MLET widths d, comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = width)]
    pub mlet_dims: Option<Vec<usize>>,
    /// MLET inner widths k, comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = width)]
    pub mlet_ks: Option<Vec<usize>>,
    /// Fractions of each table's distinct values it gets rows for, comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = unit_scale)]
    pub row_fractions: Option<Vec<f64>>,
    /// Learning rates tried for every model, comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = positive_finite)]
    pub lrs: Option<Vec<f64>>,
    /// Seeds of a candidate model.
    #[arg(long, value_parser = clap::value_parser!(u64).range(3..=100))]
    pub seeds: Option<u64>,
    /// Optimizer (Adagrad is row-wise for tables).
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerKind>,
    /// Examples per step.
    #[arg(long, value_parser = count)]
    pub batch: Option<usize>,
    /// Passes over the training data.
    #[arg(long, value_parser = count)]
    pub epochs: Option<usize>,
    /// Bottom MLP hidden widths.
    #[arg(long, value_parser = hidden_widths)]
    pub bottom: Option<HiddenWidths>,
    /// Top MLP hidden widths.
    #[arg(long, value_parser = hidden_widths)]
    pub top: Option<HiddenWidths>,
}

/// `train`.
#[derive(Args)]
pub struct TrainArgs {
    /// Training data: criteo:PATH, avazu:PATH, csv:PATH, tsv:PATH, parquet:PATH (a file or a
    /// folder of parts; csv/tsv/parquet need --schema or --label/--dense/--categorical) or
    /// synthetic:N[:SEED[:RANK]].
    #[arg(long)]
    pub data: DataSpec,
    /// Validation data (a separate source).
    #[arg(long, conflicts_with = "val_fraction")]
    pub val: Option<DataSpec>,
    /// Validate on this last fraction of the training data's rows (time order kept).
    #[arg(long, value_parser = fraction)]
    pub val_fraction: Option<f64>,
    /// The columns of csv/tsv/parquet --data and --val.
    #[command(flatten)]
    pub columns: SchemaArgs,
    /// Embedding width d.
    #[arg(long, default_value_t = 16, value_parser = width)]
    pub dim: usize,
    /// Train MLET tables with this inner width k (default: plain tables).
    #[arg(long, value_parser = width)]
    pub mlet_k: Option<usize>,
    /// MLET: P starts normal with std SCALE / sqrt(k).
    #[arg(long, default_value_t = 1.0, value_parser = positive_finite)]
    pub mlet_init_scale: f64,
    /// Bottom MLP hidden widths, `-`-separated (the file's bottom_mlp is D-these-d; "": none).
    #[arg(long, default_value = "512-256-64", value_parser = hidden_widths)]
    pub bottom: HiddenWidths,
    /// Top MLP hidden widths, `-`-separated (a final 1 is appended; "": none).
    #[arg(long, default_value = "512-256", value_parser = hidden_widths)]
    pub top: HiddenWidths,
    /// Most rows per table (a table gets min(N, distinct training values)).
    #[arg(long, default_value_t = 1_000_000, value_parser = table_rows)]
    pub rows: usize,
    /// Rows of each table, comma-separated, or `criteo` (Criteo Kaggle's 26 cardinalities,
    /// 33.8M rows in all): the tables are sized without reading the data first.
    #[arg(long, conflicts_with = "rows", value_parser = table_rows_list)]
    pub table_rows: Option<TableRows>,
    /// Passes over the training data.
    #[arg(long, default_value_t = 1, value_parser = count)]
    pub epochs: usize,
    /// Examples per step.
    #[arg(long, default_value_t = 128, value_parser = count)]
    pub batch: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 0.2, value_parser = positive_finite)]
    pub lr: f64,
    /// Seed of the initial weights.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Optimizer (Adagrad is row-wise for tables).
    #[arg(long, value_enum, default_value_t = OptimizerKind::Sgd)]
    pub optimizer: OptimizerKind,
    /// Validate every N steps and keep the best weights (default: only at the end).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub eval_every: Option<u64>,
    /// Checkpoint file (written every --checkpoint-every steps and on Ctrl-C).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Write a checkpoint every N steps (default: only on Ctrl-C).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_every: Option<u64>,
    /// Continue from a checkpoint (same settings).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Export the trained model to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Exported table dtype.
    #[arg(long, value_enum, default_value_t = TableDtype::F32)]
    pub dtype: TableDtype,
    /// int8/int4 scales: one F16 scale and offset per row, or one F32 pair per table.
    #[arg(long, value_enum, default_value_t = Int8Scale::Row)]
    pub int8_scale: Int8Scale,
    /// Exported layer dtype; int8 layers are calibrated (--calibration) and both AUCs printed.
    #[arg(long, value_enum, default_value_t = MlpDtype::F32)]
    pub mlp_dtype: MlpDtype,
    /// Rows to calibrate int8 layers on (default: the validation rows).
    #[arg(long)]
    pub calibration: Option<DataSpec>,
    /// Most calibration rows.
    #[arg(long, default_value_t = DEFAULT_CALIBRATION_ROWS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub calibration_rows: u64,
    /// int8 layers: per layer the input scale shape nearer the F32 outputs on the calibration
    /// rows (auto), or everywhere per tensor or per column.
    #[arg(long, value_enum, default_value_t = InputScale::Auto)]
    pub input_scale: InputScale,
    /// int8 layers: the share of calibration values left out at each end of an input range
    /// (0: the smallest and largest value).
    #[arg(long, default_value_t = 0.0, value_parser = below_half)]
    pub calibration_clip: f64,
    /// Skip and count malformed lines instead of stopping.
    #[arg(long)]
    pub skip_bad_lines: bool,
    /// Where to train.
    #[arg(long, value_enum, default_value_t = DeviceKind::Cpu)]
    pub device: DeviceKind,
    /// On the CPU, train with candle's autograd step (the CUDA path) instead of the
    /// hand-written one: slower, same arithmetic.
    #[arg(long)]
    pub autograd: bool,
    /// End with one JSON line (auc, logloss, rows, samples_per_s, ...).
    #[arg(long)]
    pub json: bool,
}

/// An MLP's hidden widths, written `512-256-64`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HiddenWidths(pub Vec<usize>);

/// Hidden widths: each 1 to [`MAX_WIDTH`], at most 7 of them (an MLP has at most 8 layers).
fn hidden_widths(s: &str) -> Result<HiddenWidths, String> {
    if s.is_empty() {
        return Ok(HiddenWidths(Vec::new()));
    }
    let widths = s
        .split('-')
        .map(|w| width(w).map_err(|e| format!("`{w}` in `{s}`: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    if widths.len() >= mlet_formats::MAX_LAYERS {
        return Err(format!(
            "at most {} hidden widths (an MLP has at most {} layers)",
            mlet_formats::MAX_LAYERS - 1,
            mlet_formats::MAX_LAYERS
        ));
    }
    Ok(HiddenWidths(widths))
}

/// The rows of every table, given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableRows(pub Vec<usize>);

/// `N0,N1,...` or `criteo`.
fn table_rows_list(s: &str) -> Result<TableRows, String> {
    if s == "criteo" {
        let rows = mlet_trainer::data::CRITEO_CARDINALITIES.map(|n| n as usize);
        return Ok(TableRows(rows.to_vec()));
    }
    let rows = s
        .split(',')
        .map(|n| table_rows(n).map_err(|e| format!("`{n}` in `{s}`: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TableRows(rows))
}

/// Most embedding width d or MLET k a model may have.
pub const MAX_WIDTH: usize = 65_536;

/// A width (d, k): 1 to [`MAX_WIDTH`].
fn width(s: &str) -> Result<usize, String> {
    in_range(s, 1, MAX_WIDTH)
}

/// A count of epochs or examples: 1 to 2^31.
fn count(s: &str) -> Result<usize, String> {
    in_range(s, 1, 1 << 31)
}

/// Rows per table: 1 to 2^32 - 1 (row ids are u32).
fn table_rows(s: &str) -> Result<usize, String> {
    in_range(s, 1, u32::MAX as usize)
}

fn in_range(s: &str, low: usize, high: usize) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(v) if (low..=high).contains(&v) => Ok(v),
        Ok(_) => Err(format!("must be {low} to {high}")),
        Err(_) => Err(format!("`{s}` is not a whole number")),
    }
}

/// A finite number above 0 (a learning rate, a scale).
fn positive_finite(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(_) => Err("must be a finite number above 0".into()),
        Err(_) => Err(format!("`{s}` is not a number")),
    }
}

/// A number in [0, 0.5): an AUC difference, or a share of values left out at each end of a
/// range.
fn below_half(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..0.5).contains(&v) => Ok(v),
        Ok(_) => Err("must be at least 0 and below 0.5".into()),
        Err(_) => Err(format!("`{s}` is not a number")),
    }
}

/// A factor in (0, 1].
fn unit_scale(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        Ok(_) => Err("must be above 0 and at most 1".into()),
        Err(_) => Err(format!("`{s}` is not a number")),
    }
}

/// A fraction strictly between 0 and 1.
fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v < 1.0 => Ok(v),
        Ok(_) => Err("must be between 0 and 1 (both excluded)".into()),
        Err(_) => Err(format!("`{s}` is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn values_out_of_range_are_refused() {
        assert!(positive_finite("nan").is_err());
        assert!(positive_finite("inf").is_err());
        assert!(positive_finite("0").is_err());
        assert!(positive_finite("-1").is_err());
        assert_eq!(positive_finite("0.5"), Ok(0.5));
        assert!(fraction("1").is_err() && fraction("0").is_err());
        assert!(
            below_half("0.5").is_err() && below_half("-0.1").is_err() && below_half("nan").is_err()
        );
        assert_eq!(below_half("0"), Ok(0.0));
        assert!(width("0").is_err() && width("65537").is_err());
        assert_eq!(count("3"), Ok(3));
        assert_eq!(hidden_widths("64-32"), Ok(HiddenWidths(vec![64, 32])));
        assert_eq!(hidden_widths(""), Ok(HiddenWidths(vec![])));
        assert!(hidden_widths("64-0").is_err() && hidden_widths("1-2-3-4-5-6-7-8").is_err());
    }
}
