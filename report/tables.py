"""The results tables (one per family) as Markdown, CSV and HTML."""
from __future__ import annotations

import csv
import html
import io
import os
from dataclasses import dataclass
from typing import Dict, List, Tuple

from .spec import ReportSpec
from .values import ERROR, LINK, PENDING, Cell, resolve


@dataclass(frozen=True)
class Table:
    family: str
    columns: List[str]
    rows: List[Tuple[str, Dict[str, Cell]]]  # (experiment, column -> cell); absent columns are empty

    def cell(self, experiment_row: Dict[str, Cell], column: str) -> Cell:
        return experiment_row.get(column, Cell("missing"))


def build_tables(spec: ReportSpec) -> List[Table]:
    tables = []
    for family, experiments in spec.rows.items():
        columns = [c for c in spec.column_order if any(c in row for row in experiments.values())]
        for row in experiments.values():
            columns += [c for c in row if c not in columns]
        rows = [(name, {c: resolve(v, f"{family}/{name}[{c}]") for c, v in row.items()})
                for name, row in experiments.items()]
        tables.append(Table(family, columns, rows))
    return tables


def count_pending(tables: List[Table]) -> int:
    return sum(cell.kind == PENDING for t in tables for _, row in t.rows for cell in row.values())


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(tables: List[Table], report_dir: str) -> str:
    out = []
    for t in tables:
        out += [f"## {t.family}", "", "| experiment | " + " | ".join(_md_escape(c) for c in t.columns) + " |",
                "|---|" + "---:|" * len(t.columns)]
        for name, row in t.rows:
            cells = []
            for c in t.columns:
                cell = t.cell(row, c)
                text = _md_escape(cell.text)
                if cell.kind == LINK:
                    text = f"[{text}]({os.path.relpath(cell.raw, report_dir)})"
                cells.append(text)
            out.append(f"| {_md_escape(name)} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def to_csv(tables: List[Table]) -> str:
    """One tidy table: family, experiment, then the union of all columns (empty where a family has none)."""
    columns: List[str] = []
    for t in tables:
        columns += [c for c in t.columns if c not in columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["family", "experiment"] + columns)
    for t in tables:
        for name, row in t.rows:
            writer.writerow([t.family, name] + [t.cell(row, c).csv for c in columns])
    return buffer.getvalue()


def to_html(table: Table, report_dir: str) -> str:
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in table.columns)
    lines = [f'<table class="results" data-family="{e(table.family)}">',
             f"<thead><tr><th>experiment</th>{head}</tr></thead>", "<tbody>"]
    for name, row in table.rows:
        cells = []
        for c in table.columns:
            cell = table.cell(row, c)
            if cell.kind == LINK:
                href = os.path.relpath(cell.raw, report_dir)
                cells.append(f'<td class="link"><a href="{e(href)}">{e(cell.text)}</a></td>')
            elif cell.kind == ERROR:
                cells.append(f'<td class="error" title="{e(str(cell.raw))}">error</td>')
            else:
                cells.append(f'<td class="{cell.kind}">{e(cell.text)}</td>')
        lines.append(f"<tr><th>{e(name)}</th>{''.join(cells)}</tr>")
    lines += ["</tbody>", "</table>"]
    return "\n".join(lines)
