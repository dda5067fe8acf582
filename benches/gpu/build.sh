#!/usr/bin/env bash
# Builds `mlet` with the `cuda` feature, on a machine with or without a GPU, and puts it in
# benches/gpu/bin/ (git-ignored), ready to carry to the GPU machine with run.sh. Needs `nvcc` and
# the CUDA libraries: when `nvcc` is not on PATH, CUDA_ENV names a script to source that sets
# them up (on this project's build machines: CUDA_ENV=../shared/tools/cuda-env.sh, which installs
# CUDA 13.0 from PyPI with a link-only libcuda stub). About 15 minutes on 2 cores the first time.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
cargo fetch
if ! command -v nvcc >/dev/null; then
    : "${CUDA_ENV:?nvcc is not on PATH: set CUDA_ENV to a script that sets up CUDA (see above)}"
    # shellcheck source=/dev/null
    . "$CUDA_ENV"
fi
cargo build --release -p mlet-trainer --features cuda
mkdir -p benches/gpu/bin
cp target/release/mlet benches/gpu/bin/mlet
ls -l benches/gpu/bin/mlet
