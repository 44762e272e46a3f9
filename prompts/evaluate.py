"""Evaluate: write the first script for one retrieved approach."""

FIRST_SCRIPT = """{task_header}

## Job: write a solution script

Approach: {title}. {approach_description}
Example code for this approach (adapt it to the task; keep what works):
```python
{example_code}
```

{rules}
Answer with ONE complete Python script in a single ```python code block."""
