#!/usr/bin/env python3
"""Score images with the default bundle and print what an app would act on.

    python examples/quickstart.py ../shared/fixtures/silentface/image_T1.jpg photo.png

Needs only the runtime install (numpy, OpenCV, onnxruntime): no torch.
"""
from __future__ import annotations

import sys

import edgefas


def main(paths: list[str]) -> int:
    det = edgefas.Detector()  # the bundle shipped in the package; thread-safe, build it once
    for path in paths:
        r = det(path)
        if r.decision in (edgefas.Decision.LIVE, edgefas.Decision.SPOOF):
            print(f"{path}: {r.decision} (live_score {r.live_score:.3f}, threshold "
                  f"{r.threshold:.3f}, face {r.box}, {r.timings_ms['total']:.1f} ms)")
        else:  # no usable face: ask the user to retry instead of deciding
            print(f"{path}: {r.decision}: {'; '.join(r.reasons)}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)   # the usage line
        raise SystemExit(2)
    raise SystemExit(main(sys.argv[1:]))
