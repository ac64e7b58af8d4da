"""Issue 4's teacher table: several ``edgefas eval-cue`` reports side by side (markdown + JSON).

Every row names the report (and the command) it came from; the comparison rows are computed from
the reports' numbers (P2 mean test AUC, P4 BPCER at the P1 devel threshold) against the colour +
frequency reference on the same splits.

example:
  python benchmarks/teacher_cues.py runs/cue/*.json --out docs/teacher_cues
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgefas.report_files import write_report


def main(argv: list[str] | None = None) -> int:
    from edgefas.distill.cue_table import load_reports, summarize, to_markdown

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reports", nargs="+", type=Path, help="eval-cue OUT.json files")
    p.add_argument("--out", type=Path, default=Path("docs/teacher_cues"), help="writes OUT.md and OUT.json")
    p.add_argument("--title", default="De-spoofing teachers: spoof-cue evaluation (issue 4)")
    args = p.parse_args(argv)
    summary = summarize(load_reports(args.reports))
    cmd = "python benchmarks/teacher_cues.py " + " ".join(str(r) for r in args.reports)
    md = (f"# {args.title}\n\nMade by `{cmd} --out {args.out}` from the eval-cue reports listed in the "
          f"JSON; each report's own command is in its row of the JSON (`argv`).\n\n" + to_markdown(summary))
    write_report(args.out, {"command": cmd, **summary}, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
