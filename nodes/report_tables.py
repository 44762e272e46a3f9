"""The cost tables of a report: model usage per role and per phase, as cells for Markdown, HTML and the terminal."""

from __future__ import annotations

USAGE_HEADERS = ("calls", "tokens in", "tokens out", "inference s", "cost USD")
USAGE_GROUPS = (("role", "role"), ("phase", "phase (node)"))


def fmt_cost(row: dict) -> str:
    """USD of the priced calls; '?' marks calls to a model without a known price."""
    if row["calls"] and row["unpriced"] == row["calls"]:
        return "?"
    return f"{row['cost_usd']:.4f}" + (" + ?" if row["unpriced"] else "")


def usage_total(rows: list[dict]) -> dict:
    keys = ("calls", "tokens_in", "tokens_out", "inference_s", "cost_usd", "unpriced", "reused")
    return {"name": "total", **{k: sum(r[k] for r in rows) for k in keys}}


def usage_cells(row: dict) -> list[str]:
    """One usage row as table cells, in the order of USAGE_HEADERS."""
    return [str(row["calls"]), f"{row['tokens_in']:,}", f"{row['tokens_out']:,}", f"{row['inference_s']:.1f}",
            fmt_cost(row)]


def usage_markdown(breakdown: dict[str, list[dict]]) -> list[str]:
    """The cost tables of the report: model calls per role and per phase, with a total row each."""
    lines = ["## Model usage and cost", ""]
    for group, title in USAGE_GROUPS:
        rows = breakdown.get(group, [])
        lines += [f"| {title} | {' | '.join(USAGE_HEADERS)} |", "|---" + "|---:" * len(USAGE_HEADERS) + "|"]
        for row in [*rows, usage_total(rows)]:
            lines.append(f"| {row['name']} | {' | '.join(usage_cells(row))} |")
        lines.append("")
    return lines
