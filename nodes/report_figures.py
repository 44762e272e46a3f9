"""The report's figures as PNG bytes (matplotlib, Agg): one function per figure, None when there is nothing to draw.

The same bytes are written next to report.md and embedded in report.html as data URIs.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.artist import Artist  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from nodes.common import is_better  # noqa: E402
from nodes.report_data import ENSEMBLE_LANE  # noqa: E402
from runtime.keys import PIPELINE_LANE  # noqa: E402

DPI = 110
MAX_BARS = 40
MODEL_COLOUR, SCRIPT_COLOUR, FAILED_COLOUR = "#4c72b0", "#dd8452", "#f6d5bd"
SUBMISSION_COLOUR = "#2ca02c"


def png(fig) -> bytes:
    image = io.BytesIO()
    fig.tight_layout()
    fig.savefig(image, format="png", dpi=DPI)
    plt.close(fig)
    return image.getvalue()


def lane_name(lane: int) -> str:
    return "ensemble" if lane == ENSEMBLE_LANE else f"lane {lane}"


def lane_colour(lane: int):
    return "black" if lane == ENSEMBLE_LANE else plt.get_cmap("tab10")(lane % 10)


def runs_figure(history: list[dict], metric: str, best_run: int | None) -> bytes | None:
    """Best validation score per meta-run, the champion starred and the baseline run dashed."""
    scored = [h for h in history if h.get("best_score") is not None]
    if not scored:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.plot([h["run_index"] for h in scored], [h["best_score"] for h in scored], "o-", label="best of the run")
    if history[0].get("best_score") is not None:
        ax.axhline(history[0]["best_score"], color="grey", linestyle="--", linewidth=1, label="baseline (run 0)")
    champion = [h for h in scored if h["run_index"] == best_run]
    if champion:
        ax.plot([champion[0]["run_index"]], [champion[0]["best_score"]], "*", color="gold", markersize=16,
                markeredgecolor="black", label="champion")
    ax.set(title="Best validation score per run", xlabel="run", ylabel=metric)
    ax.set_xticks([h["run_index"] for h in history])
    ax.legend(loc="best", fontsize=8)
    return png(fig)


def attempts_figure(attempts: list[dict], spans: list[tuple[int, float, float]], metric: str) -> bytes | None:
    """Score of every scored attempt over time, coloured by lane; filled circles were kept, crosses discarded.

    Without finish times (no journal rows) the x axis is the attempt's order instead."""
    scored = [a for a in attempts if a["score"] is not None]
    if not scored:
        return None
    timed = all(a["time"] is not None for a in scored)
    scale, unit = (60.0, "min") if timed and max(a["time"] for a in scored) > 300 else (1.0, "s")
    x_of = (lambda i, a: a["time"] / scale) if timed else (lambda i, a: i)
    fig, ax = plt.subplots(figsize=(10, 4.2))
    if timed:
        for index, (run, first, last) in enumerate(spans):
            if index % 2:
                ax.axvspan(first / scale, last / scale, color="0.93", zorder=0)
            ax.text((first + last) / 2 / scale, 1.01, f"run {run}", transform=ax.get_xaxis_transform(),
                    ha="center", va="bottom", fontsize=8)
    lanes = sorted({a["lane"] for a in scored}, key=lambda n: (n == ENSEMBLE_LANE, n))
    for lane in lanes:
        points = [(x_of(i, a), a) for i, a in enumerate(scored) if a["lane"] == lane]
        kept = [(x, a["score"]) for x, a in points if a["kept"]]
        dropped = [(x, a["score"]) for x, a in points if not a["kept"]]
        colour = lane_colour(lane)
        if kept:
            xs, ys = zip(*kept)
            ax.scatter(xs, ys, marker="o", s=46, color=colour, edgecolors="black", linewidths=0.6, zorder=3)
        if dropped:
            xs, ys = zip(*dropped)
            ax.scatter(xs, ys, marker="x", s=34, color=colour, alpha=0.75, zorder=2)
    handles = [Line2D([], [], marker="s", linestyle="", color=lane_colour(n), label=lane_name(n)) for n in lanes]
    handles += [Line2D([], [], marker="o", linestyle="", color="0.5", markeredgecolor="black", label="kept"),
                Line2D([], [], marker="x", linestyle="", color="0.5", label="discarded")]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    ax.set_title("Score of every attempt" + (" over time" if timed else ""), pad=18)
    ax.set(ylabel=metric, xlabel=f"time since the thread started ({unit})" if timed else "attempt (in order)")
    return png(fig)


def ablation_figure(studies: list[dict], metric: str, lower_is_better: bool) -> bytes | None:
    """Per refinement step: how much each ablated or changed part moved the score (variant - original)."""
    bars = [(f"run {s['run']} · lane {s['lane']} · step {s['step']}: {v['name'][:40]}", v["effect"],
             is_better(s["original"], v["score"], lower_is_better))
            for s in studies for v in s["variants"]][:MAX_BARS]
    if not bars:
        return None
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.32 * len(bars)))
    positions = range(len(bars))
    ax.barh(list(positions), [b[1] for b in bars], color=["#c0392b" if b[2] else "#27ae60" for b in bars])
    ax.set_yticks(list(positions), [b[0] for b in bars], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set(title="Ablation effects per refinement step", xlabel=f"{metric} of the variant − {metric} of the original")
    ax.legend(handles=[Line2D([], [], color="#c0392b", linewidth=6, label="the part helps (variant is worse)"),
                       Line2D([], [], color="#27ae60", linewidth=6, label="variant is as good or better")],
              loc="best", fontsize=8)
    return png(fig)


def ensemble_figure(results: list[dict], metric: str) -> bytes | None:
    """Per run: the best single-lane score, then each ensemble round's score (gold star: submitted)."""
    drawable = [r for r in results if any(x.get("score") is not None for x in r["rounds"])]
    if not drawable:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.4))
    width = max(len(r["rounds"]) for r in drawable) + 1
    for index, result in enumerate(drawable):
        dodge = 0.04 * (index - (len(drawable) - 1) / 2)  # runs with equal scores stay visible side by side
        xs = [x + dodge for x in range(len(result["rounds"]) + 1)]
        ys = [result["lanes_best"], *[x.get("score") for x in result["rounds"]]]
        ax.plot(xs, [float("nan") if y is None else y for y in ys], "o-", label=f"run {result['run']}")
        for x, rnd in zip(xs[1:], result["rounds"]):
            if rnd["kept"]:
                ax.plot([x], [rnd["score"]], "*", color="gold", markersize=15, markeredgecolor="black")
    ax.set_xticks(range(width), ["best lane", *[f"round {i}" for i in range(width - 1)]])
    ax.set(title="Ensemble rounds against the best single lane (gold star: submitted)", ylabel=metric)
    ax.legend(loc="best", fontsize=8)
    return png(fig)


def time_scale(seconds: float) -> tuple[float, str]:
    return (3600.0, "h") if seconds > 3 * 3600 else (60.0, "min") if seconds > 300 else (1.0, "s")


def timeline_bars(ax, y: float, intervals: list[dict], scale: float) -> None:
    """One lane's row: scripts as full-height bars (failed ones light and hatched), model calls as thinner
    bars on top. A thin edge in the bar's own colour keeps sub-pixel calls visible as hairlines."""
    def bars(kind: str, failed: bool, height: float, face: str, edge: str, **style) -> None:
        spans = [(s["start"] / scale, s["duration"] / scale) for s in intervals
                 if s["kind"] == kind and s["failed"] == failed]
        if spans:
            ax.broken_barh(spans, (y - height / 2, height), facecolors=face, edgecolors=edge, linewidth=0.6,
                           **style)

    bars("script", False, 0.8, SCRIPT_COLOUR, SCRIPT_COLOUR, zorder=2)
    bars("script", True, 0.8, FAILED_COLOUR, SCRIPT_COLOUR, hatch="////", zorder=2)
    bars("model", False, 0.4, MODEL_COLOUR, MODEL_COLOUR, zorder=3)


def mark_runs(ax, runs: list[dict], scale: float) -> None:
    """Every other pipeline run shaded, each labelled above the plot, its start a dotted line."""
    for index, run in enumerate(runs):
        if index % 2:
            ax.axvspan(run["start"] / scale, run["end"] / scale, color="0.93", zorder=0)
        ax.axvline(run["start"] / scale, color="0.6", linestyle=":", linewidth=0.8, zorder=1)
        ax.text((run["start"] + run["end"]) / 2 / scale, 1.01, f"run {run['run']}",
                transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=8)


def timeline_figure(timeline: dict | None) -> bytes | None:
    """One row per lane (pipeline-level work on top), x = time since the thread started: model calls and
    scripts as bars, pipeline runs shaded, the first valid submission a green line."""
    if not timeline or not timeline["intervals"]:
        return None
    intervals = timeline["intervals"]
    scale, unit = time_scale(timeline["end"])
    lanes = sorted({s["lane"] for s in intervals}, key=lambda n: (n != PIPELINE_LANE, n))
    fig, ax = plt.subplots(figsize=(10, 1.9 + 0.45 * len(lanes)))
    mark_runs(ax, timeline["runs"], scale)
    for y, lane in enumerate(lanes):
        timeline_bars(ax, y, [s for s in intervals if s["lane"] == lane], scale)
    handles: list[Artist] = [Patch(color=MODEL_COLOUR, label="model call"), Patch(color=SCRIPT_COLOUR, label="script"),
               Patch(facecolor=FAILED_COLOUR, edgecolor=SCRIPT_COLOUR, hatch="////", label="failed script")]
    if timeline["first_submission"] is not None:
        ax.axvline(timeline["first_submission"] / scale, color=SUBMISSION_COLOUR, linewidth=1.6, zorder=4)
        handles.append(Line2D([], [], color=SUBMISSION_COLOUR, label="first valid submission"))
    ax.set_yticks(range(len(lanes)), ["pipeline" if n == PIPELINE_LANE else f"lane {n}" for n in lanes])
    ax.set_ylim(len(lanes) - 0.5, -0.5)
    ax.set_xlim(0, timeline["end"] / scale * 1.01 or 1)
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    ax.set_title("Where the time went", pad=18)
    ax.set_xlabel(f"time since the thread started ({unit})")
    return png(fig)
