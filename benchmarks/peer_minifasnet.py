#!/usr/bin/env python3
"""edgefas next to the model most kiosks embed today (MiniFASNet), on the same images.

    python benchmarks/peer_minifasnet.py --repo ~/.cache/edgefas/peers/minifasnet

MiniFASNet is minivision-ai/Silent-Face-Anti-Spoofing (Apache-2.0, 2020): a Caffe RetinaFace
box, two 80x80 crops (2.7x and 4.0x the box), MiniFASNetV2 and MiniFASNetV1SE, softmaxes summed;
``test.py`` calls a face live when class 1 wins, and deepface and uniface wrap the same two
checkpoints the same way. Nothing of it is in this repository: ``--repo`` is your own copy of
that repository (``git clone`` it, or the search tool's ``fetch``), and its own modules load its
own weights and run its own preprocessing, so what is measured is the pipeline as its users run
it. Its one departure: each checkpoint is loaded once, not on every call as its
``AntiSpoofPredict.predict`` does (same numbers, far faster).

Both are scored on:

- Replay-Attack devel (all 20 frames per video) to choose a threshold for each by the D-EER
  (APCER_max = BPCER; the rule of edgefas bundles up to v0.2, whose devel was Replay-Attack's
  alone), and the P4 second operating point (lowest threshold with devel APCER_max <= 1 %);
- Replay-Attack test, one frame per video (80 bona fide / 400 attacks);
- unseen bona fide faces: LFW identities held out of edgefas's training, and the 244 london
  portraits;
- the 7 labelled silentface photos (which come from MiniFASNet's own repository).

Each model is also scored at the operating point its users get out of the box: MiniFASNet's
"class 1 wins" rule and edgefas's shipped threshold. Read the result with its bias in mind:
edgefas was trained on Replay-Attack train, so its test is in-domain for edgefas and
cross-domain for MiniFASNet (trained on minivision's own, unpublished data); the unseen bona fide
faces are new to both (as far as anyone can tell for MiniFASNet). Failures to acquire: edgefas
refuses frames without a usable face and they are counted apart, as in ``edgefas eval``;
MiniFASNet's pipeline has no such notion (it scores the most confident box, face or not), so it
scores every image.

Writes benchmarks/results/peer_minifasnet.{json,md}. Needs the Replay-Attack, LFW and fixture
trees of shared/DATA.md, torch (the training extra) and the MiniFASNet repository.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgefas.report_files import write_report

HERE = Path(__file__).resolve().parent
LIVE_CLASS = 1   # MiniFASNet's classes: 0 and 2 spoof, 1 live


@contextlib.contextmanager
def _inside(repo: Path) -> Iterator[None]:
    """The MiniFASNet code imports ``src.…`` and opens ``./resources/…``: run it from its
    folder, and take ``src`` off the path again afterwards."""
    old_cwd, old_path = os.getcwd(), list(sys.path)
    os.chdir(repo)
    sys.path.insert(0, str(repo))
    try:
        yield
    finally:
        os.chdir(old_cwd)
        sys.path[:] = old_path


class MiniFASNet:
    """The minivision pipeline of ``test.py``: box, two crops, two models, summed softmaxes."""

    def __init__(self, repo: Path) -> None:
        import torch

        repo = Path(repo).expanduser().resolve()
        if not (repo / "src" / "anti_spoof_predict.py").is_file():
            raise SystemExit(f"{repo} is not a copy of minivision-ai/Silent-Face-Anti-Spoofing "
                             "(no src/anti_spoof_predict.py)")
        with _inside(repo):
            from src.anti_spoof_predict import AntiSpoofPredict
            from src.data_io import transform
            from src.generate_patches import CropImage
            from src.utility import parse_model_name

            self._predict = AntiSpoofPredict(0)   # device 0: CUDA if present, else the CPU
            self._cropper = CropImage()
            self._to_tensor = transform.Compose([transform.ToTensor()])
            self.models = []
            model_dir = repo / "resources" / "anti_spoof_models"
            for name in sorted(os.listdir(model_dir)):
                h, w, _, scale = parse_model_name(name)
                self._predict._load_model(str(model_dir / name))
                self.models.append((name, h, w, scale, self._predict.model.eval()))
        self._torch = torch

    def __call__(self, image_bgr: np.ndarray) -> np.ndarray:
        """The summed softmax (3,) of the two models, as ``test.py`` computes it."""
        bbox = self._predict.get_bbox(image_bgr)
        total = np.zeros(3)
        with self._torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")   # its F.softmax call names no dim
            for _, h, w, scale, model in self.models:
                crop = self._cropper.crop(org_img=image_bgr, bbox=bbox, scale=scale, out_w=w,
                                          out_h=h, crop=scale is not None)
                x = self._to_tensor(crop).unsqueeze(0).to(self._predict.device)
                total += self._torch.nn.functional.softmax(model(x), dim=1).cpu().numpy()[0]
        return total


def score_minifasnet(model: MiniFASNet, samples: list, desc: str) -> np.ndarray:
    """(N, 3) summed softmaxes; an unreadable image is a NaN row (never seen on these sets)."""
    import cv2
    from tqdm import tqdm

    out = np.full((len(samples), 3), np.nan)
    for i, s in enumerate(tqdm(samples, desc=desc, unit="img")):
        image = cv2.imread(s.path)
        if image is not None:
            out[i] = model(image)
    return out


def live_score(softmax_sum: np.ndarray) -> np.ndarray:
    """MiniFASNet's live score: the live class's share of the two models' summed softmax."""
    return softmax_sum[:, LIVE_CLASS] / 2


def own_rule_live(softmax_sum: np.ndarray) -> np.ndarray:
    """MiniFASNet's out-of-the-box decision: live when class 1 has the largest sum."""
    return softmax_sum.argmax(1) == LIVE_CLASS


def _rate(errors: int, count: int) -> dict[str, Any]:
    return {"errors": int(errors), "count": int(count),
            "value": errors / count if count else float("nan")}


def pad_figures(is_attack: np.ndarray, species: np.ndarray, accepted: np.ndarray
                ) -> dict[str, Any]:
    """APCER per species, APCER_max, BPCER and legacy HTER of a decision (True = accepted as
    live), with counts."""
    out: dict[str, Any] = {"apcer": {}}
    for sp in sorted(set(species[is_attack])):
        m = is_attack & (species == sp)
        out["apcer"][sp] = _rate(int(accepted[m].sum()), int(m.sum()))
    worst = max(out["apcer"].values(), key=lambda r: r["value"])
    bona = ~is_attack
    out["apcer_max"] = worst
    out["apcer_overall"] = _rate(int(accepted[is_attack].sum()), int(is_attack.sum()))
    out["bpcer"] = _rate(int((~accepted[bona]).sum()), int(bona.sum()))
    out["hter_legacy"] = (out["apcer_overall"]["value"] + out["bpcer"]["value"]) / 2
    return out


def devel_thresholds(scores: np.ndarray, is_attack: np.ndarray, species: np.ndarray
                     ) -> dict[str, dict[str, Any]]:
    """The D-EER threshold (the edgefas bundle's own rule) and the lowest threshold with
    APCER_max <= 1 %, both on Replay-Attack devel."""
    from edgefas.evaluation import P4_DEVEL_APCER
    from edgefas.metrics.iso30107 import bpcer_at_apcer, eer

    e = eer(scores, is_attack, species)
    op = bpcer_at_apcer(scores, is_attack, P4_DEVEL_APCER, species)
    return {"deer": {"threshold": e.threshold, "devel_apcer_max": e.apcer.to_dict(),
                     "devel_bpcer": e.bpcer.to_dict(), "d_eer": e.value},
            "apcer1": {"threshold": op.threshold, "devel_apcer_max": op.achieved.to_dict(),
                       "devel_bpcer": op.value.to_dict()}}


def _labels(samples: list) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([s.is_attack for s in samples]), np.array([s.species for s in samples]))


def compare(name: str, sets: dict[str, tuple[list, np.ndarray, np.ndarray]],
            own_accept: dict[str, np.ndarray], fta: dict[str, int]) -> dict[str, Any]:
    """One model's figures. ``sets[key] = (samples, scores, scored)``: ``scored`` marks the
    samples that got a score (the rest are failures to acquire, counted apart);
    ``own_accept[key]`` is the out-of-the-box decision on the scored samples."""
    from edgefas.metrics.iso30107 import auc

    out: dict[str, Any] = {"model": name, "fta": fta}
    samples, scores, ok = sets["devel"]
    is_attack, species = _labels([s for s, k in zip(samples, ok) if k])
    thr = devel_thresholds(scores, is_attack, species)
    out["devel"] = thr
    samples, scores, ok = sets["test"]
    is_attack, species = _labels([s for s, k in zip(samples, ok) if k])
    out["test"] = {"auc": auc(scores, is_attack), "own_rule": pad_figures(
        is_attack, species, own_accept["test"])}
    for op in ("deer", "apcer1"):
        out["test"][op] = pad_figures(is_attack, species, scores >= thr[op]["threshold"])
    for key in ("lfw_heldout", "london"):
        _, scores, _ = sets[key]
        out[key] = {"own_rule": _rate(int((~own_accept[key]).sum()), len(scores))}
        for op in ("deer", "apcer1"):
            out[key][op] = _rate(int((scores < thr[op]["threshold"]).sum()), len(scores))
    if "nuaa" in sets:   # another lab's webcam and printed photos (P5): new to both models
        samples, scores, ok = sets["nuaa"]
        is_attack, species = _labels([s for s, k in zip(samples, ok) if k])
        out["nuaa"] = {"auc": auc(scores, is_attack),
                       "own_rule": pad_figures(is_attack, species, own_accept["nuaa"])}
        for op in ("deer", "apcer1"):
            out["nuaa"][op] = pad_figures(is_attack, species, scores >= thr[op]["threshold"])
    if "essex" in sets:
        _, scores, _ = sets["essex"]
        out["essex"] = {"own_rule": _rate(int((~own_accept["essex"]).sum()), len(scores))}
        for op in ("deer", "apcer1"):
            out["essex"][op] = _rate(int((scores < thr[op]["threshold"]).sum()), len(scores))
    samples, scores, ok = sets["silentface"]
    kept = [s for s, k in zip(samples, ok) if k]
    out["silentface"] = {Path(s.path).name: {"attack": bool(s.is_attack), "live_score": float(v),
                                             "own_rule_live": bool(a)}
                         for s, v, a in zip(kept, scores, own_accept["silentface"])}
    for s, k in zip(samples, ok):
        if not k:
            out["silentface"][Path(s.path).name] = {"attack": bool(s.is_attack),
                                                    "live_score": None, "own_rule_live": None}
    return out


def _pct(r: dict[str, Any]) -> str:
    return f"{100 * r['value']:.2f}% ({r['errors']}/{r['count']})"


def to_markdown(rep: dict[str, Any]) -> str:
    lines = [f"# edgefas vs MiniFASNet on the same images\n\nCommand: `{rep['command']}`  \n"
             f"edgefas bundle `{rep['edgefas_bundle']}`; MiniFASNet "
             f"{', '.join(rep['minifasnet_models'])} (minivision-ai/Silent-Face-Anti-Spoofing, "
             "Apache-2.0, not in this repository).\n",
             "Operating points: **out of the box** = MiniFASNet's \"class 1 wins\" rule / the "
             "edgefas bundle's shipped threshold; **devel D-EER** = each model's threshold where "
             "APCER_max = BPCER on Replay-Attack devel (all 20 frames per video), the rule of "
             "edgefas bundles up to v0.2 (v0.3's devel also holds LFW live faces, so its shipped "
             "threshold differs); **devel APCER 1 %** = the lowest threshold "
             "with devel APCER_max <= 1 %. Test: Replay-Attack test, one frame per video; unseen "
             "bona fide: LFW identities held out of edgefas's training, london portraits.\n",
             "| model | operating point | threshold | test APCER print / mobile / highdef | "
             "test BPCER | test HTER | LFW held-out BPCER | london BPCER |",
             "|---|---|---|---|---|---|---|---|"]
    for key in ("edgefas", "minifasnet"):
        m = rep[key]
        for op, label in (("own_rule", "out of the box"), ("deer", "devel D-EER"),
                          ("apcer1", "devel APCER 1 %")):
            t = m["test"][op]
            value = rep["edgefas_threshold"] if op == "own_rule" else m["devel"][op]["threshold"]
            thr = ("class 1 wins" if key == "minifasnet" and op == "own_rule"
                   else f"{value:.4g}")
            ap = " / ".join(_pct(t["apcer"][sp]) for sp in ("print", "mobile", "highdef"))
            lines.append(f"| {m['model']} | {label} | {thr} | {ap} | {_pct(t['bpcer'])} | "
                         f"{100 * t['hter_legacy']:.2f}% | {_pct(m['lfw_heldout'][op])} | "
                         f"{_pct(m['london'][op])} |")
    lines.append("")
    if "nuaa" in rep["minifasnet"]:
        c = rep["counts"]
        lines += ["Other labs' data sets, new to both models (protocol P5 of `edgefas eval`): NUAA "
                  f"test part (session 03; {c['nuaa']['bona_fide']} bona fide / "
                  f"{c['nuaa']['attack']} printed-photo attacks, another webcam)"
                  + (f" and Essex faces94 ({c['essex']['bona_fide']} bona fide, a camcorder)"
                     if "essex" in c else "") + ":", "",
                  "| model | operating point | NUAA APCER (print) | NUAA BPCER | NUAA HTER | NUAA AUC "
                  "| Essex BPCER |", "|---|---|---|---|---|---|---|"]
        for key in ("edgefas", "minifasnet"):
            m = rep[key]
            for op, label in (("own_rule", "out of the box"), ("deer", "devel D-EER"),
                              ("apcer1", "devel APCER 1 %")):
                n = m["nuaa"][op]
                essex = _pct(m["essex"][op]) if "essex" in m else "-"
                lines.append(f"| {m['model']} | {label} | {_pct(n['apcer']['print'])} | "
                             f"{_pct(n['bpcer'])} | {100 * n['hter_legacy']:.2f}% | "
                             f"{m['nuaa']['auc']:.4f} | {essex} |")
        lines.append("")
    for key in ("edgefas", "minifasnet"):
        m = rep[key]
        d = m["devel"]["deer"]
        fta = ", ".join(f"{k} {v}" for k, v in m["fta"].items())
        lines.append(f"- {m['model']}: test AUC {m['test']['auc']:.4f}; devel D-EER "
                     f"{100 * d['d_eer']:.2f}% (APCER_max {_pct(d['devel_apcer_max'])}, BPCER "
                     f"{_pct(d['devel_bpcer'])}); failures to acquire (not scored): {fta}.")
    lines += ["", "Like for like (MiniFASNet scores every image): bona fide images a model refused "
              "(no usable face) counted as rejections, at the out-of-the-box operating point:", ""]
    for key in ("edgefas", "minifasnet"):
        m = rep[key]
        cells = []
        for name, r in (("test", m["test"]["own_rule"]["bpcer"]), ("LFW held-out",
                        m["lfw_heldout"]["own_rule"]), ("london", m["london"]["own_rule"]),
                        ("NUAA", m.get("nuaa", {}).get("own_rule", {}).get("bpcer")),
                        ("essex", m.get("essex", {}).get("own_rule"))):
            if r is None:
                continue
            key_of = {"LFW held-out": "lfw_heldout", "NUAA": "nuaa"}
            total = rep["counts"][key_of.get(name, name)]["bona_fide"]
            errors = r["errors"] + total - r["count"]   # refused bona fide = total - scored
            cells.append(f"{name} {_pct({'errors': errors, 'count': total, 'value': errors / total})}")
        lines.append(f"- {m['model']}: BPCER {'; '.join(cells)}.")
    lines += ["", "Silentface photos (MiniFASNet's own samples), live score and out-of-the-box "
              "decision:", "", "| photo | truth | edgefas | MiniFASNet |", "|---|---|---|---|"]
    for photo in sorted(rep["minifasnet"]["silentface"]):
        cells = []
        for key in ("edgefas", "minifasnet"):
            r = rep[key]["silentface"].get(photo, {})
            if r.get("live_score") is None:
                cells.append("no usable face")
            else:
                cells.append(f"{r['live_score']:.3f} {'live' if r['own_rule_live'] else 'spoof'}")
        truth = "attack" if rep["minifasnet"]["silentface"][photo]["attack"] else "live"
        lines.append(f"| {photo} | {truth} | {cells[0]} | {cells[1]} |")
    lines += ["", rep["note"], ""]
    return "\n".join(lines)


NOTE = ("Bias: edgefas was trained on Replay-Attack train, so the test rows are in-domain for "
        "it and cross-domain for MiniFASNet; the devel operating points give MiniFASNet a "
        "threshold fitted to Replay-Attack's cameras, which its users do not have. The unseen "
        "bona fide rows are new to both as far as anyone can tell; MiniFASNet's training data "
        "is unpublished, and NUAA (2010) is a public set it may have been trained or tuned on. "
        "MiniFASNet scores every image (its pipeline has no "
        "'no face'); edgefas's failures to acquire are left out of its rates and counted above.")


def main(argv: list[str] | None = None) -> int:
    import shlex

    import torch

    import edgefas
    from edgefas.data.protocols import get_protocol
    from edgefas.data.samples import BONA_FIDE, Sample
    from edgefas.data.sources import DataRoots, find_shared_fixture
    from edgefas.errors import DatasetError
    from edgefas.evaluation import crop_store_for, score_crops

    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", type=Path,
                   help="a local copy of minivision-ai/Silent-Face-Anti-Spoofing (required unless --render)")
    p.add_argument("--bundle", help="edgefas bundle (default: the shipped one)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for MiniFASNet")
    p.add_argument("--out", type=Path, default=HERE / "results" / "peer_minifasnet")
    p.add_argument("--render", action="store_true",
                   help="only write OUT.md again from OUT.json (no scoring)")
    args = p.parse_args(argv)
    if args.render:
        rep = json.loads(args.out.with_suffix(".json").read_text())
        rep["note"] = NOTE   # the figures stay as scored; the text around them is today's
        write_report(args.out, rep, to_markdown(rep), echo=False)
        return 0
    if args.repo is None:
        p.error("--repo is required (a copy of minivision-ai/Silent-Face-Anti-Spoofing)")
    torch.set_num_threads(args.threads)

    det = edgefas.Detector(args.bundle)
    store = crop_store_for(det, DataRoots(), True)
    replay20, replay1 = store.replay(frames="20"), store.replay(frames="1")
    p1 = get_protocol("P1")
    lfw = store.lfw()
    silent_root = find_shared_fixture("silentface")
    if silent_root is None:
        raise SystemExit("shared/fixtures/silentface not found (set EDGEFAS_SHARED)")
    silent = [Sample(str(f), f.stem.split("_")[1].startswith("F"),
                     "attack" if f.stem.split("_")[1].startswith("F") else BONA_FIDE,
                     "fixture", "silentface") for f in sorted(silent_root.glob("*.jpg"))]
    crop_sets = {"devel": replay20.subset(p1.devel_mask(replay20.samples)),
                 "test": replay1.subset(p1.test_mask(replay1.samples)),
                 "lfw_heldout": lfw.subset(np.array([s.split == "heldout" for s in lfw.samples])),
                 "london": store.london(),
                 "silentface": store.samples_set("silentface", silent)}
    for key, make in (("nuaa", store.nuaa), ("essex", store.essex)):
        try:   # P5's sets where this machine has them (shared/DATA.md sources, README "P5")
            crop_sets[key] = make()
        except DatasetError as exc:
            print(f"not scored: {exc}")

    ours: dict[str, tuple[list, np.ndarray, np.ndarray]] = {}
    own: dict[str, np.ndarray] = {}
    for key, cs in crop_sets.items():
        s = score_crops(det, cs)
        ours[key] = (list(cs.samples), s, np.asarray(cs.ok))
        own[key] = s >= det.threshold
    fta = {k: int((~np.asarray(cs.ok)).sum()) for k, cs in crop_sets.items()}
    rep: dict[str, Any] = {"edgefas": compare(f"edgefas {det.bundle.name}", ours, own, fta)}

    mf = MiniFASNet(args.repo)
    theirs: dict[str, tuple[list, np.ndarray, np.ndarray]] = {}
    own = {}
    for key, cs in crop_sets.items():
        samples = list(cs.samples)
        sm = score_minifasnet(mf, samples, f"MiniFASNet {key}")
        readable = ~np.isnan(sm).any(1)
        theirs[key] = (samples, live_score(sm[readable]), readable)
        own[key] = own_rule_live(sm[readable])
    fta = {k: int((~v[2]).sum()) for k, v in theirs.items()}
    rep["minifasnet"] = compare("MiniFASNet V2 + V1SE", theirs, own, fta)

    argv_text = " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    rep.update({"command": f"python benchmarks/peer_minifasnet.py {argv_text}".strip(),
                "edgefas_bundle": det.bundle.name, "edgefas_threshold": det.threshold,
                "minifasnet_models": [m[0] for m in mf.models], "note": NOTE,
                "counts": {k: {"bona_fide": int(sum(not s.is_attack for s in cs.samples)),
                               "attack": int(sum(s.is_attack for s in cs.samples))}
                           for k, cs in crop_sets.items()}})
    write_report(args.out, rep, to_markdown(rep))
    return 0


if __name__ == "__main__":
    sys.exit(main())
