"""One markdown summary of ``edgefas eval`` results (P1-P5), with counts beside each figure."""
from __future__ import annotations

from typing import Any


def _pct(v: float | None) -> str:
    return "n/a" if v is None or v != v else f"{100 * v:.2f}%"   # None/NaN: nothing was scored


def _rate(r: dict[str, Any]) -> str:
    return f"{_pct(r['value'])} ({r['errors']}/{r['count']})"


def protocol_table(results: dict[str, dict[str, Any]]) -> str:
    """Summary table, then each protocol's full ISO report."""
    lines = ["| Protocol | Test data (bona fide / attack) | Threshold (devel) | APCER per species "
             "| APCER_max | BPCER | BPCER@APCER≤1% | D-EER | AUC | HTER (legacy) |",
             "|---|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    details, notes = [], []
    for name, res in results.items():
        if "test" in res or "report" in res or "nuaa" in res:
            t = res.get("test", res.get("nuaa", res))
            r = t["report"]
            species = ", ".join(f"{k} {_rate(v)}" for k, v in r["apcer"].items() if k != "overall")
            op = r["bpcer_at_apcer"].get("0.01")
            lines.append(
                f"| {name} | {t['split']}: {r['n_bona_fide']} / {r['n_attack']}"
                f"{'; FTA ' + str(t['fta']['failed']) if t['fta']['failed'] else ''} "
                f"| {r['threshold']:.4f} | {species} | {_rate(r['apcer_max'])} | {_rate(r['bpcer'])} "
                f"| {_rate(op['value']) if op else '-'} | {_pct(r['eer']['value'])} "
                f"| {r['auc']['value']:.4f} | {_pct(r['legacy_hter']['value'])} |")
            details.append(f"### {name}: {res.get('description', t['split'])}\n\n{t['markdown']}")
        for key in ("lfw_heldout", "london", "essex"):
            if key in res and "bpcer" in res[key]:
                b = res[key]
                lo, hi = b["ci95"]
                lines.append(f"| {name} {key} | {b['split']}: {b['bona_fide']} / 0"
                             f"{'; FTA ' + str(b['fta']['failed']) if b['fta']['failed'] else ''} "
                             f"| {b['threshold']:.4f} | - | - | {_pct(b['bpcer'])} "
                             f"({b['errors']}/{b['bona_fide']}; 95% CI {_pct(lo)}-{_pct(hi)}) "
                             f"| - | - | - | - |")
        op = res.get("at_devel_apcer")
        if op and "threshold" in op:
            got = "; ".join(f"{k} {_pct(op[k]['bpcer'])} ({op[k]['errors']}/{op[k]['bona_fide']})"
                            for k in ("lfw_heldout", "london") if k in op)
            a = op["devel_apcer_max"]
            notes.append(f"{name} at a second threshold, {op['threshold']:.4g}, the {op['criterion']} "
                         f"(devel APCER_max {a['errors']}/{a['count']}): BPCER {got}.")
    table = "\n".join(lines) + "\n" + "".join(f"\n{n}\n" for n in notes)
    return table + "\n" + "\n".join(details)
