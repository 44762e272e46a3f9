"""Blend: a greedy ensemble over every scored solution's saved predictions, with no model call.

Members are the floor's catalog solutions, the lanes' final solutions and the model's ensemble rounds:
everything scored from its saved validation predictions on the same validation rows. The weights are
chosen on one half of those rows and accepted only if the other half confirms them
(`runtime.ensemble_selection`). The chosen members' test predictions come from their submissions: the
floor's exist already, a lane solution with a SUBMIT flag gets one by setting it (a script run, no model).
A member without test predictions is dropped and the selection redone. The blend competes with everything
else on the submission board.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from langgraph.runtime import Runtime

from graph.context import Context, run_context
from graph.state import BlendResult, PipelineState, Solution
from nodes.common import distinct, emit, ranked, task_of
from nodes.debug import attempt_dir, execute
from nodes.ensemble import final_candidates
from nodes.evaluate import floor_solutions
from nodes.llm import run_started_at
from nodes.submit import FLAG_OFF, FLAG_ON, checked_submission
from runtime import board, keys
from runtime.ensemble_selection import KINDS as BLENDABLE, Selection, blend as blend_arrays, select_ensemble
from runtime.files import atomic_write_text
from runtime.predictions import ROW, VAL_FILE, PredictionError, Predictions, read_predictions
from runtime.task import Task, read_csv, validate_submission


def members_of(state: Mapping[str, Any], limit: int) -> list[Solution]:
    """Scored solutions with distinct code, best first: the floor's, the lanes' and the ensemble rounds'."""
    task = task_of(state)
    return distinct(ranked([*floor_solutions(state), *final_candidates(state)], task.lower_is_better))[:limit]


def aligned_predictions(task: Task, input_dir: str,
                        members: list[Solution]) -> tuple[list[Solution], list[Predictions]]:
    """Members with saved predictions, each cut to one common set of validation rows, sorted by row.

    The common rows are the row set (one of the members') that most members cover, the best member's
    first among equals: a script validated on other rows (another split, out-of-fold predictions of all
    rows) joins on the rows it shares with the rest, or not at all.
    """
    found = []
    for member in members:
        try:
            found.append((member, read_predictions(task, input_dir, member["path"])))
        except PredictionError:
            continue
    row_sets = [np.unique(p.rows) for _, p in found]
    covering = [[m for m, rows in enumerate(row_sets) if np.isin(ref, rows).all()] for ref in row_sets]
    if not covering:
        return [], []
    best = max(range(len(row_sets)), key=lambda r: (len(covering[r]), len(row_sets[r]), -r))
    reference, kept, preds = row_sets[best], [], []
    for index in covering[best]:
        member, predictions = found[index]
        order = np.argsort(predictions.rows, kind="stable")
        keep = order[np.isin(predictions.rows[order], reference)]
        kept.append(member)
        preds.append(predictions.subset(keep))
    return kept, preds


def test_submission(ctx: Context, state: Mapping[str, Any], member: Solution, index: int) -> Path | None:
    """A valid submission made by the member's own model: the one beside it, or one from setting its flag."""
    task = task_of(state)
    beside = Path(member["path"]) / board.SUBMISSION
    if beside.is_file() and not checked_submission(task, beside):
        return beside
    if FLAG_OFF not in member["code"]:
        return None
    result = execute(ctx, {**state, "lane": keys.PIPELINE_LANE}, code=member["code"].replace(FLAG_OFF, FLAG_ON, 1),
                     exec_key=keys.pipeline_key("blend", f"test{index}"))
    made = Path(result.attempt_dir) / board.SUBMISSION
    return made if result.succeeded and not checked_submission(task, made) else None


def test_predictions(task: Task, csv: Path, ids: pd.Series | None) -> tuple[pd.Series, np.ndarray]:
    """A submission's prediction columns in the order of `ids` (its own order when None)."""
    frame = read_csv(str(csv))
    if ids is not None:
        frame = frame.set_index(frame[task.id_column].astype(str)).loc[ids.astype(str)].reset_index(drop=True)
    columns = list(task.target_columns)
    values = frame[columns].to_numpy(dtype=float) if len(columns) > 1 else frame[columns[0]].to_numpy()
    return frame[task.id_column], values


def select(task: Task, preds: list[Predictions]) -> Selection:
    labels = list(task.target_columns) if preds[0].values.ndim == 2 else None
    return select_ensemble([p.values for p in preds], preds[0].truth, task.metric, task.prediction, labels=labels)


def write_blend(folder: Path, task: Task, ids: pd.Series, test: np.ndarray, rows: np.ndarray,
                val: np.ndarray) -> Path:
    """The blend's submission and validation predictions, in the layout every script uses."""
    columns = list(task.target_columns)

    def frame(key: str, keys, values) -> str:
        out = pd.DataFrame({key: keys})
        out[columns] = np.asarray(values).reshape(len(out), -1)
        return out.to_csv(index=False)

    atomic_write_text(folder / VAL_FILE, frame(ROW, rows, val))
    return atomic_write_text(folder / board.SUBMISSION, frame(task.id_column, ids, test))


def blend(state: PipelineState, runtime: Runtime[Context]) -> dict:
    ctx = run_context(state, runtime)
    task = task_of(state)
    if task.prediction not in BLENDABLE:
        reason = f"no blend of {task.prediction} predictions"
        emit(node="blend", event="skipped", reason=reason)
        return {"blend": {"accepted": False, "reason": reason, "members": []}}
    members, preds = aligned_predictions(task, state["input_dir"], members_of(state, ctx.blend_members))
    tests: dict[int, Path | None] = {}
    while len(members) >= 2:
        selection = select(task, preds)
        if not selection.accepted or len(selection.weights) < 2:
            break
        missing = [i for i in selection.weights if tests.setdefault(
            i, test_submission(ctx, state, members[i], len(tests))) is None]
        if missing:  # no test predictions for these: select again without them
            keep = [i for i in range(len(members)) if i not in missing]
            members, preds = [members[i] for i in keep], [preds[i] for i in keep]
            tests = {keep.index(i): path for i, path in tests.items() if i in keep}
            continue
        return blended(ctx, state, task, members, preds, selection,
                       {i: path for i, path in tests.items() if path is not None})  # (the selected all have one)
    reason = selection.reason if len(members) >= 2 else f"{len(members)} member(s) with saved predictions"
    emit(node="blend", event="skipped", reason=reason)
    return {"blend": {"accepted": False, "reason": reason, "members": [m["origin"] for m in members]}}


def blended(ctx: Context, state: Mapping[str, Any], task: Task, members: list[Solution], preds: list[Predictions],
            selection: Selection, tests: dict[int, Path]) -> dict:
    order = list(selection.weights)
    ids, first = test_predictions(task, tests[order[0]], None)
    test = blend_arrays([first, *(test_predictions(task, tests[i], ids)[1] for i in order[1:])],
                        [selection.weights[i] for i in order], task.prediction)
    val = blend_arrays([preds[i].values for i in order], [selection.weights[i] for i in order], task.prediction)
    folder = attempt_dir(state, keys.pipeline_key("blend", "final"))
    csv = write_blend(folder, task, ids, test, preds[0].rows, val)
    problems = validate_submission(task, csv)
    weights = {members[i]["origin"]: count for i, count in selection.weights.items()}
    record: BlendResult = {"accepted": not problems, "reason": "; ".join(problems) or selection.reason,
                           "weights": weights, "score": selection.score, "check_score": selection.check_score,
                           "best_single_check_score": selection.best_single_check_score, "path": str(folder)}
    if not problems and board.offer(state["workspace"], csv, score=selection.score, source="blend",
                                    lower_is_better=task.lower_is_better,
                                    started_at=run_started_at(ctx, state["run_id"])):
        emit(node="blend", event="submitted", score=selection.score, weights=weights)
    emit(node="blend", event="blend", score=selection.score, weights=weights, accepted=record["accepted"])
    return {"blend": record}
