//! # MLET model file format (v1 and v2)
//!
//! One job: the contract between the trainer that writes a DLRM model and the runtime that
//! scores it. This documentation is the one place the format's rules live. A file is a
//! [safetensors] file, little-endian:
//!
//! ```text
//! [u64 header length N][N bytes of JSON header, space-padded][data section]
//! ```
//!
//! ## Version 1
//!
//! The header's `__metadata__` holds string values: `format` = `mlet-dlrm`, `format_version` = `1`,
//! `num_dense` (D >= 1), `table_rows` (`n_0,n_1,..`, each >= 1), `dim` (d >= 1), `bottom_mlp`
//! (`D-..-d`), `top_mlp` (output widths, `..-1`; the input width d + T(T+1)/2 is implied),
//! `interaction` = `dot`, `dense_transform` = `log1p` | `identity`, `hashing` = `mod`,
//! `embedding_dtype` = `f32` | `f16` | `int8`. Other keys are free information, except
//! `mlp_dtype`, which v2 defines.
//!
//! Tensors, row-major: `emb.{t}.weight` `[n_t, d]` (F32, F16, or U8 codes for int8); for int8 only,
//! `emb.{t}.scale` and `emb.{t}.offset`, `[n_t]` or `[1]`, F16 or F32, value = scale * q + offset;
//! `bottom.{l}.weight` `[out, in]`, `bottom.{l}.bias` `[out]`, and the same for `top.{l}`, F32 or F16.
//!
//! ## Version 2: int4 tables and int8 layers
//!
//! A v2 reader (this one) reads every v1 file. `format_version` is `2` exactly when a file uses
//! one of the two features below, else `1`: a file that needs nothing of v2 stays readable by v1
//! readers ([`Rule::NeedlessVersion2`]). A version-1 file must not have the `mlp_dtype` key or
//! `int4` tables ([`Rule::V2FeatureInV1File`]): a v1 reader would take the key for free
//! information and score the file wrongly. Every v1 rule still holds.
//!
//! - `embedding_dtype` = `int4`: `emb.{t}.weight` is U8 `[n_t, ceil(d / 2)]`, two 4-bit codes q
//!   in 0..=15 a byte, element 2c in the low nibble and 2c + 1 in the high nibble. For an odd d
//!   the last high nibble is padding: written 0, never read (the reader does not scan table
//!   bytes). `emb.{t}.scale` / `.offset` exactly as for int8; value = scale * q + offset.
//! - `mlp_dtype` = `f32` (F32/F16 layers as in v1; also what an absent key means) or `int8`.
//!   Every layer L (`bottom.{l}`, `top.{l}`) of an int8 MLP has `L.weight` I8 `[out, in]`,
//!   `L.bias` F32 `[out]`, `L.acc_scale` F32 `[out]`, and `L.input_inv_scale` F32 and
//!   `L.input_zero` U8, each `[1]` (per tensor) or `[in]` (per input column; the two may
//!   differ). An int8 layer takes at most [`MAX_INT8_LAYER_INPUTS`] (65,536) inputs
//!   ([`Rule::Int8LayerTooWide`]).
//!
//! An int8 layer on a real input vector x (the transformed dense input, the previous layer's
//! output after its ReLU, or the top input `[z_0, dots]`) computes, for every input j and output i:
//!
//! 1. `v = x_j * input_inv_scale_j` (one f32 multiply); if v is NaN the score is an error (see
//!    below); `q_j = clamp(round_ties_even(v) + input_zero_j, 0, 255)`, computed exactly, i.e. on
//!    the real numbers: infinities and values beyond the range clamp to 0 or 255, and no value is
//!    ever converted to an integer before it is clamped (a conversion of an out-of-range float
//!    is not the same on every instruction set). Any exact method is the rule's: this runtime
//!    clamps v to [-512, 512] first (which changes no q), then rounds by adding and subtracting
//!    1.5 x 2^23 in f32, which `no_std` targets without a rounding instruction compute too.
//! 2. `acc_i = sum_j weight_ij * (q_j - input_zero_j)` in i32. Every product and every partial
//!    sum is exact (|weight| <= 128, |q - z| <= 255, at most 65,536 terms: |acc| <= 2,139,095,040
//!    < 2^31), so any order, any grouping and any integer SIMD give the same value; so does
//!    `sum_j weight_ij * q_j - sum_j weight_ij * input_zero_j`, or any rewriting that is exact in
//!    wrapping i32 arithmetic.
//! 3. `y_i = (acc_i as f32) * acc_scale_i + bias_i`: a conversion rounded to nearest-even, then
//!    two IEEE operations in that order, never fused; then ReLU as in v1.
//!
//! Weight codes are written in -127..=127 (symmetric per row); -128 is not rejected (the reader
//! does not scan weights) and computes exactly by the same bound. Per-column input scales are
//! folded into the weights by the writer (W'_ij = W_ij / input_inv_scale_j, before the per-row
//! quantization), so the arithmetic is the same for both shapes. Embedding lookups, the
//! interaction dots and the sigmoid stay in f32 as in v1. Every step is integer or a single
//! IEEE f32 operation, so every target computes the same bits by construction, whatever order
//! its kernels sum the integers in.
//!
//! A NaN reaching an int8 layer's input (from NaN or infinite values stored in the file: the
//! scorer rejects non-finite dense inputs) makes that layer's outputs NaN, so the score is an
//! error, as a NaN in an F32 layer makes it: it never becomes a code.
//!
//! Where an int8 layer's scales come from (calibration rows, percentiles, per-column or
//! per-tensor) is the writer's choice, recorded in free metadata keys.
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
//! reports [`Rule::code`] and has no flash to spare for names. The reader never assumes the buffer
//! itself is aligned: tensors are handed out as byte slices, read with `from_le_bytes`.
//!
//! Strings are compared as written: names and values need no JSON escapes, so a name spelled
//! with escapes is not a format name.
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

pub use config::{Config, DenseTransform, EmbeddingDtype, MlpDtype, Widths, MAX_INT8_LAYER_INPUTS};
pub use error::{Error, Name, Rule, Subject};
pub use model_file::{Dtype, Int8Tensors, LayerTensors, ModelFile, TableTensors, Tensor};

/// Most embedding tables this reader accepts.
pub const MAX_TABLES: usize = 64;
/// Most layers per MLP this reader accepts.
pub const MAX_LAYERS: usize = 8;
/// Longest JSON header this reader accepts, in bytes.
pub const MAX_HEADER_LEN: usize = 1 << 20;
