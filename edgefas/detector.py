"""``edgefas.Detector``: a camera frame in, a typed :class:`Result` out.

Thread safety: a Detector holds only read-only state after construction (the bundle, the
preprocessing contract and onnxruntime sessions, whose ``run`` is thread-safe), so one
instance may be shared by any number of threads; ``tests/test_detector.py`` checks that
concurrent calls give the same results as sequential ones.
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .bundle import Bundle, load_bundle
from .checks import is_whole_number
from .errors import BundleError, EdgefasError, InputTypeError
from .result import Decision, Result
from .runtime.backends import PRECISIONS, auto_backend, get_backend, load_model
from .runtime.calibration import apply_platt
from .runtime.decode import DEFAULT_MAX_SIDE_PX, decode_image
from .runtime.face_detect import FaceDetector
from .runtime.face_signature import face_signature
from .runtime.face_stage import FaceOutcome, FaceStage
from .runtime.motion import thumbnail
from .runtime.preprocess import to_tensor

if TYPE_CHECKING:
    from .session import Session


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 3)


class Detector:
    """Face anti-spoofing on single frames.

    Args:
        bundle: a bundle folder, or None for the default bundle shipped with edgefas.
        backend: inference engine for the classifier and face detector: "onnxruntime",
            "openvino", "litert", "coreml" (macOS), "tensorrt" (NVIDIA), or "auto" (the first
            installed one the bundle has files for; see ``backends.AUTO_ORDER``).
        precision: "fp32" (default), or "fp16" / "int8" when the bundle holds such an export
            for this backend (``edgefas export BUNDLE --target ... --precision ...``).
        threads: intra-op threads per model. 1 is the fastest on busy 2-core devices.
        color_order: channel order of numpy array inputs: "bgr" (OpenCV, default) or "rgb".
        max_side_px: longer frames are refused with ``bad_input``.
        manifest_sha256: pin the bundle's manifest (``edgefas.bundle.manifest_sha256``) so that
            an edited threshold or calibration is refused; the shipped bundle is always pinned.
        far_faces: on frames where no face is found, look again in 4 overlapping tiles: finds
            faces down to ~8 % of the frame width (~50 px at 640x480) at 4 more
            face-detector runs per empty frame. Off by default; the published figures are
            measured without it.
        thumbnails: keep a small grey copy of each scored frame on its Result
            (``Result.thumbnail``, ~19 KB at 160 px), which video sessions compare to tell a
            still image from a person (``SessionConfig.min_motion_ratio``). False saves the
            memory and ~0.3 ms a frame for single-image uses that keep many Results; sessions
            on such a detector skip their motion check and say so.

    Raises:
        BundleError: the bundle is missing, malformed or a file fails its sha256 check.
        BackendUnavailable: the backend is unknown or not installed.

    Example:
        >>> import edgefas
        >>> det = edgefas.Detector()
        >>> r = det("face.jpg")            # a path, encoded bytes or an HxWx3 uint8 array
        >>> r.decision, r.live_score       # e.g. ("live", 0.97)
    """

    def __init__(self, bundle: str | os.PathLike[str] | Bundle | None = None, *,
                 backend: str = "onnxruntime", precision: str = "fp32", threads: int = 1,
                 color_order: str = "bgr",
                 max_side_px: int = DEFAULT_MAX_SIDE_PX, manifest_sha256: str | None = None,
                 far_faces: bool = False, thumbnails: bool = True) -> None:
        if color_order not in ("bgr", "rgb"):
            raise InputTypeError(f"color_order must be 'bgr' or 'rgb', got {color_order!r}")
        if bundle is not None and not isinstance(bundle, (str, os.PathLike, Bundle)):
            raise InputTypeError(f"bundle must be a folder path or a Bundle, got {type(bundle).__name__}")
        if precision not in PRECISIONS:
            raise InputTypeError(f"precision must be one of {', '.join(PRECISIONS)}, "
                                 f"got {precision!r}")
        for name, value, low in (("threads", threads, 1), ("max_side_px", max_side_px, 64)):
            if not is_whole_number(value, low):
                raise InputTypeError(f"{name} must be a whole number >= {low}, got {value!r}")
        if not isinstance(thumbnails, bool):
            raise InputTypeError(f"thumbnails must be True or False, got {thumbnails!r}")
        self.thumbnails = thumbnails
        self.bundle = (bundle if isinstance(bundle, Bundle)
                       else load_bundle(bundle, manifest_sha256=manifest_sha256))
        if backend == "auto":
            have = self.bundle.manifest["models"]["classifier"]
            backend = auto_backend(lambda key: key in have, precision)
        spec = get_backend(backend)
        self.backend = backend
        self.color_order = color_order
        self.max_side_px = max_side_px
        self.contract = self.bundle.contract
        self.threshold = self.bundle.threshold
        cal = self.bundle.calibration
        self._cal_a, self._cal_b = float(cal["a"]), float(cal["b"])
        face_key, face_backend = spec.face
        face_model = _load(self.bundle, "face_detector", face_key, face_backend, threads)
        self.precision = precision
        key = spec.model_key(precision, self.bundle.manifest["models"]["classifier"])
        self._classifier = _load(self.bundle, "classifier", key, backend, threads)
        self._check_classifier_input()
        self.face_stage = FaceStage(FaceDetector(face_model), self.bundle.face_policy,
                                    size=self.contract.size, crop_scale=self.contract.crop_scale,
                                    far_faces=far_faces)

    def _check_classifier_input(self) -> None:
        # one blank crop through the classifier now, so a contract that does not fit the
        # model (another size or layout) fails here, once, not on every frame later
        c = self.contract
        try:
            out = self.live_logits(np.zeros((1, c.size, c.size, 3), np.uint8))
        except EdgefasError:
            raise
        except Exception as exc:  # each engine raises its own types
            raise BundleError(f"bundle {self.bundle.name!r}: its classifier does not take the "
                              f"contract's {c.size}x{c.size} {c.layout} input ({exc})") from None
        if out.shape != (1,):
            raise BundleError(f"bundle {self.bundle.name!r}: its classifier gives {out.shape} "
                              "outputs per face, not one live logit")

    @classmethod
    def from_bundle(cls, path: str | os.PathLike[str], backend: str = "onnxruntime",
                    **kwargs) -> Detector:
        """Load the bundle at ``path`` (see :class:`Detector` for the other arguments)."""
        return cls(path, backend=backend, **kwargs)

    # -- scoring --------------------------------------------------------------------------
    def live_logits(self, crops_bgr: np.ndarray) -> np.ndarray:
        """The classifier's raw live logits of aligned (N, S, S, 3) uint8 BGR crops (before
        calibration; ``edgefas calibrate`` refits the calibration on them)."""
        return self._classifier.run(to_tensor(crops_bgr, self.contract))[0].reshape(-1)

    def live_scores(self, crops_bgr: np.ndarray) -> np.ndarray:
        """Calibrated live probabilities of aligned (N, S, S, 3) uint8 BGR crops."""
        return apply_platt(self.live_logits(crops_bgr), self._cal_a, self._cal_b)

    def face_crop(self, image: object) -> tuple[np.ndarray | None, Result | None]:
        """The aligned face crop of ``image`` the classifier would score, or ``(None, r)``
        with the typed Result (no face, bad input, ...) when there is none."""
        prepared, timings = self._prepare(image)
        if isinstance(prepared, Result):
            return None, prepared
        if prepared.decision is not None:
            return None, self._result(prepared, None, timings)
        return prepared.alignment.crop, None

    def _prepare(self, image: object) -> tuple[FaceOutcome | Result, dict[str, float]]:
        timings: dict[str, float] = {}
        t = time.perf_counter()
        decoded = decode_image(image, color_order=self.color_order, max_side_px=self.max_side_px)
        timings["decode"] = _ms(t)
        if decoded.image is None:
            return Result(Decision.BAD_INPUT, None, self.threshold, timings_ms=timings,
                          reasons=decoded.reasons), timings
        t = time.perf_counter()
        outcome = self.face_stage.find(decoded.image)
        timings["detect"] = _ms(t)
        if outcome.decision is None:
            t = time.perf_counter()
            outcome = self.face_stage.align(decoded.image, outcome)
            timings["align"] = _ms(t)
        # only a face ready to score gets a thumbnail: sessions compare scored frames alone
        thumb = None
        if outcome.decision is None and self.thumbnails:
            t = time.perf_counter()
            thumb = thumbnail(decoded.image)
            timings["thumbnail"] = _ms(t)
        outcome = FaceOutcome(outcome.decision, outcome.face, outcome.alignment,
                              decoded.reasons + outcome.reasons, thumb)
        return outcome, timings

    def _result(self, outcome: FaceOutcome, score: float | None, timings: dict[str, float]
                ) -> Result:
        face, al = outcome.face, outcome.alignment
        box = tuple(round(v, 2) for v in face.box) if face is not None else None
        lms = tuple((round(float(x), 2), round(float(y), 2)) for x, y in al.landmarks5) \
            if al is not None else None
        if outcome.decision is not None:
            decision, reasons = outcome.decision, outcome.reasons
        else:
            decision = Decision.LIVE if score >= self.threshold else Decision.SPOOF
            reasons = outcome.reasons + (
                f"live_score {score:.3f} {'>=' if decision is Decision.LIVE else '<'} "
                f"threshold {self.threshold:.3f}",)
        sig = face_signature(al.crop) if al is not None and al.crop is not None else None
        return Result(decision, score, self.threshold, box, lms,
                      face.score if face is not None else None, timings, reasons, sig,
                      outcome.thumbnail)

    def __call__(self, image: object) -> Result:
        """Score one frame: a path, encoded bytes, or an HxWx3 uint8 array (see
        ``color_order``). Never raises for a bad image; see :class:`Result`.

        Raises:
            InputTypeError: ``image`` is not a path, bytes or numpy array.
        """
        t0 = time.perf_counter()
        prepared, timings = self._prepare(image)
        if isinstance(prepared, Result):
            timings["total"] = _ms(t0)
            return prepared
        score = None
        if prepared.decision is None:
            t = time.perf_counter()
            score = float(self.live_scores(prepared.alignment.crop[None])[0])
            timings["score"] = _ms(t)
        timings["total"] = _ms(t0)
        return self._result(prepared, score, timings)

    def batch(self, images: Iterable[object] | Sequence[object]) -> list[Result]:
        """Score many frames; faces are classified together in one batched call.

        Per-image ``timings_ms`` hold that image's decode/detect/align times; ``score`` is the
        batched call's time divided among the faces scored.
        """
        if isinstance(images, (str, os.PathLike, bytes, bytearray, memoryview, np.ndarray)) \
                or not isinstance(images, Iterable):
            # one image where a list was meant would be scored piece by piece (characters,
            # bytes or array rows): say so instead
            raise InputTypeError(f"batch() takes a list of images, got {type(images).__name__}; "
                                 "call the detector itself for one image")
        prepared = [self._prepare(im) for im in images]
        ready = [i for i, (p, _) in enumerate(prepared)
                 if isinstance(p, FaceOutcome) and p.decision is None]
        scores: dict[int, float] = {}
        if ready:
            t = time.perf_counter()
            crops = np.stack([prepared[i][0].alignment.crop for i in ready])
            for i, s in zip(ready, self.live_scores(crops)):
                scores[i] = float(s)
            per = _ms(t) / len(ready)
            for i in ready:
                prepared[i][1]["score"] = round(per, 3)
        out = []
        for i, (p, timings) in enumerate(prepared):
            timings["total"] = round(sum(v for k, v in timings.items() if k != "total"), 3)
            out.append(p if isinstance(p, Result) else self._result(p, scores.get(i), timings))
        return out

    def session(self, **config: object) -> Session:
        """A video :class:`~edgefas.session.Session` on this detector: feed it frames one by
        one for a per-frame Result and a smoothed, face-tracked verdict. Keyword arguments
        set :class:`~edgefas.session.SessionConfig` (window, min_frames, min_iou,
        max_missing, timeout_s, aggregate, min_similarity, min_motion_ratio, motion_gap_s,
        motion_pairs) or ``threshold``/``clock``."""
        from .session import Session

        return Session(self, **config)

    def __repr__(self) -> str:
        return (f"Detector(bundle={self.bundle.name!r}, backend={self.backend!r}, "
                f"precision={self.precision!r}, "
                f"threshold={self.threshold:.3f})")


def _load(bundle: Bundle, role: str, key: str, backend: str, threads: int):
    """A bundle model loaded by ``backend``; an unreadable file (even one whose hash matches
    the manifest, e.g. a bundle built from a broken export) is a BundleError, not an engine's
    own exception type."""
    path = bundle.model_file(role, key)
    try:
        return load_model(path, backend, threads=threads)
    except EdgefasError:
        raise
    except Exception as exc:
        raise BundleError(f"bundle {bundle.name!r}: {backend} cannot load its {role} "
                          f"{path.name} ({exc})") from None
