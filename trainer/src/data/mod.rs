//! Training data: the data specs of the command line, streaming readers, and the reader thread
//! that parses batches while the model computes.
//!
//! `criteo:`, `avazu:` and `synthetic:` sources have fixed columns; `csv:`, `tsv:` and
//! `parquet:` files are a user's own log, read by the column names of a [`ColumnSchema`]
//! attached to the spec ([`DataSpec::with_schema`]).
//!
//! Every reader yields rows of raw values: `num_dense` dense values as read (the model applies
//! its own `log1p`), one raw u32 id per table (the model maps it to a row by `raw mod n_t`), and
//! a 0/1 label (NaN for unlabeled rows, which only scoring accepts). Rows are numbered from 0 in
//! file order (a header line is not a row); a range of row numbers selects a split, so that the
//! validation tail keeps time order and a resumed run restarts at an exact row.

mod avazu;
mod criteo;
mod delimited;
mod lines;
mod parquet_file;
mod schema;
mod synthetic;

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread;

use anyhow::{bail, Context, Result};

pub use schema::ColumnSchema;
pub use synthetic::{
    write_criteo_tsv, write_synthetic, Vocab, World, WriteFormat, CRITEO_CARDINALITIES,
};

/// How many dense values and tables a data source has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schema {
    /// Dense values per row.
    pub num_dense: usize,
    /// Categorical features (embedding tables) per row.
    pub num_tables: usize,
}

/// Rows side by side: `dense` holds `num_dense` values per row, `ids` `num_tables` raw ids per row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    /// Raw dense values, row-major.
    pub dense: Vec<f32>,
    /// Raw categorical ids, row-major.
    pub ids: Vec<u32>,
    /// Labels, 0 or 1 (NaN for unlabeled rows).
    pub labels: Vec<f32>,
    /// The row number that follows this batch's last row in its source.
    pub next_row: u64,
    /// Values of the carried columns ([`ColumnFile::carry`]) as text, row-major; empty for other
    /// sources.
    pub carried: Vec<Vec<u8>>,
}

impl Batch {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the batch holds no row.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// A data source named on the command line.
#[derive(Clone, Debug, PartialEq)]
pub enum DataSpec {
    /// `criteo:PATH`: Criteo Kaggle TSV (40 columns, or the 39-column unlabeled test layout).
    Criteo(PathBuf),
    /// `avazu:PATH`: Avazu CSV with header.
    Avazu(PathBuf),
    /// `synthetic:N[:SEED[:RANK[:criteo[:SCALE]]]]`: N rows from the built-in ground-truth
    /// model, over its default vocabularies or Criteo's cardinalities (times SCALE).
    Synthetic {
        /// Rows.
        rows: u64,
        /// Which rows (the hidden model itself is the same for every seed).
        seed: u64,
        /// Rank of the hidden model's latent vectors.
        rank: usize,
        /// The categorical columns' vocabularies.
        vocab: Vocab,
    },
    /// `csv:PATH`, `tsv:PATH` or `parquet:PATH`: a user's own log, read by column names.
    Columns(ColumnFile),
}

/// A CSV, TSV or Parquet file (or folder of Parquet parts) read by column names.
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnFile {
    /// How the file is written.
    pub format: ColumnFormat,
    /// The file, or for Parquet also a folder of part files.
    pub path: PathBuf,
    /// The columns that feed the model, resolved against the file; `None` until attached.
    pub schema: Option<ColumnSchema>,
    /// Columns whose values are passed through to [`Batch::carried`] (`score --carry`).
    pub carry: Vec<String>,
}

/// The file formats read by column names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnFormat {
    /// Comma-separated, RFC 4180 quoting, a header line.
    Csv,
    /// Tab-separated, the same quoting, a header line.
    Tsv,
    /// Apache Parquet.
    Parquet,
}

impl ColumnFormat {
    /// The spec's prefix: `csv`, `tsv` or `parquet`.
    pub fn prefix(self) -> &'static str {
        match self {
            ColumnFormat::Csv => "csv",
            ColumnFormat::Tsv => "tsv",
            ColumnFormat::Parquet => "parquet",
        }
    }
}

impl ColumnFile {
    /// The names of the file's columns, in order (a CSV header; the first Parquet part's
    /// top-level fields).
    pub fn header(&self) -> Result<Vec<String>> {
        match self.format {
            ColumnFormat::Csv => delimited::header(&self.path, b','),
            ColumnFormat::Tsv => delimited::header(&self.path, b'\t'),
            ColumnFormat::Parquet => parquet_file::header(&self.path),
        }
    }

    /// The attached schema, or an error saying how to give one.
    fn schema(&self) -> Result<&ColumnSchema> {
        self.schema.as_ref().with_context(|| {
            format!(
                "{}:{} needs a schema: --schema FILE or --label/--dense/--categorical",
                self.format.prefix(),
                self.path.display()
            )
        })
    }
}

/// Default rank of the synthetic ground truth's latent vectors.
pub const DEFAULT_SYNTHETIC_RANK: usize = 8;

impl FromStr for DataSpec {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<DataSpec> {
        let (kind, rest) = s
            .split_once(':')
            .with_context(|| format!("data spec `{s}`: expected {SPEC_FORMS}"))?;
        let columns = |format| {
            Ok(DataSpec::Columns(ColumnFile {
                format,
                path: rest.into(),
                schema: None,
                carry: Vec::new(),
            }))
        };
        match kind {
            "criteo" if !rest.is_empty() => Ok(DataSpec::Criteo(rest.into())),
            "avazu" if !rest.is_empty() => Ok(DataSpec::Avazu(rest.into())),
            "csv" if !rest.is_empty() => columns(ColumnFormat::Csv),
            "tsv" if !rest.is_empty() => columns(ColumnFormat::Tsv),
            "parquet" if !rest.is_empty() => columns(ColumnFormat::Parquet),
            "synthetic" => {
                let usage = "expected synthetic:N[:SEED[:RANK[:criteo[:SCALE]]]]";
                let parts: Vec<&str> = rest.split(':').collect();
                if parts.len() > 5 {
                    bail!("data spec `{s}`: {usage}");
                }
                let number = |i: usize, what: &str| -> Result<Option<u64>> {
                    parts
                        .get(i)
                        .map(|p| {
                            p.parse::<u64>().with_context(|| {
                                format!("data spec `{s}`: {what} `{p}` is not a whole number")
                            })
                        })
                        .transpose()
                };
                let rows = number(0, "N")?.unwrap_or(0);
                let seed = number(1, "SEED")?.unwrap_or(0);
                let rank = number(2, "RANK")?.unwrap_or(DEFAULT_SYNTHETIC_RANK as u64) as usize;
                if rank == 0 || rank > 64 {
                    bail!("data spec `{s}`: RANK must be 1..=64");
                }
                let vocab = match (parts.get(3), parts.get(4)) {
                    (None, _) => Vocab::Default,
                    (Some(&"criteo"), None) => Vocab::Criteo { scale: 1.0 },
                    (Some(&"criteo"), Some(scale)) => match scale.parse::<f64>() {
                        Ok(scale) if scale > 0.0 && scale <= 1.0 => Vocab::Criteo { scale },
                        _ => bail!("data spec `{s}`: SCALE `{scale}` must be a number in (0, 1]"),
                    },
                    (Some(other), _) => {
                        bail!("data spec `{s}`: unknown vocabulary `{other}`; {usage}")
                    }
                };
                Ok(DataSpec::Synthetic {
                    rows,
                    seed,
                    rank,
                    vocab,
                })
            }
            _ => bail!("data spec `{s}`: expected {SPEC_FORMS}"),
        }
    }
}

/// The forms of a data spec, for error messages.
const SPEC_FORMS: &str =
    "criteo:PATH, avazu:PATH, csv:PATH, tsv:PATH, parquet:PATH or synthetic:N[:SEED[:RANK]]";

impl fmt::Display for DataSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataSpec::Criteo(p) => write!(f, "criteo:{}", p.display()),
            DataSpec::Avazu(p) => write!(f, "avazu:{}", p.display()),
            DataSpec::Synthetic {
                rows,
                seed,
                rank,
                vocab,
            } => {
                write!(f, "synthetic:{rows}:{seed}:{rank}")?;
                match vocab {
                    Vocab::Default => Ok(()),
                    Vocab::Criteo { scale } if *scale == 1.0 => f.write_str(":criteo"),
                    Vocab::Criteo { scale } => write!(f, ":criteo:{scale}"),
                }
            }
            DataSpec::Columns(c) => write!(f, "{}:{}", c.format.prefix(), c.path.display()),
        }
    }
}

impl DataSpec {
    /// The shape every row of this source has (for `csv:`, `tsv:` and `parquet:`, once a
    /// schema is attached).
    pub fn schema(&self) -> Result<Schema> {
        Ok(match self {
            DataSpec::Criteo(_) | DataSpec::Synthetic { .. } => Schema {
                num_dense: 13,
                num_tables: 26,
            },
            DataSpec::Avazu(_) => Schema {
                num_dense: 1,
                num_tables: avazu::CATEGORICAL.len(),
            },
            DataSpec::Columns(c) => c.schema()?.shape(),
        })
    }

    /// The attached column schema of a `csv:`, `tsv:` or `parquet:` spec.
    pub fn column_schema(&self) -> Option<&ColumnSchema> {
        match self {
            DataSpec::Columns(c) => c.schema.as_ref(),
            _ => None,
        }
    }

    /// True for a `csv:`, `tsv:` or `parquet:` spec that has no schema yet.
    pub fn needs_schema(&self) -> bool {
        matches!(self, DataSpec::Columns(ColumnFile { schema: None, .. }))
    }

    /// This `csv:`, `tsv:` or `parquet:` spec with `schema` attached: its patterns resolved
    /// against the file's columns, which must hold every named column (the label only
    /// `with_label`). Other specs have fixed columns and take no schema.
    pub fn with_schema(self, schema: &ColumnSchema, with_label: bool) -> Result<DataSpec> {
        let DataSpec::Columns(mut file) = self else {
            bail!("{self} has fixed columns; a schema (--schema, --label, ...) is for csv:, tsv: and parquet: data");
        };
        let header = file.header()?;
        let resolved = schema
            .resolve(&header, with_label)
            .with_context(|| format!("{}:{}", file.format.prefix(), file.path.display()))?;
        file.schema = Some(resolved);
        Ok(DataSpec::Columns(file))
    }

    /// This `csv:`, `tsv:` or `parquet:` spec, also passing the values of `columns` through to
    /// [`Batch::carried`].
    pub fn with_carry(self, columns: Vec<String>) -> Result<DataSpec> {
        let DataSpec::Columns(mut file) = self else {
            bail!("{self}: carrying columns through (--carry) needs csv:, tsv: or parquet: data");
        };
        file.carry = columns;
        Ok(DataSpec::Columns(file))
    }

    /// Number of rows (a header is not a row). Reads through a text file once without parsing
    /// its values (CSV and TSV records, since a quoted field may span lines), and only the
    /// footers of Parquet files.
    pub fn count_rows(&self) -> Result<u64> {
        match self {
            DataSpec::Criteo(path) => lines::count_lines(path),
            DataSpec::Avazu(path) => Ok(lines::count_lines(path)?.saturating_sub(1)),
            DataSpec::Synthetic { rows, .. } => Ok(*rows),
            DataSpec::Columns(c) => match c.format {
                ColumnFormat::Csv => delimited::count_rows(&c.path, b','),
                ColumnFormat::Tsv => delimited::count_rows(&c.path, b'\t'),
                ColumnFormat::Parquet => parquet_file::count_rows(&c.path),
            },
        }
    }

    /// Opens a reader positioned at row 0.
    pub fn open(&self, options: ReadOptions) -> Result<Box<dyn Source>> {
        Ok(match self {
            DataSpec::Criteo(path) => Box::new(criteo::open(path, options)?),
            DataSpec::Avazu(path) => Box::new(avazu::open(path, options)?),
            DataSpec::Synthetic {
                rows,
                seed,
                rank,
                vocab,
            } => Box::new(synthetic::SyntheticSource::new(*rows, *seed, *rank, *vocab)),
            DataSpec::Columns(c) => {
                let schema = c.schema()?;
                match c.format {
                    ColumnFormat::Csv => Box::new(delimited::open(c, schema, b',', options)?),
                    ColumnFormat::Tsv => Box::new(delimited::open(c, schema, b'\t', options)?),
                    ColumnFormat::Parquet => Box::new(parquet_file::open(c, schema, options)?),
                }
            }
        })
    }
}

/// How readers treat their input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Count malformed lines and go on, instead of stopping at the first.
    pub skip_bad_lines: bool,
    /// Reject rows without a label (training and evaluation); scoring accepts them.
    pub require_labels: bool,
}

/// A malformed line or row: which file, where in it, which column, what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    /// The file.
    pub file: PathBuf,
    /// Where in the file.
    pub place: Place,
    /// The column, 1-based, with its name; `None` when the line as a whole is wrong.
    pub column: Option<(usize, String)>,
    /// What was wrong.
    pub problem: String,
}

/// Where a malformed row is in its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// A text file's line, from 1 (a header is line 1); for a CSV record that spans lines, the
    /// line where it starts.
    Line(u64),
    /// A Parquet row: row group and row within it, both from 0 (as Parquet tools count them).
    Row {
        /// Row group.
        group: usize,
        /// Row within the row group.
        row: u64,
    },
}

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.place {
            Place::Line(line) => write!(f, "{}: line {line}: ", self.file.display())?,
            Place::Row { group, row } => {
                write!(f, "{}: row group {group}, row {row}: ", self.file.display())?
            }
        }
        if let Some((index, name)) = &self.column {
            write!(f, "column {index} ({name}): ")?;
        }
        f.write_str(&self.problem)
    }
}

impl std::error::Error for BadLine {}

/// A problem with one field or a whole line, before the file and line are attached.
pub(crate) struct FieldError {
    /// 0-based field index, or `None` for the whole line.
    pub field: Option<usize>,
    /// What was wrong.
    pub problem: String,
}

/// A stream of rows.
pub trait Source: Send {
    /// Reads the next row onto the end of `batch`; `Ok(false)` at the end of the input.
    /// Malformed lines are errors (a [`BadLine`]) unless skipping was asked for.
    fn next_row(&mut self, batch: &mut Batch) -> Result<bool>;
    /// Passes over `n` rows without parsing them.
    fn skip_rows(&mut self, n: u64) -> Result<()>;
    /// Number of the next row (rows read, skipped or malformed so far).
    fn position(&self) -> u64;
    /// Malformed lines skipped so far.
    fn bad_lines(&self) -> u64;
}

/// Shortens a field for an error message.
pub(crate) fn shown(token: &[u8]) -> String {
    let text = String::from_utf8_lossy(token);
    if text.chars().count() > 24 {
        format!("`{}...`", text.chars().take(24).collect::<String>())
    } else {
        format!("`{text}`")
    }
}

/// Parses a 0/1 label.
pub(crate) fn parse_label(token: &[u8]) -> std::result::Result<f32, String> {
    match token {
        b"0" => Ok(0.0),
        b"1" => Ok(1.0),
        _ => Err(format!("label {} is not 0 or 1", shown(token))),
    }
}

/// What the reader thread sends.
enum Message {
    Batch(Batch),
    Failed(anyhow::Error),
    Done { bad_lines: u64 },
}

/// Batches parsed by a reader thread, ahead of the consumer (a bounded channel of ready batches).
pub struct BatchStream {
    receiver: Receiver<Message>,
    bad_lines: u64,
    finished: bool,
}

/// Batches parsed ahead of the consumer.
const BATCHES_AHEAD: usize = 8;

impl BatchStream {
    /// Opens `spec` and starts a thread that reads rows `rows.start..rows.end` (or to the end of
    /// the input) in batches of `batch_size`; the last batch may be shorter.
    pub fn spawn(
        spec: &DataSpec,
        options: ReadOptions,
        rows: Range<u64>,
        batch_size: usize,
    ) -> Result<BatchStream> {
        let mut source = spec.open(options)?;
        let (sender, receiver) = sync_channel(BATCHES_AHEAD);
        thread::Builder::new()
            .name("mlet-reader".into())
            .spawn(move || {
                let result = (|| -> Result<()> {
                    source.skip_rows(rows.start)?;
                    loop {
                        let mut batch = Batch::default();
                        while batch.len() < batch_size && source.position() < rows.end {
                            if !source.next_row(&mut batch)? {
                                break;
                            }
                        }
                        batch.next_row = source.position();
                        if batch.is_empty() {
                            return Ok(());
                        }
                        if sender.send(Message::Batch(batch)).is_err() {
                            return Ok(()); // the consumer stopped listening
                        }
                    }
                })();
                let last = match result {
                    Ok(()) => Message::Done {
                        bad_lines: source.bad_lines(),
                    },
                    Err(e) => Message::Failed(e),
                };
                let _ = sender.send(last);
            })
            .context("cannot start the reader thread")?;
        Ok(BatchStream {
            receiver,
            bad_lines: 0,
            finished: false,
        })
    }

    /// The next batch, `None` after the last one, or the reader's error.
    pub fn next_batch(&mut self) -> Result<Option<Batch>> {
        if self.finished {
            return Ok(None);
        }
        match self.receiver.recv() {
            Ok(Message::Batch(batch)) => Ok(Some(batch)),
            Ok(Message::Done { bad_lines }) => {
                self.bad_lines = bad_lines;
                self.finished = true;
                Ok(None)
            }
            Ok(Message::Failed(e)) => {
                self.finished = true;
                Err(e)
            }
            Err(_) => bail!("the reader thread stopped unexpectedly"),
        }
    }

    /// Malformed lines the reader skipped (known once the stream has ended).
    pub fn bad_lines(&self) -> u64 {
        self.bad_lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_print() {
        assert_eq!(
            "criteo:a/b.tsv".parse::<DataSpec>().unwrap(),
            DataSpec::Criteo("a/b.tsv".into())
        );
        assert_eq!(
            "synthetic:100:7".parse::<DataSpec>().unwrap(),
            DataSpec::Synthetic {
                rows: 100,
                seed: 7,
                rank: DEFAULT_SYNTHETIC_RANK,
                vocab: Vocab::Default,
            }
        );
        for text in [
            "synthetic:5:1:3",
            "synthetic:5:1:3:criteo",
            "synthetic:5:1:3:criteo:0.25",
        ] {
            assert_eq!(text.parse::<DataSpec>().unwrap().to_string(), text);
        }
        for bad in [
            "criteo:",
            "foo:x",
            "synthetic:x",
            "synthetic:1:2:0",
            "synthetic:1:2:8:avazu",
            "synthetic:1:2:8:criteo:0",
            "synthetic:1:2:8:criteo:2",
            "synthetic:1:2:8:criteo:1:9",
            "nocolon",
        ] {
            assert!(bad.parse::<DataSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn stream_reads_a_range_in_batches() {
        let spec: DataSpec = "synthetic:50:3".parse().unwrap();
        let mut all = spec.open(ReadOptions::default()).unwrap();
        let mut whole = Batch::default();
        while all.next_row(&mut whole).unwrap() {}
        assert_eq!(whole.len(), 50);
        let mut stream = BatchStream::spawn(&spec, ReadOptions::default(), 10..45, 16).unwrap();
        let mut sizes = Vec::new();
        let mut labels = Vec::new();
        while let Some(b) = stream.next_batch().unwrap() {
            sizes.push((b.len(), b.next_row));
            labels.extend(b.labels);
        }
        assert_eq!(sizes, vec![(16, 26), (16, 42), (3, 45)]);
        assert_eq!(labels, whole.labels[10..45]);
    }
}
