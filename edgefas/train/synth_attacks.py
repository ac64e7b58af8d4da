"""Synthetic print and screen attacks made from live face crops, for labelled augmentation.

Replay-Attack has one printer, one phone and one tablet. A model that learns attacks from them
learns those media, and lets other labs' prints through (P5: NUAA). This turns training live
crops into pseudo attacks with the physics of a recapture, so the attack class covers many more
faces, cameras and media: the hand-made baseline of the pipeline's DiffFAS step (a learned
live -> spoof generator).

- **print**: a printer's gamut (contrast compressed, blacks lifted, colours desaturated), a
  halftone dot screen (two crossed cosines at a random pitch and angle), paper texture (blurred
  noise), uneven light across the sheet, and the blur of recapturing it;
- **screen**: a display's tone curve and cool cast, a moire beat between the screen's pixel grid
  and the camera's (a low-frequency cosine at a random angle), a faint pixel-row pattern, a
  specular glare blob, and recapture blur.

The ranges are set once from what printers and screens do, not fitted to any data. The camera
augmentation (:mod:`edgefas.train.camera_aug`) is applied afterwards to every crop, real or
synthetic, as the camera that films the attack would. Draws come from the caller's generator,
so a resumed run sees the same batches.
"""
from __future__ import annotations

import cv2
import numpy as np


def _grid(s: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:s, 0:s].astype(np.float32)
    return x, y


def _rotated(x: np.ndarray, y: np.ndarray, theta: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = np.cos(theta), np.sin(theta)
    return x * c + y * s, -x * s + y * c


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigma)


def synth_print(crop: np.ndarray, rng: np.random.Generator, texture: bool = True) -> np.ndarray:
    """A live (S, S, 3) uint8 BGR crop as if printed on paper and filmed; uint8 out.
    ``texture=False`` keeps the print's tone (gamut, uneven light, blur) without its dots and
    paper: a label-preserving augmentation for live crops (the draws are the same)."""
    s = crop.shape[0]
    img = crop.astype(np.float32)
    # gamut: a print reflects less than a face; no deep blacks, duller colours
    grey = img.mean(axis=2, keepdims=True)
    img = grey + (img - grey) * rng.uniform(0.55, 0.9)
    img = img * rng.uniform(0.6, 0.9) + rng.uniform(10, 45)
    x, y = _grid(s)
    # halftone: a dot screen, darker where ink is; pitch 2.5-6 px in the crop
    u, v = _rotated(x, y, rng.uniform(0, np.pi / 2))
    f = 1.0 / rng.uniform(2.5, 6.0)
    dots = 0.5 + 0.5 * np.cos(2 * np.pi * f * u) * np.cos(2 * np.pi * f * v)
    depth = rng.uniform(0.04, 0.14)
    if texture:
        img = img * (1 - depth * dots[..., None])
    # paper texture and uneven light across the sheet
    paper = _blur(rng.normal(0, 1, (s, s)).astype(np.float32), rng.uniform(1.0, 3.0))
    amount = rng.uniform(2, 8)
    if texture:
        img = img + paper[..., None] * amount / max(float(paper.std()), 1e-6)
    gu, _ = _rotated(x, y, rng.uniform(0, 2 * np.pi))
    img = img * (1 + rng.uniform(-0.15, 0.15) * (gu / s))[..., None]
    img = _blur(img, rng.uniform(0.3, 1.0))
    return np.clip(img, 0, 255).astype(np.uint8)


def synth_screen(crop: np.ndarray, rng: np.random.Generator, texture: bool = True) -> np.ndarray:
    """A live (S, S, 3) uint8 BGR crop as if shown on a phone or tablet and filmed.
    ``texture=False`` keeps the screen's tone (curve, cast, glare, blur) without its moire and
    pixel rows (the draws are the same)."""
    s = crop.shape[0]
    img = crop.astype(np.float32)
    # a display's tone curve and colour temperature (BGR: blue up, red down)
    g = rng.uniform(0.75, 1.25)
    img = 255.0 * (img / 255.0) ** g
    img = img * np.array([rng.uniform(1.0, 1.15), rng.uniform(0.97, 1.05), rng.uniform(0.85, 1.0)],
                         np.float32)
    x, y = _grid(s)
    # moire: the beat of the screen's pixel grid against the camera's, 8-50 px per period
    u, _ = _rotated(x, y, rng.uniform(0, np.pi))
    moire = np.cos(2 * np.pi * u / rng.uniform(8, 50) + rng.uniform(0, 2 * np.pi))
    depth = rng.uniform(0.02, 0.08)
    if texture:
        img = img * (1 + depth * moire)[..., None]
    # the pixel rows themselves, 2-4 px apart, faint
    rows = np.cos(2 * np.pi * y / rng.uniform(2.0, 4.0))
    depth = rng.uniform(0.01, 0.04)
    if texture:
        img = img * (1 + depth * rows)[..., None]
    if rng.random() < 0.5:   # glare: a broad bright blob where a light reflects
        cx, cy = rng.uniform(0, s, 2)
        r = rng.uniform(0.15, 0.5) * s
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))
        img = img + rng.uniform(15, 60) * blob[..., None]
    img = _blur(img, rng.uniform(0.3, 1.0))
    return np.clip(img, 0, 255).astype(np.uint8)


def synth_attack(crop: np.ndarray, rng: np.random.Generator, texture: bool = True) -> np.ndarray:
    """A print or a screen replay (even odds) of a live crop; ``texture=False``: only the
    medium's tone, for live crops (so tone alone stops being an attack cue)."""
    if rng.random() < 0.5:
        return synth_print(crop, rng, texture)
    return synth_screen(crop, rng, texture)
