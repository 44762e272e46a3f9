"""Debug: repair a script that crashed or printed no score."""

FIX_SCRIPT = """## Job: fix a failing script
{task_header}

This script failed:
```python
{code}
```
What went wrong:
{error}

Fix the problem and keep the rest of the script unchanged.
{rules}"""

NO_SCORE = ("The script finished but printed no valid 'Final Validation Performance: <number>' line "
            "(the score must be a finite number).")

REFUSED = ("The script was not run: a safety check refused it. A training script must only read ./input/, write "
           "in the current folder, and use no network, shell, subprocess, package installation or environment "
           "variables. Remove these parts:\n{problems}")
