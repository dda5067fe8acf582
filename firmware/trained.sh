#!/usr/bin/env bash
# Trains the firmware check's models with `mlet` on the Criteo sample (first 8,000 rows train,
# last 2,000 validate), then runs the firmware check (every score on QEMU bit-identical to the
# host) on them, or with `footprint`, the footprint report including the paper's Criteo config.
#
#   firmware/trained.sh              train the five small models (each <= 256 KB; F32, F16 and
#                                    int8 MLPs), check m4 + m3
#   firmware/trained.sh footprint    also train the three Criteo-config models, print the footprint
#
# Models with an int8 MLP (format v2) are calibrated on the validation rows; their "val AUC"
# is the int8 model's (the F32 model's is in the log).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="criteo:$root/../shared/data/criteo/criteo_kaggle_train_head10k.tsv"
out="$root/firmware/target/trained"
mkdir -p "$out"
cargo build --quiet --manifest-path "$root/Cargo.toml" -p mlet-trainer
mlet="$root/target/debug/mlet"

# name, then mlet train flags. Small models: bottom 13-64-32-d, top 64-32-1, rows capped to fit.
mlp="--bottom 64-32 --top 64-32"
small=(
  "d4-mlet-int8-row   $mlp --dim 4 --mlet-k 64 --dtype int8 --int8-scale row --rows 512"
  "d4-int8-table      $mlp --dim 4 --dtype int8 --int8-scale table --rows 1024"
  "d8-f16-f16mlp      $mlp --dim 8 --dtype f16 --mlp-dtype f16 --rows 256"
  "d16-f32            $mlp --dim 16 --dtype f32 --rows 64"
  "d4-int4-int8mlp    $mlp --dim 4 --dtype int4 --mlp-dtype int8 --rows 1024"
)
criteo=(
  "trained-criteo-d16-f32-2p11 --dim 16 --dtype f32 --rows 2048 --bottom 512-256-64 --top 512-256"
  "trained-criteo-d4-mlet-int8-2p14 --dim 4 --mlet-k 64 --dtype int8 --int8-scale row --rows 16384 --bottom 512-256-64 --top 512-256"
  "trained-criteo-d4-mlet-int4-int8mlp-2p14 --dim 4 --mlet-k 64 --dtype int4 --int8-scale row --mlp-dtype int8 --rows 16384 --bottom 512-256-64 --top 512-256"
)
models=("${small[@]}")
[[ "${1:-check}" == footprint ]] && models+=("${criteo[@]}")

args=()
printf '%-41s %7s %8s\n' model "val AUC" bytes
for spec in "${models[@]}"; do
  read -r name flags <<<"$spec"
  # shellcheck disable=SC2086  # flags are words
  if ! "$mlet" train --data "$data" --val-fraction 0.2 --optimizer adagrad --lr 0.03 --batch 32 \
    $flags --out "$out/$name.mlet" --json >"$out/$name.log" 2>&1; then
    cat "$out/$name.log" >&2
    exit 1
  fi
  result=$(tail -1 "$out/$name.log")
  auc=$(python3 -c 'import json,sys; r = json.loads(sys.argv[1]); print(round(r.get("quantized", {}).get("auc_after", r["auc"]), 4))' "$result")
  printf '%-41s %7s %8s\n' "$name" "$auc" "$(stat -c %s "$out/$name.mlet")"
  args+=(--model "$out/$name.mlet")
done
exec "$root/firmware/check.sh" "${1:-check}" "${args[@]}" "${@:2}"
