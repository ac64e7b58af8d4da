"""Evaluate a de-spoofing teacher's spoof cue against the colour + frequency reference.

For each face the teacher restores a live version; the cue is input minus restored. Two scores
are judged per protocol: the fixed mean |cue| (its sign fixed on train) and a logistic
regression on cue statistics fit on train. The reference, a logistic regression on 20 colour and
frequency statistics of the face, is always evaluated beside it (--reference-only: nothing
else, no teacher, no torch model). Thresholds come from the protocol's devel D-EER; APCER per
species and BPCER are measured on test at that threshold, counts beside every figure.

Train and devel come from the 20-frames-per-video tree (--frames-per-video frames of each video,
default 2 to keep teachers cheap), test from the one-frame-per-video tree. A teacher is trained
for one protocol (edgefas teacher --protocol), so --protocol all is for the reference only.
--p4 (with P1) adds BPCER at the P1 devel threshold on LFW held-out identities and the london
portraits. Writes OUT.md and OUT.json (and OUT_grid.png with --grid: Replay-Attack faces,
research-only licence, never commit it).

examples:
  edgefas eval-cue --reference-only --protocol all --out runs/cue/reference
  edgefas eval-cue --teacher agfas --teacher-dir runs/teachers/agfas/teacher --t0 100 --steps 5 \\
      --protocol P1 --p4 --out runs/cue/agfas_P1
  edgefas eval-cue --teacher ddm --eps-s runs/teachers/ddm-all/teacher \\
      --eps-g runs/teachers/ddm-live/teacher --t0 200 --steps 10 --out runs/cue/ddm_P1
  edgefas eval-cue --teacher despoof --teacher-dir runs/teachers/P2-print/despoof/teacher \\
      --protocol P2-print --out runs/cue/despoof_P2-print
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import EdgefasError

#: t0 and steps when not given (diffusion-cpu.md: only t0 of about 50-100 keeps texture in pixel
#: space for AG-FAS; DDM at 10 steps each way is the least round-trip-dominated setting measured)
DEFAULT_T0_STEPS = {"agfas": (100, 5), "ddm": (200, 10)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..data.protocols import PROTOCOLS

    p.add_argument("--teacher", choices=["ddm", "agfas", "despoof"], help="teacher kind")
    p.add_argument("--reference-only", action="store_true",
                   help="only the colour + frequency statistics reference; no teacher needed")
    p.add_argument("--teacher-dir", type=Path, help="teacher folder (agfas, despoof)")
    p.add_argument("--eps-s", type=Path, help="DDM all-faces teacher (edgefas teacher --model ddm-all)")
    p.add_argument("--eps-g", type=Path, help="DDM live teacher (edgefas teacher --model ddm-live)")
    p.add_argument("--t0", type=int, help="diffusion depth (default: agfas 100, ddm 200)")
    p.add_argument("--steps", type=int, help="DDIM steps (each way for ddm; default: agfas 5, ddm 10)")
    p.add_argument("--noise-seed", type=int, default=0, help="agfas shared noise draw (default: 0)")
    p.add_argument("--region", choices=["centre", "full"], default="centre",
                   help="teacher input: the 64 px centre of the 128 px crop (cheap) or all of it")
    p.add_argument("--protocol", default="P1", choices=[*PROTOCOLS, "all"],
                   help="P1, P2-<species>, P3-..., or all (reference only) (default: %(default)s)")
    p.add_argument("--p4", action="store_true", help="with P1: BPCER on LFW held-out and london")
    p.add_argument("--p4-max-faces", type=int, default=500, help="LFW held-out faces used (default: 500)")
    p.add_argument("--frames-per-video", type=int, default=2,
                   help="train/devel frames per video from the 20-frame tree (default: %(default)s)")
    p.add_argument("--out", type=Path, default=Path("eval_cue"), help="output prefix: OUT.md, OUT.json")
    p.add_argument("--grid", type=int, default=0, help="write OUT_grid.png with this many test faces")
    p.add_argument("--batch", type=int, default=32, help="faces per teacher call (default: %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="torch device for the teacher (cpu, cuda)")
    p.add_argument("--bootstrap", type=int, default=1000, help="test bootstrap resamples (0 = none)")
    p.add_argument("--replay-root", type=Path, help="Replay-Attack 20-frames-per-video tree")
    p.add_argument("--replay-1frame-root", type=Path, help="Replay-Attack 1-frame-per-video tree")
    p.add_argument("--lfw-root", type=Path, help="LFW images folder (--p4)")


def _load_teacher(args: argparse.Namespace, contract) -> tuple[object, dict, dict]:
    """(teacher, compute_cues keyword arguments, provenance) for --teacher; torch only here."""
    import torch

    from ..distill.cue_eval import DdmPair
    from ..distill.train_teacher import load_despoof_net, load_diffusion_teacher

    torch.set_num_threads(args.threads)
    if args.teacher == "ddm":
        if not (args.eps_s and args.eps_g):
            raise EdgefasError("--teacher ddm needs --eps-s and --eps-g teacher folders")
        pair = DdmPair(load_diffusion_teacher(args.eps_s), load_diffusion_teacher(args.eps_g))
        infos = {"eps_s": pair.eps_s.info, "eps_g": pair.eps_g.info}
        for t in (pair.eps_s, pair.eps_g):
            t.unet.to(args.device)
        teacher, folders = pair, {"eps_s": str(args.eps_s), "eps_g": str(args.eps_g)}
    elif not args.teacher_dir:
        raise EdgefasError(f"--teacher {args.teacher} needs --teacher-dir")
    elif args.teacher == "agfas":
        teacher = load_diffusion_teacher(args.teacher_dir)
        teacher.unet.to(args.device)
        infos, folders = {"agfas": teacher.info}, {"agfas": str(args.teacher_dir)}
    else:
        teacher, info = load_despoof_net(args.teacher_dir)
        teacher.to(args.device)
        infos, folders = {"despoof": info}, {"despoof": str(args.teacher_dir)}
    for name, info in infos.items():
        if info.get("contract") and info["contract"] != contract.to_dict():
            raise EdgefasError(f"{name} teacher was trained on crops of another contract: {info['contract']}")
    kw: dict = {}
    if args.teacher in DEFAULT_T0_STEPS:
        t0, steps = DEFAULT_T0_STEPS[args.teacher]
        kw = {"t0": args.t0 if args.t0 is not None else t0, "steps": args.steps or steps}
        if args.teacher == "agfas":
            kw["noise_seed"] = args.noise_seed
    return teacher, kw, {"kind": args.teacher, "folders": folders, "teacher_json": infos}


def run(args: argparse.Namespace) -> int:
    from . import require_training_extra

    require_training_extra("eval-cue")
    import numpy as np

    from ..data.protocols import PROTOCOLS, frames_per_video, get_protocol
    from ..data.sources import CropStore, DataRoots
    from ..distill.cue_eval import compute_cues, evaluate_cue_on_protocol, results_table_markdown
    from ..distill.cue_features import (
        CUE_STAT_NAMES,
        STAT_NAMES,
        centre_region,
        colour_frequency_stats,
        cue_stats,
        mean_abs_cue,
    )
    from ..runtime.preprocess import Contract
    from ..train.run import face_stage_for

    if args.reference_only == bool(args.teacher):
        raise EdgefasError("pass --teacher KIND or --reference-only (exactly one)")
    if args.protocol == "all" and args.teacher:
        raise EdgefasError("a teacher is trained for one protocol; evaluate it on that protocol "
                           "(--protocol all is for --reference-only)")
    if args.frames_per_video < 1:
        raise EdgefasError("--frames-per-video must be >= 1")
    contract = Contract()
    teacher, kw, provenance = (None, {}, {}) if args.reference_only else _load_teacher(args, contract)
    stage, sha = face_stage_for(contract)
    store = CropStore(stage, sha, DataRoots(args.replay_root, args.replay_1frame_root, args.lfw_root))
    protos = [get_protocol(n) for n in (PROTOCOLS if args.protocol == "all" else [args.protocol])]
    r20, r1 = store.replay(frames="20"), store.replay(frames="1")
    u20 = r20.subset(r20.ok)
    keep = np.zeros(len(u20), bool)   # per split, as build_sets does (video names may repeat across splits)
    for split in ("train", "devel"):
        idx = np.flatnonzero([s.split == split for s in u20.samples])
        keep[idx[frames_per_video([u20.samples[i] for i in idx], args.frames_per_video)]] = True
    u20 = u20.subset(keep)   # protocol masks keep or drop whole videos, so this serves every protocol
    u1 = r1.subset(r1.ok)
    u20 = u20.subset(np.any([p.train_mask(u20.samples) | p.devel_mask(u20.samples) for p in protos], 0))
    u1 = u1.subset(np.any([p.test_mask(u1.samples) for p in protos], 0))
    timing = {"faces": 0, "ms": 0.0, "nfe": None}
    # The teacher sees the 64 px centre (cue statistics over all of it) or the whole crop (cue
    # statistics over its centre half): either way the same face region as the reference.
    cue_centre = 1.0 if args.region == "centre" else 0.5

    def features(crops: np.ndarray) -> dict:
        out = {"reference": colour_frequency_stats(crops)}
        if teacher is None:
            return out
        x = centre_region(crops, 0.5) if args.region == "centre" else crops
        stats, scores = [], []
        for i in range(0, len(x), 256):   # chunks: cues of thousands of faces need not sit in memory
            res = compute_cues(teacher, np.ascontiguousarray(x[i:i + 256]), contract, batch=args.batch, **kw)
            stats.append(cue_stats(res.cue, centre=cue_centre))
            scores.append(mean_abs_cue(res.cue, centre=cue_centre))
            timing["faces"] += len(res.cue)
            timing["ms"] += res.ms_per_face * len(res.cue)
            timing["nfe"] = res.nfe
        return {**out, "cue": np.concatenate(stats), "mean_abs": np.concatenate(scores)}

    print(f"eval-cue: {len(u20)} train/devel faces ({args.frames_per_video} per video), {len(u1)} test faces"
          + ("" if teacher is None else f"; teacher {args.teacher} {kw}"))
    f20, f1 = features(u20.crops), features(u1.crops)
    extra: dict = {}
    if args.p4 and any(p.name == "P1" for p in protos):
        lfw = store.lfw()
        lfw = lfw.subset(lfw.ok & np.array([s.split == "heldout" for s in lfw.samples]))
        keep = np.zeros(len(lfw), bool)   # evenly spaced, deterministic
        keep[np.linspace(0, len(lfw) - 1, min(len(lfw), args.p4_max_faces)).round().astype(int)] = True
        lfw = lfw.subset(keep)
        london = store.london()
        extra = {"lfw_heldout": features(lfw.crops), "london": features(london.subset(london.ok).crops)}
    results, fta = [], {}
    for p in protos:
        masks = {"train": p.train_mask(u20.samples), "devel": p.devel_mask(u20.samples),
                 "test": p.test_mask(u1.samples)}
        src = {"train": f20, "devel": f20, "test": f1}
        sets = {s: (u1 if s == "test" else u20).subset(m) for s, m in masks.items()}
        ia = {s: np.array([x.is_attack for x in cs.samples], bool) for s, cs in sets.items()}
        sp = {s: np.array([x.species for x in cs.samples]) for s, cs in sets.items()}
        groups = np.array([x.subject or x.key for x in sets["test"].samples])
        test_all = r1.subset(p.test_mask(r1.samples))
        fta[p.name] = {"test_images": len(test_all), "test_failed": int((~test_all.ok).sum())}
        ex = extra if p.name == "P1" else {}
        common = dict(groups_test=groups, bootstrap=args.bootstrap)
        results.append(evaluate_cue_on_protocol(
            p.name, {s: src[s]["reference"][masks[s]] for s in masks}, ia, sp,
            extra_bona_fide={k: v["reference"] for k, v in ex.items()},
            name="colour+FFT stats (reference)", feature_names=STAT_NAMES, **common))
        if teacher is not None:
            results.append(evaluate_cue_on_protocol(
                p.name, {s: src[s]["cue"][masks[s]] for s in masks}, ia, sp,
                unsupervised_score_by_split={s: src[s]["mean_abs"][masks[s]] for s in masks},
                extra_bona_fide={k: v["cue"] for k, v in ex.items()},
                extra_bona_fide_unsupervised={k: v["mean_abs"] for k, v in ex.items()},
                name=f"{args.teacher} cue", feature_names=CUE_STAT_NAMES, **common))
    if teacher is not None:
        provenance.update(kw, region=args.region, nfe=timing["nfe"], faces_timed=timing["faces"],
                          ms_per_face=timing["ms"] / max(timing["faces"], 1), device=args.device,
                          threads=args.threads, batch=args.batch)
    report = {"command": "eval-cue", "protocols": [p.name for p in protos],
              "frames_per_video": args.frames_per_video, "contract": contract.to_dict(),
              "teacher": provenance or None, "fta": fta,
              "fta_trees": {name: {"images": len(cs), "failed": int((~cs.ok).sum())}
                            for name, cs in (("replay_20f", r20), ("replay_1f", r1))},
              "results": results}
    head = (f"Cue evaluation, {', '.join(report['protocols'])}; train/devel {args.frames_per_video} frames "
            f"per video, test one frame per video; thresholds at the devel D-EER.\n")
    if teacher is not None:
        head += (f"Teacher {args.teacher} {kw}, region {args.region}: NFE {timing['nfe']}, "
                 f"{provenance['ms_per_face']:.1f} ms per face ({args.device}, {args.threads} threads, "
                 f"batch {args.batch}).\n")
    md = head + "\n" + results_table_markdown(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(md)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    if args.grid and teacher is not None:
        _write_grid(args, u1, teacher, kw, contract)
    print(md)
    print(f"wrote {args.out.with_suffix('.md')}, {args.out.with_suffix('.json')}")
    return 0


def _write_grid(args: argparse.Namespace, test_set, teacher, kw: dict, contract) -> None:
    """A few test faces per class (bona fide first, then each species), for looking at, not for docs."""
    import numpy as np

    from ..distill.cue_eval import compute_cues, save_grid
    from ..distill.cue_features import centre_region

    species = np.array([s.species for s in test_set.samples])
    classes = sorted(set(species), key=lambda s: (s != "bona_fide", s))
    by_class = [list(np.flatnonzero(species == c)) for c in classes]
    turns = [i for j in range(max(map(len, by_class))) for c in by_class if j < len(c) for i in [c[j]]]
    idx = sorted(turns[:args.grid], key=lambda i: (classes.index(species[i]), i))   # round robin, grouped
    crops = test_set.crops[idx]
    x = centre_region(crops, 0.5) if args.region == "centre" else crops
    res = compute_cues(teacher, np.ascontiguousarray(x), contract, batch=args.batch, **kw)
    rows = [(f"{species[i]} {Path(test_set.samples[i].path).stem[:34]}", x[k], res.restored[k], res.cue[k])
            for k, i in enumerate(idx)]
    path = save_grid(rows, args.out.with_name(args.out.name + "_grid.png"))
    print(f"wrote {path} (Replay-Attack faces: research-only licence, do not commit)")
