"""Ensemble: plan and implement a combination of the lanes' final solutions."""

PLAN_ENSEMBLE = """## Job: plan an ensemble
Metric: {metric} ({direction}). We have {n} solutions with these validation scores: {scores}.
{tried}{focus}
Propose one way to combine their predictions (for example a simple or weighted average of predictions or
probabilities, or stacking). Answer with the plan only, in one or two sentences."""

DEFAULT_FOCUS = "Start simple: an average of the solutions' predictions."

IMPLEMENT_ENSEMBLE = """{task_header}

## Job: implement an ensemble

{solutions}
Ensemble plan: {plan}
Write one script that trains every model above on the same training rows, combines their validation
predictions as planned, and scores the combination.
{rules}
Answer with ONE complete Python script in a single ```python code block."""

SOLUTION_ITEM = """Solution {i} (validation {metric}: {score}):
```python
{code}
```
"""
