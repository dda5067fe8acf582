//! # MLET model file format v1
//!
//! One job: the contract between the trainer that writes a DLRM model and the runtime that
//! scores it. A v1 file is a [safetensors] file, little-endian:
//!
//! ```text
//! [u64 header length N][N bytes of JSON header, space-padded][data section]
//! ```
//!
//! The header's `__metadata__` holds string values: `format` = `mlet-dlrm`, `format_version` = `1`,
//! `num_dense` (D >= 1), `table_rows` (`n_0,n_1,..`, each >= 1), `dim` (d >= 1), `bottom_mlp`
//! (`D-..-d`), `top_mlp` (output widths, `..-1`; the input width d + T(T+1)/2 is implied),
//! `interaction` = `dot`, `dense_transform` = `log1p` | `identity`, `hashing` = `mod`,
//! `embedding_dtype` = `f32` | `f16` | `int8`. Other keys are free information.
//!
//! Tensors, row-major: `emb.{t}.weight` [n_t, d] (F32, F16, or U8 codes for int8); for int8 only,
//! `emb.{t}.scale` and `emb.{t}.offset`, `[n_t]` or `[1]`, F16 or F32, value = scale * q + offset;
//! `bottom.{l}.weight` `[out, in]`, `bottom.{l}.bias` `[out]`, and the same for `top.{l}`, F32 or F16.
//!
//! ## Safety rules the reader enforces
//! - N is a multiple of 8, at most [`MAX_HEADER_LEN`], and inside the file.
//! - The header is UTF-8 JSON of exactly the safetensors shape; tensor infos have exactly
//!   `dtype`, `shape`, `data_offsets`.
//! - Every tensor the metadata implies is present once, with its dtype and shape; no other tensor.
//! - Data offsets are in bounds and match shape x dtype size; F32 data starts at a multiple of 4
//!   and F16 at a multiple of 2 (relative to the data section, which starts at a multiple of 8);
//!   tensors neither overlap nor leave holes.
//! - MLP widths chain; no table has zero rows; at most [`MAX_TABLES`] tables and [`MAX_LAYERS`]
//!   layers per MLP (limits of this allocation-free reader, not of the format).
//!
//! A file that breaks a rule gets an [`Error`] naming the [`Rule`] and the tensor, metadata key or
//! header byte; nothing panics. [`ModelFile::parse_rule`] gives only the rule, for a device that
//! reports [`Rule::code`] and has no flash to spare for names. The reader never assumes the buffer itself is aligned: tensors are
//! handed out as byte slices, read with `from_le_bytes`.
//!
//! Strings are compared as written: v1 names and values need no JSON escapes, so a name spelled
//! with escapes is not a v1 name.
//!
//! [safetensors]: https://github.com/huggingface/safetensors
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

mod config;
mod error;
pub mod ids;
mod json;
mod model_file;
#[cfg(feature = "std")]
pub mod stream;
mod utf8;
#[cfg(feature = "std")]
pub mod writer;

pub use config::{Config, DenseTransform, EmbeddingDtype, Widths};
pub use error::{Error, Name, Rule, Subject};
pub use model_file::{Dtype, LayerTensors, ModelFile, TableTensors, Tensor};

/// Most embedding tables this reader accepts.
pub const MAX_TABLES: usize = 64;
/// Most layers per MLP this reader accepts.
pub const MAX_LAYERS: usize = 8;
/// Longest JSON header this reader accepts, in bytes.
pub const MAX_HEADER_LEN: usize = 1 << 20;
