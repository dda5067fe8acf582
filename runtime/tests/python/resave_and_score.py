"""Re-saves an MLET model file with the Python `safetensors` package and scores it with numpy.

usage: resave_and_score.py IN_MODEL OUT_MODEL INPUTS

IN_MODEL is read with safetensors.numpy; every tensor and the metadata are written again with
`save_file` to OUT_MODEL (so the layout is Python's own). INPUTS is a text file, one example a
line: dense values, then `|`, then raw ids. The DLRM of DESIGN.md is computed in float64 for each
line and one probability a line is printed to stdout.
"""
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file


def main(src, dst, inputs):
    tensors = load_file(src)
    with safe_open(src, framework="numpy") as f:
        meta = f.metadata()
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, dst, metadata=meta)

    t = {k: v.astype(np.float64) for k, v in load_file(dst).items()}
    rows = [int(n) for n in meta["table_rows"].split(",")]
    bottom_layers = len(meta["bottom_mlp"].split("-")) - 1
    top_layers = len(meta["top_mlp"].split("-"))
    for line in open(inputs):
        dense_text, ids_text = line.split("|")
        x = np.array([float(v) for v in dense_text.split()], dtype=np.float32).astype(np.float64)
        if meta["dense_transform"] == "log1p":
            x = np.log1p(np.maximum(x, 0.0))
        for layer in range(bottom_layers):
            x = np.maximum(t[f"bottom.{layer}.weight"] @ x + t[f"bottom.{layer}.bias"], 0.0)
        z = [x]
        for table, raw in enumerate(int(v) for v in ids_text.split()):
            r = raw % rows[table]
            row = t[f"emb.{table}.weight"][r]
            if meta["embedding_dtype"] == "int8":
                scale, offset = t[f"emb.{table}.scale"], t[f"emb.{table}.offset"]
                row = scale[r if scale.size > 1 else 0] * row + offset[r if offset.size > 1 else 0]
            z.append(row)
        top = list(z[0]) + [z[i] @ z[j] for i in range(1, len(z)) for j in range(i)]
        y = np.array(top)
        for layer in range(top_layers):
            y = t[f"top.{layer}.weight"] @ y + t[f"top.{layer}.bias"]
            if layer + 1 < top_layers:
                y = np.maximum(y, 0.0)
        print(repr(float(1.0 / (1.0 + np.exp(-y[0])))))


if __name__ == "__main__":
    main(*sys.argv[1:4])
