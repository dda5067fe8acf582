#!/usr/bin/env bash
# Scoring side by side with PyTorch eager on the same model files and rows, one thread each.
# Makes benches/reference/.venv (torch, numpy, safetensors from PyPI) on first use.
# usage: bash benches/reference/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=benches/reference/.venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet -r benches/reference/requirements.txt
fi
cargo build --quiet --release -p mlet-benches --bin score_vs_reference
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; one thread each"
printf '%-10s %-6s %12s %12s %8s %14s %14s %8s\n' model tables "ours b1 us" "torch b1 us" ratio "ours b256 us" "torch b256 us" ratio
for model in criteo16 criteo4 small; do
    for tables in f32 f16 int8; do
        ours=$(taskset -c 0 ./target/release/score_vs_reference "$work/$model-$tables" "$model" "$tables")
        theirs=$(OMP_NUM_THREADS=1 taskset -c 0 "$venv/bin/python" benches/reference/score_torch.py "$work/$model-$tables")
        python3 - "$ours" "$theirs" <<'PY'
import json, sys
o, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"{o['model']:<10} {o['tables']:<6} {o['batch1_s']*1e6:12.1f} {t['batch1_s']*1e6:12.1f} {t['batch1_s']/o['batch1_s']:7.1f}x"
      f" {o['batch256_s']*1e6:14.0f} {t['batch256_s']*1e6:14.0f} {t['batch256_s']/o['batch256_s']:7.2f}x")
PY
    done
done
