"""Submit: turn the best solution into a script that predicts the test set."""

SUBMISSION_SCRIPT = """## Job: write the submission script
{task_header}

Best solution (validation {metric}: {score}):
```python
{code}
```
Turn it into the final script: keep the validation step and its score line, then {refit}, predict
./input/{test_file} and write ./submission.csv with exactly the columns {submission_columns}, one row per
test id, in the same format as ./input/{sample_file} ({prediction_note}).
{goal}The script may read ./input/{test_file} now. Keep printing the score line:
print(f"Final Validation Performance: {{score}}")
Answer with ONE complete Python script in a single ```python code block."""

SUBMISSION_PROBLEMS = """The submission file was not valid: {problems}"""
