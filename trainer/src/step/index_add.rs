//! `index_add_rows`: `dst[ids[j], :] += src[j, :]` for every j, in place.
//!
//! The sparse step's scatters (summing the gradients of repeated rows, adding updates into the
//! tables) go through this op rather than candle's `index_add` / `scatter_add_set`, whose CUDA
//! kernels run one thread per column and loop over all the ids: 26 x 2048 of them per step at
//! batch 2048, which made those two kernels most of a step on an H100. Here:
//! - CUDA: one thread per element of `src` (`src/cuda/index_add_rows.cu`, compiled to PTX by
//!   the build script); rows that appear more than once are added with `atomicAdd`, so their
//!   order of addition, and the last bits of the sum, can differ from run to run.
//! - CPU: in order of j, the same order as candle's `index_add`.

use anyhow::{ensure, Result};
use candle_core::{CpuStorage, DType, InplaceOp3, Layout, Tensor};

/// Adds row j of `src` [J, w] into row `ids[j]` of `dst` [n, w], in place, for every j. All three
/// contiguous; `dst` and `src` f32, `ids` u32 `[J]`. On the CPU an id past `n` is an error; on CUDA
/// (where checking would wait for the device) such a row is skipped.
pub fn index_add_rows(dst: &Tensor, ids: &Tensor, src: &Tensor) -> Result<()> {
    let (_, width) = dst.dims2()?;
    let (j, src_width) = src.dims2()?;
    ensure!(
        ids.dims1()? == j && src_width == width,
        "index_add_rows: ids {:?} and rows {:?} do not fit a table {:?}",
        ids.dims(),
        src.dims(),
        dst.dims()
    );
    ensure!(
        (dst.dtype(), ids.dtype(), src.dtype()) == (DType::F32, DType::U32, DType::F32),
        "index_add_rows: expected f32 rows and u32 ids"
    );
    Ok(dst.inplace_op3(ids, src, &IndexAddRows)?)
}

/// The in-place op behind [`index_add_rows`].
struct IndexAddRows;

/// The start and end of a contiguous layout, or an error naming the operand.
fn offsets(layout: &Layout, what: &str) -> candle_core::Result<(usize, usize)> {
    layout.contiguous_offsets().ok_or_else(|| {
        candle_core::Error::Msg(format!("index_add_rows: {what} must be contiguous"))
    })
}

impl InplaceOp3 for IndexAddRows {
    fn name(&self) -> &'static str {
        "index-add-rows"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        ids: &CpuStorage,
        ids_l: &Layout,
        src: &CpuStorage,
        src_l: &Layout,
    ) -> candle_core::Result<()> {
        let (CpuStorage::F32(dst), CpuStorage::U32(ids), CpuStorage::F32(src)) = (dst, ids, src)
        else {
            candle_core::bail!("index_add_rows: expected f32 rows and u32 ids");
        };
        let (d0, d1) = offsets(dst_l, "the table")?;
        let (i0, i1) = offsets(ids_l, "the ids")?;
        let (s0, s1) = offsets(src_l, "the rows")?;
        let (dst, ids, src) = (&mut dst[d0..d1], &ids[i0..i1], &src[s0..s1]);
        let (rows, width) = (dst_l.dims()[0], dst_l.dims()[1]);
        if let Some(id) = ids.iter().find(|&&id| id as usize >= rows) {
            candle_core::bail!("index_add_rows: row {id} of a table of {rows} rows");
        }
        for (&id, row) in ids.iter().zip(src.chunks_exact(width.max(1))) {
            for (d, &s) in dst[id as usize * width..][..width].iter_mut().zip(row) {
                *d += s;
            }
        }
        Ok(())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        dst: &mut candle_core::CudaStorage,
        dst_l: &Layout,
        ids: &candle_core::CudaStorage,
        ids_l: &Layout,
        src: &candle_core::CudaStorage,
        src_l: &Layout,
    ) -> candle_core::Result<()> {
        use candle_core::backend::BackendStorage;
        use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
        use candle_core::cuda_backend::WrapErr;

        const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/index_add_rows.ptx"));
        let (d0, d1) = offsets(dst_l, "the table")?;
        let (i0, i1) = offsets(ids_l, "the ids")?;
        let (s0, s1) = offsets(src_l, "the rows")?;
        let (n_dst, width) = (dst_l.dims()[0] as u32, dst_l.dims()[1] as u32);
        let n_src = (i1 - i0) as u32;
        let total = (s1 - s0) as u32;
        if total == 0 {
            return Ok(());
        }
        let device = dst.device().clone();
        let func =
            device.get_or_load_custom_func("index_add_rows_f32", "mlet_index_add_rows", PTX)?;
        let ids = ids.as_cuda_slice::<u32>()?.slice(i0..i1);
        let src = src.as_cuda_slice::<f32>()?.slice(s0..s1);
        let mut dst = dst.as_cuda_slice_mut::<f32>()?.slice_mut(d0..d1);
        let mut builder = func.builder();
        builder.arg(&n_src);
        builder.arg(&width);
        builder.arg(&n_dst);
        builder.arg(&ids);
        builder.arg(&src);
        builder.arg(&mut dst);
        // SAFETY: the kernel reads n_src ids and n_src * width values of src and writes only
        // rows below n_dst of dst, whose views hold exactly those ranges.
        unsafe { builder.launch(LaunchConfig::for_num_elems(total)) }.w()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    #[test]
    fn adds_repeated_rows_and_refuses_bad_ids() {
        let dst = Tensor::zeros((4, 2), DType::F32, &Device::Cpu).unwrap();
        let ids = Tensor::new(&[2u32, 0, 2], &Device::Cpu).unwrap();
        let src = Tensor::new(&[[1f32, 2.], [3., 4.], [5., 6.]], &Device::Cpu).unwrap();
        index_add_rows(&dst, &ids, &src).unwrap();
        let got: Vec<Vec<f32>> = dst.to_vec2().unwrap();
        assert_eq!(
            got,
            vec![vec![3., 4.], vec![0., 0.], vec![6., 8.], vec![0., 0.]]
        );

        let bad = Tensor::new(&[4u32, 0, 1], &Device::Cpu).unwrap();
        let e = index_add_rows(&dst, &bad, &src).unwrap_err();
        assert!(
            format!("{e:#}").contains("row 4 of a table of 4 rows"),
            "{e:#}"
        );
        let short = Tensor::new(&[1u32], &Device::Cpu).unwrap();
        assert!(index_add_rows(&dst, &short, &src).is_err());
    }
}
