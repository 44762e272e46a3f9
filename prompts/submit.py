"""Submit: turn the best solution into a script that predicts the test set."""

SUBMISSION_SCRIPT = """{task_header}

## Job: write the submission script

Best solution (validation {metric}: {score}):
```python
{code}
```
Turn it into the final script: keep the validation step and its score line, then {refit}, predict
./input/{test_file} and write ./submission.csv with exactly the columns {submission_columns}, one row per
test id, in the same format as ./input/{sample_file} ({prediction_note}).
{goal}If the script has a SUBMIT flag, set it to True.
{rules}
Answer with ONE complete Python script in a single ```python code block."""

SUBMISSION_RULES = """Rules for the submission script:
- Read the data from ./input/ ; it must read ./input/{test_file} and write ./submission.csv with the columns
  {submission_columns} and one row per test id.
- Keep the validation step and print its score exactly once, as:
  print(f"Final Validation Performance: {{score}}")
- Keep saving the validation predictions to ./val_predictions.csv (column "row" = the validation rows' index in
  train.csv, then {prediction_columns}).
- Use only pandas, numpy, scikit-learn and lightgbm. No internet, no installs, no plots, no input().
- The script must finish within {timeout_s} seconds."""

SUBMISSION_PROBLEMS = """The submission file was not valid: {problems}"""
