#!/usr/bin/env bash
# Training at Criteo Kaggle's table sizes on one machine: the paper's config (bottom
# 13-512-256-64-d, top 512-256-1, SGD lr 0.2, batch 128, one epoch), plain d=16 and MLET d=4
# k=64, on synthetic rows drawn from Criteo's 26 cardinalities (33.8M table rows in all:
# `synthetic:N:1:8:criteo`, tables sized by `--table-rows criteo`), exported as int8 with one
# scale per table. For each model: 1M and 10M rows at full table sizes, and 1M rows at small
# tables (`--rows 16384`: at most 2^14 rows a table) to see what table size costs. Prints, per
# run: samples/s, wall time, the memory estimate mlet prints at the start, the peak RSS after
# training, after the export, and after the whole run (MLET's collapse check, last, holds the
# collapsed n x d tables whole), and the file's bytes.
#
# usage: bash benches/scale/run.sh        (ROWS="1000000 10000000" by default; OUT=dir keeps files)
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --quiet --release -p mlet-trainer --bin mlet
mlet=./target/release/mlet
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
rows_list=${ROWS:-"1000000 10000000"}
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GB"
printf '%-14s %-6s %9s %10s %8s %11s %13s %12s %11s %10s %12s\n' model tables rows "samples/s" "wall s" estimate "training peak" "export peak" "peak RSS" "peak/est" "file bytes"
failed=0
for model in "plain-d16 --dim 16" "mlet-d4-k64 --dim 4 --mlet-k 64"; do
    read -r name flags <<<"$model"
    runs=()
    for rows in $rows_list; do runs+=("criteo $rows --table-rows criteo"); done
    runs+=("small 1000000 --rows 16384")
    for run in "${runs[@]}"; do
        read -r tables rows sizing <<<"$run"
        log="$out/$name-$tables-$rows"
        # shellcheck disable=SC2086  # flags are words
        if ! /usr/bin/time -f '%e %M' -o "$log.time" "$mlet" train --data "synthetic:$rows:1:8:criteo" $sizing \
            $flags --bottom 512-256-64 --top 512-256 --batch 128 --lr 0.2 \
            --dtype int8 --int8-scale table --out "$log.mlet" --json >"$log.json" 2>"$log.err"; then
            echo "$name $tables $rows: failed:" >&2; tail -n 5 "$log.err" >&2; failed=1; continue
        fi
        python3 - "$name" "$tables" "$rows" "$log" <<'PY'
import json, re, sys
name, tables, rows, log = sys.argv[1:5]
r = json.loads(open(log + ".json").read().splitlines()[-1])
wall, max_kb = open(log + ".time").read().split()
err = open(log + ".err").read()
m = re.search(r"memory: about ([0-9.]+) (GB|MB)", err)
est = float(m.group(1)) * (1e9 if m.group(2) == "GB" else 1e6)
peak = int(max_kb) * 1024
training, export = r["training_peak_rss_bytes"], r["export_peak_rss_bytes"]
print(f"{name:<14} {tables:<6} {int(rows):>9} {r['samples_per_s']:>10.0f} {float(wall):>8.1f} "
      f"{est/1e9:>9.2f}GB {training/1e9:>11.2f}GB {export/1e9:>10.2f}GB {peak/1e9:>9.2f}GB {peak/est:>9.2f}x {r['bytes']['total']:>12}")
PY
        rm -f "$log.mlet"
    done
done
exit "$failed"
