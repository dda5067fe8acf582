#!/usr/bin/env bash
# GPU training benchmark: our trainer (--device cuda) and the PyTorch reference
# (benches/reference/train_torch.py) on the same synthetic Criteo-shaped rows: 1M training rows,
# 100k validation rows, bottom 13-512-256-64-d, top 512-256-1, SGD lr 0.1, one epoch; plain d=16
# and MLET d=4 k=64 at batch 2048 and 128. Prints samples/s for both, the ratio and both AUCs.
# Both clocks skip the first 20 steps (CUDA loads its kernels on first use) and neither side
# reads the loss back per step.
#
# On the GPU machine (device tool), after benches/gpu/build.sh here:
#   bash benches/gpu/run.sh            (carry benches/gpu/bin)
# On a CPU (checks the script end to end; --autograd runs the CUDA path's step on the CPU):
#   DEVICE=cpu ROWS=20000 VAL_ROWS=5000 MLET=target/debug/mlet bash benches/gpu/run.sh
# Each training run gets RUN_TIMEOUT seconds (default 300); a run that fails or times out prints
# its last error lines and the table goes on; the script then exits non-zero at the end. With
# LOGS=DIR, every run's stderr is kept there.
set -euo pipefail
cd "$(dirname "$0")/../.."
device=${DEVICE:-cuda}
rows=${ROWS:-1000000}
val_rows=${VAL_ROWS:-100000}
mlet=${MLET:-benches/gpu/bin/mlet}
python=${PYTHON:-python3}
run_timeout=${RUN_TIMEOUT:-300}
logs=${LOGS:-}
autograd=()
if [ "$device" = cuda ]; then
    # The CUDA libraries come from the GPU machine's PyTorch environment.
    sp=$("$python" -c 'import site; print(site.getsitepackages()[0])')
    LD_LIBRARY_PATH=$(find "$sp/nvidia" -mindepth 1 -maxdepth 3 -type d -name lib | sort | paste -sd: -)
    export LD_LIBRARY_PATH
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
else
    autograd=(--autograd)
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
logs=${logs:-$work}
mkdir -p "$logs"

# A small run first, on the device and on the CPU (hand-written step) from the same seed: a
# broken device path stops here, in seconds, and the two must end at about the same model (the
# device adds repeated rows' gradients in no fixed order, so not bit for bit).
for on in "$device" cpu; do
    extra=("${autograd[@]}")
    [ "$on" = cpu ] && extra=()
    if ! timeout 120 "$mlet" train --data synthetic:20000:1 --val synthetic:5000:2 --device "$on" \
        "${extra[@]}" --batch 256 --json >"$logs/smoke-$on.out" 2>"$logs/smoke-$on.err"; then
        echo "smoke run on $on failed:"; tail -n 20 "$logs/smoke-$on.err"; exit 1
    fi
done
"$python" - "$(tail -n 1 "$logs/smoke-$device.out")" "$(tail -n 1 "$logs/smoke-cpu.out")" <<'PY'
import json, sys
d, c = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"smoke: 20k rows, batch 256: device AUC {d['auc']:.5f} logloss {d['logloss']:.5f}; "
      f"cpu AUC {c['auc']:.5f} logloss {c['logloss']:.5f}")
if abs(d["auc"] - c["auc"]) > 0.002 or abs(d["logloss"] - c["logloss"]) > 0.002:
    sys.exit("smoke: the device and the CPU disagree")
PY

"$mlet" synth --rows "$rows" --seed 1 --out "$work/train.tsv" 2>/dev/null
"$mlet" synth --rows "$val_rows" --seed 2 --out "$work/val.tsv" 2>/dev/null
echo "device $device; $rows training rows, $val_rows validation rows (mlet synth); SGD lr 0.1, 1 epoch"
printf '%-14s %6s %12s %12s %8s %9s %9s\n' model batch "ours smp/s" "torch smp/s" ratio "ours AUC" "torch AUC"
failed=0
for batch in 2048 128; do
    for run in "plain-d16 16 0" "mlet-d4-k64 4 64"; do
        read -r name dim k <<<"$run"
        mlet_k=()
        [ "$k" != 0 ] && mlet_k=(--mlet-k "$k")
        log="$logs/$name-b$batch"
        if ! timeout "$run_timeout" "$mlet" train --data "criteo:$work/train.tsv" --val "criteo:$work/val.tsv" \
            --device "$device" "${autograd[@]}" --dim "$dim" "${mlet_k[@]}" --batch "$batch" --lr 0.1 --json \
            >"$log.ours" 2>"$log.ours.err"; then
            echo "$name batch $batch: ours failed or timed out:"; tail -n 5 "$log.ours.err"; failed=1; continue
        fi
        ours=$(tail -n 1 "$log.ours")
        table_rows=$("$python" -c 'import json,sys; print(",".join(map(str, json.loads(sys.argv[1])["table_rows"])))' "$ours")
        if ! timeout "$run_timeout" "$python" benches/reference/train_torch.py --train "$work/train.tsv" \
            --val "$work/val.tsv" --table-rows "$table_rows" --dim "$dim" --mlet-k "$k" --batch "$batch" \
            --lr 0.1 --device "$device" >"$log.torch" 2>"$log.torch.err"; then
            echo "$name batch $batch: torch failed or timed out:"; tail -n 5 "$log.torch.err"; failed=1; continue
        fi
        theirs=$(tail -n 1 "$log.torch")
        "$python" - "$name" "$batch" "$ours" "$theirs" <<'PY'
import json, sys
name, batch, o, t = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
print(f"{name:<14} {batch:>6} {o['samples_per_s']:12.0f} {t['samples_per_s']:12.0f} "
      f"{o['samples_per_s']/t['samples_per_s']:7.2f}x {o['auc']:9.4f} {t['auc']:9.4f}"
      f"   (table rows {sum(o['table_rows'])}, torch {t['torch']})", flush=True)
PY
    done
done
if [ "$failed" != 0 ]; then
    echo "some runs failed (see above)" >&2
    exit 1
fi
