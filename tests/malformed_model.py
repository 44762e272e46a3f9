"""A scripted model that answers badly on purpose: ``scripted:tests.malformed_model:respond``.

`ANSWERS` maps a job (the prompt's "## Job: " line without that prefix) to the answers of its tries: answer i
is given on try i (the first ask is try 0, each re-ask one more), the last one on every later try. An
answer is a string or a function of the prompt. Jobs not listed get the well-behaved answers of
`tests.scripted_model`. Tests set `ANSWERS` with monkeypatch.

The helpers build the malformed answers of the corpus. Broken scripts carry a `# malformed:` marker so
that `fix` (the debugger's answer) can repair exactly what was broken, one fault per round.
"""

from __future__ import annotations

import json
from typing import Callable, Union

from langchain_core.messages import BaseMessage

from prompts.task import METRIC_QUESTION
from tests import scripted_model

Answer = Union[str, Callable[[str], str]]
ANSWERS: dict[str, list[Answer]] = {}
METRIC_JOB = METRIC_QUESTION.splitlines()[0]

EMPTY = ""
PROSE = ("I would start with a strong gradient boosting baseline, engineer a few features from the raw "
         "columns and tune the learning rate. That should give a good score.")
TRUNCATED_JSON = '{"approaches": ["linear", "lightgbm"'

SCORE_LINE = 'print(f"Final Validation Performance: {val_score:.6f}")'
NAN_LINE = 'val_score = float("nan")  # malformed: NaN score\n'
NO_SCORE_LINE = 'print(f"validation: {val_score:.6f}")  # malformed: no score line'
SAVE_LINE = 'val_predictions.to_csv("val_predictions.csv", index=False)'
NO_SAVE_LINE = "pass  # malformed: the validation predictions are not saved"
IDS = "submission = pd.DataFrame({ID: test[ID]})"
WRONG_IDS = "submission = pd.DataFrame({ID: test[ID] + 100000})  # malformed: wrong ids"
WRITE = 'submission.to_csv("submission.csv", index=False)'
WRONG_COLUMNS = 'submission.rename(columns={TARGET_COLUMNS[0]: "prediction"}).to_csv("submission.csv", index=False)  # malformed: wrong columns'


def respond(messages: list[BaseMessage]) -> str:
    prompt, tries = scripted_model.current_job(messages)
    job = scripted_model.job_of(prompt)
    answers = ANSWERS.get(job)
    if not answers:
        return scripted_model.respond(messages)
    answer = answers[min(tries, len(answers) - 1)]
    return answer(prompt) if callable(answer) else answer


# --------------------------------------------------------------------------- building answers


def fenced(code: str) -> str:
    return scripted_model.fenced(code)


def shown_code(prompt: str) -> str:
    """The first script shown in a prompt (the example, the solution, or the failing script)."""
    return scripted_model.first_script(prompt)


def changed(code: str, old: str, new: str) -> str:
    """`code` with `old` replaced once; fails loudly when the template no longer has `old`."""
    assert old in code, f"the script has no {old!r}: update tests/malformed_model.py"
    return code.replace(old, new, 1)


def without_submit_flag(code: str) -> str:
    """No catalog SUBMIT flag: the submit node must then ask the coder for the submission script."""
    return changed(code, "SUBMIT = False", "WRITE_SUBMISSION = False").replace("if SUBMIT:", "if WRITE_SUBMISSION:")


def nan_score(code: str) -> str:
    return changed(code, SCORE_LINE, NAN_LINE + SCORE_LINE)


def no_score_line(code: str) -> str:
    return changed(code, SCORE_LINE, NO_SCORE_LINE)


def no_predictions(code: str) -> str:
    return changed(code, SAVE_LINE, NO_SAVE_LINE)


def two_blocks(code: str) -> str:
    """A snippet first, then the whole script: the whole script is the answer."""
    return (f"First load the data:\n```python\nimport pandas as pd\ntrain = pd.read_csv('./input/train.csv')\n```\n"
            f"Then the complete script:\n```python\n{code}```\n")


def json_answer(**fields) -> str:
    return json.dumps(fields)


def submission_script(prompt: str) -> str:
    """The solution turned into a submission script that writes shifted (wrong) ids."""
    code = changed(shown_code(prompt), "WRITE_SUBMISSION = False", "WRITE_SUBMISSION = True")
    return fenced(changed(code, IDS, WRONG_IDS))


def fix(prompt: str) -> str:
    """The debugger repairs one fault per round, in this order: a NaN score, unsaved predictions, a missing
    score line; wrong ids -> wrong columns -> fixed."""
    code = shown_code(prompt)
    if NAN_LINE in code:
        return fenced(code.replace(NAN_LINE, ""))
    if NO_SAVE_LINE in code:
        return fenced(changed(code, NO_SAVE_LINE, SAVE_LINE))
    if NO_SCORE_LINE in code:
        return fenced(changed(code, NO_SCORE_LINE, SCORE_LINE))
    if WRONG_IDS in code:
        return fenced(changed(changed(code, WRONG_IDS, IDS), WRITE, WRONG_COLUMNS))
    if WRONG_COLUMNS in code:
        return fenced(changed(code, WRONG_COLUMNS, WRITE))
    return fenced(code)  # nothing it knows how to fix: the same script again
