#!/usr/bin/env python3
"""Cost of the preprocessing contract per call: table lookup (``to_tensor``) vs the formula.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/preprocess.py     # writes benchmarks/results/

Both give bit-identical tensors (tests/test_preprocess.py); this measures what the lookup
saves on every frame the runtime scores. Random uint8 crops, interleaved rounds, p50 in ms.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from edgefas.report_files import write_report

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "preprocess")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from edgefas.runtime.preprocess import Contract, _to_tensor_arithmetic, to_tensor

    contract = Contract()
    rng = np.random.default_rng(0)
    cases = [(1, 128), (32, 128), (1, 224)]
    ways = {"lookup table (to_tensor)": to_tensor, "per-pixel formula": _to_tensor_arithmetic}
    times: dict[tuple[int, int, str], list[float]] = {}
    crops = {c: rng.integers(0, 256, (c[0], c[1], c[1], 3), dtype=np.uint8) for c in cases}
    for _ in range(5):  # warm-up
        for c in cases:
            for fn in ways.values():
                fn(crops[c], contract)
    for _ in range(args.runs):
        for c in cases:
            for name, fn in ways.items():
                t = time.perf_counter()
                fn(crops[c], contract)
                times.setdefault((*c, name), []).append((time.perf_counter() - t) * 1e3)
    rows = [{"batch": b, "size": s, "way": w, "p50_ms": float(np.percentile(v, 50)),
             "p90_ms": float(np.percentile(v, 90)), "n": len(v)}
            for (b, s, w), v in times.items()]
    result = {"command": "python benchmarks/preprocess.py", "rows": rows,
              "contract": contract.to_dict(), "runs": args.runs,
              "machine": {"cpu": platform.processor() or platform.machine(),
                          "cores": os.cpu_count(), "python": platform.python_version(),
                          "numpy": np.__version__}}
    md = [f"Preprocessing contract (BGR uint8 crop -> normalised NCHW float32), {args.runs} "
          "interleaved runs per case, random crops; both ways give bit-identical tensors.", "",
          f"Command: `{result['command']}`", "",
          "| batch x size | way | p50 ms | p90 ms |", "|---|---|---:|---:|"]
    md += [f"| {r['batch']} x {r['size']} px | {r['way']} | {r['p50_ms']:.3f} | {r['p90_ms']:.3f} |"
           for r in rows]
    write_report(args.out, result, "\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
