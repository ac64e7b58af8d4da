"""Split NUAA by person for the camera-adaptation benchmark (docs/finetune_nuaa/plan.md).

NUAA's own train and test lists share people, so they cannot measure adaptation to a camera on
people the model has not seen. This split is by person id, fixed before any run: 0001-0006
adapt-train, 0007-0009 adapt-devel, 0010-0016 test (all sessions). It writes

  OUT/adapt.csv              path,label,species,subject,split (train + devel rows), for finetune
  OUT/adapt/{live,attack/print}/   symlinks to all adapt images, for calibrate
  OUT/devel/{live,attack/print}/   symlinks to the adapt-devel people's images only
  OUT/test/{live,attack/print}/    symlinks to the test people's images, for eval --folder
  OUT/counts.json            images per part and class

example:
  python benchmarks/nuaa_adaptation_split.py --out runs/nuaa_adapt/data
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
from collections import Counter
from pathlib import Path

from edgefas.data.other_sets import load_nuaa
from edgefas.data.sources import DataRoots

#: person ids of each part, decided before any run (by id order, not by any result)
PARTS = {"train": range(1, 7), "devel": range(7, 10), "test": range(10, 17)}
SESSIONS = ("01", "02", "03")


def part_of(subject: str) -> str:
    n = int(subject)
    for part, ids in PARTS.items():
        if n in ids:
            return part
    raise ValueError(f"NUAA person {subject} is in no part")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nuaa-root", type=Path, help="NUAA folder (default: $EDGEFAS_DATA/nuaa)")
    p.add_argument("--out", type=Path, required=True, help="folder to write (replaced)")
    args = p.parse_args(argv)
    root = args.nuaa_root or DataRoots().resolve().nuaa
    samples = load_nuaa(root, sessions=SESSIONS)
    out = args.out
    shutil.rmtree(out, ignore_errors=True)   # links of an earlier split must not linger
    out.mkdir(parents=True)
    rows, counts = [["path", "label", "species", "subject", "split"]], Counter()
    for s in samples:
        part = part_of(s.subject)
        cls = "attack" if s.is_attack else "live"
        counts[f"{part}/{cls}"] += 1
        src = Path(s.path).resolve()
        folders = {"test": [out / "test"], "train": [out / "adapt"],
                   "devel": [out / "adapt", out / "devel"]}[part]
        for f in folders:
            d = f / ("attack/print" if s.is_attack else "live")
            d.mkdir(parents=True, exist_ok=True)
            link = d / src.name
            link.symlink_to(src)
        if part != "test":
            rows.append([str(src), cls, s.species if s.is_attack else "", s.subject, part])
    with open(out / "adapt.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    people = {part: sorted({s.subject for s in samples if part_of(s.subject) == part})
              for part in PARTS}
    (out / "counts.json").write_text(json.dumps({"images": dict(sorted(counts.items())),
                                                 "people": people}, indent=2) + "\n")
    print(json.dumps(dict(sorted(counts.items()))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
