"""Search: pick the most promising approaches for the task from the catalog."""

PICK_APPROACHES = """## Job: pick model approaches
{task_header}

Candidate approaches:
{options}

Which {m} approaches are most likely to score best on this task? Answer JSON only:
{{"approaches": ["key1", "key2"]}} using the keys above, best first."""

# JSON schema of the answer, for providers that constrain decoding to it (structured output).
APPROACHES_SCHEMA = {"type": "object", "properties": {"approaches": {"type": "array", "items": {"type": "string"}}},
                     "required": ["approaches"]}
