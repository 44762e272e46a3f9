"""Report: what a meta loop did and why, as report.md (figures as PNG files beside it) and report.html (one
self-contained page). Facts come from nodes.report_data, figures from nodes.report_figures, the page from
nodes.report_html; this module gathers them, writes the Markdown and the files, and is the graph's `report` node.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from graph.context import Context
from graph.state import MetaState
from nodes import report_data as data, report_figures as figures
from nodes.common import emit, fmt_score
from nodes.meta_loop import meta_workspace
from nodes.report_html import render_html
from nodes.report_tables import TIMELINE_NOTE, fmt_cost, time_markdown, usage_markdown, usage_total
from runtime.files import atomic_write_bytes, atomic_write_text
from runtime.journal import open_journal


def summarise(state: Mapping[str, Any]) -> dict:
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


def gather(state: Mapping[str, Any], executions: list[dict] | None = None, usage: dict[str, list[dict]] | None = None,
           grade: dict | None = None, calls: list[dict] | None = None) -> dict:
    """Everything a report shows. `executions` (Journal.executions) give attempt times and ablation output,
    `usage` (Journal.usage_breakdown) the cost tables, `grade` ({metric, score}) a hidden-answer grade that
    the caller already has: the report never grades. `calls` (Journal.model_calls) and `executions` make the
    timeline; without `calls` it shows the scripts only."""
    executions = executions or []
    lower = state["task"]["lower_is_better"]
    attempts = data.all_attempts(state, executions)
    cost = fmt_cost(usage_total(usage.get("role", []))) + " USD" if usage is not None else "unknown (no journal)"
    summary = {**summarise(state), "task": state["task"]["name"], "lower_is_better": lower,
               "direction": "lower is better" if lower else "higher is better", "cost": cost}
    return {"state": state, "summary": summary, "attempts": attempts, "counts": data.attempt_counts(attempts),
            "spans": data.run_spans(state, executions), "ablations": data.ablation_effects(state, executions),
            "steps": data.refinement_steps(state), "ensembles": data.ensemble_results(state),
            "solution": data.final_solution(state), "usage": usage, "grade": grade,
            "timeline": data.timeline(calls, executions, state.get("started_at"),
                                      {h["run_id"]: h["run_index"] for h in state.get("history", [])})}


def draw(report: dict) -> dict[str, bytes | None]:
    """The report's figures by file name (None: nothing to draw)."""
    s = report["summary"]
    return {"scores.png": figures.runs_figure(report["state"]["history"], s["metric"], s["best_run"]),
            "attempts.png": figures.attempts_figure(report["attempts"], report["spans"], s["metric"]),
            "ablations.png": figures.ablation_figure(report["ablations"], s["metric"], s["lower_is_better"]),
            "ensemble.png": figures.ensemble_figure(report["ensembles"], s["metric"]),
            "timeline.png": figures.timeline_figure(report["timeline"])}


def md(text) -> str:
    """Model text for Markdown: inert as HTML, on one line, safe inside a table cell."""
    return escape("" if text is None else str(text), quote=False).replace("|", "\\|").replace("\n", " ").strip()


def settings(overrides: dict | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in (overrides or {}).items()) or "-"


def md_image(report: dict, name: str, alt: str) -> list[str]:
    return [f"![{alt}]({name})", ""] if report["images"].get(name) else [f"_{alt}: nothing to draw._", ""]


def code_fence(code: str) -> str:
    """A fence longer than any run of backticks inside the code, so the code cannot close it."""
    return "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", code)), default=0))


def markdown(report: dict) -> str:
    state, s, counts, grade = report["state"], report["summary"], report["counts"], report["grade"]
    lines = [f"# Meta-learning report: {state['meta_id']}", "",
             f"Task **{md(s['task'])}**, metric {md(s['metric'])} ({s['direction']}), {s['runs']} runs.", "",
             "## Summary", "",
             f"- Best validation score: **{fmt_score(s['best_score'])}** (run {s['best_run']})",
             f"- Baseline run 0: {fmt_score(s['baseline_score'])}",
             "- Improvement over the baseline: " + ("n/a" if s["improvement_pct"] is None
                                                     else f"{s['improvement_pct']:+.2f} %"),
             "- Graded score: " + (f"{fmt_score(grade['score'])} (hidden answers)" if grade else "not recorded"),
             f"- Best submission: `{s['best_submission']}`",
             f"- Attempts: {counts['attempts']} ({counts['kept']} kept, {counts['discarded']} discarded, "
             f"{counts['failed']} failed)",
             f"- Model cost: {s['cost']}", "",
             "## Score per run", "", *md_image(report, "scores.png", "Best validation score per run"),
             "| run | status | stopped | score | duration | settings changed | goals |",
             "|---|---|---|---|---|---|---|"]
    for h in state["history"]:
        goals = "; ".join(f"{g['target_agent_phase']}: {g['focus']}" for g in h.get("goals", []))
        lines.append(f"| {h['run_index']} | {h['status']} | {md(h.get('stop_reason') or '-')} | "
                     f"{fmt_score(h['best_score'])} | {h['duration_s']:.0f} s | "
                     f"{md(settings(h.get('overrides')))} | {md(goals or '-')} |")
    lines += ["", "## The submission board", "",
              "When each run first held a valid submission, and which phase improved it (validation score, time "
              "since the run started):", ""]
    for h in state["history"]:
        steps = " -> ".join(f"{md(x['source'])} {fmt_score(x['score'])} at {x['at_s']:.0f} s"
                            for x in h.get("submissions") or [] if x.get("at_s") is not None)
        lines.append(f"- run {h['run_index']}: {steps or 'no submission'}")
    lines += ["", "## Every attempt over time", "",
              "Filled circles were kept (became the lane's solution, or the submission came from the ensemble "
              "round), crosses discarded; failed attempts have no score.", "",
              *md_image(report, "attempts.png", "Score of every attempt over time"),
              "## Where the time went", "", TIMELINE_NOTE, "",
              *md_image(report, "timeline.png", "Timeline of model calls and scripts"),
              *time_markdown(report["timeline"]),
              "## Ablation effects per refinement step", "",
              *md_image(report, "ablations.png", "Ablation effects per refinement step")]
    for study in report["ablations"]:
        effects = "; ".join(f"{md(v['name'])} {v['effect']:+.4g}" for v in study["variants"])
        lines.append(f"- run {study['run']}, lane {study['lane']}, step {study['step']} (original "
                     f"{fmt_score(study['original'])}): {effects}")
    lines += ["", "## Ensemble rounds", "", *md_image(report, "ensemble.png", "Ensemble rounds")]
    for result in report["ensembles"]:
        for r in result["rounds"]:
            lines.append(f"- run {result['run']}, round {r['round']}: {md(r.get('plan'))} -> "
                         f"{fmt_score(r.get('score'))} (best lane {fmt_score(result['lanes_best'])})"
                         + (", submitted" if r["kept"] else ""))
    lines += ["", "## Plans tried and their effect", "",
              "| run | lane | step | plan | score | change | outcome |", "|---:|---:|---:|---|---:|---:|---|"]
    for a in report["attempts"]:
        if a["kind"] in ("refine", "ensemble"):
            delta = "" if a["score"] is None or a["base"] is None else f"{a['score'] - a['base']:+.4g}"
            word = "failed" if a["score"] is None else "kept" if a["kept"] else "discarded"
            step = a["label"].split()[1] if a["kind"] == "refine" else "ensemble"
            lines.append(f"| {a['run']} | {'-' if a['lane'] < 0 else a['lane']} | {step} | {md(a['plan'])} | "
                         f"{fmt_score(a['score'])} | {delta} | {word} |")
    lines += ["", "## The Enhancer's reasoning", ""]
    for e in state.get("enhancements", []):
        lines.append(f"**After run {e['after_run']}:** {md(e['strategic_summary']) or '(no usable answer)'}")
        lines.append(f"- settings changed: {md(settings(e.get('config_overrides')))}")
        for g in e.get("strategic_goals", []):
            lines.append(f"- goal {g['priority']} ({md(g['target_agent_phase'])}): {md(g['focus'])} "
                         f"({md(g.get('rationale'))})")
        for problem in e.get("problems", []):
            lines.append(f"- rejected: {md(problem)}")
        lines.append("")
    lines += ["## Final solution", ""]
    solution = report["solution"]
    if solution:
        fence = code_fence(solution["code"])
        lines += [f"The champion run's best solution ({md(solution.get('origin'))}), validation score "
                  f"{fmt_score(solution.get('score'))}:", "", f"{fence}python", solution["code"].rstrip("\n"),
                  fence, ""]
    else:
        lines += ["No run produced a scored solution.", ""]
    if report["usage"] is not None:
        lines += usage_markdown(report["usage"])
    return "\n".join(lines) + "\n"


def write_report(state: Mapping[str, Any], folder: Path, usage: dict[str, list[dict]] | None = None,
                 executions: list[dict] | None = None, grade: dict | None = None,
                 calls: list[dict] | None = None) -> dict:
    """report.md with its figures (PNG files) and report.html (self-contained) in `folder`.

    `usage` (Journal.usage_breakdown) adds the cost tables, `executions` (Journal.executions) the attempt
    times, ablation effects and the timeline's scripts, `calls` (Journal.model_calls) the timeline's model calls;
    without them those parts say so instead."""
    folder.mkdir(parents=True, exist_ok=True)
    report = gather(state, executions, usage, grade, calls)
    report["images"] = draw(report)
    for name, image in report["images"].items():
        if image is not None:
            atomic_write_bytes(folder / name, image)
    atomic_write_text(folder / "report.md", markdown(report))
    atomic_write_text(folder / "report.html", render_html(report))
    written = [str(folder / name) for name, image in report["images"].items() if image is not None]
    return {**{k: report["summary"][k] for k in ("best_score", "best_run", "baseline_score", "improvement_pct",
                                                 "best_submission", "runs", "metric")},
            **report["counts"], "markdown": str(folder / "report.md"), "html": str(folder / "report.html"),
            "plot": str(folder / "scores.png"), "figures": written}


def record_outcome(journal, run_id: str, report: dict) -> None:
    """The journal's record of a finished thread, whichever way it was started (CLI, Python, API)."""
    journal.upsert_run(run_id, status="done" if report.get("best_submission") else "failed",
                       best_score=report.get("best_score"), submission=report.get("best_submission"))


def report(state: MetaState, runtime: Runtime[Context]) -> dict:
    journal = open_journal(runtime.context.journal_path)
    result = write_report(state, meta_workspace(state, runtime.context), journal.usage_breakdown(state["meta_id"]),
                          journal.executions(state["meta_id"]), calls=journal.model_calls(state["meta_id"]))
    record_outcome(journal, state["meta_id"], result)
    emit(node="report", event="report", best=result["best_score"], run=result["best_run"], path=result["markdown"])
    return {"report": result}
