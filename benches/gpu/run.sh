#!/usr/bin/env bash
# GPU training benchmark: our trainer (--device cuda) and the PyTorch reference
# (benches/reference/train_torch.py) on the same synthetic Criteo-shaped rows: 1M training rows,
# 100k validation rows, bottom 13-512-256-64-d, top 512-256-1, SGD lr 0.1, one epoch; plain d=16
# and MLET d=4 k=64 at batch 128 and 2048. Prints samples/s for both, the ratio and both AUCs.
#
# On the GPU machine (device tool), after benches/gpu/build.sh here:
#   bash benches/gpu/run.sh            (carry benches/gpu/bin)
# On a CPU (checks the script end to end):
#   DEVICE=cpu ROWS=20000 VAL_ROWS=5000 MLET=target/debug/mlet bash benches/gpu/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
device=${DEVICE:-cuda}
rows=${ROWS:-1000000}
val_rows=${VAL_ROWS:-100000}
mlet=${MLET:-benches/gpu/bin/mlet}
python=${PYTHON:-python3}
if [ "$device" = cuda ]; then
    # The CUDA libraries come from the GPU machine's PyTorch environment.
    sp=$("$python" -c 'import site; print(site.getsitepackages()[0])')
    LD_LIBRARY_PATH=$(find "$sp/nvidia" -mindepth 1 -maxdepth 3 -type d -name lib | sort | paste -sd: -)
    export LD_LIBRARY_PATH
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$mlet" synth --rows "$rows" --seed 1 --out "$work/train.tsv" 2>/dev/null
"$mlet" synth --rows "$val_rows" --seed 2 --out "$work/val.tsv" 2>/dev/null
echo "device $device; $rows training rows, $val_rows validation rows (mlet synth); SGD lr 0.1, 1 epoch"
printf '%-14s %6s %12s %12s %8s %9s %9s\n' model batch "ours smp/s" "torch smp/s" ratio "ours AUC" "torch AUC"
for batch in 128 2048; do
    for run in "plain-d16 16 0" "mlet-d4-k64 4 64"; do
        read -r name dim k <<<"$run"
        ours=$("$mlet" train --data "criteo:$work/train.tsv" --val "criteo:$work/val.tsv" --device "$device" \
            --dim "$dim" --mlet-k "$k" --batch "$batch" --lr 0.1 --json 2>/dev/null | tail -n 1)
        table_rows=$("$python" -c 'import json,sys; print(",".join(map(str, json.loads(sys.argv[1])["table_rows"])))' "$ours")
        theirs=$("$python" benches/reference/train_torch.py --train "$work/train.tsv" --val "$work/val.tsv" \
            --table-rows "$table_rows" --dim "$dim" --mlet-k "$k" --batch "$batch" --lr 0.1 --device "$device")
        "$python" - "$name" "$batch" "$ours" "$theirs" <<'PY'
import json, sys
name, batch, o, t = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
print(f"{name:<14} {batch:>6} {o['samples_per_s']:12.0f} {t['samples_per_s']:12.0f} "
      f"{o['samples_per_s']/t['samples_per_s']:7.2f}x {o['auc']:9.4f} {t['auc']:9.4f}"
      f"   (table rows {sum(o['table_rows'])}, torch {t['torch']})")
PY
    done
done
