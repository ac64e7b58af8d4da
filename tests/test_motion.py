"""The motion check of video sessions: a still image is not a person."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edgefas import Decision, EdgefasError, Session, SessionConfig, SessionState
from edgefas.cli import main
from edgefas.runtime.motion import Thumbnail, motion_ratio, thumbnail
from edgefas.session import MOTION_RATIO_DEFAULT

from .conftest import face_clip

BOX = (200.0, 100.0, 440.0, 380.0)   # about where face_clip's face is


def _ratio(a: np.ndarray, b: np.ndarray, box_a=BOX, box_b=BOX) -> float | None:
    return motion_ratio(thumbnail(a), box_a, thumbnail(b), box_b)


def test_a_moving_face_over_a_still_background_moves_more_than_it(astronaut_bgr):
    f = face_clip(astronaut_bgr, 3)
    moved = (BOX[0] + 8, BOX[1], BOX[2] + 8, BOX[3])
    assert _ratio(f[0], f[2], BOX, moved) > 3.0


def test_a_still_image_does_not(astronaut_bgr):
    # only noise changed. (A hand-held photo, shifted whole, is not caught: its textured face
    # changes more than a smooth background; the module docstring says so.)
    still = face_clip(astronaut_bgr, 2, still=True)
    assert _ratio(still[0], still[1]) < 1.3


def test_no_ratio_without_a_background_or_with_frames_of_other_sizes(astronaut_bgr):
    f = face_clip(astronaut_bgr, 2)
    assert _ratio(f[0], f[1], (0, 0, 640, 480), (0, 0, 640, 480)) is None      # face fills it
    assert _ratio(f[0], f[1], (10, 10, 20, 20), (10, 10, 20, 20)) is None      # 5 px wide
    assert _ratio(f[0], cv2.resize(f[1], (320, 240))) is None
    t = thumbnail(f[0])
    assert t.pixels.shape == (120, 160) and t.scale == pytest.approx(0.25)
    assert not t.pixels.flags.writeable
    flat = Thumbnail(np.zeros((120, 160), np.uint8), 0.25)
    assert motion_ratio(flat, BOX, flat, BOX) == 0.0  # a noiseless still: no division by zero


def _session_on(detector, frames, gap_s=0.5, **config):
    s = detector.session(timeout_s=None, **config)
    steps = [s(fr, t=i * gap_s) for i, fr in enumerate(frames)]
    return steps


def test_a_session_says_live_for_a_moving_face_and_spoof_for_a_still_one(detector, astronaut_bgr):
    steps = _session_on(detector, face_clip(astronaut_bgr, 5), min_frames=2)
    assert all(st.result.decision is Decision.LIVE for st in steps)
    # 2 frames are enough for the score, not for motion: 3 pairs >= 0.4 s apart are
    v = steps[1].verdict
    assert v.state is SessionState.PENDING and "waiting for motion: 1 of 3" in v.reasons[-1]
    v = steps[3].verdict
    assert v.state is SessionState.LIVE and v.motion >= MOTION_RATIO_DEFAULT
    assert "moves more than its background" in v.reasons[-1]
    still = _session_on(detector, face_clip(astronaut_bgr, 5, still=True), min_frames=2)
    assert all(st.result.decision is Decision.LIVE for st in still)   # each frame fools the model
    v = still[3].verdict
    assert v.state is SessionState.SPOOF and v.motion < MOTION_RATIO_DEFAULT
    assert "still image" in v.reasons[-1]
    assert json.loads(json.dumps(still[3].to_dict()))["verdict"]["motion"] == pytest.approx(v.motion)
    # the check off: the score alone decides, at min_frames
    off = _session_on(detector, face_clip(astronaut_bgr, 2, still=True), min_frames=2,
                      min_motion_ratio=None)
    assert off[1].verdict.state is SessionState.LIVE and off[1].verdict.motion is None


def test_a_spoof_score_decides_without_waiting_for_motion(detector, astronaut_bgr):
    s = detector.session(min_frames=2, threshold=1.0, timeout_s=None)
    v = [s(fr, t=i * 0.04) for i, fr in enumerate(face_clip(astronaut_bgr, 2))][-1].verdict
    assert v.state is SessionState.SPOOF and v.motion is None


def test_pairs_need_the_gap_and_a_session_without_them_times_out(detector, astronaut_bgr):
    frames = face_clip(astronaut_bgr, 8)
    fast = _session_on(detector, frames, gap_s=0.04)    # 8 frames in 0.3 s: no pair yet
    assert fast[-1].verdict.state is SessionState.PENDING and fast[-1].verdict.motion is None
    s = detector.session(timeout_s=1.0, motion_gap_s=2.0)
    v = [s(fr, t=i * 0.2) for i, fr in enumerate(frames)][-1].verdict
    assert v.state is SessionState.TIMEOUT and "motion pairs" in v.reasons[-1]


def test_results_without_thumbnails_skip_the_check_and_say_so(detector, astronaut_bgr):
    from edgefas import Result

    r = detector(face_clip(astronaut_bgr, 1)[0])
    bare = Result(r.decision, r.live_score, r.threshold, r.box, signature=r.signature)
    s = Session(threshold=r.threshold, min_frames=2)
    v = [s.feed(bare, t=i) for i in range(2)][-1].verdict
    assert v.state is SessionState.LIVE and "no thumbnails" in v.reasons[-1]


def test_a_face_filling_the_frame_skips_the_check_after_motion_pairs(detector, astronaut_bgr):
    from dataclasses import replace

    r = detector(face_clip(astronaut_bgr, 1)[0])
    h, w = r.thumbnail.pixels.shape
    full = replace(r, box=(0.0, 0.0, w / r.thumbnail.scale, h / r.thumbnail.scale))
    s = Session(threshold=r.threshold, min_frames=2, motion_pairs=2)
    steps = [s.feed(full, t=i) for i in range(3)]
    assert steps[1].verdict.state is SessionState.PENDING
    v = steps[2].verdict
    assert v.state is SessionState.LIVE and "could not be compared" in v.reasons[-1]


def test_motion_settings_are_checked():
    for bad in ({"min_motion_ratio": -1}, {"min_motion_ratio": float("nan")},
                {"motion_gap_s": -0.1}, {"motion_pairs": 0}, {"motion_pairs": 1.5}):
        with pytest.raises(EdgefasError):
            SessionConfig(**bad)


def test_watch_times_numbered_frames_by_their_number(tmp_path):
    from pathlib import Path

    from edgefas.watch import frame_times

    names = [Path(f"frame_{n:05d}.jpg") for n in (0, 13, 25)]
    assert frame_times(names, 25) == pytest.approx([0, 0.52, 1.0])
    assert frame_times([Path("a.jpg"), Path("b.jpg")], 25) == [0, 0.04]
    assert frame_times([Path("3.jpg"), Path("2.jpg")], 10) == [0, 0.1]   # not rising


@pytest.mark.parametrize("still,verdict", [(False, "live"), (True, "spoof")])
def test_watch_on_a_folder_of_sampled_frames(tmp_path, astronaut_bgr, capsys, still, verdict):
    # every 12th frame of a 25 fps video, as in Replay-Attack's 20-frames tree
    for i, fr in enumerate(face_clip(astronaut_bgr, 6, still=still)):
        cv2.imwrite(str(tmp_path / f"frame_{12 * i:05d}.png"), fr)
    assert main(["watch", str(tmp_path), "--json", "--stop-on-decision"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines[-1]["verdict"]["state"] == verdict
    assert lines[1]["t"] == pytest.approx(0.48)


def _moving_results(n: int, seed: int = 0):
    """Scored Results of a face box over a still background whose face pixels change."""
    from edgefas import Result

    rng = np.random.default_rng(seed)
    bg = rng.integers(0, 255, (120, 160), dtype=np.uint8)
    out = []
    for _ in range(n):
        px = bg.copy()
        px[30:90, 50:110] = rng.integers(0, 255, (60, 60), dtype=np.uint8)   # the face changes
        px.setflags(write=False)
        out.append(Result(Decision.LIVE, 0.9, 0.5, (50.0, 30.0, 110.0, 90.0), None, 0.9, {}, (),
                          None, Thumbnail(px, 1.0)))
    return out


def test_more_motion_pairs_than_the_history_keeps_can_still_decide():
    # the session kept only the last 20 ratios: motion_pairs=25 waited for ever
    s = Session(threshold=0.5, min_frames=1, motion_pairs=25, timeout_s=None)
    v = [s.feed(r, t=0.5 * i) for i, r in enumerate(_moving_results(30))][-1].verdict
    assert v.state is SessionState.LIVE and v.motion is not None


@pytest.mark.parametrize("t", [float("nan"), float("inf"), -float("inf")])
def test_a_frame_time_that_is_not_a_finite_number_is_refused(t):
    s = Session(threshold=0.5, min_frames=1)
    r = _moving_results(1)[0]
    with pytest.raises(EdgefasError, match="finite"):
        s.feed(r, t=t)
    # the refused frame did not fix the session's mode: frames with or without t still go in
    assert s.feed(r, t=1.0).verdict.frames == 1


def test_cached_thumbnails_of_another_size_are_made_again(detector, replay_tree, tmp_path,
                                                           monkeypatch):
    from edgefas.data.replay_attack import load_replay_attack
    from edgefas.runtime import motion
    from edgefas.video_eval import frame_results

    samples = load_replay_attack(replay_tree[0], ("test",))
    cache = tmp_path / "test.json"
    first = [r for r in frame_results(detector, samples, cache, progress=False) if r.thumbnail]
    assert first and all(max(r.thumbnail.pixels.shape) == 160 for r in first)
    monkeypatch.setattr(motion, "THUMB_SIDE", 80)
    again = [r for r in frame_results(detector, samples, cache, progress=False) if r.thumbnail]
    assert again and all(max(r.thumbnail.pixels.shape) == 80 for r in again)


def test_a_detector_without_thumbnails_saves_them_and_its_sessions_say_the_check_is_skipped(
        astronaut_bgr):
    import edgefas

    det = edgefas.Detector(thumbnails=False)
    frames = face_clip(astronaut_bgr, 2, still=True)
    assert det(frames[0]).thumbnail is None and "thumbnail" not in det(frames[0]).timings_ms
    s = det.session(min_frames=2, timeout_s=None)
    v = [s(f, t=i * 0.5) for i, f in enumerate(frames)][-1].verdict
    assert v.state is SessionState.LIVE and "no thumbnails" in v.reasons[-1]
    with pytest.raises(TypeError):
        edgefas.Detector(thumbnails="yes")


def test_the_watch_overlay_shows_the_motion_ratio(detector, astronaut_bgr):
    from edgefas.watch import annotate

    frames = face_clip(astronaut_bgr, 5)
    steps = _session_on(detector, frames, min_frames=2)
    plain = annotate(frames[0], steps[0])              # no ratio yet
    with_ratio = annotate(frames[3], steps[3])
    assert steps[3].verdict.motion is not None
    # the banner is wider with the "motion 2.34" text in it
    banner = lambda img: int((img[:22].astype(int).sum(-1) > 0).any(0).sum())  # noqa: E731
    assert banner(with_ratio) > banner(plain)


def test_a_cache_made_without_thumbnails_is_not_read_back_as_having_none(replay_tree, tmp_path):
    """frame_results' cache from a Detector(thumbnails=False) holds no thumbnails; read back by
    a detector that makes them, it would silently turn every session's motion check off."""
    import edgefas
    from edgefas.data.replay_attack import load_replay_attack
    from edgefas.video_eval import frame_results

    samples = load_replay_attack(replay_tree[0], ("test",))
    cache = tmp_path / "test.json"
    bare = frame_results(edgefas.Detector(thumbnails=False), samples, cache, progress=False)
    assert not any(r.thumbnail for r in bare)
    again = frame_results(edgefas.Detector(), samples, cache, progress=False)
    assert any(r.thumbnail for r in again)


def test_eval_video_lists_the_videos_the_motion_check_changes():
    """motion_changes names each video whose first verdict differs with the check, with its
    label and statistic, in the order the groups are in (videos sorted by key)."""
    from edgefas import Result
    from edgefas.data.samples import Sample
    from edgefas.video_eval import _group, first_verdicts, motion_changes

    moving = _moving_results(8)
    still_px = moving[0].thumbnail
    still = [Result(Decision.LIVE, 0.9, 0.5, r.box, None, 0.9, {}, (), None, still_px)
             for r in moving]                       # the same pixels every frame: a photo
    samples, results = [], []
    # fed photo first; sorted by key ("test//live" < "test/fixed/photo") the person comes first
    for video, attack, rs in (("photo", True, still), ("live", False, moving)):
        for i, r in enumerate(rs):
            samples.append(Sample(f"x/{video}/frame_{i * 12:05d}.jpg", attack,
                                  "print" if attack else "bona_fide", "test", "replay-attack",
                                  video=video, support="fixed" if attack else ""))
            results.append(r)
    groups, att, sp = _group(samples, results)
    with_check, without = SessionConfig(timeout_s=None), SessionConfig(timeout_s=None,
                                                                       min_motion_ratio=None)
    changed = motion_changes(samples, first_verdicts(groups, 0.5, with_check),
                             first_verdicts(groups, 0.5, without), att, sp)
    assert [(c["video"], c["attack"], c["species"], c["without"], c["with"]) for c in changed] \
        == [("test/fixed/photo", True, "print", "live", "spoof")]
    assert changed[0]["motion"] is not None and changed[0]["motion"] < MOTION_RATIO_DEFAULT


def test_a_repeated_frame_time_is_not_a_motion_pair(detector, astronaut_bgr):
    # a camera handing out its last frame again: the same time twice would pair a frame with
    # itself, a pair that looks perfectly still and drags the statistic down
    frames = face_clip(astronaut_bgr, 4)
    once = detector.session(min_frames=1, timeout_s=None, motion_gap_s=0.0)
    twice = detector.session(min_frames=1, timeout_s=None, motion_gap_s=0.0)
    for i, fr in enumerate(frames):
        a = once(fr, t=float(i)).verdict
        twice(fr, t=float(i))
        b = twice(fr, t=float(i)).verdict            # the same frame, the same time
    assert a.motion is not None and b.motion == pytest.approx(a.motion)
