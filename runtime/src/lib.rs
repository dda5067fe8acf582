//! # mlet-runtime
//!
//! Scores a DLRM click-through-rate model stored as an MLET model file (format v1 or v2, see
//! [`mlet_formats`], whose crate documentation is the format's contract) in place: from RAM or
//! memory-mapped flash, with a caller-provided f32 scratch buffer, no heap, no `std` and no
//! panics. On x86-64, with the `dispatch` feature (on by default), the MLP layers run in
//! AVX-512 or AVX2 kernels picked at run time when the CPU and the OS support them (through
//! `pulp`, which then needs `std` on x86-64; `default-features = false` for a `no_std` x86-64
//! target), with the same bits as every other build.
//!
//! ```no_run
//! # fn demo(file: &[u8]) -> Result<(), mlet_runtime::Error> {
//! let model = mlet_runtime::Model::parse(file)?;
//! let mut scratch = [0.0f32; 2048];
//! let dense = [0.0f32; 13];
//! let ids = [0u32; 26];
//! let probability = model.score(&dense, &ids, &mut scratch[..model.scratch_len()])?;
//! # Ok(()) }
//! ```
//!
//! The computation (DESIGN.md): dense -> transform -> bottom MLP (ReLU after every layer) = z_0;
//! z_{t+1} = table t's row `raw_t mod n_t`; top input = [z_0, z_i . z_j for i in 1..=T, j in 0..i];
//! top MLP (ReLU after all but the last layer); probability = sigmoid. Transcendentals come from
//! `libm`, so every target computes the same bits. F32/F16 layers sum in one fixed order;
//! int8 layers (format v2) sum exact integers, in any order and with any integer instructions
//! (on x86-64 AMX-INT8 tiles for groups of 64 examples on Linux, AVX-512 VNNI `vpdpbusd`,
//! AVX-512 BW or AVX2 `vpmaddwd` picked at run time, SSE2 `pmaddwd` as the baseline; plain loops
//! elsewhere, which the Cortex-M4 runs as `SMLABB`).
//!
//! `unsafe`: only for integer instructions that Rust has no safe call for, each behind run-time
//! detection, with why it is sound written beside it: AVX-512 VNNI's `vpdpbusd` (one call,
//! `kernels/avx_int8.rs`), and the AMX tile instructions with the Linux system call that grants
//! the tile registers (inline assembly, `kernels/amx_int8.rs`). Each was kept for a measured
//! gain on the paper's Criteo configuration at batch 256 (`benches/results/score-int8.txt`).
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod kernels;

use core::fmt;
use core::ops::Range;

use mlet_formats::ids::row_of;
pub use mlet_formats::{Config, Error as FormatError, ModelFile, Rule};
use mlet_formats::{DenseTransform, LayerTensors, MlpDtype, Widths};

/// Why a model could not be parsed or an input could not be scored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The model file breaks a rule of the format.
    Format(FormatError),
    /// `dense` does not hold `num_dense` values per row.
    DenseLen {
        /// Values the model needs.
        expected: usize,
        /// Values given.
        got: usize,
    },
    /// `ids` does not hold one id per table per row.
    IdsLen {
        /// Ids the model needs.
        expected: usize,
        /// Ids given.
        got: usize,
    },
    /// The scratch buffer is shorter than [`Model::scratch_len`].
    ScratchTooSmall {
        /// f32 values needed.
        needed: usize,
        /// f32 values given.
        got: usize,
    },
    /// A dense input is NaN or infinite.
    NonFiniteDense {
        /// Position of the value in `dense`.
        index: usize,
    },
    /// The model's output is NaN (its weights hold NaN or overflow on this input).
    NonFiniteScore,
}

impl Error {
    /// A number for the error, for devices that print no messages: the broken format rule's
    /// [`Rule::code`](mlet_formats::Rule::code) (1-99), or 101 `DenseLen`, 102 `IdsLen`,
    /// 103 `ScratchTooSmall`, 104 `NonFiniteDense`, 105 `NonFiniteScore`.
    pub fn code(&self) -> u16 {
        match self {
            Error::Format(e) => e.rule.code() as u16,
            Error::DenseLen { .. } => 101,
            Error::IdsLen { .. } => 102,
            Error::ScratchTooSmall { .. } => 103,
            Error::NonFiniteDense { .. } => 104,
            Error::NonFiniteScore => 105,
        }
    }
}

impl From<FormatError> for Error {
    fn from(e: FormatError) -> Self {
        Error::Format(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Format(e) => e.fmt(f),
            Error::DenseLen { expected, got } => {
                write!(f, "expected {expected} dense values, got {got}")
            }
            Error::IdsLen { expected, got } => write!(f, "expected {expected} ids, got {got}"),
            Error::ScratchTooSmall { needed, got } => {
                write!(
                    f,
                    "scratch holds {got} f32 values, the model needs {needed}"
                )
            }
            Error::NonFiniteDense { index } => write!(f, "dense value {index} is not finite"),
            Error::NonFiniteScore => f.write_str("the model's output is not a number"),
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Error::Format(e) => Some(e),
            _ => None,
        }
    }
}

/// Most examples that go through the layers together in [`Model::score_batch`]: scratch beyond
/// `MAX_TILE * scratch_len()` values is not used. More examples per pass read each weight fewer
/// times; on a device, scratch for one example is enough.
pub const MAX_TILE: usize = 64;

/// On x86-64, models with more data bytes than this (the L2 cache of a server core) have the
/// table rows of each tile prefetched before the bottom MLP, so that the cache misses of the row
/// reads overlap with it. Smaller models mostly stay in the caches between calls, where the
/// second lookup of every table costs more than it saves.
#[cfg(target_arch = "x86_64")]
const PREFETCH_ABOVE_BYTES: usize = 1 << 20;

/// How many examples ahead of its read a row is asked of the caches again.
#[cfg(target_arch = "x86_64")]
const ROWS_AHEAD: usize = 8;

/// A validated model, borrowing the file's bytes.
#[derive(Clone, Copy, Debug)]
pub struct Model<'a> {
    file: ModelFile<'a>,
}

impl<'a> Model<'a> {
    /// Validates a model file (once) and borrows it; no byte is copied.
    pub fn parse(bytes: &'a [u8]) -> Result<Model<'a>, Error> {
        ModelFile::parse(bytes)
            .map(|file| Model { file })
            .map_err(Error::Format)
    }

    /// [`Model::parse`] with the failure as only the rule broken: what a device that reports
    /// [`Rule::code`] needs, without the code that builds names for errors, which would take
    /// flash on a device.
    pub fn parse_rule(bytes: &'a [u8]) -> Result<Model<'a>, Rule> {
        ModelFile::parse_rule(bytes).map(|file| Model { file })
    }

    /// The validated file: configuration, tensors and metadata.
    pub fn file(&self) -> &ModelFile<'a> {
        &self.file
    }

    /// The model configuration.
    pub fn config(&self) -> &Config {
        self.file.config()
    }

    /// Number of f32 values of scratch that [`Model::score`] needs: the T+1 embedding vectors,
    /// plus the largest input-plus-output pair of any MLP layer, plus, with int8 layers, room
    /// for the codes of the widest layer input (2 bytes an input, in whole chunks of 32).
    pub fn scratch_len(&self) -> usize {
        let config = self.config();
        let mut work = 0;
        for widths in [config.bottom(), config.top()] {
            for l in 0..widths.layers() {
                let (input, output) = widths.layer(l);
                work = work.max(input + output);
            }
        }
        (config.num_tables() + 1) * config.dim() + work + self.codes_len()
    }

    /// f32 values at the end of each example's scratch that hold an int8 layer's input codes
    /// (0 for F32/F16 layers).
    fn codes_len(&self) -> usize {
        let config = self.config();
        if config.mlp_dtype() != MlpDtype::Int8 {
            return 0;
        }
        let mut widest = 0;
        for widths in [config.bottom(), config.top()] {
            for l in 0..widths.layers() {
                widest = widest.max(widths.layer(l).0);
            }
        }
        widest.next_multiple_of(kernels::CODES_CHUNK) / 2
    }

    /// Scores one example: `dense` holds `num_dense` values, `ids` one raw id per table.
    /// Returns the click probability.
    pub fn score(&self, dense: &[f32], ids: &[u32], scratch: &mut [f32]) -> Result<f32, Error> {
        let mut probability = [0.0f32];
        self.score_batch(dense, ids, &mut probability, scratch)?;
        Ok(probability[0])
    }

    /// Scores `out.len()` examples: `dense` holds `num_dense` values per example and `ids`
    /// `num_tables` ids per example, row after row. With a scratch of `k * scratch_len()` values,
    /// up to `k` examples (at most [`MAX_TILE`]) go through each layer together, so that each
    /// weight is read once for all of them; every example computes exactly the bits
    /// [`Model::score`] gives it.
    pub fn score_batch(
        &self,
        dense: &[f32],
        ids: &[u32],
        out: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        let config = self.config();
        let (d, t) = (config.num_dense(), config.num_tables());
        let rows = out.len();
        check_len(dense.len(), rows * d, |expected, got| Error::DenseLen {
            expected,
            got,
        })?;
        check_len(ids.len(), rows * t, |expected, got| Error::IdsLen {
            expected,
            got,
        })?;
        let (per, got) = (self.scratch_len(), scratch.len());
        if got < per {
            return Err(Error::ScratchTooSmall { needed: per, got });
        }
        if let Some(index) = dense.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFiniteDense { index });
        }
        let tile = (got / per).min(MAX_TILE);
        let mut start = 0;
        while start < rows {
            let end = rows.min(start + tile);
            let (dense, ids) = (&dense[start * d..end * d], &ids[start * t..end * t]);
            let out = &mut out[start..end];
            self.logits(dense, ids, &mut scratch[..out.len() * per], per, out);
            for p in out.iter_mut() {
                *p = 1.0 / (1.0 + libm::expf(-*p));
                if p.is_nan() {
                    return Err(Error::NonFiniteScore);
                }
            }
            start = end;
        }
        Ok(())
    }

    /// The top MLP's outputs before the sigmoid, one per example; `scratch` holds
    /// `per = scratch_len()` values per example. Lengths are checked by the caller.
    fn logits(&self, dense: &[f32], ids: &[u32], scratch: &mut [f32], per: usize, out: &mut [f32]) {
        let config = self.config();
        let (dim, tables) = (config.dim(), config.num_tables());
        let z_len = (tables + 1) * dim;

        // On a server, every row of the tile is asked of the caches first when the tables are
        // larger than the caches: the misses then overlap with the bottom MLP instead of
        // stalling the row reads.
        #[cfg(target_arch = "x86_64")]
        if self.file.data_len() > PREFETCH_ABOVE_BYTES {
            for (t, &rows) in config.table_rows().iter().enumerate() {
                let table = self.file.table(t);
                for ids in ids.chunks_exact(tables) {
                    let row = row_of(ids[t], rows) as usize;
                    kernels::prefetch_row(&table, config.embedding_dtype(), row, dim);
                }
            }
        }
        let inputs = dense.chunks_exact(config.num_dense());
        for (example, dense) in scratch.chunks_exact_mut(per).zip(inputs) {
            for (x, &raw) in example[z_len..].iter_mut().zip(dense) {
                *x = match config.dense_transform() {
                    DenseTransform::Log1p => libm::log1pf(raw.max(0.0)),
                    DenseTransform::Identity => raw,
                };
            }
        }
        let z0 = self.mlp(config.bottom(), ModelFile::bottom_layer, scratch, per, true);

        // Table by table over the tile: the row reads of different examples do not wait on each
        // other, so their cache misses overlap. On a server each row is asked for again a few
        // examples ahead of its read: many of the tile-wide requests above have left the
        // caches again by the time the bottom MLP is done.
        for (t, &rows) in config.table_rows().iter().enumerate() {
            let table = self.file.table(t);
            let examples = scratch.chunks_exact_mut(per).zip(ids.chunks_exact(tables));
            #[cfg(target_arch = "x86_64")]
            let mut ahead = ids.chunks_exact(tables).skip(ROWS_AHEAD);
            for (example, ids) in examples {
                #[cfg(target_arch = "x86_64")]
                if let Some(ahead) = ahead.next() {
                    if self.file.data_len() > PREFETCH_ABOVE_BYTES {
                        let row = row_of(ahead[t], rows) as usize;
                        kernels::prefetch_row(&table, config.embedding_dtype(), row, dim);
                    }
                }
                let row_out = &mut example[(t + 1) * dim..(t + 2) * dim];
                let row = row_of(ids[t], rows) as usize;
                kernels::read_row(&table, config.embedding_dtype(), row, row_out);
            }
        }
        let top = z_len..z_len + config.top_input_width();
        let at = kernels::TopInput {
            per,
            z_len,
            dim,
            z0,
            top,
        };
        kernels::top_inputs(scratch, &at);
        let logit = self.mlp(config.top(), ModelFile::top_layer, scratch, per, false);
        for (example, o) in scratch.chunks_exact(per).zip(out) {
            *o = example[logit.start];
        }
    }

    /// Runs an MLP on every example of `scratch`; each example's input sits at the front of its
    /// work area (after the embeddings). Returns where the outputs are. Layers alternate: an input
    /// at the front writes its output at the back, and the reverse, so the work area needs only
    /// the largest input-plus-output of any layer. int8 layers keep their input's codes past
    /// the work area.
    fn mlp(
        &self,
        widths: &Widths,
        layer: fn(&ModelFile<'a>, usize) -> LayerTensors<'a>,
        scratch: &mut [f32],
        per: usize,
        relu_last: bool,
    ) -> Range<usize> {
        let front = (self.config().num_tables() + 1) * self.config().dim();
        let back = per - self.codes_len();
        let codes = back..per;
        let mut at_front = true;
        let mut output = 0..0;
        for l in 0..widths.layers() {
            let (n_in, n_out) = widths.layer(l);
            let relu = relu_last || l + 1 < widths.layers();
            let input = if at_front {
                front..front + n_in
            } else {
                back - n_in..back
            };
            output = if at_front {
                back - n_out..back
            } else {
                front..front + n_out
            };
            let io = kernels::Io {
                input,
                output: output.clone(),
                codes: codes.clone(),
            };
            kernels::linear(&layer(&self.file, l), scratch, per, &io, relu);
            at_front = !at_front;
        }
        output
    }
}

fn check_len(
    got: usize,
    expected: usize,
    err: impl Fn(usize, usize) -> Error,
) -> Result<(), Error> {
    if got == expected {
        Ok(())
    } else {
        Err(err(expected, got))
    }
}
