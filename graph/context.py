"""Run configuration: the `Context` dataclass is the graphs' `context_schema`.

Every count and limit of the algorithm lives here, with a description (Studio renders the form from it)
and bounds that `validate_context` enforces. The defaults are sized so that the README example finishes
in about half an hour on a 2-core machine with the embedded 1.5B model.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from runtime.budget import UNBUDGETED_ROLES, parse_prices, unpriced_models
from runtime.journal import is_database_url
from runtime.models import ROLES, HfQuantization, StructuredOutput, check_model_spec, parse_model_spec
from runtime.rate_limit import parse_rate_limits
from runtime.sandbox import Isolation, Limits
from runtime.web_search import check_search_spec, parse_search_spec

CheckMode = Literal["off", "static", "model"]
ReviewPoint = Literal["off", "submission", "enhancer", "all"]


DEFAULT_CHECKPOINTS = "checkpoints/checkpoints.db"
DEFAULT_JOURNAL = "checkpoints/journal.db"
CHECKPOINTS_ENV = "MLESTAR_CHECKPOINTS"
JOURNAL_ENV = "MLESTAR_JOURNAL"


def default_journal() -> str:
    """$MLESTAR_JOURNAL, else the PostgreSQL database of $MLESTAR_CHECKPOINTS (one database holds a run's
    whole state), else checkpoints/journal.db. Read when this module loads: the default of `journal_path`
    for every way in (CLI, Python, the server's runs)."""
    checkpoints = os.environ.get(CHECKPOINTS_ENV) or ""
    return os.environ.get(JOURNAL_ENV) or (checkpoints if is_database_url(checkpoints) else DEFAULT_JOURNAL)


def _f(default: Any, description: str, low: float | None = None, high: float | None = None):
    """A setting with its description and bounds; pydantic (hence the server's form) reads them as ge/le."""
    return field(default=default, metadata={"description": description, "ge": low, "le": high})


@dataclass(kw_only=True)
class Context:
    """Settings of one pipeline run."""

    coder_model: str = _f("local", "Model that writes and debugs scripts: 'local', 'local:/path/model.gguf', "
                          "'openai:MODEL', 'openai:MODEL@http://host:port/v1', 'hf:owner/name' or "
                          "'hf:/path/to/folder', or 'scripted:module:function'.")
    planner_model: str = _f("local", "Model that picks approaches, code blocks and refinement/ensemble plans.")
    reviewer_model: str = _f("local", "Model of the model-based script checks (leakage_check or usage_check "
                             "set to 'model').")
    enhancer_model: str = _f("local", "Model of the meta-learning Enhancer (used by the outer loop).")
    num_lanes: int = _f(2, "L: independent solution lanes refined in parallel, then ensembled.", 1, 8)
    num_candidates: int = _f(1, "M: model approaches retrieved and evaluated per lane (more than 1 enables merging).", 1, 8)
    refine_steps: int = _f(1, "T: outer refinement steps (ablation, pick a code block) per lane.", 0, 10)
    inner_steps: int = _f(2, "K: rewrites of the chosen code block per refinement step.", 1, 10)
    ensemble_rounds: int = _f(1, "R: ensemble plans tried over the lanes' final solutions.", 0, 10)
    debug_rounds: int = _f(2, "Fixes the debugger may try for one failing script.", 0, 6)
    max_reasks: int = _f(2, "Re-asks when a model answer cannot be parsed.", 0, 5)
    script_timeout_s: int = _f(300, "Wall-clock limit of one generated script, in seconds.", 5, 86400)
    script_memory_mb: int = _f(4096, "Memory limit of one generated script and its children, in MiB.", 256, 262144)
    isolation: Isolation = _f("auto", "How generated scripts are isolated: 'auto' or 'bwrap' (bubblewrap; "
                              "without a working bubblewrap no script runs and the error says how to install it) "
                              "or 'subprocess' (chosen knowingly: time/memory/process limits only, scripts share "
                              "your files, network and secrets).")
    script_max_processes: int = _f(Limits.max_processes, "Processes one generated script may run at once (fork "
                                   "bombs are killed).", 4, 4096)
    script_max_file_mb: int = _f(Limits.max_file_mb, "Largest single file a generated script may write, in MiB.",
                                 1, 1_000_000)
    script_max_disk_mb: int = _f(Limits.max_disk_mb, "Disk quota of one generated script: the files in its folder, together, in "
                                 "MiB (the script is killed past it).", 16, 1_000_000)
    static_checks: bool = _f(True, "Refuse, before running, generated scripts that use the network, shells or "
                             "subprocesses, install packages, read hidden answers or touch files outside their "
                             "folder; the refusal reason goes back to the model like an error.")
    leakage_check: CheckMode = _f("static", "Data-leakage check of every scored validation script: 'off', "
                                  "'static' (syntax-tree check: something fitted on validation rows; no model "
                                  "call) or 'model' (static, then the reviewer model). A finding goes back to the "
                                  "coder for a fix.")
    usage_check: CheckMode = _f("static", "Data-usage check of the first scripts: 'off', 'static' (provided "
                                "files never read) or 'model' (static, then the reviewer model, which also looks "
                                "at columns).")
    max_train_rows: int = _f(30000, "Scripts are told to subsample training data to at most this many rows "
                             "while exploring.", 100, 10_000_000)
    rate_limits: str = _f("", "Request limits per provider or model spec, KEY=RPM/RPD separated by commas, e.g. "
                          "'openai=20/50' (20 requests a minute, 50 a day; 0 = no limit). Requests wait for the "
                          "minute limit; a spent daily quota pauses the run, resumable later.")
    model_retries: int = _f(6, "Retries of a hosted model request refused with 429/5xx, timed out or dropped, "
                            "with exponential backoff (Retry-After honoured).", 0, 20)
    structured_output: StructuredOutput = _f("schema", "How JSON answers are constrained where the provider "
                                             "supports it: 'schema' (decoding follows the answer's JSON schema), "
                                             "'json' (any JSON object) or 'off' (free text); the text parser "
                                             "checks the answer either way.")
    hf_quantization: HfQuantization = _f("4bit", "How 'hf:' models are loaded on a CUDA GPU: '4bit' (NF4, "
                                         "bitsandbytes), '8bit' or 'none'. Without a GPU they run in full "
                                         "precision on the CPU.")
    model_timeout_s: int = _f(600, "Seconds one answer of an OpenAI-compatible model (local or hosted) may take "
                              "before the request counts as failed; raise it for a slow CPU.", 10, 86400)
    temperature: float = _f(0.2, "Sampling temperature of every model call.", 0.0, 2.0)
    max_tokens: int = _f(2048, "Upper bound on tokens in one model answer.", 64, 32768)
    max_model_calls: int = _f(0, "Budget of one pipeline run: new model calls (0 = no limit). Once reached, the "
                              "run skips to submitting its best solution.", 0, 1_000_000)
    max_total_tokens: int = _f(0, "Budget of one pipeline run: tokens in + out of its new model calls "
                               "(0 = no limit).", 0, 10_000_000_000)
    max_cost_usd: float = _f(0.0, "Budget of one pipeline run: USD spent on model calls, priced by model_prices "
                             "(0 = no limit).", 0.0, 1_000_000.0)
    run_time_budget_s: int = _f(0, "Budget of one pipeline run: wall-clock seconds since it started, pauses "
                                "included (0 = no limit).", 0, 10_000_000)
    model_prices: str = _f("", "USD per 1M input/output tokens, SPEC=IN/OUT separated by commas, e.g. "
                           "'openai:gpt-4o-mini=0.15/0.60'; layered over built-in OpenAI prices. Local, hf and "
                           "scripted models cost 0 unless priced here.")
    full_data_submission: bool = _f(True, "Train the final model on all training rows before predicting test.")
    floor_approaches: int = _f(6, "Catalog approaches that run as they are, before the first model call, to put "
                               "a validated submission on the board within the first minute (0 = no floor).",
                               0, 20)
    blend_members: int = _f(12, "Scored solutions (best first) the model-free greedy ensemble may combine from "
                            "their saved validation predictions (0 = no model-free ensemble).", 0, 100)
    catalog_fallback: bool = _f(True, "When no generated script works, fall back to the catalog's tested example "
                                "code so that the run still ends with a valid submission.")
    web_search: str = _f("", "Web search for more model approaches, on top of the catalog: '' (off), 'tavily' "
                         "(pip install langchain-tavily; TAVILY_API_KEY), 'duckduckgo' (pip install "
                         "langchain-community ddgs) or 'module:attr' naming a LangChain tool (or a function "
                         "returning one). A failed search is logged and the run goes on with the catalog.")
    web_search_results: int = _f(5, "Web search results shown to the planner (when web_search is set).", 1, 10)
    web_search_approaches: int = _f(2, "Approaches the planner may propose from the web results (each with "
                                    "example code), ranked with the catalog's.", 1, 5)
    num_runs: int = _f(1, "N: pipeline runs of the meta-learning loop (graph mle_star); each run after the "
                       "first is steered by the Enhancer.", 1, 20)
    computational_budget_s: int = _f(0, "Wall-clock budget of the whole meta loop in seconds: no new run starts "
                                     "once it is spent (0 = no limit).", 0, 10_000_000)
    early_stop_patience: int = _f(0, "Stop the meta loop after this many runs in a row without a better score "
                                  "(0 = never stop early).", 0, 20)
    allow_config_override: bool = _f(True, "Let the Enhancer change settings of the next run (its goals are "
                                     "applied either way).")
    warm_start: bool = _f(True, "Lane 0 of run k+1 also evaluates the champion run's best solution as a "
                          "candidate, so refinement can continue from it.")
    human_review: ReviewPoint = _f("off", "Pause for a person's decision (approve, edit or reject): 'submission' "
                                   "(before the submission file is written), 'enhancer' (before the Enhancer's "
                                   "settings and goals for the next run apply), 'all', or 'off'. Answer with "
                                   "`mlestar review ID` or the API.")
    workspace_root: str = _f("workspace", "Folder for run artifacts: <workspace_root>/<task>/<run_id>/.")
    journal_path: str = _f(default_journal(), "Journal of model calls, script runs and runs: a SQLite file, or a "
                           "postgresql:// URL shared by several machines (default: $MLESTAR_JOURNAL, else the "
                           "database of $MLESTAR_CHECKPOINTS when that is a URL, else checkpoints/journal.db).")

    def role_model(self, role: str) -> str:
        return getattr(self, f"{role}_model")


class ConfigError(ValueError):
    """A configuration value is unknown, of the wrong type or out of bounds."""


def field_bounds() -> dict[str, tuple[float | None, float | None]]:
    return {f.name: (f.metadata.get("ge"), f.metadata.get("le")) for f in fields(Context)}


#: The settings by what they are about, in the order the docs and `--help` show them.
SETTING_GROUPS: dict[str, tuple[str, ...]] = {
    "Models": ("coder_model", "planner_model", "reviewer_model", "enhancer_model", "temperature", "max_tokens",
               "structured_output", "model_timeout_s", "model_retries", "rate_limits", "hf_quantization"),
    "Search shape": ("num_lanes", "num_candidates", "refine_steps", "inner_steps", "ensemble_rounds",
                     "debug_rounds", "max_reasks", "floor_approaches", "blend_members", "catalog_fallback",
                     "full_data_submission", "max_train_rows"),
    "Web search": ("web_search", "web_search_results", "web_search_approaches"),
    "Scripts and their sandbox": ("isolation", "script_timeout_s", "script_memory_mb", "script_max_processes",
                                  "script_max_file_mb", "script_max_disk_mb", "static_checks", "leakage_check",
                                  "usage_check"),
    "Budgets": ("run_time_budget_s", "max_model_calls", "max_total_tokens", "max_cost_usd", "model_prices"),
    "Meta-learning loop": ("num_runs", "computational_budget_s", "early_stop_patience", "allow_config_override",
                           "warm_start", "human_review"),
    "Files": ("workspace_root", "journal_path"),
}


def choice_fields() -> dict[str, tuple[str, ...]]:
    """The settings that take one of a few values (Literal types; Studio shows them as drop-downs)."""
    return {name: get_args(hint) for name, hint in get_type_hints(Context).items() if get_origin(hint) is Literal}


def coerce_value(name: str, raw: Any) -> Any:
    """Turn a user-supplied value (often a string from --set) into the field's type, with a clear error."""
    known = {f.name: f for f in fields(Context)}
    if name not in known:
        raise ConfigError(f"Unknown setting {name!r}. Known settings: {', '.join(sorted(known))}.")
    default = known[name].default
    try:
        if isinstance(default, bool):
            if isinstance(raw, str):
                if raw.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                    raise ValueError(raw)
                return raw.lower() in {"true", "1", "yes"}
            return bool(raw)
        if isinstance(default, int):
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError(raw)
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"Setting {name}={raw!r} is not a valid {type(default).__name__}; "
                          f"example: {name}={default}.") from None


def check_prices(ctx: Context) -> None:
    """model_prices must parse, and a money budget needs a price for every budgeted role's model."""
    try:
        prices = parse_prices(ctx.model_prices)
    except ValueError as exc:
        raise ConfigError(f"Setting model_prices: {exc}.") from None
    if ctx.max_cost_usd:
        unknown = unpriced_models([ctx.role_model(r) for r in ROLES if r not in UNBUDGETED_ROLES], prices)
        if unknown:
            raise ConfigError(f"Setting max_cost_usd={ctx.max_cost_usd:g} needs prices, but none is known for "
                              f"{', '.join(unknown)}; add them, e.g. --set model_prices='{unknown[0]}=0.15/0.60' "
                              f"(USD per 1M input/output tokens).")


def validate_context(ctx: Context) -> Context:
    for role in ROLES:
        try:
            parse_model_spec(ctx.role_model(role))
        except ValueError as exc:
            raise ConfigError(f"Setting {role}_model: {exc}") from None
    for name, choices in choice_fields().items():
        if getattr(ctx, name) not in choices:
            raise ConfigError(f"Setting {name}={getattr(ctx, name)!r} is unknown; use one of {', '.join(choices)}.")
    try:
        parse_rate_limits(ctx.rate_limits)
    except ValueError as exc:
        raise ConfigError(f"Setting rate_limits: {exc}.") from None
    try:
        parse_search_spec(ctx.web_search)
    except ValueError as exc:
        raise ConfigError(f"Setting web_search: {exc}.") from None
    for name, (low, high) in field_bounds().items():
        value = getattr(ctx, name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"Setting {name}={value} is not a finite number; pick a value in [{low}, {high}].")
        if low is not None and value < low or high is not None and value > high:
            raise ConfigError(f"Setting {name}={value} is out of bounds [{low}, {high}]; "
                              f"pick a value in that range.")
    check_prices(ctx)
    return ctx


def build_context(base: dict | None = None, overrides: dict | None = None) -> Context:
    """Layers: defaults, then `base` (a config file), then `overrides` (flags)."""
    values: dict[str, Any] = {}
    for layer in (base or {}, overrides or {}):
        for name, raw in layer.items():
            values[name] = coerce_value(name, raw)
    return validate_context(Context(**values))


def load_config_file(path: str | Path) -> dict:
    """A TOML or JSON file of settings."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist; pass an existing .toml or .json file.")
    if path.suffix not in (".toml", ".json"):
        raise ConfigError(f"Config file {path} must end in .toml or .json (it is read by its suffix).")
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"Config file {path} is not valid {path.suffix[1:].upper()}: {exc}.") from None
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path} holds a {type(data).__name__}; write an object of settings, "
                          f'e.g. {{"num_lanes": 1}}.')
    return data


def _unusable_folder(path: Path) -> str | None:
    """Why no folder can be made at `path` (None if it can); tries in the nearest existing ancestor, leaves nothing."""
    path = path.expanduser().absolute()
    if path.exists():
        if not path.is_dir():
            return f"{path} is a file, not a folder"
        existing = path
    else:
        existing = path.parent
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            return f"{existing} is a file, not a folder"
    try:
        tempfile.TemporaryDirectory(dir=existing, prefix=".mlestar-check-").cleanup()
    except OSError as exc:
        return f"{existing} is not writable ({exc.strerror or exc})"
    return None


def check_writable(name: str, path: str | Path, *, is_file: bool = False) -> None:
    """ConfigError unless `path` (a folder, or a file when `is_file`) can be written; creates nothing."""
    path = Path(path)
    if is_file and path.is_dir():
        problem: str | None = f"{path} is a folder, not a file"
    else:
        problem = _unusable_folder(path.parent if is_file else path)
    if problem:
        raise ConfigError(f"{name}={path} cannot be used: {problem}. Fix: point {name} at a writable location.")


def preflight(ctx: Context) -> Context:
    """What only the machine can say, checked before a run writes anything: the models' specs can be
    built (module, file or key present) and the workspace and journal can be written."""
    for role in ROLES:
        try:
            check_model_spec(ctx.role_model(role))
        except ValueError as exc:
            raise ConfigError(f"Setting {role}_model: {exc}") from None
    try:
        check_search_spec(ctx.web_search)
    except ValueError as exc:
        raise ConfigError(f"Setting web_search: {exc}.") from None
    check_writable("workspace_root", ctx.workspace_root)
    if not is_database_url(ctx.journal_path):
        check_writable("journal_path", ctx.journal_path, is_file=True)
    return ctx


def run_context(state: Mapping[str, Any], runtime) -> Context:
    """The settings of this run: the graph's context with the run's own overrides (set by the meta loop)."""
    overrides = state.get("overrides") or {}
    return replace(runtime.context, **overrides) if overrides else runtime.context


# What the Enhancer may change between runs, with tighter bounds than a user may set: a model answer
# must not be able to ask for 50 lanes or zero timeouts.
ENHANCER_KNOBS: dict[str, tuple[float, float] | None] = {
    "num_lanes": (1, 4), "num_candidates": (1, 4), "refine_steps": (0, 4), "inner_steps": (1, 4),
    "ensemble_rounds": (0, 3), "debug_rounds": (0, 4), "script_timeout_s": (30, 3600),
    "max_train_rows": (1000, 1_000_000), "temperature": (0.0, 1.0), "full_data_submission": None,
}
