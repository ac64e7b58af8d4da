"""ISO/IEC 30107-3 metrics of a bundle: APCER per species and the maximum, BPCER,
BPCER@APCER and APCER@BPCER at 5 % and 1 %, D-EER, AUC (HTER/ACER as labelled legacy
figures), bootstrap 95 % intervals and live/attack counts, at the bundle's devel threshold.
Writes a markdown table, JSON and a DET curve PNG.

Protocols (Replay-Attack; see edgefas.data.protocols): P1 standard; P2-print / P2-mobile /
P2-highdef leave one attack species out; P3-controlled-to-adverse / P3-adverse-to-controlled
cross lighting; P4 unseen bona fide (LFW held-out identities, london portraits); P5 other
labs' data sets (NUAA's test part: another webcam's bona fide faces and printed-photo attacks;
Essex faces94 bona fide), scored with a P1 bundle at its threshold. A bundle is
evaluated on the protocol it was trained for; with --runs, every protocol's bundle
RUNS/<protocol>/bundle is evaluated and one table is written.

P4 is reported at the bundle threshold and at a second one, also chosen on devel: the lowest
threshold with APCER_max <= 1 % on P1 devel (all 20 frames per video; needs the Replay-Attack
20-frame tree, else it says why it was skipped). Models compare there at equal attack security.

examples:
  edgefas eval --protocol P1                       # the shipped bundle
  edgefas eval --runs runs --out docs/baseline     # P1-P4 table of all protocol runs
  edgefas eval --folder my_captures/ --bundle my_bundle/   # live/ and attack/<species>/ folders
  edgefas eval --folder cam.csv --bundle runs/cam1/bundle   # a CSV's test rows (see finetune)
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import DatasetError, EdgefasError
from .argtypes import non_negative_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bundle", type=Path, help="bundle folder (default: the shipped bundle)")
    p.add_argument("--protocol", default="P1", help="P1, P2-<species>, P3-..., P4, P5 (default: P1)")
    p.add_argument("--runs", type=Path, help="evaluate RUNS/<protocol>/bundle for all protocols")
    p.add_argument("--folder", type=Path, metavar="DATA",
                   help="your labelled captures instead of a protocol: a live/ + "
                        "attack/<species>/ folder, or a CSV (path,label[,species,subject,split]; "
                        "its 'test' rows when the split column is filled, else all rows)")
    p.add_argument("--out", type=Path, default=Path("eval_out"),
                   help="output prefix: writes OUT.md, OUT.json, OUT_det.png (default: %(default)s)")
    p.add_argument("--bootstrap", type=non_negative_int, default=1000, help="bootstrap resamples (0 = none)")
    p.add_argument("--record", action="store_true",
                   help="write the results (with counts and the command) into the evaluated "
                        "bundle's manifest under metrics/<protocol>")
    p.add_argument("--replay-1frame-root", type=Path)
    p.add_argument("--lfw-root", type=Path)
    p.add_argument("--nuaa-root", type=Path, help="NUAA Photograph Imposter Database (P5)")
    p.add_argument("--essex-root", type=Path, help="Essex faces94 subset (P5)")


def _clean(d: dict) -> dict:
    return {k: (_clean(v) if isinstance(v, dict) else v) for k, v in d.items()
            if not k.startswith("_")}


def _record(bundle: Path | None, protocol: str, result: dict, command: str) -> None:
    from ..bundle import MANIFEST, default_bundle_path, write_manifest

    root = Path(bundle) if bundle else default_bundle_path()
    manifest = json.loads((root / MANIFEST).read_text())
    for part in result.values():  # the markdown copy stays in OUT.md, not in the manifest
        if isinstance(part, dict):
            part.pop("markdown", None)
    manifest.setdefault("metrics", {})[protocol] = {
        "command": command, **result}
    for k in ("files", "schema_version"):
        manifest.pop(k, None)
    write_manifest(root, manifest)


def run(args: argparse.Namespace) -> int:
    from ..data.sources import DataRoots
    from ..evaluation import evaluate_pad, run_protocol
    from ..metrics import plot_det
    from .eval_table import protocol_table

    if args.record:   # checked before minutes of evaluation
        from ..bundle import default_bundle_path, is_default_bundle

        if args.runs or args.folder:
            raise EdgefasError("--record works with one bundle and one protocol")
        if is_default_bundle(args.bundle or default_bundle_path()):
            # its manifest is pinned: rewriting it would leave every Detector() refusing it
            raise EdgefasError(f"--record writes into the bundle's manifest, and the shipped "
                               f"bundle's is pinned: copy {default_bundle_path()} to a folder of "
                               "your own and pass it with --bundle")
    roots = DataRoots(None, args.replay_1frame_root, args.lfw_root, nuaa=args.nuaa_root,
                      essex=args.essex_root)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.folder:
        from ..data.folder import load_labelled
        from ..detector import Detector
        from ..evaluation import crop_store_for

        # a CSV's train and devel rows chose the model and its threshold: only test rows here
        samples = load_labelled(args.folder, "test")
        n_attack = sum(s.is_attack for s in samples)
        if n_attack in (0, len(samples)):
            # APCER, BPCER, HTER and AUC each need both classes
            raise EdgefasError(f"{args.folder}: eval needs images under both live/ and attack/ "
                               f"(found {len(samples) - n_attack} live, {n_attack} attack); "
                               "for live captures alone use 'edgefas calibrate' or 'edgefas detect'")
        det = Detector(args.bundle)
        store = crop_store_for(det, roots, True)
        crops = store.path_set("folder", args.folder, samples,
                               suffix=":test" if args.folder.suffix.lower() == ".csv" else "")
        usable = [s.is_attack for s, ok in zip(crops.samples, crops.ok) if ok]
        if sum(usable) in (0, len(usable)):
            # both classes were there as files, but one lost every face to the face policy
            raise EdgefasError(
                f"{args.folder}: after face detection {len(usable) - sum(usable)} live and "
                f"{sum(usable)} attack images have a usable face ({int((~crops.ok).sum())} "
                "failed to acquire: no face, too small, low quality or unreadable); eval needs "
                "both; 'edgefas detect' on the folder says why each failed")
        res = evaluate_pad(det, crops, split=str(args.folder), bootstrap=args.bootstrap)
        results = {"folder": res}
        curves = {"folder": _curve(res)}
    elif args.runs:
        names = ["P1", "P2-print", "P2-mobile", "P2-highdef", "P3-controlled-to-adverse",
                 "P3-adverse-to-controlled"]
        results, curves = {}, {}
        for name in names:
            b = args.runs / name / "bundle"
            if not (b / "manifest.json").is_file():
                print(f"skipping {name}: no bundle at {b}")
                continue
            results[name] = run_protocol(b, name, roots=roots, bootstrap=args.bootstrap)
            t = results[name]["test"]
            curves[name] = _curve(t)
        if (args.runs / "P1" / "bundle" / "manifest.json").is_file():
            results["P4"] = run_protocol(args.runs / "P1" / "bundle", "P4", roots=roots)
            try:   # other labs' data, where this machine has it
                results["P5"] = run_protocol(args.runs / "P1" / "bundle", "P5", roots=roots,
                                             bootstrap=args.bootstrap)
                curves["P5"] = _curve(results["P5"]["nuaa"])
            except DatasetError as exc:
                print(f"skipping P5: {exc}")
    else:
        proto = args.protocol
        results = {proto: run_protocol(args.bundle, proto, roots=roots, bootstrap=args.bootstrap)}
        if "test" in results[proto] or "nuaa" in results[proto]:
            t = results[proto].get("test", results[proto].get("nuaa"))
            curves = {proto: _curve(t)}
        else:
            curves = {}
    if not results:
        raise EdgefasError("nothing was evaluated")
    if args.record:
        _record(args.bundle, args.protocol, _clean(results[args.protocol]),
                "edgefas " + " ".join(args._argv))
    md = protocol_table(results)
    args.out.with_suffix(".md").write_text(md)
    args.out.with_suffix(".json").write_text(json.dumps(_clean(results), indent=2) + "\n")
    det_png = args.out.with_name(args.out.with_suffix("").name + "_det.png")  # beside OUT.md
    if curves:
        plot_det(curves, det_png)
    print(md)
    print(f"wrote {args.out.with_suffix('.md')}, {args.out.with_suffix('.json')}"
          + (f", {det_png}" if curves else ""))
    return 0


def _curve(res: dict) -> tuple:
    """A DET curve's data: with the species, it plots APCER_max, the figure the table reports."""
    return res["_scores"], res["_is_attack"], res["_species"]
