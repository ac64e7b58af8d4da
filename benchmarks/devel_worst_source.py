#!/usr/bin/env python3
"""Score bundles on the devel set with live faces of other cameras, by the worst-source rule.

    python benchmarks/devel_worst_source.py --bundle edgefas/bundles/default \\
        --bundle runs/lfwdev/P1-cs15/bundle --bundle runs/lfwdev/P1-cs10/bundle \\
        --out docs/ablation_lfw_devel/devel_rule

Devel is Replay-Attack devel (P1, all 20 frames per video) plus the LFW devel bucket
(``edgefas.data.lfw.DEVEL_BUCKET``: identities out of every ``--lfw-devel`` training, none of
P4's held-out ones). For each bundle: the D-EER with APCER_max over attack species against
BPCER_max over the two bona fide sources (``edgefas.metrics.eer(..., bona_fide_source=...)``),
its threshold, and the rates at the bundle's own threshold. This is the adoption rule of
docs/ablation_lfw_devel/plan.md; it reads devel only. A bundle trained on the LFW devel
identities (every bundle without ``lfw_devel`` in its recipe) is marked: its LFW figure is
optimistic. Writes OUT.json and OUT.md.

``--info-live cfd`` (or a folder/CSV, as ``edgefas train --extra-live``) also scores that
source's people of the devel hash bucket and reports their BPCER at each bundle's threshold:
beside the rule, never part of it (docs/ablation_extra_live/plan.md).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edgefas.report_files import write_report


def score_bundle(bundle: Path, info_live: str | None = None) -> dict:
    from edgefas.data.lfw import is_devel_identity
    from edgefas.data.protocols import get_protocol
    from edgefas.detector import Detector
    from edgefas.evaluation import crop_store_for, score_crops
    from edgefas.metrics import apcer, bpcer, bpcer_by_source, eer

    det = Detector.from_bundle(bundle)
    store = crop_store_for(det, None, progress=True)
    replay = store.replay(frames="20")
    dv = replay.subset(get_protocol("P1").devel_mask(replay.samples) & replay.ok)
    lfw = store.lfw()
    lfw = lfw.subset(lfw.ok & np.array([is_devel_identity(s.subject) for s in lfw.samples]))
    scores = np.concatenate([score_crops(det, dv), score_crops(det, lfw)])
    samples = dv.samples + lfw.samples
    is_attack = np.array([s.is_attack for s in samples])
    species = np.array([s.species for s in samples])
    source = np.array([s.dataset for s in samples])
    worst = eer(scores, is_attack, species, bona_fide_source=source)
    thr = det.threshold
    ap = apcer(scores, is_attack, thr, species)
    per_source = {g: r.to_dict() for g, r in bpcer_by_source(scores, is_attack, source, thr).items()}
    recipe = det.bundle.manifest.get("training", {}).get("recipe", {})
    info = None
    if info_live:
        xl = store.extra_live(info_live)
        xl = xl.subset(xl.ok & np.array([is_devel_identity(s.subject) for s in xl.samples], bool))
        xs = score_crops(det, xl)
        info = {"source": info_live, "bona_fide": len(xl),
                "bpcer_at_bundle_threshold": bpcer(xs, np.zeros(len(xs), bool), thr).to_dict(),
                "trained_on_source": recipe.get("extra_live") == info_live}
    return {"bundle": str(bundle), "name": det.bundle.manifest.get("name"),
            "crop_scale": det.bundle.manifest["preprocess"].get("crop_scale"),
            "trained_on_lfw_devel": bool(recipe.get("use_lfw", True)) and not recipe.get("lfw_devel", False),
            "counts": {"replay_bona_fide": int((~is_attack & (source != "lfw")).sum()),
                       "lfw_devel_bona_fide": int((source == "lfw").sum()),
                       "attack": int(is_attack.sum())},
            "worst_source_deer": worst.to_dict(),
            "at_bundle_threshold": {"threshold": thr,
                                    "apcer": {k: v.to_dict() for k, v in ap.items()},
                                    "bpcer_by_source": per_source},
            "info_live": info}


def _pct(r: dict) -> str:
    if r["value"] is None:
        return "n/a"
    return f"{100 * r['value']:.2f} % ({r['errors']}/{r['count']})"


def _label(r: dict, rows: list[dict]) -> str:
    """The bundle's name, and its folder when another row has the same name (runs packaged
    as baseline-P1 are told apart by where they are)."""
    same = sum(x["name"] == r["name"] for x in rows) > 1
    return f"{r['name']} (`{r['bundle']}`)" if same else r["name"]


def to_markdown(rows: list[dict], command: str) -> str:
    lines = ["# Devel with live faces of other cameras: the worst-source rule", "",
             f"Command: `{command}`", "",
             "Devel: Replay-Attack devel (P1), all 20 frames per video, and the LFW devel bucket "
             "(bona fide, other cameras). * = the bundle trained on the LFW devel identities "
             "(its LFW figures are optimistic).", "",
             "| bundle | crop | worst-source D-EER | its threshold | APCER_max there | BPCER_max there "
             "| bundle threshold | APCER_max / BPCER replay / BPCER LFW devel at it |",
             "|---|---:|---:|---:|---|---|---:|---|"]
    for r in rows:
        w, b = r["worst_source_deer"], r["at_bundle_threshold"]
        worst_sp = max((v for k, v in b["apcer"].items() if k != "overall"),
                       key=lambda v: v["value"], default=b["apcer"]["overall"])
        src = b["bpcer_by_source"]
        none = {"value": None, "errors": 0, "count": 0}   # a source without usable faces
        lines.append(f"| {_label(r, rows)}{' *' if r['trained_on_lfw_devel'] else ''} | {r['crop_scale']} "
                     f"| {100 * w['value']:.2f} % | {w['threshold']:.4g} | {_pct(w['apcer'])} "
                     f"| {_pct(w['bpcer'])} | {b['threshold']:.4g} | {_pct(worst_sp)} / "
                     f"{_pct(src.get('replay-attack', none))} / {_pct(src.get('lfw', none))} |")
    info = [r for r in rows if r.get("info_live")]
    if info:
        src = info[0]["info_live"]["source"]
        lines += ["", f"Beside the rule, not part of it: BPCER of {src}'s devel-bucket people at each "
                  "bundle's threshold († = the bundle trained on other people of that source).", "",
                  "| bundle | BPCER |", "|---|---|"]
        lines += [f"| {_label(r, rows)}{' †' if r['info_live']['trained_on_source'] else ''} "
                  f"| {_pct(r['info_live']['bpcer_at_bundle_threshold'])} |" for r in info]
    c = rows[0]["counts"]
    lines += ["", f"Counts: {c['replay_bona_fide']} Replay devel bona fide, {c['lfw_devel_bona_fide']} "
              f"LFW devel bona fide (faces found; varies slightly with the crop), {c['attack']} attacks."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--bundle", type=Path, action="append", required=True, help="bundle folder (repeat)")
    ap.add_argument("--out", type=Path, default=Path("docs/ablation_lfw_devel/devel_rule"),
                    help="output path without suffix (default: %(default)s)")
    ap.add_argument("--info-live", metavar="SOURCE",
                    help="also report this live source's devel-bucket BPCER (cfd, a folder or a CSV)")
    args = ap.parse_args(argv)
    rows = [score_bundle(b, args.info_live) for b in args.bundle]
    command = "python benchmarks/devel_worst_source.py " + " ".join(f"--bundle {b}" for b in args.bundle)
    if args.info_live:
        command += f" --info-live {args.info_live}"
    write_report(args.out, {"command": command, "rows": rows}, to_markdown(rows, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
