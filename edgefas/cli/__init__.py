"""The ``edgefas`` command. ``main(argv)`` takes its arguments so tests call it in-process."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from ..errors import EdgefasError, unknown_name

#: subcommand -> (module in this package, one-line help)
COMMANDS = {
    "detect": ("detect_cmd", "score images or folders with a bundle (default: the shipped one)"),
    "eval": ("eval_cmd", "ISO/IEC 30107-3 metrics of a bundle on a protocol or a labelled folder"),
    "train": ("train_cmd", "train the RGB baseline for a protocol (recipes: tiny, cpu, gpu)"),
    "soup": ("soup_cmd", "average branches of one training run (train --branch-from) into one "
                         "network, and package it"),
    "backbone-weights": ("backbone_cmd", "write pretrained (ImageNet) backbone weights for train "
                                         "--backbone-weights, with their source and licence"),
    "export": ("export_cmd", "run -> ONNX bundle, or bundle -> onnx / openvino / tflite / coreml / "
                              "tensorrt, parity-gated"),
    "bench": ("bench_cmd", "latency per stage and backend on camera-sized frames (JSON + markdown)"),
    "teacher": ("teacher_cmd", "train a de-spoofing teacher: ddm-live, ddm-all, agfas, despoof"),
    "distill": ("distill_cmd", "distil an AG-FAS teacher into a 1-4 step student de-spoofer"),
    "eval-cue": ("cue_cmd", "evaluate a teacher's spoof cue against the colour + frequency reference"),
    "watch": ("watch_cmd", "video session on a file, camera or frame folder: per-frame + verdict"),
    "eval-video": ("eval_video_cmd", "video-level vs frame-level metrics on Replay-Attack (20 f/video)"),
    "calibrate": ("calibrate_cmd", "fit the threshold (+ calibration) to one camera's captures"),
    "finetune": ("finetune_cmd", "fine-tune a bundle's classifier on one camera's live + attack captures"),
    "serve": ("serve_cmd", "local web server: POST /v1/detect API + live camera demo page"),
}


def add_far_faces_argument(p: argparse.ArgumentParser) -> None:
    """``--far-faces``, shared by the commands that run the Detector on camera frames."""
    p.add_argument("--far-faces", action="store_true",
                   help="when no face is found, look again in 4 overlapping tiles (finds faces "
                        "down to ~8 %% of the frame width; 4 more detector runs per empty frame)")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="edgefas",
        description="Face anti-spoofing (presentation attack detection) for edge devices. "
                    "Run 'edgefas COMMAND --help' for a command's options.",
        epilog="example: edgefas detect photo.jpg   (prints live/spoof with a calibrated score)")
    parser.add_argument("--version", action="version", version=f"edgefas {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_) in COMMANDS.items():
        mod = importlib.import_module(f"{__name__}.{module}")
        p = sub.add_parser(name, help=help_, description=mod.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def require_training_extra(command: str) -> None:
    """Training and export need torch, which the runtime install leaves out on purpose."""
    import importlib.util

    missing = [m for m in ("torch", "timm") if importlib.util.find_spec(m) is None]
    if missing:
        raise EdgefasError(f"'edgefas {command}' needs {' and '.join(missing)}: "
                           "pip install -c constraints.txt 'edgefas[train]'")


def _plain_data_warnings() -> None:
    """Data warnings print as one 'note:' line, not as Python's file:line warning format."""
    import warnings

    from ..errors import DataWarning

    default = warnings.formatwarning
    if getattr(default, "edgefas", False):   # main() runs many times in one test process
        return

    def fmt(message, category, filename, lineno, line=None):
        if issubclass(category, DataWarning):
            return f"edgefas: note: {message}\n"
        return default(message, category, filename, lineno, line)

    fmt.edgefas = True  # type: ignore[attr-defined]
    warnings.formatwarning = fmt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 a reported error, 2 bad usage)."""
    argv = list(argv) if argv is not None else sys.argv[1:]
    if argv and not argv[0].startswith("-") and argv[0] not in COMMANDS:
        # argparse would list every command; a typo deserves the nearest name
        print(f"edgefas: error: {unknown_name('command', argv[0], list(COMMANDS))}",
              file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    args._argv = argv  # commands that record how a result was made quote it
    _plain_data_warnings()
    try:
        return int(args._run(args) or 0)
    except EdgefasError as exc:  # expected failures: one line, no traceback
        print(f"edgefas {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # the reader went away (`edgefas detect DIR --json | head -1`): stop quietly, as
        # command-line tools do; stdout is pointed at devnull so the interpreter's final
        # flush does not raise again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as exc:  # a path the user gave cannot be read or written
        print(f"edgefas {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
