"""Merge: integrate the next-best candidate into the current solution."""

MERGE_SCRIPT = """{task_header}

## Job: merge two solutions

Current solution (validation {metric}: {base_score}):
```python
{base_code}
```
Another solution (validation {metric}: {other_score}):
```python
{other_code}
```
Write one script that trains both models and combines their validation predictions (simple average of
predictions or probabilities), keeping the best preprocessing of each.
{rules}
Answer with ONE complete Python script in a single ```python code block."""
