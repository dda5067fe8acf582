#!/usr/bin/env bash
# Training side by side with PyTorch eager: the same DLRM config (bottom 13-512-256-64-d, top
# 512-256-1, 26 tables sized by `mlet train` from the same rows), sparse SGD lr 0.2, batch 128,
# one epoch over the same Criteo-format rows written by `mlet synth`, one thread each on one core.
# Prints one table: samples/s and validation AUC, ours vs PyTorch, and the speed ratio.
# Makes benches/reference/.venv (torch, numpy, safetensors from PyPI) on first use.
# usage: bash benches/reference/train.sh            (ROWS=100000 VAL_ROWS=20000 by default)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
venv=benches/reference/.venv
make_venv "$venv" benches/reference/requirements.txt
rows=${ROWS:-100000}
val_rows=${VAL_ROWS:-20000}
cargo build --quiet --release -p mlet-trainer --bin mlet
mlet=./target/release/mlet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$mlet synth --rows "$rows" --seed 1 --out "$work/train.tsv" 2>/dev/null
$mlet synth --rows "$val_rows" --seed 2 --out "$work/val.tsv" 2>/dev/null
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; one thread each, pinned to core 0"
echo "data: $rows training rows, $val_rows validation rows (mlet synth); batch 128, SGD lr 0.2, 1 epoch"
printf '%-16s %12s %12s %8s %9s %9s\n' model "ours smp/s" "torch smp/s" ratio "ours AUC" "torch AUC"
failed=0
for run in "plain-d16 16 0" "mlet-d16-k64 16 64" "mlet-d4-k64 4 64"; do
    read -r name dim k <<<"$run"
    mlet_k=()
    [ "$k" != 0 ] && mlet_k=(--mlet-k "$k")
    if ! RAYON_NUM_THREADS=1 taskset -c 0 $mlet train --data "criteo:$work/train.tsv" --val "criteo:$work/val.tsv" \
        --dim "$dim" "${mlet_k[@]}" --batch 128 --lr 0.2 --json >"$work/ours.out" 2>"$work/ours.err"; then
        echo "$name: ours failed:" >&2; tail -n 20 "$work/ours.err" >&2; failed=1; continue
    fi
    ours=$(tail -n 1 "$work/ours.out")
    table_rows=$(python3 -c 'import json,sys; print(",".join(map(str, json.loads(sys.argv[1])["table_rows"])))' "$ours")
    if ! theirs=$(OMP_NUM_THREADS=1 taskset -c 0 "$venv/bin/python" benches/reference/train_torch.py \
        --train "$work/train.tsv" --val "$work/val.tsv" --table-rows "$table_rows" \
        --dim "$dim" --mlet-k "$k" --batch 128 --lr 0.2); then
        echo "$name: torch failed (its error is above)" >&2; failed=1; continue
    fi
    python3 - "$name" "$ours" "$theirs" <<'PY'
import json, sys
name, o, t = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"{name:<16} {o['samples_per_s']:12.0f} {t['samples_per_s']:12.0f} {o['samples_per_s']/t['samples_per_s']:7.2f}x"
      f" {o['auc']:9.4f} {t['auc']:9.4f}   (torch {t['torch']}, {t['threads']} thread)")
PY
done
exit "$failed"
