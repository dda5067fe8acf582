//! Matrix products on slices for the hand-written step, through the `gemm` crate (the kernels
//! candle itself uses, with the AVX-512 ones turned on: chosen at run time, so the binary still
//! runs where AVX-512 is missing).

use gemm::Parallelism;

/// The sum of `values`, in eight interleaved partial sums (so that it vectorizes).
pub fn sum(values: &[f32]) -> f32 {
    let mut partial = [0f32; 8];
    let chunks = values.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (p, &v) in partial.iter_mut().zip(chunk) {
            *p += v;
        }
    }
    partial.iter().sum::<f32>() + tail
}

/// A read-only matrix in a slice: element (r, c) is `data[r * row_stride + c * col_stride]`.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Mat<'a> {
    /// The row-major `rows` x `cols` matrix held by `data` (exactly that many values).
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Mat<'a> {
        assert_eq!(data.len(), rows * cols, "a {rows} x {cols} matrix");
        Mat {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose (a view, nothing is copied).
    pub fn t(self) -> Mat<'a> {
        Mat {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// How many threads matrix products use: candle's setting (`RAYON_NUM_THREADS`, else the
/// number of cores).
pub fn threads() -> usize {
    candle_core::utils::get_num_threads()
}

/// Products with fewer multiply-adds than this run on one thread: splitting them costs more than
/// it saves.
const PARALLEL_WORK: usize = 1 << 22;

/// `dst = a b` (or `dst += a b` when `accumulate`), `dst` row-major [a.rows, b.cols], on up to
/// `threads` threads (one for small products, see [`PARALLEL_WORK`]).
pub fn matmul(dst: &mut [f32], a: Mat<'_>, b: Mat<'_>, accumulate: bool, threads: usize) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "inner dimensions of a matrix product");
    assert_eq!(dst.len(), m * n, "the product is {m} x {n}");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst.fill(0.0);
        }
        return;
    }
    let parallelism = if threads > 1 && m * n * k >= PARALLEL_WORK {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // SAFETY: every index gemm forms lies inside its slice: `Mat::new` checked that `data` holds
    // rows x cols values at the strides a row-major matrix (or its transpose) uses, the shapes
    // agree (checked above), and `dst` holds exactly m x n values, row-major. `dst` is a unique
    // borrow, so it overlaps neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference product, element by element.
    fn naive(a: Mat<'_>, b: Mat<'_>) -> Vec<f32> {
        let mut out = vec![0.0; a.rows * b.cols];
        for r in 0..a.rows {
            for c in 0..b.cols {
                out[r * b.cols + c] = (0..a.cols)
                    .map(|i| {
                        a.data[r * a.row_stride + i * a.col_stride]
                            * b.data[i * b.row_stride + c * b.col_stride]
                    })
                    .sum();
            }
        }
        out
    }

    #[test]
    fn products_with_transposes_match_the_naive_loop() {
        let x: Vec<f32> = (0..15).map(|i| (i as f32 * 0.37).sin()).collect();
        let y: Vec<f32> = (0..20).map(|i| (i as f32 * 0.11).cos()).collect();
        for threads in [1, 2] {
            // [3,5] x [5,4]
            let (a, b) = (Mat::new(&x, 3, 5), Mat::new(&y, 5, 4));
            let mut out = vec![0.0; 12];
            matmul(&mut out, a, b, false, threads);
            assert_close(&out, &naive(a, b));
            // [5,3]^T x [5,4], then accumulated a second time
            let a = Mat::new(&x, 5, 3).t();
            matmul(&mut out, a, b, false, threads);
            matmul(&mut out, a, b, true, threads);
            let twice: Vec<f32> = naive(a, b).iter().map(|v| 2.0 * v).collect();
            assert_close(&out, &twice);
            // [3,5] x [4,5]^T
            let (a, b) = (Mat::new(&x, 3, 5), Mat::new(&y, 4, 5).t());
            matmul(&mut out, a, b, false, threads);
            assert_close(&out, &naive(a, b));
        }
    }

    fn assert_close(a: &[f32], b: &[f32]) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
    }

    #[test]
    fn sums_match_the_sequential_sum() {
        for len in [0, 1, 7, 8, 9, 128, 131] {
            let values: Vec<f32> = (0..len).map(|i| i as f32 * 0.5 - 3.0).collect();
            let expected: f32 = values.iter().sum();
            assert!((sum(&values) - expected).abs() < 1e-4, "length {len}");
        }
    }
}
