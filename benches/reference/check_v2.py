"""Self-check of the reference's v2 reading (int4 tables, int8 MLP) on a hand-made file.

usage: check_v2.py DIR OUT   (DIR written by `score_vs_reference` with an f32 MLP; OUT: a new folder)

Quantizes DIR's model as DESIGN's model file v2 describes (tables to int4, per-row scale and
offset; every layer to int8: per-row weight scales, per-tensor input scales for the bottom MLP
and per-column ones for the top MLP), writes it to OUT with DIR's inputs and, as `probs.f32`, the
probabilities of an exact emulation of the v2 arithmetic (integer sums). Then checks that
`score_torch.DLRM` reads the tables exactly and that its f32 module differs from the exact int8
layers by no more than input rounding allows. OUT can then be given to score_torch.py and
score_ort.py. Prints one JSON line.
"""
import json
import os
import shutil
import sys

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from score_torch import DLRM, load


def int4_table(values):
    """values [n, d] -> (U8 [n, ceil(d/2)] packed codes, scale [n], offset [n])."""
    lo, hi = values.min(dim=1).values, values.max(dim=1).values
    scale = torch.where(hi > lo, (hi - lo) / 15, torch.ones_like(lo))
    q = torch.clamp(torch.round((values - lo[:, None]) / scale[:, None]), 0, 15).to(torch.uint8)
    if q.shape[1] % 2:
        q = torch.cat([q, torch.zeros_like(q[:, :1])], dim=1)
    return q[:, 0::2] | (q[:, 1::2] << 4), scale, lo


def int8_layer(weight, x, per_column):
    """Quantize one layer for inputs like the calibration rows x [N, in]."""
    lo = torch.clamp(x.min(dim=0).values if per_column else x.min(), max=0.0)
    hi = torch.clamp(x.max(dim=0).values if per_column else x.max(), min=1e-6)
    s = (hi - lo) / 255  # input scale; zero point so that lo maps to code 0
    zero = torch.clamp(torch.round(-lo / s), 0, 255)
    folded = weight * (s if per_column else 1.0)  # DESIGN: per-column scales folded into W
    w_scale = folded.abs().max(dim=1).values.clamp(min=1e-12) / 127
    w = torch.clamp(torch.round(folded / w_scale[:, None]), -127, 127).to(torch.int8)
    acc_scale = w_scale * (1.0 if per_column else s)
    return {"weight": w, "acc_scale": acc_scale.float().reshape(-1),
            "input_inv_scale": (1 / s).float().reshape(-1), "input_zero": zero.to(torch.uint8).reshape(-1)}


class ExactInt8(torch.nn.Module):
    """DESIGN's int8 layer as written: quantize the input, integer sum, then acc * acc_scale + bias."""

    def __init__(self, t):
        super().__init__()
        self.t = t

    def forward(self, x):
        t = self.t
        q = torch.clamp(torch.round(x * t["input_inv_scale"]) + t["input_zero"].float(), 0, 255)
        acc = (q.to(torch.int64) - t["input_zero"].to(torch.int64)) @ t["weight"].to(torch.int64).T
        return acc.float() * t["acc_scale"] + t["bias"]


def main(src, out):
    path = f"{src}/model.safetensors"
    tensors = load_file(path)
    with safe_open(path, framework="pt") as f:
        meta = dict(f.metadata())
    if meta.get("mlp_dtype", "f32") != "f32":
        raise SystemExit(f"{path}: needs an f32 MLP")
    model, dense, ids, _ = load(src)
    meta.update(format_version="2", embedding_dtype="int4", mlp_dtype="int8")

    v2 = {}
    for t in range(model.tables):
        v2[f"emb.{t}.weight"], v2[f"emb.{t}.scale"], v2[f"emb.{t}.offset"] = int4_table(getattr(model, f"emb{t}"))
    # Calibrate each layer's input range on the rows themselves, layer by layer through the f32 model.
    with torch.inference_mode():
        x = torch.log1p(torch.clamp(dense, min=0.0)) if model.log1p else dense
        layers = [(f"bottom.{i}", layer, False) for i, layer in enumerate(model.bottom)]
        for name, layer, per_column in layers:
            v2.update({f"{name}.{k}": v for k, v in int8_layer(layer.weight, x, per_column).items()})
            v2[f"{name}.bias"] = layer.bias
            x = torch.relu(layer(x))
        rows = ids.remainder(model.rows)
        z = torch.stack([x] + [getattr(model, f"emb{t}")[rows[:, t]] for t in range(model.tables)], dim=1)
        y = torch.cat([x, torch.bmm(z, z.transpose(1, 2))[:, model.pairs_i, model.pairs_j]], dim=1)
        for i, layer in enumerate(model.top):
            name = f"top.{i}"
            v2.update({f"{name}.{k}": v for k, v in int8_layer(layer.weight, y, True).items()})
            v2[f"{name}.bias"] = layer.bias
            y = layer(y)
            if i + 1 < len(model.top):
                y = torch.relu(y)

    os.makedirs(out, exist_ok=True)
    save_file({k: v.contiguous() for k, v in v2.items()}, f"{out}/model.safetensors", metadata=meta)
    for name in ("dense.f32", "ids.u32"):
        shutil.copyfile(f"{src}/{name}", f"{out}/{name}")

    deq = DLRM(load_file(f"{out}/model.safetensors"), meta).eval()
    # The tables: unpacked independently (numpy, nibble by nibble) they must be exactly the same.
    for t in range(model.tables):
        packed = v2[f"emb.{t}.weight"].numpy()
        codes = np.empty((packed.shape[0], packed.shape[1] * 2), np.float32)
        codes[:, 0::2], codes[:, 1::2] = packed % 16, packed // 16
        want = v2[f"emb.{t}.scale"].numpy()[:, None] * codes[:, : z.shape[2]] + v2[f"emb.{t}.offset"].numpy()[:, None]
        if not np.array_equal(getattr(deq, f"emb{t}").numpy(), want):
            raise SystemExit(f"table {t}: int4 unpacking differs")

    exact = DLRM(load_file(f"{out}/model.safetensors"), meta).eval()
    for group in ("bottom", "top"):
        for i in range(len(getattr(exact, group))):
            t = {k.split(".")[-1]: v for k, v in v2.items() if k.startswith(f"{group}.{i}.")}
            getattr(exact, group)[i] = ExactInt8(t)
    # One layer on random inputs: |f32 - exact| <= sum_j |W_ij| * 0.5 / inv_j (input rounding), plus f32 slack.
    layer, t = deq.top[0], exact.top[0].t
    x = torch.rand(256, layer.weight.shape[1]) * (layer.hi - layer.lo).clamp(max=1e3) + layer.lo.clamp(min=-1e3)
    bound = (layer.weight.abs() * (0.5 / t["input_inv_scale"])).sum(dim=1)
    err = (layer(x) - exact.top[0](x)).abs()
    if bool((err > bound * 1.01 + 1e-4).any()):
        raise SystemExit(f"top.0: the f32 module is further from the int8 layer than input rounding allows ({err.max()})")
    with torch.inference_mode():
        p_exact, p_deq = exact(dense, ids).numpy(), deq(dense, ids).numpy()
    p_exact.astype("<f4").tofile(f"{out}/probs.f32")
    print(json.dumps({"file": f"{out}/model.safetensors", "tables_exact": True, "layer_within_rounding": True,
                      "max_abs_diff_f32_module_vs_int8": float(np.abs(p_deq.astype(np.float64) - p_exact).max())}))


if __name__ == "__main__":
    main(*sys.argv[1:3])
