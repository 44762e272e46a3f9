"""Debug: repair a script that crashed or printed no score."""

from prompts.common import EDIT_BLOCK

#: How the debugger answers; shared by the two ways of asking for a fix.
EDIT_FORMAT = ("Answer with the fix as edits of the script, each in this form (copy the SEARCH lines exactly from the "
               "script):\n" + EDIT_BLOCK + "\nOnly if most of the script must change, answer instead with the whole "
               "fixed script in one ```python block.")

#: A fix asked for on its own. The script comes right after the task header, as in the other prompts that
#: show a script, so the model server finds the longest prefix already read in its prompt cache.
FIX_SCRIPT = """{task_header}

Script:
```python
{code}
```

## Job: fix a failing script

The script above failed. What went wrong:
{error}

Fix the problem and keep the rest of the script unchanged.
{rules}
""" + EDIT_FORMAT

#: A fix asked for as the next turn of the conversation that wrote the script: the model server has read
#: everything before this message already (its prompt cache), so only these few lines are new to it.
FIX_FOLLOWUP = """## Job: fix a failing script

The script of your last answer failed. What went wrong:
{error}

Fix the problem and keep the rest of the script unchanged, following the rules given above.
""" + EDIT_FORMAT

NO_SCORE = ("The script finished but printed no valid 'Final Validation Performance: <number>' line "
            "(the score must be a finite number).")

NO_PREDICTIONS = ("The script finished but its validation predictions could not be scored: {problem}. Save them "
                  "as described in the rules (./val_predictions.csv: a 'row' column with the validation rows' "
                  "index in train.csv, then the submission's prediction columns).")

REFUSED = ("The script was not run: a safety check refused it. A training script must only read ./input/, write "
           "in the current folder, and use no network, shell, subprocess, package installation or environment "
           "variables. Remove these parts:\n{problems}")
