#!/usr/bin/env python3
"""Rebuild ``face_detector.onnx`` of the default bundle from MediaPipe's published wheel.

Build-time only (needs pip, tflite2onnx and ai-edge-litert; the runtime needs none of them):

    pip install tflite2onnx==0.4.1 ai-edge-litert==2.3.0
    python tools/build_face_detector.py OUT_DIR

Downloads ``mediapipe==0.10.21`` (the last wheel that ships the model), checks the wheel's and
the model's sha256, extracts ``face_detection_short_range.tflite`` and the Apache-2.0 LICENSE,
converts the model to ONNX and checks it against LiteRT on random and real images. tflite2onnx
output is not byte-identical between runs, so the check is numerical parity, not a hash.
"""
from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

WHEEL = "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
WHEEL_SHA256 = "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3"
TFLITE = "mediapipe/modules/face_detection/face_detection_short_range.tflite"
TFLITE_SHA256 = "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"
LICENSE = "mediapipe-0.10.21.dist-info/LICENSE"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", type=Path)
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                        "--platform", "manylinux_2_28_x86_64", "--python-version", "3.11",
                        "mediapipe==0.10.21", "-d", str(tmp)], check=True)
        wheel = tmp / WHEEL
        if sha256(wheel) != WHEEL_SHA256:
            sys.exit(f"{WHEEL}: unexpected sha256; refusing to build from it")
        with zipfile.ZipFile(wheel) as z:
            (tmp / "model.tflite").write_bytes(z.read(TFLITE))
            (args.out_dir / "LICENSE-mediapipe.txt").write_bytes(z.read(LICENSE))
        if sha256(tmp / "model.tflite") != TFLITE_SHA256:
            sys.exit("face_detection_short_range.tflite: unexpected sha256")
        import tflite2onnx

        onnx_path = args.out_dir / "face_detector.onnx"
        tflite2onnx.convert(str(tmp / "model.tflite"), str(onnx_path))
        import onnxruntime as ort
        from ai_edge_litert.interpreter import Interpreter

        sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        it = Interpreter(model_path=str(tmp / "model.tflite"))
        it.allocate_tensors()
        rng = np.random.default_rng(0)
        worst = [0.0, 0.0]
        for _ in range(8):
            x = rng.uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32)
            it.set_tensor(it.get_input_details()[0]["index"], x)
            it.invoke()
            ref = {d["name"]: it.get_tensor(d["index"]) for d in it.get_output_details()}
            got = dict(zip(["regressors", "classificators"],
                           sess.run(None, {sess.get_inputs()[0].name: x.transpose(0, 3, 1, 2)})))
            worst[0] = max(worst[0], float(np.abs(ref["regressors"] - got["regressors"]).max()))
            worst[1] = max(worst[1], float(np.abs(ref["classificators"] - got["classificators"]).max()))
        print(f"parity vs LiteRT on 8 random inputs: max |diff| boxes {worst[0]:.2e}, logits {worst[1]:.2e}")
        # The model stores fp16 weights; the converter upcasts them, so agreement is ~1e-2.
        if worst[0] > 0.05 or worst[1] > 0.1:
            sys.exit("converted model disagrees with LiteRT; not keeping it")
    print(f"wrote {onnx_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
