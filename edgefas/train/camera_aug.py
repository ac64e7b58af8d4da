"""Capture-pipeline augmentation: make a crop look as if another camera had taken it.

The baseline learns live faces from one webcam (Replay-Attack) plus LFW press photos, and
rejects many live faces from other cameras (P4). Cameras differ in resolution, optics
(blur), in-camera sharpening, sensor noise, tone curve and JPEG compression; none of these
tells a live face from an attack, so each is drawn for bona fide and attack crops alike, and
the label never changes. Colour casts stay out of this pipeline, as in the basic augmentation (a
print's or a screen's colour was taken for an attack cue); :func:`light_change` (``edgefas
train --light``) adds exposure and white-balance changes to both classes, after
benchmarks/capture_light.py showed a warm cast or a dark room letting most devel attacks through.

Every effect is applied with its own probability so that most crops keep their original
fine texture (moire, print dots), which the classifier still needs; the draws come from the
caller's generator, so a resumed training run sees the same batches.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class CameraAug:
    """Probabilities and ranges of each capture effect. A recipe records only the name
    ``augment="camera"``; these defaults are what that name means."""

    p_resolution: float = 0.3
    resolution: tuple[float, float] = (0.4, 0.9)   # shrink factor before scaling back up
    p_blur: float = 0.15
    blur_sigma: tuple[float, float] = (0.4, 1.2)
    p_sharpen: float = 0.15
    sharpen_amount: tuple[float, float] = (0.3, 1.0)  # unsharp mask, sigma 1 px
    p_noise: float = 0.3
    noise_sigma: tuple[float, float] = (1.0, 6.0)  # grey levels, per pixel and channel
    p_gamma: float = 0.3
    gamma: tuple[float, float] = (0.7, 1.4)
    p_jpeg: float = 0.4
    jpeg_quality: tuple[int, int] = (30, 95)


def _resolution(img: np.ndarray, f: float) -> np.ndarray:
    s = img.shape[0]
    small = max(8, round(s * f))
    down = cv2.resize(img, (small, small), interpolation=cv2.INTER_AREA)
    return cv2.resize(down, (s, s), interpolation=cv2.INTER_LINEAR)


def capture_effects(img: np.ndarray, rng: np.random.Generator, cfg: CameraAug | None = None
                    ) -> np.ndarray:
    """One (S, S, 3) uint8 crop through a random capture pipeline; uint8 out, same shape.

    Order follows a camera: optics and resolution, then sensor noise, then the tone curve
    and in-camera sharpening, then JPEG. ``cfg`` None is :class:`CameraAug`'s defaults.
    """
    cfg = cfg or CameraAug()
    out = img
    if rng.random() < cfg.p_resolution:
        out = _resolution(out, rng.uniform(*cfg.resolution))
    # blur and sharpening are alternatives: one draw decides which (if any) applies
    u = rng.random()
    blur = u < cfg.p_blur
    sharpen = cfg.p_blur <= u < cfg.p_blur + cfg.p_sharpen
    if blur:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(*cfg.blur_sigma))
    if rng.random() < cfg.p_noise:
        noise = rng.normal(0.0, rng.uniform(*cfg.noise_sigma), out.shape)
        out = np.clip(out.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if rng.random() < cfg.p_gamma:
        g = rng.uniform(*cfg.gamma)
        lut = np.clip(255.0 * (np.arange(256) / 255.0) ** g + 0.5, 0, 255).astype(np.uint8)
        out = cv2.LUT(out, lut)
    if sharpen:
        soft = cv2.GaussianBlur(out, (0, 0), 1.0).astype(np.float32)
        a = rng.uniform(*cfg.sharpen_amount)
        out = np.clip(out.astype(np.float32) * (1 + a) - soft * a, 0, 255).astype(np.uint8)
    if rng.random() < cfg.p_jpeg:
        q = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(out), [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:  # encoding a valid uint8 image does not fail; keep the crop if it ever does
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return out


def capture_batch(batch: np.ndarray, rng: np.random.Generator, cfg: CameraAug | None = None
                  ) -> np.ndarray:
    """:func:`capture_effects` on each crop of an (N, S, S, 3) uint8 batch."""
    cfg = cfg or CameraAug()
    return np.stack([capture_effects(img, rng, cfg) for img in batch])


#: share of training crops whose light is changed by :func:`light_change`
LIGHT_P = 0.5


def linear_gain_lut(gain: float) -> np.ndarray:
    """A 256-entry uint8 table: sRGB level -> linear light x ``gain``, clipped -> sRGB level."""
    v = np.arange(256, dtype=np.float64) / 255.0
    lin = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4) * gain
    lin = np.clip(lin, 0.0, 1.0)
    out = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def relight(img: np.ndarray, red: float, green: float, blue: float) -> np.ndarray:
    """A BGR uint8 image as recorded with these linear-light channel gains (clipped)."""
    return cv2.merge([cv2.LUT(np.ascontiguousarray(img[..., i]), linear_gain_lut(k))
                      for i, k in enumerate((blue, green, red))])


def light_change(img: np.ndarray, rng: np.random.Generator, ev: float, wb: float,
                 p: float = LIGHT_P) -> np.ndarray:
    """One BGR uint8 crop under other light, with probability ``p``: exposure and white balance.

    The exposure gain is 2**u, u uniform in +-``ev`` stops; the white balance moves red and blue
    against each other in linear light, R x (1 + w), B x (1 - w), w uniform in +-``wb`` (a warm
    or a cool cast left uncorrected by the camera). Drawn for bona fide and attack crops alike:
    neither the brightness of the room nor the colour of its light tells a face from a print,
    but a model that learnt Replay-Attack's attacks by their colour and level accepts them
    under a warm lamp or in a dim room (benchmarks/results/capture_light_devel.md).
    """
    if rng.random() >= p:
        return img
    gain = 2.0 ** rng.uniform(-ev, ev)
    w = rng.uniform(-wb, wb)
    return relight(img, gain * (1 + w), gain, gain * (1 - w))


def light_batch(batch: np.ndarray, rng: np.random.Generator, ev: float, wb: float) -> np.ndarray:
    """:func:`light_change` on every crop of an (N, S, S, 3) uint8 batch."""
    return np.stack([light_change(img, rng, ev, wb) for img in batch])


def alignment_jitter(img: np.ndarray, rng: np.random.Generator, scale: float, degrees: float,
                     subpixel: float = 1.0) -> np.ndarray:
    """One (H, W, 3) uint8 crop re-warped as a slightly different alignment would have made it.

    The face detector reads a 128 px letterbox, so its keypoints, and the similarity transform
    fitted to them, move between frames of a still face: on Replay-Attack train and LFW train
    faces moved by one detector pixel, the crop changes scale by up to 2.5 %, turns by up to
    1.9 degrees and shifts by up to 1.0 px (95th percentiles, benchmarks/align_jitter.py,
    benchmarks/results/align_jitter_train.md). Off the training cameras the shipped model's
    decision flips on such moves (on 20 of 207 moves of CFD's devel-bucket portraits). Here
    the crop is warped about its centre by a scale change uniform in +-``scale``, a rotation
    uniform in +-``degrees`` and a shift uniform in +-``subpixel`` px, bilinear with reflected
    borders (which also changes the resampling phase, as a real re-alignment does); the label
    never changes.
    """
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), rng.uniform(-degrees, degrees),
                                1.0 + rng.uniform(-scale, scale))
    m[:, 2] += rng.uniform(-subpixel, subpixel, size=2)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT_101)


def jitter_batch(batch: np.ndarray, rng: np.random.Generator, scale: float, degrees: float
                 ) -> np.ndarray:
    """:func:`alignment_jitter` on every crop of a (N, S, S, 3) uint8 batch."""
    return np.stack([alignment_jitter(img, rng, scale, degrees) for img in batch])
