//! The training step: one update of the model on one batch, with sparse embedding updates, in
//! two interchangeable implementations of the same arithmetic.
//!
//! - [`cpu::CpuStep`]: written out by hand for the CPU (what `mlet train` uses there): the
//!   forward and backward passes of the fixed DLRM layers on reused buffers.
//! - [`autograd::AutogradStep`]: candle's autograd, on any device (the CUDA path), and the oracle
//!   the hand-written step is tested against.
//!
//! What both share: [`dedup`] (a batch's distinct rows, so that each touched row gets one summed
//! gradient and one update) and [`index_add`] (in-place row sums, with a CUDA kernel); the CPU
//! step's matrix products are in [`matmul`], and [`slices`] reads and writes CPU tensors as
//! slices in place. Neither step ever builds a gradient the size of a table.

pub mod autograd;
pub mod cpu;
pub mod dedup;
pub mod index_add;
pub mod matmul;
pub mod slices;

use anyhow::Result;
use candle_core::Tensor;

use crate::data::Batch;
use crate::model::Dlrm;
use crate::optim::Optimizer;

pub use autograd::AutogradStep;
pub use cpu::CpuStep;

/// The step a run uses: the hand-written one on the CPU, candle's autograd elsewhere (or on the
/// CPU when asked for).
pub enum Step {
    /// The hand-written CPU step.
    Cpu(Box<CpuStep>),
    /// Candle's autograd, on any device.
    Autograd(AutogradStep),
}

/// A step's mean loss: known on the host, or still on the device (reading it back waits for the
/// device, so the caller decides when).
pub enum Loss {
    /// Computed on the host.
    Host(f32),
    /// A scalar tensor on the model's device.
    Device(Tensor),
}

impl Step {
    /// The step for `model`: autograd when asked for or when the model is not on the CPU.
    pub fn new(model: &Dlrm, autograd: bool) -> Result<Step> {
        Ok(if model.device().is_cpu() && !autograd {
            Step::Cpu(Box::new(CpuStep::new(model)?))
        } else {
            Step::Autograd(AutogradStep::default())
        })
    }

    /// Updates `model` on `batch` and returns the batch's mean loss before the update.
    pub fn run(&mut self, model: &Dlrm, optimizer: &mut Optimizer, batch: &Batch) -> Result<Loss> {
        Ok(match self {
            Step::Cpu(cpu) => Loss::Host(cpu.step(model, optimizer, batch)?),
            Step::Autograd(autograd) => Loss::Device(autograd.step(model, optimizer, batch)?),
        })
    }
}
