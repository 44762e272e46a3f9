"""Evaluate: write the first script for one retrieved approach."""

FIRST_SCRIPT = """## Job: write a solution script
{task_header}

Approach: {title}. {approach_description}
Example code for this approach (adapt it to the task; keep what works):
```python
{example_code}
```

{rules}"""
