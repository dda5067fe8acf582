"""PyTorch eager reference for scoring: loads the SAME model file as our runtime, checks that its
probabilities match ours within 1e-5, and times batch 1 and batch 256 on one thread.

usage: score_torch.py DIR   (DIR written by `score_vs_reference`: model.safetensors, dense.f32,
ids.u32, probs.f32). Prints one JSON line.
"""
import json
import sys
import time

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file


class DLRM(torch.nn.Module):
    """DESIGN.md's DLRM, built from a v1 model file's tensors and metadata."""

    def __init__(self, tensors, meta):
        super().__init__()
        self.rows = torch.tensor([int(n) for n in meta["table_rows"].split(",")], dtype=torch.int64)
        self.log1p = meta["dense_transform"] == "log1p"
        t = {k: v.float() for k, v in tensors.items()}
        tables = len(self.rows)
        if meta["embedding_dtype"] == "int8":
            self.tables = [
                t[f"emb.{i}.scale"].reshape(-1, 1) * t[f"emb.{i}.weight"] + t[f"emb.{i}.offset"].reshape(-1, 1)
                for i in range(tables)
            ]
        else:
            self.tables = [t[f"emb.{i}.weight"] for i in range(tables)]

        def mlp(group, count):
            layers = []
            for layer in range(count):
                lin = torch.nn.Linear(1, 1)
                lin.weight = torch.nn.Parameter(t[f"{group}.{layer}.weight"], requires_grad=False)
                lin.bias = torch.nn.Parameter(t[f"{group}.{layer}.bias"], requires_grad=False)
                layers.append(lin)
            return torch.nn.ModuleList(layers)

        self.bottom = mlp("bottom", len(meta["bottom_mlp"].split("-")) - 1)
        self.top = mlp("top", len(meta["top_mlp"].split("-")))
        i, j = torch.tril_indices(tables + 1, tables + 1, offset=-1)
        self.pairs_i, self.pairs_j = i, j  # (1,0), (2,0), (2,1), ...: i outer, j inner, ascending

    def forward(self, dense, ids):
        x = torch.log1p(torch.clamp(dense, min=0.0)) if self.log1p else dense
        for layer in self.bottom:
            x = torch.relu(layer(x))
        rows = ids.remainder(self.rows)
        z = torch.stack([x] + [table[rows[:, t]] for t, table in enumerate(self.tables)], dim=1)
        dots = torch.bmm(z, z.transpose(1, 2))[:, self.pairs_i, self.pairs_j]
        y = torch.cat([x, dots], dim=1)
        for n, layer in enumerate(self.top):
            y = layer(y)
            if n + 1 < len(self.top):
                y = torch.relu(y)
        return torch.sigmoid(y[:, 0])


def median_seconds(reps, f):
    for _ in range(min(reps, 50)):
        f()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main(folder):
    torch.set_num_threads(1)
    path = f"{folder}/model.safetensors"
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
    model = DLRM(load_file(path), meta).eval()
    dense = torch.from_numpy(np.fromfile(f"{folder}/dense.f32", dtype="<f4").reshape(-1, int(meta["num_dense"])))
    tables = len(meta["table_rows"].split(","))
    ids = torch.from_numpy(np.fromfile(f"{folder}/ids.u32", dtype="<u4").astype(np.int64).reshape(-1, tables))
    ours = np.fromfile(f"{folder}/probs.f32", dtype="<f4")
    with torch.inference_mode():
        theirs = model(dense, ids).numpy()
        max_diff = float(np.max(np.abs(theirs.astype(np.float64) - ours)))
        if max_diff > 1e-5:
            sys.exit(f"PyTorch and mlet-runtime disagree: max |p diff| = {max_diff}")
        state = {"i": 0}

        def one():
            i = state["i"] = (state["i"] + 1) % len(dense)
            model(dense[i : i + 1], ids[i : i + 1])

        batch1 = median_seconds(2000, one)
        batch256 = median_seconds(100, lambda: model(dense[:256], ids[:256]))
    print(json.dumps({"torch": torch.__version__, "max_abs_diff": max_diff, "batch1_s": batch1,
                      "batch256_s": batch256, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main(sys.argv[1])
