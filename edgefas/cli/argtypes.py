"""argparse value types shared by the commands: a bad number is a usage error (exit 2) with
the option's name, not a traceback deep inside the command."""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _number(kind: type, ok: Callable[[float], bool], rule: str) -> Callable[[str], float]:
    """An argparse type: ``text`` as ``kind`` (int or float), finite and passing ``ok``."""
    def convert(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a {'whole number' if kind is int else 'number'}") from None
        if not math.isfinite(v) or not ok(v):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return v
    convert.__name__ = kind.__name__   # argparse names the type in its messages
    return convert


#: a whole number >= 1 (threads, runs, steps, frames)
positive_int = _number(int, lambda v: v >= 1, ">= 1")
#: a whole number >= 0 (warm-up passes, counts where 0 means none)
non_negative_int = _number(int, lambda v: v >= 0, ">= 0")
#: a TCP port
port = _number(int, lambda v: 1 <= v <= 65535, "a port, 1-65535")
#: a finite number > 0 (seconds, frame rates, sizes)
positive_float = _number(float, lambda v: v > 0, "a finite number > 0")
#: a finite number >= 0 (where 0 means "off")
non_negative_float = _number(float, lambda v: v >= 0, "a finite number >= 0")
#: a number in [0, 1] (overlaps, shares)
fraction = _number(float, lambda v: 0 <= v <= 1, "in [0, 1]")


#: --no-resume of the training commands: starting over clears the old run's checkpoints, which a
#: later plain call would otherwise resume
NO_RESUME_HELP = "start over even if checkpoints exist (deletes the earlier run's epoch_* folders)"
