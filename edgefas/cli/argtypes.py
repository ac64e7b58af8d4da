"""argparse value types shared by the commands: a bad number is a usage error (exit 2) with
the option's name, not a traceback deep inside the command."""
from __future__ import annotations

import argparse


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def positive_int(text: str) -> int:
    """A whole number >= 1 (threads, runs, steps, frames)."""
    v = _int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def non_negative_int(text: str) -> int:
    """A whole number >= 0 (warm-up passes, optional counts where 0 means none)."""
    v = _int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {v}")
    return v


def port(text: str) -> int:
    """A TCP port, 1-65535."""
    v = _int(text)
    if not 1 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1-65535, got {v}")
    return v
