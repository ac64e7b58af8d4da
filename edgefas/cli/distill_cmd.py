"""Distil an AG-FAS teacher into a few-step student de-spoofer (edgefas.distill.student).

objectives:
  consistency  consistency distillation (Song et al., "Consistency Models", ICML 2023, Alg. 2):
               the student maps any point of the teacher's ODE on [0, t0) to its clean end,
               usable at 1, 2 or 4 evaluations
  regression   the student matches the teacher's k-step output in one evaluation (comparison)

The student learns from the same protocol's train faces (live and attack) as the teacher may
see; --t0 must be the teacher setting eval-cue chose on devel (its JSON says which).
Checkpoints (safetensors) go to --out; the same command resumes. The student is written to
OUT/student/.

examples:
  edgefas distill --teacher-dir runs/teachers/agfas/teacher --t0 100 --out runs/students/cd
  edgefas distill --teacher-dir runs/teachers/agfas/teacher --t0 100 --objective regression \\
      --teacher-steps 5 --out runs/students/reg
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .argtypes import NO_RESUME_HELP, positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..data.protocols import PROTOCOLS

    p.add_argument("--teacher-dir", required=True, type=Path, help="an AG-FAS teacher folder")
    p.add_argument("--objective", default="consistency", choices=["consistency", "regression"])
    p.add_argument("--recipe", default="cpu", choices=["tiny", "cpu", "gpu"])
    p.add_argument("--t0", type=int, help="teacher noise level (default: the recipe's: cpu 100, tiny 20)")
    p.add_argument("--teacher-steps", type=int, help="regression: teacher DDIM steps (default 5)")
    p.add_argument("--steps", type=positive_int, help="override the recipe's number of training steps")
    p.add_argument("--threads", type=positive_int, help="torch threads (default: the recipe's)")
    p.add_argument("--protocol", default="P1", choices=list(PROTOCOLS),
                   help="whose train faces to learn from (default: %(default)s)")
    p.add_argument("--out", required=True, type=Path, help="run folder")
    p.add_argument("--no-resume", action="store_true", help=NO_RESUME_HELP)
    p.add_argument("--replay-root", type=Path, help="Replay-Attack 20-frames-per-video tree")


def run(args: argparse.Namespace) -> int:
    from . import require_training_extra

    require_training_extra("distill")
    from ..data.sources import DataRoots
    from ..distill.recipes import get_student_recipe
    from ..distill.teacher_data import check_init_fits, training_faces
    from ..distill.train_student import train_student
    from ..distill.train_teacher import load_diffusion_teacher
    from ..runtime.preprocess import Contract

    overrides = {k: v for k, v in {"objective": args.objective, "t0": args.t0, "steps": args.steps,
                                    "teacher_steps": args.teacher_steps, "threads": args.threads}.items()
                 if v is not None}
    recipe = get_student_recipe(args.recipe, **overrides)
    teacher = load_diffusion_teacher(args.teacher_dir)
    # the student learns the teacher's restorations: a teacher that saw what the protocol holds
    # out would hand it on (fusion training checks again, this stops it before the minutes here)
    check_init_fits(args.teacher_dir, args.protocol, DataRoots(args.replay_root).resolve().replay_frames,
                    purpose=f"--teacher-dir {args.teacher_dir} cannot teach a {args.protocol} student")
    contract = Contract()
    # "despoof": the labelled set, live and attack faces of the protocol's train split
    crops, is_live, data = training_faces("despoof", args.protocol, DataRoots(args.replay_root), contract)
    data["model"] = "student"
    print(f"student ({recipe.objective}, t0 {recipe.t0}) on {args.protocol} train: "
          f"{int(is_live.sum())} live / {int((~is_live).sum())} attack crops")
    out = train_student(recipe, teacher, crops, args.out, resume=not args.no_resume, contract=contract,
                        teacher_dir=args.teacher_dir, data=data)
    print(f"student written to {out}")
    return 0
