//! CPU tensors as plain slices: the hand-written step reads parameters through [`read_f32`] and
//! both steps' optimizer updates them in place through [`write_f32`] (candle's `inplace_op1`),
//! so parameters stay candle tensors (checkpoints, evaluation and export read them as before).

use std::cell::Cell;

use anyhow::{bail, Context, Result};
use candle_core::{CpuStorage, InplaceOp1, Layout, Storage, Tensor};

/// Calls `f` with the values of `t`, which must be a contiguous f32 tensor on the CPU.
pub fn read_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        bail!("expected a tensor on the CPU");
    };
    let (start, end) = layout
        .contiguous_offsets()
        .context("expected a contiguous tensor")?;
    Ok(f(&cpu.as_slice::<f32>()?[start..end]))
}

/// Calls `f` with the values of `t` to change them in place; `t` must be a contiguous f32
/// tensor on the CPU. Every tensor sharing `t`'s storage sees the change.
pub fn write_f32<R>(t: &Tensor, f: impl FnOnce(&mut [f32]) -> R) -> Result<R> {
    let mut result = None;
    let op = WriteF32(Cell::new(Some(|values: &mut [f32]| {
        result = Some(f(values))
    })));
    t.inplace_op1(&op)?;
    drop(op);
    result.context("the in-place write did not run")
}

/// The in-place op behind [`write_f32`]: runs its closure once on the tensor's values.
struct WriteF32<F>(Cell<Option<F>>);

impl<F: FnOnce(&mut [f32])> InplaceOp1 for WriteF32<F> {
    fn name(&self) -> &'static str {
        "write-f32"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let CpuStorage::F32(values) = storage else {
            candle_core::bail!("write-f32: expected an f32 tensor");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("write-f32: expected a contiguous tensor");
        };
        if let Some(f) = self.0.take() {
            f(&mut values[start..end]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn writes_land_in_every_clone() {
        let t = Tensor::new(&[1f32, 2.0, 3.0], &Device::Cpu).unwrap();
        let alias = t.clone();
        let sum = write_f32(&t, |v| {
            v[1] = 5.0;
            v.iter().sum::<f32>()
        })
        .unwrap();
        assert_eq!(sum, 9.0);
        assert_eq!(alias.to_vec1::<f32>().unwrap(), vec![1.0, 5.0, 3.0]);
        assert_eq!(
            read_f32(&alias, |v| v.to_vec()).unwrap(),
            vec![1.0, 5.0, 3.0]
        );
        // A strided view is refused rather than misread.
        let m = Tensor::new(&[[1f32, 2.0], [3.0, 4.0]], &Device::Cpu).unwrap();
        assert!(read_f32(&m.t().unwrap(), |_| ()).is_err());
    }
}
