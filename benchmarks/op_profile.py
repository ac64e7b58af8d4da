#!/usr/bin/env python3
"""Where the classifier's time goes, per ONNX operator type (onnxruntime's own profiler).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/op_profile.py --bundle build/exp_all

For each ONNX classifier of the bundle (fp32, and the fp16/int8 exports it holds), the share of
kernel time per operator type at batch 1 on random 128 px input. The point is the Amdahl bound
of issue 6: int8 speeds up only the operators that have int8 kernels (Conv, MatMul and their
quantized forms); the rest (layout changes, GELU, LayerNorm, Softmax, adds, shape arithmetic)
run at fp32 speed or pay extra (de)quantization, so

    best end-to-end speed-up = total / (total - quantizable network time)

whatever the quantizer does. JSON and markdown go to benchmarks/results/op_profile.*.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgefas.report_files import write_report

HERE = Path(__file__).resolve().parent
# Operators onnxruntime's CPU provider runs with integer kernels after QDQ fusion.
QUANTIZABLE = {"Conv", "MatMul", "Gemm", "QLinearConv", "QLinearMatMul", "MatMulInteger",
               "ConvInteger", "FusedConv", "FusedMatMul", "FusedGemm"}


def profile(path: Path, threads: int, runs: int) -> dict:
    """Kernel time per operator type (ms per run) of one ONNX model."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        so.profile_file_prefix = str(Path(tmp) / "prof")
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        size = inp.shape[-1] if isinstance(inp.shape[-1], int) else 128
        x = np.random.default_rng(0).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
        for _ in range(10):              # warm-up runs are profiled too: counted and dropped below
            sess.run(None, {inp.name: x})
        for _ in range(runs):
            sess.run(None, {inp.name: x})
        events = json.loads(Path(sess.end_profiling()).read_text())
    per_op: dict[str, list[float]] = collections.defaultdict(list)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_op[e["args"]["op_name"]].append(e["dur"] / 1000.0)
    total_runs = runs + 10
    ops = {}
    for op, durs in per_op.items():
        n_nodes = len(durs) // total_runs
        kept = durs[10 * n_nodes:] if n_nodes else durs   # drop the warm-up runs' nodes
        ops[op] = {"ms_per_run": round(sum(kept) / runs, 4), "nodes": n_nodes}
    total = sum(v["ms_per_run"] for v in ops.values())
    quant = sum(v["ms_per_run"] for k, v in ops.items() if k in QUANTIZABLE)
    return {"file": path.name, "kernel_ms_per_run": round(total, 3),
            "quantizable_ms_per_run": round(quant, 3),
            "quantizable_share": round(quant / total, 3) if total else None,
            "ops": dict(sorted(ops.items(), key=lambda kv: -kv[1]["ms_per_run"]))}


def _bound(m: dict) -> str:
    share = m["quantizable_share"] or 0.0
    return f"{1 / (1 - share):.2f}x" if share < 1 else "unboundedly"


def to_markdown(res: dict) -> str:
    lines = [f"Classifier kernel time per operator type, onnxruntime CPU, batch 1, "
             f"{res['threads']} thread(s), {res['runs']} runs after 10 warm-up; bundle "
             f"`{res['bundle']}`. Quantizable = Conv, Gemm, MatMul and their integer/fused forms.", ""]
    for m in res["models"]:
        lines += [f"**{m['key']}** (`{m['file']}`): kernels {m['kernel_ms_per_run']:.2f} ms per run, "
                  f"quantizable {m['quantizable_ms_per_run']:.2f} ms "
                  f"({100 * (m['quantizable_share'] or 0):.0f} %); with int8 kernels of zero cost the "
                  f"network could get at most {_bound(m)} faster", "",
                  "| operator | ms per run | share | nodes |", "|---|---:|---:|---:|"]
        for op, v in list(m["ops"].items())[:15]:
            share = v["ms_per_run"] / m["kernel_ms_per_run"] if m["kernel_ms_per_run"] else 0
            lines.append(f"| {op} | {v['ms_per_run']:.3f} | {100 * share:.1f} % | {v['nodes']} |")
        lines.append("")
    lines += [f"Command: `{res['command']}`", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, help="bundle folder (default: the shipped bundle)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "op_profile")
    args = ap.parse_args(argv)
    if os.environ.get("OMP_WAIT_POLICY") != "PASSIVE":
        print("note: set OMP_WAIT_POLICY=PASSIVE for stable numbers", file=sys.stderr)
    from edgefas.bundle import default_bundle_path, load_bundle

    bundle = load_bundle(args.bundle or default_bundle_path())
    files = bundle.manifest["models"]["classifier"]
    keys = [k for k in ("onnx", "onnx_fp16", "onnx_int8") if k in files]
    models = [{"key": k, **profile(bundle.path / files[k], args.threads, args.runs)} for k in keys]
    command = "OMP_WAIT_POLICY=PASSIVE python benchmarks/op_profile.py " + " ".join(argv or sys.argv[1:])
    res = {"bundle": bundle.manifest.get("name", str(bundle.path)), "threads": args.threads,
           "runs": args.runs, "models": models, "command": command}
    write_report(args.out, res, to_markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
