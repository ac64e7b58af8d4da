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
from .argtypes import non_negative_int, positive_int

#: t0 and steps when not given (diffusion-cpu.md: only t0 of about 50-100 keeps texture in pixel
#: space for AG-FAS; DDM at 10 steps each way is the least round-trip-dominated setting measured)
DEFAULT_T0_STEPS = {"agfas": (100, 5), "ddm": (200, 10)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..data.protocols import PROTOCOLS

    p.add_argument("--teacher", choices=["ddm", "agfas", "despoof", "student"],
                   help="teacher kind (student: a distilled student, edgefas distill)")
    p.add_argument("--nfe", type=int, help="student: evaluations per face (1, 2 or 4; default: its own)")
    p.add_argument("--fidelity", action="store_true",
                   help="student: also run its teacher on the devel faces and report the PSNR of the "
                        "student's restored face and cue to the teacher's, and the speed ratio")
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
    p.add_argument("--protocol", default="P1",
                   help=f"one of {', '.join(PROTOCOLS)}; a comma list; or all (reference only). A teacher "
                        "may be evaluated on every protocol whose train split holds all the faces it "
                        "learnt from (a live-only P1 teacher also serves P2-*) (default: %(default)s)")
    p.add_argument("--sweep", help="diffusion teachers: T0:STEPS settings to try, e.g. 50:2,100:5,150:5; "
                                   "each protocol keeps the one with the best devel AUC")
    p.add_argument("--p4", action="store_true", help="with P1: BPCER on LFW held-out and london")
    p.add_argument("--p4-max-faces", type=int, default=500, help="LFW held-out faces used (default: 500)")
    p.add_argument("--train-lfw", type=int, default=0, metavar="N",
                   help="add N faces of LFW's train identities to every protocol's train split as bona "
                        "fide (the classifiers learn another camera's live faces, as the RGB baseline's "
                        "recipe does); P4's held-out identities stay unseen (default: 0)")
    p.add_argument("--frames-per-video", type=int, default=2,
                   help="train/devel frames per video from the 20-frame tree (default: %(default)s)")
    p.add_argument("--out", type=Path, default=Path("eval_cue"), help="output prefix: OUT.md, OUT.json")
    p.add_argument("--grid", type=int, default=0, help="write OUT_grid.png with this many test faces "
                   "(Replay-Attack: research-only licence, never commit it)")
    p.add_argument("--fixture-grid", type=Path, help="also write this PNG grid of the redistributable "
                   "fixtures (silentface live/print/replay photos, london portraits): fit for docs/")
    p.add_argument("--batch", type=positive_int, default=32,
                   help="faces per teacher call (default: %(default)s)")
    p.add_argument("--threads", type=positive_int, default=2, help="torch threads (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="torch device for the teacher (cpu, cuda)")
    p.add_argument("--bootstrap", type=non_negative_int, default=1000,
                   help="test bootstrap resamples (0 = none)")
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
    elif args.teacher == "student":
        from ..distill.train_student import load_student

        teacher, info = load_student(args.teacher_dir)
        teacher.to(args.device)
        infos, folders = {"student": info}, {"student": str(args.teacher_dir)}
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
    kw: dict = {"nfe": args.nfe} if args.teacher == "student" and args.nfe else {}
    if args.teacher in DEFAULT_T0_STEPS:
        t0, steps = DEFAULT_T0_STEPS[args.teacher]
        kw = {"t0": args.t0 if args.t0 is not None else t0, "steps": args.steps or steps}
        if args.teacher == "agfas":
            kw["noise_seed"] = args.noise_seed
    return teacher, kw, {"kind": args.teacher, "folders": folders, "teacher_json": infos}


def _teacher_input(args: argparse.Namespace, crops):
    """What the teacher sees of (N, S, S, 3) crops: their 64 px centre (--region centre) or all."""
    from ..distill.cue_features import centre_region

    return centre_region(crops, 0.5) if args.region == "centre" else crops


def _student_fidelity(args: argparse.Namespace, student, provenance: dict, crops, contract,
                      setting: dict) -> dict:
    """PSNR (dB, on [-1, 1] images: peak-to-peak 2) of the student's restored face to its teacher's."""
    import numpy as np

    from ..distill.cue_eval import compute_cues
    from ..distill.train_teacher import load_diffusion_teacher
    from ..runtime.preprocess import to_tensor

    info = provenance["teacher_json"]["student"]
    tdir = info["teacher"]["dir"]
    if not tdir:
        raise EdgefasError("the student's JSON does not name its teacher folder")
    teacher = load_diffusion_teacher(tdir)
    teacher.unet.to(args.device)
    recipe = info["recipe"]
    kw = {"t0": recipe["t0"], "steps": recipe["teacher_steps"], "noise_seed": recipe["noise_seed"]}
    x = np.ascontiguousarray(_teacher_input(args, crops))
    ref = compute_cues(teacher, x, contract, batch=args.batch, **kw)
    got = compute_cues(student, x, contract, batch=args.batch, **setting)
    ref_r, got_r = to_tensor(ref.restored, contract), to_tensor(got.restored, contract)
    psnr = lambda a, b: float(10 * np.log10(4.0 / max(np.mean((a - b) ** 2), 1e-12)))
    return {"faces": len(x), "split": "devel", "teacher": {"dir": tdir, **kw, "nfe": ref.nfe,
                                                          "ms_per_face": ref.ms_per_face},
            "student": {"nfe": got.nfe, "ms_per_face": got.ms_per_face},
            "psnr_restored_db": psnr(ref_r, got_r), "psnr_cue_db": psnr(ref.cue, got.cue),
            "speed_ratio": ref.ms_per_face / max(got.ms_per_face, 1e-9)}


def _protocol_names(text: str) -> list[str]:
    """--protocol: one name, a comma list, or "all"."""
    from ..data.protocols import PROTOCOLS, get_protocol

    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return list(PROTOCOLS)
    for n in names:
        get_protocol(n)   # unknown names: an error with the nearest one
    if not names or len(set(names)) != len(names):
        raise EdgefasError(f"--protocol {text!r}: give protocol names once each, comma-separated")
    return names


def _settings(args: argparse.Namespace, kw: dict) -> list[dict]:
    """The teacher settings to try: --sweep T0:STEPS,... or the one given by --t0/--steps."""
    if not args.sweep:
        return [kw]
    if "t0" not in kw:
        raise EdgefasError("--sweep is for the diffusion teachers (agfas, ddm): the DS Net has no options")
    out = []
    for item in args.sweep.split(","):
        try:
            t0, steps = (int(v) for v in item.split(":"))
        except ValueError:
            raise EdgefasError(f"--sweep item {item!r}: write T0:STEPS, e.g. 50:2,100:5") from None
        out.append({**kw, "t0": t0, "steps": steps})
    return out


def _check_settings(teacher, settings: list[dict]) -> None:
    """Refuse an impossible T0:STEPS before any face is computed (not minutes into a sweep)."""
    from ..distill.errors import TeacherConfigError
    from ..distill.schedule import timestep_grid

    schedules = [getattr(teacher, "schedule", None)] + [getattr(getattr(teacher, n, None), "schedule", None)
                                                        for n in ("eps_s", "eps_g")]
    for schedule in (s for s in schedules if s is not None):
        for setting in (s for s in settings if "t0" in s):
            try:
                timestep_grid(schedule, setting["t0"], setting["steps"])
            except TeacherConfigError as e:
                raise EdgefasError(f"setting {setting['t0']}:{setting['steps']}: {e}") from None


def _check_fits(args: argparse.Namespace, provenance: dict, protocols: list[str], samples) -> None:
    """Every face each teacher learnt from must be in every evaluated protocol's train split."""
    from ..distill.errors import TeacherConfigError
    from ..distill.teacher_data import check_teacher_fits

    for name, info in provenance["teacher_json"].items():
        data = info.get("data")
        if not data and len(protocols) == 1:
            print(f"note: the {name} teacher has no data record; trusting that it was trained "
                  f"on {protocols[0]} train only")
            continue
        for p in protocols:
            try:
                check_teacher_fits(data, p, samples)
            except TeacherConfigError as exc:
                raise EdgefasError(f"{name}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from . import require_training_extra

    require_training_extra("eval-cue")
    import numpy as np

    from ..data.protocols import frames_per_video, get_protocol
    from ..data.samples import BONA_FIDE
    from ..data.sources import CropStore, DataRoots
    from ..distill.cue_eval import (
        compute_cues,
        evaluate_cue_on_protocol,
        fit_cue_classifier,
        results_table_markdown,
        score_live,
    )
    from ..distill.cue_features import (
        CUE_STAT_NAMES,
        STAT_NAMES,
        colour_frequency_stats,
        cue_stats,
        mean_abs_cue,
    )
    from ..metrics import auc
    from ..runtime.preprocess import Contract
    from ..train.run import face_stage_for

    if args.reference_only == bool(args.teacher):
        raise EdgefasError("pass --teacher KIND or --reference-only (exactly one)")
    if args.protocol.strip() == "all" and args.teacher:
        raise EdgefasError("a teacher is evaluated on named protocols, not 'all': one protocol, or a "
                           "comma list of protocols whose train splits hold all of its training faces")
    if args.frames_per_video < 1:
        raise EdgefasError("--frames-per-video must be >= 1")
    names = _protocol_names(args.protocol)
    contract = Contract()
    teacher, kw, provenance = (None, {}, {}) if args.reference_only else _load_teacher(args, contract)
    settings = _settings(args, kw) if teacher is not None else []
    _check_settings(teacher, settings)
    stage, sha = face_stage_for(contract)
    store = CropStore(stage, sha, DataRoots(args.replay_root, args.replay_1frame_root, args.lfw_root))
    protos = [get_protocol(n) for n in names]
    r20, r1 = store.replay(frames="20"), store.replay(frames="1")
    if teacher is not None:
        _check_fits(args, provenance, names, r20.samples)
    u20 = r20.subset(r20.ok)
    keep = np.zeros(len(u20), bool)   # per split, as build_sets does (video names may repeat across splits)
    for split in ("train", "devel"):
        idx = np.flatnonzero([s.split == split for s in u20.samples])
        keep[idx[frames_per_video([u20.samples[i] for i in idx], args.frames_per_video)]] = True
    u20 = u20.subset(keep)   # protocol masks keep or drop whole videos, so this serves every protocol
    u1 = r1.subset(r1.ok)
    u20 = u20.subset(np.any([p.train_mask(u20.samples) | p.devel_mask(u20.samples) for p in protos], 0))
    u1 = u1.subset(np.any([p.test_mask(u1.samples) for p in protos], 0))
    timing = [{"faces": 0, "ms": 0.0, "nfe": None} for _ in settings]
    # The teacher sees the 64 px centre (cue statistics over all of it) or the whole crop (cue
    # statistics over its centre half): either way the same face region as the reference.
    cue_centre = 1.0 if args.region == "centre" else 0.5

    def cues(crops: np.ndarray, i: int) -> dict:
        from tqdm.auto import tqdm

        x = _teacher_input(args, crops)
        stats, scores = [], []
        chunks = range(0, len(x), 256)   # chunks: cues of thousands of faces need not sit in memory
        opts = ", ".join(f"{k} {v}" for k, v in settings[i].items()) or "one pass"
        for j in tqdm(chunks, desc=f"{args.teacher} cues ({opts}), {len(x)} faces", unit="chunk",
                      disable=len(chunks) < 2):
            res = compute_cues(teacher, np.ascontiguousarray(x[j:j + 256]), contract, batch=args.batch,
                               **settings[i])
            stats.append(cue_stats(res.cue, centre=cue_centre))
            scores.append(mean_abs_cue(res.cue, centre=cue_centre))
            timing[i]["faces"] += len(res.cue)
            timing[i]["ms"] += res.ms_per_face * len(res.cue)
            timing[i]["nfe"] = res.nfe
        return {"cue": np.concatenate(stats), "mean_abs": np.concatenate(scores)}

    print(f"eval-cue: {len(u20)} train/devel faces ({args.frames_per_video} per video), {len(u1)} test faces"
          + ("" if teacher is None else f"; teacher {args.teacher}, settings {settings}"))
    ref20, ref1 = colour_frequency_stats(u20.crops), colour_frequency_stats(u1.crops)
    c20 = {i: cues(u20.crops, i) for i in range(len(settings))}
    c1: dict[int, dict] = {}
    ref_lfw, c_lfw = np.zeros((0, len(STAT_NAMES)), np.float32), {}
    if args.train_lfw > 0:
        lt = store.lfw()
        lt = lt.subset(lt.ok & np.array([s.split == "train" for s in lt.samples]))
        pick = np.unique(np.linspace(0, len(lt) - 1, min(len(lt), args.train_lfw)).round().astype(int))
        lfw_train = lt.crops[pick]
        ref_lfw = colour_frequency_stats(lfw_train)
        c_lfw = {i: cues(lfw_train, i) for i in range(len(settings))}
    n_lfw = len(ref_lfw)

    def with_lfw(train_values: np.ndarray, lfw_values: np.ndarray | None) -> np.ndarray:
        """Train features/scores followed by those of the LFW train faces (when --train-lfw)."""
        return train_values if not n_lfw else np.concatenate([train_values, lfw_values])

    extra_sets: dict = {}
    if args.p4 and any(p.name == "P1" for p in protos):
        lfw = store.lfw()
        lfw = lfw.subset(lfw.ok & np.array([s.split == "heldout" for s in lfw.samples]))
        keep = np.zeros(len(lfw), bool)   # evenly spaced, deterministic
        keep[np.linspace(0, len(lfw) - 1, min(len(lfw), args.p4_max_faces)).round().astype(int)] = True
        london = store.london()
        extra_sets = {"lfw_heldout": lfw.subset(keep).crops, "london": london.subset(london.ok).crops}
    results, fta, sweeps = [], {}, {}
    for p in protos:
        masks = {"train": p.train_mask(u20.samples), "devel": p.devel_mask(u20.samples),
                 "test": p.test_mask(u1.samples)}
        sets = {s: (u1 if s == "test" else u20).subset(m) for s, m in masks.items()}
        ia = {s: np.array([x.is_attack for x in cs.samples], bool) for s, cs in sets.items()}
        sp = {s: np.array([x.species for x in cs.samples]) for s, cs in sets.items()}
        ia["train"] = with_lfw(ia["train"], np.zeros(n_lfw, bool))
        sp["train"] = with_lfw(sp["train"], np.full(n_lfw, BONA_FIDE))
        groups = np.array([x.subject or x.key for x in sets["test"].samples])
        test_all = r1.subset(p.test_mask(r1.samples))
        fta[p.name] = {"test_images": len(test_all), "test_failed": int((~test_all.ok).sum())}
        p4 = args.p4 and p.name == "P1"
        common = dict(groups_test=groups, bootstrap=args.bootstrap)
        results.append(evaluate_cue_on_protocol(
            p.name, {"train": with_lfw(ref20[masks["train"]], ref_lfw), "devel": ref20[masks["devel"]],
                     "test": ref1[masks["test"]]}, ia, sp,
            extra_bona_fide={k: colour_frequency_stats(v) for k, v in extra_sets.items()} if p4 else {},
            name="colour+FFT stats (reference)", feature_names=STAT_NAMES, **common))
        if teacher is None:
            continue
        # Choose the teacher setting on this protocol's devel split: the classifier fit on train,
        # its devel AUC (ties: fewer network evaluations). Test is looked at once, afterwards.
        rows = []
        for i, st in enumerate(settings):
            f = c20[i]
            model = fit_cue_classifier(with_lfw(f["cue"][masks["train"]], c_lfw.get(i, {}).get("cue")),
                                       ia["train"])
            a_clf = auc(score_live(model, f["cue"][masks["devel"]]), ia["devel"])
            a_abs = auc(-f["mean_abs"][masks["devel"]], ia["devel"])
            rows.append({**st, "nfe": timing[i]["nfe"], "devel_auc_classifier": a_clf,
                         "devel_auc_mean_abs_either_sign": max(a_abs, 1 - a_abs)})
        best = max(range(len(rows)), key=lambda i: (rows[i]["devel_auc_classifier"], -rows[i]["nfe"]))
        sweeps[p.name] = {"chosen": settings[best], "by": "devel AUC of the train-fit cue classifier",
                          "candidates": rows}
        if best not in c1:
            c1[best] = cues(u1.crops, best)
        ex = {k: cues(v, best) for k, v in extra_sets.items()} if p4 else {}
        src = {"train": c20[best], "devel": c20[best], "test": c1[best]}
        part = {key: {s: src[s][key][masks[s]] for s in masks} for key in ("cue", "mean_abs")}
        for key in part:
            part[key]["train"] = with_lfw(part[key]["train"], c_lfw.get(best, {}).get(key))
        res = evaluate_cue_on_protocol(
            p.name, part["cue"], ia, sp, unsupervised_score_by_split=part["mean_abs"],
            extra_bona_fide={k: v["cue"] for k, v in ex.items()},
            extra_bona_fide_unsupervised={k: v["mean_abs"] for k, v in ex.items()},
            name=f"{args.teacher} cue", feature_names=CUE_STAT_NAMES, **common)
        results.append({**res, "teacher_setting": settings[best]})
    if args.fidelity and args.teacher == "student":
        devel = np.any([p.devel_mask(u20.samples) for p in protos], 0)
        provenance["fidelity"] = _student_fidelity(args, teacher, provenance, u20.subset(devel).crops,
                                                   contract, settings[0])
    if teacher is not None:
        provenance.update(settings=[{**st, "nfe": tm["nfe"], "faces_timed": tm["faces"],
                                     "ms_per_face": tm["ms"] / max(tm["faces"], 1)}
                                    for st, tm in zip(settings, timing)],
                          sweeps=sweeps, region=args.region, device=args.device, threads=args.threads,
                          batch=args.batch)
        first = provenance["settings"][0]   # kept flat for one-setting runs
        provenance.update({k: first[k] for k in ("nfe", "faces_timed", "ms_per_face")})
    report = {"command": "eval-cue", "argv": getattr(args, "_argv", None), "protocols": names,
              "frames_per_video": args.frames_per_video, "train_lfw_faces": n_lfw,
              "contract": contract.to_dict(),
              "teacher": provenance or None, "fta": fta,
              "fta_trees": {name: {"images": len(cs), "failed": int((~cs.ok).sum())}
                            for name, cs in (("replay_20f", r20), ("replay_1f", r1))},
              "results": results}
    head = (f"Cue evaluation, {', '.join(names)}; train/devel {args.frames_per_video} frames "
            f"per video, test one frame per video; thresholds at the devel D-EER.\n")
    if n_lfw:
        head += f"Train also holds {n_lfw} LFW faces of the train identities as bona fide.\n"
    if teacher is not None:
        head += f"\nTeacher {args.teacher}, region {args.region}, {args.device}, {args.threads} threads, " \
                f"batch {args.batch}:\n\n"
        for i, st in enumerate(provenance["settings"]):
            opts = ", ".join(f"{k} {v}" for k, v in settings[i].items()) or "one pass"
            devel = "; ".join(f"{n} devel AUC {sw['candidates'][i]['devel_auc_classifier']:.4f}"
                              for n, sw in sweeps.items())
            chosen = [n for n, sw in sweeps.items() if sw["chosen"] == settings[i]]
            head += (f"- {opts}: NFE {st['nfe']}, {st['ms_per_face']:.1f} ms per face over "
                     f"{st['faces_timed']} faces; {devel}"
                     + (f"; chosen for {', '.join(chosen)}" if chosen else "") + "\n")
    fid = (provenance or {}).get("fidelity")
    if fid:
        head += (f"\nStudent fidelity to its teacher on {fid['faces']} devel faces: PSNR restored face "
                 f"{fid['psnr_restored_db']:.2f} dB, cue {fid['psnr_cue_db']:.2f} dB; teacher "
                 f"{fid['teacher']['nfe']} NFE {fid['teacher']['ms_per_face']:.1f} ms/face, student "
                 f"{fid['student']['nfe']} NFE {fid['student']['ms_per_face']:.1f} ms/face "
                 f"({fid['speed_ratio']:.1f}x faster).\n")
    md = head + "\n" + results_table_markdown(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(md)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    if args.grid and teacher is not None:
        _write_grid(args, u1, teacher, sweeps[names[0]]["chosen"], contract)
    if args.fixture_grid and teacher is not None:
        _write_fixture_grid(args, store, teacher, sweeps[names[0]]["chosen"], contract)
    print(md)
    print(f"wrote {args.out.with_suffix('.md')}, {args.out.with_suffix('.json')}")
    return 0


def _write_grid(args: argparse.Namespace, test_set, teacher, kw: dict, contract) -> None:
    """A few test faces per class (bona fide first, then each species), for looking at, not for docs."""
    import numpy as np

    from ..distill.cue_eval import compute_cues, save_grid

    species = np.array([s.species for s in test_set.samples])
    classes = sorted(set(species), key=lambda s: (s != "bona_fide", s))
    by_class = [list(np.flatnonzero(species == c)) for c in classes]
    turns = [i for j in range(max(map(len, by_class))) for c in by_class if j < len(c) for i in [c[j]]]
    idx = sorted(turns[:args.grid], key=lambda i: (classes.index(species[i]), i))   # round robin, grouped
    crops = test_set.crops[idx]
    x = _teacher_input(args, crops)
    res = compute_cues(teacher, np.ascontiguousarray(x), contract, batch=args.batch, **kw)
    rows = [(f"{species[i]} {Path(test_set.samples[i].path).stem[:34]}", x[k], res.restored[k], res.cue[k])
            for k, i in enumerate(idx)]
    path = save_grid(rows, args.out.with_name(args.out.name + "_grid.png"))
    print(f"wrote {path} (Replay-Attack faces: research-only licence, do not commit)")


#: silentface fixture names -> species (shared/fixtures/README.md: F = attack, T = live)
SILENTFACE_SPECIES = {"F1": "print", "F2": "tablet replay", "T1": "bona_fide", "T2": "bona_fide"}


def _write_fixture_grid(args: argparse.Namespace, store, teacher, kw: dict, contract) -> None:
    """input | restored | cue of the silentface photos and three london portraits (redistributable)."""
    import numpy as np

    from ..data.samples import BONA_FIDE, Sample
    from ..data.sources import find_shared_fixture, load_london
    from ..distill.cue_eval import compute_cues, save_grid

    sf = find_shared_fixture("silentface")
    if sf is None:
        raise EdgefasError("--fixture-grid needs shared/fixtures (set EDGEFAS_SHARED to shared/)")
    samples = []
    for f in sorted(sf.glob("*.jpg"), key=lambda f: (SILENTFACE_SPECIES.get(f.stem[-2:], "?") != BONA_FIDE,
                                                     SILENTFACE_SPECIES.get(f.stem[-2:], "?"), f.stem)):
        species = SILENTFACE_SPECIES.get(f.stem[-2:])
        if species:
            samples.append(Sample(str(f), species != BONA_FIDE, species, "fixture", "silentface"))
    crops = store.samples_set("silentface", samples)
    root = find_shared_fixture("london")
    london = store.samples_set("london_first3", load_london(root)[:3] if root else [])
    rows_src = [(f"{s.species} silentface {Path(s.path).stem}", c)
                for s, c, ok in zip(crops.samples, crops.crops, crops.ok) if ok]
    rows_src += [(f"bona_fide london {Path(s.path).stem}", c)
                 for s, c, ok in zip(london.samples, london.crops, london.ok) if ok]
    x = _teacher_input(args, np.stack([c for _, c in rows_src]))
    res = compute_cues(teacher, np.ascontiguousarray(x), contract, batch=args.batch, **kw)
    rows = [(label, x[k], res.restored[k], res.cue[k]) for k, (label, _) in enumerate(rows_src)]
    path = save_grid(rows, args.fixture_grid)
    print(f"wrote {path} (fixtures: silentface Apache-2.0, london CC BY 4.0)")
