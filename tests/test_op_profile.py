"""benchmarks/op_profile.py: per-operator kernel time from onnxruntime's profiler."""
from __future__ import annotations

import numpy as np
import pytest

from .conftest import benchmark_module


def _module():
    return benchmark_module("op_profile")


def test_profile_splits_time_into_quantizable_and_other_operators(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(8, 3, 3, 3)).astype(np.float32), "w")
    m = np.random.default_rng(1).normal(size=(16, 16)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["face", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Softmax", ["c"], ["s"], axis=-1),
             helper.make_node("MatMul", ["s", "m"], ["logit"])]
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, c, 16, 16])
          for n, c in (("face", 3), ("logit", 8))]
    graph = helper.make_graph(nodes, "g", io[:1], io[1:], [w, numpy_helper.from_array(m, "m")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "toy.onnx"
    model.ir_version = 8            # what the pinned onnxruntime reads
    onnx.save(model, str(path))
    mod = _module()
    res = mod.profile(path, threads=1, runs=5)
    assert {"Conv", "Softmax", "MatMul"} <= set(res["ops"])   # + layout reorders onnxruntime adds
    assert all(res["ops"][k]["nodes"] == 1 for k in ("Conv", "Softmax", "MatMul"))
    quant = res["ops"]["Conv"]["ms_per_run"] + res["ops"]["MatMul"]["ms_per_run"]
    assert res["quantizable_ms_per_run"] == pytest.approx(quant, abs=2e-3)
    assert 0 < res["quantizable_share"] < 1
    md = mod.to_markdown({"bundle": "toy", "threads": 1, "runs": 5, "command": "x",
                          "models": [{"key": "onnx", **res}]})
    assert "| Softmax |" in md and "at most" in md
