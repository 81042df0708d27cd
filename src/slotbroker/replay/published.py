"""The published baseline: predictsim's EASY-family figures (``predictsim_easy_metrics.tsv``).

Why read the file rather than copy numbers: the table is the reference our figures are put beside, so it
is read where it lies (``shared/traces``) and only when present; nothing of it is copied into the repo.
Rows map to our policy names: ``easy`` <- ``res_easy_backfill_scheduler_None_None``, ``easy_sjbf`` <-
``res_easy_sjbf_scheduler_None_None`` (EASY backfilling shortest requested job first), the two that use
user estimates only; the clairvoyant rows are kept under their own names for context.
"""

from __future__ import annotations

import csv
from pathlib import Path

NAMES = {
    "res_easy_backfill_scheduler_None_None": "easy",
    "res_easy_sjbf_scheduler_None_None": "easy_sjbf",
}


def read_published(path: Path) -> dict[str, dict[str, dict[str, float]]]:
    """trace -> row name -> {"jobs", "avg_bounded_slowdown"} from the TSV at ``path``."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader((line for line in fh if line.strip()), delimiter="\t"):
            trace = row["trace"]
            raw = row["name"].split("/")[-1].removesuffix(".swf.gz")
            name = NAMES.get(raw, raw.removeprefix("res_").removesuffix("_scheduler"))
            try:
                figures = {"jobs": float(row["length"]), "avg_bounded_slowdown": float(row["avgbsld"])}
            except ValueError:
                continue  # NA rows
            out.setdefault(trace, {})[name] = figures
    return out


def baseline_for(trace_name: str, path: Path) -> dict[str, float]:
    """Our policy name -> published average bounded slowdown for ``trace_name`` ({} when unknown)."""
    if not path.exists():
        return {}
    rows = read_published(path).get(trace_name.split("_")[0], {})
    return {name: figures["avg_bounded_slowdown"] for name, figures in rows.items() if name in NAMES.values()}
