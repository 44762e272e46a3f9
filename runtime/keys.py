"""Names of a run's records, built and read back in one place.

A meta run ``M`` runs pipeline runs ``M-run0``, ``M-run1``, ... (``M-run1.b2`` when a replay branches off;
graph/threads.py). Inside a run, every model call and script execution has a key, a path that says where
it belongs: ``lane0/eval/lightgbm`` (lane 0's first script for an approach), ``lane1/t0/k2`` (lane 1,
refinement step 0, rewrite 2), ``ensemble/r0``, ``blend/test1``, ``floor/linear``, ``submit/s0``. A script's
debugging rounds add ``/d0``, ``/d1``, ...; the fixes asked for between them ``/fix0``, ...; the tries of one
model question ``#0``, ``#1``, ... The journal stores the meta run of each pipeline run in its own column,
so nothing needs to parse a run id to find a meta run's rows.
"""

from __future__ import annotations

import re

#: The lane of pipeline-level work (floor, search, ensemble, blend, submit), which belongs to no lane.
PIPELINE_LANE = -1
SUBMIT = "submit"
FLOOR = "floor"

_PIPELINE_RUN = re.compile(r"^(?P<meta>.+)-run(?P<index>\d+)(?:\.b\d+)?$")
_LANE = re.compile(r"^lane(\d+)(?:[/_#]|$)")  # the leakage checks name theirs after the folder "lane<k>_..."
_DEBUG_ROUND = re.compile(r"/d\d+$")
_ABLATION = re.compile(r"^lane(\d+)/t(\d+)/ablation$")
#: Phases of scripts named unlike the node that ran them.
_EXEC_PHASES = {"eval": "evaluate", "catalog": "evaluate"}


# --------------------------------------------------------------------------- run ids


def pipeline_run_id(meta_id: str, index: int) -> str:
    return f"{meta_id}-run{index}"


def run_index_of(run_id: str | None) -> int | None:
    """The index of a pipeline run from its id (``M-run2`` -> 2), None for other ids."""
    match = _PIPELINE_RUN.match(run_id or "")
    return int(match["index"]) if match else None


def meta_id_of(run_id: str) -> str | None:
    """The meta run of a pipeline run id, from its form alone. Only for journals written before the meta run
    had its own column (``runtime.journal``); everything else reads that column."""
    match = _PIPELINE_RUN.match(run_id)
    return match["meta"] if match else None


# --------------------------------------------------------------------------- keys of calls and scripts


def lane_key(lane: int, *parts: object) -> str:
    """``lane_key(0, "eval", "lightgbm")`` -> ``lane0/eval/lightgbm``."""
    return "/".join([f"lane{lane}", *map(str, parts)])


def step_key(lane: int, step: int, *parts: object) -> str:
    """A refinement step's key: ``step_key(1, 0, "k2")`` -> ``lane1/t0/k2``."""
    return lane_key(lane, f"t{step}", *parts)


def pipeline_key(*parts: object) -> str:
    """``pipeline_key("ensemble", "r0")`` -> ``ensemble/r0``."""
    return "/".join(map(str, parts))


def debug_round(key: str, round_: int) -> str:
    return f"{key}/d{round_}"


def fix_key(key: str, round_: int) -> str:
    return f"{key}/fix{round_}"


def try_key(call_key: str, attempt: int) -> str:
    return f"{call_key}#{attempt}"


def is_submission(exec_key: str) -> bool:
    """A script of the submit node (it always gets its full time limit)."""
    return exec_key.startswith(f"{SUBMIT}/")


def writes_submission(exec_key: str) -> bool:
    """A script that writes a submission: the floor's and the submit node's."""
    return exec_key.startswith((f"{FLOOR}/", f"{SUBMIT}/"))


def without_debug_round(exec_key: str) -> str:
    return _DEBUG_ROUND.sub("", exec_key)


def key_lane(key: str | None) -> int:
    """The lane of a call key or exec key (``lane1/t0/plan0#0`` -> 1); anything else is PIPELINE_LANE."""
    match = _LANE.match(key or "")
    return int(match.group(1)) if match else PIPELINE_LANE


def ablation_step(key: str) -> tuple[int, int] | None:
    """(lane, step) of an ablation study's key (``lane0/t1/ablation``), else None."""
    match = _ABLATION.match(key)
    return (int(match.group(1)), int(match.group(2))) if match else None


def exec_phase(exec_key: str) -> str:
    """The phase a script belongs to, named after the node whose model calls belong to the same work:
    ``lane0/eval/lightgbm/d1`` -> evaluate, ``lane1/merge0/d0`` -> merge, ``lane0/t1/ablation/d0`` -> ablate,
    ``lane0/t1/k0/d0`` -> refine, ``ensemble/r0/d0`` -> ensemble, ``submit/s0/flag/d0`` -> submit."""
    parts = re.sub(r"^lane\d+/", "", exec_key).split("/")
    head = re.sub(r"\d+$", "", parts[0]) or parts[0]
    if head == "t":
        return "ablate" if parts[1:2] == ["ablation"] else "refine"
    return _EXEC_PHASES.get(head, head)
