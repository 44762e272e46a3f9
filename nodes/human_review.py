"""Human review: pause the run (a LangGraph interrupt) until a person approves, edits or rejects a proposal.

The graph stops with an interrupt whose value says what is proposed and how to answer; it continues when the
thread is resumed with `Command(resume=ANSWER)` (Python, API) or `mlestar review ID ...` (CLI). ANSWER is
"approve", "reject", or {"action": "edit", "edit": {...}}. An answer that cannot be used pauses again with
the reason, so a typo never ends or corrupts a run. The node that asks re-runs from its start on resume;
its model calls and scripts come back from the journal, so nothing is redone.
"""

from __future__ import annotations

from typing import Any, Callable

from langgraph.types import interrupt

from graph.context import Context

ACTIONS = ("approve", "edit", "reject")


def wants_review(ctx: Context, point: str) -> bool:
    return ctx.human_review in (point, "all")


def parse_decision(answer: Any) -> tuple[dict | None, str | None]:
    """({'action', 'edit'}, None) for a usable answer, (None, reason) otherwise."""
    if isinstance(answer, str):
        answer = {"action": answer}
    if not isinstance(answer, dict):
        return None, f"the answer must be 'approve', 'reject' or {{'action': 'edit', 'edit': {{...}}}}, not {answer!r}"
    action = answer.get("action")
    if action not in ACTIONS:
        return None, f"unknown action {action!r}; use one of {', '.join(ACTIONS)}"
    edit = answer.get("edit")
    if action == "edit" and not isinstance(edit, dict):
        return None, "action 'edit' needs 'edit': an object with the changed fields"
    return {"action": action, "edit": edit or {}}, None


def ask_person(point: str, proposal: dict, how_to_edit: str,
               check_edit: Callable[[dict], str | None] = lambda edit: None) -> dict:
    """Interrupt until the answer is usable; returns {'action', 'edit'}.

    `check_edit` returns a problem with an edit (None when it is fine); a problem pauses again with it.
    """
    problem = None
    while True:
        answer = interrupt({"review": point, "proposal": proposal, "actions": list(ACTIONS),
                            "edit": how_to_edit, "problem": problem})
        decision, problem = parse_decision(answer)
        if decision is None:  # problem says why
            continue
        if decision["action"] == "edit":
            problem = check_edit(decision["edit"])
        if problem is None:
            return decision
