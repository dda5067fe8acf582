"""ONNX Runtime reference for scoring: the PyTorch reference's module (`score_torch.DLRM`, built
from the SAME model file as our runtime) exported with `torch.onnx.export`, run by ONNX Runtime on
one thread with all graph optimisations; then ORT's own int8 model of it
(`onnxruntime.quantization.quantize_dynamic`). Both are checked against our probabilities and
timed at batch 1 and batch 256 like `score_torch.py`.

usage: score_ort.py DIR [F32_PROBS]
  DIR: written by `score_vs_reference` (model.safetensors, dense.f32, ids.u32, probs.f32); the
  ONNX files are written there too (model.onnx, model.int8.onnx).
  F32_PROBS: our probabilities on the same rows from the model with an f32 MLP, which the int8
  models are compared with (default DIR/probs.f32, i.e. ours on this very file).
Prints one JSON line.

ORT f32 must match ours within 1e-5 where the file's MLP is f32 (for an int8-MLP file it runs the
f32 module that file approximates: max |p diff| only). ORT int8: the MLP's MatMul/Gemm nodes
quantized dynamically (weights QInt8 per tensor, activations UInt8 per batch); the tables stay as
the file holds them (their Gather nodes are left alone) so that the table dtype is still ours.
"""
import json
import logging
import os
import sys
import warnings
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic

from score_torch import agreement, load, median_seconds

OPSET = 20
QUANTIZED_OPS = ["MatMul", "Gemm"]


def export(model, dense, ids, path):
    """ONNX file of `model` with a dynamic batch axis (the dynamo exporter)."""
    batch = torch.export.Dim("batch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (dense[:2], ids[:2]), path, dynamo=True, opset_version=OPSET,
                          input_names=["dense", "ids"], output_names=["p"],
                          dynamic_shapes=({0: batch}, {0: batch}), external_data=False, verbose=False)


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def run_and_time(sess, dense, ids):
    """(probabilities on every row, batch-1 seconds, batch-256 seconds)."""
    probs = sess.run(["p"], {"dense": dense, "ids": ids})[0]
    state = {"i": 0}

    def one():
        i = state["i"] = (state["i"] + 1) % len(dense)
        sess.run(["p"], {"dense": dense[i : i + 1], "ids": ids[i : i + 1]})

    batch1 = median_seconds(2000, one)
    batch256 = median_seconds(100, lambda: sess.run(["p"], {"dense": dense[:256], "ids": ids[:256]}))
    return probs, batch1, batch256


def op_counts(path):
    return Counter(node.op_type for node in onnx.load(path, load_external_data=False).graph.node)


def main(folder, f32_probs=None):
    torch.set_num_threads(1)
    logging.getLogger("torch").setLevel(logging.ERROR)  # the exporter's "torchvision is not installed"
    logging.getLogger().setLevel(logging.ERROR)  # quantize_dynamic's advice to pre-process first
    model, dense_t, ids_t, ours = load(folder)
    dense, ids = dense_t.numpy(), ids_t.numpy()
    f32_path, int8_path = os.path.join(folder, "model.onnx"), os.path.join(folder, "model.int8.onnx")
    export(model, dense_t, ids_t, f32_path)
    probs, f32_b1, f32_b256 = run_and_time(session(f32_path), dense, ids)
    f32_diff = agreement(model, probs, ours, "ONNX Runtime (f32)")

    quantize_dynamic(f32_path, int8_path, weight_type=QuantType.QInt8, op_types_to_quantize=QUANTIZED_OPS)
    before, after = op_counts(f32_path), op_counts(int8_path)
    quantized = {op: before[op] - after[op] for op in QUANTIZED_OPS if before[op] > after[op]}
    if not quantized:
        raise SystemExit(f"quantize_dynamic quantized none of the {'/'.join(QUANTIZED_OPS)} nodes of {f32_path}")
    int8_probs, int8_b1, int8_b256 = run_and_time(session(int8_path), dense, ids)
    reference = ours if f32_probs is None else np.fromfile(f32_probs, dtype="<f4")
    if reference.shape != int8_probs.shape:
        raise SystemExit(f"{f32_probs}: {reference.shape[0]} probabilities for {int8_probs.shape[0]} rows")
    dp = np.abs(int8_probs.astype(np.float64) - reference)
    print(json.dumps({
        "onnxruntime": ort.__version__, "onnx": onnx.__version__, "opset": OPSET,
        "tables": model.embedding_dtype, "mlp": model.mlp_dtype,
        "f32_max_abs_diff": f32_diff, "f32_checked": model.mlp_dtype == "f32",
        "f32_batch1_s": f32_b1, "f32_batch256_s": f32_b256,
        "int8_quantized": quantized, "int8_nodes": {op: after[op] for op in ("MatMulInteger", "DynamicQuantizeLinear")},
        "int8_vs": "ours (this file)" if f32_probs is None else "ours (f32 MLP)",
        "int8_max_abs_diff": float(dp.max()), "int8_mean_abs_diff": float(dp.mean()),
        "int8_batch1_s": int8_b1, "int8_batch256_s": int8_b256, "threads": 1,
    }))


if __name__ == "__main__":
    main(*sys.argv[1:3])
