"""Benchmark: how often does each JSON call site get an unusable answer, per structured output mode?

For every JSON call site of the graph, builds the node's real prompt with the real templates and realistic
inputs from examples/titanic (task header, data summary, the catalog's example script, a short ablation
summary, a short run history), then asks the embedded model N times under each `structured_output` mode:
"off" (no response_format), "json" (`{"type": "json_object"}`) and "schema" (`{"type": "json_schema", ...}`
with the site's schema), bound exactly as nodes/llm.py does it, through `runtime.models.json_mode`, with the
same system message. Each answer goes through the site's own parser once (no re-ask); per sample it records
parse success, the parser's complaint, latency and output tokens. For the Enhancer it also counts answers
that parse but that `validate_enhancement` finds problems in. A request the server refuses (for instance an
HTTP 400 for a response_format it does not support) is recorded as a request error, not raised.

Sites: search (PICK_APPROACHES), extract (EXTRACT_BLOCK), metric (METRIC_QUESTION), leakage (LEAKAGE_REVIEW),
usage (USAGE_REVIEW; the second reviewer check) and enhance (ENHANCE). Samples are interleaved over the modes
(sample i of every mode, then sample i+1), and each site's prompt is first sent once with max_tokens=1 (not
recorded) so that llama.cpp's prompt cache treats every mode alike. Prints a site x mode table and totals per
mode; saves bench/results/structured_output.json (rewritten after every site, so partial results survive).

    .venv/bin/python bench/structured_output.py [--samples 4] [--temperature 0.7] [--sites search extract ...]
                                                [--modes off json schema] [--model local]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from langchain_core.messages import HumanMessage, SystemMessage  # noqa: E402

from graph.context import Context  # noqa: E402
from nodes.checks import verdict_parser  # noqa: E402
from nodes.common import direction, fmt_score, task_header  # noqa: E402
from nodes.enhance import digest_run, history_lines, knob_lines, validate_enhancement  # noqa: E402
from nodes.prepare import metric_answer  # noqa: E402
from nodes.refine import parse_target  # noqa: E402
from nodes.search import parse_keys  # noqa: E402
from prompts import refine as P  # noqa: E402
from prompts.checks import LEAKAGE_REVIEW, LEAKAGE_SCHEMA, USAGE_REVIEW, USAGE_SCHEMA  # noqa: E402
from prompts.common import SYSTEM  # noqa: E402
from prompts.enhance import ENHANCE, ENHANCEMENT_SCHEMA  # noqa: E402
from prompts.search import APPROACHES_SCHEMA, PICK_APPROACHES  # noqa: E402
from prompts.task import METRIC_QUESTION, METRIC_SCHEMA  # noqa: E402
from runtime import metrics  # noqa: E402
from runtime.catalog import applicable, render_example  # noqa: E402
from runtime.models import STRUCTURED_OUTPUT_MODES, json_mode, make_chat_model  # noqa: E402
from runtime.parsing import AnswerError, extract_json  # noqa: E402
from runtime.task import Task, data_summary, load_task  # noqa: E402

SITES = ("search", "extract", "metric", "leakage", "usage", "enhance")
ANSWER_KEEP = 1500  # characters of each answer kept in the results, for reading failures
SCORE = 0.819048  # validation accuracy of the catalog's lightgbm example on titanic (172/210), before refinement

# A plausible reviewer summary of an ablation study of the lightgbm example on titanic.
ABLATION_SUMMARY = ("Dropping the engineered Name length features barely changes accuracy (0.8190 -> 0.8143), "
                    "while treating Sex as a plain string instead of a category costs the most (0.8190 -> 0.7857). "
                    "Lowering num_leaves from 31 to 15 gives 0.8286. The categorical handling and the model's "
                    "capacity look like the most promising parts to improve; the Name column is under-used.")


@dataclass
class Site:
    name: str
    prompt: str
    schema: dict
    parse: Callable[[str], Any]
    validate: Callable[[Any], list[str]] | None = None  # problems found in a parsed answer (Enhancer only)


# --------------------------------------------------------------------------- prompts, as the nodes build them


def search_site(task: Task, summary: str, ctx: Context) -> Site:
    """nodes/search.py `search` (asked when the catalog has more applicable approaches than num_candidates)."""
    options = applicable(task)
    keys = [a.key for a in options]
    listing = "\n".join(f"- {a.key}: {a.title}. {a.description}" for a in options)
    prompt = PICK_APPROACHES.format(task_header=task_header(task, summary), options=listing, m=ctx.num_candidates)
    return Site("search", prompt, APPROACHES_SCHEMA, parse_keys(keys))


def extract_site(task: Task, code: str, score: float) -> Site:
    """nodes/refine.py `extract`: first refinement step (no block refined yet) of a plain run (no goals)."""
    refined: list[str] = []
    prompt = P.EXTRACT_BLOCK.format(
        metric=task.metric, score=fmt_score(score), direction=direction(task), code=code, summary=ABLATION_SUMMARY,
        refined_note=P.REFINED_NOTE.format(blocks="\n".join(f"```\n{b}\n```" for b in refined)) if refined else "",
        goals="")
    return Site("extract", prompt, P.TARGET_SCHEMA, parse_target(code, refined))


def metric_site(task: Task) -> Site:
    """runtime/task.py `_ask_metric` with nodes/prepare.py's parser. (titanic's task.json names its metric, so
    a real run never asks; the prompt is built from its description and submission columns all the same.)"""
    prompt = METRIC_QUESTION.format(
        description=task.description[:6000],
        known_metrics="\n".join(f"{m.name}: {m.description}" for m in metrics.METRICS.values()),
        target_columns=", ".join(task.target_columns))
    return Site("metric", prompt, METRIC_SCHEMA, metric_answer)


def review_site(name: str, template: str, schema: dict, flag: str, task: Task, summary: str, code: str) -> Site:
    """nodes/checks.py `review` (leakage_check / usage_check = "model")."""
    prompt = template.format(task_header=task_header(task, summary), code=code)
    return Site(name, prompt, schema, verdict_parser(flag))


def enhance_site(task: Task) -> Site:
    """nodes/enhance.py `enhance` after run 0 of a meta loop with the default settings."""
    config = asdict(Context())
    # Validation scores of a 210-row hold-out (k/210), as the titanic example's scripts report them.
    run0 = {
        "run_index": 0, "status": "done", "best_score": 0.833333, "best_origin": "ensemble:r0",
        "duration_s": 1712.4, "overrides": {}, "config": config, "scripts": 14, "scripts_ok": 11,
        "lanes": [
            {"lane": 0, "score": 0.828571, "candidates": [{"key": "lightgbm", "score": SCORE}],
             "history": [{"step": 0, "block": "params = dict(...)", "before": SCORE, "after": 0.828571,
                          "attempts": [{"plan": "Lower num_leaves to 15 and raise min_child_samples to 20 to reduce "
                                                "overfitting on the small training set.", "score": 0.828571},
                                       {"plan": "Add an is_alone feature and a title extracted from Name before "
                                                "training.", "score": None}]}],
             "ablations": [{"step": 0, "summary": ABLATION_SUMMARY}]},
            {"lane": 1, "score": 0.814286, "candidates": [{"key": "random_forest", "score": 0.809524}],
             "history": [{"step": 0, "block": "model = RandomForestClassifier(...)", "before": 0.809524,
                          "after": 0.814286,
                          "attempts": [{"plan": "Use 500 trees with max_depth 8 and min_samples_leaf 2.",
                                        "score": 0.814286},
                                       {"plan": "Impute Age by the median of each Pclass and Sex group.",
                                        "score": 0.804762}]}],
             "ablations": [{"step": 0, "summary": "Removing Sex drops accuracy by 0.06; Age imputation and Fare "
                                                  "scaling change it by less than 0.005."}]},
        ],
        "ensemble_rounds": [{"round": 0, "plan": "Average the predicted probabilities of the two lanes' models "
                                                 "with weights 0.6/0.4, then threshold at 0.5.",
                             "score": 0.833333}],
    }
    prompt = ENHANCE.format(
        task_name=task.name, metric=task.metric,
        direction="lower is better" if task.lower_is_better else "higher is better",
        history=history_lines([run0]),
        champion=f"run {run0['run_index']} with score {fmt_score(run0['best_score'])}",
        digest=digest_run(run0), knobs=knob_lines(Context(**run0["config"])))

    def problems(answer: Any) -> list[str]:
        return validate_enhancement(answer)[1]

    return Site("enhance", prompt, ENHANCEMENT_SCHEMA, extract_json, problems)


def build_sites(task_dir: Path) -> dict[str, Site]:
    task = load_task(task_dir)
    summary = data_summary(task)
    ctx = Context()
    code = render_example(applicable(task)[0], task)  # the catalog's first (best prior) approach, as search offers it
    return {site.name: site for site in (
        search_site(task, summary, ctx),
        extract_site(task, code, SCORE),
        metric_site(task),
        review_site("leakage", LEAKAGE_REVIEW, LEAKAGE_SCHEMA, "leakage", task, summary, code),
        review_site("usage", USAGE_REVIEW, USAGE_SCHEMA, "ignores_data", task, summary, code),
        enhance_site(task),
    )}


# --------------------------------------------------------------------------- asking


def request_error(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    detail = getattr(exc, "message", None) or str(exc)
    return f"HTTP {status}: {detail}" if status else f"{type(exc).__name__}: {detail}"


def ask_once(model, spec: str, site: Site, mode: str) -> dict:
    """One first-try answer of `site` under `mode`, parsed by the site's parser; never raises."""
    bound = json_mode(model, spec, site.schema, mode)
    messages = [SystemMessage(SYSTEM), HumanMessage(site.prompt)]
    started = time.monotonic()
    try:
        reply = bound.invoke(messages)
    except Exception as exc:  # a refused response_format (HTTP 400), a timeout, a dropped server ...
        return {"ok": False, "request_error": request_error(exc)[:1000], "error": None,
                "latency_s": round(time.monotonic() - started, 2), "output_tokens": None, "input_tokens": None}
    latency = time.monotonic() - started
    text = reply.content if isinstance(reply.content, str) else str(reply.content)
    usage = getattr(reply, "usage_metadata", None) or {}
    sample = {"ok": False, "request_error": None, "error": None, "latency_s": round(latency, 2),
              "output_tokens": usage.get("output_tokens"), "input_tokens": usage.get("input_tokens"),
              "finish_reason": (reply.response_metadata or {}).get("finish_reason"), "answer": text[:ANSWER_KEEP]}
    try:
        parsed = site.parse(text)
    except AnswerError as exc:
        sample["error"] = str(exc)[:1000]
        return sample
    sample["ok"] = True
    if site.validate is not None:
        sample["problems"] = site.validate(parsed)
    return sample


def warm_up(model, site: Site) -> None:
    """Put the site's prompt in llama.cpp's prompt cache, so the first measured mode is not the only cold one."""
    try:
        model.bind(max_tokens=1).invoke([SystemMessage(SYSTEM), HumanMessage(site.prompt)])
    except Exception as exc:  # the measured calls will record whatever is wrong
        print(f"  warm-up of {site.name} failed: {request_error(exc)[:200]}", flush=True)


def cell_summary(samples: list[dict], enhancer: bool) -> dict:
    answered = [s for s in samples if s["request_error"] is None]
    tokens = [s["output_tokens"] for s in answered if s["output_tokens"] is not None]
    cell = {"n": len(samples), "parsed_first_try": sum(s["ok"] for s in samples),
            "request_errors": len(samples) - len(answered),
            "mean_latency_s": round(statistics.mean(s["latency_s"] for s in answered), 2) if answered else None,
            "mean_output_tokens": round(statistics.mean(tokens), 1) if tokens else None}
    if enhancer:
        cell["parsed_with_problems"] = sum(1 for s in samples if s["ok"] and s.get("problems"))
        cell["parsed_clean"] = sum(1 for s in samples if s["ok"] and not s.get("problems"))
    return cell


def mode_totals(results: dict, modes: list[str]) -> dict:
    totals = {}
    for mode in modes:
        samples = [s for site in results.values() for s in site["modes"][mode]["samples"]]
        totals[mode] = cell_summary(samples, enhancer=False) if samples else {"n": 0}
    return totals


# --------------------------------------------------------------------------- output


def fmt_cell(cell: dict) -> str:
    text = f"{cell['parsed_first_try']}/{cell['n']}"
    if cell.get("request_errors"):
        text += f" ({cell['request_errors']} refused)"
    if "parsed_with_problems" in cell:
        text += f" [{cell['parsed_clean']} clean]"
    latency = cell.get("mean_latency_s")
    return text + (f", {latency:.1f} s" if latency is not None else ", - s")


def print_table(results: dict, totals: dict, modes: list[str]) -> None:
    width = 30
    print("\nfirst-try parse success k/N, mean latency (enhance: [answers with no validation problems])")
    print(f"{'site':<10}" + "".join(f"{m:<{width}}" for m in modes))
    for name, site in results.items():
        print(f"{name:<10}" + "".join(f"{fmt_cell(site['modes'][m]['summary']):<{width}}" for m in modes))
    print(f"{'total':<10}" + "".join(f"{fmt_cell(totals[m]) if totals[m].get('n') else '-':<{width}}"
                                     for m in modes))
    for name, site in results.items():
        for mode in modes:
            for i, sample in enumerate(site["modes"][mode]["samples"]):
                why = sample["request_error"] or sample["error"] or "; ".join(sample.get("problems") or [])
                if why:
                    print(f"  {name}/{mode}#{i}: {why[:220]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=4, help="answers per site and mode (N)")
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--max-tokens", type=int, default=Context().max_tokens)
    parser.add_argument("--sites", nargs="+", choices=SITES, default=list(SITES))
    parser.add_argument("--modes", nargs="+", choices=STRUCTURED_OUTPUT_MODES, default=["off", "json", "schema"])
    parser.add_argument("--model", default="local", help="model spec (default: the embedded model)")
    parser.add_argument("--task", default="titanic")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()

    all_sites = build_sites(ROOT / "examples" / args.task)
    sites = [all_sites[name] for name in args.sites]
    started_load = time.monotonic()
    model = make_chat_model(args.model, temperature=args.temperature, max_tokens=args.max_tokens)
    load_s = time.monotonic() - started_load
    print(f"model {args.model} ready in {load_s:.1f} s; {len(sites)} sites x {len(args.modes)} modes x "
          f"{args.samples} samples at temperature {args.temperature}", flush=True)

    out_file = Path(args.out) / "structured_output.json"
    out_file.parent.mkdir(parents=True, exist_ok=True)
    header = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "task": args.task, "model": args.model,
              "samples": args.samples, "temperature": args.temperature, "max_tokens": args.max_tokens,
              "sites": args.sites, "modes": args.modes, "model_load_s": round(load_s, 1),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}, "
                         f"Python {platform.python_version()}",
              "notes": "first try only (no re-ask); latency counts answered requests only; samples interleaved "
                       "over modes after one unrecorded max_tokens=1 warm-up per site"}
    results: dict[str, dict] = {}
    for site in sites:
        print(f"{site.name}: prompt {len(site.prompt)} chars", flush=True)
        warm_up(model, site)
        samples: dict[str, list[dict]] = {mode: [] for mode in args.modes}
        for i in range(args.samples):
            for mode in args.modes:
                sample = ask_once(model, args.model, site, mode)
                samples[mode].append(sample)
                status = "ok" if sample["ok"] else ("refused" if sample["request_error"] else "unparsed")
                print(f"  {site.name}/{mode}#{i}: {status}, {sample['latency_s']:.1f} s, "
                      f"{sample['output_tokens']} tokens out", flush=True)
        results[site.name] = {"prompt_chars": len(site.prompt), "schema": site.schema, "modes": {
            mode: {"summary": cell_summary(samples[mode], site.validate is not None), "samples": samples[mode]}
            for mode in args.modes}}
        totals = mode_totals(results, args.modes)
        out_file.write_text(json.dumps({**header, "totals": totals, "sites": results}, indent=2) + "\n")
    totals = mode_totals(results, args.modes)
    print_table(results, totals, args.modes)
    print(f"\nsaved {out_file}")


if __name__ == "__main__":
    main()
