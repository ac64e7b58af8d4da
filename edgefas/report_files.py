"""Writing a benchmark's report: OUT.json beside OUT.md, the two every script in benchmarks/ leaves."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_report(out: Path, report: dict[str, Any], markdown: str, echo: bool = True) -> None:
    """Write ``report`` to OUT.json and ``markdown`` to OUT.md (folders made as needed)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown)
    if echo:
        print(markdown)
