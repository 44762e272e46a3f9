"""Report: the meta loop's summary as Markdown with a plot of the best score per run and refinement step."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from langgraph.runtime import Runtime  # noqa: E402

from graph.context import Context  # noqa: E402
from nodes.common import emit, fmt_score  # noqa: E402
from nodes.meta_loop import meta_workspace  # noqa: E402
from runtime.files import atomic_write_bytes, atomic_write_text  # noqa: E402
from runtime.journal import open_journal  # noqa: E402

USAGE_HEADERS = ("calls", "tokens in", "tokens out", "inference s", "cost USD")
USAGE_GROUPS = (("role", "role"), ("phase", "phase (node)"))


def summarise(state: dict) -> dict:
    history, champion = state["history"], state.get("champion")
    baseline = history[0]["best_score"] if history else None
    best = champion["best_score"] if champion else None
    improvement = None
    if best is not None and baseline not in (None, 0):
        gain = (baseline - best) if state["task"]["lower_is_better"] else (best - baseline)
        improvement = 100 * gain / abs(baseline)
    return {"best_score": best, "best_run": champion["run_index"] if champion else None,
            "baseline_score": baseline, "improvement_pct": improvement,
            "best_submission": champion["submission_path"] if champion else None,
            "runs": len(history), "metric": state["task"]["metric"]}


def score_points(run: dict) -> list[float]:
    """The lane-best score after evaluation and after each refinement step of one run."""
    points = []
    for lane in run.get("lanes", []):
        for step in lane.get("history", []):
            if not points and step.get("before") is not None:
                points.append(step["before"])
            if step.get("after") is not None:
                points.append(step["after"])
    return points


def plot(state: dict, path: Path) -> None:
    history = state["history"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    runs = [h["run_index"] for h in history if h["best_score"] is not None]
    left.plot(runs, [h["best_score"] for h in history if h["best_score"] is not None], "o-")
    left.set(title="Best validation score per run", xlabel="run", ylabel=state["task"]["metric"])
    left.set_xticks([h["run_index"] for h in history])
    for run in history:
        points = score_points(run)
        if points:
            right.plot(range(len(points)), points, "o-", label=f"run {run['run_index']}")
    right.set(title="Score per refinement step (lane 0)", xlabel="step (0 = before refinement)",
              ylabel=state["task"]["metric"])
    if right.lines:
        right.legend()
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, image.getvalue())


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


def markdown(state: dict, summary: dict, plot_name: str, usage: dict[str, list[dict]] | None = None) -> str:
    lines = [f"# Meta-learning report: {state['meta_id']}", "",
             f"Task **{state['task']['name']}**, metric {summary['metric']} "
             f"({'lower' if state['task']['lower_is_better'] else 'higher'} is better), {summary['runs']} runs.", "",
             f"- Best validation score: **{fmt_score(summary['best_score'])}** (run {summary['best_run']})",
             f"- Baseline run 0: {fmt_score(summary['baseline_score'])}",
             "- Improvement over the baseline: " + ("n/a" if summary["improvement_pct"] is None
                                                     else f"{summary['improvement_pct']:+.2f} %"),
             f"- Best submission: `{summary['best_submission']}`", "", f"![scores]({plot_name})", "",
             "| run | status | stopped | score | duration | settings changed | goals |",
             "|---|---|---|---|---|---|---|"]
    for h in state["history"]:
        goals = "; ".join(f"{g['target_agent_phase']}: {g['focus']}" for g in h.get("goals", []))
        lines.append(f"| {h['run_index']} | {h['status']} | {h.get('stop_reason') or '-'} | "
                     f"{fmt_score(h['best_score'])} | {h['duration_s']:.0f} s | "
                     f"{h['overrides'] or '-'} | {goals or '-'} |")
    if usage is not None:
        lines += ["", *usage_markdown(usage)]
    lines += ["", "## The Enhancer's reasoning", ""]
    for e in state.get("enhancements", []):
        lines.append(f"**After run {e['after_run']}:** {e['strategic_summary'] or '(no usable answer)'}")
        for problem in e.get("problems", []):
            lines.append(f"- rejected: {problem}")
        lines.append("")
    return "\n".join(lines) + "\n"


def write_report(state: dict, folder: Path, usage: dict[str, list[dict]] | None = None) -> dict:
    """report.md and scores.png in `folder`; `usage` (Journal.usage_breakdown) adds the cost tables."""
    folder.mkdir(parents=True, exist_ok=True)
    summary = summarise(state)
    plot(state, folder / "scores.png")
    atomic_write_text(folder / "report.md", markdown(state, summary, "scores.png", usage))
    return {**summary, "markdown": str(folder / "report.md"), "plot": str(folder / "scores.png")}


def report(state: dict, runtime: Runtime[Context]) -> dict:
    usage = open_journal(runtime.context.journal_path).usage_breakdown(state["meta_id"])
    result = write_report(state, meta_workspace(state, runtime.context), usage)
    emit(node="report", event="report", best=result["best_score"], run=result["best_run"], path=result["markdown"])
    return {"report": result}
