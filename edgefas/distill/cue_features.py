"""Hand-made features for the cue evaluation: the colour + frequency reference and spoof-cue statistics.

``colour_frequency_stats`` is the reference every diffusion cue has to beat: a logistic
regression on 20 simple colour and frequency statistics of the face reached test AUC .978 on
small Replay-Attack subsets and .989 on the full P1 splits (``shared/notes/diffusion-cpu.md``).
It is computed on the centre region of the aligned crop (by default the central half: the 64 px
interior of the 128 px crop, where the notes measured it), so background, hair and the paper or
screen border do not enter. All its measures are global (bands of the whole spectrum, variances):
none looks at the 8x8 JPEG block grid, whose strength depends on how a data set was encoded
rather than on the attack.

``cue_stats`` summarises a spoof cue (input minus its restored live version, the output of
:func:`edgefas.distill.cue_eval.compute_cues`), and ``mean_abs_cue`` is the fixed, unsupervised
score (its sign is fixed on train by the evaluation).

numpy + OpenCV only; every function takes a whole batch.
"""
from __future__ import annotations

import cv2
import numpy as np

#: the 20 reference statistics, in column order. Colours are on [0, 1] pixel values; Cr and Cb
#: follow OpenCV's YCrCb (0.5 = grey); saturation is HSV's (max - min) / max. The FFT is of the
#: Hann-windowed grey face minus its mean; bands are radial in cycles per pixel (Nyquist 0.5,
#: "hi" runs out to the corners) and given as fractions of the AC power.
STAT_NAMES: tuple[str, ...] = (
    "mean_r", "mean_g", "mean_b", "std_r", "std_g", "std_b",
    "mean_cr", "mean_cb", "std_cr", "std_cb", "mean_sat", "std_sat",
    "fft_frac_0_to_1/16", "fft_frac_1/16_to_1/8", "fft_frac_1/8_to_1/4", "fft_frac_above_1/4",
    "fft_log10_hi_over_lo",      # log10(power above 1/4 / power below 1/16)
    "fft_log10_hf_peak",         # log10(max / median power above 1/8): moire, print dots, pixel grids
    "log10_laplacian_var",       # sharpness
    "log10_blur_residual",       # energy of grey - GaussianBlur(grey, sigma 2): the notes' simple cue
)

#: statistics of a spoof cue (values in the contract's [-1, 1] units, channels in RGB order).
CUE_STAT_NAMES: tuple[str, ...] = (
    "mean_abs", "mean_abs_r", "mean_abs_g", "mean_abs_b", "std",
    "mean_r", "mean_g", "mean_b",  # signed: a colour cast survives as a non-zero mean
    "mean_abs_chroma",             # |cue - its mean over channels|: the coloured part of the cue
    "hf_rms", "hf_fraction",       # grey cue minus its sigma-1 blur: fine texture (moire, dots)
    "q50_abs", "q90_abs", "q99_abs",
)

_BANDS = (0.0, 1 / 16, 1 / 8, 1 / 4, np.inf)
_EPS = 1e-10


def centre_region(images: np.ndarray, fraction: float = 0.5, *, channels_first: bool = False) -> np.ndarray:
    """The central ``fraction`` of each image's side, for (N, S, S, C) or (N, C, S, S) batches."""
    if not 0 < fraction <= 1:
        raise ValueError(f"centre fraction must be in (0, 1], got {fraction}")
    side = images.shape[2] if channels_first else images.shape[1]
    c = max(1, int(round(side * fraction)))
    o = (side - c) // 2
    return images[:, :, o:o + c, o:o + c] if channels_first else images[:, o:o + c, o:o + c]


def _check_crops(crops: np.ndarray) -> None:
    if not isinstance(crops, np.ndarray) or crops.dtype != np.uint8 or crops.ndim != 4 \
            or crops.shape[3] != 3 or crops.shape[1] != crops.shape[2]:
        raise ValueError(f"crops must be an (N, S, S, 3) uint8 BGR array, got {type(crops).__name__} "
                         f"{getattr(crops, 'shape', None)} {getattr(crops, 'dtype', '')}")


def _blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """GaussianBlur of each (H, W) float32 image of an (N, H, W) batch (reflect borders)."""
    return np.stack([cv2.GaussianBlur(im, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
                     for im in images]) if len(images) else images


def _radius(side: int) -> np.ndarray:
    f = np.fft.fftfreq(side)
    return np.hypot(f[:, None], f[None, :])


def colour_frequency_stats(crops_uint8_bgr: np.ndarray, *, centre: float = 0.5) -> np.ndarray:
    """The 20 reference statistics (:data:`STAT_NAMES`) of each crop; (N, 20) float32.

    ``crops_uint8_bgr``: (N, S, S, 3) uint8 BGR aligned crops (the crop cache's format).
    ``centre``: fraction of the side kept around the centre (1 = the whole crop).
    """
    _check_crops(crops_uint8_bgr)
    n = len(crops_uint8_bgr)
    if n == 0:
        return np.zeros((0, len(STAT_NAMES)), np.float32)
    rgb = centre_region(crops_uint8_bgr, centre)[..., ::-1].astype(np.float32) / 255.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cr, cb = 0.713 * (r - y) + 0.5, 0.564 * (b - y) + 0.5      # OpenCV's YCrCb, on [0, 1]
    vmax, vmin = rgb.max(-1), rgb.min(-1)
    sat = np.where(vmax > 0, (vmax - vmin) / np.maximum(vmax, _EPS), 0.0)
    flat = lambda a: a.reshape(n, -1)
    colour = [rgb.reshape(n, -1, 3).mean(1), rgb.reshape(n, -1, 3).std(1),
              np.stack([flat(cr).mean(1), flat(cb).mean(1)], 1),
              np.stack([flat(cr).std(1), flat(cb).std(1)], 1),
              np.stack([flat(sat).mean(1), flat(sat).std(1)], 1)]

    # Frequency statistics of the grey face. The Hann window keeps the crop's edges from
    # spreading a cross of power over every band.
    side = y.shape[1]
    win = np.outer(np.hanning(side), np.hanning(side)).astype(np.float32)
    power = np.abs(np.fft.fft2((y - y.mean((1, 2), keepdims=True)) * win)) ** 2
    rad = _radius(side)
    ac = rad > 0
    total = power[:, ac].sum(1) + _EPS
    bands = np.stack([power[:, ac & (rad > lo if i else rad >= lo) & (rad <= hi)].sum(1) / total
                      for i, (lo, hi) in enumerate(zip(_BANDS[:-1], _BANDS[1:]))], 1)
    hi_over_lo = np.log10((bands[:, 3] + _EPS) / (bands[:, 0] + _EPS))
    hf = power[:, rad > 1 / 8]
    peak = np.log10((hf.max(1) + _EPS) / (np.median(hf, 1) + _EPS))
    lap = y[:, :-2, 1:-1] + y[:, 2:, 1:-1] + y[:, 1:-1, :-2] + y[:, 1:-1, 2:] - 4 * y[:, 1:-1, 1:-1]
    lap_var = np.log10(flat(lap).var(1) + _EPS)
    residual = np.log10(flat((y - _blur(y.astype(np.float32), 2.0)) ** 2).mean(1) + _EPS)
    freq = [bands, np.stack([hi_over_lo, peak, lap_var, residual], 1)]
    out = np.concatenate(colour + freq, 1).astype(np.float32)
    assert out.shape == (n, len(STAT_NAMES))
    return out


def _as_nchw(cue) -> np.ndarray:
    """A float32 (N, 3, S, S) numpy view of a numpy array or CPU/GPU torch tensor in either layout."""
    if hasattr(cue, "detach"):
        cue = cue.detach().cpu().numpy()
    cue = np.asarray(cue, dtype=np.float32)
    if cue.ndim != 4:
        raise ValueError(f"a cue batch must be 4-D, (N, 3, S, S) or (N, S, S, 3); got shape {cue.shape}")
    if cue.shape[1] == 3:
        return cue
    if cue.shape[3] == 3:
        return cue.transpose(0, 3, 1, 2)
    raise ValueError(f"a cue batch needs 3 channels first or last; got shape {cue.shape}")


def mean_abs_cue(cue, *, centre: float = 1.0) -> np.ndarray:
    """The fixed, unsupervised score: mean |cue| over the (centre region of the) face; (N,) float64."""
    x = centre_region(_as_nchw(cue), centre, channels_first=True)
    return np.abs(x).reshape(len(x), -1).mean(1).astype(np.float64)


def cue_stats(cue, *, centre: float = 1.0) -> np.ndarray:
    """Summary statistics (:data:`CUE_STAT_NAMES`) of a batch of spoof cues; (N, 14) float32.

    ``cue``: (N, 3, S, S) or (N, S, S, 3) float (numpy or torch), in the contract's [-1, 1] units
    and RGB channel order, as ``compute_cues`` returns it. ``centre``: fraction of the side kept
    (use 0.5 when the teacher ran on the whole 128 px crop, to look at the same face region as
    the reference statistics).
    """
    x = centre_region(_as_nchw(cue), centre, channels_first=True)
    n = len(x)
    if n == 0:
        return np.zeros((0, len(CUE_STAT_NAMES)), np.float32)
    a = np.abs(x)
    per_ch = a.reshape(n, 3, -1)
    grey = x.mean(1)
    chroma = np.abs(x - grey[:, None]).reshape(n, -1).mean(1)
    hf = grey - _blur(grey.astype(np.float32), 1.0)
    hf_energy = (hf ** 2).reshape(n, -1).mean(1)
    grey_energy = ((grey - grey.mean((1, 2), keepdims=True)) ** 2).reshape(n, -1).mean(1)
    q = np.quantile(a.reshape(n, -1), [0.5, 0.9, 0.99], axis=1).T
    out = np.concatenate([
        a.reshape(n, -1).mean(1, keepdims=True), per_ch.mean(2), x.reshape(n, -1).std(1, keepdims=True),
        x.reshape(n, 3, -1).mean(2), chroma[:, None],
        np.sqrt(hf_energy)[:, None], (hf_energy / (grey_energy + _EPS))[:, None], q,
    ], 1).astype(np.float32)
    assert out.shape == (n, len(CUE_STAT_NAMES))
    return out
