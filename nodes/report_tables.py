"""The tables of a report, as cells for Markdown, HTML and the terminal: model usage and cost per role and per
phase, and the timeline's time per phase with its one-line summary."""

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


TIMELINE_NOTE = ("One row per lane (pipeline: search, ensemble, submission, the Enhancer); model calls and scripts "
                 "as bars, failed scripts hatched, pipeline runs shaded. Answers and results re-read from the "
                 "journal on resume took no time and are not drawn.")
TIME_HEADERS = ("model calls", "model s", "scripts", "failed", "script s")


def fmt_duration(seconds: float) -> str:
    if seconds >= 3 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.1f} s"


def time_total(phases: list[dict]) -> dict:
    return {"phase": "total", **{k: sum(p[k] for p in phases) for k in ("calls", "model_s", "scripts", "failed",
                                                                        "script_s")}}


def time_cells(row: dict) -> list[str]:
    """One phase of the timeline as table cells, in the order of TIME_HEADERS."""
    return [str(row["calls"]), f"{row['model_s']:.1f}", str(row["scripts"]), str(row["failed"]),
            f"{row['script_s']:.1f}"]


def time_summary(timeline: dict) -> str:
    """One line: wall time, model and script time, the time nothing ran, the first valid submission."""
    t = timeline["totals"]
    models = ("model calls: unknown (no model-call rows given)" if t["model_s"] is None
              else f"model calls {fmt_duration(t['model_s'])} ({t['calls']} calls)")
    idle = ("" if t["idle_s"] is None
            else f"; nothing running (overhead, waiting) {fmt_duration(t['idle_s'])} "
                 f"({100 * t['idle_s'] / t['wall_s'] if t['wall_s'] else 0:.0f} %)")
    first = timeline["first_submission"]
    return (f"Wall time {fmt_duration(t['wall_s'])}: {models}, scripts {fmt_duration(t['script_s'])} "
            f"({t['scripts']} scripts, {t['failed']} failed){idle}"
            + ("" if first is None else f"; first valid submission after {fmt_duration(first)}")
            + (f"; {t['reused']} results re-read from the journal on resume (no time)" if t["reused"] else "")
            + ". Model and script times add up over lanes running side by side.")


def time_markdown(timeline: dict | None) -> list[str]:
    """The summary line and the time per phase (phase: the node for model calls, see exec_phase for scripts)."""
    if timeline is None:
        return ["_No journal rows, so no timeline._", ""]
    lines = [time_summary(timeline), "", f"| phase | {' | '.join(TIME_HEADERS)} |",
             "|---" + "|---:" * len(TIME_HEADERS) + "|"]
    for row in [*timeline["phases"], time_total(timeline["phases"])]:
        lines.append(f"| {row['phase']} | {' | '.join(time_cells(row))} |")
    return lines + [""]
