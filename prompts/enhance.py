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

# JSON schema of the Enhancer's answer, for providers that constrain decoding to it (structured output).
# The validation in nodes/enhance.py still applies: a schema cannot say "unique priorities" or "known settings".
ENHANCEMENT_SCHEMA = {
    "type": "object",
    "properties": {
        "strategic_summary": {"type": "string"},
        "config_overrides": {"type": "object"},
        "strategic_goals": {"type": "array", "items": {
            "type": "object",
            "properties": {"target_agent_phase": {"type": "string", "enum": ["refinement", "ensemble", "submission"]},
                           "focus": {"type": "string"}, "priority": {"type": "integer", "minimum": 1},
                           "rationale": {"type": "string"}},
            "required": ["target_agent_phase", "focus", "priority", "rationale"]}},
    },
    "required": ["strategic_summary", "config_overrides", "strategic_goals"],
}
