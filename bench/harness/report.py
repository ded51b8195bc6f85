"""The report: docs/benchmarks.md rendered from bench/report.md.tmpl (the prose, written by people) with a
section per benchmark from bench/benchmarks/<name>.md.tmpl and its <out>/<name>.json, and beside it
docs/scaling.md from bench/scaling.md.tmpl with the capacity model (bench/harness/capacity.py) computed
from the same results. Python builds the tables; the sentences are in the templates."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from bench.harness import capacity
from bench.harness import results as results_io
from bench.harness.numbers import human
from bench.harness.paths import BENCH, BENCHMARKS, REPORT_TEMPLATE, SCALING_TEMPLATE, TEMPLATES
from bench.harness.results import Result

if TYPE_CHECKING:
    from bench.harness.benchmark import Benchmark


#: What an empty table cell shows (typographic, as the rest of the report).
EMPTY_CELL = "\u2013"


def fmt(v: Any, digits: int = 2) -> str:
    """A table cell: an en dash for nothing, yes / **no**, 1,234 for large numbers, 2 decimals otherwise."""
    if v is None:
        return EMPTY_CELL
    if isinstance(v, bool):
        return "yes" if v else "**no**"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def table(header: list[str], rows: Iterable[list[Any]]) -> str:
    """A markdown table; cells go through fmt()."""
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


Column = tuple[str, Callable[[Any], Any]]  # header, the cell of an item


def at(path: str) -> Callable[[Result], Any]:
    """A getter for a dotted path into a result: at("rls.latency_ms.p50")(q) is q["rls"]["latency_ms"]["p50"];
    None where a result written before the path existed lacks it (shown as an empty cell)."""

    def get(item: Result) -> Any:
        for key in path.split("."):
            if item is None:
                return None
            item = item.get(key) if isinstance(item, dict) else item[key]
        return item

    return get


def columns_table(columns: list[Column], items: Iterable[Any]) -> str:
    """A markdown table with a row per item and a cell per column."""
    return table([header for header, _ in columns], [[cell(item) for _, cell in columns] for item in items])


GOAL_COLUMNS: list[Column] = [
    ("goal", at("goal")),
    ("measured", at("value")),
    ("target", at("target")),
    ("met", at("met")),
]


def goals_table(goals: list[Result]) -> str:
    return columns_table(GOAL_COLUMNS, goals)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([BENCH, BENCHMARKS, TEMPLATES]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # markdown, not HTML
    )
    env.filters.update(fmt=fmt, human=human)
    env.globals.update(goals_table=goals_table)
    return env


def write_report(benchmarks: list[Benchmark], out: Path, docs: Path) -> None:
    """Render the report from every <out>/<name>.json into `docs`."""
    env = environment()
    found = results_io.read(out, [bm.name for bm in benchmarks])
    image_prefix = os.path.relpath(out, docs.parent.resolve()) + "/" if docs.parent.resolve() != out else ""
    # Instruction counts of the routing hot path per schema (scripts/bench-instructions; not a Benchmark:
    # it needs a cluster of its own that it stops), for section 1 and docs/scaling.md.
    counted = out / "instructions.json"
    instructions = json.loads(counted.read_text()) if counted.exists() else None
    sections = {}
    for bm in benchmarks:
        png = out / f"{bm.name}.png"
        r = found.get(bm.name)
        context = {
            "name": bm.name,
            "r": r,
            "png": f"{image_prefix}{png.name}" if png.exists() else None,
            "instructions": instructions,
        }
        template = env.get_template(f"{bm.name}.md.tmpl")
        sections[bm.name] = template.render(context | (bm.report(r) if r else {})).strip()
    machine = env.get_template("machine.md.tmpl").render(machine=latest_machine(found), results=found).strip()
    text = env.get_template(REPORT_TEMPLATE.name).render(machine=machine, sections=sections, instructions=instructions)
    for name, content in sections.items():  # a benchmark the template does not place yet goes at the end
        if f"<!-- bench:{name}:begin -->" not in text:
            text += f"\n## {name}\n\n<!-- bench:{name}:begin -->\n{content}\n<!-- bench:{name}:end -->\n"
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text(text)
    scaling = env.get_template(SCALING_TEMPLATE.name).render(
        r=found, m=capacity.model(found), images=image_prefix, machine=machine, instructions=instructions
    )
    docs.with_name("scaling.md").write_text(scaling)


def latest_machine(found: dict[str, Result]) -> Result | None:
    """The machine of the last result measured by scripts/bench (those record their tools)."""
    machines = [r["machine"] for r in found.values() if (r.get("machine") or {}).get("tools")]
    return machines[-1] if machines else None
