"""One results table over several ``edgefas eval-cue`` reports (issue 4's teacher comparison).

Each report (OUT.json of ``edgefas eval-cue``) holds, per protocol, the colour + frequency
reference and, when a teacher was given, the teacher's cue (the fixed mean |cue| score and the
train-fit classifier). :func:`summarize` lays them side by side and computes the two comparisons
the issue asks for, from the numbers only:

* P2 (held-out attack species): mean test AUC over the P2 protocols present, per feature set and
  method, against the reference's mean over the same protocols;
* P4 (unseen bona fide): BPCER at the P1 devel threshold on LFW held-out identities and london.

Nothing here chooses anything: thresholds and teacher settings were fixed on train/devel by the
reports themselves.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

REFERENCE = "colour+FFT stats (reference)"


def load_reports(paths: Iterable[str | Path]) -> list[dict]:
    """The eval-cue JSON reports at ``paths`` (each tagged with its file name)."""
    out = []
    for p in paths:
        rep = json.loads(Path(p).read_text())
        if rep.get("command") != "eval-cue":
            raise ValueError(f"{p} is not an eval-cue report")
        out.append({**rep, "_file": str(p)})
    return out


def _steps_tag(recipe: dict) -> str | None:
    """"6,800 steps" for a teacher trained longer or shorter than its recipe preset (--steps),
    so that two lengths of one recipe get rows of their own."""
    from .recipes import RECIPES

    preset = RECIPES.get(recipe.get("kind", ""), {}).get(recipe.get("name", ""))
    steps = recipe.get("steps")
    return f"{steps:,} steps" if preset is not None and steps and steps != preset.steps else None


def _teacher_tags(infos: list[dict]) -> list[str]:
    """What sets a teacher apart from the CPU-recipe, unconditional, Replay-only one."""
    return sorted({f"{r} recipe" for i in infos if (r := i.get("recipe", {}).get("name")) and r != "cpu"}
                  | {s for i in infos if (s := _steps_tag(i.get("recipe", {})))}
                  | {f"{c['kind']} condition" for i in infos if (c := i.get("condition"))}
                  | {"+ LFW live faces" for i in infos if i.get("data", {}).get("with_lfw")}
                  | {f"{a} augmentation" for i in infos
                     if (a := i.get("recipe", {}).get("augment", "none")) != "none"})


def _features_name(rep: dict, res: dict) -> str:
    """The result's feature-set name; students also by objective and NFE (several may be compared)."""
    teacher = rep.get("teacher") or {}
    if res["name"] == REFERENCE:
        return res["name"]
    # the full 128 px crop as the teacher's input (eval-cue --region full) is an ablation of its own
    region = ["full crop"] if teacher.get("region") == "full" else []
    if teacher.get("kind") != "student":
        # teachers of another recipe than the CPU one (the GPU teacher) or with a structure
        # condition get rows of their own
        tags = _teacher_tags(list(teacher.get("teacher_json", {}).values())) + region
        return f"{res['name']} ({', '.join(tags)})" if tags else res["name"]
    info = teacher.get("teacher_json", {}).get("student", {})
    objective = info.get("recipe", {}).get("objective", "?")
    # a student is named by its teacher's tags too (students of different teachers are compared)
    tags = _teacher_tags([info.get("teacher", {}).get("info") or {}]) + region
    return f"student ({objective}, {teacher.get('nfe')} NFE{''.join(', ' + t for t in tags)}) cue"


def _rows(reports: list[dict]) -> list[dict]:
    """One row per (feature set, method, protocol); the reference once per protocol."""
    rows, seen = [], set()
    for rep in reports:
        teacher = rep.get("teacher") or {}
        # classifiers trained with LFW train faces added (eval-cue --train-lfw) are another
        # condition: compared with the reference trained the same way
        cond = f"+ {rep['train_lfw_faces']} LFW train faces" if rep.get("train_lfw_faces") else "Replay train"
        timing = {(s.get("t0"), s.get("steps")): s for s in teacher.get("settings", [])}
        for res in rep["results"]:
            is_ref = res["name"] == REFERENCE
            key = (cond, res["name"], res["protocol"])
            if is_ref and key in seen:
                continue
            seen.add(key)
            setting = res.get("teacher_setting") or {}
            # the timing of the setting this protocol chose (one-pass teachers: their only one)
            tm = {} if is_ref else timing.get((setting.get("t0"), setting.get("steps")), teacher)
            for method, m in res["methods"].items():
                t = m["test"]
                rows.append({
                    "train": cond, "features": _features_name(rep, res), "method": method,
                    "protocol": res["protocol"],
                    "setting": {k: v for k, v in setting.items() if k != "noise_seed"} or None,
                    "nfe": tm.get("nfe"), "ms_per_face": tm.get("ms_per_face"),
                    "devel_auc": m["auc"]["devel"]["value"], "test_auc": t["auc"]["value"],
                    "test_counts": [t["n_bona_fide"], t["n_attack"]],
                    "test_auc_per_species": {k: v["value"] for k, v in
                                             m.get("auc_per_species", {}).get("test", {}).items()},
                    "apcer_max": t["apcer_max"], "bpcer": t["bpcer"],
                    "p4": {k: {kk: v[kk] for kk in ("bpcer", "errors", "bona_fide")}
                           for k, v in m.get("p4", {}).items()},
                    "report": rep["_file"], "argv": rep.get("argv")})
    return rows


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize(reports: list[dict]) -> dict:
    """Rows plus the P2 and P4 comparisons against the reference (JSON-ready)."""
    rows = _rows(reports)
    p2_names = sorted({r["protocol"] for r in rows if r["protocol"].startswith("P2-")})
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in rows:
        g = groups.setdefault((r["train"], r["features"], r["method"]), {"p2": {}, "p4": {}})
        if r["protocol"].startswith("P2-"):
            g["p2"][r["protocol"]] = r["test_auc"]
        if r["protocol"] == "P1" and r["p4"]:
            g["p4"] = {k: v["bpcer"] for k, v in r["p4"].items()}
    comparison = []
    for (cond, features, method), g in groups.items():
        ref = groups.get((cond, REFERENCE, "classifier"), {"p2": {}, "p4": {}})
        common = [p for p in p2_names if p in g["p2"] and p in ref["p2"]]
        full = len(common) == len(p2_names) and bool(p2_names)
        mean = _mean([g["p2"][p] for p in common])
        ref_mean = _mean([ref["p2"][p] for p in common])
        p4_ok = {k: v <= ref["p4"][k] for k, v in g["p4"].items() if k in ref["p4"]}
        comparison.append({
            "train": cond, "features": features, "method": method, "p2_protocols": common,
            "p2_all_present": full,
            "p2_mean_test_auc": mean, "reference_p2_mean_test_auc": ref_mean,
            "p2_beats_reference": (mean > ref_mean) if (mean is not None and ref_mean is not None) else None,
            "p4_bpcer": g["p4"], "reference_p4_bpcer": ref["p4"],
            "p4_no_higher_than_reference": p4_ok or None})
    return {"rows": rows, "p2_protocols": p2_names, "comparison": comparison,
            "reports": [r["_file"] for r in reports]}


def _pct(v: Mapping | float | None) -> str:
    if v is None:
        return "–"
    if isinstance(v, Mapping):
        return f"{100 * v['value']:.2f}% ({v['errors']}/{v['count']})"
    return f"{100 * v:.2f}%"


def _p4_cell(c: dict, key: str) -> str:
    if key not in c["p4_bpcer"]:
        return "–"
    ok = (c["p4_no_higher_than_reference"] or {}).get(key)
    return f"{_pct(c['p4_bpcer'][key])}{' (≤ ref)' if ok else ' (> ref)'}"


def _auc_text(v: float | None) -> str:
    return "–" if v is None else f"{v:.4f}"


def to_markdown(summary: dict) -> str:
    """The summary as markdown: the comparison first, then every row with its counts."""
    out = ["| Classifier train data | Features | Method | P2 mean test AUC | reference | better? | "
           "P4 LFW BPCER | P4 london BPCER |",
           "|---|---|---|---:|---:|---|---:|---:|"]
    for c in summary["comparison"]:
        better = {None: "–", True: "yes", False: "no"}[c["p2_beats_reference"]]
        if c["p2_protocols"] and not c["p2_all_present"]:
            better += f" (on {', '.join(c['p2_protocols'])} only)"
        out.append(f"| {c['train']} | {c['features']} | {c['method']} | {_auc_text(c['p2_mean_test_auc'])} | "
                   f"{_auc_text(c['reference_p2_mean_test_auc'])} | {better} | "
                   f"{_p4_cell(c, 'lfw_heldout')} | {_p4_cell(c, 'london')} |")
    out += ["", "| Protocol | Classifier train data | Features | Method | Setting | NFE | ms/face | "
                "Devel AUC | Test AUC (BF × AP) | Test AUC per species | APCER_max | BPCER | P4 BPCER |",
            "|---|---|---|---|---|---:|---:|---:|---:|---|---:|---:|---|"]
    order = lambda r: (r["protocol"], r["train"], r["features"] != REFERENCE, r["features"])
    for r in sorted(summary["rows"], key=order):
        setting = ", ".join(f"{k} {v}" for k, v in (r["setting"] or {}).items()) or "–"
        species = "; ".join(f"{k} {v:.3f}" for k, v in r["test_auc_per_species"].items())
        p4 = "; ".join(f"{k} {100 * v['bpcer']:.1f}% ({v['errors']}/{v['bona_fide']})"
                       for k, v in r["p4"].items())
        ms = "–" if r["ms_per_face"] is None else f"{r['ms_per_face']:.1f}"
        n_bf, n_ap = r["test_counts"]
        out.append(f"| {r['protocol']} | {r['train']} | {r['features']} | {r['method']} | {setting} | "
                   f"{r['nfe'] or '–'} | "
                   f"{ms} | {r['devel_auc']:.4f} | {r['test_auc']:.4f} ({n_bf} × {n_ap}) | {species} | "
                   f"{_pct(r['apcer_max'])} | {_pct(r['bpcer'])} | {p4 or '–'} |")
    return "\n".join(out) + "\n"
