"""Time drawing ``idcli plan``'s table alone, from the jobs of a ``plan --json`` document (docs/performance.md).

python tools/measure_plan_table.py PLAN.json [--runs 3]

Builds the table as ``idcli plan`` does (idcli/cli/shotlist_commands.py) two ways, alternating: ``strings`` hands
Rich each cell as a string, which it turns into text when measuring the columns and again when drawing them
(idcli before 2026-12-01); ``text`` makes each cell text once, as ``plan`` does now. Prints each run's CPU and
wall seconds (drawing into memory at 160 columns, as ``plan`` draws into a pipe or a file), the medians, and
whether both drew the same characters.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from idcli.cli.shotlist_commands import PLAN_COLUMNS, plan_table_cells


def draw(rows: list[dict[str, Any]], as_text: bool) -> tuple[float, float, str]:
    out = io.StringIO()
    console = Console(width=160, file=out)
    started, cpu = time.perf_counter(), time.process_time()
    table = Table(title=f"{len(rows)} jobs")
    for column in PLAN_COLUMNS:
        table.add_column(column)
    for row in rows:
        if row["state"] != "blocked":
            values = plan_table_cells(row)
            table.add_row(*((console.render_str(v, highlight=False) for v in values) if as_text else values))
    console.print(table)
    return time.process_time() - cpu, time.perf_counter() - started, out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description="Time drawing idcli plan's table alone, from a plan --json document.")
    parser.add_argument("plan", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = json.loads(args.plan.read_text("utf-8"))["jobs"]
    seconds: dict[str, list[float]] = {"strings": [], "text": []}
    drawn: dict[str, str] = {}
    for run in range(args.runs):
        for way in seconds:
            cpu, wall, drawn[way] = draw(rows, way == "text")
            seconds[way].append(cpu)
            print(f"run {run + 1} {way}: cpu {cpu:.2f} s, wall {wall:.2f} s")
    for way, values in seconds.items():
        print(f"{way}: median cpu {statistics.median(values):.2f} s over {len(values)} runs ({len(rows)} jobs)")
    print("same table" if drawn["strings"] == drawn["text"] else "TABLES DIFFER")


if __name__ == "__main__":
    main()
