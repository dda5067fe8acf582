#!/usr/bin/env bash
# Scoring side by side with PyTorch eager on the same model files and rows, one thread each.
# Ours is timed in three builds that compute the same bits: the default one (x86-64 baseline;
# its layers pick AVX2 or AVX-512 kernels at run time where the CPU has them), the same without
# that dispatch (`--no-default-features`: SSE2 only, in target/sse2) and one for this CPU
# (`-C target-cpu=native`, in target/native). PyTorch picks its kernels at run time.
# Makes benches/reference/.venv (torch, numpy, safetensors from PyPI) on first use.
# usage: bash benches/reference/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
venv=benches/reference/.venv
make_venv "$venv" benches/reference/requirements.txt
build_score_vs_reference
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; one thread each"
printf '%-10s %-6s %-7s %12s %12s %8s %14s %14s %8s\n' model tables build "ours b1 us" "torch b1 us" ratio "ours b256 us" "torch b256 us" ratio
for model in criteo16 criteo4 small; do
    for tables in f32 f16 int8; do
        ours=$(taskset -c 0 ./target/release/score_vs_reference "$work/$model-$tables" "$model" "$tables")
        sse2=$(taskset -c 0 ./target/sse2/release/score_vs_reference "$work/$model-$tables-sse2" "$model" "$tables")
        native=$(taskset -c 0 ./target/native/release/score_vs_reference "$work/$model-$tables-native" "$model" "$tables")
        for build in sse2 native; do
            cmp -s "$work/$model-$tables/probs.f32" "$work/$model-$tables-$build/probs.f32" ||
                { echo "the $build build's probabilities differ from the default build's ($model $tables)" >&2; exit 1; }
        done
        theirs=$(OMP_NUM_THREADS=1 taskset -c 0 "$venv/bin/python" benches/reference/score_torch.py "$work/$model-$tables")
        python3 - "$ours" "$sse2" "$native" "$theirs" <<'PY'
import json, sys
o, s, n, t = (json.loads(a) for a in sys.argv[1:5])
for build, o in (("default", o), ("sse2", s), ("native", n)):
    print(f"{o['model']:<10} {o['tables']:<6} {build:<7} {o['batch1_s']*1e6:12.1f} {t['batch1_s']*1e6:12.1f} {t['batch1_s']/o['batch1_s']:7.1f}x"
          f" {o['batch256_s']*1e6:14.0f} {t['batch256_s']*1e6:14.0f} {t['batch256_s']/o['batch256_s']:7.2f}x")
PY
        rm -rf "$work/$model-$tables" "$work/$model-$tables-sse2" "$work/$model-$tables-native"
    done
done
