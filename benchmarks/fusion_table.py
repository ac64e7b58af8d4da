"""One table for issue 5's detector ablations: RGB only vs RGB + cue, by cue source and fusion.

Each row is a model trained with the same recipe, seed and data, scored by `edgefas eval` on P1
(Replay-Attack test, threshold from devel) and P4 (unseen live faces at that threshold), and
optionally timed by `benchmarks/latency.py`. The table only reads those reports: it never
re-scores or re-thresholds anything.

    python benchmarks/fusion_table.py \\
        --row "RGB only (control)=docs/fusion/P1_rgb_control.json,docs/fusion/P4_rgb_control.json,\\
benchmarks/results/latency_rgb_control_P1.json" \\
        --row "CD student, cross-attention=docs/fusion/P1_xattn_cd.json,docs/fusion/P4_xattn_cd.json" \\
        --out docs/fusion/ablations

writes docs/fusion/ablations.{md,json}. ``--p2 "NAME=a.json[,b.json...]"`` adds the held-out
species table (issue 5's P2 criterion) from `edgefas eval` reports holding P2-* protocols (one
report with all three, or one per protocol); the first --p2 row is the reference the others are
compared with (mean APCER of the held-out species, relative change, and BPCER no higher).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from edgefas.report_files import write_report


def _pct(errors: int, count: int, **_: object) -> str:
    return f"{100 * errors / count:.2f}% ({errors:,}/{count:,})" if count else "–"


def _row(name: str, files: list[Path]) -> dict:
    if len(files) not in (2, 3):
        raise SystemExit(f"--row {name!r}: give P1.json,P4.json[,latency.json]")
    p1 = json.loads(files[0].read_text())["P1"]
    p4 = json.loads(files[1].read_text())["P4"]
    rep = p1["test"]["report"]
    species = {k: v for k, v in rep["apcer"].items() if k != "overall"}
    row = {
        "model": name, "bundle": p1["bundle"], "threshold": p1["threshold"],
        "threshold_source": p1["threshold_source"],
        "p1_test": {"bona_fide": rep["n_bona_fide"], "attack": rep["n_attack"],
                    "apcer": {k: {"errors": v["errors"], "count": v["count"]} for k, v in species.items()},
                    "apcer_max": rep["apcer_max"]["value"], "bpcer": {"errors": rep["bpcer"]["errors"],
                                                                      "count": rep["bpcer"]["count"]},
                    "hter": rep["legacy_hter"]["value"], "auc": rep["auc"]["value"]},
        "p4": {s: {"errors": p4[s]["errors"], "count": p4[s]["bona_fide"]}
               for s in ("lfw_heldout", "london")},
        "reports": [str(f) for f in files],
    }
    op = p4.get("at_devel_apcer", {})
    if "threshold" in op:  # reports from edgefas eval since the second P4 operating point
        row["p4_at_devel_apcer"] = {"criterion": op["criterion"], "threshold": op["threshold"],
                                    **{s: {"errors": op[s]["errors"], "count": op[s]["bona_fide"]}
                                       for s in ("lfw_heldout", "london")}}
    if len(files) == 3:
        lat = json.loads(files[2].read_text())
        row["latency"] = {"total_p50_ms": lat["stages"]["total"]["p50_ms"], "threads": lat["threads"],
                          "bundle_mb": lat.get("bundle_mb")}
    return row


P2 = ("P2-print", "P2-mobile", "P2-highdef")


def _p2_row(name: str, files: list[Path]) -> dict:
    found = {}
    for f in files:
        for proto, res in json.loads(f.read_text()).items():
            if proto in P2:
                rep = res["test"]["report"]
                sp = proto.split("-", 1)[1]
                found[proto] = {"bundle": res["bundle"], "threshold": res["threshold"],
                                "apcer": {k: rep["apcer"][sp][k] for k in ("errors", "count")},
                                "bpcer": {k: rep["bpcer"][k] for k in ("errors", "count")},
                                "auc": rep["auc"]["value"], "report": str(f)}
    missing = [p for p in P2 if p not in found]
    if missing:
        raise SystemExit(f"--p2 {name!r}: no {', '.join(missing)} in {', '.join(map(str, files))}")
    mean_apcer = sum(found[p]["apcer"]["errors"] / found[p]["apcer"]["count"] for p in P2) / len(P2)
    mean_bpcer = sum(found[p]["bpcer"]["errors"] / found[p]["bpcer"]["count"] for p in P2) / len(P2)
    return {"model": name, "protocols": found, "mean_apcer": mean_apcer, "mean_bpcer": mean_bpcer}


def p2_markdown(rows: list[dict]) -> str:
    ref = rows[0]
    lines = ["## P2: held-out attack species", "",
             "Each protocol's own model, trained and thresholded (devel D-EER) without the held-out "
             f"species; test = that species' attacks + all bona fide. Relative change against "
             f"the first row ({ref['model']}).", "",
             "| Model | " + " | ".join(f"{p} APCER / BPCER" for p in P2)
             + " | mean APCER | mean BPCER | mean APCER vs first row |",
             "|---|" + "---|" * len(P2) + "---:|---:|---|"]
    for r in rows:
        cells = [f"{_pct(**r['protocols'][p]['apcer'])} / {_pct(**r['protocols'][p]['bpcer'])}"
                 for p in P2]
        if r is ref:
            change = "reference"
        else:
            rel = (r["mean_apcer"] - ref["mean_apcer"]) / ref["mean_apcer"] if ref["mean_apcer"] else 0.0
            bp = "no higher" if r["mean_bpcer"] <= ref["mean_bpcer"] else "higher"
            change = f"{100 * rel:+.0f} % (BPCER {bp})"
        lines.append(f"| {r['model']} | {' | '.join(cells)} | {100 * r['mean_apcer']:.2f}% | "
                     f"{100 * r['mean_bpcer']:.2f}% | {change} |")
    return "\n".join(lines) + "\n"


TITLE = "Fusion detector ablations (issue 5), P1 cpu recipe"


def to_markdown(rows: list[dict], command: str, title: str = TITLE) -> str:
    # the extra column appears only when a report carries it (older reports do not)
    second = any("p4_at_devel_apcer" in r for r in rows)
    lines = [
        f"# {title}", "",
        f"Made by `{command}` from the `edgefas eval` / `benchmarks/latency.py` reports listed in the "
        "JSON beside this file. P1: Replay-Attack test, one frame per video, threshold at the devel "
        "D-EER of each model; P4: BPCER of unseen bona fide faces at that same threshold.", "",
        "| Model | P1 APCER per species | APCER_max | BPCER | HTER | AUC | P4 BPCER LFW held-out | "
        "P4 BPCER london | p50 ms |"
        + (" P4 BPCER at devel APCER_max ≤ 1 % (LFW / london) |" if second else ""),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|" + ("---|" if second else ""),
    ]
    for r in rows:
        t = r["p1_test"]
        sp = ", ".join(f"{k} {v['errors']}/{v['count']}" for k, v in sorted(t["apcer"].items()))
        lat = r.get("latency")
        timed = f"{lat['total_p50_ms']:.2f} ({lat['threads']} thr)" if lat else "not timed"
        lfw = r["p4"]["lfw_heldout"]
        lines.append(f"| {r['model']} | {sp} | {100 * t['apcer_max']:.2f}% | "
                     f"{_pct(t['bpcer']['errors'], t['bpcer']['count'])} | {100 * t['hter']:.2f}% | "
                     f"{t['auc']:.4f} | {_pct(lfw['errors'], lfw['count'])} | "
                     f"{_pct(r['p4']['london']['errors'], r['p4']['london']['count'])} | {timed} |"
                     + (f" {_second(r)} |" if second else ""))
    if second:
        lines += ["", "Second P4 operating point: each model's threshold set on Replay devel (all 20 "
                  "frames per video) for APCER_max <= 1 %, so that models compare at the same attack "
                  "security rather than wherever their D-EER threshold fell in devel's gap."]
    return "\n".join(lines) + "\n"


def _second(r: dict) -> str:
    op = r.get("p4_at_devel_apcer")
    if not op:
        return "–"
    return (f"{_pct(**op['lfw_heldout'])} / {_pct(**op['london'])} (threshold {op['threshold']:.4g})")


def _spec(spec: str, flag: str, files_form: str) -> tuple[str, list[Path]]:
    """NAME=a.json,b.json -> (NAME, [paths])."""
    name, sep, files = spec.partition("=")
    if not sep:
        raise SystemExit(f"{flag} {spec!r}: write NAME={files_form}")
    return name, [Path(f) for f in files.split(",")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--row", action="append", required=True, metavar="NAME=P1.json,P4.json[,latency.json]")
    ap.add_argument("--p2", action="append", default=[], metavar="NAME=report.json[,...]",
                    help="a row of the P2 table (first row: the reference)")
    ap.add_argument("--out", required=True, type=Path, help="output stem (.md and .json are written)")
    ap.add_argument("--title", default=TITLE, help="heading of the markdown table")
    args = ap.parse_args(argv)
    rows = [_row(*_spec(s, "--row", "P1.json,P4.json[,latency.json]")) for s in args.row]
    p2_rows = [_p2_row(*_spec(s, "--p2", "report.json[,report.json...]")) for s in args.p2]
    command = "python benchmarks/fusion_table.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    md = to_markdown(rows, command, args.title) + ("\n" + p2_markdown(p2_rows) if p2_rows else "")
    write_report(args.out, {"command": command, "rows": rows, "p2_rows": p2_rows}, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
