#!/usr/bin/env bash
# The project's tests, as CI runs them. Works on a fresh machine with the Rust toolchain and
# Python 3: it adds the Cortex-M targets, makes a Python venv for the interop test, checks that
# the runtime builds for microcontrollers, and runs every crate's tests.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add thumbv7em-none-eabihf thumbv7m-none-eabi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
export MLET_PYTHON="$PWD/.venv/bin/python"

echo "== no_std runtime builds for Cortex-M4F and Cortex-M3"
cargo build --quiet -p mlet-runtime --release --target thumbv7em-none-eabihf
cargo build --quiet -p mlet-runtime --release --target thumbv7m-none-eabi

echo "== tests (fuzz cases: ${PROPTEST_CASES:=5000})"
export PROPTEST_CASES
cargo test --workspace
