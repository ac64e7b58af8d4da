"""Video sessions: frames in one by one, a per-frame :class:`Result` and one stable verdict out.

A kiosk watches a face for a second or two and wants one answer. Single frames flicker (motion
blur, a blink, a reflection), so the session smooths the live score over the last ``window``
scored frames and only decides once ``min_frames`` frames of the *same* face were scored.
A face that jumps (box IoU with the tracked face below ``min_iou``), whose appearance changes
at the same place (signature similarity below ``min_similarity``: another person, or a photo of
someone else held where the face was) or that disappears for more than ``max_missing`` frames
starts a new session, so a verdict does not carry over from one face to the next (appearance is
compared coarsely: a look-alike under the same light can pass; see ``min_similarity``). A session that
has not decided after ``timeout_s`` says ``timeout``.

The aggregation is separate from the Detector (:meth:`Session.feed` takes a ready Result),
so stored per-frame results can be replayed under other settings, e.g. to choose
``window``/``min_frames`` on a development split (``edgefas eval-video``).

Example:
    >>> import edgefas
    >>> det = edgefas.Detector()
    >>> s = det.session(window=10, min_frames=5)
    >>> for frame in frames:                     # HxWx3 BGR arrays from a camera
    ...     step = s(frame)
    ...     if step.verdict.decided:
    ...         break
    >>> step.verdict.state, step.verdict.score   # e.g. ("live", 0.93)
"""
from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .checks import is_finite_number, is_whole_number
from .errors import EdgefasError, InputTypeError
from .result import Decision, Result
from .runtime.face_signature import signature_similarity
from .runtime.motion import Thumbnail, motion_ratio

if TYPE_CHECKING:
    from .detector import Detector

#: SessionConfig.min_motion_ratio's default: see docs/session_motion/decision.md
MOTION_RATIO_DEFAULT = 1.35
#: motion ratios kept per track (the check uses the most recent ones; never fewer than
#: SessionConfig.motion_pairs)
MOTION_HISTORY = 20

#: Frame decisions that carry a live score and so count towards the verdict.
SCORED = (Decision.LIVE, Decision.SPOOF)


class SessionState(str, enum.Enum):
    """Where a session stands. ``live`` and ``spoof`` are final answers for the kiosk."""

    PENDING = "pending"   # not enough consistent frames yet
    LIVE = "live"
    SPOOF = "spoof"
    TIMEOUT = "timeout"   # no decision within timeout_s

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class SessionConfig:
    """How a session aggregates frames.

    Attributes:
        window: the verdict score is the mean of the last ``window`` live scores of the face.
        min_frames: scored frames of the same face needed before deciding.
        min_iou: a face box overlapping the tracked one less than this is a new face: reset.
        max_missing: more than this many frames in a row without a scored face reset the
            session (the person left); fewer are skipped.
        timeout_s: seconds from the first frame with a face without a decision ->
            ``timeout`` (None: never); empty frames before a face appears do not count. Time
            comes from the ``t`` passed with each frame, else the session's clock (one or the
            other for a whole session). ``timeout`` is reported while there is still no
            decision; a kiosk stops there (or calls :meth:`Session.reset`).
        aggregate: "mean" or "median" of the window's scores.
        min_similarity: a scored face whose appearance signature is less similar than this
            to the tracked face's (the mean direction of its signatures so far) is another
            face at the same place: reset (None: boxes only). 0.85, set on Replay-Attack
            devel (``benchmarks/face_signature.py``): none of 6,839 frames falls below it
            against its own video's track, 85.3 % of 1,800 frames of another person under the
            same conditions do. Results without a signature (e.g. read back from JSON) are
            tracked by their boxes alone.
        min_motion_ratio: a session only says ``live`` once its face has moved more than its
            background: the 75th percentile of the face/background motion ratios of frame
            pairs at least ``motion_gap_s`` apart (see :mod:`edgefas.runtime.motion`) must
            reach this; below it the verdict is ``spoof`` (a still image: a photo or a screen
            on a stand). None turns the check off. The default was set on Replay-Attack
            devel (``benchmarks/motion_cue.py``, ``docs/session_motion/``). Frames whose
            Result has no thumbnail (read back from JSON) skip the check, as do faces that
            fill the frame or are too small to compare (reason given).
        motion_gap_s: the least time between the two frames of a motion pair.
        motion_pairs: pairs needed before the check can pass; a frame score below the
            threshold still decides ``spoof`` without waiting for them.
    """

    window: int = 10
    min_frames: int = 5
    min_iou: float = 0.3
    max_missing: int = 10
    timeout_s: float | None = 10.0
    aggregate: str = "mean"
    min_similarity: float | None = 0.85
    min_motion_ratio: float | None = MOTION_RATIO_DEFAULT
    motion_gap_s: float = 0.4
    motion_pairs: int = 3

    def __post_init__(self) -> None:
        for name, low in (("window", 1), ("min_frames", 1), ("max_missing", 0),
                          ("motion_pairs", 1)):
            v = getattr(self, name)
            if not is_whole_number(v, low):
                raise EdgefasError(f"{name} must be a whole number >= {low}, got {v!r}")
        if not is_finite_number(self.min_iou) or not 0.0 <= self.min_iou <= 1.0:
            raise EdgefasError(f"min_iou must be in [0, 1], got {self.min_iou!r}")
        if self.timeout_s is not None and not (is_finite_number(self.timeout_s) and self.timeout_s > 0):
            # NaN would never time out; a string would fail on the first frame
            raise EdgefasError(f"timeout_s must be a positive number of seconds or None, got "
                               f"{self.timeout_s!r}")
        if self.min_similarity is not None and not (is_finite_number(self.min_similarity)
                                                    and -1.0 <= self.min_similarity <= 1.0):
            raise EdgefasError(f"min_similarity must be in [-1, 1] or None, got {self.min_similarity!r}")
        if self.min_motion_ratio is not None and not (is_finite_number(self.min_motion_ratio)
                                                      and self.min_motion_ratio >= 0):
            raise EdgefasError(f"min_motion_ratio must be a number >= 0 or None, got "
                               f"{self.min_motion_ratio!r}")
        if not (is_finite_number(self.motion_gap_s) and self.motion_gap_s >= 0):
            raise EdgefasError(f"motion_gap_s must be a number of seconds >= 0, got "
                               f"{self.motion_gap_s!r}")
        if self.aggregate not in ("mean", "median"):
            raise EdgefasError(f"aggregate must be 'mean' or 'median', got {self.aggregate!r}")


@dataclass(frozen=True)
class Verdict:
    """The session's answer after a frame.

    Attributes:
        state: pending, live, spoof or timeout.
        score: the aggregated live score of the tracked face (None before any scored frame).
        threshold: the bundle threshold the score is compared with.
        frames: scored frames of the tracked face so far (the window holds the last ones).
        resets: how many times the session restarted (new face, face lost).
        elapsed_s: time since a face first appeared in this attempt (0 before one did): the
            clock ``timeout_s`` is measured on. A new face at the place of the old one (box
            jump, other appearance) does not restart it, or a flickering face would never time
            out; a face gone for more than ``max_missing`` frames (the person left) and
            :meth:`Session.reset` do.
        reasons: why it stands where it stands.
        motion: the face/background motion ratio the motion check compares with
            ``min_motion_ratio`` (None before enough frame pairs, or with the check off).
    """

    state: SessionState
    score: float | None
    threshold: float
    frames: int
    resets: int
    elapsed_s: float
    reasons: tuple[str, ...] = ()
    motion: float | None = None

    @property
    def decided(self) -> bool:
        return self.state in (SessionState.LIVE, SessionState.SPOOF)

    @property
    def is_live(self) -> bool:
        return self.state is SessionState.LIVE

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["state"] = self.state.value
        d["reasons"] = list(self.reasons)
        return d


@dataclass(frozen=True)
class Step:
    """One frame's outcome: the frame's own :class:`Result` and the session :class:`Verdict`."""

    result: Result
    verdict: Verdict

    def to_dict(self) -> dict[str, Any]:
        return {"result": self.result.to_dict(), "verdict": self.verdict.to_dict()}


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class _Track:
    scores: deque[float]
    box: tuple[float, ...] | None = None
    # sum of the face's signatures so far: its direction is the track's appearance, steadier
    # than any one frame (the detector's landmarks jump between a few alignments of one face)
    signature_sum: np.ndarray | None = None
    frames: int = 0
    missing: int = 0
    reasons: list[str] = field(default_factory=list)
    # motion: the frame the next pair starts from (time, thumbnail, box), the pairs' ratios,
    # the pairs that could not give one (face too small or filling the frame), and the
    # scored frames that came with a thumbnail
    motion_ref: tuple[float, Thumbnail, tuple[float, ...]] | None = None
    ratios: deque[float] = field(default_factory=lambda: deque(maxlen=MOTION_HISTORY))
    unmeasurable: int = 0
    thumbnails: int = 0


class Session:
    """Aggregates frames of one face into a verdict (see the module docstring).

    Not thread-safe: one session per camera stream. Its memory is bounded by ``window``.

    Args:
        detector: scores each frame; may be None when only :meth:`feed` is used.
        threshold: decision threshold on the aggregated score (default: the detector's).
        config: a :class:`SessionConfig`; keyword overrides go to it.
        clock: seconds, used when a frame comes without ``t`` (default ``time.monotonic``).
    """

    def __init__(self, detector: Detector | None = None, *, threshold: float | None = None,
                 config: SessionConfig | None = None,
                 clock: Callable[[], float] = time.monotonic, **overrides: Any) -> None:
        if threshold is None:
            if detector is None:
                raise EdgefasError("Session needs a detector or a threshold")
            threshold = detector.threshold
        if not is_finite_number(threshold) or not 0.0 <= threshold <= 1.0:
            raise EdgefasError(f"threshold must be a live score in [0, 1], got {threshold!r}")
        self.detector = detector
        self.threshold = float(threshold)
        base = config or SessionConfig()
        self.config = SessionConfig(**{**asdict(base), **overrides}) if overrides else base
        self.clock = clock
        self.resets = 0
        self._track = self._new_track()
        self._started: float | None = None      # when a face first appeared in this attempt
        self._no_face_run = 0                   # frames in a row without any face
        self._explicit_t: bool | None = None    # frames come with t (True) or use the clock
        self._last_t: float | None = None       # the previous frame's time

    def _new_track(self) -> _Track:
        # a history shorter than motion_pairs could never hold enough ratios to decide
        return _Track(deque(maxlen=self.config.window),
                      ratios=deque(maxlen=max(MOTION_HISTORY, self.config.motion_pairs)))

    def reset(self, reason: str | None = None, *, restart_clock: bool = True) -> None:
        """Forget the tracked face; the next scored frame starts a new one. The timeout clock
        starts again at the next face unless ``restart_clock`` is False (the session's own
        resets for a face that jumped or changed at the same place)."""
        self.resets += 1
        self._track = self._new_track()
        if restart_clock:
            self._started = None
        if reason:
            self._track.reasons.append(reason)

    def __call__(self, frame: object, t: float | None = None) -> Step:
        """Score ``frame`` with the detector and update the session."""
        if self.detector is None:
            raise EdgefasError("this Session has no detector: use feed(result)")
        return self.feed(self.detector(frame), t)

    def feed(self, result: Result, t: float | None = None) -> Step:
        """Update the session with an already computed per-frame ``result``."""
        if not isinstance(result, Result):
            raise InputTypeError(f"feed() takes a Result (from the detector), got "
                                 f"{type(result).__name__}; call the session with a frame instead")
        if t is not None and not is_finite_number(t):
            # an infinite or NaN time would make elapsed (and the timeout) and motion pairs
            # meaningless for the rest of the session
            raise EdgefasError(f"a frame time t must be a finite number of seconds, got {t!r}")
        if self._explicit_t is None:
            self._explicit_t = t is not None
        elif self._explicit_t != (t is not None):
            # a frame time from the source mixed with the clock's would make elapsed nonsense
            raise EdgefasError("this session's frames came " + ("with" if self._explicit_t else "without")
                               + " a time t; give every frame one, or none")
        now = self.clock() if t is None else float(t)
        if self._last_t is not None and now < self._last_t:
            # a looped file, a restarted stream or a clock set back: elapsed, the timeout and
            # the motion pairs of the frames before mean nothing against this one's time
            self.reset(f"frame time went backwards ({now:g} s after {self._last_t:g} s): new session")
        self._last_t = now
        self._no_face_run = 0 if result.box is not None else self._no_face_run + 1
        if self._started is None and result.box is not None:
            self._started = now
        tr = self._track
        if result.decision in SCORED and result.box is not None:
            if tr.box is not None and box_iou(tr.box, result.box) < self.config.min_iou:
                self.reset(f"face moved or changed (box IoU < {self.config.min_iou}): new session",
                           restart_clock=False)
                tr = self._track
            elif (sim := self._similarity(tr, result.signature)) is not None \
                    and sim < self.config.min_similarity:  # type: ignore[operator]
                self.reset(f"another face at the same place (appearance similarity {sim:.2f} < "
                           f"{self.config.min_similarity}): new session", restart_clock=False)
                tr = self._track
            tr.box = result.box
            if result.signature is not None:
                tr.signature_sum = (result.signature.astype(np.float32) if tr.signature_sum is None
                                    else tr.signature_sum + result.signature)
            tr.scores.append(float(result.live_score))
            tr.frames += 1
            tr.missing = 0
            self._motion(tr, result, now)
        elif tr.frames:
            tr.missing += 1
            if tr.missing > self.config.max_missing:
                # the track is stale either way; the attempt (and its timeout clock) ends only
                # if nobody is there: a face too small or too dark all along is still a person
                self.reset(f"no scored face for {tr.missing} frames: new session",
                           restart_clock=self._no_face_run > self.config.max_missing)
                tr = self._track
        if self._no_face_run > self.config.max_missing:
            self._started = None   # the person left: the next face starts a new attempt
        return Step(result, self._verdict(now))

    def _motion(self, tr: _Track, result: Result, now: float) -> None:
        """Add a motion pair when this frame is ``motion_gap_s`` after the track's last one."""
        if self.config.min_motion_ratio is None:
            return
        if result.thumbnail is None:
            return
        tr.thumbnails += 1
        ref = tr.motion_ref
        if ref is not None and (now - ref[0] < self.config.motion_gap_s or now == ref[0]):
            # too soon: keep the older frame as the pair's start. A frame at the same time is
            # a repeat (a camera that hands out its last frame again), and would look still.
            return
        if ref is not None:
            r = motion_ratio(ref[1], ref[2], result.thumbnail, result.box)  # type: ignore[arg-type]
            if r is None:
                tr.unmeasurable += 1
            else:
                tr.ratios.append(r)
        tr.motion_ref = (now, result.thumbnail, result.box)  # type: ignore[assignment]

    def _similarity(self, tr: _Track, new: np.ndarray | None) -> float | None:
        """Similarity of a frame's signature to the tracked face's (None: nothing to compare)."""
        if self.config.min_similarity is None or new is None or tr.signature_sum is None:
            return None
        norm = float(np.linalg.norm(tr.signature_sum))
        return signature_similarity(tr.signature_sum / norm, new) if norm > 0 else None

    def _verdict(self, now: float) -> Verdict:
        tr, cfg = self._track, self.config
        elapsed = round(now - self._started, 6) if self._started is not None else 0.0
        score = None
        if tr.scores:
            agg = np.mean if cfg.aggregate == "mean" else np.median
            score = float(agg(np.fromiter(tr.scores, float)))
        reasons = tuple(tr.reasons)
        motion = None
        if cfg.min_motion_ratio is not None and len(tr.ratios) >= cfg.motion_pairs:
            motion = float(np.percentile(np.fromiter(tr.ratios, float), 75))
        if tr.frames >= cfg.min_frames:
            state = SessionState.LIVE if score >= self.threshold else SessionState.SPOOF
            reasons += (f"{cfg.aggregate} live score of the last {len(tr.scores)} frames "
                        f"{score:.3f} {'>=' if state is SessionState.LIVE else '<'} threshold "
                        f"{self.threshold:.3f}",)
            if state is SessionState.LIVE and cfg.min_motion_ratio is not None:
                state, why = self._motion_check(tr, motion, elapsed)
                reasons += (why,)
        elif cfg.timeout_s is not None and elapsed >= cfg.timeout_s:
            state = SessionState.TIMEOUT
            reasons += (f"only {tr.frames} of {cfg.min_frames} scored frames after "
                        f"{elapsed:.1f} s",)
        else:
            state = SessionState.PENDING
            reasons += (f"{tr.frames} of {cfg.min_frames} scored frames",)
        return Verdict(state, score, self.threshold, tr.frames, self.resets, elapsed, reasons,
                       motion)

    def _motion_check(self, tr: _Track, motion: float | None, elapsed: float
                      ) -> tuple[SessionState, str]:
        """The state of a session whose score says live, after the motion check."""
        cfg = self.config
        if motion is not None:
            if motion >= cfg.min_motion_ratio:  # type: ignore[operator]
                return SessionState.LIVE, (f"face moves more than its background (motion ratio "
                                           f"{motion:.2f} >= {cfg.min_motion_ratio})")
            return SessionState.SPOOF, (f"face moves no more than its background (motion ratio "
                                        f"{motion:.2f} < {cfg.min_motion_ratio}): a still image")
        if tr.thumbnails == 0:
            # Results read back without thumbnails (e.g. from JSON): nothing to compare; the
            # score alone decides, as boxes alone track faces without signatures
            return SessionState.LIVE, "motion check skipped: the frames carry no thumbnails"
        if tr.unmeasurable >= cfg.motion_pairs:
            # a face too small, or filling the frame with no background to compare with
            return SessionState.LIVE, (f"motion check skipped: {tr.unmeasurable} frame pairs "
                                       "could not be compared (face too small or filling the "
                                       "frame)")
        if cfg.timeout_s is not None and elapsed >= cfg.timeout_s:
            return SessionState.TIMEOUT, (f"only {len(tr.ratios)} of {cfg.motion_pairs} motion "
                                          f"pairs after {elapsed:.1f} s")
        return SessionState.PENDING, (f"waiting for motion: {len(tr.ratios)} of "
                                      f"{cfg.motion_pairs} frame pairs >= {cfg.motion_gap_s} s "
                                      "apart")
