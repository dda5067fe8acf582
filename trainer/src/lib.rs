//! # mlet-trainer
//!
//! Trains DLRM click-through-rate models with plain or MLET embedding tables on candle (CPU, or
//! CUDA with the `cuda` feature), evaluates them, collapses MLET's two layers into one table,
//! quantizes, and exports MLET model files (format v1, see `mlet_formats`). The `mlet` command
//! (src/main.rs) drives it.
#![warn(missing_docs)]

pub mod checkpoint;
pub mod cpu;
pub mod cpu_step;
pub mod data;
pub mod demo;
pub mod export;
pub mod footprint;
pub mod index_add;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod output;
pub mod rng;
pub mod score;
pub mod step;
pub mod train;
