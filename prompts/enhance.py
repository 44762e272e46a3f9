"""Enhance: between two runs of the meta loop, study what happened and steer the next run."""

ENHANCE = """## Job: steer the next run
You steer an automated ML engineer that solves the task below in repeated runs. Each run searches model
approaches, refines solutions by editing code blocks, ensembles them and submits.
Task: {task_name}. Metric: {metric} ({direction}).

Runs so far:
{history}
Champion (best run so far): {champion}

What happened in the last run:
{digest}

Settings you may change for the next run (current value, allowed range):
{knobs}

Answer JSON only, in this form:
{{"strategic_summary": "<what worked, what did not, and why>",
  "config_overrides": {{"<setting>": <value>}},
  "strategic_goals": [{{"target_agent_phase": "refinement", "focus": "<what to try>", "priority": 1,
                        "rationale": "<why>"}}]}}
target_agent_phase is one of refinement, ensemble, submission; priorities are 1, 2, 3, ... (1 = most
important); config_overrides may be empty."""
