"""Run configuration: the `Context` dataclass is the graphs' `context_schema`.

Every count and limit of the algorithm lives here, with a description (Studio renders the form from it)
and bounds that `validate_context` enforces. The defaults are sized so that the README example finishes
in about half an hour on a 2-core machine with the embedded 1.5B model.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from runtime.models import ROLES, parse_model_spec


def _f(default: Any, description: str, low: float | None = None, high: float | None = None):
    return field(default=default, metadata={"description": description, "min": low, "max": high})


@dataclass(kw_only=True)
class Context:
    """Settings of one pipeline run."""

    coder_model: str = _f("local", "Model that writes and debugs scripts: 'local', 'local:/path/model.gguf', "
                          "'openai:MODEL' or 'scripted:module:function'.")
    planner_model: str = _f("local", "Model that picks approaches, code blocks and refinement/ensemble plans.")
    reviewer_model: str = _f("local", "Model that summarises ablation results.")
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
    max_train_rows: int = _f(30000, "Scripts are told to subsample training data to at most this many rows "
                             "while exploring.", 100, 10_000_000)
    temperature: float = _f(0.2, "Sampling temperature of every model call.", 0.0, 2.0)
    max_tokens: int = _f(2048, "Upper bound on tokens in one model answer.", 64, 32768)
    full_data_submission: bool = _f(True, "Train the final model on all training rows before predicting test.")
    catalog_fallback: bool = _f(True, "When no generated script works, fall back to the catalog's tested example "
                                "code so that the run still ends with a valid submission.")
    num_runs: int = _f(1, "N: pipeline runs of the meta-learning loop (graph mle_star); each run after the "
                       "first is steered by the Enhancer.", 1, 20)
    computational_budget_s: int = _f(0, "Wall-clock budget of the whole meta loop in seconds: no new run starts "
                                     "once it is spent (0 = no limit).", 0, 10_000_000)
    early_stop_patience: int = _f(0, "Stop the meta loop after this many runs in a row without a better score "
                                  "(0 = never stop early).", 0, 20)
    allow_config_override: bool = _f(True, "Let the Enhancer change settings of the next run (its goals are "
                                     "applied either way).")
    warm_start: bool = _f(True, "Run k+1 also evaluates the champion run's best solution as a candidate, so "
                          "refinement can continue from it.")
    workspace_root: str = _f("workspace", "Folder for run artifacts: <workspace_root>/<task>/<run_id>/.")
    journal_path: str = _f("checkpoints/journal.db", "SQLite journal of model calls, script runs and runs.")

    def role_model(self, role: str) -> str:
        return getattr(self, f"{role}_model")


class ConfigError(ValueError):
    """A configuration value is unknown, of the wrong type or out of bounds."""


def field_bounds() -> dict[str, tuple[float | None, float | None]]:
    return {f.name: (f.metadata.get("min"), f.metadata.get("max")) for f in fields(Context)}


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


def validate_context(ctx: Context) -> Context:
    for role in ROLES:
        try:
            parse_model_spec(ctx.role_model(role))
        except ValueError as exc:
            raise ConfigError(f"Setting {role}_model: {exc}") from None
    for name, (low, high) in field_bounds().items():
        value = getattr(ctx, name)
        if low is not None and value < low or high is not None and value > high:
            raise ConfigError(f"Setting {name}={value} is out of bounds [{low}, {high}]; "
                              f"pick a value in that range.")
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
    text = path.read_text()
    try:
        return tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"Config file {path} is not valid {path.suffix[1:].upper()}: {exc}.") from None


def context_to_dict(ctx: Context) -> dict:
    return asdict(ctx)


def run_context(state: dict, runtime) -> Context:
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
