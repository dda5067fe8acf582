#!/usr/bin/env bash
# The on-device scoring check (firmware/README.md).
#
#   firmware/check.sh                 check: random models (or --model FILE...) on QEMU Cortex-M4 and
#                                     Cortex-M3, every score bit-identical to the host, corrupt models rejected
#   firmware/check.sh footprint       footprint table (add --targets m4,m3 for the Cortex-M3 too)
#   firmware/check.sh check --model trained.mlet [--rows 64]
#
# Needs: qemu-system-arm, binutils-arm-none-eabi (apt), rustup targets thumbv7em-none-eabihf and
# thumbv7m-none-eabi, and ../shared/data/criteo/criteo_kaggle_train_head10k.tsv (or --tsv FILE).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
for tool in qemu-system-arm arm-none-eabi-size arm-none-eabi-nm; do
  command -v "$tool" >/dev/null || {
    echo "missing $tool: apt-get install -y qemu-system-arm binutils-arm-none-eabi" >&2; exit 2; }
done
if command -v rustup >/dev/null; then
  installed="$(rustup target list --installed)"
  for t in thumbv7em-none-eabihf thumbv7m-none-eabi; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t"
  done
fi
cmd="${1:-check}"
[[ $# -gt 0 ]] && shift
cd "$here/check"
if [[ "$cmd" == check ]]; then
  cargo test --quiet --release   # the tool's own unit tests (rows file, comparison, output parsing, corruptions)
fi
exec cargo run --quiet --release -- "$cmd" "$@"
