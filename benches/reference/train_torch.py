"""PyTorch eager reference for training: the same DLRM as `mlet train` (DESIGN.md), plain or MLET,
trained with sparse SGD on the same Criteo-format rows (written by `mlet synth`), with the same
table sizes, batch and learning rate; one epoch in file order, then validation AUC.

usage: train_torch.py --train TSV --val TSV --table-rows N0,N1,... [--dim 16] [--mlet-k 0]
                      [--bottom 512-256-64] [--top 512-256] [--batch 128] [--lr 0.2]
                      [--device cpu|cuda]
Prints one JSON line: samples_per_s (the training loop only: the rows are parsed into tensors on
the device before the clock starts; on CUDA the clock starts after 20 warm-up steps, which train
too, and stops after a synchronize), auc, logloss, threads, torch version, device.

Initialisation follows mlet-trainer: MLP weights normal with std sqrt(2 / (fan_in + fan_out)),
biases normal with std sqrt(1 / fan_out), table rows uniform in +-sqrt(1 / n), MLET projections
normal with std 1 / sqrt(k). Tables are torch.nn.Embedding(sparse=True); torch.optim.SGD applies
their sparse gradients to the touched rows only, as ours does.
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch


def read_criteo(path):
    """Labels [N], dense [N, 13] (float32), raw ids [N, 26] (int64): empty fields are 0."""
    labels, dense, ids = [], [], []
    with open(path) as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            labels.append(float(cols[0]))
            dense.append([float(c) if c else 0.0 for c in cols[1:14]])
            ids.append([int(c, 16) if c else 0 for c in cols[14:40]])
    return (
        torch.tensor(labels, dtype=torch.float32),
        torch.tensor(dense, dtype=torch.float32),
        torch.tensor(ids, dtype=torch.int64),
    )


def read_criteo_cached(path):
    """read_criteo, kept in PATH.pt after the first read (runs on the same file skip parsing)."""
    cache = path + ".pt"
    if os.path.exists(cache):
        return torch.load(cache)
    data = read_criteo(path)
    torch.save(data, cache + ".tmp")
    os.replace(cache + ".tmp", cache)
    return data


def linear(fan_in, fan_out):
    layer = torch.nn.Linear(fan_in, fan_out)
    with torch.no_grad():
        layer.weight.normal_(0.0, math.sqrt(2.0 / (fan_in + fan_out)))
        layer.bias.normal_(0.0, math.sqrt(1.0 / fan_out))
    return layer


class DLRM(torch.nn.Module):
    def __init__(self, table_rows, dim, mlet_k, bottom, top):
        super().__init__()
        self.register_buffer("rows", torch.tensor(table_rows, dtype=torch.int64))
        widths = [13] + bottom + [dim]
        self.bottom = torch.nn.ModuleList(linear(a, b) for a, b in zip(widths, widths[1:]))
        tables = len(table_rows)
        widths = [dim + tables * (tables + 1) // 2] + top + [1]
        self.top = torch.nn.ModuleList(linear(a, b) for a, b in zip(widths, widths[1:]))
        width = mlet_k if mlet_k > 0 else dim
        self.tables = torch.nn.ModuleList()
        for n in table_rows:
            table = torch.nn.Embedding(n, width, sparse=True)
            with torch.no_grad():
                bound = math.sqrt(1.0 / n)
                table.weight.uniform_(-bound, bound)
            self.tables.append(table)
        self.projections = torch.nn.ModuleList()
        if mlet_k > 0:
            for _ in table_rows:
                p = torch.nn.Linear(mlet_k, dim, bias=False)  # weight [d, k]: rows @ weight.T
                with torch.no_grad():
                    p.weight.normal_(0.0, 1.0 / math.sqrt(mlet_k))
                self.projections.append(p)
        i, j = torch.tril_indices(tables + 1, tables + 1, offset=-1)
        # (1,0), (2,0), (2,1), ...: i outer, j inner, ascending
        self.register_buffer("pairs_i", i)
        self.register_buffer("pairs_j", j)

    def forward(self, dense, ids):
        x = torch.log1p(torch.clamp(dense, min=0.0))
        for layer in self.bottom:
            x = torch.relu(layer(x))
        rows = ids.remainder(self.rows)
        embs = [table(rows[:, t]) for t, table in enumerate(self.tables)]
        if len(self.projections):
            embs = [p(e) for p, e in zip(self.projections, embs)]
        z = torch.stack([x] + embs, dim=1)
        dots = torch.bmm(z, z.transpose(1, 2))[:, self.pairs_i, self.pairs_j]
        y = torch.cat([x, dots], dim=1)
        for n, layer in enumerate(self.top):
            y = layer(y)
            if n + 1 < len(self.top):
                y = torch.relu(y)
        return y[:, 0]


def auc(scores, labels):
    """Exact ROC AUC by the rank-sum formula, tied scores sharing their average rank."""
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i : j + 1] = (i + j) / 2.0 + 1.0
        i = j + 1
    pos = labels[order] > 0.5
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--val", required=True)
    ap.add_argument("--table-rows", required=True)
    ap.add_argument("--dim", type=int, default=16)
    ap.add_argument("--mlet-k", type=int, default=0)
    ap.add_argument("--bottom", default="512-256-64")
    ap.add_argument("--top", default="512-256")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    table_rows = [int(n) for n in args.table_rows.split(",")]
    widths = lambda s: [int(w) for w in s.split("-")] if s else []
    model = DLRM(table_rows, args.dim, args.mlet_k, widths(args.bottom), widths(args.top)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    y, dense, ids = (t.to(device) for t in read_criteo_cached(args.train))
    n = len(y)
    cuda = device.type == "cuda"
    warmup_steps = 20 if cuda and n > 40 * args.batch else 0
    for step, b in enumerate(range(0, n, args.batch)):
        if step == warmup_steps:
            if cuda:
                torch.cuda.synchronize()
            start, timed_from = time.perf_counter(), b
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(dense[b : b + args.batch], ids[b : b + args.batch]), y[b : b + args.batch])
        loss.backward()
        optimizer.step()
    if cuda:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start

    vy, vdense, vids = (t.to(device) for t in read_criteo_cached(args.val))
    with torch.no_grad():
        p = torch.cat([torch.sigmoid(model(vdense[b : b + 4096], vids[b : b + 4096])) for b in range(0, len(vy), 4096)])
    p, labels = p.cpu().numpy().astype(np.float64), vy.cpu().numpy()
    pc = np.clip(p, 1e-7, 1 - 1e-7)
    logloss = float(-np.mean(labels * np.log(pc) + (1 - labels) * np.log(1 - pc)))
    print(json.dumps({
        "samples_per_s": (n - timed_from) / elapsed,
        "auc": auc(p, labels),
        "logloss": logloss,
        "rows": n,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": str(device),
    }))


if __name__ == "__main__":
    main()
