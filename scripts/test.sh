#!/usr/bin/env bash
# The project's tests, as CI runs them. Works on a fresh machine with the Rust toolchain and
# Python 3: it installs QEMU and the ARM binutils (apt, as root), adds the Cortex-M targets, makes
# a Python venv for the interop test, checks formatting and lints, runs every crate's tests (the runtime's also built for this
# CPU, whose scores must match the default build's bit for bit), then trains small models and
# checks them in firmware on an emulated Cortex-M4 and Cortex-M3, and holds the Cortex-M4
# runtime code (F32 and int8 paths) to its 16 KB budget.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

if ! command -v qemu-system-arm >/dev/null || ! command -v arm-none-eabi-nm >/dev/null; then
    if [ "$(id -u)" != 0 ]; then
        echo "needs: apt-get install -y qemu-system-arm binutils-arm-none-eabi (run as root)" >&2
        exit 2
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-arm binutils-arm-none-eabi >/dev/null
fi
rustup target add thumbv7em-none-eabihf thumbv7m-none-eabi

make_venv .venv scripts/requirements-test.txt
export MLET_PYTHON="$PWD/.venv/bin/python"

echo "== formatting and lints (the lint set is [workspace.lints] in Cargo.toml)"
rustup component add rustfmt clippy
cargo fmt --all --check
for dir in firmware firmware/check; do (cd "$dir" && cargo fmt --check); done
cargo clippy --quiet --workspace --all-targets -- -D warnings
(cd firmware/check && cargo clippy --quiet --release --all-targets -- -D warnings)

echo "== no_std runtime builds for Cortex-M4F and Cortex-M3"
cargo build --quiet -p mlet-runtime --release --target thumbv7em-none-eabihf
cargo build --quiet -p mlet-runtime --release --target thumbv7m-none-eabi

echo "== tests (fuzz cases: ${PROPTEST_CASES:=5000})"
export PROPTEST_CASES
cargo test --workspace

echo "== runtime without run-time dispatch (x86-64 baseline: SSE2 only)"
"${SSE2_CARGO[@]}" test --quiet -p mlet-runtime --no-default-features --test reference

echo "== runtime built for this CPU (target-cpu=native: examples grouped per weight load with AVX)"
"${NATIVE_CARGO[@]}" test --quiet -p mlet-runtime --test reference
# The same model and rows scored by every build must give the same bits: the default (AVX
# kernels picked at run time where the CPU has them: VNNI, AVX-512 or AVX2 for int8 layers),
# SSE2 only, and built for this CPU; F32 and int8 MLPs (format v2), every table dtype.
build_score_vs_reference
bits=$(mktemp -d)
for mlp in f32 int8; do
    for tables in f32 f16 int8 int4; do
        for build in "${BUILD_DIRS[@]}"; do
            target/$build/score_vs_reference "$bits/${build%/release}" small "$tables" "$mlp" >/dev/null
        done
        cmp "$bits/release/probs.f32" "$bits/sse2/probs.f32"
        cmp "$bits/release/probs.f32" "$bits/native/probs.f32"
    done
done
rm -rf "$bits"

echo "== firmware: trained models scored on QEMU Cortex-M4 and Cortex-M3, bit-identical to the host"
bash firmware/trained.sh

echo "== firmware: runtime code (F32 and int8 paths) within its 16 KB budget on the Cortex-M4"
bash firmware/check.sh footprint --targets m4 --code-budget 16000
