"""A scripted chat model for graph tests: deterministic answers that are real, working code.

It reads the job from the prompt ("## Job: ...") and answers the way a competent model would, reusing the
code shown in the prompt: the first script is the catalog example (with a deliberate bug on the first
try, so the debugger runs), a refinement rewrites the model's tree count, the submission script flips the
example's SUBMIT flag. Scripts therefore really run and really score.

Hooks for tests: marker files in $SCRIPTED_CRASH_DIR make a job raise once (a crash in the middle of a node),
in $SCRIPTED_DIE_DIR SIGKILL the process once (a worker dying).
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

from langchain_core.messages import BaseMessage

BUG = "import definitely_not_a_module  # scripted bug\n"
FENCE = re.compile(r"```(?:python)?\n(.*?)```", re.S)


# The Enhancer's answer: one more refinement step, and a goal for every phase (tests look for the texts).
ENHANCEMENT = {
    "strategic_summary": "Refinement helped; give it another step.",
    "config_overrides": {"refine_steps": 2},
    "strategic_goals": [
        {"target_agent_phase": "refinement", "focus": "GOAL-R: engineer interaction features", "priority": 1,
         "rationale": "the model is strong, the features are plain"},
        {"target_agent_phase": "ensemble", "focus": "GOAL-E: weight solutions by validation score",
         "priority": 2, "rationale": "scores differ"},
        {"target_agent_phase": "submission", "focus": "GOAL-S: train on all rows", "priority": 3,
         "rationale": "more data"},
    ],
}


JOB = re.compile(r"^## Job: (.+)$", re.M)


def job_of(prompt: str) -> str:
    """The job a prompt asks for: its "## Job: ..." line (after the task header, which is a stable prefix)."""
    match = JOB.search(prompt)
    return match.group(1).strip() if match else prompt.splitlines()[0].strip()


def code_blocks(text: str) -> list[str]:
    return FENCE.findall(text)


def fenced(code: str) -> str:
    return f"Here is the script.\n```python\n{code}```\n"


def maybe_crash(job: str) -> None:
    """Raise once per marker file: lets a test crash a node mid-run and resume it."""
    marker_dir = os.environ.get("SCRIPTED_CRASH_DIR")
    if not marker_dir:
        return
    marker = Path(marker_dir) / re.sub(r"\W+", "_", job)
    if marker.exists():
        marker.unlink()
        raise RuntimeError(f"scripted crash during {job!r}")


def maybe_die(job: str) -> None:
    """SIGKILL this process once per marker file: a worker (or node) dying mid-run, without a chance to clean up."""
    marker_dir = os.environ.get("SCRIPTED_DIE_DIR")
    if not marker_dir:
        return
    try:
        (Path(marker_dir) / re.sub(r"\W+", "_", job)).unlink()  # whoever removes it dies; the others go on
    except FileNotFoundError:
        return
    os.kill(os.getpid(), signal.SIGKILL)


def first_script(prompt: str) -> str:
    return code_blocks(prompt)[0]


def pick_line(code: str) -> str:
    """A block to refine: the line that sets the model's number of trees or the model itself."""
    for pattern in (r".*n_estimators.*", r".*model.*=.*", r".*=.*"):
        for line in code.splitlines():
            if re.fullmatch(pattern, line) and line.strip() and not line.lstrip().startswith("#"):
                return line
    return code.splitlines()[0]


def tweak(block: str, attempt: int) -> str:
    """Change the first integer literal in the block (e.g. the number of trees), a real edit."""
    factor = 2 if attempt % 2 == 0 else 3
    return re.sub(r"\b(\d{2,})\b", lambda m: str(int(m.group(1)) * factor // 2 + 1), block, count=1)


def current_job(messages: list[BaseMessage]) -> tuple[str, int]:
    """(prompt, tries) of the question being asked: the latest message with a job, and how many re-asks
    followed it. A job that follows an answer (a fix asked for after the script was written) is read with the
    script of that answer first, as the model reads the conversation."""
    human = [i for i, m in enumerate(messages) if m.type == "human"]
    jobs = [i for i in human if JOB.search(messages[i].content)]
    start = jobs[-1] if jobs else human[0]
    prompt = messages[start].content
    if start > 0 and messages[start - 1].type == "ai":
        prompt = f"{messages[start - 1].content}\n\n{prompt}"
    return prompt, sum(1 for i in human if i > start)


def edit(search: str, replace: str) -> str:
    return f"```\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n```\n"


def ablation_variants(code: str) -> str:
    """Two variants as edits: the model's size changed (when it has a number to change), and a comment added
    (a variant that changes nothing the model sees)."""
    numbered = [line for line in code.splitlines() if re.search(r"\b\d{2,}\b", line) and "#" not in line]
    line, first = (numbered or [pick_line(code)])[0], code.splitlines()[0]
    return (f"### Variant: other model size\n{edit(line, tweak(line, 1))}"
            f"### Variant: as it is\n{edit(first, first + '  # the same script')}")


def respond(messages: list[BaseMessage]) -> str:
    prompt, tries = current_job(messages)
    job = job_of(prompt)
    maybe_crash(job)
    maybe_die(job)
    if job == "pick model approaches":
        keys = re.findall(r"^- (\w+):", prompt, re.M)
        return json.dumps({"approaches": keys[:2]})
    if job == "write a solution script":
        code = first_script(prompt)
        return fenced(code if "lightgbm" not in code.lower() else BUG + code)
    if job == "fix a failing script":  # as the prompt asks: an edit of the failing lines (else a whole script)
        if BUG in first_script(prompt):
            return f"Remove the bad import.\n```\n<<<<<<< SEARCH\n{BUG}=======\n>>>>>>> REPLACE\n```\n"
        return fenced(first_script(prompt))
    if job in ("merge two solutions", "implement an ensemble"):
        return fenced(first_script(prompt))
    if job == "ablation study":
        return ablation_variants(first_script(prompt))
    if job == "choose a code block to improve":
        if tries == 0:
            return '{"code_block": "this text is not in the script", "plan": "x"}'  # exercises the re-ask
        code = first_script(prompt)
        return json.dumps({"code_block": pick_line(code), "plan": "Use more trees."})
    if job == "rewrite a code block":
        blocks = code_blocks(prompt)
        return fenced(tweak(blocks[1], prompt.count("Plan:")) + "\n")
    if job == "plan a new refinement":
        return "Use fewer, deeper trees."
    if job == "plan an ensemble":
        return "Average the predicted probabilities of all solutions."
    if job == "write the submission script":
        return fenced(first_script(prompt).replace("SUBMIT = False", "SUBMIT = True"))
    if job == "steer the next run":
        return json.dumps(ENHANCEMENT)
    raise ValueError(f"scripted model got an unknown job: {job!r}")
