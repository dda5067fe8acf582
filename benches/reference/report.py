"""The tables of `run.sh`.

usage: report.py row MODEL TABLES MLP PROBS F32_PROBS OURS_DEFAULT OURS_SSE2 OURS_NATIVE TORCH ORT
         one JSON line for one model file: the JSON lines of score_vs_reference (three builds),
         score_torch.py and score_ort.py ('' where a step failed); PROBS is ours on this file,
         F32_PROBS ours on the same model with an f32 MLP ('' if none; used for an int8 MLP).
       report.py print RESULTS   the tables, from the lines `row` wrote
"""
import json
import sys

import numpy as np

BUILDS = ("default", "sse2", "native")


def row(model, tables, mlp, probs, f32_probs, ours_default, ours_sse2, ours_native, torch, ort):
    out = {"model": model, "tables": tables, "mlp": mlp,
           "ours": {b: json.loads(o) for b, o in zip(BUILDS, (ours_default, ours_sse2, ours_native))},
           "torch": json.loads(torch) if torch else None, "ort": json.loads(ort) if ort else None}
    # What the file holds must be what the row asked for (a build that ignores the MLP argument
    # would write an f32 MLP).
    for who, got in [("score_vs_reference", out["ours"]["default"].get("mlp"))] + [
            (w, (out[w] or {}).get("mlp")) for w in ("torch", "ort")]:
        if got is not None and got != mlp:
            sys.exit(f"{model} {tables} mlp {mlp}: {who} finds mlp_dtype {got} in the file; "
                     "does score_vs_reference take the MLP dtype as its 4th argument?")
    ours = np.fromfile(probs, "<f4")
    out["rows"] = len(ours)
    if f32_probs and mlp != "f32":
        dp = np.abs(ours.astype(np.float64) - np.fromfile(f32_probs, "<f4"))
        out["ours_vs_f32"] = {"max": float(dp.max()), "mean": float(dp.mean())}
    print(json.dumps(out))


def us(seconds, digits):
    return f"{seconds * 1e6:.{digits}f}"


def timing_table(rows, key, digits):
    head = f"{'model':<9} {'tables':<6} {'mlp':<4} {'build':<7} {'ours':>8} {'torch':>8} {'ratio':>6} {'ORT f32':>8} {'ratio':>6} {'ORT int8':>8} {'ratio':>6}"
    lines = [head]
    for r in rows:
        theirs = [(r["torch"] or {}).get(f"batch{key}_s"), (r["ort"] or {}).get(f"f32_batch{key}_s"),
                  (r["ort"] or {}).get(f"int8_batch{key}_s")]
        for build in BUILDS:
            ours = r["ours"][build][f"batch{key}_s"]
            cells = [f"{r['model']:<9} {r['tables']:<6} {r['mlp']:<4} {build:<7} {us(ours, digits):>8}"]
            for t in theirs:
                cells.append(f"{'failed':>8} {'':>6}" if t is None else f"{us(t, digits):>8} {t / ours:5.2f}x")
            lines.append(" ".join(cells))
    return lines


def agreement_table(rows):
    head = (f"{'model':<9} {'tables':<6} {'mlp':<4} {'torch':>9} {'ORT f32':>9} {'ORT int8 max':>12} {'mean':>9}"
            f" {'vs':<15} {'ours int8 max':>13} {'mean':>9}  ORT int8 quantized")
    lines = [head]
    for r in rows:
        t, o, q = r["torch"], r["ort"], r.get("ours_vs_f32")
        cells = [f"{r['model']:<9} {r['tables']:<6} {r['mlp']:<4}",
                 f"{'failed':>9}" if t is None else f"{t['max_abs_diff']:9.2e}",
                 f"{'failed':>9} {'':>12} {'':>9} {'':<15}" if o is None else
                 f"{o['f32_max_abs_diff']:9.2e} {o['int8_max_abs_diff']:12.2e} {o['int8_mean_abs_diff']:9.2e} {o['int8_vs']:<15}",
                 f"{'':>13} {'':>9}" if q is None else f"{q['max']:13.2e} {q['mean']:9.2e}",
                 "" if o is None else " " + ", ".join(f"{n} {op}" for op, n in o["int8_quantized"].items())]
        lines.append(" ".join(cells))
    return lines


TIMES = {"torch": ("batch1_s", "batch256_s"),
         "ort": ("f32_batch1_s", "f32_batch256_s", "int8_batch1_s", "int8_batch256_s")}


def best_of_rounds(rows):
    """One row per model file, with each side's fastest time over the rounds (`ROUNDS`), and the
    number of rounds."""
    merged, rounds = {}, {}
    for r in rows:
        key = (r["model"], r["tables"], r["mlp"])
        rounds[key] = rounds.get(key, 0) + 1
        if key not in merged:
            merged[key] = r
            continue
        m = merged[key]
        for build in BUILDS:
            for k in ("batch1_s", "batch256_s"):
                m["ours"][build][k] = min(m["ours"][build][k], r["ours"][build][k])
        for side, keys in TIMES.items():
            if m[side] is None:
                m[side] = r[side]
            elif r[side] is not None:
                for k in keys:
                    m[side][k] = min(m[side][k], r[side][k])
    return list(merged.values()), max(rounds.values())


def print_tables(results):
    rows = [json.loads(line) for line in open(results)]
    if not rows:
        sys.exit("no results")
    rows, rounds = best_of_rounds(rows)
    ort = next((r["ort"] for r in rows if r["ort"]), None)
    torch = next((r["torch"] for r in rows if r["torch"]), None)
    print(f"versions: torch {torch and torch['torch']}, onnxruntime {ort and ort['onnxruntime']}, "
          f"onnx {ort and ort['onnx']} (opset {ort and ort['opset']})")
    best = f"the fastest of {rounds} rounds' medians" if rounds > 1 else "median"
    print(f"times: {best}, us per call, one thread; ratio = theirs / ours (above 1: ours is faster)")
    print("\nbatch 1")
    print("\n".join(timing_table(rows, 1, 1)))
    print("\nbatch 256")
    print("\n".join(timing_table(rows, 256, 0)))
    print(f"\nagreement of probabilities on {rows[0]['rows']:,} rows, |p diff|: torch and ORT f32 against ours on the same file"
          "\n(checked <= 1e-5 for an f32 MLP); ORT int8 and ours int8 MLP against ours with an f32 MLP (`vs`)")
    print("\n".join(agreement_table(rows)))


if __name__ == "__main__":
    if len(sys.argv) == 12 and sys.argv[1] == "row":
        row(*sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "print":
        print_tables(sys.argv[2])
    else:
        sys.exit(__doc__)
