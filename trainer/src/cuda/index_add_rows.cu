// dst[ids[j], c] += src[j, c] for every j < n_src, c < width: one thread per element of src,
// atomicAdd for rows that appear more than once. Rows at or past n_dst are skipped.
extern "C" __global__ void index_add_rows_f32(
    const unsigned int n_src,
    const unsigned int width,
    const unsigned int n_dst,
    const unsigned int *ids,
    const float *src,
    float *dst)
{
    const size_t total = (size_t)n_src * width;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (size_t)blockDim.x * gridDim.x) {
        const unsigned int row = ids[i / width];
        if (row < n_dst) {
            atomicAdd(&dst[(size_t)row * width + i % width], src[i]);
        }
    }
}
