"""Search: pick the most promising approaches for the task from the catalog."""

PICK_APPROACHES = """## Job: pick model approaches
{task_header}

Candidate approaches:
{options}

Which {m} approaches are most likely to score best on this task? Answer JSON only:
{{"approaches": ["key1", "key2"]}} using the keys above, best first."""
