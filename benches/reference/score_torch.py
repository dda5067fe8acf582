"""PyTorch eager reference for scoring: loads the SAME model file as our runtime, checks its
probabilities against ours and times batch 1 and batch 256 on one thread.

usage: score_torch.py DIR   (DIR written by `score_vs_reference`: model.safetensors, dense.f32,
ids.u32, probs.f32). Prints one JSON line.

Files with an f32 (or f16) MLP must match ours within 1e-5. A v2 file with an int8 MLP is run as
the f32 module it approximates (see `int8_layer`), which is not expected to match our integer
arithmetic bit for bit: its max |p diff| against ours is reported instead of checked.
`score_ort.py` imports `DLRM`, `load` and `median_seconds` from here.
"""
import json
import sys
import time

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file

F32_TOLERANCE = 1e-5


class FileError(ValueError):
    """The model file lacks something this reference needs, or holds something it doesn't know."""


def tensor(tensors, name, why):
    if name not in tensors:
        raise FileError(f"no tensor `{name}` ({why})")
    return tensors[name]


def table(tensors, t, dtype, rows, dim):
    """Embedding table t as f32 [rows, dim]: v1 f32/f16/int8, v2 int4 (value = scale * q + offset)."""
    why = f"embedding_dtype {dtype}"
    weight = tensor(tensors, f"emb.{t}.weight", why)
    if dtype in ("f32", "f16"):
        values = weight.float()
    elif dtype in ("int8", "int4"):
        codes = weight.to(torch.int32)
        if dtype == "int4":  # element 2c in the low nibble, 2c + 1 in the high one
            codes = torch.stack([codes & 15, codes >> 4], dim=2).reshape(codes.shape[0], -1)[:, :dim]
        scale = tensor(tensors, f"emb.{t}.scale", why).float().reshape(-1, 1)
        offset = tensor(tensors, f"emb.{t}.offset", why).float().reshape(-1, 1)
        values = scale * codes.float() + offset
    else:
        raise FileError(f"unknown embedding_dtype `{dtype}`")
    if tuple(values.shape) != (rows, dim):
        raise FileError(f"emb.{t} holds {tuple(values.shape)} values, metadata says [{rows}, {dim}]")
    return values


def int8_layer(tensors, name):
    """An int8 layer (DESIGN, model file v2) as f32 (weight, bias, input_min, input_max).

    The layer quantizes its input, q_j = clamp(round(x_j * inv_j) + zero_j, 0, 255), and computes
    y_i = acc_scale_i * sum_j w_ij (q_j - zero_j) + bias_i. Since q_j - zero_j is x_j * inv_j up to
    rounding once x_j lies in [-zero_j / inv_j, (255 - zero_j) / inv_j], the same layer in f32 is
    y = W x' + bias with W_ij = w_ij * acc_scale_i * inv_j and x' = x clamped to that range.
    """
    why = "mlp_dtype int8"
    w = tensor(tensors, f"{name}.weight", why)
    if w.dtype != torch.int8:
        raise FileError(f"`{name}.weight` is {w.dtype}, mlp_dtype int8 needs I8")
    out, width = w.shape
    acc_scale = tensor(tensors, f"{name}.acc_scale", why).float().reshape(-1)
    inv = tensor(tensors, f"{name}.input_inv_scale", why).float().reshape(-1)
    zero = tensor(tensors, f"{name}.input_zero", why).float().reshape(-1)
    bias = tensor(tensors, f"{name}.bias", why).float().reshape(-1)
    for label, v, n in (("acc_scale", acc_scale, (out,)), ("bias", bias, (out,)),
                        ("input_inv_scale", inv, (1, width)), ("input_zero", zero, (1, width))):
        if v.numel() not in n:
            raise FileError(f"`{name}.{label}` has {v.numel()} values, expected {' or '.join(map(str, n))}")
    if not bool(torch.all(torch.isfinite(inv) & (inv >= 0))):
        raise FileError(f"`{name}.input_inv_scale` must be finite and >= 0")
    inv, zero = inv.expand(width), zero.expand(width)
    weight = w.float() * acc_scale.reshape(-1, 1) * inv.reshape(1, -1)
    # An inverse scale of 0 quantizes the column to zero: its weights are 0, any range will do.
    safe = torch.where(inv > 0, inv, torch.ones_like(inv))
    lo = torch.where(inv > 0, -zero / safe, torch.full_like(inv, -torch.inf))
    hi = torch.where(inv > 0, (255 - zero) / safe, torch.full_like(inv, torch.inf))
    return weight, bias, lo, hi


class Layer(torch.nn.Module):
    """y = W x + b, with x first clamped to [lo, hi] for a layer dequantized from int8."""

    def __init__(self, weight, bias, lo=None, hi=None):
        super().__init__()
        self.register_buffer("weight", weight.contiguous())
        self.register_buffer("bias", bias.contiguous())
        self.clamped = lo is not None
        if self.clamped:
            self.register_buffer("lo", lo)
            self.register_buffer("hi", hi)

    def forward(self, x):
        if self.clamped:
            x = torch.minimum(torch.maximum(x, self.lo), self.hi)
        return torch.nn.functional.linear(x, self.weight, self.bias)


class DLRM(torch.nn.Module):
    """DESIGN.md's DLRM in f32, built from a v1 or v2 model file's tensors and metadata.

    Tables of any dtype are dequantized to f32 once; the forward pass is lookups (Gather), the
    MLPs, the dot interaction and a sigmoid, all in f32.
    """

    def __init__(self, tensors, meta):
        super().__init__()
        version = meta.get("format_version")
        if version not in ("1", "2"):
            raise FileError(f"format_version `{version}`: this reference reads 1 and 2")
        self.embedding_dtype = meta["embedding_dtype"]
        self.mlp_dtype = meta.get("mlp_dtype", "f32")
        if self.mlp_dtype not in ("f32", "int8"):
            raise FileError(f"unknown mlp_dtype `{self.mlp_dtype}`")
        rows = [int(n) for n in meta["table_rows"].split(",")]
        dim = int(meta["dim"])
        self.register_buffer("rows", torch.tensor(rows, dtype=torch.int64))
        self.log1p = meta["dense_transform"] == "log1p"
        self.tables = len(rows)
        for t, n in enumerate(rows):
            self.register_buffer(f"emb{t}", table(tensors, t, self.embedding_dtype, n, dim))

        def mlp(group, count):
            layers = []
            for layer in range(count):
                name = f"{group}.{layer}"
                if self.mlp_dtype == "int8":
                    layers.append(Layer(*int8_layer(tensors, name)))
                else:
                    layers.append(Layer(tensor(tensors, f"{name}.weight", "mlp").float(),
                                        tensor(tensors, f"{name}.bias", "mlp").float()))
            return torch.nn.ModuleList(layers)

        self.bottom = mlp("bottom", len(meta["bottom_mlp"].split("-")) - 1)
        self.top = mlp("top", len(meta["top_mlp"].split("-")))
        i, j = torch.tril_indices(self.tables + 1, self.tables + 1, offset=-1)
        # (1,0), (2,0), (2,1), ...: i outer, j inner, ascending
        self.register_buffer("pairs_i", i)
        self.register_buffer("pairs_j", j)

    def forward(self, dense, ids):
        x = torch.log1p(torch.clamp(dense, min=0.0)) if self.log1p else dense
        for layer in self.bottom:
            x = torch.relu(layer(x))
        rows = ids.remainder(self.rows)
        lookups = [torch.index_select(getattr(self, f"emb{t}"), 0, rows[:, t]) for t in range(self.tables)]  # ONNX Gather
        z = torch.stack([x] + lookups, dim=1)
        dots = torch.bmm(z, z.transpose(1, 2))[:, self.pairs_i, self.pairs_j]
        y = torch.cat([x, dots], dim=1)
        for n, layer in enumerate(self.top):
            y = layer(y)
            if n + 1 < len(self.top):
                y = torch.relu(y)
        return torch.sigmoid(y[:, 0])


def load(folder):
    """(model, dense [N, D] f32, ids [N, T] i64, our probabilities [N] f32) from a folder written
    by `score_vs_reference`."""
    path = f"{folder}/model.safetensors"
    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
    try:
        model = DLRM(load_file(path), meta).eval()
    except (FileError, KeyError) as e:
        raise SystemExit(f"{path}: {e}")
    dense = torch.from_numpy(np.fromfile(f"{folder}/dense.f32", dtype="<f4").reshape(-1, int(meta["num_dense"])))
    ids = torch.from_numpy(np.fromfile(f"{folder}/ids.u32", dtype="<u4").astype(np.int64).reshape(-1, model.tables))
    ours = np.fromfile(f"{folder}/probs.f32", dtype="<f4")
    return model, dense, ids, ours


def agreement(model, theirs, ours, who):
    """max |p diff| against ours; a file with an f32 MLP must agree within F32_TOLERANCE."""
    max_diff = float(np.max(np.abs(theirs.astype(np.float64) - ours)))
    if model.mlp_dtype == "f32" and not max_diff <= F32_TOLERANCE:
        raise SystemExit(f"{who} and mlet-runtime disagree: max |p diff| = {max_diff} (> {F32_TOLERANCE})")
    return max_diff


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
    model, dense, ids, ours = load(folder)
    with torch.inference_mode():
        max_diff = agreement(model, model(dense, ids).numpy(), ours, "PyTorch")
        state = {"i": 0}

        def one():
            i = state["i"] = (state["i"] + 1) % len(dense)
            model(dense[i : i + 1], ids[i : i + 1])

        batch1 = median_seconds(2000, one)
        batch256 = median_seconds(100, lambda: model(dense[:256], ids[:256]))
    print(json.dumps({"torch": torch.__version__, "tables": model.embedding_dtype, "mlp": model.mlp_dtype,
                      "max_abs_diff": max_diff, "checked": model.mlp_dtype == "f32",
                      "batch1_s": batch1, "batch256_s": batch256, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main(sys.argv[1])
