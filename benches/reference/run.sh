#!/usr/bin/env bash
# Scoring side by side with PyTorch eager and ONNX Runtime on the same model files and rows, one
# thread each, pinned to core 0.
# Ours is timed in three builds that compute the same bits: the default one (x86-64 baseline;
# its layers pick AVX2 or AVX-512 kernels at run time where the CPU has them), the same without
# that dispatch (`--no-default-features`: SSE2 only, in target/sse2) and one for this CPU
# (`-C target-cpu=native`, in target/native). PyTorch and ORT pick their kernels at run time.
# ORT f32 runs the PyTorch module exported with torch.onnx.export (all graph optimisations);
# ORT int8 is that model after onnxruntime.quantization.quantize_dynamic (score_ort.py).
# Prints the batch-1 and batch-256 times and the agreement of the probabilities (report.py).
# Makes benches/reference/.venv (requirements.txt, from PyPI) on first use.
# ROUNDS=N runs every case N times, one round after the other, and reports each side's fastest
# median (on a shared machine a round is now and then slowed for one side only).
# usage: [ROUNDS=N] bash benches/reference/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
venv=benches/reference/.venv
make_venv "$venv" benches/reference/requirements.txt
build_score_vs_reference
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One model file per line: MODEL (criteo16|criteo4|small) TABLES (f32|f16|int8) MLP (f32; int8 is
# passed to score_vs_reference as a 4th argument). A row with an int8 MLP is compared with the
# row of the same model and tables with an f32 MLP when that one comes first.
CASES=(
    "criteo16 f32  f32"
    "criteo16 f16  f32"
    "criteo16 int8 f32"
    "criteo4  f32  f32"
    "criteo4  f16  f32"
    "criteo4  int8 f32"
    "small    f32  f32"
    "small    f16  f32"
    "small    int8 f32"
    "criteo16 f32  int8"
    "criteo16 int8 int8"
    "criteo4  int8 int8"
    "small    int8 int8"
)
BUILDS=(default sse2 native)  # labels of scripts/lib.sh's BUILD_DIRS, in that order

py() { OMP_NUM_THREADS=1 taskset -c 0 "$venv/bin/python" "$@"; }
failed=0
rounds=${ROUNDS:-1}
for round in $(seq "$rounds"); do
for case in "${CASES[@]}"; do
    read -r model tables mlp <<<"$case"
    name=$model-$tables-$mlp
    echo "$name ..." >&2
    args=("$model" "$tables")
    [ "$mlp" = f32 ] || args+=("$mlp")
    ours=()
    for i in "${!BUILDS[@]}"; do
        ours+=("$(taskset -c 0 "./target/${BUILD_DIRS[$i]}/score_vs_reference" "$work/$name-${BUILDS[$i]}" "${args[@]}")")
    done
    dir=$work/$name-default
    for build in sse2 native; do
        cmp -s "$dir/probs.f32" "$work/$name-$build/probs.f32" ||
            { echo "the $build build's probabilities differ from the default build's ($model $tables mlp $mlp)" >&2; exit 1; }
    done
    f32_probs=$work/probs-$model-$tables-f32
    [ "$mlp" = f32 ] && cp "$dir/probs.f32" "$f32_probs"
    [ -e "$f32_probs" ] || f32_probs=
    vs_f32=(${f32_probs:+"$f32_probs"})
    # A failing reference prints its error and leaves its columns 'failed'; the script fails at the end.
    torch=$(py benches/reference/score_torch.py "$dir" 2>"$work/torch.err") ||
        { torch=; failed=1; echo "score_torch.py $name failed:" >&2; cat "$work/torch.err" >&2; }
    ort=$(py benches/reference/score_ort.py "$dir" "${vs_f32[@]}" 2>"$work/ort.err") ||
        { ort=; failed=1; echo "score_ort.py $name failed:" >&2; cat "$work/ort.err" >&2; }
    "$venv/bin/python" benches/reference/report.py row "$model" "$tables" "$mlp" "$dir/probs.f32" "$f32_probs" \
        "${ours[@]}" "$torch" "$ort" >>"$work/results.jsonl" || failed=1
    rm -rf "$work/$name"-*
done
done
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; one thread each, pinned to core 0"
"$venv/bin/python" benches/reference/report.py print "$work/results.jsonl"
[ "$failed" = 0 ] || { echo "some reference runs failed (above)" >&2; exit 1; }
