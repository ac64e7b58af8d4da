"""The generalization protocols every model is compared on.

Replay-Attack's own test split is nearly saturated (a logistic regression on 20 colour and
frequency statistics reaches AUC 0.99), so besides the standard protocol we hold out what a
deployment meets and training never saw:

* ``P1``: standard train / devel / test.
* ``P2-<species>``: leave one attack species out (print, mobile, highdef): train and choose on
  the other two; report APCER on the held-out species of test and BPCER on test bona fide.
* ``P3-<a>-to-<b>``: cross-lighting: train and choose on one lighting, test on the other.
* ``P4``: unseen bona fide: BPCER at the P1 model's devel threshold on LFW identities held out
  of any training and on the london portraits.
* ``P5``: other data sets: the P1 model at its devel threshold on NUAA's test part (another
  webcam, another lab's printed photos) and on Essex faces94 (bona fide, a camcorder).

Training and devel always come from the 20-frames-per-video tree; test is the
one-frame-per-video tree (80 bona fide / 400 attacks in full).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import EdgefasError, unknown_name
from .replay_attack import SPECIES
from .samples import Sample


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    held_out_species: str | None = None   # P2
    train_lighting: str | None = None     # P3
    test_lighting: str | None = None      # P3

    def _keep(self, s: Sample, *, testing: bool) -> bool:
        if self.held_out_species and s.species == self.held_out_species:
            return testing
        if self.held_out_species and testing and s.is_attack:
            return False
        lighting = self.test_lighting if testing else self.train_lighting
        return lighting is None or s.lighting == lighting

    def train_mask(self, samples: Sequence[Sample]) -> np.ndarray:
        return np.array([s.split == "train" and self._keep(s, testing=False) for s in samples])

    def devel_mask(self, samples: Sequence[Sample]) -> np.ndarray:
        return np.array([s.split == "devel" and self._keep(s, testing=False) for s in samples])

    def test_mask(self, samples: Sequence[Sample]) -> np.ndarray:
        return np.array([s.split == "test" and self._keep(s, testing=True) for s in samples])


PROTOCOLS: dict[str, Protocol] = {
    "P1": Protocol("P1", "Replay-Attack standard train / devel / test"),
    **{f"P2-{sp}": Protocol(f"P2-{sp}", f"leave {sp} out: train and devel without {sp} "
                            f"attacks; test = {sp} attacks + all bona fide", held_out_species=sp)
       for sp in SPECIES},
    "P3-controlled-to-adverse": Protocol(
        "P3-controlled-to-adverse", "train/devel controlled lighting; test adverse",
        train_lighting="controlled", test_lighting="adverse"),
    "P3-adverse-to-controlled": Protocol(
        "P3-adverse-to-controlled", "train/devel adverse lighting; test controlled",
        train_lighting="adverse", test_lighting="controlled"),
}
#: P5 has no model of its own either: the P1 model at its threshold on other labs' data sets.
P5_DESCRIPTION = ("other data sets: the P1 model at its devel threshold on NUAA's test part (another "
                  "webcam, another lab's print attacks) and on Essex faces94 (bona fide, a camcorder)")
#: P4 has no model of its own: it scores unseen bona fide faces with the P1 model.
P4_DESCRIPTION = ("unseen bona fide: BPCER at the P1 devel threshold on LFW identities held out "
                  "of training and on the london portraits")


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise EdgefasError(unknown_name("protocol", name, [*PROTOCOLS, "P4", "P5"])) from None


def frames_per_video(samples: Sequence[Sample], k: int) -> np.ndarray:
    """Mask keeping ``k`` evenly spaced frames of each video (all frames of image sets)."""
    by_video: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        # Replay-Attack names a fixed-support and a hand-held attack video identically: the
        # support is part of a video's identity.
        by_video[(s.support, s.video or s.key)].append(i)
    keep = np.zeros(len(samples), bool)
    for idx in by_video.values():
        if len(idx) <= k:
            keep[idx] = True
        else:
            keep[[idx[j] for j in np.linspace(0, len(idx) - 1, k).round().astype(int)]] = True
    return keep


def draw_at_most(items: list, limit: int, rng: np.random.Generator) -> list:
    """At most ``limit`` of ``items``, drawn without replacement by ``rng`` and kept in their
    order (all of them when there are no more): the per-source draw of the benchmarks that score
    a few hundred images of each source. One ``rng`` shared over several sources keeps a
    report's draw reproducible from its seed."""
    if len(items) <= limit:
        return items
    return [items[i] for i in sorted(rng.choice(len(items), limit, replace=False))]
