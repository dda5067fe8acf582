//! What a training run holds in memory: estimated from the model's shape before anything is
//! allocated, checked against what the machine has (a clear error instead of the kernel's OOM
//! kill hours later), and the peak the process reached, read back for reports.
//!
//! The state is the tables (rows x width f32), the optimizer's (row-wise Adagrad: one f32 per
//! row, and one per MLP weight), the MLPs and MLET projections, a copy of all of it when the best
//! validated weights are kept, and bounded buffers: the step's activations and gradients for one
//! batch, the batches the reader thread parses ahead, and validation's 4096-row batches.
//! Peak and available memory come from `/proc` (Linux); elsewhere they are unknown and not
//! checked.

use std::fmt;

use crate::model::ModelSpec;
use crate::optim::OptimizerKind;

/// Bytes a run will hold, by part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Estimate {
    /// Embedding tables (MLET: the n x k tables).
    pub tables: u64,
    /// Optimizer state.
    pub optimizer: u64,
    /// MLP weights and biases, MLET projections, and their gradients.
    pub dense: u64,
    /// The best validated weights kept aside (`--eval-every`).
    pub best: u64,
    /// Step, reader and validation buffers.
    pub buffers: u64,
}

/// Batches the reader thread parses ahead of the step (`data::BatchStream`), plus the one in
/// use and the one being filled.
const READER_BATCHES: u64 = 10;
/// Rows per validation batch (`train::predict_all`).
const VALIDATION_ROWS: u64 = 4096;

impl Estimate {
    /// The estimate for a model of `spec` trained with `optimizer` in batches of `batch`,
    /// keeping a copy of the best weights when `keeps_best`.
    pub fn of(
        spec: &ModelSpec,
        optimizer: OptimizerKind,
        batch: usize,
        keeps_best: bool,
    ) -> Estimate {
        const F32: u64 = 4;
        let rows: u64 = spec.table_rows.iter().map(|&n| n as u64).sum();
        let width = spec.table_width() as u64;
        let tables = rows * width * F32;
        let layers = |widths: &[usize]| -> u64 {
            widths
                .windows(2)
                .map(|w| (w[0] as u64 + 1) * w[1] as u64)
                .sum()
        };
        let t = spec.table_rows.len() as u64;
        let (k, d) = (spec.mlet_k as u64, spec.dim as u64);
        let dense_params = layers(&spec.bottom_widths()) + layers(&spec.top_widths()) + t * k * d;
        let optimizer = match optimizer {
            OptimizerKind::Sgd => 0,
            OptimizerKind::Adagrad => (rows + dense_params) * F32,
        };
        let activations = |b: u64| -> u64 {
            let widths: u64 = spec
                .bottom_widths()
                .iter()
                .chain(&spec.top_widths())
                .map(|&w| w as u64)
                .sum();
            // Activations and their gradients, the interaction's vectors and their gradients,
            // and each table's gathered rows and embeddings.
            b * (2 * widths + 2 * (t + 1) * d + t * (width + 2 * d)) * F32
        };
        let b = batch as u64;
        let row_bytes = (spec.num_dense as u64 + t + 1) * F32;
        let buffers = activations(b).max(activations(VALIDATION_ROWS))
            + READER_BATCHES * b.max(VALIDATION_ROWS) * row_bytes;
        let dense = 2 * dense_params * F32;
        let best = if keeps_best { tables + dense / 2 } else { 0 };
        Estimate {
            tables,
            optimizer,
            dense,
            best,
            buffers,
        }
    }

    /// Everything together.
    pub fn total(&self) -> u64 {
        self.tables + self.optimizer + self.dense + self.best + self.buffers
    }
}

impl fmt::Display for Estimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: tables {}, optimizer state {}, MLPs and projections {}",
            bytes(self.total()),
            bytes(self.tables),
            bytes(self.optimizer),
            bytes(self.dense)
        )?;
        if self.best > 0 {
            write!(f, ", best-weights copy {}", bytes(self.best))?;
        }
        write!(f, ", buffers {}", bytes(self.buffers))
    }
}

/// `n` bytes as `12 B`, `3.4 MB`, `8.65 GB`.
pub fn bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.2} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} kB", n / 1e3)
    } else {
        format!("{n} B")
    }
}

/// Memory the machine can still give without swapping (`MemAvailable`), in bytes.
pub fn available() -> Option<u64> {
    kilobytes("/proc/meminfo", "MemAvailable:")
}

/// The most resident memory this process has had so far (`VmHWM`), in bytes.
pub fn peak_rss() -> Option<u64> {
    kilobytes("/proc/self/status", "VmHWM:")
}

/// This process's resident memory now (`VmRSS`), in bytes.
pub fn rss() -> Option<u64> {
    kilobytes("/proc/self/status", "VmRSS:")
}

/// The `key   N kB` line of a `/proc` file, in bytes.
fn kilobytes(file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line[key.len()..]
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(mlet_k: usize) -> ModelSpec {
        ModelSpec {
            num_dense: 13,
            table_rows: vec![1000; 26],
            dim: 16,
            mlet_k,
            bottom_hidden: vec![512, 256, 64],
            top_hidden: vec![512, 256],
            mlet_init_scale: 1.0,
        }
    }

    #[test]
    fn the_estimate_follows_the_model() {
        let plain = Estimate::of(&spec(0), OptimizerKind::Sgd, 128, false);
        assert_eq!(plain.tables, 26 * 1000 * 16 * 4);
        assert_eq!(plain.optimizer, 0);
        assert_eq!(plain.best, 0);
        // The paper's MLPs: 13-512-256-64-16 and 367-512-256-1, weights and biases, twice
        // (values and gradients).
        let mlp = 14 * 512 + 513 * 256 + 257 * 64 + 65 * 16 + 368 * 512 + 513 * 256 + 257;
        assert_eq!(plain.dense, 2 * 4 * mlp);
        let mlet = Estimate::of(&spec(64), OptimizerKind::Adagrad, 128, true);
        assert_eq!(mlet.tables, 26 * 1000 * 64 * 4);
        assert_eq!(mlet.optimizer, (26 * 1000 + mlp + 26 * 64 * 16) * 4);
        assert_eq!(mlet.best, mlet.tables + mlet.dense / 2);
        assert!(mlet.total() > plain.total());
        assert_eq!(bytes(8_650_000_000), "8.65 GB");
    }

    #[test]
    fn proc_reports_this_process() {
        if std::path::Path::new("/proc/self/status").exists() {
            let (rss, peak) = (rss().unwrap(), peak_rss().unwrap());
            assert!(rss > 0 && peak >= rss, "rss {rss}, peak {peak}");
            assert!(available().unwrap() > 0);
        }
    }
}
