//! # mlet-trainer
//!
//! Trains DLRM click-through-rate models with plain or MLET embedding tables on candle (CPU, or
//! CUDA with the `cuda` feature), evaluates them, collapses MLET's two layers into one table,
//! quantizes, and exports model files that `mlet-runtime` scores (the format is
//! `mlet_formats`'). The `mlet` command (src/main.rs, src/cli/) drives it.
//!
//! The modules, in the order data flows through them:
//!
//! | module | what it holds |
//! |---|---|
//! | [`data`] | data specs, streaming readers (Criteo, Avazu, CSV/TSV/Parquet by column name, synthetic), the reader thread |
//! | [`model`] | the DLRM on candle tensors: plain or MLET tables, forward pass, collapse |
//! | [`step`] | one training step, hand-written for the CPU or by candle's autograd |
//! | [`optim`] | SGD and row-wise Adagrad, updating the touched table rows in place |
//! | [`train`] | the run: splits, table sizes, epochs, validation, best weights, resume |
//! | [`memory`] | what a run holds, estimated and checked before it starts; the peak it reached |
//! | [`checkpoint`] | the whole training state in one file |
//! | [`export`] | collapse, quantize and write a model file |
//! | [`quantize`] | re-store a model file: int8 layers calibrated on data, F16 layers, int8/int4 tables |
//! | [`score`] | scoring data through an exported file with `mlet-runtime` |
//! | [`metrics`] | AUC, logloss, normalized entropy, accuracy |
//! | [`footprint`] | the accuracy-against-bytes benchmark |
//! | [`shrink`] | the smallest model within an AUC loss: a fair search over every knob |
//! | [`plot`] | accuracy against bytes as an SVG, with the Pareto front |
//! | [`demo`] | the README's main job |
//! | [`output`] | output paths checked up front, atomic files, standard output |
//! | [`rng`] | the seeded generator every random number comes from |
#![warn(missing_docs)]

pub mod checkpoint;
pub mod data;
pub mod demo;
pub mod export;
pub mod footprint;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod output;
pub mod plot;
pub mod quantize;
pub mod rng;
pub mod score;
pub mod shrink;
pub mod step;
pub mod train;
