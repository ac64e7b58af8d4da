#!/usr/bin/env python3
"""One table of the other-camera devel experiment (docs/ablation_lfw_devel/plan.md) from the
reports its commands wrote; nothing is recomputed here.

    python benchmarks/lfw_devel_table.py --dir docs/ablation_lfw_devel --model v02 --model cs15 --model cs10

For each MODEL it reads DIR/devel_rule.json (``benchmarks/devel_worst_source.py``, rows in the
order of --model) and DIR/MODEL_P1.json, MODEL_P4.json, MODEL_P5.json (``edgefas eval --bundle B
--protocol P1|P4|P5 --out DIR/MODEL_P1`` ...), and writes DIR/table.{md,json}. Devel columns
decided; the test columns were measured once, after the decision.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from edgefas.report_files import write_report


def _r(errors: int, count: int) -> dict[str, Any]:
    return {"errors": int(errors), "count": int(count), "value": errors / count if count else None}


def _pct(r: dict[str, Any] | None) -> str:
    if not r or r.get("value") is None:
        return "n/a"
    return f"{100 * r['value']:.2f} % ({r['errors']}/{r['count']})"


def row(directory: Path, model: str, devel: dict[str, Any]) -> dict[str, Any]:
    p1 = json.loads((directory / f"{model}_P1.json").read_text())["P1"]["test"]["report"]
    p4 = json.loads((directory / f"{model}_P4.json").read_text())["P4"]
    p5 = json.loads((directory / f"{model}_P5.json").read_text())["P5"]
    n = p5["nuaa"]["report"]
    essex = p5.get("essex", {})
    keep = ("errors", "count", "value")
    return {
        "model": model, "bundle": devel["name"], "crop_scale": devel["crop_scale"],
        "trained_on_lfw_devel": devel["trained_on_lfw_devel"],
        "devel_worst_source_deer": devel["worst_source_deer"]["value"],
        "threshold": p1["threshold"],
        "p1": {"apcer_max": {k: p1["apcer_max"][k] for k in keep},
               "apcer_overall": {k: p1["apcer"]["overall"][k] for k in keep},
               "bpcer": {k: p1["bpcer"][k] for k in keep}, "hter": p1["legacy_hter"]["value"]},
        "p4": {k: _r(p4[k]["errors"], p4[k]["bona_fide"]) for k in ("lfw_heldout", "london")},
        "p5": {"nuaa_apcer": {k: n["apcer"]["print"][k] for k in keep},
               "nuaa_bpcer": {k: n["bpcer"][k] for k in keep}, "nuaa_hter": n["legacy_hter"]["value"],
               "nuaa_auc": n["auc"]["value"],
               "essex": _r(essex["errors"], essex["bona_fide"]) if "errors" in essex else None},
    }


def to_markdown(rows: list[dict[str, Any]], command: str) -> str:
    lines = ["# Choosing against live faces of other cameras: results", "",
             f"Command: `{command}` (the reports it reads name their own commands).", "",
             "Devel decided (worst-source D-EER: Replay devel attacks against the worse of Replay "
             "devel and LFW devel-bucket bona fide); every other column is a test, measured once "
             "after the decision. * = trained on the LFW devel identities (its devel figure is "
             "optimistic).", "",
             "| model | crop | devel worst-source D-EER | threshold | P1 APCER_max | P1 BPCER | P1 HTER "
             "| LFW held-out BPCER | london BPCER | NUAA APCER (print) | NUAA BPCER | NUAA HTER | "
             "Essex BPCER |",
             "|---|---:|---:|---:|---|---|---:|---|---|---|---|---:|---|"]
    for r in rows:
        lines.append(
            f"| {r['model']} ({r['bundle']}){' *' if r['trained_on_lfw_devel'] else ''} | "
            f"{r['crop_scale']} | {100 * r['devel_worst_source_deer']:.2f} % | {r['threshold']:.4g} | "
            f"{_pct(r['p1']['apcer_max'])} | {_pct(r['p1']['bpcer'])} | {100 * r['p1']['hter']:.2f} % | "
            f"{_pct(r['p4']['lfw_heldout'])} | {_pct(r['p4']['london'])} | {_pct(r['p5']['nuaa_apcer'])} | "
            f"{_pct(r['p5']['nuaa_bpcer'])} | {100 * r['p5']['nuaa_hter']:.2f} % | "
            f"{_pct(r['p5']['essex'])} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--dir", type=Path, default=Path("docs/ablation_lfw_devel"))
    ap.add_argument("--model", action="append", required=True,
                    help="report prefix, in the order of devel_rule.json's rows (repeat)")
    args = ap.parse_args(argv)
    devel = json.loads((args.dir / "devel_rule.json").read_text())["rows"]
    if len(devel) != len(args.model):
        raise SystemExit(f"devel_rule.json has {len(devel)} rows for {len(args.model)} --model")
    rows = [row(args.dir, m, d) for m, d in zip(args.model, devel)]
    command = "python benchmarks/lfw_devel_table.py --dir " + str(args.dir) + "".join(
        f" --model {m}" for m in args.model)
    write_report(args.dir / "table", {"command": command, "rows": rows}, to_markdown(rows, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
