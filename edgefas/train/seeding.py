"""The random stream of one training step, for one process.

Every training loop draws a step's batch from a generator derived from (seed, step), so that a
resumed run draws the batches an uninterrupted one would. Under a multi-process launch each
process must draw *other* batches (else N processes train on N copies of one batch): the
process index joins the entropy. Process 0 keeps the plain (seed, step) entropy, so one-process
runs draw exactly the batches they drew before the index was added, and old runs resume alike.
"""
from __future__ import annotations

import numpy as np


def step_entropy(seed: int, step: int, process_index: int = 0, stream: int = 0) -> list[int]:
    """The SeedSequence entropy of ``step`` on process ``process_index``; ``stream`` tells apart
    two generators of one step (0: the host batches, 1: the device batches of the teachers).
    numpy pads entropy with zeros, so ``[seed, step, 0]`` would equal ``[seed, step]``: the
    process index goes last, where it is non-zero whenever it is there."""
    entropy = [seed, step] + ([stream] if stream or process_index else [])
    return entropy + ([process_index] if process_index else [])


def step_rng(seed: int, step: int, process_index: int = 0, stream: int = 0) -> np.random.Generator:
    """A generator for ``step`` on process ``process_index`` (see :func:`step_entropy`)."""
    return np.random.default_rng(step_entropy(seed, step, process_index, stream))
