"""Does a fusion detector use its cue? Score it with the cue as trained and with the cue zeroed.

The fusion run's best checkpoint (PyTorch) scores P1 test (one frame per video) and the P4 live
sets (LFW held-out identities, london) twice: as trained, and with the built-in de-spoofer's cue
replaced by zeros (the RGB path alone, through the same weights). Threshold and calibration are
the run's bundle's (chosen on devel); nothing is refit. Writes OUT.json and OUT.md.

example:
  python benchmarks/fusion_ablation.py --run runs/P1-xattn --out docs/fusion/ablation_P1-xattn
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgefas.report_files import write_report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="a fusion training run (with RUN/bundle)")
    p.add_argument("--out", type=Path, required=True, help="writes OUT.json and OUT.md")
    args = p.parse_args(argv)

    import numpy as np
    import torch

    from edgefas.bundle import load_bundle
    from edgefas.data.protocols import get_protocol
    from edgefas.data.sources import CropStore, DataRoots
    from edgefas.evaluation import wilson_ci
    from edgefas.metrics import evaluate
    from edgefas.runtime.calibration import apply_platt
    from edgefas.runtime.preprocess import Contract
    from edgefas.train.baseline import load_trained, predict_logits
    from edgefas.train.run import face_stage_for

    model, state = load_trained(args.run / "best")
    if state["model_config"].get("class") != "FusionClassifier":
        raise SystemExit(f"{args.run} is not a fusion run")
    bundle = load_bundle(args.run / "bundle")
    a, b, thr = float(bundle.calibration["a"]), float(bundle.calibration["b"]), float(bundle.threshold)
    contract = Contract.from_dict(state["contract"])
    stage, sha = face_stage_for(contract)
    store = CropStore(stage, sha, DataRoots())
    r1 = store.replay(frames="1")
    test = r1.subset(get_protocol("P1").test_mask(r1.samples) & r1.ok)
    lfw = store.lfw()
    lfw = lfw.subset(lfw.ok & np.array([s.split == "heldout" for s in lfw.samples]))
    london = store.london()
    london = london.subset(london.ok)
    is_attack = np.array([s.is_attack for s in test.samples])
    species = np.array([s.species for s in test.samples])
    real_cue = model.cue.forward
    out: dict = {"command": "python benchmarks/fusion_ablation.py " + " ".join(argv or sys.argv[1:]),
                 "run": str(args.run), "threshold": thr,
                 "threshold_split": bundle.manifest["threshold"]["split"],
                 "modes": {}}
    for mode in ("cue as trained", "cue zeroed"):
        if mode == "cue zeroed":
            model.cue.forward = lambda x: torch.zeros_like(real_cue(x))
        score = lambda crops: apply_platt(predict_logits(model, crops, contract), a, b)
        rep = evaluate(score(test.crops), is_attack, thr, species=species).to_dict()
        p4 = {}
        for name, cs in (("lfw_heldout", lfw), ("london", london)):
            s = score(cs.crops)
            errors = int((s < thr).sum())
            p4[name] = {"bpcer": errors / len(s), "errors": errors, "bona_fide": len(s),
                        "ci95": list(wilson_ci(errors, len(s)))}
        out["modes"][mode] = {"P1_test": rep, "P4": p4}
    model.cue.forward = real_cue
    lines = [f"# Fusion ablation: {args.run}", "", f"Command: `{out['command']}`", "",
             f"Threshold {thr:.4f} ({out['threshold_split']}, D-EER); P1 test one frame per video.", "",
             "| Cue | P1 APCER per species | P1 BPCER | P1 HTER | P1 AUC | P4 BPCER LFW held-out | "
             "P4 BPCER london |", "|---|---|---:|---:|---:|---:|---:|"]
    for mode, v in out["modes"].items():
        r = v["P1_test"]
        sp = "; ".join(f"{k} {100 * x['value']:.2f}% ({x['errors']}/{x['count']})"
                       for k, x in r["apcer"].items() if k != "overall")
        p4 = [f"{100 * x['bpcer']:.2f}% ({x['errors']}/{x['bona_fide']})" for x in v["P4"].values()]
        lines.append(f"| {mode} | {sp} | {100 * r['bpcer']['value']:.2f}% ({r['bpcer']['errors']}/"
                     f"{r['bpcer']['count']}) | {100 * r['legacy_hter']['value']:.2f}% | "
                     f"{r['auc']['value']:.4f} | {p4[0]} | {p4[1]} |")
    write_report(args.out, out, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
