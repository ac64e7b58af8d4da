"""Video sessions: smoothing, minimum frames, face tracking resets, timeouts; edgefas watch;
the video-level evaluation on the synthetic Replay-style tree."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from edgefas import Decision, EdgefasError, Result, Session, SessionConfig, SessionState
from edgefas.cli import main
from edgefas.session import box_iou

from .conftest import needs_shared

BOX = (100.0, 100.0, 200.0, 220.0)


def res(score: float | None, box=BOX, decision: Decision | None = None) -> Result:
    if decision is None:
        decision = Decision.LIVE if score >= 0.5 else Decision.SPOOF
    return Result(decision, score, 0.5, box if score is not None else None)


def test_pending_until_min_frames_then_decides():
    s = Session(threshold=0.5, window=5, min_frames=3, timeout_s=None)
    states = [s.feed(res(0.9), t=i).verdict.state for i in range(4)]
    assert states == [SessionState.PENDING, SessionState.PENDING, SessionState.LIVE,
                      SessionState.LIVE]


def test_one_bad_frame_does_not_flip_the_smoothed_verdict():
    s = Session(threshold=0.5, window=5, min_frames=3)
    for i, sc in enumerate([0.9, 0.9, 0.9, 0.05, 0.9]):
        v = s.feed(res(sc), t=i * 0.1).verdict
        if i >= 2:
            assert v.state is SessionState.LIVE, (i, v)
    assert v.score == pytest.approx(np.mean([0.9, 0.9, 0.9, 0.05, 0.9]))
    med = Session(threshold=0.5, window=3, min_frames=1, aggregate="median")
    for sc in (0.9, 0.1, 0.8):
        v = med.feed(res(sc)).verdict
    assert v.score == pytest.approx(0.8)


def test_window_forgets_old_frames():
    s = Session(threshold=0.5, window=2, min_frames=2)
    for sc in (0.9, 0.9, 0.1, 0.1):
        v = s.feed(res(sc)).verdict
    assert v.state is SessionState.SPOOF and v.score == pytest.approx(0.1)


def test_swapped_face_resets_the_session():
    s = Session(threshold=0.5, window=10, min_frames=3, min_iou=0.3)
    for i in range(3):
        assert s.feed(res(0.95), t=i).verdict.state is SessionState.LIVE or i < 2
    v = s.feed(res(0.1, box=(400.0, 100.0, 500.0, 220.0)), t=3).verdict
    assert v.state is SessionState.PENDING and v.frames == 1 and v.resets == 1
    assert any("new session" in r for r in v.reasons)
    # a small movement of the same face keeps the track
    v = s.feed(res(0.1, box=(405.0, 102.0, 505.0, 222.0)), t=4).verdict
    assert v.resets == 1 and v.frames == 2


def test_face_lost_for_too_long_resets_but_short_gaps_are_skipped():
    s = Session(threshold=0.5, window=10, min_frames=2, max_missing=2)
    s.feed(res(0.9))
    s.feed(res(None, decision=Decision.NO_FACE))
    s.feed(res(None, decision=Decision.NO_FACE))
    v = s.feed(res(0.9)).verdict
    assert v.frames == 2 and v.resets == 0 and v.state is SessionState.LIVE
    for _ in range(3):
        v = s.feed(res(None, decision=Decision.NO_FACE)).verdict
    assert v.resets == 1 and v.frames == 0


def test_timeout_when_a_face_is_there_but_never_scored():
    s = Session(threshold=0.5, min_frames=2, timeout_s=1.0)
    small = Result(Decision.FACE_TOO_SMALL, None, 0.5, BOX)
    assert s.feed(small, t=0.0).verdict.state is SessionState.PENDING
    v = s.feed(small, t=1.5).verdict
    assert v.state is SessionState.TIMEOUT and not v.decided and v.elapsed_s == 1.5


def test_the_timeout_clock_starts_with_a_face_and_survives_flicker_resets():
    # an empty scene is not a timeout: the clock starts when someone appears
    s = Session(threshold=0.5, min_frames=5, timeout_s=1.0)
    for i in range(20):
        v = s.feed(res(None, decision=Decision.NO_FACE), t=i).verdict
    assert v.state is SessionState.PENDING and v.elapsed_s == 0.0
    assert s.feed(res(0.9), t=20.0).verdict.state is SessionState.PENDING
    # a face whose box keeps jumping resets its track every frame, but not the clock
    s = Session(threshold=0.5, min_frames=5, timeout_s=1.0)
    far = (300.0, 100.0, 400.0, 220.0)
    for i in range(30):
        v = s.feed(res(0.9, box=BOX if i % 2 else far), t=i * 0.1).verdict
    assert v.state is SessionState.TIMEOUT and v.resets == 29
    # the person leaving (more than max_missing empty frames) starts a new attempt
    s = Session(threshold=0.5, min_frames=5, timeout_s=1.0, max_missing=2)
    s.feed(res(0.9), t=0.0)
    for i in range(3):
        s.feed(res(None, decision=Decision.NO_FACE), t=5.0 + i)
    v = s.feed(res(0.9), t=9.0).verdict
    assert v.state is SessionState.PENDING and v.elapsed_s == 0.0 and v.resets == 1


def test_a_face_that_is_only_now_and_then_scorable_still_times_out():
    # scored once, then too small for longer than max_missing, over and over: the track goes
    # stale each time, but the person never left, so the clock runs on
    s = Session(threshold=0.5, min_frames=5, timeout_s=1.0, max_missing=3)
    small = Result(Decision.FACE_TOO_SMALL, None, 0.5, BOX)
    t, v = 0.0, None
    for _ in range(10):
        for r in [res(0.9)] + [small] * 5:
            v = s.feed(r, t=t).verdict
            t += 0.05
    assert v.state is SessionState.TIMEOUT and v.resets >= 5


def test_frames_with_and_without_times_are_not_mixed():
    s = Session(threshold=0.5)
    s.feed(res(0.9), t=0.0)
    with pytest.raises(EdgefasError, match="give every frame one, or none"):
        s.feed(res(0.9))


def test_clock_is_used_without_timestamps():
    now = iter([10.0, 10.5, 12.0])
    s = Session(threshold=0.5, min_frames=5, timeout_s=1.0, clock=lambda: next(now))
    states = [s.feed(res(0.9)).verdict.state for _ in range(3)]
    assert states == [SessionState.PENDING, SessionState.PENDING, SessionState.TIMEOUT]


def _sig(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=64).astype(np.float32)
    return v / np.linalg.norm(v)


def test_another_face_at_the_same_place_resets_the_session():
    # boxes alone cannot see it: same box, another appearance (another person, or a photo of
    # someone else held where the face was)
    s = Session(threshold=0.5, window=10, min_frames=3)
    a, b = _sig(1), _sig(2)
    for i in range(5):
        v = s.feed(Result(Decision.LIVE, 0.95, 0.5, BOX, signature=a), t=i).verdict
    assert v.state is SessionState.LIVE and v.frames == 5
    v = s.feed(Result(Decision.SPOOF, 0.01, 0.5, BOX, signature=b), t=5).verdict
    assert v.state is SessionState.PENDING and v.frames == 1 and v.resets == 1
    assert any("another face at the same place" in r for r in v.reasons)
    # the same appearance, slightly changed (the next frame), keeps the track
    near = b + 0.2 * _sig(3)
    v = s.feed(Result(Decision.SPOOF, 0.01, 0.5, BOX, signature=near / np.linalg.norm(near)),
               t=6).verdict
    assert v.resets == 1 and v.frames == 2
    # without signatures (results read back from JSON), or with the check off: boxes only
    off = Session(threshold=0.5, min_frames=3, min_similarity=None)
    for i, sig in enumerate((a, b, a)):
        v = off.feed(Result(Decision.LIVE, 0.95, 0.5, BOX, signature=sig), t=i).verdict
    assert v.resets == 0 and v.frames == 3


@needs_shared
def test_two_people_in_turn_at_the_same_place_are_two_sessions(detector, shared):
    # the review's case: two london portraits whose face boxes overlap with IoU 0.94
    a = cv2.imread(str(shared / "fixtures" / "london" / "canada" / "003f.jpg"))
    b = cv2.imread(str(shared / "fixtures" / "london" / "canada" / "008f.jpg"))
    s = detector.session(min_frames=3)
    steps = [s(im, t=i / 25) for i, im in enumerate([a] * 4 + [b] * 2)]
    assert box_iou(steps[0].result.box, steps[-1].result.box) > 0.9
    assert steps[3].verdict.resets == 0 and steps[4].verdict.resets == 1
    assert steps[-1].verdict.frames == 2 and steps[-1].verdict.state is SessionState.PENDING
    assert steps[-1].result.to_dict().keys() == steps[0].result.to_dict().keys()
    assert "signature" not in steps[0].result.to_dict()


def test_bad_config_is_refused():
    with pytest.raises(EdgefasError):
        SessionConfig(window=0)
    for bad in ({"timeout_s": float("nan")}, {"timeout_s": "10"}, {"max_missing": float("nan")},
                {"window": 2.5}, {"min_similarity": 2.0}, {"min_iou": float("nan")}):
        with pytest.raises(EdgefasError):
            SessionConfig(**bad)
    with pytest.raises(EdgefasError, match="threshold"):
        Session(threshold=-1)
    with pytest.raises(TypeError):   # InputTypeError: a programming error
        Session(threshold=0.5).feed(None)
    with pytest.raises(EdgefasError):
        SessionConfig(aggregate="max")
    with pytest.raises(EdgefasError):
        Session()  # neither detector nor threshold
    assert box_iou(BOX, BOX) == pytest.approx(1.0)
    assert box_iou(BOX, (300, 300, 400, 400)) == 0.0


def test_detector_session_on_real_frames(detector, astronaut_bgr):
    # the whole frame shifts (no still background to compare with): motion check off here;
    # tests/test_motion.py covers it
    s = detector.session(min_frames=3, window=5, min_motion_ratio=None)
    assert s.threshold == detector.threshold
    steps = [s(np.roll(astronaut_bgr, 4 * i, axis=1), t=i / 25) for i in range(4)]
    assert all(st.result.decision is Decision.LIVE for st in steps)
    assert steps[1].verdict.state is SessionState.PENDING
    assert steps[-1].verdict.state is SessionState.LIVE
    assert json.loads(json.dumps(steps[-1].to_dict()))["verdict"]["state"] == "live"
    # bad frames in a session are typed results too, never exceptions
    assert s(b"not an image", t=0.2).result.decision is Decision.BAD_INPUT


@pytest.fixture(scope="module")
def frame_folder(tmp_path_factory, astronaut_bgr):
    d = tmp_path_factory.mktemp("frames")
    small = cv2.resize(astronaut_bgr, (320, 320))
    for i in range(6):
        cv2.imwrite(str(d / f"frame_{i:03d}.jpg"), np.roll(small, 3 * i, axis=1))
    return d


def test_watch_folder_writes_annotated_video(frame_folder, tmp_path, capsys):
    out = tmp_path / "annotated.avi"
    assert main(["watch", str(frame_folder), "--out", str(out), "--min-frames", "3",
                 "--min-motion-ratio", "0", "--no-progress"]) == 0
    assert "verdict: live" in capsys.readouterr().out
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    ok, frame = cap.read()
    assert ok and frame.shape == (320, 320, 3)


def test_watch_json_from_a_video_file_stops_on_decision(frame_folder, tmp_path, capsys):
    clip = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 320))
    for f in sorted(frame_folder.iterdir()):
        w.write(cv2.imread(str(f)))
    w.release()
    assert main(["watch", str(clip), "--json", "--min-frames", "2", "--stop-on-decision",
                 "--min-motion-ratio", "0"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(lines) == 3  # two frames, then the verdict line
    assert lines[1]["t"] == pytest.approx(0.1) and lines[-1]["verdict"]["state"] == "live"


def test_watch_reports_missing_sources(tmp_path, capsys):
    assert main(["watch", str(tmp_path / "nope.mp4")]) == 1
    assert "no such video file" in capsys.readouterr().err
    assert main(["watch", str(tmp_path)]) == 1  # an empty folder
    assert "holds no images" in capsys.readouterr().err


def test_video_eval_on_synthetic_tree(replay_tree, tmp_path, monkeypatch):
    from edgefas.video_eval import run_video_eval, to_markdown

    frames, _ = replay_tree
    rep = run_video_eval(frames, cache_dir=tmp_path, progress=False)
    # 2 clients x 2 lightings: 4 bona fide and 12 attack videos, 2 frames each
    assert rep["test"]["videos"] == {"bona_fide": 4, "attack": 12}
    fl = rep["test"]["frame_level"]
    assert fl["bpcer"]["count"] + fl["apcer_pooled"]["count"] + fl["fta"]["failed"] == 32
    assert rep["rule"]["chosen_on"] == "devel" and rep["devel_search"]
    assert (tmp_path / "test.json").is_file()  # per-frame results cached for replays
    again = run_video_eval(frames, cache_dir=tmp_path, progress=False)
    assert again["test"] == rep["test"]
    # the frames' motion thumbnails come back from the cache with the Results
    from edgefas.data.replay_attack import load_replay_attack
    from edgefas.video_eval import frame_results, frame_time

    samples = load_replay_attack(frames, ("test",))
    back = frame_results(None, samples, tmp_path / "test.json", progress=False)  # no scoring
    scored = [r for r in back if r.live_score is not None]
    assert scored and all(r.thumbnail is not None and r.thumbnail.pixels.ndim == 2 for r in scored)
    assert frame_time("x/frame_00050.jpg") == pytest.approx(2.0)   # 25 fps
    assert "| test | video (default session, motion check off) |" in to_markdown(rep, "c")
    # without cache_dir: one cache per bundle and data tree, under $EDGEFAS_CACHE
    monkeypatch.setenv("EDGEFAS_CACHE", str(tmp_path / "c"))
    run_video_eval(frames, progress=False)
    made = sorted((tmp_path / "c" / "video_eval").iterdir())
    assert len(made) == 1 and (made[0] / "test.json").is_file()
    # a copy with another threshold (a calibrated bundle shares the classifier file) gets its
    # own scores: the cached ones hold the old threshold's decisions
    from edgefas.bundle import default_bundle_path, write_manifest

    other = tmp_path / "calibrated"
    shutil.copytree(default_bundle_path(), other)
    m = json.loads((other / "manifest.json").read_text())
    m["threshold"]["value"] = 0.5
    write_manifest(other, m)
    assert run_video_eval(frames, bundle=other, progress=False)["threshold"] == 0.5
    assert len(list((tmp_path / "c" / "video_eval").iterdir())) == 2
    md = to_markdown(rep, "edgefas eval-video")
    assert "| test | video (devel-chosen rule) |" in md and "| test | video (default session) |" in md
    # The default session needs 5 frames of a face; these videos have 2: every session is
    # still pending at the end, which counts as a rejection (attacks right, bona fide wrong).
    dv = rep["test"]["video_level_default"]
    assert rep["default_rule"]["min_frames"] == 5 and dv["pending"] == 16
    assert dv["bpcer"]["errors"] == 4 and dv["apcer_pooled"]["errors"] == 0


def test_video_eval_says_when_the_tie_break_chose_the_rule():
    from edgefas.video_eval import tie_note

    search = [{"window": m, "min_frames": m, "aggregate": a, "hter": h,
               "frames_to_decision_mean": float(m)}
              for m, h in ((1, 0.02), (2, 0.0), (3, 0.0)) for a in ("mean", "median")]
    note = tie_note(search)
    assert "4 of them (min_frames 2-3) tie" in note and "0.00%" in note
    search[2]["hter"] = search[3]["hter"] = 0.01  # now only the two min_frames-3 rules are best
    assert "2 of them (min_frames 3) tie" in tie_note(search)
    search[4]["hter"] = 0.01
    assert "alone has the lowest" in tie_note(search)


def test_video_rates_of_a_live_only_tree_are_nan_not_a_crash():
    from edgefas.video_eval import _rates

    r = _rates(np.array([True, False]), np.array([False, False]), np.array(["bona_fide"] * 2))
    assert r["bpcer"]["errors"] == 1 and r["apcer_max"]["count"] == 0
    assert np.isnan(r["apcer_pooled"]["value"])


def test_video_eval_refuses_the_video_tree_and_eval_a_many_frame_test_tree(replay_tree, tmp_path,
                                                                          astronaut_bgr):
    from edgefas.data.sources import DataRoots
    from edgefas.errors import DatasetError
    from edgefas.evaluation import run_protocol
    from edgefas.video_eval import run_video_eval

    vids = tmp_path / "videos"
    for split in ("devel", "test"):
        (vids / split / "real").mkdir(parents=True)
        path = vids / split / "real" / "client001_session01_webcam_authenticate_controlled_1.avi"
        w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (512, 512))
        for _ in range(3):
            w.write(astronaut_bgr)
        w.release()
    with pytest.raises(DatasetError, match="holds videos: eval-video reads the tree of frames"):
        run_video_eval(vids, cache_dir=tmp_path / "c", progress=False)
    # the 20-frames tree given as the one-frame test tree: refused, not reported as 1 frame/video
    frames, _ = replay_tree
    with pytest.raises(DatasetError, match="holds up to 2 frames per video"):
        run_protocol(None, "P1", roots=DataRoots(None, frames), bootstrap=0, progress=False)


def test_watch_plays_numbered_frames_in_number_order(tmp_path):
    from edgefas.watch import open_source

    for n in (1, 2, 10, 11):
        cv2.imwrite(str(tmp_path / f"{n}.png"), np.full((40, 40, 3), n, np.uint8))
    (tmp_path / "12.png").write_bytes(b"truncated")
    src = open_source(tmp_path)
    firsts = [int(frame[0, 0, 0]) if frame.size else None for frame, _ in src.frames]
    assert firsts == [1, 2, 10, 11, None]   # not 1, 10, 11, 12, 2; the broken file stays empty


def test_time_going_backwards_starts_a_new_session():
    # a looped file or a restarted stream: elapsed and the timeout restart, never go negative
    s = Session(threshold=0.5, window=5, min_frames=2, timeout_s=10.0)
    for t in (100.0, 101.0, 102.0):
        v = s.feed(res(0.9), t=t).verdict
    assert v.state is SessionState.LIVE and v.elapsed_s == pytest.approx(2.0)
    v = s.feed(res(0.9), t=3.0).verdict
    assert v.state is SessionState.PENDING and v.frames == 1 and v.resets == 1
    assert v.elapsed_s == 0.0 and any("went backwards" in r for r in v.reasons)
    assert s.feed(res(0.9), t=4.0).verdict.elapsed_s == pytest.approx(1.0)
