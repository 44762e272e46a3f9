"""What a caller hands a graph, checked where it enters. The CLI and the Python client check before they
start anything; the graphs' first nodes check again, because the server and `graph.invoke` pass the input
and the context through unchecked. The messages are the CLI's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any

from graph.checkpoint import thread_id_for
from graph.context import ConfigError, Context, build_context
from runtime.files import SAFE_NAME


def check_run_id(run_id: str) -> None:
    """A run id names folders: letters, digits, '_', '-' and '.', not starting with '.'."""
    if not isinstance(run_id, str) or not SAFE_NAME.fullmatch(run_id):
        raise ConfigError(f"Run id {run_id!r} is not a valid run name: use letters, digits, '_', '-' and '.' "
                          f"(no '/', not starting with '.'), e.g. titanic-1.")


def check_context(ctx: Context) -> Context:
    """Every setting of the type, choices and bounds the CLI accepts (ConfigError naming the setting)."""
    checked = build_context(asdict(ctx))
    for setting in fields(Context):
        given = getattr(ctx, setting.name)
        if type(given) is not type(getattr(checked, setting.name)) and not (
                isinstance(given, int) and isinstance(setting.default, float) and not isinstance(given, bool)):
            raise ConfigError(f"Setting {setting.name}={given!r} is not a valid {type(setting.default).__name__}; "
                              f"example: {setting.name}={setting.default}.")
    return ctx


def check_input(state: Mapping[str, Any], graph: str, *, run_id_key: str, run_id_required: bool) -> None:
    """The graph's input: `task_dir` a path string; the run's name (meta_id / run_id) a valid run id."""
    task_dir = state.get("task_dir")
    if not isinstance(task_dir, str) or not task_dir.strip():
        raise ConfigError(f"The {graph} graph's input needs task_dir, the path of a task folder as a string, "
                          f'e.g. {{"task_dir": "examples/titanic"}}; got {task_dir!r}.')
    if run_id_required and run_id_key not in state:
        raise ConfigError(f"The {graph} graph's input needs {run_id_key}, the run's name, e.g. "
                          f'{{"task_dir": "examples/titanic", "{run_id_key}": "titanic-1"}}.')
    if run_id_key in state:
        check_run_id(state[run_id_key])


def check_thread(meta_id: str, thread_id: str) -> None:
    """One run, one name, one thread: a named run lives in thread_id_for(name), whichever door it came in by
    (or in a thread named like it, as `graph.invoke` callers may choose)."""
    if thread_id not in (thread_id_for(meta_id), meta_id):
        raise ConfigError(f"meta_id {meta_id!r} names the run of thread {thread_id_for(meta_id)}, but this is "
                          f"thread {thread_id}: create the thread with thread_id=thread_id_for({meta_id!r}) "
                          f"(graph.checkpoint), or leave meta_id out and the run is named after its thread.")
