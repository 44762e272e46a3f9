"""Debug: repair a script that crashed or printed no score."""

FIX_SCRIPT = """{task_header}

## Job: fix a failing script

This script failed:
```python
{code}
```
What went wrong:
{error}

Fix the problem and keep the rest of the script unchanged.
{rules}
Answer with the fix as edits of the script, each in this form (copy the SEARCH lines exactly from the script):
```
<<<<<<< SEARCH
lines of the script to replace
=======
their replacement
>>>>>>> REPLACE
```
Only if most of the script must change, answer instead with the whole fixed script in one ```python block."""

NO_SCORE = ("The script finished but printed no valid 'Final Validation Performance: <number>' line "
            "(the score must be a finite number).")

NO_PREDICTIONS = ("The script finished but its validation predictions could not be scored: {problem}. Save them "
                  "as described in the rules (./val_predictions.csv: a 'row' column with the validation rows' "
                  "index in train.csv, then the submission's prediction columns).")

REFUSED = ("The script was not run: a safety check refused it. A training script must only read ./input/, write "
           "in the current folder, and use no network, shell, subprocess, package installation or environment "
           "variables. Remove these parts:\n{problems}")
