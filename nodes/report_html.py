"""report.html: the whole report as one self-contained page that renders offline.

Figures are embedded as base64 PNG data URIs, the style sheet is inline, and there is no script, font or
link to anything outside the file. Every piece of text passes through `html.escape`: plans, summaries,
goals and code are model output, untrusted, and must show as text, never act as markup.
"""

from __future__ import annotations

import base64
from collections.abc import Collection
from html import escape

from nodes.common import fmt_score, is_better
from nodes.report_tables import (
    TIME_HEADERS,
    TIMELINE_NOTE,
    USAGE_GROUPS,
    USAGE_HEADERS,
    time_cells,
    time_summary,
    time_total,
    usage_cells,
    usage_total,
)

SECTIONS = (("summary", "Summary"), ("runs", "Score per run"), ("attempts", "Every attempt over time"),
            ("timeline", "Where the time went"), ("ablations", "Ablation effects per refinement step"),
            ("ensemble", "Ensemble rounds"),
            ("plans", "Plans tried and their effect"), ("enhancer", "The Enhancer's reasoning"),
            ("solution", "Final solution"), ("cost", "Model usage and cost"))
BLOCK_LIMIT = 240
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1100px;
       padding: 1.5em; color: #1d2327; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #dde3e8; padding-bottom: 0.2em; margin-top: 2em; }
nav { display: flex; flex-wrap: wrap; gap: 0.2em 1em; } nav a { white-space: nowrap; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #d0d7de; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f5f7; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: bold; }
img { max-width: 100%; height: auto; border: 1px solid #e5e9ed; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; padding: 1em; overflow-x: auto; font-size: 0.85em; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.9em; }
.kept { color: #1a7f37; font-weight: bold; } .discarded { color: #8c959f; } .failed { color: #cf222e; }
.better { color: #1a7f37; } .worse { color: #cf222e; } .empty { color: #57606a; font-style: italic; }
dl.summary { display: grid; grid-template-columns: max-content auto; gap: 0.25em 1.2em; }
dl.summary dt { font-weight: bold; } dl.summary dd { margin: 0; }
"""


def e(value) -> str:
    return escape("" if value is None else str(value), quote=True)


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure(data: bytes | None, alt: str) -> str:
    if data is None:
        return f'<p class="empty">{e(alt)}: nothing to draw in this thread.</p>'
    return f'<p><img alt="{e(alt)}" src="{data_uri(data)}"></p>'


def table(headers: list[str], rows: list[list[str]], numeric: Collection[int] = frozenset(),
          total: bool = False) -> str:
    """A table whose cells are already HTML (escaped by the caller); `numeric` columns align right."""
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        css = ' class="total"' if total and i == len(rows) - 1 else ""
        cells = "".join(f'<td class="num">{c}</td>' if j in numeric else f"<td>{c}</td>" for j, c in enumerate(row))
        body.append(f"<tr{css}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def empty(text: str) -> str:
    return f'<p class="empty">{e(text)}</p>'


def change(score, base, lower_is_better: bool) -> str:
    """The score change against `base`, green when better, red when worse."""
    if score is None or base is None:
        return ""
    css = ("better" if is_better(score, base, lower_is_better)
           else "worse" if is_better(base, score, lower_is_better) else "")
    return f'<span class="{css}">{score - base:+.4g}</span>'


def outcome(attempt: dict) -> str:
    word = "failed" if attempt["score"] is None else "kept" if attempt["kept"] else "discarded"
    return f'<span class="{word}">{word}</span>'


def summary_section(report: dict) -> str:
    s, counts, grade = report["summary"], report["counts"], report.get("grade")
    improvement = "n/a" if s["improvement_pct"] is None else f"{s['improvement_pct']:+.2f} %"
    graded = (f"{fmt_score(grade['score'])} ({grade.get('metric') or s['metric']}, hidden answers)" if grade
              else "not recorded (mlestar grade scores a submission with the hidden answers)")
    items = [("Task", f"{s['task']}, metric {s['metric']} ({s['direction']})"),
             ("Runs", s["runs"]), ("Best validation score", f"{fmt_score(s['best_score'])} (run {s['best_run']})"),
             ("Baseline (run 0)", fmt_score(s["baseline_score"])), ("Improvement over the baseline", improvement),
             ("Graded score", graded), ("Best submission", s["best_submission"] or "none"),
             ("Attempts", f"{counts['attempts']}: {counts['kept']} kept, {counts['discarded']} discarded, "
                          f"{counts['failed']} failed"),
             ("Model cost", s["cost"])]
    rows = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in items)
    return f'<dl class="summary">{rows}</dl>'


def runs_section(report: dict) -> str:
    rows = []
    for h in report["state"].get("history", []):
        mine = [a for a in report["attempts"] if a["run"] == h["run_index"]]
        kept = sum(a["kept"] for a in mine)
        failed = sum(a["score"] is None for a in mine)
        settings = ", ".join(f"{k}={v}" for k, v in (h.get("overrides") or {}).items()) or "-"
        rows.append([e(h["run_index"]), e(h["status"]), e(h.get("stop_reason") or "-"), e(fmt_score(h["best_score"])),
                     e(h.get("best_origin") or "-"), e(f"{h['duration_s']:.0f} s"), e(settings),
                     e(len(h.get("goals") or [])), e(f"{kept} / {len(mine) - kept - failed} / {failed}")])
    return (figure(report["images"].get("scores.png"), "Best validation score per run")
            + table(["run", "status", "stopped", "score", "from", "duration", "settings changed", "goals",
                     "kept / discarded / failed"], rows, numeric={0, 3, 5, 7}))


def attempts_section(report: dict) -> str:
    lanes: dict[tuple, list[dict]] = {}
    for a in report["attempts"]:
        lanes.setdefault((a["run"], a["lane"]), []).append(a)
    rows = []
    for (run, lane), found in sorted(lanes.items()):
        kept = sum(a["kept"] for a in found)
        failed = sum(a["score"] is None for a in found)
        rows.append([e(run), e("ensemble" if lane < 0 else lane), e(len(found)), e(kept),
                     e(len(found) - kept - failed), e(failed)])
    note = ("<p>Filled circles were <b>kept</b> (the attempt became its lane's solution, or the run's submission "
            "came from the ensemble round); crosses were <b>discarded</b>. Failed attempts have no score and are "
            "counted in the table only.</p>")
    return (note + figure(report["images"].get("attempts.png"), "Score of every attempt over time")
            + table(["run", "lane", "attempts", "kept", "discarded", "failed"], rows, numeric={0, 2, 3, 4, 5}))


def timeline_section(report: dict) -> str:
    timeline = report.get("timeline")
    if timeline is None:
        return empty("No journal rows, so no timeline.")
    rows = [[e(row["phase"]), *(e(c) for c in time_cells(row))]
            for row in [*timeline["phases"], time_total(timeline["phases"])]]
    image = figure(report["images"].get("timeline.png"), "Timeline of model calls and scripts")
    return (f"<p>{e(TIMELINE_NOTE)}</p>{image}<p>{e(time_summary(timeline))}</p>"
            + table(["phase", *TIME_HEADERS], rows, numeric=set(range(1, len(TIME_HEADERS) + 1)), total=True))


def ablations_section(report: dict) -> str:
    studies = {(s["run"], s["lane"], s["step"]): s for s in report["ablations"]}
    parts = [figure(report["images"].get("ablations.png"), "Ablation effects per refinement step")]
    lower = report["summary"]["lower_is_better"]
    for run in report["state"].get("history", []):
        for lane in run.get("lanes", []):
            for ablation in lane.get("ablations", []):
                key = (run["run_index"], lane["lane"], ablation["step"])
                parts.append(f"<h3>Run {key[0]}, lane {key[1]}, step {key[2]}</h3><p>{e(ablation['summary'])}</p>")
                study = studies.get(key)
                if study:
                    rows = [[e(v["name"]), e(fmt_score(v["score"])), change(v["score"], study["original"], lower)]
                            for v in study["variants"]]
                    parts.append(table([f"variant (original {fmt_score(study['original'])})", "score",
                                        "change"], rows, numeric={1, 2}))
    return "".join(parts) if len(parts) > 1 else parts[0] + empty("No ablation study ran in this thread.")


def ensemble_section(report: dict) -> str:
    lower = report["summary"]["lower_is_better"]
    rows = [[e(r["run"]), e(x["round"]), e(x.get("plan")), e(fmt_score(x.get("score"))),
             e(fmt_score(r["lanes_best"])), change(x.get("score"), r["lanes_best"], lower),
             '<span class="kept">submitted</span>' if x["kept"] else ""]
            for r in report["ensembles"] for x in r["rounds"]]
    if not rows:
        return empty("No ensemble round ran in this thread (it needs two or more lane solutions).")
    return (figure(report["images"].get("ensemble.png"), "Ensemble rounds")
            + table(["run", "round", "plan", "score", "best lane", "change", ""], rows, numeric={0, 1, 3, 4, 5}))


def plans_section(report: dict) -> str:
    lower = report["summary"]["lower_is_better"]
    refine = {(a["run"], a["lane"], a["label"]): a for a in report["attempts"] if a["kind"] == "refine"}
    parts = []
    for step in report["steps"]:
        block = step.get("block") or ""
        block = block if len(block) <= BLOCK_LIMIT else block[:BLOCK_LIMIT] + " ..."
        rows = []
        for k, attempt in enumerate(step.get("attempts", [])):
            found = refine.get((step["run"], step["lane"], f"step {step['step']} attempt {k}"))
            rows.append([e(k), e(attempt.get("plan")), e(fmt_score(attempt.get("score"))),
                         change(attempt.get("score"), step.get("before"), lower), outcome(found) if found else ""])
        source = " (an ablation variant)" if (step.get("kept") or "").startswith("ablation:") else ""
        heading = (f"<h3>Run {e(step['run'])}, lane {e(step['lane'])}, step {e(step['step'])}: "
                   f"{e(fmt_score(step.get('before')))} &rarr; {e(fmt_score(step.get('after')))}{source}</h3>")
        if not block:
            parts.append(heading + empty("No code block was chosen in this step, so nothing was tried."))
            continue
        parts.append(heading + f"<p>Block refined:</p><pre><code>{e(block)}</code></pre>"
                     + (table(["attempt", "plan", "score", "change", "outcome"], rows, numeric={0, 2, 3}) if rows
                        else empty("No rewrite of the block was tried.")))
    return "".join(parts) or empty("No refinement step ran in this thread.")


def enhancer_section(report: dict) -> str:
    parts = []
    for enhancement in report["state"].get("enhancements", []):
        overrides = ", ".join(f"{k}={v}" for k, v in (enhancement.get("config_overrides") or {}).items())
        goals = [[e(g.get("priority")), e(g.get("target_agent_phase")), e(g.get("focus")), e(g.get("rationale"))]
                 for g in enhancement.get("strategic_goals", [])]
        parts.append(f"<h3>After run {e(enhancement['after_run'])}</h3>"
                     f"<p>{e(enhancement.get('strategic_summary') or '(no usable answer)')}</p>"
                     f"<p>Settings changed for the next run: {e(overrides or 'none')}</p>")
        if goals:
            parts.append(table(["priority", "phase", "focus", "rationale"], goals, numeric={0}))
        problems = "".join(f"<li>{e(p)}</li>" for p in enhancement.get("problems", []))
        if problems:
            parts.append(f"<p>Rejected parts of the answer:</p><ul>{problems}</ul>")
    return "".join(parts) or empty("The Enhancer did not run (a single run has no Enhancer).")


def solution_section(report: dict) -> str:
    solution = report["solution"]
    if not solution:
        return empty("No run produced a scored solution.")
    return (f"<p>The champion run's best solution ({e(solution.get('origin') or '?')}), validation score "
            f"{e(fmt_score(solution.get('score')))}. This is its validation script; the submission script "
            f"derived from it is in the run's workspace.</p><pre><code>{e(solution['code'])}</code></pre>")


def cost_section(report: dict) -> str:
    usage = report.get("usage")
    if usage is None:
        return empty("No journal was given, so no usage is shown.")
    parts = []
    for group, title in USAGE_GROUPS:
        rows = usage.get(group, [])
        cells = [[e(row["name"]), *(e(c) for c in usage_cells(row))] for row in [*rows, usage_total(rows)]]
        parts.append(table([title, *USAGE_HEADERS], cells, numeric=set(range(1, len(USAGE_HEADERS) + 1)),
                           total=True))
    return "".join(parts)


RENDERERS = {"summary": summary_section, "runs": runs_section, "attempts": attempts_section,
             "timeline": timeline_section,
             "ablations": ablations_section, "ensemble": ensemble_section, "plans": plans_section,
             "enhancer": enhancer_section, "solution": solution_section, "cost": cost_section}


def render_html(report: dict) -> str:
    """The page for a gathered report (nodes.report.gather) with its figures in report["images"]."""
    title = f"MLE-STAR report: {report['state']['meta_id']}"
    nav = "".join(f'<a href="#{key}">{e(name)}</a>' for key, name in SECTIONS)
    body = "".join(f'<section id="{key}"><h2>{e(name)}</h2>{RENDERERS[key](report)}</section>'
                   for key, name in SECTIONS)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{e(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{e(title)}</h1><nav>{nav}</nav>{body}</body></html>\n")
