"""BlazeFace short-range face detection (MediaPipe's model, run as ONNX).

The model takes a 128x128 RGB image in [-1, 1] and predicts, for each of 896 SSD anchors, a
box, 6 keypoints and a score. The decoding below follows MediaPipe's
``face_detection_short_range`` graph: SSD anchors with strides 8/16/16/16 and fixed unit
size, box offsets scaled by 128, sigmoid scores, weighted non-maximum suppression at IoU 0.3.
Keypoints (MediaPipe order): subject's right eye, left eye, nose tip, mouth centre, right
ear tragion, left ear tragion. Frames are letterboxed (aspect kept, padded) before detection.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .backends import Model, load_model
from .downscale import halve

INPUT_SIZE = 128
# Candidate score before NMS, as in MediaPipe's graph. The Detector applies its own, higher
# minimum (the bundle's ``face_score_min``) to decide what counts as a face.
CANDIDATE_SCORE = 0.5
NMS_IOU = 0.3
#: Frames whose long side exceeds this are halved before the letterbox resize.
HALVE_ABOVE_PX = 2048


@dataclass(frozen=True)
class Face:
    """One detected face in input-image pixels."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    keypoints: np.ndarray                    # (6, 2): r-eye, l-eye, nose, mouth, r-ear, l-ear
    score: float

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


def ssd_anchors() -> np.ndarray:
    """Anchor centres (896, 2) in [0, 1], in the order of the model's outputs."""
    centres = []
    # Stride 8: one layer with 2 anchors per cell; stride 16: three layers merged, 6 per cell.
    for stride, per_cell in ((8, 2), (16, 6)):
        cells = INPUT_SIZE // stride
        for y in range(cells):
            for x in range(cells):
                centres.extend([((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell)
    return np.asarray(centres, dtype=np.float64)


_ANCHORS = ssd_anchors()


def _letterbox(image_bgr: np.ndarray) -> tuple[np.ndarray, tuple[float, float], float, float]:
    """Resize to fit 128x128 keeping the aspect ratio; return tensor, (x, y) scale and padding.

    The scales are those of the resize actually made (``nw / w``, ``nh / h``, after rounding to
    whole pixels), so coordinates map back exactly; for 4:3, 16:9 and square frames they equal
    the nominal scale bit for bit."""
    h, w = image_bgr.shape[:2]
    scale = INPUT_SIZE / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    # Frames over HALVE_ABOVE_PX (4K, photos): halve with the vectorised 2x2 area path until
    # the long side is at most that, then area-resize the rest (4K: ~4.3 ms instead of ~15 ms
    # for one area resize over every pixel). Smaller frames, all of the training and evaluation
    # data included, take the one-step path unchanged. The count is fixed up front: a 1-px tall
    # strip cannot be halved, and a loop on the image itself would never end.
    halvings = 0
    while max(h, w) >> halvings > HALVE_ABOVE_PX:
        halvings += 1
    resized = cv2.resize(halve(image_bgr, halvings), (nw, nh), interpolation=interp)
    pad_x, pad_y = (INPUT_SIZE - nw) / 2, (INPUT_SIZE - nh) / 2
    canvas = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
    x0, y0 = int(pad_x), int(pad_y)
    canvas[y0:y0 + nh, x0:x0 + nw] = resized
    rgb = canvas[:, :, ::-1].astype(np.float32) / 127.5 - 1.0
    return rgb.transpose(2, 0, 1)[None], (nw / w, nh / h), float(x0), float(y0)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def _weighted_nms(boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray
                  ) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's WEIGHTED suppression: average each cluster's boxes by score."""
    order = np.argsort(-scores)
    boxes, kps, scores = boxes[order], kps[order], scores[order]
    out = []
    remaining = np.arange(len(scores))
    while remaining.size:
        top = remaining[0]
        in_cluster = _iou(boxes[top], boxes[remaining]) > NMS_IOU
        # The top box always leads its own cluster, even when degenerate: a zero or negative
        # size gives IoU 0 with itself, the cluster came out empty and the average raised.
        in_cluster[0] = True
        cluster = remaining[in_cluster]
        w = scores[cluster][:, None]
        box = (boxes[cluster] * w).sum(0) / w.sum()
        kp = (kps[cluster].reshape(len(cluster), -1) * w).sum(0) / w.sum()
        out.append((box, kp.reshape(-1, 2), float(scores[top])))
        # Dropping the cluster keeps ``remaining`` in descending score order.
        remaining = remaining[~in_cluster]
    return out


class FaceDetector:
    """BlazeFace short-range on a backend model. Thread-safe: ``detect`` keeps no state."""

    def __init__(self, model: Model) -> None:
        self._model = model

    @classmethod
    def from_file(cls, path: str | Path, backend: str = "onnxruntime", threads: int = 1
                  ) -> FaceDetector:
        return cls(load_model(path, backend, threads=threads))

    def detect_tiled(self, image_bgr: np.ndarray, min_score: float = CANDIDATE_SCORE
                     ) -> list[Face]:
        """Faces found in 4 overlapping tiles (each 60 % of the frame's width and height).

        The model sees a 128 px letterbox of the whole frame, so faces narrower than ~12 % of
        the frame width are often missed (benchmarks/face_size.py); in a tile they are 1.7x
        larger. Duplicates from overlapping tiles are merged (the higher score is kept).
        """
        h, w = image_bgr.shape[:2]
        th, tw = max(1, round(0.6 * h)), max(1, round(0.6 * w))
        found: list[Face] = []
        for y0 in (0, h - th):
            for x0 in (0, w - tw):
                for f in self.detect(image_bgr[y0:y0 + th, x0:x0 + tw]):
                    if f.score >= min_score:
                        b = f.box
                        found.append(Face((b[0] + x0, b[1] + y0, b[2] + x0, b[3] + y0),
                                          f.keypoints + [x0, y0], f.score))
        found.sort(key=lambda f: f.score, reverse=True)
        kept: list[Face] = []
        for f in found:
            if not kept or _iou(np.asarray(f.box), np.asarray([k.box for k in kept])).max() <= NMS_IOU:
                kept.append(f)
        return kept

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        """All faces with score >= 0.5, best first, in pixels of ``image_bgr``."""
        tensor, scale, pad_x, pad_y = _letterbox(image_bgr)
        regressors, logits = self._model.run(tensor)[:2]
        raw = regressors[0].astype(np.float64)
        # float64 before the sigmoid: exp() of large negative logits overflows float32.
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[0, :, 0].astype(np.float64), -100, 100)))
        keep = scores >= CANDIDATE_SCORE
        if not keep.any():
            return []
        raw, scores, anchors = raw[keep], scores[keep], _ANCHORS[keep]
        centre = raw[:, 0:2] / INPUT_SIZE + anchors
        size = raw[:, 2:4] / INPUT_SIZE
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
        kps = raw[:, 4:16].reshape(-1, 6, 2) / INPUT_SIZE + anchors[:, None, :]
        faces = []
        h, w = image_bgr.shape[:2]
        for box, kp, score in _weighted_nms(boxes, kps, scores):
            # From normalised letterbox coordinates back to input pixels.
            sx, sy = scale
            box_px = (box * INPUT_SIZE - [pad_x, pad_y, pad_x, pad_y]) / [sx, sy, sx, sy]
            kp_px = (kp * INPUT_SIZE - [pad_x, pad_y]) / [sx, sy]
            box_px = np.clip(box_px, 0, [w, h, w, h])
            faces.append(Face(tuple(float(v) for v in box_px), kp_px, score))
        return faces
