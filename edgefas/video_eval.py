"""Video-level evaluation: sessions over each Replay-Attack video's frames vs single frames.

Every frame of the 20-frames-per-video tree (devel and test) goes through the full Detector
once; the per-frame Results are cached, then replayed through :class:`~edgefas.session.Session`
under each candidate rule (window, min_frames, aggregate). The rule is chosen on **devel**
(lowest HTER at the bundle threshold, then the fewest frames needed) and reported once on
test, next to the frame-level figures of the same frames.

Counting: frame level scores the frames where a face was found (the others are failures to
acquire, reported, as in ``edgefas eval``). Video level counts every video; a session still
``pending`` at the end of its video is a rejection (a bona fide error, a correct attack
rejection), which is what a kiosk would do.

The verdict scored per video is the session's **first decided** verdict: a kiosk stops
watching once the session decides, so later frames do not get a say.
"""
from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from .bundle import manifest_sha256
from .data.face_cache import cache_root, file_stat
from .data.replay_attack import load_replay_attack
from .data.samples import Sample, video_key
from .detector import Detector
from .errors import DatasetError
from .metrics.iso30107 import Rate
from .result import Decision, Result
from .runtime import motion
from .runtime.face_align import ALIGN_VERSION
from .runtime.motion import Thumbnail
from .session import Session, SessionConfig, SessionState, Verdict

#: Replay-Attack's frame rate (frame times come from the frame index in the file name)
REPLAY_FPS = 25
#: candidate rules searched on devel (20 frames per video, 0.5-0.8 s apart in Replay-Attack)
MIN_FRAMES = (1, 2, 3, 5, 10, 20)
AGGREGATES = ("mean", "median")


def frame_results(det: Detector, samples: list[Sample], cache: Path | None = None,
                  progress: bool = True) -> list[Result]:
    """Detector Results for ``samples`` (one batched call per video), cached as JSON, with
    the frames' motion thumbnails in a compressed ``.npz`` beside it."""
    stats = [file_stat(s.path) for s in samples]
    thumbs_file = cache.with_suffix(".thumbs.npz") if cache is not None else None
    if cache is not None and cache.is_file() and thumbs_file.is_file():  # type: ignore[union-attr]
        rows = json.loads(cache.read_text())
        # the same files, unchanged since (a cache from before sessions compared faces'
        # appearance, or before files' sizes and times were kept, is made again)
        if [(r["path"], r.get("stat")) for r in rows] == [(s.path, st) for s, st in zip(samples, stats)] \
                and all("signature" in r for r in rows):
            with np.load(thumbs_file) as z:  # type: ignore[arg-type]
                names = set(z.files)
                # thumbnails made at the current size for these very rows (a cache from
                # another THUMB_SIDE, or a thumbnail file left from another run, is made again),
                # by a detector that made them as this one does (Detector(thumbnails=False)
                # writes none: read back, they would turn the motion check off unsaid)
                made = bool(z["thumbnails"]) if "thumbnails" in names else True
                wanted = det.thumbnails if det is not None else True
                if "thumb_side" in names and int(z["thumb_side"]) == motion.THUMB_SIDE \
                        and int(z["frames"]) == len(rows) and made == wanted:
                    return [_result_from(r, _thumb(z, names, i)) for i, r in enumerate(rows)]
    by_video: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        by_video[video_key(s)].append(i)
    out: list[Result | None] = [None] * len(samples)
    for idx in tqdm(by_video.values(), desc="scoring frames (per video)", unit="video",
                    disable=not progress):
        for i, r in zip(idx, det.batch([samples[i].path for i in idx])):
            out[i] = r
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {"thumb_side": np.int64(motion.THUMB_SIDE),
                                         "frames": np.int64(len(out)),
                                         "thumbnails": np.bool_(det.thumbnails)}
        for i, r in enumerate(out):
            if r is not None and r.thumbnail is not None:
                arrays[f"p{i}"] = r.thumbnail.pixels
                arrays[f"s{i}"] = np.float64(r.thumbnail.scale)
        np.savez_compressed(thumbs_file, **arrays)  # type: ignore[arg-type]
        cache.write_text(json.dumps([{"path": s.path, "stat": st,
                                      **r.to_dict(),  # type: ignore[union-attr]
                                      "signature": _pack(r.signature)}  # type: ignore[union-attr]
                                     for s, st, r in zip(samples, stats, out)]))
    return out  # type: ignore[return-value]


def _thumb(z: Any, names: set[str], i: int) -> Thumbnail | None:
    return Thumbnail(z[f"p{i}"], float(z[f"s{i}"])) if f"p{i}" in names else None


def _pack(sig: np.ndarray | None) -> str | None:
    # float16 is ample for a cosine of unit vectors and keeps the cache small
    return None if sig is None else base64.b64encode(sig.astype("<f2").tobytes()).decode()


def _unpack(text: str | None) -> np.ndarray | None:
    return None if text is None else np.frombuffer(base64.b64decode(text), "<f2").astype(np.float32)


def _result_from(d: dict[str, Any], thumb: Thumbnail | None = None) -> Result:
    return Result(Decision(d["decision"]), d["live_score"], d["threshold"],
                  tuple(d["box"]) if d["box"] else None, None, d["face_score"], {},
                  tuple(d["reasons"]), _unpack(d.get("signature")), thumb)


def _rates(accepted: np.ndarray, is_attack: np.ndarray, species: np.ndarray) -> dict[str, Any]:
    bona = ~is_attack
    bp = Rate(float((~accepted[bona]).mean()) if bona.any() else float("nan"),
              int((~accepted[bona]).sum()), int(bona.sum()))
    ap = {}
    for sp in sorted(set(species[is_attack])):
        m = is_attack & (species == sp)
        ap[sp] = Rate(float(accepted[m].mean()), int(accepted[m].sum()), int(m.sum()))
    n_att = int(is_attack.sum())
    pooled = Rate(float(accepted[is_attack].mean()) if n_att else float("nan"),
                  int(accepted[is_attack].sum()), n_att)
    # no attacks (a live-only tree): NaN rates, as for BPCER without bona fide
    worst = max(ap.values(), key=lambda r: r.value) if ap else pooled
    return {"bpcer": bp.to_dict(), "apcer": {k: v.to_dict() for k, v in ap.items()},
            "apcer_pooled": pooled.to_dict(), "apcer_max": worst.to_dict(),
            "hter": (pooled.value + bp.value) / 2, "hter_max": (worst.value + bp.value) / 2}


def frame_level(samples: list[Sample], results: list[Result], threshold: float
                ) -> dict[str, Any]:
    """APCER/BPCER/HTER over the frames where a face was scored (FTA reported)."""
    ok = np.array([r.live_score is not None for r in results])
    scores = np.array([r.live_score if r.live_score is not None else np.nan for r in results])
    is_attack = np.array([s.is_attack for s in samples])
    species = np.array([s.species for s in samples])
    out = _rates(scores[ok] >= threshold, is_attack[ok], species[ok])
    out["fta"] = {"frames": len(results), "failed": int((~ok).sum())}
    return out


def first_verdicts(groups: list[list[tuple[float, Result]]], threshold: float,
                   config: SessionConfig) -> list[Verdict]:
    """Per video, the first decided verdict of a session fed its (time, Result) frames (or
    the last verdict)."""
    out = []
    for frames in groups:
        s = Session(threshold=threshold, config=config)
        v = None
        for t, r in frames:
            v = s.feed(r, t=t).verdict
            if v.decided:
                break
        out.append(v)
    return out


def video_level(groups: list[list[tuple[float, Result]]], is_attack: np.ndarray, species: np.ndarray,
                threshold: float, config: SessionConfig) -> dict[str, Any]:
    return verdict_rates(first_verdicts(groups, threshold, config), is_attack, species)


def verdict_rates(verdicts: list[Verdict], is_attack: np.ndarray, species: np.ndarray
                  ) -> dict[str, Any]:
    """Video-level rates of each video's first verdict, with pending videos, frames to a
    decision and resets."""
    accepted = np.array([v.state is SessionState.LIVE for v in verdicts])
    out = _rates(accepted, is_attack, species)
    out["pending"] = int(sum(v.state is SessionState.PENDING for v in verdicts))
    decided = [v.frames for v in verdicts if v.decided]
    out["frames_to_decision_mean"] = float(np.mean(decided)) if decided else None
    out["resets"] = int(sum(v.resets for v in verdicts))
    return out


def frame_time(path: str) -> float:
    """Seconds into its video of a frame of the 20-frames tree (``frame_NNNNN.jpg``: the
    video's frame index; Replay-Attack is 25 fps). The tree samples each video evenly, so
    bona fide frames (15 s videos) are ~0.79 s apart and attack frames (9.6 s) ~0.5 s."""
    m = re.search(r"frame_(\d+)\.\w+$", path)
    if m is None:
        raise DatasetError(f"{path}: not a frame_NNNNN image of the 20-frames tree")
    return int(m.group(1)) / REPLAY_FPS


def _group(samples: list[Sample], results: list[Result]
           ) -> tuple[list[list[tuple[float, Result]]], np.ndarray, np.ndarray]:
    by: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        by[video_key(s)].append(i)
    keys = sorted(by)
    groups = [[(frame_time(samples[i].path), results[i])
               for i in sorted(by[k], key=lambda i: samples[i].path)] for k in keys]
    first = [samples[by[k][0]] for k in keys]
    return (groups, np.array([s.is_attack for s in first]),
            np.array([s.species for s in first]))


def _rule_fields(cfg: SessionConfig, chosen_on: str) -> dict[str, Any]:
    """How a reported session rule is recorded in the report."""
    return {"window": cfg.window, "min_frames": cfg.min_frames, "aggregate": cfg.aggregate,
            "min_iou": cfg.min_iou, "min_similarity": cfg.min_similarity,
            "max_missing": cfg.max_missing, "min_motion_ratio": cfg.min_motion_ratio,
            "motion_gap_s": cfg.motion_gap_s, "motion_pairs": cfg.motion_pairs,
            "chosen_on": chosen_on}


def _devel_hter(candidate: dict[str, Any]) -> float:
    """A candidate rule's devel HTER, rounded so that float noise cannot break a tie."""
    return round(candidate["hter"], 9)


def cache_dir_for(det: Detector, replay_frames: str | Path) -> Path:
    """Where the per-frame Results of ``det`` on one data tree are cached."""
    # every score and decision depends on the whole bundle (threshold, calibration, face
    # detector and policy: a calibrated copy shares the classifier file) and on the code that
    # crops, and a cache holds one data tree
    key = json.dumps([manifest_sha256(det.bundle.path), ALIGN_VERSION,
                      str(Path(replay_frames).resolve())])
    return cache_root() / "video_eval" / hashlib.sha256(key.encode()).hexdigest()[:12]


def run_video_eval(replay_frames: str | Path, *, bundle: str | Path | None = None,
                   cache_dir: Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Choose the session rule on devel, report frame- and video-level figures on test."""
    det = Detector(bundle)
    thr = det.threshold
    cache_dir = cache_dir or cache_dir_for(det, replay_frames)
    out: dict[str, Any] = {"bundle": det.bundle.name, "threshold": thr,
                           "threshold_source": det.bundle.manifest["threshold"]}
    data = {}
    for split in ("devel", "test"):
        samples = load_replay_attack(replay_frames, (split,))
        if any(s.frame >= 0 for s in samples):
            raise DatasetError(f"{replay_frames} holds videos: eval-video reads the tree of "
                               "frames (frames/replay_attack, 20 per video; shared/DATA.md)")
        results = frame_results(det, samples, cache_dir / f"{split}.json", progress)
        data[split] = (samples, results, *_group(samples, results))
    # rule selection on devel only
    search = []
    _, _, dgroups, datt, dsp = data["devel"]
    for m, agg in itertools.product(MIN_FRAMES, AGGREGATES):
        # The first decided verdict aggregates the first m scored frames, so any window >= m
        # gives the same verdict; window = m is recorded (a longer one only matters for the
        # rolling verdict after the decision).
        w = m
        cfg = SessionConfig(window=w, min_frames=m, aggregate=agg, timeout_s=None)
        r = video_level(dgroups, datt, dsp, thr, cfg)
        search.append({"window": w, "min_frames": m, "aggregate": agg, "hter": r["hter"],
                       "frames_to_decision_mean": r["frames_to_decision_mean"]})
    best = min(search, key=lambda r: (_devel_hter(r), r["frames_to_decision_mean"] or 99,
                                      r["window"]))
    cfg = SessionConfig(window=best["window"], min_frames=best["min_frames"],
                        aggregate=best["aggregate"], timeout_s=None)
    out["rule"] = {**_rule_fields(cfg, "devel"),
                   "criterion": "lowest devel video HTER at the bundle threshold, then fewest "
                                "frames to a decision"}
    out["devel_search"] = search
    # What `Detector.session()` does with no arguments, reported beside the devel-chosen
    # rule (never chosen by this evaluation): the figure an integrator who keeps the
    # defaults gets. Timeouts are off as for every rule here (frames are 0.5-0.8 s apart).
    default = SessionConfig(timeout_s=None)
    out["default_rule"] = _rule_fields(default, "none: SessionConfig's defaults")
    # the same defaults without the motion check: what the check adds, on devel and test
    still_ok = SessionConfig(timeout_s=None, min_motion_ratio=None)
    for split, (samples, results, groups, att, sp) in data.items():
        out[split] = {
            "videos": {"bona_fide": int((~att).sum()), "attack": int(att.sum())},
            "frame_level": frame_level(samples, results, thr),
            "video_level": video_level(groups, att, sp, thr, cfg),
        }
        # each default session replayed once, for its rates and for the videos the check changes
        on = first_verdicts(groups, thr, default)
        off = first_verdicts(groups, thr, still_ok)
        out[split]["video_level_default"] = verdict_rates(on, att, sp)
        out[split]["video_level_default_no_motion"] = verdict_rates(off, att, sp)
        out[split]["motion_changed"] = motion_changes(samples, on, off, att, sp)
    return out


def motion_changes(samples: list[Sample], on: list[Verdict], off: list[Verdict],
                   is_attack: np.ndarray, species: np.ndarray) -> list[dict[str, Any]]:
    """The videos whose first verdict the motion check changes (``on``: with it, ``off``:
    without, per video in ``_group``'s order, i.e. sorted by :func:`video_key`), with the
    statistic it saw."""
    keys = sorted({video_key(s) for s in samples})
    return [{"video": k, "attack": bool(a), "species": str(sp), "with": v1.state.value,
             "without": v0.state.value,
             "motion": None if v1.motion is None else round(v1.motion, 4)}
            for k, a, sp, v1, v0 in zip(keys, is_attack, species, on, off) if v1.state != v0.state]


def tie_note(search: list[dict[str, Any]]) -> str:
    """How many candidate rules shared the best devel HTER: when many tie (a nearly separable
    devel set), the tie-break, not the data, chose the rule, and the reader should know."""
    best = min(_devel_hter(r) for r in search)
    tied = [r for r in search if _devel_hter(r) == best]
    if len(tied) == 1:
        return (f"Devel search: {len(search)} candidate rules; the chosen one alone has the "
                f"lowest devel video HTER ({100 * best:.2f}%).")
    frames = sorted({r["min_frames"] for r in tied})
    span = str(frames[0]) if len(frames) == 1 else f"{frames[0]}-{frames[-1]}"
    return (f"Devel search: {len(search)} candidate rules; {len(tied)} of them (min_frames "
            f"{span}) tie at the lowest devel video HTER ({100 * best:.2f}%), "
            "so the tie-break (fewest frames to a decision) chose among them, not the devel data.")


def _motion_text(rule: dict[str, Any]) -> str:
    r = rule.get("min_motion_ratio")
    if r is None:
        return ", motion check off"
    return (f", motion check: face/background motion ratio >= {r} over "
            f"{rule['motion_pairs']}+ frame pairs >= {rule['motion_gap_s']} s apart")


def to_markdown(rep: dict[str, Any], command: str) -> str:
    """The README/benchmark table: frame vs video level on devel and test, per species."""
    def pct(r: dict[str, Any]) -> str:
        return f"{100 * r['value']:.2f}% ({r['errors']}/{r['count']})"

    rule = rep["rule"]
    lines = [f"# Video-level vs frame-level, {rep['bundle']} at the devel threshold "
             f"{rep['threshold']:.4f}", "", f"Command: `{command}`", "",
             f"Session rule chosen on devel: window {rule['window']}, min_frames "
             f"{rule['min_frames']}, {rule['aggregate']}, min_iou {rule['min_iou']}"
             + _motion_text(rule) + "; the verdict is the session's first decided one (pending "
             "at the end of a video = rejected). Frame times come from the frame index (25 fps).",
             "", tie_note(rep["devel_search"]), ""]
    if "default_rule" in rep:
        d = rep["default_rule"]
        lines += [f"The default session (`Detector.session()` with no arguments: window "
                  f"{d['window']}, min_frames {d['min_frames']}, {d['aggregate']}"
                  + _motion_text(d) + "; timeouts off here as for every rule) is reported "
                  "beside it, and again without its motion check; neither was chosen by this "
                  "evaluation, on devel or test.", ""]
    species = sorted(rep["test"]["frame_level"]["apcer"])
    head = ["split", "level", "units (bona fide / attack)", "BPCER",
            *[f"APCER {s}" for s in species], "APCER pooled", "HTER", "HTER (APCER max)"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    labels = {"frame_level": "frame", "video_level": "video (devel-chosen rule)",
              "video_level_default": "video (default session)",
              "video_level_default_no_motion": "video (default session, motion check off)"}
    for split in ("devel", "test"):
        for level in (lv for lv in labels if lv in rep[split]):
            r = rep[split][level]
            n_b, n_a = r["bpcer"]["count"], r["apcer_pooled"]["count"]
            unit = "frames" if level == "frame_level" else "videos"
            row = [split, labels[level], f"{n_b} / {n_a} {unit}", pct(r["bpcer"]),
                   *[pct(r["apcer"][s]) for s in species], pct(r["apcer_pooled"]),
                   f"{100 * r['hter']:.2f}%", f"{100 * r['hter_max']:.2f}%"]
            lines.append("| " + " | ".join(row) + " |")
    for split in ("devel", "test"):
        fl, vl = rep[split]["frame_level"], rep[split]["video_level"]
        lines += ["", f"{split}: frames without a scored face {fl['fta']['failed']}/"
                      f"{fl['fta']['frames']}; devel-chosen rule: videos still pending "
                      f"{vl['pending']}, session resets {vl['resets']}, mean frames to a "
                      f"decision {vl['frames_to_decision_mean']}"]
        if "video_level_default" in rep[split]:
            dl = rep[split]["video_level_default"]
            lines[-1] += (f"; default session: pending {dl['pending']}, resets {dl['resets']}, "
                          f"mean frames to a decision {dl['frames_to_decision_mean']}")
        changed = rep[split].get("motion_changed")
        if changed:
            lines += ["", f"{split}: videos whose default-session verdict the motion check "
                          "changes (without -> with, motion statistic):"]
            lines += [f"- {c['video']} ({'attack, ' + c['species'] if c['attack'] else 'bona fide'}):"
                      f" {c['without']} -> {c['with']}, "
                      + ("-" if c["motion"] is None else f"{c['motion']:.3f}") for c in changed]
    return "\n".join(lines) + "\n"

