#!/usr/bin/env bash
# Builds `mlet` with the `cuda` feature on a machine WITHOUT a GPU (../shared/notes/gpu.md) and
# puts it in benches/gpu/bin/ (git-ignored), ready to carry to the GPU machine with run.sh.
# About 15 minutes on 2 cores the first time (candle's kernels compile with nvcc).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
cargo fetch
# shellcheck source=/dev/null
. ../shared/tools/cuda-env.sh
cargo build --release -p mlet-trainer --features cuda
mkdir -p benches/gpu/bin
cp target/release/mlet benches/gpu/bin/mlet
ls -l benches/gpu/bin/mlet
